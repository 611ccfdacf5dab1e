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

use crate::aws::ApiCalls;
use crate::measure::Figures;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Requests and failed attempts counted so far, to add only what is new.
#[derive(Debug, Default)]
struct Seen {
    calls: BTreeMap<String, u64>,
    errors: BTreeMap<(String, String), u64>,
    /// Lease renewals answered and failed, fenced writes.
    ha: [u64; 3],
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

/// AWS request attempts from 5 ms to about 82 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The states a region can be in, as `lifeboat_region_state` labels them.
pub const REGION_STATES: [&str; 4] = ["healthy", "degraded", "down", "recovering"];

/// The states a binding can be in, as `lifeboat_binding_state` labels them.
pub const BINDING_STATES: [&str; 7] = [
    "armed",
    "running",
    "awaiting-approval",
    "cooling-down",
    "in-maintenance",
    "paused",
    "notify-only",
];

/// The prefix of every metric's name.
const PREFIX: &str = "lifeboat";

/// The registry being built, and the sample names of what it holds.
struct Families {
    registry: Registry,
    names: Vec<String>,
}

impl Families {
    /// Register `metric` as `name` (with `unit`'s suffix), noting the
    /// sample names its type gives it.
    fn add<M>(&mut self, name: &str, help: &str, unit: Option<Unit>, metric: M)
    where
        M: prometheus_client::metrics::TypedMetric + prometheus_client::registry::Metric,
    {
        use prometheus_client::metrics::MetricType;
        let mut full = format!("{PREFIX}_{name}");
        if let Some(unit) = &unit {
            full = format!("{full}_{}", unit.as_str());
        }
        let suffixes: &[&str] = match M::TYPE {
            MetricType::Counter => &["_total"],
            MetricType::Histogram => &["_bucket", "_sum", "_count"],
            MetricType::Info => &["_info"],
            _ => &[""],
        };
        self.names
            .extend(suffixes.iter().map(|s| format!("{full}{s}")));
        match unit {
            Some(unit) => self.registry.register_with_unit(name, help, unit, metric),
            None => self.registry.register(name, help, metric),
        }
    }
}

/// Every metric lifeboat exports.
pub struct Metrics {
    registry: Registry,
    /// Every sample name the registry can produce.
    names: Vec<String>,
    rto: Family<Labels, FloatGauge>,
    rpo: Family<Labels, FloatGauge>,
    rto_target: Family<Labels, FloatGauge>,
    rpo_target: Family<Labels, FloatGauge>,
    breaches: Family<Labels, Counter>,
    runs: Family<Labels, Counter>,
    step_duration: Family<Labels, Histogram, fn() -> Histogram>,
    exposure: Family<Labels, FloatGauge>,
    exposure_target: Family<Labels, FloatGauge>,
    /// The resources whose exposure is exported.
    exposed: std::sync::Mutex<std::collections::BTreeSet<String>>,
    api_calls: Family<Labels, Counter>,
    api_errors: Family<Labels, Counter>,
    region_health: Family<Labels, Gauge>,
    region_state: Family<Labels, Gauge>,
    zone_health: Family<Labels, Gauge>,
    binding_state: Family<Labels, Gauge>,
    drill_last_success: Family<Labels, FloatGauge>,
    failover_last_success: Family<Labels, FloatGauge>,
    changed_since_drill: Family<Labels, Gauge>,
    drill_max_age: Family<Labels, FloatGauge>,
    api_duration: Family<Labels, Histogram, fn() -> Histogram>,
    ha_renewals: Family<Labels, Counter>,
    ha_fenced: Counter,
    ha_elections: Family<Labels, Counter>,
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
    /// The etcd member's counts to count from at every scrape.
    ha: Mutex<Option<std::sync::Arc<crate::ha::etcd::Counts>>>,
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
        let mut families = Families {
            registry: Registry::with_prefix(PREFIX),
            names: Vec::new(),
        };
        let m = Metrics {
            registry: Registry::default(),
            names: Vec::new(),
            rto: Family::default(),
            rpo: Family::default(),
            rto_target: Family::default(),
            rpo_target: Family::default(),
            breaches: Family::default(),
            runs: Family::default(),
            step_duration: Family::new_with_constructor(step_buckets),
            exposure: Family::default(),
            exposure_target: Family::default(),
            exposed: std::sync::Mutex::default(),
            api_calls: Family::default(),
            api_errors: Family::default(),
            region_health: Family::default(),
            region_state: Family::default(),
            zone_health: Family::default(),
            binding_state: Family::default(),
            drill_last_success: Family::default(),
            failover_last_success: Family::default(),
            changed_since_drill: Family::default(),
            drill_max_age: Family::default(),
            api_duration: Family::new_with_constructor(request_buckets),
            ha_renewals: Family::default(),
            ha_fenced: Counter::default(),
            ha_elections: Family::default(),
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
            ha: Mutex::default(),
        };
        families.add(
            "rto_achieved",
            "RTO achieved by the last run of a runbook in a mode",
            Some(Unit::Seconds),
            m.rto.clone(),
        );
        families.add(
            "rpo_achieved",
            "RPO achieved by the last run of a runbook in a mode (absent when not measurable)",
            Some(Unit::Seconds),
            m.rpo.clone(),
        );
        families.add(
            "rto_target",
            "RTO target of a runbook",
            Some(Unit::Seconds),
            m.rto_target.clone(),
        );
        families.add(
            "rpo_target",
            "RPO target of a runbook",
            Some(Unit::Seconds),
            m.rpo_target.clone(),
        );
        families.add(
            "target_breaches",
            "Runs whose achieved RTO or RPO broke the runbook's target",
            None,
            m.breaches.clone(),
        );
        families.add("runs", "Runs ended, by outcome", None, m.runs.clone());
        families.add(
            "step_duration",
            "Duration of steps, by action",
            Some(Unit::Seconds),
            m.step_duration.clone(),
        );
        families.add(
            "rpo_exposure",
            "Now minus the newest recovery point of a protected resource in the DR region",
            Some(Unit::Seconds),
            m.exposure.clone(),
        );
        families.add(
            "rpo_exposure_target",
            "RPO target of a protected resource",
            Some(Unit::Seconds),
            m.exposure_target.clone(),
        );
        families.add(
            "aws_api_calls",
            "AWS API requests sent (each attempt), by service and operation",
            None,
            m.api_calls.clone(),
        );
        families.add(
            "aws_api_errors",
            "AWS API attempts that failed, by service, operation and code",
            None,
            m.api_errors.clone(),
        );
        families.add(
            "region_health",
            "Health of a region as judged by the daemon: 0 healthy, 1 degraded, 2 down, 3 recovering",
            None,
            m.region_health.clone(),
        );
        families.add(
            "region_state",
            "1 for the state a region is in as judged by the daemon (healthy, degraded, down, recovering), 0 for the others",
            None,
            m.region_state.clone(),
        );
        families.add(
            "zone_health",
            "Health of an Availability Zone whose probes the daemon watches: 0 healthy, 1 degraded, 2 down, 3 recovering",
            None,
            m.zone_health.clone(),
        );
        families.add(
            "binding_state",
            "1 for the state a binding is in (armed, running, awaiting-approval, cooling-down, paused, notify-only), 0 for the others",
            None,
            m.binding_state.clone(),
        );
        families.add(
            "drill_last_success_timestamp",
            "When a drill of a binding's runbook last succeeded (Unix time)",
            Some(Unit::Seconds),
            m.drill_last_success.clone(),
        );
        families.add(
            "failover_last_success_timestamp",
            "When a failover or switchover of a binding's runbook last succeeded (Unix time)",
            Some(Unit::Seconds),
            m.failover_last_success.clone(),
        );
        families.add(
            "runbook_changed_since_drill",
            "1 when a binding's runbook (by SHA-256) differs from the one its last successful drill ran, or it was never drilled",
            None,
            m.changed_since_drill.clone(),
        );
        families.add(
            "drill_max_age",
            "How long a binding may go without a successful drill (the daemon's drill_warning_after)",
            Some(Unit::Seconds),
            m.drill_max_age.clone(),
        );
        families.add(
            "aws_api_request_duration",
            "Duration of AWS API attempts, by service and operation",
            Some(Unit::Seconds),
            m.api_duration.clone(),
        );
        families.add(
            "ha_lease_renewals",
            "etcd lease keep-alives, by outcome (ok, failed)",
            None,
            m.ha_renewals.clone(),
        );
        families.add(
            "ha_fenced_writes",
            "Journal writes refused because this daemon no longer held the leadership that fenced them",
            None,
            m.ha_fenced.clone(),
        );
        families.add(
            "ha_leadership_changes",
            "Times this daemon became the leader (elected) or stopped being it (lost)",
            None,
            m.ha_elections.clone(),
        );
        families.add(
            "runbook_ready",
            "Whether every preflight of a bound runbook passed at its last check (1) or one would fail (0)",
            None,
            m.runbook_ready.clone(),
        );
        families.add(
            "trigger_decisions",
            "Decisions the daemon took on declared outages and requests, by binding and kind",
            None,
            m.decisions.clone(),
        );
        families.add(
            "paused",
            "1 while the kill switch stops automatic triggering",
            None,
            m.paused.clone(),
        );
        families.add(
            "probe_success",
            "1 if the probe's last check passed, 0 if it failed",
            None,
            m.probe_success.clone(),
        );
        families.add(
            "probe_duration",
            "How long the probe's last check took",
            Some(Unit::Seconds),
            m.probe_duration.clone(),
        );
        families.add(
            "build",
            "The lifeboat build serving these metrics (always 1)",
            None,
            prometheus_client::metrics::info::Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        families.add(
            "leader",
            "1 while this daemon is the one that decides and executes (always, without a shared journal)",
            None,
            m.leader.clone(),
        );
        families.add(
            "verify_last_success_timestamp",
            "When a verification job last passed (Unix time)",
            Some(Unit::Seconds),
            m.verify_last_success.clone(),
        );
        families.add(
            "verify_last_status",
            "Whether a verification job's last run passed (1) or failed (0)",
            None,
            m.verify_status.clone(),
        );
        families.add(
            "verify_duration",
            "How long a verification job's last run took",
            Some(Unit::Seconds),
            m.verify_duration.clone(),
        );
        families.add(
            "verify_expected_interval",
            "Time between a verification job's scheduled runs: alert when now minus the last success exceeds it",
            Some(Unit::Seconds),
            m.verify_interval.clone(),
        );
        families.add(
            "verify_skipped",
            "Scheduled verification runs skipped because the previous one was still running",
            None,
            m.verify_skipped.clone(),
        );
        families.add(
            "verify_restore_duration",
            "How long the last deep verification took to restore a resource (the backup-restore RTO of its data)",
            Some(Unit::Seconds),
            m.verify_restore.clone(),
        );
        Metrics {
            registry: families.registry,
            names: families.names,
            ..m
        }
    }

