//! `lifeboat daemon`: the always-on process.
//!
//! It probes regions and decides on declared outages by each binding's
//! policy (`trigger`), executes runs and resumes interrupted ones from the
//! journal, serves `/metrics` and `/healthz` and the control socket,
//! refreshes RPO exposure, checks bound runbooks' readiness, runs
//! scheduled verifications and drills, tells systemd when it is ready and
//! alive, reloads its config on SIGHUP (an invalid one keeps the old), and
//! drains on SIGTERM (running steps get their grace; the rest resumes on
//! the next start). With a journal shared in etcd it is one member of a
//! cluster (`ha`): it probes and publishes its view always, and decides and
//! executes only while elected.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::actions::Registry;
use crate::aws::{AwsClients, Credentials};
use crate::config::{self, Binding, Config};
use crate::control::{self, Incoming, Request, Response};
use crate::detect::{Detector, RegionState};
use crate::diag::Diagnostic;
use crate::engine::{Engine, EngineOptions};
use crate::journal::{
    Access, Decision, DecisionKind, Journal, JournalError, Mark, MarkKind, RequestKind,
};
use crate::measure::Figures;
use crate::metrics::Metrics;
use crate::notify::{Event, Notifier};
use crate::probe::Outcome;
use crate::runbook::{self, MissingParams, Mode, Runbook};
use crate::trigger::{self, DAEMON, Verdict, decision};

mod ha;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is invalid (each problem was logged).
    #[error("{path} is invalid: {count} problem(s)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// How many problems.
        count: usize,
    },
    /// The journal could not be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The etcd cluster of a shared journal could not be reached.
    #[error(transparent)]
    Etcd(#[from] crate::ha::etcd::EtcdError),
    /// The metrics listener could not be bound.
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The control socket could not be opened.
    #[error(transparent)]
    Control(#[from] control::SocketError),
    /// A file the daemon would act on could have been changed by others.
    #[error("refusing files others could have changed (--insecure-permissions overrides):\n  {}", .0.join("\n  "))]
    Insecure(Vec<String>),
}

/// The effective uid of this process (the owner of its `/proc/self`).
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// What is wrong with `path`'s ownership and mode, like sshd's StrictModes:
/// it must be owned by root or by the daemon's own user, and writable by
/// neither its group nor others.
fn unsafe_file(path: &Path, own: Option<u32>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "{} is writable by its group or by others (mode {mode:04o}); `chmod go-w` it",
            path.display()
        ));
    }
    if meta.uid() != 0 && Some(meta.uid()) != own {
        return Some(format!(
            "{} is owned by uid {}, neither root nor the daemon's own user{}",
            path.display(),
            meta.uid(),
            own.map(|u| format!(" (uid {u})")).unwrap_or_default()
        ));
    }
    None
}

/// Check the config file and every bound runbook; with `insecure`, log
/// each problem loudly and go on.
pub fn check_permissions(
    config_path: &Path,
    config: &Config,
    insecure: bool,
) -> Result<(), DaemonError> {
    let own = own_uid();
    let problems: Vec<String> = std::iter::once(config_path)
        .chain(config.bindings.iter().map(|b| b.runbook.as_path()))
        .filter_map(|p| unsafe_file(p, own))
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    if insecure {
        for p in &problems {
            error!("INSECURE, accepted because of --insecure-permissions: {p}");
        }
        return Ok(());
    }
    Err(DaemonError::Insecure(problems))
}

/// Read and check the config file.
pub fn load_config(path: &Path) -> Result<Config, (DaemonError, Vec<Diagnostic>)> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        (
            DaemonError::Read {
                path: path.to_path_buf(),
                source,
            },
            Vec::new(),
        )
    })?;
    config::load(&path.display().to_string(), &text).map_err(|problems| {
        (
            DaemonError::Invalid {
                path: path.to_path_buf(),
                count: problems.len(),
            },
            problems,
        )
    })
}

/// Tell systemd (`sd_notify`), when it started us with a notify socket.
pub fn notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    // Never block the daemon on a listener that does not read.
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr)),
        None => socket.send_to(state.as_bytes(), &path),
    };
    match sent {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            tracing::debug!("sd_notify {state}: the listener's queue is full");
        }
        Err(e) => warn!("sd_notify {state}: {e}"),
        Ok(_) => {}
    }
}

/// The watchdog interval systemd asked for, halved (ping twice per period).
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// A run the daemon is executing.
struct RunTask {
    binding: Option<String>,
    handle: tokio::task::JoinHandle<()>,
}

/// What a readiness check of one binding found.
#[derive(Debug, Clone, Serialize)]
struct Readiness {
    binding: String,
    runbook: String,
    ready: bool,
    /// The preflights that would fail, or why the runbook did not load.
    problems: Vec<String>,
    checked_at: String,
}

/// A binding's runbook, read and loaded with its params as a run would.
fn load_bound(binding: &Binding) -> Result<(String, runbook::Loaded), String> {
    let text = std::fs::read_to_string(&binding.runbook)
        .map_err(|e| format!("cannot read {}: {e}", binding.runbook.display()))?;
    let loaded = runbook::load(
        &binding.runbook.display().to_string(),
        &text,
        &binding.params,
        MissingParams::Refuse,
    )
    .map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok((text, loaded))
}

/// The mode a run was recorded in.
fn mode_of(record: &str) -> Mode {
    match record {
        "switchover" => Mode::Switchover,
        "drill" => Mode::Drill,
        _ => Mode::Failover,
    }
}

/// What runs on a schedule.
#[derive(Debug, Clone)]
enum Work {
    /// A verification job.
    Verify(crate::verify::JobSpec),
    /// A drill of a binding's runbook.
    Drill(String),
}

/// Work on its schedule.
struct Scheduled {
    work: Work,
    schedule: crate::verify::Schedule,
    next: Option<jiff::Timestamp>,
    /// A verification job still running (drills are tracked as runs).
    running: bool,
}

impl Scheduled {
    fn job_name(&self) -> Option<&str> {
        match &self.work {
            Work::Verify(job) => Some(&job.name),
            Work::Drill(_) => None,
        }
    }
}

