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

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::aws::{AwsClients, Credentials};
use crate::config::{Binding, Config};
use crate::control::{self, Incoming};
use crate::detect::{Detector, RegionState};
use crate::journal::{Access, Decision, DecisionKind, Journal, JournalError};
use crate::metrics::Metrics;
use crate::notify::{Event, Notifier};
use crate::probe::Outcome;
use crate::trigger::{self, DAEMON, decision};

mod ha;
mod jobs;
mod outage;
mod process;
mod readiness;
mod requests;
mod runs;
mod status;
#[cfg(test)]
mod tests;

use jobs::{Scheduled, scheduled};
use process::watchdog_period;
pub use process::{check_permissions, load_config, notify};
use readiness::Readiness;
use runs::{RunTask, load_bound};
pub use runs::{journaled_side, on_journaled_sides};

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

/// What a detector watches: a region, or an Availability Zone of one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    region: String,
    zone: Option<String>,
    /// Indexes of its probes in the region's list (a detector's probe `j`
    /// is the region's `probes[j]`).
    probes: Vec<usize>,
}

/// The scopes a region's probes make: the region itself (every probe),
/// then each zone its probes watch (those probes).
fn scopes_of(region: &str, spec: &crate::config::RegionSpec) -> Vec<(String, Scope)> {
    let mut out = vec![(
        region.to_string(),
        Scope {
            region: region.to_string(),
            zone: None,
            probes: (0..spec.probes.len()).collect(),
        },
    )];
    let zones: std::collections::BTreeSet<&str> = spec
        .probes
        .iter()
        .filter_map(|p| p.zone.as_deref())
        .collect();
    for zone in zones {
        out.push((
            zone.to_string(),
            Scope {
                region: region.to_string(),
                zone: Some(zone.to_string()),
                probes: (0..spec.probes.len())
                    .filter(|&i| spec.probes[i].zone.as_deref() == Some(zone))
                    .collect(),
            },
        ));
    }
    out
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
    /// A detector per watched scope: each region, and each Availability
    /// Zone some probe watches (keyed by its name, `us-east-1a`).
    detectors: BTreeMap<String, Detector<String>>,
    /// What each scope of `detectors` is: its region, its zone, and its
    /// probes' indexes in the region's list.
    scopes: BTreeMap<String, Scope>,
    /// The last result of each probe, by region and index.
    last: BTreeMap<(String, usize), Outcome>,
    /// The last few results of each probe (oldest first), for the status.
    recent: BTreeMap<(String, usize), std::collections::VecDeque<bool>>,
    /// Each binding's drill warnings, as last told.
    drill_warned: BTreeMap<String, Vec<String>>,
    /// Each protected resource's RPO exposure, as last measured.
    exposures: Vec<crate::exposure::Exposure>,
    exposed: mpsc::Sender<Vec<crate::exposure::Exposure>>,
    /// The evidence of each region's declared outage, while it lasts.
    outages: BTreeMap<String, serde_json::Value>,
    /// Bindings an outage found in a maintenance window, with when it
    /// closes: weighed again then if their region is still down.
    maintenance_held: BTreeMap<String, jiff::Timestamp>,
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
    /// What RPO exposure measures now: the config's `protected` and each
    /// binding's, on the side the binding is on.
    fn watched(&self) -> Vec<crate::exposure::Watched> {
        crate::exposure::watched(&self.config.protected, &self.config.bindings)
    }

    fn binding(&self, name: &str) -> Option<Binding> {
        self.config
            .bindings
            .iter()
            .find(|b| b.name == name)
            .cloned()
    }

    /// Journal a decision, count it, log it and tell the webhooks. False if
    /// it could not be journaled (and so must not be acted on).
    fn record(&self, decision: &Decision, region: Option<&str>, summary: String) -> bool {
        if let Err(e) = self.journal.decide(decision) {
            error!(kind = %decision.kind, error = %e, "cannot journal a decision");
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

    /// SIGHUP: re-read the config; an invalid one keeps the running one.
    fn reload(&mut self) -> bool {
        let text = crate::input::read_bytes(&self.config_path).unwrap_or_default();
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
                // Bindings that left the config leave the metrics too.
                for gone in self
                    .config
                    .bindings
                    .iter()
                    .filter(|b| !new.bindings.iter().any(|n| n.name == b.name))
                {
                    let runbook = self.readiness.get(&gone.name).map(|r| r.runbook.as_str());
                    self.metrics.forget_binding(&gone.name, runbook);
                    self.drill_warned.remove(&gone.name);
                }
                let c = &mut self.config;
                c.protected = new.protected;
                c.exposure_interval = new.exposure_interval;
                c.bindings = new.bindings;
                self.apply_sides();
                let c = &mut self.config;
                c.readiness_interval = new.readiness_interval;
                c.drill_warning_after = new.drill_warning_after;
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
                error!(error = %e, "keeping the running config");
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
            error!(error = %e, "cannot journal the config load");
        }
    }

    /// Stop: no new step starts; running steps get the grace period to end
    /// (and be journaled); whatever is left resumes on the next start.
    /// The gauges a restart would otherwise leave empty until the next
    /// event: each runbook's last figures in each mode, each verification
    /// job's last result and last success. Counters start again from zero,
    /// as Prometheus expects of a restarted process.
    fn restore_metrics(&self) {
        let mut runs = match self.journal.runs() {
            Ok(runs) => runs,
            Err(e) => {
                warn!(error = %e, "cannot restore the metrics from the journal");
                return;
            }
        };
        runs.sort_by(|a, b| b.run.started_at.cmp(&a.run.started_at));
        let mut seen = std::collections::BTreeSet::new();
        for listed in runs.iter().filter(|r| !r.state.unfinished()) {
            if !seen.insert((listed.run.runbook.clone(), listed.run.mode.clone())) {
                continue;
            }
            match crate::measure::Figures::of_run(&self.journal, &listed.run.id) {
                Ok(figures) => self.metrics.set_figures(&figures),
                Err(e) => {
                    warn!(run_id = %listed.run.id, error = %e, "cannot restore a run's figures")
                }
            }
        }
        for job in &self.config.jobs {
            let Ok(results) = self.journal.verifications(&job.name) else {
                continue;
            };
            let Some(last) = results.last() else { continue };
            let ended = |r: &serde_json::Value| {
                let started = r["started_at"].as_str()?.parse::<jiff::Timestamp>().ok()?;
                Some(started.as_millisecond() as f64 / 1000.0 + r["duration_s"].as_f64()?)
            };
            let last_success = results
                .iter()
                .rev()
                .find(|r| r["ok"] == true)
                .and_then(ended);
            self.metrics.restore_verification(
                &job.name,
                last["ok"] == true,
                last["duration_s"].as_f64().unwrap_or_default(),
                last_success,
            );
        }
    }

    async fn stop(&mut self) {
        let _ = self.drain.send(true);
        notify("STATUS=draining: no new step starts; running steps get their grace period");
        // Draining may outlast systemd's stop timeout: extend it while
        // runs end (systemd wants the extension renewed before it lapses).
        notify("EXTEND_TIMEOUT_USEC=15000000");
        let extend = tokio::spawn(async {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            every.tick().await;
            loop {
                every.tick().await;
                notify("EXTEND_TIMEOUT_USEC=15000000");
            }
        });
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        for (id, mut task) in self.runs.drain() {
            if tokio::time::timeout_at(deadline, &mut task.handle)
                .await
                .is_err()
            {
                warn!(
                    run_id = %id,
                    "steps still running after the {:?} grace period are stopped; the run resumes on the next start",
                    self.config.shutdown_grace
                );
                task.handle.abort();
            }
        }
        extend.abort();
    }
}

/// Run the daemon until SIGTERM or SIGINT.
/// What the host process tells a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Reload the config (SIGHUP): an invalid one keeps the old.
    Reload,
    /// Drain and stop (SIGTERM, SIGINT).
    Stop,
}