    /// Every sample name a scrape can hold (`lifeboat_runs_total`,
    /// `lifeboat_step_duration_seconds_bucket`, ...), whether or not it
    /// has a sample yet: what alert rules and dashboards may query.
    pub fn sample_names(&self) -> &[String] {
        &self.names
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
        if let Ok(mut exported) = self.exposed.lock() {
            exported.insert(resource.to_string());
        }
    }

    /// Withdraw the exposure of every resource not in `watched`: a
    /// resource no longer relied on (a replica promoted, then replaced by
    /// a reprotect's) must not keep its last figure, or alerts on it.
    pub fn retain_exposures(&self, watched: &[String]) {
        let Ok(mut exported) = self.exposed.lock() else {
            return;
        };
        exported.retain(|resource| {
            let kept = watched.contains(resource);
            if !kept {
                let l = labels(&[("resource", resource)]);
                self.exposure.remove(&l);
                self.exposure_target.remove(&l);
            }
            kept
        });
    }

    /// Set a region's health (0 healthy, 1 degraded, 2 down, 3 recovering).
    pub fn set_region_health(&self, region: &str, state: i64) {
        self.region_health
            .get_or_create(&labels(&[("region", region)]))
            .set(state);
        for (i, name) in REGION_STATES.iter().enumerate() {
            self.region_state
                .get_or_create(&labels(&[("region", region), ("state", name)]))
                .set(i64::from(i64::try_from(i).ok() == Some(state)));
        }
    }