/// The scheduled work of `config`: verification jobs and binding drills
/// that have a schedule.
fn scheduled(config: &Config, metrics: &Metrics, running: &[String]) -> Vec<Scheduled> {
    let now = jiff::Timestamp::now();
    let jobs = config.jobs.iter().filter_map(|job| {
        let schedule =
            crate::verify::Schedule::parse(job.schedule.as_deref()?, job.timezone.as_deref())
                .ok()?;
        if let Some(every) = schedule.interval(now) {
            metrics.set_verify_interval(&job.name, every.as_secs_f64());
        }
        Some(Scheduled {
            next: schedule.next_after(now),
            running: running.contains(&job.name),
            work: Work::Verify(job.clone()),
            schedule,
        })
    });
    let drills = config.bindings.iter().filter_map(|b| {
        let d = b.drill.as_ref()?;
        let schedule = crate::verify::Schedule::parse(&d.schedule, d.timezone.as_deref()).ok()?;
        Some(Scheduled {
            next: schedule.next_after(now),
            running: false,
            work: Work::Drill(b.name.clone()),
            schedule,
        })
    });
    jobs.chain(drills).collect()
}

/// The running daemon: its config, journal, detectors and runs.
struct Daemon {
    config_path: PathBuf,
    config: Config,
    insecure: bool,
    journal: Arc<Journal>,
    aws: AwsClients,
    metrics: Arc<Metrics>,
    notifier: Notifier,
    detectors: BTreeMap<String, Detector<String>>,
    /// The last result of each probe, by region and index.
    last: BTreeMap<(String, usize), Outcome>,
    /// The evidence of each region's declared outage, while it lasts.
    outages: BTreeMap<String, serde_json::Value>,
    runs: HashMap<String, RunTask>,
    ended: mpsc::Sender<String>,
    drain: watch::Sender<bool>,
    readiness: BTreeMap<String, Readiness>,
    readiness_results: mpsc::Sender<Vec<Readiness>>,
    checking_readiness: bool,
    jobs: Vec<Scheduled>,
    verify_results: mpsc::Sender<crate::verify::JobResult>,
    /// With a shared journal in etcd: this daemon's part in the cluster.
    ha: Option<ha::Member>,
}

impl Daemon {
    fn binding(&self, name: &str) -> Option<Binding> {
        self.config
            .bindings
            .iter()
            .find(|b| b.name == name)
            .cloned()
    }

