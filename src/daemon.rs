//! `lifeboat daemon`: the always-on process.
//!
//! Today it resumes interrupted runs from the journal, serves `/metrics`
//! and `/healthz`, refreshes the RPO exposure of protected resources on
//! its interval, records each run's figures, tells systemd when it is
//! ready and that it is alive, reloads its config on SIGHUP (an invalid
//! one keeps the old), and stops on SIGTERM (a run in flight is journaled
//! step by step and resumes on the next start). Probing regions and
//! triggering runbooks on a declared outage (`detect`) are built next.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::actions::Registry;
use crate::aws::{AwsClients, Credentials};
use crate::config::{self, Config};
use crate::detect::{Detector, RegionState};
use crate::diag::Diagnostic;
use crate::engine::journal::{Access, Journal, JournalError};
use crate::engine::{Engine, EngineOptions};
use crate::measure::Figures;
use crate::metrics::Metrics;
use crate::runbook::{self, MissingParams, Mode};

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
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr)),
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        warn!("sd_notify {state}: {e}");
    }
}

/// The watchdog interval systemd asked for, halved (ping twice per period).
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Resume every run the journal shows unfinished, each in its own task;
/// their figures go to `metrics` when they end.
fn resume_runs(
    journal: &Arc<Journal>,
    aws: &AwsClients,
    metrics: &Arc<Metrics>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, JournalError> {
    let mut tasks = Vec::new();
    for listed in journal.unfinished_runs()? {
        let id = listed.run.id.clone();
        // The listing leaves the runbook's text out; the run itself has it.
        let record = journal.run(&id)?;
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
        let mode = match record.run.mode.as_str() {
            "switchover" => Mode::Switchover,
            "drill" => Mode::Drill,
            _ => Mode::Failover,
        };
        info!(run = %id, runbook = %record.run.runbook, "resuming an interrupted run");
        let (journal, metrics, aws) = (Arc::clone(journal), Arc::clone(metrics), aws.clone());
        let registry = Registry::with_aws(aws.clone());
        let runbook = Arc::new(loaded.runbook);
        tasks.push(tokio::spawn(async move {
            let engine = Engine::new(
                Arc::clone(&journal),
                Arc::new(registry),
                EngineOptions::default(),
            );
            match engine.execute(&id, Arc::clone(&runbook), mode).await {
                Ok(outcome) => info!(run = %id, state = outcome.state(), "run ended"),
                Err(e) => error!(run = %id, "run stopped: {e}"),
            }
            if let (Ok(record), Ok(events), Ok(marks)) =
                (journal.run(&id), journal.events(&id), journal.marks(&id))
            {
                metrics.record_run(&Figures::compute(&record, &runbook, &events, &marks));
            }
            metrics.record_api_calls(aws.calls());
        }));
    }
    Ok(tasks)
}

/// Feed a probe result to its region's detector; log and export what changes.
fn observe(
    config: &Config,
    detectors: &mut std::collections::BTreeMap<String, Detector<String>>,
    metrics: &Metrics,
    outcome: crate::probe::Outcome,
) {
    let Some(detector) = detectors.get_mut(&outcome.region) else {
        return;
    };
    let probe = config
        .regions
        .get(&outcome.region)
        .and_then(|r| r.probes.get(outcome.probe))
        .map_or("?", |p| p.name.as_str());
    if !outcome.ok {
        info!(region = %outcome.region, probe, detail = %outcome.detail, "probe failed");
    }
    let Some(change) = detector.observe(outcome.probe, outcome.ok, outcome.at.clone()) else {
        return;
    };
    metrics.set_region_health(&outcome.region, change.to.gauge());
    match &change.declared {
        Some(incident) => warn!(
            region = %outcome.region,
            incident_start = %incident,
            failing = ?change.failing,
            "outage declared: a quorum of probes is failing"
        ),
        None => info!(
            region = %outcome.region,
            from = ?change.from,
            to = ?change.to,
            "region health changed"
        ),
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: &Path, config: Config) -> Result<(), DaemonError> {
    let mut config = config;
    let journal = Arc::new(Journal::open(&config.state_dir, Access::Executor)?);
    let aws = AwsClients::load(&config.aws, Credentials::Chain).await;
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(&config.listen_metrics)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen_metrics.clone(),
            source,
        })?;
    info!(address = %config.listen_metrics, "serving /metrics and /healthz");
    let server = tokio::spawn(crate::metrics::serve(listener, Arc::clone(&metrics)));
    let runs = resume_runs(&journal, &aws, &metrics)?;
    // Region health: every probe on its own schedule, one detector each.
    let (results, mut outcomes) = tokio::sync::mpsc::channel::<crate::probe::Outcome>(256);
    let mut detectors = std::collections::BTreeMap::new();
    let mut probes = Vec::new();
    for (name, region) in &config.regions {
        detectors.insert(
            name.clone(),
            Detector::new(
                region.probes.iter().map(crate::probe::thresholds).collect(),
                region.quorum,
            ),
        );
        metrics.set_region_health(name, RegionState::Healthy.gauge());
        probes.extend(crate::probe::spawn(&aws, name, &region.probes, &results));
    }
    drop(results);
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    notify("READY=1");
    info!("ready");
    let watchdog_on = watchdog_period().is_some();
    let mut watchdog =
        tokio::time::interval(watchdog_period().unwrap_or(Duration::from_secs(3600)));
    let mut exposure = tokio::time::interval(config.exposure_interval);
    loop {
        tokio::select! {
            _ = exposure.tick(), if !config.protected.is_empty() => {
                for e in crate::exposure::refresh(&aws, &config.protected, &metrics).await {
                    if e.verdict != "ok" {
                        warn!(resource = %e.resource, verdict = e.verdict, error = ?e.error, "RPO exposure");
                    }
                }
            }
            Some(outcome) = outcomes.recv() => {
                observe(&config, &mut detectors, &metrics, outcome);
            }
            _ = watchdog.tick(), if watchdog_on => {
                notify("WATCHDOG=1");
            }
            _ = hangup.recv() => {
                notify("RELOADING=1");
                match load_config(config_path) {
                    Ok(new) => {
                        if new.state_dir != config.state_dir
                            || new.listen_metrics != config.listen_metrics
                            || new.aws != config.aws
                            || new.regions != config.regions
                        {
                            warn!("state_dir, listen, aws and regions change only on restart");
                        }
                        info!(protected = new.protected.len(), "config reloaded");
                        if new.exposure_interval != config.exposure_interval {
                            exposure = tokio::time::interval(new.exposure_interval);
                        }
                        config.protected = new.protected;
                        config.exposure_interval = new.exposure_interval;
                    }
                    Err((e, problems)) => {
                        for p in &problems {
                            error!("{p}");
                        }
                        error!("keeping the running config: {e}");
                    }
                }
                notify("READY=1");
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    notify("STOPPING=1");
    info!("stopping; a run in flight resumes on the next start");
    server.abort();
    for task in probes {
        task.abort();
    }
    for task in runs {
        task.abort();
    }
    Ok(())
}