    /// Set an Availability Zone's health (as `region_health` counts).
    pub fn set_zone_health(&self, region: &str, zone: &str, state: i64) {
        self.zone_health
            .get_or_create(&labels(&[("region", region), ("zone", zone)]))
            .set(state);
    }

    /// Set the state a binding is in (one of [`BINDING_STATES`]).
    pub fn set_binding_state(&self, binding: &str, state: &str) {
        for name in BINDING_STATES {
            self.binding_state
                .get_or_create(&labels(&[("binding", binding), ("state", name)]))
                .set(i64::from(name == state));
        }
    }

    /// Set when a binding's runbook last succeeded in a drill and in a
    /// failover or switchover (Unix seconds), and whether the runbook
    /// changed since that drill.
    pub fn set_binding_history(
        &self,
        binding: &str,
        drill: Option<f64>,
        failover: Option<f64>,
        changed_since_drill: bool,
    ) {
        let l = labels(&[("binding", binding)]);
        for (family, at) in [
            (&self.drill_last_success, drill),
            (&self.failover_last_success, failover),
        ] {
            match at {
                Some(at) => {
                    family.get_or_create(&l).set(at);
                }
                None => {
                    family.remove(&l);
                }
            }
        }
        self.changed_since_drill
            .get_or_create(&l)
            .set(i64::from(changed_since_drill));
    }