    /// Execute run `id` in its own task; its id goes to `ended` when it stops.
    fn spawn_run(
        &mut self,
        id: String,
        runbook: Arc<Runbook>,
        mode: Mode,
        binding: Option<String>,
    ) {
        let engine = Engine::new(
            Arc::clone(&self.journal),
            Arc::new(Registry::with_aws(self.aws.clone())),
            EngineOptions::default(),
        )
        .with_drain(self.drain.subscribe());
        let ended = self.ended.clone();
        let run = id.clone();
        // A leader's runs stop the instant its lease runs out by the local
        // clock, whatever the daemon is busy with: no step goes on without it.
        let lease = self.lease_clock();
        let handle = tokio::spawn(async move {
            let expired = async {
                match &lease {
                    Some(clock) => clock.expired().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = engine.execute(&run, runbook, mode) => match ended {
                    Ok(outcome) => info!(run = %run, state = outcome.word(), "run ended"),
                    Err(e) => error!(run = %run, "run stopped: {e}"),
                },
                () = expired => {
                    error!(run = %run, "the lease ran out by the local clock: every step of the run stopped at once (stepping down); the next leader resumes it");
                    return;
                }
            }
            let _ = ended.send(run).await;
        });
        self.runs.insert(id, RunTask { binding, handle });
    }

    /// Resume every run the journal shows unfinished.
    fn resume_runs(&mut self) -> Result<(), JournalError> {
        let started_by_binding: HashMap<String, String> = self
            .journal
            .decisions(None)?
            .into_iter()
            .filter(|d| matches!(d.kind, DecisionKind::Started | DecisionKind::StartedDrill))
            .filter_map(|d| Some((d.run?, d.binding?)))
            .collect();
        for listed in self.journal.unfinished_runs()? {
            let id = listed.run.id.clone();
            // The listing leaves the runbook's text out; the run itself has it.
            let record = self.journal.run(&id)?;
            if !record.run.secret_params.is_empty() {
                error!(
                    run = %id,
                    "not resuming: it was started with secret parameters, which the journal does not keep; resume it with `lifeboat run --resume {id} --param ...`"
                );
                continue;
            }
            let loaded = match runbook::load(
                &record.run.file,
                &record.run.runbook_text,
                &record.run.params,
                MissingParams::Refuse,
            ) {
                Ok(loaded) => loaded,
                Err(problems) => {
                    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    error!(run = %id, "not resuming: its runbook no longer loads: {}", problems.join("; "));
                    continue;
                }
            };
            info!(run = %id, runbook = %record.run.runbook, "resuming an interrupted run");
            let binding = started_by_binding.get(&id).cloned();
            self.spawn_run(
                id,
                Arc::new(loaded.runbook),
                mode_of(&record.run.mode),
                binding,
            );
        }
        Ok(())
    }

    /// A run stopped: export its figures and tell the webhooks.
    fn on_run_end(&mut self, id: &str) {
        let binding = self.runs.remove(id).and_then(|t| t.binding);
        self.metrics.record_api_calls(self.aws.calls());
        let figures = match Figures::of_run(&self.journal, id) {
            Ok(f) => f,
            Err(e) => {
                error!(run = %id, "cannot read the run's figures: {e}");
                return;
            }
        };
        if figures.state.unfinished() {
            // Interrupted by a stop: the next start resumes it.
            return;
        }
        if figures.mode == "drill" {
            self.tear_down(id);
        }
        self.metrics.record_run(&figures);
        let seconds = |s: Option<f64>| {
            s.map_or_else(
                || "not measurable".into(),
                |s| crate::report::seconds(Some(s)),
            )
        };
        self.notifier.send(Event {
            event: "run-ended".into(),
            at: crate::engine::now(),
            binding,
            region: None,
            run: Some(id.to_string()),
            summary: format!(
                "run {id} of {} {}: RTO {} ({}), RPO {} ({})",
                figures.runbook,
                figures.state,
                seconds(figures.rto.seconds),
                figures.rto.verdict,
                seconds(figures.rpo.seconds),
                figures.rpo.verdict
            ),
            detail: serde_json::to_value(&figures).ok(),
        });
    }

    /// How long until the next scheduled job is due.
    fn until_next_job(&self) -> Duration {
        let now = jiff::Timestamp::now();
        self.jobs
            .iter()
            .filter_map(|j| j.next)
            .min()
            .map_or(Duration::from_secs(3600), |next| {
                next.duration_since(now)
                    .try_into()
                    .unwrap_or(Duration::ZERO)
            })
    }

    /// Start the work that is due; skip (and count) what is still running.
    fn run_due_jobs(&mut self) {
        // With a shared journal only the leader runs scheduled work.
        let executes = self.executes();
        let now = jiff::Timestamp::now();
        let mut drills = Vec::new();
        for j in &mut self.jobs {
            if j.next.is_none_or(|next| next > now) {
                continue;
            }
            j.next = j.schedule.next_after(now);
            if !executes {
                continue;
            }
            let job = match &j.work {
                Work::Drill(binding) => {
                    drills.push(binding.clone());
                    continue;
                }
                Work::Verify(job) => job.clone(),
            };
            if j.running {
                self.metrics.count_verify_skipped(&job.name);
                warn!(job = %job.name, "verification due while its previous run is still going: skipped");
                continue;
            }
            j.running = true;
            let (aws, results) = (self.aws.clone(), self.verify_results.clone());
            tokio::spawn(async move {
                let result = crate::verify::run(&aws, &job).await;
                let _ = results.send(result).await;
            });
        }
        for name in drills {
            let Some(binding) = self.binding(&name) else {
                continue;
            };
            let drilling = self.runs.iter().any(|(id, t)| {
                t.binding.as_deref() == Some(name.as_str())
                    && self.journal.run(id).is_ok_and(|r| r.run.mode == "drill")
            });
            if drilling {
                warn!(binding = %name, "scheduled drill skipped: the previous drill is still running");
                continue;
            }
            let _ = self.start(&binding, Mode::Drill, DAEMON, "scheduled drill", None);
        }
    }

    /// A job ended: journal, export and, on failure, notify.
    fn on_verified(&mut self, result: crate::verify::JobResult) {
        if let Some(j) = self
            .jobs
            .iter_mut()
            .find(|j| j.job_name() == Some(result.job.as_str()))
        {
            j.running = false;
        }
        self.metrics.record_verification(
            &result.job,
            result.ok,
            result.duration_s,
            &result.restores,
        );
        self.metrics.record_api_calls(self.aws.calls());
        match serde_json::to_value(&result) {
            Ok(value) => {
                if let Err(e) = self.journal.record_verification(
                    &result.job,
                    &result.started_at,
                    result.ok,
                    &value,
                ) {
                    error!(job = %result.job, "cannot journal the verification: {e}");
                }
            }
            Err(e) => error!(job = %result.job, "verification result: {e}"),
        }
        if result.ok {
            info!(job = %result.job, checks = result.checks.len(), "verification passed");
            return;
        }
        let failed: Vec<String> = result
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{} {}: {}", c.resource, c.check, c.detail))
            .collect();
        warn!(job = %result.job, failed = ?failed, "verification failed");
        self.notifier.send(Event {
            event: "verification-failed".into(),
            at: crate::engine::now(),
            binding: None,
            region: None,
            run: None,
            summary: format!("verification {} failed: {}", result.job, failed.join("; ")),
            detail: serde_json::to_value(&result).ok(),
        });
    }

    /// Remove what drill `id` made, in the background; the result is
    /// journaled as its `teardown` mark.
    fn tear_down(&self, id: &str) {
        let Ok(record) = self.journal.run(id) else {
            return;
        };
        let (regions, roles) = runbook::load(
            &record.run.file,
            &record.run.runbook_text,
            &record.run.params,
            MissingParams::Placeholder,
        )
        .map(|l| {
            (
                runbook::regions_of(&l.runbook),
                runbook::roles_of(&l.runbook),
            )
        })
        .unwrap_or_default();
        let (aws, journal, id) = (self.aws.clone(), Arc::clone(&self.journal), id.to_string());
        tokio::spawn(async move {
            let which = crate::actions::drill::Which::Run(id.clone());
            let t =
                crate::actions::drill::teardown_in_accounts(&aws, &roles, &regions, &which).await;
            if t.errors.is_empty() {
                info!(run = %id, removed = t.removed.len(), "drill torn down");
            } else {
                error!(run = %id, errors = ?t.errors, "drill teardown incomplete; the next sweep retries");
            }
            let mark = Mark {
                kind: MarkKind::Teardown,
                at: crate::engine::now(),
                detail: serde_json::to_value(&t).ok(),
            };
            if let Err(e) = journal.mark(&id, &mark) {
                error!(run = %id, "cannot journal the teardown: {e}");
            }
        });
    }

    /// At start: remove the resources of drills that are over (or whose
    /// process died), in every region the config names, in the background.
    fn sweep(&self) -> Result<(), JournalError> {
        let mut regions: std::collections::BTreeSet<String> =
            self.config.regions.keys().cloned().collect();
        let mut roles: Vec<runbook::AssumeRole> = Vec::new();
        for b in &self.config.bindings {
            if let Ok((_, loaded)) = load_bound(b) {
                regions.extend(runbook::regions_of(&loaded.runbook));
                for role in runbook::roles_of(&loaded.runbook) {
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
            }
        }
        // Drills the journal shows unfinished are resumed, not swept.
        let live: std::collections::BTreeSet<String> = self
            .journal
            .unfinished_runs()?
            .into_iter()
            .filter(|r| r.run.mode == "drill")
            .map(|r| r.run.id)
            .collect();
        if regions.is_empty() {
            return Ok(());
        }
        let aws = self.aws.clone();
        tokio::spawn(async move {
            let which = crate::actions::drill::Which::AllBut(live);
            let t =
                crate::actions::drill::teardown_in_accounts(&aws, &roles, &regions, &which).await;
            if !t.removed.is_empty() {
                warn!(removed = ?t.removed, "swept drill resources left by earlier drills");
            }
            if !t.errors.is_empty() {
                error!(errors = ?t.errors, "drill sweep incomplete");
            }
        });
        Ok(())
    }

    /// What the probes of `region` show now, with the outage's times.
    fn evidence(&self, region: &str, incident: Option<&str>, at: &str) -> serde_json::Value {
        let Some(detector) = self.detectors.get(region) else {
            return serde_json::Value::Null;
        };
        let failing = detector.failing();
        let probes: Vec<serde_json::Value> = self
            .config
            .regions
            .get(region)
            .map(|r| r.probes.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let last = self.last.get(&(region.to_string(), i));
                serde_json::json!({
                    "probe": p.name,
                    "failing": failing.contains(&i),
                    "last_ok": last.map(|o| o.ok),
                    "last_detail": last.map(|o| o.detail.clone()),
                    "last_at": last.map(|o| o.at.clone()),
                })
            })
            .collect();
        serde_json::json!({
            "region": region,
            "state": detector.state(),
            "incident_start": incident,
            "declared_at": at,
            "quorum": detector.quorum(),
            "probes": probes,
        })
    }

    /// Journal a decision, count it, log it and tell the webhooks. False if
    /// it could not be journaled (and so must not be acted on).
    fn record(&self, decision: &Decision, region: Option<&str>, summary: String) -> bool {
        if let Err(e) = self.journal.decide(decision) {
            error!(kind = %decision.kind, "cannot journal a decision: {e}");
            return false;
        }
        self.count_and_tell(decision, region, summary);
        true
    }

    fn count_and_tell(&self, decision: &Decision, region: Option<&str>, summary: String) {
        let binding = decision.binding.as_deref().unwrap_or("");
        self.metrics.count_decision(binding, decision.kind.as_str());
        if decision.kind.held_back() {
            warn!(binding, kind = %decision.kind, who = %decision.who, "{summary}");
        } else {
            info!(binding, kind = %decision.kind, who = %decision.who, "{summary}");
        }
        self.notifier.send(Event {
            event: decision.kind.to_string(),
            at: decision.at.clone(),
            binding: decision.binding.clone(),
            region: region.map(str::to_string),
            run: decision.run.clone(),
            summary,
            detail: decision.detail.clone(),
        });
    }

    /// Start `binding`'s runbook in `mode` for `who`. The run, the marks of
    /// the outage it answers (from `evidence`) and the decision are
    /// journaled together before anything executes.
    fn start(
        &mut self,
        binding: &Binding,
        mode: Mode,
        who: &str,
        how: &str,
        evidence: Option<serde_json::Value>,
    ) -> Result<String, String> {
        let started = self.start_inner(binding, mode, who, how, evidence.clone());
        if let Err(why) = &started {
            let d = decision(
                Some(&binding.name),
                DecisionKind::StartFailed,
                None,
                who,
                Some(serde_json::json!({ "error": why, "evidence": evidence })),
            );
            self.record(
                &d,
                Some(&binding.region),
                format!("could not start binding `{}`: {why}", binding.name),
            );
        }
        started
    }

    fn start_inner(
        &mut self,
        binding: &Binding,
        mode: Mode,
        who: &str,
        how: &str,
        evidence: Option<serde_json::Value>,
    ) -> Result<String, String> {
        let (text, loaded) = load_bound(binding)?;
        if loaded.runbook.strategy == crate::runbook::Strategy::Failback
            && who == DAEMON
            && mode != Mode::Drill
        {
            return Err("a failback is never started automatically".into());
        }
        let record = crate::engine::new_run(
            &loaded.runbook,
            binding.runbook.display().to_string(),
            text,
            &binding.params,
            mode,
            who.to_string(),
        );
        let id = record.id.clone();
        let mut marks = Vec::new();
        if let Some(e) = &evidence {
            if let Some(at) = e["incident_start"].as_str() {
                marks.push(Mark {
                    kind: MarkKind::IncidentStart,
                    at: at.to_string(),
                    detail: Some(e.clone()),
                });
            }
            if let Some(at) = e["declared_at"].as_str() {
                marks.push(Mark {
                    kind: MarkKind::OutageDeclared,
                    at: at.to_string(),
                    detail: None,
                });
            }
        }
        let kind = if mode == Mode::Drill {
            DecisionKind::StartedDrill
        } else {
            DecisionKind::Started
        };
        let d = decision(
            Some(&binding.name),
            kind,
            Some(&id),
            who,
            Some(serde_json::json!({
                "how": how,
                "policy": binding.policy.as_str(),
                "mode": mode.as_str(),
                "runbook": loaded.runbook.name,
                "evidence": evidence,
            })),
        );
        self.journal
            .start_run(&record, &marks, Some(&d))
            .map_err(|e| format!("cannot journal the run: {e}"))?;
        self.count_and_tell(
            &d,
            Some(&binding.region),
            format!(
                "started run {id} of {} in {mode} mode for binding `{}` ({how})",
                loaded.runbook.name, binding.name
            ),
        );
        self.spawn_run(
            id.clone(),
            Arc::new(loaded.runbook),
            mode,
            Some(binding.name.clone()),
        );
        Ok(id)
    }

    /// Feed a probe result to its region's detector, and act on what changes.
    fn observe(&mut self, outcome: Outcome) {
        let region = outcome.region.clone();
        let Some(detector) = self.detectors.get_mut(&region) else {
            return;
        };
        let probe = self
            .config
            .regions
            .get(&region)
            .and_then(|r| r.probes.get(outcome.probe))
            .map_or("?", |p| p.name.as_str());
        if !outcome.ok {
            info!(region = %region, probe, detail = %outcome.detail, "probe failed");
        }
        let change = detector.observe(outcome.probe, outcome.ok, outcome.at.clone());
        self.last.insert((region.clone(), outcome.probe), outcome);
        let Some(change) = change else { return };
        self.metrics.set_region_health(&region, change.to.gauge());
        if self.ha.is_some() {
            // Shared: this daemon's view is published; the leader decides
            // when daemons in enough places agree.
            self.local_change(&region, &change);
            return;
        }
        match &change.declared {
            Some(incident) => {
                let evidence = self.evidence(&region, Some(incident), &change.at);
                warn!(
                    region = %region,
                    incident_start = %incident,
                    failing = ?change.failing,
                    "outage declared: a quorum of probes is failing"
                );
                self.notifier.send(Event {
                    event: "outage-declared".into(),
                    at: change.at.clone(),
                    binding: None,
                    region: Some(region.clone()),
                    run: None,
                    summary: format!("{region} declared down; first failure at {incident}"),
                    detail: Some(evidence.clone()),
                });
                self.outages.insert(region.clone(), evidence.clone());
                self.on_outage(&region, &evidence);
            }
            None => {
                info!(region = %region, from = ?change.from, to = ?change.to, "region health changed");
                if change.to == RegionState::Healthy && self.outages.remove(&region).is_some() {
                    self.on_recovered(&region);
                }
            }
        }
    }

    /// A region was declared down: decide for each of its bindings.
    fn on_outage(&mut self, region: &str, evidence: &serde_json::Value) {
        let bindings: Vec<Binding> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.region == region)
            .cloned()
            .collect();
        for binding in bindings {
            let failback = match load_bound(&binding) {
                Ok((_, loaded)) => loaded.runbook.strategy == crate::runbook::Strategy::Failback,
                Err(why) => {
                    let d = decision(
                        Some(&binding.name),
                        DecisionKind::StartFailed,
                        None,
                        DAEMON,
                        Some(serde_json::json!({ "error": why, "evidence": evidence })),
                    );
                    self.record(
                        &d,
                        Some(region),
                        format!("binding `{}`: {why}", binding.name),
                    );
                    continue;
                }
            };
            let view = match trigger::view(&self.journal, &binding, jiff::Timestamp::now()) {
                Ok(v) => v,
                Err(e) => {
                    error!(binding = %binding.name, "cannot read the binding's state; not acting: {e}");
                    continue;
                }
            };
            self.metrics.set_paused(view.paused.is_some());
            let verdict = trigger::on_outage(binding.policy, failback, &view);
            let name = &binding.name;
            let (detail, summary) = match &verdict {
                Verdict::Start => {
                    let _ = self.start(
                        &binding,
                        Mode::Failover,
                        DAEMON,
                        "automatic: policy auto",
                        Some(evidence.clone()),
                    );
                    continue;
                }
                Verdict::AwaitApproval => (
                    serde_json::json!({ "evidence": evidence }),
                    format!(
                        "{region} is down: binding `{name}` waits for `lifeboat approve {name}`"
                    ),
                ),
                Verdict::Notify => (
                    serde_json::json!({ "evidence": evidence }),
                    format!("{region} is down: binding `{name}` only notifies"),
                ),
                Verdict::Blocked(_, why) => (
                    serde_json::json!({ "reason": why, "evidence": evidence }),
                    format!("{region} is down, but binding `{name}` does not run: {why}"),
                ),
            };
            let run = match verdict {
                Verdict::Blocked(..) => view.active_run.as_deref(),
                _ => None,
            };
            let d = decision(Some(name), verdict.kind(), run, DAEMON, Some(detail));
            self.record(&d, Some(region), summary);
        }
    }