/// Where probe results come from.
#[derive(Debug)]
pub enum Probes {
    /// The config's probes, each on its own schedule.
    Configured,
    /// Results the host feeds (the configured probes are not started): for
    /// the daemon's judgement tested in process, on tokio's paused clock.
    Fed(mpsc::Receiver<Outcome>),
}

/// What the host process gives a daemon: its listeners (bound), its
/// signals, its AWS clients and where its probe results come from. Every
/// timer of the daemon is tokio's, so a host may run it on a paused clock;
/// records carry wall-clock times.
pub struct Host {
    /// Serves `/metrics` and `/healthz`.
    pub metrics: tokio::net::TcpListener,
    /// The control socket, bound at the config's `control_socket`.
    pub control: tokio::net::UnixListener,
    /// Reload and stop.
    pub signals: mpsc::Receiver<Signal>,
    /// The AWS clients every run, probe and job uses.
    pub aws: AwsClients,
    /// Probe results.
    pub probes: Probes,
}

/// `lifeboat daemon` as a process: check the files it acts on, install
/// the signal handlers, bind the listeners, and run until SIGTERM or
/// SIGINT.
pub async fn serve(config_path: &Path, config: Config, insecure: bool) -> Result<(), DaemonError> {
    check_permissions(config_path, &config, insecure)?;
    // Handlers first: a signal from here on is handled, never fatal.
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let (signals_tx, signals) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = hangup.recv() => Signal::Reload,
                _ = terminate.recv() => Signal::Stop,
                _ = interrupt.recv() => Signal::Stop,
            };
            if signals_tx.send(signal).await.is_err() {
                return;
            }
        }
    });
    let metrics = tokio::net::TcpListener::bind(&config.listen_metrics)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen_metrics.clone(),
            source,
        })?;
    let control = control::bind(&config.control_socket)?;
    // Loaded when a probe, binding or job first asks for a client.
    let aws = AwsClients::deferred(&config.aws, Credentials::Chain);
    let host = Host {
        metrics,
        control,
        signals,
        aws,
        probes: Probes::Configured,
    };
    run(config_path, config, insecure, host).await
}