    /// Set how long a binding may go without a successful drill.
    pub fn set_drill_max_age(&self, binding: &str, seconds: f64) {
        self.drill_max_age
            .get_or_create(&labels(&[("binding", binding)]))
            .set(seconds);
    }

    /// Forget a binding's series (it left the config); `runbook` is the
    /// runbook its readiness was last reported for.
    pub fn forget_binding(&self, binding: &str, runbook: Option<&str>) {
        if let Some(runbook) = runbook {
            self.runbook_ready
                .remove(&labels(&[("binding", binding), ("runbook", runbook)]));
        }
        let l = labels(&[("binding", binding)]);
        for family in [&self.drill_last_success, &self.failover_last_success] {
            family.remove(&l);
        }
        self.changed_since_drill.remove(&l);
        self.drill_max_age.remove(&l);
        for name in BINDING_STATES {
            self.binding_state
                .remove(&labels(&[("binding", binding), ("state", name)]));
        }
    }

    /// Count this daemon becoming the leader (`elected`) or ceasing to
    /// be it (`lost`).
    pub fn count_leadership(&self, change: &str) {
        self.ha_elections
            .get_or_create(&labels(&[("change", change)]))
            .inc();
    }

    /// Count the etcd member's lease renewals and fenced writes at every
    /// scrape.
    pub fn follow_ha(&self, counts: std::sync::Arc<crate::ha::etcd::Counts>) {
        if let Ok(mut ha) = self.ha.lock() {
            *ha = Some(counts);
        }
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
                .get_or_create(&labels(&[("verification", name), ("resource", resource)]))
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
        let job = labels(&[("verification", name)]);
        self.verify_status.get_or_create(&job).set(i64::from(ok));
        self.verify_duration.get_or_create(&job).set(duration_s);
        if let Some(at) = last_success {
            self.verify_last_success.get_or_create(&job).set(at);
        }
    }

    /// Set how often a job is expected to pass.
    pub fn set_verify_interval(&self, job: &str, seconds: f64) {
        self.verify_interval
            .get_or_create(&labels(&[("verification", job)]))
            .set(seconds);
    }

    /// Count a scheduled run skipped.
    pub fn count_verify_skipped(&self, job: &str) {
        self.verify_skipped
            .get_or_create(&labels(&[("verification", job)]))
            .inc();
    }

    /// Count `calls` at every scrape (see [`Metrics::render`]), so the
    /// AWS request figures are current whenever they are read, whatever
    /// made the requests.
    pub fn follow_api_calls(&self, calls: std::sync::Arc<ApiCalls>) {
        let durations = self.api_duration.clone();
        // Refused only when these requests are timed already.
        let _ = calls.time_attempts(Box::new(move |key, seconds| {
            let (service, operation) = key.rsplit_once('.').unwrap_or(("unknown", key));
            durations
                .get_or_create(&labels(&[("service", service), ("operation", operation)]))
                .observe(seconds);
        }));
        if let Ok(mut source) = self.source.lock() {
            *source = Some(calls);
        }
    }

    fn record_ha(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(counts) = self.ha.lock().ok().and_then(|h| h.clone()) else {
            return;
        };
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = [
            counts.renewed.load(Relaxed),
            counts.renew_failed.load(Relaxed),
            counts.fenced.load(Relaxed),
        ];
        let [renewed, failed, fenced] = [0, 1, 2].map(|i| now[i].saturating_sub(seen.ha[i]));
        seen.ha = now;
        self.ha_renewals
            .get_or_create(&labels(&[("outcome", "ok")]))
            .inc_by(renewed);
        self.ha_renewals
            .get_or_create(&labels(&[("outcome", "failed")]))
            .inc_by(failed);
        self.ha_fenced.inc_by(fenced);
    }

    /// The OpenMetrics text exposition (after counting the followed
    /// requests).
    pub fn render(&self) -> String {
        let source = self.source.lock().ok().and_then(|s| s.clone());
        if let Some(calls) = source {
            self.record_api_calls(&calls);
        }
        self.record_ha();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Content type of what `render` writes: the OpenMetrics text format
/// (which ends in `# EOF`), as Prometheus negotiates it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