    /// A region declared down is healthy again: pending approvals lapse.
    fn on_recovered(&mut self, region: &str) {
        self.notifier.send(Event {
            event: "region-recovered".into(),
            at: crate::engine::now(),
            binding: None,
            region: Some(region.to_string()),
            run: None,
            summary: format!("{region} is healthy again"),
            detail: None,
        });
        let bindings: Vec<Binding> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.region == region)
            .cloned()
            .collect();
        for binding in bindings {
            let Ok(view) = trigger::view(&self.journal, &binding, jiff::Timestamp::now()) else {
                continue;
            };
            if view.awaiting.is_some() {
                let d = decision(
                    Some(&binding.name),
                    DecisionKind::Withdrawn,
                    None,
                    DAEMON,
                    Some(serde_json::json!({ "reason": "the region recovered before approval" })),
                );
                self.record(
                    &d,
                    Some(region),
                    format!(
                        "{region} recovered: binding `{}` no longer waits for approval",
                        binding.name
                    ),
                );
            }
        }
    }

    /// Carry out a request from the control socket.
    fn control(&mut self, request: Request, who: &str) -> Response {
        let journaled = |r: Result<Result<String, String>, JournalError>| match r {
            Ok(r) => Response::from(r),
            Err(e) => Response::refused(format!("journal: {e}")),
        };
        let response = match request {
            Request::Status => match self.status() {
                Ok(status) => Response {
                    ok: true,
                    message: String::new(),
                    status: Some(status),
                },
                Err(e) => Response::refused(format!("journal: {e}")),
            },
            Request::Approve {
                target,
                step: Some(step),
            } => journaled(control::leave_request(
                &self.journal,
                &target,
                Some(&step),
                RequestKind::Approve,
                who,
            )),
            Request::Reject {
                target,
                step: Some(step),
            } => journaled(control::leave_request(
                &self.journal,
                &target,
                Some(&step),
                RequestKind::Reject,
                who,
            )),
            Request::Skip { run, step } => journaled(control::leave_request(
                &self.journal,
                &run,
                Some(&step),
                RequestKind::Skip,
                who,
            )),
            Request::Cancel { run } => journaled(control::leave_request(
                &self.journal,
                &run,
                None,
                RequestKind::Cancel,
                who,
            )),
            Request::Approve { step: None, .. }
            | Request::Reject { step: None, .. }
            | Request::Trigger { .. }
                if !self.executes() =>
            {
                Response::refused(format!(
                    "this daemon is a follower: only the leader ({}) starts runs; send this to its control socket",
                    self.leader_name().unwrap_or_else(|| "not known yet".into())
                ))
            }
            Request::Approve { target, step: None } => self.decide_pending(&target, true, who),
            Request::Reject { target, step: None } => self.decide_pending(&target, false, who),
            Request::Ack { binding } => match self.binding(&binding) {
                None => Response::refused(format!("no binding `{binding}`")),
                Some(_) => {
                    let r = control::ack(&self.journal, &binding, who);
                    if matches!(r, Ok(Ok(_))) {
                        self.metrics
                            .count_decision(&binding, DecisionKind::Ack.as_str());
                    }
                    journaled(r)
                }
            },
            Request::Pause { reason } => {
                let r = control::set_paused(&self.journal, true, reason.as_deref(), who);
                if matches!(r, Ok(Ok(_))) {
                    self.metrics.set_paused(true);
                    warn!(who, reason = ?reason, "automatic triggering paused");
                }
                journaled(r)
            }
            Request::Resume => {
                let r = control::set_paused(&self.journal, false, None, who);
                if matches!(r, Ok(Ok(_))) {
                    self.metrics.set_paused(false);
                    info!(who, "automatic triggering resumed");
                }
                journaled(r)
            }
            Request::Trigger { binding, mode } => self.trigger_by_hand(&binding, mode, who),
        };
        if response.ok && !response.message.is_empty() {
            info!(who, "{}", response.message);
        }
        response
    }

    /// `approve BINDING` / `reject BINDING`: the outcome of a pending approval.
    fn decide_pending(&mut self, target: &str, approve: bool, who: &str) -> Response {
        let Some(binding) = self.binding(target) else {
            return Response::refused(if self.journal.run(target).is_ok() {
                format!(
                    "name the step of run {target} to approve or reject: `lifeboat approve {target} STEP`"
                )
            } else {
                format!("no binding or run named `{target}`")
            });
        };
        let view = match trigger::view(&self.journal, &binding, jiff::Timestamp::now()) {
            Ok(v) => v,
            Err(e) => return Response::refused(format!("journal: {e}")),
        };
        let Some(awaiting) = view.awaiting else {
            return Response::refused(format!("binding `{target}` is not waiting for approval"));
        };
        let kind = if approve {
            DecisionKind::Approved
        } else {
            DecisionKind::Rejected
        };
        let d = decision(
            Some(target),
            kind,
            None,
            who,
            Some(serde_json::json!({ "request": awaiting.seq })),
        );
        if !self.record(
            &d,
            Some(&binding.region),
            format!("binding `{target}` {kind} by {who}"),
        ) {
            return Response::refused("cannot journal the decision");
        }
        if !approve {
            return Response::done(format!("binding `{target}`: the pending run is declined"));
        }
        let evidence = awaiting.detail.and_then(|d| d.get("evidence").cloned());
        match self.start(
            &binding,
            Mode::Failover,
            who,
            &format!("approved by {who}"),
            evidence,
        ) {
            Ok(id) => Response::done(format!("approved: run {id} started for binding `{target}`")),
            Err(why) => Response::refused(format!("approved, but the run could not start: {why}")),
        }
    }

    /// `trigger BINDING`: a human starts the binding's runbook now.
    fn trigger_by_hand(&mut self, name: &str, mode: Mode, who: &str) -> Response {
        let Some(binding) = self.binding(name) else {
            return Response::refused(format!("no binding `{name}`"));
        };
        // One run of each kind per binding: a drill never holds back a
        // failover, nor a failover a drill.
        let drill = mode == Mode::Drill;
        let active = self.runs.iter().find(|(id, t)| {
            t.binding.as_deref() == Some(name)
                && self
                    .journal
                    .run(id)
                    .is_ok_and(|r| (r.run.mode == "drill") == drill)
        });
        if let Some((id, _)) = active {
            return Response::refused(format!(
                "run {id} of binding `{name}` is still in progress (`lifeboat cancel {id}` first)"
            ));
        }
        let d = decision(
            Some(name),
            DecisionKind::Trigger,
            None,
            who,
            Some(serde_json::json!({ "mode": mode.as_str() })),
        );
        if !self.record(
            &d,
            Some(&binding.region),
            format!("binding `{name}` triggered by {who} in {mode} mode"),
        ) {
            return Response::refused("cannot journal the request");
        }
        // A failover started during a declared outage answers that outage.
        let evidence = (mode == Mode::Failover)
            .then(|| self.outages.get(&binding.region).cloned())
            .flatten();
        match self.start(&binding, mode, who, &format!("by hand: {who}"), evidence) {
            Ok(id) => Response::done(format!(
                "run {id} started for binding `{name}` in {mode} mode"
            )),
            Err(why) => Response::refused(why),
        }
    }

    /// What `lifeboat status` shows.
    fn status(&self) -> Result<serde_json::Value, JournalError> {
        let now = jiff::Timestamp::now();
        let regions: Vec<serde_json::Value> = self
            .detectors
            .iter()
            .map(|(name, d)| {
                let mut e = self.evidence(name, None, "");
                e["incident_start"] = self
                    .outages
                    .get(name)
                    .map_or(serde_json::Value::Null, |o| o["incident_start"].clone());
                if let Some(map) = e.as_object_mut() {
                    map.remove("declared_at");
                }
                e["state"] = serde_json::json!(d.state());
                e
            })
            .collect();
        let mut bindings = Vec::new();
        for b in &self.config.bindings {
            let view = trigger::view(&self.journal, b, now)?;
            let state = if view.active_run.is_some() {
                "running"
            } else if view.awaiting.is_some() {
                "awaiting-approval"
            } else if view.cooling.is_some() {
                "cooling-down"
            } else if b.policy == crate::config::Policy::Notify {
                "notify-only"
            } else if view.paused.is_some() {
                "paused"
            } else {
                "armed"
            };
            let last = view
                .last_run
                .as_deref()
                .and_then(|id| Figures::of_run(&self.journal, id).ok());
            let readiness = self.readiness.get(&b.name);
            bindings.push(serde_json::json!({
                "name": b.name,
                "region": b.region,
                "policy": b.policy.as_str(),
                "runbook": b.runbook.display().to_string(),
                "state": state,
                "active_run": view.active_run,
                "cooling": view.cooling,
                "awaiting_since": view.awaiting.as_ref().map(|d| d.at.clone()),
                "last_run": last.as_ref().map(|f| serde_json::json!({
                    "run": f.run,
                    "state": f.state,
                    "rto_s": f.rto.seconds,
                    "rto_verdict": f.rto.verdict,
                    "rpo_s": f.rpo.seconds,
                    "rpo_verdict": f.rpo.verdict,
                })),
                "ready": readiness.map(|r| r.ready),
                "readiness_checked_at": readiness.map(|r| r.checked_at.clone()),
                "not_ready": readiness.map(|r| r.problems.clone()).unwrap_or_default(),
            }));
        }
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|(id, t)| {
                let record = self.journal.run(id).ok();
                serde_json::json!({
                    "run": id,
                    "binding": t.binding,
                    "runbook": record.as_ref().map(|r| r.run.runbook.clone()),
                    "mode": record.as_ref().map(|r| r.run.mode.clone()),
                    "started_at": record.as_ref().map(|r| r.run.started_at.clone()),
                })
            })
            .collect();
        let paused = trigger::paused(&self.journal)?;
        Ok(serde_json::json!({
            "cluster": self.ha_status(),
            "paused": paused.map(|p| serde_json::json!({
                "by": p.who,
                "at": p.at,
                "reason": p.detail.and_then(|d| d.get("reason").cloned()),
            })),
            "regions": regions,
            "bindings": bindings,
            "runs": runs,
        }))
    }

    /// Run every bound runbook's preflight in the background.
    fn check_readiness(&mut self) {
        if self.checking_readiness || self.config.bindings.is_empty() {
            return;
        }
        self.checking_readiness = true;
        let bindings = self.config.bindings.clone();
        let registry = Registry::with_aws(self.aws.clone());
        let results = self.readiness_results.clone();
        tokio::spawn(async move {
            let mut found = Vec::new();
            for b in bindings {
                let (runbook, ready, problems) = match load_bound(&b) {
                    Err(why) => (b.runbook.display().to_string(), false, vec![why]),
                    Ok((_, loaded)) => {
                        let checks = crate::actions::preflight::check(
                            &registry,
                            &loaded.runbook,
                            Mode::Failover,
                        )
                        .await;
                        let problems: Vec<String> = checks
                            .iter()
                            .filter_map(|c| match &c.readiness {
                                crate::actions::Readiness::WouldFail(why) => {
                                    Some(format!("step `{}` ({}): {why}", c.step, c.action))
                                }
                                _ => None,
                            })
                            .collect();
                        (loaded.runbook.name, problems.is_empty(), problems)
                    }
                };
                found.push(Readiness {
                    binding: b.name,
                    runbook,
                    ready,
                    problems,
                    checked_at: crate::engine::now(),
                });
            }
            let _ = results.send(found).await;
        });
    }

    /// Readiness results: export them, and tell when a runbook stops (or
    /// starts again) being ready.
    fn on_readiness(&mut self, results: Vec<Readiness>) {
        self.checking_readiness = false;
        for r in results {
            self.metrics
                .set_runbook_ready(&r.binding, &r.runbook, r.ready);
            let was = self.readiness.get(&r.binding).map(|p| p.ready);
            if was != Some(r.ready) {
                let (event, summary) = if r.ready {
                    (
                        "runbook-ready",
                        format!("binding `{}`: runbook {} is ready", r.binding, r.runbook),
                    )
                } else {
                    (
                        "runbook-not-ready",
                        format!(
                            "binding `{}`: runbook {} would fail now: {}",
                            r.binding,
                            r.runbook,
                            r.problems.join("; ")
                        ),
                    )
                };
                if r.ready {
                    info!(binding = %r.binding, "{summary}");
                } else {
                    warn!(binding = %r.binding, "{summary}");
                }
                self.notifier.send(Event {
                    event: event.into(),
                    at: r.checked_at.clone(),
                    binding: Some(r.binding.clone()),
                    region: None,
                    run: None,
                    summary,
                    detail: serde_json::to_value(&r).ok(),
                });
            }
            self.readiness.insert(r.binding.clone(), r);
        }
    }

    /// SIGHUP: re-read the config; an invalid one keeps the running one.
    fn reload(&mut self) -> bool {
        let text = std::fs::read(&self.config_path).unwrap_or_default();
        let loaded = load_config(&self.config_path).and_then(|new| {
            check_permissions(&self.config_path, &new, self.insecure)
                .map(|()| new)
                .map_err(|e| (e, Vec::new()))
        });
        match loaded {
            Ok(new) => {
                if new.state_dir != self.config.state_dir
                    || new.listen_metrics != self.config.listen_metrics
                    || new.control_socket != self.config.control_socket
                    || new.aws != self.config.aws
                    || new.regions != self.config.regions
                {
                    warn!("state_dir, listen, aws and regions change only on restart");
                }
                info!(
                    bindings = new.bindings.len(),
                    protected = new.protected.len(),
                    "config reloaded"
                );
                let c = &mut self.config;
                c.protected = new.protected;
                c.exposure_interval = new.exposure_interval;
                c.bindings = new.bindings;
                c.readiness_interval = new.readiness_interval;
                c.shutdown_grace = new.shutdown_grace;
                c.webhooks = new.webhooks.clone();
                c.jobs = new.jobs;
                let running: Vec<String> = self
                    .jobs
                    .iter()
                    .filter(|j| j.running)
                    .filter_map(|j| j.job_name().map(str::to_string))
                    .collect();
                self.notifier = Notifier::new(new.webhooks);
                self.readiness
                    .retain(|name, _| c.bindings.iter().any(|b| &b.name == name));
                self.jobs = scheduled(&self.config, &self.metrics, &running);
                self.audit_config(DecisionKind::ConfigReload, "SIGHUP", &text, None);
                true
            }
            Err((e, problems)) => {
                for p in &problems {
                    error!("{p}");
                }
                error!("keeping the running config: {e}");
                let mut why: Vec<String> = problems.iter().map(ToString::to_string).collect();
                why.push(e.to_string());
                self.audit_config(
                    DecisionKind::ConfigReloadRefused,
                    "SIGHUP",
                    &text,
                    Some(why),
                );
                false
            }
        }
    }

    /// Journal a config load for the audit trail: the file and its hash.
    fn audit_config(
        &self,
        kind: DecisionKind,
        who: &str,
        text: &[u8],
        problems: Option<Vec<String>>,
    ) {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(text);
        let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let d = decision(
            None,
            kind,
            None,
            who,
            Some(serde_json::json!({
                "file": self.config_path.display().to_string(),
                "sha256": sha256,
                "problems": problems,
            })),
        );
        if let Err(e) = self.journal.decide(&d) {
            error!("cannot journal the config load: {e}");
        }
    }

    /// Stop: no new step starts; running steps get the grace period to end
    /// (and be journaled); whatever is left resumes on the next start.
    async fn stop(&mut self) {
        let _ = self.drain.send(true);
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        for (id, mut task) in self.runs.drain() {
            if tokio::time::timeout_at(deadline, &mut task.handle)
                .await
                .is_err()
            {
                warn!(
                    run = %id,
                    "steps still running after the {:?} grace period are stopped; the run resumes on the next start",
                    self.config.shutdown_grace
                );
                task.handle.abort();
            }
        }
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: &Path, config: Config, insecure: bool) -> Result<(), DaemonError> {
    check_permissions(config_path, &config, insecure)?;
    // Handlers first: a signal from here on is handled, never fatal.
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let (journal, member, mut ha_events) = match &config.storage {
        crate::config::Storage::Embedded => (
            Arc::new(Journal::open(&config.state_dir, Access::Executor)?),
            None,
            None,
        ),
        crate::config::Storage::Etcd(settings) => {
            info!(
                name = %settings.name,
                place = %settings.place,
                endpoints = %settings.endpoints.join(","),
                "journal shared in etcd: campaigning for leadership"
            );
            let (member, events) = ha::Member::join(settings)?;
            (member.follower_journal(), Some(member), Some(events))
        }
    };
    let aws = AwsClients::load(&config.aws, Credentials::Chain).await;
    let metrics = Arc::new(Metrics::new());
    // Every AWS request the daemon makes (runs, drills, sweeps, readiness,
    // verification) shows at the next scrape.
    metrics.follow_api_calls(aws.shared_calls());
    let listener = tokio::net::TcpListener::bind(&config.listen_metrics)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen_metrics.clone(),
            source,
        })?;
    info!(address = %config.listen_metrics, "serving /metrics and /healthz");
    let control_listener = control::bind(&config.control_socket)?;
    info!(socket = %config.control_socket.display(), "control socket open");
    let served = Arc::clone(&metrics);
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = crate::metrics::serve(listener, served).await {
            error!("the /metrics listener stopped: {e}");
        }
    })];
    let (requests_tx, mut requests) = mpsc::channel::<Incoming>(16);
    tasks.push(tokio::spawn(control::serve(control_listener, requests_tx)));
    let (ended, mut ends) = mpsc::channel::<String>(64);
    let (readiness_results, mut readiness) = mpsc::channel::<Vec<Readiness>>(4);
    let (verify_results, mut verified) = mpsc::channel::<crate::verify::JobResult>(16);
    let (drain, _) = watch::channel(false);
    let socket = config.control_socket.clone();
    let mut daemon = Daemon {
        config_path: config_path.to_path_buf(),
        insecure,
        notifier: Notifier::new(config.webhooks.clone()),
        config,
        journal,
        aws,
        metrics,
        detectors: BTreeMap::new(),
        last: BTreeMap::new(),
        outages: BTreeMap::new(),
        runs: HashMap::new(),
        ended,
        drain,
        readiness: BTreeMap::new(),
        readiness_results,
        checking_readiness: false,
        jobs: Vec::new(),
        verify_results,
        ha: member,
    };
    daemon.metrics.set_leader(daemon.ha.is_none());
    daemon.jobs = scheduled(&daemon.config, &daemon.metrics, &[]);
    match trigger::paused(&daemon.journal) {
        Ok(paused) => daemon.metrics.set_paused(paused.is_some()),
        // A shared journal may be out of reach for now: the daemon probes
        // and keeps trying to join; it acts only once elected.
        Err(e) if daemon.ha.is_some() => warn!("cannot read the shared journal yet: {e}"),
        Err(e) => return Err(e.into()),
    }
    let text = std::fs::read(config_path).unwrap_or_default();
    let me = format!("{} (pid {})", DAEMON, std::process::id());
    daemon.audit_config(DecisionKind::DaemonStart, &me, &text, None);
    // Interrupted runs first, before anything new can be triggered (in a
    // cluster, by the leader once elected).
    if daemon.ha.is_none() {
        daemon.resume_runs()?;
        daemon.sweep()?;
    }
    // Region health: every probe on its own schedule, one detector each.
    let (results, mut outcomes) = mpsc::channel::<Outcome>(256);
    for (name, region) in &daemon.config.regions {
        daemon.detectors.insert(
            name.clone(),
            Detector::new(
                region.probes.iter().map(crate::probe::thresholds).collect(),
                region.quorum,
            ),
        );
        daemon
            .metrics
            .set_region_health(name, RegionState::Healthy.gauge());
        for p in &region.probes {
            if p.http.as_ref().is_some_and(|h| h.insecure_skip_verify) {
                warn!(
                    region = %name,
                    probe = %p.name,
                    "TLS certificates are NOT verified for this probe (insecure_skip_verify)"
                );
            }
        }
        tasks.extend(crate::probe::spawn(
            &daemon.aws,
            name,
            &region.probes,
            &results,
        ));
    }
    drop(results);
    notify("READY=1");
    info!("ready");
    let watchdog_on = watchdog_period().is_some();
    let mut watchdog =
        tokio::time::interval(watchdog_period().unwrap_or(Duration::from_secs(3600)));
    let mut exposure = tokio::time::interval(daemon.config.exposure_interval);
    let mut readiness_tick = tokio::time::interval(daemon.config.readiness_interval);
    let mut ha_tick = tokio::time::interval(
        daemon
            .ha
            .as_ref()
            .map_or(Duration::from_secs(3600), ha::Member::tick),
    );
    loop {
        tokio::select! {
            Some(event) = async { ha_events.as_mut()?.recv().await } => daemon.on_ha(event).await,
            _ = ha_tick.tick(), if daemon.ha.is_some() => daemon.ha_tick().await,
            Some(outcome) = outcomes.recv() => daemon.observe(outcome),
            Some(incoming) = requests.recv() => {
                let response = daemon.control(incoming.request, &incoming.who);
                let _ = incoming.reply.send(response);
            }
            Some(id) = ends.recv() => daemon.on_run_end(&id),
            Some(found) = readiness.recv() => daemon.on_readiness(found),
            Some(result) = verified.recv() => daemon.on_verified(result),
            _ = tokio::time::sleep(daemon.until_next_job()), if !daemon.jobs.is_empty() => {
                daemon.run_due_jobs();
            }
            _ = readiness_tick.tick() => daemon.check_readiness(),
            _ = exposure.tick(), if !daemon.config.protected.is_empty() => {
                let (aws, protected, metrics) =
                    (daemon.aws.clone(), daemon.config.protected.clone(), Arc::clone(&daemon.metrics));
                tokio::spawn(async move {
                    for e in crate::exposure::refresh(&aws, &protected, &metrics).await {
                        if e.verdict != "ok" {
                            warn!(resource = %e.resource, verdict = e.verdict, error = ?e.error, "RPO exposure");
                        }
                    }
                    metrics.record_api_calls(aws.calls());
                });
            }
            _ = watchdog.tick(), if watchdog_on => notify("WATCHDOG=1"),
            _ = hangup.recv() => {
                notify("RELOADING=1");
                let intervals = (daemon.config.exposure_interval, daemon.config.readiness_interval);
                if daemon.reload() {
                    if daemon.config.exposure_interval != intervals.0 {
                        exposure = tokio::time::interval(daemon.config.exposure_interval);
                    }
                    if daemon.config.readiness_interval != intervals.1 {
                        readiness_tick = tokio::time::interval(daemon.config.readiness_interval);
                    } else {
                        daemon.check_readiness();
                    }
                }
                notify("READY=1");
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    notify("STOPPING=1");
    info!("stopping: no new run or step starts; running steps get their grace period");
    for task in tasks {
        task.abort();
    }
    daemon.stop().await;
    daemon.leave().await;
    let _ = std::fs::remove_file(&socket);
    info!("stopped; unfinished runs resume on the next start");
    Ok(())
}