/// The daemon, on what its host gives it, until told to stop.
pub async fn run(
    config_path: &Path,
    config: Config,
    insecure: bool,
    host: Host,
) -> Result<(), DaemonError> {
    let Host {
        metrics: listener,
        control: control_listener,
        mut signals,
        aws,
        probes,
    } = host;
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
            if settings.archive.is_none() {
                warn!(
                    "storage.etcd.archive is not set: every run and decision stays in etcd, which grows without bound (set an S3 bucket, and history moves there after storage.etcd.history)"
                );
            }
            let (member, events) = ha::Member::join(settings, &config.aws)?;
            (member.follower_journal(), Some(member), Some(events))
        }
    };
    let metrics = Arc::new(Metrics::new());
    // Every AWS request the daemon makes (runs, drills, sweeps, readiness,
    // verification) shows at the next scrape.
    metrics.follow_api_calls(aws.shared_calls());
    if let Some(m) = &member {
        metrics.follow_ha(m.counts());
    }
    info!(address = %listener.local_addr().map_or_else(|_| config.listen_metrics.clone(), |a| a.to_string()), "serving the status page, /status, /metrics, /healthz and /leader");
    info!(socket = %config.control_socket.display(), "control socket open");
    let (requests_tx, mut requests) = mpsc::channel::<Incoming>(16);
    let served = Arc::clone(&metrics);
    let status = requests_tx.clone();
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = crate::web::serve(listener, served, status).await {
            error!(error = %e, "the HTTP listener stopped");
        }
    })];
    tasks.push(tokio::spawn(control::serve(control_listener, requests_tx)));
    let (ended, mut ends) = mpsc::channel::<String>(64);
    let (readiness_results, mut readiness) = mpsc::channel::<Vec<Readiness>>(4);
    let (verify_results, mut verified) = mpsc::channel::<crate::verify::JobResult>(16);
    let (exposed, mut exposures) = mpsc::channel::<Vec<crate::exposure::Exposure>>(4);
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
        scopes: BTreeMap::new(),
        last: BTreeMap::new(),
        recent: BTreeMap::new(),
        drill_warned: BTreeMap::new(),
        exposures: Vec::new(),
        exposed,
        outages: BTreeMap::new(),
        maintenance_held: BTreeMap::new(),
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
    daemon.restore_metrics();
    match trigger::paused(&daemon.journal) {
        Ok(paused) => daemon.metrics.set_paused(paused.is_some()),
        // A shared journal may be out of reach for now: the daemon probes
        // and keeps trying to join; it acts only once elected.
        Err(e) if daemon.ha.is_some() => warn!(error = %e, "cannot read the shared journal yet"),
        Err(e) => return Err(e.into()),
    }
    let text = crate::input::read_bytes(config_path).unwrap_or_default();
    let me = format!("{} (pid {})", DAEMON, std::process::id());
    daemon.audit_config(DecisionKind::DaemonStart, &me, &text, None);
    // Interrupted runs first, before anything new can be triggered (in a
    // cluster, by the leader once elected).
    daemon.apply_sides();
    if daemon.ha.is_none() {
        daemon.resume_runs()?;
        daemon.sweep()?;
    }
    // Region health: one probe task per region, one detector each.
    let (results, mut outcomes) = match probes {
        Probes::Configured => {
            let (results, outcomes) = mpsc::channel::<Outcome>(256);
            (Some(results), outcomes)
        }
        Probes::Fed(outcomes) => (None, outcomes),
    };
    for (name, region) in &daemon.config.regions {
        for (key, scope) in scopes_of(name, region) {
            let probes: Vec<&crate::config::probe::ProbeSpec> =
                scope.probes.iter().map(|&i| &region.probes[i]).collect();
            let detector = Detector::new(
                probes.iter().map(|p| crate::probe::thresholds(p)).collect(),
                // The region's quorum is the region's; a zone's, a majority
                // of its probes.
                if scope.zone.is_none() {
                    region.quorum
                } else {
                    None
                },
            );
            // The region's detector knows its probes' zones (a quorum within
            // one is not the region's outage); a zone's is of one zone.
            let detector = if scope.zone.is_none() {
                detector.with_zones(probes.iter().map(|p| p.zone.clone()).collect())
            } else {
                detector
            };
            match &scope.zone {
                None => daemon
                    .metrics
                    .set_region_health(name, RegionState::Healthy.gauge()),
                Some(zone) => {
                    daemon
                        .metrics
                        .set_zone_health(name, zone, RegionState::Healthy.gauge());
                }
            }
            daemon.detectors.insert(key.clone(), detector);
            daemon.scopes.insert(key, scope);
        }
        for p in &region.probes {
            if p.http.as_ref().is_some_and(|h| h.insecure_skip_verify) {
                warn!(
                    region = %name,
                    probe = %p.name,
                    "TLS certificates are NOT verified for this probe (insecure_skip_verify)"
                );
            }
        }
        if let Some(results) = &results {
            tasks.extend(crate::probe::spawn(
                &daemon.aws,
                name,
                &region.probes,
                results,
            ));
        }
    }
    drop(results);
    // An automatic failover checks its recovery region's probes first.
    for b in &daemon.config.bindings {
        let Ok((_, loaded)) = load_bound(b) else {
            continue;
        };
        let Some(regions) = &loaded.runbook.regions else {
            continue;
        };
        for to in regions.recovery() {
            if daemon
                .config
                .regions
                .get(to)
                .is_none_or(|r| r.probes.is_empty())
            {
                warn!(
                    binding = %b.name,
                    region = %to,
                    "no probe watches the region this binding fails into: its health cannot be checked before failing into it (give it probes under `regions`)"
                );
            }
        }
    }
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
    // The per-binding series (state, last drill and failover) follow
    // decisions and runs; they are read again at this pace, and at once
    // after a run ends or a readiness check.
    let mut bindings_tick = tokio::time::interval(Duration::from_secs(15));
    let mut retention_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + runs::RETENTION_FIRST,
        runs::RETENTION_EVERY,
    );
    let mut last_status = String::new();
    loop {
        let status = daemon.status_line();
        if status != last_status {
            notify(&format!("STATUS={status}"));
            last_status = status;
        }
        tokio::select! {
            Some(event) = async { ha_events.as_mut()?.recv().await } => daemon.on_ha(event).await,
            _ = ha_tick.tick(), if daemon.ha.is_some() => daemon.ha_tick().await,
            Some(outcome) = outcomes.recv() => daemon.observe(outcome),
            Some(incoming) = requests.recv() => daemon.answer(incoming),
            Some(id) = ends.recv() => daemon.on_run_end(&id),
            Some(found) = readiness.recv() => daemon.on_readiness(found),
            Some(result) = verified.recv() => daemon.on_verified(result),
            _ = tokio::time::sleep(daemon.until_next_job()), if !daemon.jobs.is_empty() => {
                daemon.run_due_jobs();
            }
            _ = readiness_tick.tick() => daemon.check_readiness(),
            _ = exposure.tick(), if !daemon.watched().is_empty() => {
                let (aws, watched, metrics, exposed) = (
                    daemon.aws.clone(),
                    daemon.watched(),
                    Arc::clone(&daemon.metrics),
                    daemon.exposed.clone(),
                );
                tokio::spawn(async move {
                    let measured = crate::exposure::refresh(&aws, &watched, &metrics).await;
                    for e in &measured {
                        if e.verdict != "ok" {
                            warn!(resource = %e.resource, verdict = e.verdict, error = ?e.error, "RPO exposure");
                        }
                    }
                    metrics.record_api_calls(aws.calls());
                    let _ = exposed.send(measured).await;
                });
            }
            Some(measured) = exposures.recv() => daemon.exposures = measured,
            _ = bindings_tick.tick(), if !daemon.config.bindings.is_empty() => {
                daemon.after_maintenance();
                daemon.refresh_bindings();
            }
            _ = watchdog.tick(), if watchdog_on => notify("WATCHDOG=1"),
            _ = retention_tick.tick() => daemon.retire(),
            signal = signals.recv() => {
                // Told to stop, or the host is gone.
                if signal != Some(Signal::Reload) {
                    break;
                }
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
