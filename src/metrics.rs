//! Prometheus metrics, `lifeboat_*` with units in the names, and the
//! `/metrics` endpoint that serves them.
//!
//! What each run achieved (RTO, RPO, against the targets), how runs ended,
//! how long each action's steps took, the RPO exposure of protected
//! resources, the AWS requests made and how many failed, and each region's
//! health as the daemon judges it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::aws::ApiCalls;
use crate::measure::Figures;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Requests and failed attempts counted so far, to add only what is new.
#[derive(Debug, Default)]
struct Seen {
    calls: BTreeMap<String, u64>,
    errors: BTreeMap<(String, String), u64>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Step durations from 0.1 s to about 55 minutes.
fn step_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

/// Every metric lifeboat exports.
pub struct Metrics {
    registry: Registry,
    rto: Family<Labels, FloatGauge>,
    rpo: Family<Labels, FloatGauge>,
    rto_target: Family<Labels, FloatGauge>,
    rpo_target: Family<Labels, FloatGauge>,
    breaches: Family<Labels, Counter>,
    runs: Family<Labels, Counter>,
    step_duration: Family<Labels, Histogram, fn() -> Histogram>,
    exposure: Family<Labels, FloatGauge>,
    exposure_target: Family<Labels, FloatGauge>,
    api_calls: Family<Labels, Counter>,
    api_errors: Family<Labels, Counter>,
    region_health: Family<Labels, Gauge>,
    runbook_ready: Family<Labels, Gauge>,
    decisions: Family<Labels, Counter>,
    paused: Gauge,
    leader: Gauge,
    probe_success: Family<Labels, Gauge>,
    probe_duration: Family<Labels, FloatGauge>,
    verify_last_success: Family<Labels, FloatGauge>,
    verify_status: Family<Labels, Gauge>,
    verify_duration: Family<Labels, FloatGauge>,
    verify_interval: Family<Labels, FloatGauge>,
    verify_skipped: Family<Labels, Counter>,
    verify_restore: Family<Labels, FloatGauge>,
    /// What has been counted from the request counter so far.
    seen: Mutex<Seen>,
    /// A request counter to count from at every scrape.
    source: Mutex<Option<std::sync::Arc<ApiCalls>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry with every family, empty.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lifeboat");
        let m = Metrics {
            registry: Registry::default(),
            rto: Family::default(),
            rpo: Family::default(),
            rto_target: Family::default(),
            rpo_target: Family::default(),
            breaches: Family::default(),
            runs: Family::default(),
            step_duration: Family::new_with_constructor(step_buckets),
            exposure: Family::default(),
            exposure_target: Family::default(),
            api_calls: Family::default(),
            api_errors: Family::default(),
            region_health: Family::default(),
            runbook_ready: Family::default(),
            decisions: Family::default(),
            paused: Gauge::default(),
            leader: Gauge::default(),
            probe_success: Family::default(),
            probe_duration: Family::default(),
            verify_last_success: Family::default(),
            verify_status: Family::default(),
            verify_duration: Family::default(),
            verify_interval: Family::default(),
            verify_skipped: Family::default(),
            verify_restore: Family::default(),
            seen: Mutex::default(),
            source: Mutex::default(),
        };
        registry.register_with_unit(
            "rto_achieved",
            "RTO achieved by the last run of a runbook in a mode",
            Unit::Seconds,
            m.rto.clone(),
        );
        registry.register_with_unit(
            "rpo_achieved",
            "RPO achieved by the last run of a runbook in a mode (absent when not measurable)",
            Unit::Seconds,
            m.rpo.clone(),
        );
        registry.register_with_unit(
            "rto_target",
            "RTO target of a runbook",
            Unit::Seconds,
            m.rto_target.clone(),
        );
        registry.register_with_unit(
            "rpo_target",
            "RPO target of a runbook",
            Unit::Seconds,
            m.rpo_target.clone(),
        );
        registry.register(
            "target_breaches",
            "Runs whose achieved RTO or RPO broke the runbook's target",
            m.breaches.clone(),
        );
        registry.register("runs", "Runs ended, by outcome", m.runs.clone());
        registry.register_with_unit(
            "step_duration",
            "Duration of steps, by action",
            Unit::Seconds,
            m.step_duration.clone(),
        );
        registry.register_with_unit(
            "rpo_exposure",
            "Now minus the newest recovery point of a protected resource in the DR region",
            Unit::Seconds,
            m.exposure.clone(),
        );
        registry.register_with_unit(
            "rpo_exposure_target",
            "RPO target of a protected resource",
            Unit::Seconds,
            m.exposure_target.clone(),
        );
        registry.register(
            "aws_api_calls",
            "AWS API requests sent (each attempt), by service and operation",
            m.api_calls.clone(),
        );
        registry.register(
            "aws_api_errors",
            "AWS API attempts that failed, by service, operation and code",
            m.api_errors.clone(),
        );
        registry.register(
            "region_health",
            "Health of a region as judged by the daemon: 0 healthy, 1 degraded, 2 down, 3 recovering",
            m.region_health.clone(),
        );
        registry.register(
            "runbook_ready",
            "Whether every preflight of a bound runbook passed at its last check (1) or one would fail (0)",
            m.runbook_ready.clone(),
        );
        registry.register(
            "trigger_decisions",
            "Decisions the daemon took on declared outages and requests, by binding and kind",
            m.decisions.clone(),
        );
        registry.register(
            "paused",
            "1 while the kill switch stops automatic triggering",
            m.paused.clone(),
        );
        registry.register(
            "probe_success",
            "1 if the probe's last check passed, 0 if it failed",
            m.probe_success.clone(),
        );
        registry.register_with_unit(
            "probe_duration",
            "How long the probe's last check took",
            Unit::Seconds,
            m.probe_duration.clone(),
        );
        registry.register(
            "build",
            "The lifeboat build serving these metrics (always 1)",
            prometheus_client::metrics::info::Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        registry.register(
            "leader",
            "1 while this daemon is the one that decides and executes (always, without a shared journal)",
            m.leader.clone(),
        );
        registry.register_with_unit(
            "verify_last_success_timestamp",
            "When a verification job last passed (Unix time)",
            Unit::Seconds,
            m.verify_last_success.clone(),
        );
        registry.register(
            "verify_last_status",
            "Whether a verification job's last run passed (1) or failed (0)",
            m.verify_status.clone(),
        );
        registry.register_with_unit(
            "verify_duration",
            "How long a verification job's last run took",
            Unit::Seconds,
            m.verify_duration.clone(),
        );
        registry.register_with_unit(
            "verify_expected_interval",
            "Time between a verification job's scheduled runs: alert when now minus the last success exceeds it",
            Unit::Seconds,
            m.verify_interval.clone(),
        );
        registry.register(
            "verify_skipped",
            "Scheduled verification runs skipped because the previous one was still running",
            m.verify_skipped.clone(),
        );
        registry.register_with_unit(
            "verify_restore_duration",
            "How long the last deep verification took to restore a resource (the backup-restore RTO of its data)",
            Unit::Seconds,
            m.verify_restore.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Record a finished run's figures.
    pub fn record_run(&self, f: &Figures) {
        self.runs
            .get_or_create(&labels(&[
                ("runbook", &f.runbook),
                ("mode", &f.mode),
                ("outcome", f.state.as_str()),
            ]))
            .inc();
        for (objective, measured) in [("rto", &f.rto), ("rpo", &f.rpo)] {
            if measured.verdict == "breached" {
                self.breaches
                    .get_or_create(&labels(&[
                        ("runbook", &f.runbook),
                        ("mode", &f.mode),
                        ("objective", objective),
                    ]))
                    .inc();
            }
        }
        for s in &f.steps {
            if let Some(d) = s.duration_s {
                self.step_duration
                    .get_or_create(&labels(&[("action", &s.action)]))
                    .observe(d);
            }
        }
        self.set_figures(f);
    }

    /// Set the RTO and RPO gauges (achieved, target) from a run's figures,
    /// counting nothing: also how a starting daemon restores them from the
    /// journal's last runs, so they are not empty until the next one.
    pub fn set_figures(&self, f: &Figures) {
        let run = labels(&[("runbook", &f.runbook), ("mode", &f.mode)]);
        for (measured, achieved, target) in [
            (&f.rto, &self.rto, &self.rto_target),
            (&f.rpo, &self.rpo, &self.rpo_target),
        ] {
            if let Some(t) = measured.target_s {
                target
                    .get_or_create(&labels(&[("runbook", &f.runbook)]))
                    .set(t);
            }
            match measured.seconds {
                Some(s) => {
                    achieved.get_or_create(&run).set(s);
                }
                // Never a made-up figure: a run without one clears the last.
                None => {
                    achieved.remove(&run);
                }
            }
        }
    }

    /// Count the requests (and failed attempts) made through `calls`
    /// since the last time they were counted.
    pub fn record_api_calls(&self, calls: &ApiCalls) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let split = |key: &str| -> Labels {
            let (service, operation) = key.rsplit_once('.').unwrap_or(("unknown", key));
            labels(&[("service", service), ("operation", operation)])
        };
        for (key, n) in calls.snapshot() {
            let before = seen.calls.insert(key.clone(), n).unwrap_or(0);
            self.api_calls
                .get_or_create(&split(&key))
                .inc_by(n.saturating_sub(before));
        }
        for ((key, code), n) in calls.errors() {
            let before = seen
                .errors
                .insert((key.clone(), code.clone()), n)
                .unwrap_or(0);
            let mut l = split(&key);
            l.push(("code".to_string(), code));
            self.api_errors
                .get_or_create(&l)
                .inc_by(n.saturating_sub(before));
        }
    }

    /// Set a protected resource's RPO exposure and its target.
    pub fn set_exposure(&self, resource: &str, seconds: f64, target_s: Option<f64>) {
        let l = labels(&[("resource", resource)]);
        self.exposure.get_or_create(&l).set(seconds);
        if let Some(t) = target_s {
            self.exposure_target.get_or_create(&l).set(t);
        }
    }

    /// Set a region's health (0 healthy, 1 degraded, 2 down, 3 recovering).
    pub fn set_region_health(&self, region: &str, state: i64) {
        self.region_health
            .get_or_create(&labels(&[("region", region)]))
            .set(state);
    }

    /// Set whether a binding's runbook passed its preflights.
    pub fn set_runbook_ready(&self, binding: &str, runbook: &str, ready: bool) {
        self.runbook_ready
            .get_or_create(&labels(&[("binding", binding), ("runbook", runbook)]))
            .set(i64::from(ready));
    }

    /// Count a decision of the daemon.
    pub fn count_decision(&self, binding: &str, kind: &str) {
        self.decisions
            .get_or_create(&labels(&[("binding", binding), ("kind", kind)]))
            .inc();
    }

    /// Set the kill switch's state.
    pub fn set_paused(&self, paused: bool) {
        self.paused.set(i64::from(paused));
    }

    /// Record a probe's last check.
    pub fn record_probe(&self, region: &str, probe: &str, ok: bool, duration_s: f64) {
        let probe = labels(&[("region", region), ("probe", probe)]);
        self.probe_success.get_or_create(&probe).set(i64::from(ok));
        self.probe_duration.get_or_create(&probe).set(duration_s);
    }

    /// Whether this daemon leads, as last set.
    pub fn leads(&self) -> bool {
        self.leader.get() == 1
    }

    /// Whether automatic triggering is paused, as last set.
    pub fn paused(&self) -> bool {
        self.paused.get() == 1
    }

    /// Set whether this daemon leads (with a shared journal; a single
    /// daemon always does).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Record a verification job's result: whether it passed, how long it
    /// took, the seconds each deep restore took (by resource).
    pub fn record_verification(
        &self,
        name: &str,
        ok: bool,
        duration_s: f64,
        restores: &[(String, f64)],
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.restore_verification(name, ok, duration_s, ok.then_some(now));
        for (resource, seconds) in restores {
            self.verify_restore
                .get_or_create(&labels(&[("job", name), ("resource", resource)]))
                .set(*seconds);
        }
    }

    /// Set a job's gauges: its last result and duration, and when it
    /// last passed (Unix seconds), if it ever did: what a starting daemon
    /// restores from the journal.
    pub fn restore_verification(
        &self,
        name: &str,
        ok: bool,
        duration_s: f64,
        last_success: Option<f64>,
    ) {
        let job = labels(&[("job", name)]);
        self.verify_status.get_or_create(&job).set(i64::from(ok));
        self.verify_duration.get_or_create(&job).set(duration_s);
        if let Some(at) = last_success {
            self.verify_last_success.get_or_create(&job).set(at);
        }
    }

    /// Set how often a job is expected to pass.
    pub fn set_verify_interval(&self, job: &str, seconds: f64) {
        self.verify_interval
            .get_or_create(&labels(&[("job", job)]))
            .set(seconds);
    }

    /// Count a scheduled run skipped.
    pub fn count_verify_skipped(&self, job: &str) {
        self.verify_skipped
            .get_or_create(&labels(&[("job", job)]))
            .inc();
    }

    /// Count `calls` at every scrape (see [`Metrics::render`]), so the
    /// AWS request figures are current whenever they are read, whatever
    /// made the requests.
    pub fn follow_api_calls(&self, calls: std::sync::Arc<ApiCalls>) {
        if let Ok(mut source) = self.source.lock() {
            *source = Some(calls);
        }
    }

    /// The OpenMetrics text exposition (after counting the followed
    /// requests).
    pub fn render(&self) -> String {
        let source = self.source.lock().ok().and_then(|s| s.clone());
        if let Some(calls) = source {
            self.record_api_calls(&calls);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Content type of what `render` writes: the OpenMetrics text format
/// (which ends in `# EOF`), as Prometheus negotiates it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `GET /metrics` (and `GET /healthz`, which answers `ok` while the
/// process serves, and `GET /leader`, 200 only while this daemon leads) on `listener` until the task is dropped: a minimal
/// HTTP/1.1 responder, one request per connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = std::sync::Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let mut read = 0;
            // Read the request head (bounded; the body, if any, is ignored).
            while read < request.len() {
                match stream.read(&mut request[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if request[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&request[..read]);
            let line = head.lines().next().unwrap_or_default();
            let (status, kind, body) = match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["GET", "/metrics", _] => ("200 OK", CONTENT_TYPE, metrics.render()),
                ["GET", "/healthz", _] => ("200 OK", "text/plain", "ok\n".to_string()),
                // For load balancers and health checks in front of a
                // cluster, as Patroni's `/leader`: 200 only on the leader.
                ["GET", "/leader", _] if metrics.leads() => {
                    ("200 OK", "text/plain", "leader\n".to_string())
                }
                ["GET", "/leader", _] => (
                    "503 Service Unavailable",
                    "text/plain",
                    "not the leader\n".to_string(),
                ),
                ["GET", _, _] => ("404 Not Found", "text/plain", "not found\n".to_string()),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "GET /metrics only\n".to_string(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
