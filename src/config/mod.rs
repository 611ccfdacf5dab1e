//! The daemon's config file (`/etc/lifeboat/lifeboat.yaml`): typed, checked
//! with located problems like runbooks, every problem reported at once.
//!
//! It holds the settings every part of lifeboat shares (state directory,
//! AWS access, logging) and the daemon's own: regions and their probes,
//! bindings of regions to runbooks with a triggering policy, cooldown,
//! readiness checks, notification webhooks, protected resources, listeners.
//! A binding's runbook is loaded and checked with the config, so a daemon
//! never starts (or reloads) with a failover it could not run.

pub mod ha;
pub mod probe;
pub mod verify;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Diagnostics};
use crate::duration::HumanDuration;
use crate::yaml::{self, Checked, Spanned, Value};

/// Where the daemon keeps its journal when the config does not say.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lifeboat";

/// How lifeboat reaches AWS (derived from the config file and the CLI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// Named profile.
    pub profile: Option<String>,
    /// Endpoint for every service (emulators, proxies).
    pub endpoint_url: Option<String>,
    /// Whether requests are paced along AWS's documented request buckets.
    pub pacing: Pacing,
}

/// How lifeboat paces its AWS requests (see `src/pacing.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// Along the request buckets AWS documents by default (EC2, RDS,
    /// Route 53): never faster than AWS refills them.
    #[default]
    Documented,
    /// Not at all (an account whose limits AWS raised); throttles are
    /// then only retried.
    Off,
}

/// The JSON Schema of the config file.
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator.into_root_schema_for::<ConfigSpec>().to_value()
}

/// The config file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lifeboat daemon config")]
pub struct ConfigSpec {
    /// Directory of the journal and other state; default `/var/lib/lifeboat`.
    pub state_dir: Option<Spanned<String>>,
    /// How lifeboat reaches AWS.
    pub aws: Option<Checked<AwsSpec>>,
    /// Logging.
    pub log: Option<Checked<LogSpec>>,
    /// Resources whose RPO exposure (now minus their newest recovery point
    /// in the DR region) is watched and exported.
    #[serde(default)]
    pub protected: Vec<Spanned<Checked<Protected>>>,
    /// How often RPO exposure is refreshed; default `5m`.
    pub exposure_interval: Option<Spanned<HumanDuration>>,
    /// Where the daemon listens.
    pub listen: Option<Checked<ListenSpec>>,
    /// Regions the daemon watches, by name, each with its probes.
    #[serde(default)]
    pub regions: std::collections::BTreeMap<String, Spanned<Checked<RegionSpec>>>,
    /// What to do when a watched region is declared down, by binding name.
    #[serde(default)]
    pub bindings: std::collections::BTreeMap<String, Spanned<Checked<BindingSpec>>>,
    /// After a binding's run, further automatic runs wait for `lifeboat ack
    /// BINDING` and, after that, until this long since the run ended;
    /// default `1h`. A binding may set its own.
    pub cooldown: Option<Spanned<HumanDuration>>,
    /// How often every bound runbook's preflight runs; default `30m`.
    pub readiness_interval: Option<Spanned<HumanDuration>>,
    /// A binding whose runbook has had no successful drill for this long
    /// (or never) is warned about in the status, the metrics and the
    /// webhooks; default `90d`.
    pub drill_warning_after: Option<Spanned<HumanDuration>>,
    /// On SIGTERM, how long running steps get to reach their end before the
    /// daemon exits (they resume on the next start); default `60s`.
    pub shutdown_grace: Option<Spanned<HumanDuration>>,
    /// Webhooks told of outages, decisions, runs and readiness changes.
    #[serde(default)]
    pub notify: Vec<Spanned<Checked<WebhookSpec>>>,
    /// Backup verification jobs.
    #[serde(default)]
    pub verify: Vec<Spanned<Checked<verify::JobSpec>>>,
    /// Where the journal lives: `embedded` (SQLite in `state_dir`, the
    /// default) or a shared etcd cluster for several daemons.
    pub storage: Option<Spanned<Checked<StorageSpec>>>,
}

/// Which journal the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// SQLite in the state directory; one daemon.
    #[default]
    Embedded,
    /// A shared etcd cluster; several daemons, one elected leader.
    Etcd,
}

/// The `storage` section.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// `embedded` or `etcd`.
    pub backend: StorageBackend,
    /// The etcd cluster and this daemon's part in it (`backend: etcd`).
    pub etcd: Option<EtcdSpec>,
    /// `embedded`: how long runs that ended, past decisions and
    /// verification results are kept (the last decision of each kind and
    /// each job's last result always are); default forever.
    pub keep: Option<Spanned<HumanDuration>>,
}

/// Where the etcd journal's history goes: an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    /// The bucket (versioned, and kept by its lifecycle rules, as the
    /// audit requires).
    pub bucket: String,
    /// Key prefix of the journal's objects; default `lifeboat/journal/`.
    #[serde(default = "default_archive_prefix")]
    pub prefix: String,
    /// The bucket's region.
    pub region: String,
}

fn default_archive_prefix() -> String {
    "lifeboat/journal/".into()
}

/// How long ended runs stay in etcd unless the config says.
pub const DEFAULT_ETCD_HISTORY: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// TLS towards etcd.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// CA certificate (PEM) the members' certificates are checked against.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM), with `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the members' certificates carry, when it is not the
    /// endpoints' host.
    pub server_name: Option<String>,
}

/// `storage.etcd`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdSpec {
    /// Member URLs, `http://` or `https://`.
    pub endpoints: Spanned<Vec<Spanned<String>>>,
    /// Key prefix of everything lifeboat stores; default `/lifeboat`.
    pub prefix: Option<Spanned<String>>,
    /// TLS; needed for `https://` endpoints with a private CA.
    pub tls: Option<Spanned<EtcdTls>>,
    /// TTL of the lease a daemon holds (its leadership lasts no longer
    /// without renewal); default `10s`.
    pub lease_ttl: Option<Spanned<HumanDuration>>,
    /// Bound of one request (a step boundary's journal write); default `2s`.
    pub request_timeout: Option<Spanned<HumanDuration>>,
    /// This daemon's name among the others; default the host name.
    pub name: Option<String>,
    /// Where this daemon runs (a region, or a witness site): a region is
    /// down only when daemons in `quorum_places` places agree.
    pub place: Spanned<String>,
    /// How many distinct places must report a region down; default 2.
    pub quorum_places: Option<Spanned<usize>>,
    /// How long runs that ended (and past decisions, requests and results)
    /// stay in etcd before the leader moves them to `archive`; default `7d`.
    pub history: Option<Spanned<HumanDuration>>,
    /// The S3 bucket the history moves to. Without one nothing leaves etcd
    /// (and the daemon warns that the journal grows).
    pub archive: Option<Spanned<ArchiveSettings>>,
}

/// A checked `storage.etcd`.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdSettings {
    /// Member URLs.
    pub endpoints: Vec<String>,
    /// Key prefix.
    pub prefix: String,
    /// TLS.
    pub tls: Option<EtcdTls>,
    /// Lease TTL.
    pub lease_ttl: std::time::Duration,
    /// Request bound.
    pub request_timeout: std::time::Duration,
    /// This daemon's name.
    pub name: String,
    /// Where it runs.
    pub place: String,
    /// Places that must agree on an outage.
    pub quorum_places: usize,
    /// How long ended runs stay in etcd.
    pub history: std::time::Duration,
    /// Where they go then.
    pub archive: Option<ArchiveSettings>,
}

/// Where the journal lives.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Storage {
    /// SQLite in the state directory.
    #[default]
    Embedded,
    /// Shared in etcd.
    Etcd(Box<EtcdSettings>),
}

/// Lease TTL unless the config says.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// etcd request bound unless the config says.
pub const DEFAULT_ETCD_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// This host's name, the default name of a daemon.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lifeboat".into())
}

/// Check `storage`, including the timing rule against the probes.
fn check_storage(
    spec: Option<Spanned<Checked<StorageSpec>>>,
    regions: &std::collections::BTreeMap<String, RegionSpec>,
    diags: &mut Diagnostics,
) -> (Storage, Option<std::time::Duration>) {
    let Some(spanned) = spec else {
        return (Storage::Embedded, None);
    };
    let loc = spanned.loc;
    let Some(spec) = spanned.value.0 else {
        return (Storage::Embedded, None);
    };
    let mut problem = |at: crate::yaml::Loc, message: String| diags.error(at, None, message);
    let keep = spec.keep.map(|k| (k.loc, k.value.get()));
    if let Some((at, _)) = keep
        && spec.backend == StorageBackend::Etcd
    {
        problem(
            at,
            "`storage.keep` is for the embedded journal; the etcd journal moves its history to `storage.etcd.archive` after `storage.etcd.history` (keep the bucket with its lifecycle rules)".into(),
        );
    }
    if let Some((at, d)) = keep
        && d < std::time::Duration::from_secs(86_400)
    {
        problem(
            at,
            format!(
                "`storage.keep` {d:?} is under a day: the audit of a failover would be gone before its review"
            ),
        );
    }
    let storage = match (spec.backend, spec.etcd) {
        (StorageBackend::Embedded, None) => Storage::Embedded,
        (StorageBackend::Embedded, Some(_)) => {
            problem(
                loc,
                "`storage.etcd` is set but `backend` is `embedded`; say `backend: etcd`".into(),
            );
            Storage::Embedded
        }
        (StorageBackend::Etcd, None) => {
            problem(
                loc,
                "`backend: etcd` needs `storage.etcd` with `endpoints` and `place`".into(),
            );
            Storage::Embedded
        }
        (StorageBackend::Etcd, Some(e)) => {
            if e.endpoints.value.is_empty() {
                problem(
                    e.endpoints.loc,
                    "`storage.etcd.endpoints` names no member".into(),
                );
            }
            for url in &e.endpoints.value {
                if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
                    problem(
                        url.loc,
                        format!(
                            "`storage.etcd.endpoints`: `{}` must start with http:// or https://",
                            url.value
                        ),
                    );
                }
            }
            if let Some(tls) = &e.tls
                && tls.value.cert_file.is_some() != tls.value.key_file.is_some()
            {
                problem(
                    tls.loc,
                    "`storage.etcd.tls`: `cert_file` and `key_file` go together".into(),
                );
            }
            if e.place.value.trim().is_empty() {
                problem(
                    e.place.loc,
                    "`storage.etcd.place` is empty: say where this daemon runs".into(),
                );
            }
            let quorum_places = e.quorum_places.as_ref().map_or(2, |q| q.value);
            if let Some(q) = &e.quorum_places
                && q.value == 0
            {
                problem(
                    q.loc,
                    "`storage.etcd.quorum_places` must be at least 1".into(),
                );
            }
            let prefix = e
                .prefix
                .unwrap_or_else(|| Spanned::synthetic("/lifeboat".into()));
            if !prefix.value.starts_with('/') || prefix.value.trim_end_matches('/').is_empty() {
                problem(
                    prefix.loc,
                    format!(
                        "`storage.etcd.prefix` must start with / and name something, found `{}`",
                        prefix.value
                    ),
                );
            }
            // The timing rule's problems are located at the lease.
            let ttl_loc = e.lease_ttl.as_ref().map_or(loc, |t| t.loc);
            let lease_ttl = e.lease_ttl.map_or(DEFAULT_LEASE_TTL, |t| t.value.get());
            let request_timeout = e
                .request_timeout
                .map_or(DEFAULT_ETCD_REQUEST_TIMEOUT, |t| t.value.get());
            if lease_ttl.subsec_nanos() != 0 {
                problem(
                    ttl_loc,
                    format!(
                        "`storage.etcd.lease_ttl` {lease_ttl:?}: etcd leases are whole seconds"
                    ),
                );
            }
            let fastest = regions
                .values()
                .flat_map(|r| r.probes.iter())
                .map(|p| (p.name.clone(), p.interval.get() * p.failure_threshold))
                .min_by_key(|(_, d)| *d);
            for p in ha::timing_problems(lease_ttl, request_timeout, fastest) {
                problem(ttl_loc, format!("storage.etcd timing rule: {p}"));
            }
            let history = e.history.map_or(DEFAULT_ETCD_HISTORY, |h| {
                if h.value.get() < std::time::Duration::from_secs(3600) {
                    problem(
                        h.loc,
                        format!(
                            "`storage.etcd.history` {:?} is under an hour: recent runs belong in etcd, where the status page and the triggers read them",
                            h.value.get()
                        ),
                    );
                }
                h.value.get()
            });
            if let Some(a) = &e.archive {
                if a.value.bucket.trim().is_empty() || a.value.region.trim().is_empty() {
                    problem(
                        a.loc,
                        "`storage.etcd.archive` needs a `bucket` and its `region`".into(),
                    );
                }
                if !a.value.prefix.is_empty() && !a.value.prefix.ends_with('/') {
                    problem(
                        a.loc,
                        format!(
                            "`storage.etcd.archive.prefix` `{}` must end with /",
                            a.value.prefix
                        ),
                    );
                }
            }
            Storage::Etcd(Box::new(EtcdSettings {
                endpoints: e.endpoints.value.into_iter().map(|u| u.value).collect(),
                prefix: prefix.value,
                tls: e.tls.map(|t| t.value),
                lease_ttl,
                request_timeout,
                name: e.name.unwrap_or_else(host_name),
                place: e.place.value,
                quorum_places,
                history,
                archive: e.archive.map(|a| a.value),
            }))
        }
    };
    (storage, keep.map(|(_, d)| d))
}

/// What the daemon does when a binding's region is declared down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Start the runbook at once.
    Auto,
    /// Notify, and start it when a human runs `lifeboat approve BINDING`.
    Approve,
    /// Only notify.
    Notify,
}

impl Policy {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Auto => "auto",
            Policy::Approve => "approve",
            Policy::Notify => "notify",
        }
    }
}

/// A region bound to the runbook that recovers from its loss.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    /// The watched region (a key of `regions`).
    pub region: String,
    /// An Availability Zone of the region (its name): the binding runs on
    /// that zone's outage (its probes failing while the rest of the region
    /// answers), with a `strategy: multi-az` runbook, which is given the
    /// zone as its `zone` parameter.
    pub zone: Option<String>,
    /// The runbook file; relative paths are relative to the config file.
    pub runbook: String,
    /// Runbook parameters.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// `auto`, `approve` or `notify`.
    pub policy: Policy,
    /// Cooldown of this binding; default: the top-level `cooldown`.
    pub cooldown: Option<HumanDuration>,
    /// Drill the runbook on a schedule (cron); one drill at a time.
    pub drill: Option<DrillSchedule>,
    /// The most data a failover this binding starts may lose without a
    /// human: past it (or when the loss cannot be told) each promotion
    /// waits for `lifeboat approve RUN STEP`. Needs a runbook whose
    /// `recovery_point` is read before it promotes (`rds.replica_lag`,
    /// `s3.newest_object`).
    pub max_data_loss: Option<HumanDuration>,
    /// When nothing starts automatically for this binding (detection goes
    /// on; an outage still declared at a window's end is weighed then).
    #[serde(default)]
    pub maintenance: Vec<MaintenanceSpec>,
    /// The binding for the other topology: what it watches and runs once a
    /// reprotect run (`lifeboat reprotect BINDING`) has rebuilt the
    /// protection the other way after a failover; the next reprotect turns
    /// it back.
    pub reprotected: Option<SideSpec>,
    /// The recovery points this side of the binding relies on (its
    /// replica, its snapshots), measured for RPO exposure beside the
    /// top-level `protected` while the binding is on this side.
    #[serde(default)]
    pub protected: Vec<Spanned<Checked<Protected>>>,
}

/// One side of a binding: what it watches and what it runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideSpec {
    /// The watched region (a key of `regions`).
    pub region: String,
    /// An Availability Zone of the region, for a zonal binding.
    pub zone: Option<String>,
    /// The runbook file; relative paths are relative to the config file.
    pub runbook: String,
    /// Runbook parameters.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// The recovery points this side relies on (see
    /// `BindingSpec::protected`): what RPO exposure measures once the
    /// binding is reprotected.
    #[serde(default)]
    pub protected: Vec<Spanned<Checked<Protected>>>,
}

/// One side of a checked binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// The watched region.
    pub region: String,
    /// The watched zone, for a zonal side.
    pub zone: Option<String>,
    /// The runbook file.
    pub runbook: PathBuf,
    /// Runbook parameters.
    pub params: Vec<(String, String)>,
    /// Its recovery points, for RPO exposure.
    pub protected: Vec<Protected>,
}

/// A binding's maintenance window, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    /// When each window opens: a cron expression (five fields, or six with
    /// seconds first).
    pub schedule: String,
    /// Its time zone (IANA name); default UTC.
    pub timezone: Option<String>,
    /// How long each window lasts.
    pub duration: HumanDuration,
}

/// A binding's maintenance window: opening on `schedule`, for `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// The cron expression.
    pub schedule: String,
    /// Its time zone.
    pub timezone: Option<String>,
    /// How long each window lasts.
    pub duration: std::time::Duration,
}

impl Maintenance {
    /// When the window open at `at` closes, if one is open.
    pub fn open_until(&self, at: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let schedule = verify::Schedule::parse(&self.schedule, self.timezone.as_deref()).ok()?;
        // The first opening after `at - duration` is the one still open
        // at `at`, if it is not after `at`.
        let opened = schedule.next_after(at.checked_sub(self.duration).ok()?)?;
        let closes = opened.checked_add(self.duration).ok()?;
        (opened <= at && at < closes).then_some(closes)
    }
}

/// When a binding's runbook is drilled.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSchedule {
    /// A cron expression (five fields, or six with seconds first).
    pub schedule: String,
    /// Its time zone (IANA name); default UTC.
    pub timezone: Option<String>,
}

/// A checked binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Its name.
    pub name: String,
    /// The watched region.
    pub region: String,
    /// The watched Availability Zone of the region, for a zonal binding.
    pub zone: Option<String>,
    /// The runbook file.
    pub runbook: PathBuf,
    /// Runbook parameters.
    pub params: Vec<(String, String)>,
    /// What to do on an outage.
    pub policy: Policy,
    /// Minimum time between the end of a run and the next automatic one.
    pub cooldown: std::time::Duration,
    /// When the runbook is drilled.
    pub drill: Option<DrillSchedule>,
    /// The most data its failovers may lose without a human.
    pub max_data_loss: Option<std::time::Duration>,
    /// Its maintenance windows.
    pub maintenance: Vec<Maintenance>,
    /// Its other side (see `BindingSpec::reprotected`).
    pub other_side: Option<Side>,
    /// Whether it acts as its `reprotected` side now.
    pub reprotected: bool,
    /// The recovery points of the side it is on, for RPO exposure.
    pub protected: Vec<Protected>,
}

impl Binding {
    /// The binding acting as its other side, which becomes the side it
    /// keeps (so that flipping twice is the binding as it was); `None`
    /// without one.
    pub fn flipped(&self) -> Option<Binding> {
        let other = self.other_side.clone()?;
        let here = Side {
            region: self.region.clone(),
            zone: self.zone.clone(),
            runbook: self.runbook.clone(),
            params: self.params.clone(),
            protected: self.protected.clone(),
        };
        Some(Binding {
            region: other.region,
            zone: other.zone,
            runbook: other.runbook,
            params: other.params,
            protected: other.protected,
            other_side: Some(here),
            reprotected: !self.reprotected,
            ..self.clone()
        })
    }

    /// What the binding watches: its zone, or else its region (the name
    /// of the outage it runs on).
    pub fn scope(&self) -> &str {
        self.zone.as_deref().unwrap_or(&self.region)
    }

    /// When the maintenance window open at `at` closes (the latest, if
    /// several are open), if one is.
    pub fn in_maintenance(&self, at: jiff::Timestamp) -> Option<jiff::Timestamp> {
        self.maintenance
            .iter()
            .filter_map(|m| m.open_until(at))
            .max()
    }
}

/// A webhook: events are POSTed to it as JSON.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The URL; `https://` unless `allow_http` is set.
    pub url: String,
    /// Accept a plain `http://` URL (a receiver on the same host).
    #[serde(default)]
    pub allow_http: bool,
    /// The body the receiver expects; default `generic`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// A file holding the webhook's secret (absolute path, e.g. a systemd
    /// credential): for `generic`, the key every body is signed with
    /// (HMAC-SHA256); for `pagerduty`, the integration's routing key.
    pub secret_file: Option<String>,
}

/// What a webhook's body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The event as lifeboat's own JSON object, signed with
    /// `X-Lifeboat-Signature` when a secret is set.
    #[default]
    Generic,
    /// A Slack incoming webhook (or a compatible receiver: Mattermost,
    /// Rocket.Chat): `{"text": ...}`.
    Slack,
    /// PagerDuty Events API v2 (`/v2/enqueue`): outages trigger an
    /// incident, recoveries resolve it.
    Pagerduty,
}

/// A webhook, checked: its secret read.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where events go.
    pub url: String,
    /// In which body.
    pub format: WebhookFormat,
    /// The signing key or routing key, from `secret_file`.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Webhook URLs and keys are secrets: scheme and host only.
        f.debug_struct("Webhook")
            .field("url", &crate::redact::url(&self.url))
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| crate::REDACTED))
            .finish()
    }
}

/// How one region is watched.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Its probes.
    pub probes: Vec<probe::ProbeSpec>,
    /// How many probes must be failing to declare the region down;
    /// default: a majority.
    pub quorum: Option<usize>,
}

/// The daemon's listeners.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenSpec {
    /// `HOST:PORT` serving `/metrics` and `/healthz`; default `127.0.0.1:9464`.
    pub metrics: Option<Spanned<String>>,
    /// Path of the control socket (mode 0660); default
    /// `/run/lifeboat/control.sock`.
    pub control: Option<Spanned<String>>,
}

/// Where the control socket is unless the config says.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/lifeboat/control.sock";

/// Where the daemon's config is when nobody says.
pub const DEFAULT_CONFIG: &str = "/etc/lifeboat/lifeboat.yaml";
/// Cooldown unless the config says.
pub const DEFAULT_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a binding may go without a successful drill before it is
/// warned about: 90 days.
pub const DEFAULT_DRILL_WARNING_AFTER: std::time::Duration =
    std::time::Duration::from_secs(90 * 86_400);
/// Readiness interval unless the config says.
pub const DEFAULT_READINESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1800);
/// Shutdown grace unless the config says.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where `/metrics` is served unless the config says.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// A protected resource and where its recovery points live.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Protected {
    /// An RDS instance: its newest snapshot (automated, manual or copied)
    /// in `region`.
    Rds {
        /// The instance identifier.
        db_instance: String,
        /// The region its recovery points are kept in (the DR region).
        region: String,
        /// Largest acceptable exposure.
        rpo_target: Option<HumanDuration>,
    },
    /// A read replica in the DR region: the moment its data is current to
    /// (its newest CloudWatch `ReplicaLag` datapoint's time less the lag).
    #[serde(rename = "rds_replica")]
    RdsReplica {
        /// The replica's instance identifier.
        db_instance: String,
        /// The replica's region (the DR region).
        region: String,
        /// Largest acceptable exposure.
        rpo_target: Option<HumanDuration>,
    },
    /// Objects under a prefix of the DR bucket: the newest one.
    S3 {
        /// The DR bucket.
        bucket: String,
        /// Key prefix.
        #[serde(default)]
        prefix: String,
        /// The bucket's region.
        region: String,
        /// Largest acceptable exposure.
        rpo_target: Option<HumanDuration>,
    },
    /// AMIs of this account carrying all these tags: the newest one.
    Ami {
        /// Tags the images carry.
        tags: std::collections::BTreeMap<String, String>,
        /// The region the images are kept in.
        region: String,
        /// Largest acceptable exposure.
        rpo_target: Option<HumanDuration>,
    },
}

impl Protected {
    /// How the resource is named in metrics and reports.
    pub fn name(&self) -> String {
        match self {
            Protected::Rds {
                db_instance,
                region,
                ..
            } => format!("rds:{region}:{db_instance}"),
            Protected::RdsReplica {
                db_instance,
                region,
                ..
            } => format!("rds-replica:{region}:{db_instance}"),
            Protected::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            Protected::Ami { tags, region, .. } => format!(
                "ami:{region}:{}",
                tags.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// The region its recovery points are in.
    pub fn region(&self) -> &str {
        match self {
            Protected::Rds { region, .. }
            | Protected::RdsReplica { region, .. }
            | Protected::S3 { region, .. }
            | Protected::Ami { region, .. } => region,
        }
    }

    /// Its RPO target.
    pub fn rpo_target(&self) -> Option<HumanDuration> {
        match self {
            Protected::Rds { rpo_target, .. }
            | Protected::RdsReplica { rpo_target, .. }
            | Protected::S3 { rpo_target, .. }
            | Protected::Ami { rpo_target, .. } => *rpo_target,
        }
    }
}

/// How often RPO exposure is refreshed unless the config says.
pub const DEFAULT_EXPOSURE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// AWS access. Credentials come from the standard chain (environment,
/// profiles, SSO, instance or task roles), never from this file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSpec {
    /// Named profile from the shared AWS config files.
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint
    /// proxy); `AWS_ENDPOINT_URL` does the same from the environment.
    pub endpoint_url: Option<Spanned<String>>,
    /// `documented` (default): requests to EC2, RDS and Route 53 are
    /// paced along the request buckets AWS documents, so a mass failover
    /// never sends faster than AWS admits; `off` for an account whose
    /// limits AWS raised (`LIFEBOAT_AWS_PACING=off` does the same).
    pub pacing: Option<Pacing>,
}

/// Log output format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
    /// The system journal's native protocol, each field a journal field
    /// (text on stderr, with a warning, where there is no journal).
    Journald,
}

/// Logging settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// Output format.
    #[serde(default)]
    pub format: LogFormat,
    /// Filter in `tracing` syntax, e.g. `info` or `lifeboat=debug`.
    pub level: Option<String>,
}

/// A checked config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The state directory.
    pub state_dir: PathBuf,
    /// AWS access.
    pub aws: AwsSettings,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: Option<String>,
    /// Protected resources.
    pub protected: Vec<Protected>,
    /// How often their exposure is refreshed.
    pub exposure_interval: std::time::Duration,
    /// `HOST:PORT` of the metrics listener.
    pub listen_metrics: String,
    /// Watched regions and their probes, by name.
    pub regions: std::collections::BTreeMap<String, RegionSpec>,
    /// Region-to-runbook bindings, by name.
    pub bindings: Vec<Binding>,
    /// Path of the control socket.
    pub control_socket: PathBuf,
    /// How often bound runbooks' preflights run.
    pub readiness_interval: std::time::Duration,
    /// How long a binding may go without a successful drill.
    pub drill_warning_after: std::time::Duration,
    /// How long running steps get on SIGTERM.
    pub shutdown_grace: std::time::Duration,
    /// Webhook URLs.
    pub webhooks: Vec<Webhook>,
    /// Backup verification jobs.
    pub jobs: Vec<verify::JobSpec>,
    /// Where the journal lives.
    pub storage: Storage,
    /// How long the embedded journal keeps what ended (none: forever).
    pub keep: Option<std::time::Duration>,
}

const STATIC_KEYS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "session_token",
];

/// The protected resources, each checked.
fn check_protected(
    items: Vec<Spanned<Checked<Protected>>>,
    diags: &mut Diagnostics,
) -> Vec<Protected> {
    let mut protected = Vec::new();
    for item in items {
        let Some(p) = item.value.0 else { continue };
        if !crate::runbook::is_region(p.region()) {
            diags.error(
                item.loc,
                None,
                format!(
                    "protected `{}`: `{}` is not an AWS region name",
                    p.name(),
                    p.region()
                ),
            );
        }
        if let Protected::Ami { tags, .. } = &p
            && tags.is_empty()
        {
            diags.error(
                item.loc,
                None,
                "protected AMIs: `tags` must name at least one tag",
            );
        }
        protected.push(p);
    }
    protected
}

/// The regions and their probes, each checked.
fn check_regions(
    items: std::collections::BTreeMap<String, Spanned<Checked<RegionSpec>>>,
    diags: &mut Diagnostics,
) -> std::collections::BTreeMap<String, RegionSpec> {
    let mut regions = std::collections::BTreeMap::new();
    for (name, region) in items {
        let Some(r) = region.value.0 else { continue };
        let mut problem = |message: String| diags.error(region.loc, None, message);
        if !crate::runbook::is_region(&name) {
            problem(format!("`regions`: `{name}` is not an AWS region name"));
        }
        if r.probes.is_empty() {
            problem(format!("region `{name}` has no probes"));
        }
        if let Some(q) = r.quorum
            && (q == 0 || q > r.probes.len())
        {
            problem(format!(
                "region `{name}`: `quorum` {q} must be between 1 and its {} probe(s)",
                r.probes.len()
            ));
        }
        for p in &r.probes {
            if p.interval.get().is_zero() || p.timeout.get().is_zero() {
                problem(format!(
                    "probe `{}`: `interval` and `timeout` must be more than zero",
                    p.name
                ));
            }
            if p.failure_threshold == 0 || p.recovery_threshold == 0 {
                problem(format!("probe `{}`: thresholds must be at least 1", p.name));
            }
            match p.check() {
                None => problem(format!(
                    "probe `{}`: set exactly one of `http`, `tcp`, `aws_api`, `route53_health_check`",
                    p.name
                )),
                Some(probe::Check::Http(h))
                    if !(h.url.starts_with("http://") || h.url.starts_with("https://")) =>
                {
                    problem(format!(
                        "probe `{}`: `url` must start with http:// or https://",
                        p.name
                    ));
                }
                Some(probe::Check::Tcp(address)) if !address.contains(':') => {
                    problem(format!("probe `{}`: `tcp` must be HOST:PORT", p.name));
                }
                Some(probe::Check::AwsApi(region)) if !crate::runbook::is_region(region) => {
                    problem(format!(
                        "probe `{}`: `{region}` is not an AWS region name",
                        p.name
                    ));
                }
                Some(_) => {}
            }
            if let Some(zone) = &p.zone
                && !is_zone_of(zone, &name)
            {
                problem(format!(
                    "probe `{}`: `zone` `{zone}` is not an Availability Zone of {name} (write its name, e.g. `{name}a`)",
                    p.name
                ));
            }
        }
        let zones: std::collections::BTreeSet<Option<&str>> =
            r.probes.iter().map(|p| p.zone.as_deref()).collect();
        if let [Some(zone)] = zones.iter().copied().collect::<Vec<_>>()[..] {
            problem(format!(
                "region `{name}`: every probe watches {zone}, so a regional outage could never be told from a zonal one; give the region probes of its own (no `zone`) or of another zone"
            ));
        }
        regions.insert(name, r);
    }
    regions
}

/// Whether `zone` names an Availability Zone (or a Local Zone) of `region`:
/// the region's name followed by the zone's own letters.
fn is_zone_of(zone: &str, region: &str) -> bool {
    zone.strip_prefix(region).is_some_and(|rest| {
        !rest.is_empty()
            && rest.ends_with(|c: char| c.is_ascii_lowercase())
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

/// The webhooks, each checked, their secrets read.
fn check_webhooks(
    items: Vec<Spanned<Checked<WebhookSpec>>>,
    diags: &mut Diagnostics,
) -> Vec<Webhook> {
    let mut webhooks = Vec::new();
    for hook in items {
        let Some(h) = hook.value.0 else { continue };
        let https = h.url.starts_with("https://");
        if !(https || (h.allow_http && h.url.starts_with("http://"))) {
            diags.error(
                hook.loc,
                None,
                "`notify` webhooks must be https:// URLs (set `allow_http: true` for a receiver on this host)",
            );
        }
        let secret = match &h.secret_file {
            None => None,
            Some(path) if !path.starts_with('/') => {
                diags.error(
                    hook.loc,
                    None,
                    format!("`secret_file` must be an absolute path, found `{path}`"),
                );
                None
            }
            Some(path) => match crate::input::read_text(std::path::Path::new(path)) {
                Ok(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
                Ok(_) => {
                    diags.error(hook.loc, None, format!("`secret_file` {path} is empty"));
                    None
                }
                Err(e) => {
                    diags.error(
                        hook.loc,
                        None,
                        format!("cannot read `secret_file` {path}: {e}"),
                    );
                    None
                }
            },
        };
        match (h.format, &h.secret_file) {
            (WebhookFormat::Pagerduty, None) => diags.error(
                hook.loc,
                None,
                "a `pagerduty` webhook needs `secret_file`: the file holding the integration's routing key",
            ),
            (WebhookFormat::Slack, Some(_)) => diags.error(
                hook.loc,
                None,
                "a `slack` webhook takes no `secret_file`: its URL is its secret",
            ),
            _ => {}
        }
        webhooks.push(Webhook {
            url: h.url,
            format: h.format,
            secret,
        });
    }
    webhooks
}

/// The verification jobs, each checked.
fn check_jobs(
    items: Vec<Spanned<Checked<verify::JobSpec>>>,
    diags: &mut Diagnostics,
) -> Vec<verify::JobSpec> {
    let mut jobs: Vec<verify::JobSpec> = Vec::new();
    for job in items {
        let Some(j) = job.value.0 else { continue };
        let mut problem = |message: String| diags.error(job.loc, None, message);
        if jobs.iter().any(|o| o.name == j.name) {
            problem(format!("verify job `{}` is named twice", j.name));
        }
        if j.resources.is_empty() {
            problem(format!("verify job `{}` checks no resource", j.name));
        }
        if let Some(expr) = &j.schedule
            && let Err(e) = verify::Schedule::parse(expr, j.timezone.as_deref())
        {
            problem(format!("verify job `{}`: {e}", j.name));
        }
        for r in &j.resources {
            if let verify::Resource::Rds {
                db_instance,
                dr_region: None,
                replicated_backups: true,
                ..
            } = r
            {
                problem(format!(
                    "verify job `{}`: `replicated_backups` of {db_instance} needs `dr_region`, the region they replicate into",
                    j.name
                ));
            }
            let regions: Vec<&str> = match r {
                verify::Resource::Rds {
                    region, dr_region, ..
                } => std::iter::once(region.as_str())
                    .chain(dr_region.as_deref())
                    .collect(),
                verify::Resource::S3 {
                    region,
                    source_region,
                    ..
                } => std::iter::once(region.as_str())
                    .chain(source_region.as_deref())
                    .collect(),
                verify::Resource::Ami { region, .. } => vec![region.as_str()],
            };
            for region in regions {
                if !crate::runbook::is_region(region) {
                    problem(format!(
                        "verify job `{}`: `{region}` is not an AWS region name",
                        j.name
                    ));
                }
            }
        }
        jobs.push(j);
    }
    jobs
}

/// Parse and check a config file; every problem at once.
pub fn load(file: &str, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(file);
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            diags.error(e.loc, None, e.message);
            return Err(diags.into_sorted());
        }
    };
    let root = match root.value {
        // An empty file is a config with every default.
        Value::Null => yaml::Node {
            loc: root.loc,
            value: Value::Map(Vec::new()),
        },
        Value::Map(_) => root,
        _ => {
            diags.error(
                root.loc,
                None,
                format!("the config is a mapping, found {}", root.kind()),
            );
            return Err(diags.into_sorted());
        }
    };
    if let Some(aws) = root.get("aws")
        && let Value::Map(entries) = &aws.value
    {
        for (key, _) in entries {
            if key.as_str().is_some_and(|k| STATIC_KEYS.contains(&k)) {
                diags.error(
                    key.loc,
                    None,
                    "static AWS credentials are refused in the config file; use the standard credential chain (environment, `profile`, SSO, instance or task role)",
                );
            }
        }
    }
    let (spec, problems) = yaml::decode::<ConfigSpec>(&root);
    for p in problems {
        if !(p.message.starts_with("unknown field")
            && STATIC_KEYS
                .iter()
                .any(|k| p.message.contains(&format!("`{k}`"))))
        {
            diags.error(p.loc, None, p.message);
        }
    }
    let Some(spec) = spec else {
        return Err(diags.into_sorted());
    };
    let aws = spec.aws.and_then(|a| a.0).unwrap_or_default();
    if let Some(url) = &aws.endpoint_url
        && !(url.value.starts_with("http://") || url.value.starts_with("https://"))
    {
        diags.error(
            url.loc,
            None,
            format!(
                "`endpoint_url` must start with http:// or https://, found `{}`",
                url.value
            ),
        );
    }
    let state_dir = match &spec.state_dir {
        Some(dir) if !dir.value.starts_with('/') => {
            diags.error(
                dir.loc,
                None,
                format!(
                    "`state_dir` must be an absolute path, found `{}`",
                    dir.value
                ),
            );
            PathBuf::new()
        }
        Some(dir) => PathBuf::from(&dir.value),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };
    let log = spec.log.and_then(|l| l.0).unwrap_or_default();
    let protected = check_protected(spec.protected, &mut diags);
    let exposure_interval = match &spec.exposure_interval {
        Some(d) if d.value.get().is_zero() => {
            diags.error(d.loc, None, "`exposure_interval` must be more than zero");
            DEFAULT_EXPOSURE_INTERVAL
        }
        Some(d) => d.value.get(),
        None => DEFAULT_EXPOSURE_INTERVAL,
    };
    let regions = check_regions(spec.regions, &mut diags);
    let positive = |d: &Option<Spanned<HumanDuration>>,
                    name: &str,
                    default: std::time::Duration,
                    diags: &mut Diagnostics| match d {
        Some(d) if d.value.get().is_zero() => {
            diags.error(d.loc, None, format!("`{name}` must be more than zero"));
            default
        }
        Some(d) => d.value.get(),
        None => default,
    };
    let cooldown = match &spec.cooldown {
        Some(d) => d.value.get(),
        None => DEFAULT_COOLDOWN,
    };
    let readiness_interval = positive(
        &spec.readiness_interval,
        "readiness_interval",
        DEFAULT_READINESS_INTERVAL,
        &mut diags,
    );
    let drill_warning_after = positive(
        &spec.drill_warning_after,
        "drill_warning_after",
        DEFAULT_DRILL_WARNING_AFTER,
        &mut diags,
    );
    let shutdown_grace = positive(
        &spec.shutdown_grace,
        "shutdown_grace",
        DEFAULT_SHUTDOWN_GRACE,
        &mut diags,
    );
    // Runbook paths are relative to the config file, made absolute now so
    // that they mean the same whatever the daemon's working directory.
    let base = std::path::Path::new(file)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let base = match std::env::current_dir() {
        Ok(cwd) if base.is_relative() => cwd.join(base),
        _ => base,
    };
    let mut bindings = Vec::new();
    let mut runbook_problems = Vec::new();
    for (name, binding) in spec.bindings {
        let Some(b) = binding.value.0 else { continue };
        let loc = binding.loc;
        if !regions.contains_key(&b.region) {
            diags.error(
                loc,
                None,
                format!(
                    "binding `{name}`: region `{}` is not one of `regions` ({})",
                    b.region,
                    regions.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        let path = base.join(&b.runbook);
        let mut params = b.params;
        if let Some(zone) = &b.zone {
            let watched = regions.get(&b.region).is_none_or(|r| {
                r.probes
                    .iter()
                    .any(|p| p.zone.as_deref() == Some(zone.as_str()))
            });
            if !watched {
                diags.error(
                    loc,
                    None,
                    format!(
                        "binding `{name}`: no probe of region `{}` watches zone `{zone}`, so its outage could never be told (give a probe `zone: {zone}`)",
                        b.region
                    ),
                );
            }
            match params.get("zone") {
                Some(given) if given != zone => diags.error(
                    loc,
                    None,
                    format!(
                        "binding `{name}`: param `zone` is `{given}` but the binding watches `{zone}`; drop the param (the binding sets it)"
                    ),
                ),
                _ => {
                    params.insert("zone".to_string(), zone.clone());
                }
            }
        }
        let params: Vec<(String, String)> = params.into_iter().collect();
        match check_bound_runbook(&path, &params) {
            Err(BoundRunbook::Unreadable(e)) => diags.error(
                loc,
                None,
                format!(
                    "binding `{name}`: cannot read runbook {}: {e}",
                    path.display()
                ),
            ),
            Err(BoundRunbook::Invalid(problems)) => {
                diags.error(
                    loc,
                    None,
                    format!(
                        "binding `{name}`: runbook {} does not load with these params ({} problem(s) below)",
                        path.display(),
                        problems.len()
                    ),
                );
                runbook_problems.extend(problems);
            }
            Ok(runbook) => {
                let zonal = runbook.strategy == crate::runbook::Strategy::MultiAz;
                if zonal && b.zone.is_none() {
                    diags.error(
                        loc,
                        None,
                        format!(
                            "binding `{name}`: runbook `{}` is multi-az, which recovers from a zone's loss: give the binding the `zone` it watches",
                            runbook.name
                        ),
                    );
                }
                if !zonal
                    && let Some(zone) = &b.zone
                    && runbook.strategy != crate::runbook::Strategy::Failback
                {
                    diags.error(
                        loc,
                        None,
                        format!(
                            "binding `{name}` watches zone `{zone}` but runbook `{}` is {}, which leaves the region; a zonal binding runs a multi-az runbook",
                            runbook.name,
                            runbook.strategy.as_str()
                        ),
                    );
                }
                if runbook.strategy == crate::runbook::Strategy::Failback
                    && b.policy == Policy::Auto
                {
                    diags.error(
                        loc,
                        None,
                        format!(
                            "binding `{name}`: failback is never triggered automatically; use `policy: approve` or `notify`"
                        ),
                    );
                }
                let read_before_promoting = matches!(
                    runbook.recovery_point,
                    Some(
                        crate::runbook::RecoveryPoint::RdsReplicaLag { .. }
                            | crate::runbook::RecoveryPoint::AuroraGlobalLag { .. }
                            | crate::runbook::RecoveryPoint::S3NewestObject { .. }
                    )
                );
                if b.max_data_loss.is_some() && !read_before_promoting {
                    diags.error(
                        loc,
                        None,
                        format!(
                            "binding `{name}`: max_data_loss needs a runbook whose recovery_point is read before it promotes (rds.replica_lag, aurora.global_lag or s3.newest_object); runbook `{}` has {}",
                            runbook.name,
                            match &runbook.recovery_point {
                                None => "none",
                                Some(_) => "rds.snapshot, read after the restore",
                            }
                        ),
                    );
                }
                if let Some(from) = runbook.regions.as_ref().map(|r| r.from.as_str())
                    && from != b.region
                {
                    diags.error(
                        loc,
                        None,
                        format!(
                            "binding `{name}` watches {} but runbook `{}` recovers from {from}",
                            b.region, runbook.name
                        ),
                    );
                }
            }
        }
        if let Some(d) = &b.drill
            && let Err(e) = verify::Schedule::parse(&d.schedule, d.timezone.as_deref())
        {
            diags.error(loc, None, format!("binding `{name}`: drill {e}"));
        }
        let mut maintenance = Vec::new();
        for (i, m) in b.maintenance.into_iter().enumerate() {
            let what = format!("binding `{name}`: maintenance window {}", i + 1);
            if let Err(e) = verify::Schedule::parse(&m.schedule, m.timezone.as_deref()) {
                diags.error(loc, None, format!("{what}: {e}"));
            }
            if m.duration.get().is_zero() {
                diags.error(
                    loc,
                    None,
                    format!("{what}: `duration` must be more than 0s"),
                );
            }
            maintenance.push(Maintenance {
                schedule: m.schedule,
                timezone: m.timezone,
                duration: m.duration.get(),
            });
        }
        let other_side = b.reprotected.map(|side| {
            let what = format!("binding `{name}`: `reprotected`");
            if !regions.contains_key(&side.region) {
                diags.error(
                    loc,
                    None,
                    format!("{what}: region `{}` is not one of `regions`", side.region),
                );
            }
            let path = base.join(&side.runbook);
            let mut params = side.params;
            if let Some(zone) = &side.zone {
                params.entry("zone".to_string()).or_insert_with(|| zone.clone());
            }
            let params: Vec<(String, String)> = params.into_iter().collect();
            match check_bound_runbook(&path, &params) {
                Err(BoundRunbook::Unreadable(e)) => diags.error(
                    loc,
                    None,
                    format!("{what}: cannot read runbook {}: {e}", path.display()),
                ),
                Err(BoundRunbook::Invalid(problems)) => {
                    diags.error(
                        loc,
                        None,
                        format!(
                            "{what}: runbook {} does not load with these params ({} problem(s) below)",
                            path.display(),
                            problems.len()
                        ),
                    );
                    runbook_problems.extend(problems);
                }
                Ok(runbook) => {
                    if let Some(from) = runbook.regions.as_ref().map(|r| r.from.as_str())
                        && from != side.region
                    {
                        diags.error(
                            loc,
                            None,
                            format!(
                                "{what} watches {} but runbook `{}` recovers from {from}",
                                side.region, runbook.name
                            ),
                        );
                    }
                }
            }
            Side {
                region: side.region,
                zone: side.zone,
                runbook: path,
                params,
                protected: check_protected(side.protected, &mut diags),
            }
        });
        bindings.push(Binding {
            drill: b.drill,
            name,
            region: b.region,
            zone: b.zone,
            runbook: path,
            params,
            policy: b.policy,
            cooldown: b.cooldown.map_or(cooldown, HumanDuration::get),
            max_data_loss: b.max_data_loss.map(HumanDuration::get),
            maintenance,
            other_side,
            reprotected: false,
            protected: check_protected(b.protected, &mut diags),
        });
    }
    let webhooks = check_webhooks(spec.notify, &mut diags);
    let jobs = check_jobs(spec.verify, &mut diags);
    let (storage, keep) = check_storage(spec.storage, &regions, &mut diags);
    let listen = spec.listen.and_then(|l| l.0).unwrap_or_default();
    let control_socket = match &listen.control {
        Some(path) if !path.value.starts_with('/') => {
            diags.error(
                path.loc,
                None,
                format!(
                    "`listen.control` must be an absolute path, found `{}`",
                    path.value
                ),
            );
            PathBuf::new()
        }
        Some(path) => PathBuf::from(&path.value),
        None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
    };
    let listen_metrics = match &listen.metrics {
        Some(addr) if addr.value.parse::<std::net::SocketAddr>().is_err() => {
            diags.error(
                addr.loc,
                None,
                format!(
                    "`listen.metrics` must be HOST:PORT with an IP address, found `{}`",
                    addr.value
                ),
            );
            String::new()
        }
        Some(addr) => addr.value.clone(),
        None => DEFAULT_METRICS_LISTEN.to_string(),
    };
    if diags.has_errors() {
        let mut all = diags.into_sorted();
        all.extend(runbook_problems);
        return Err(all);
    }
    Ok(Config {
        state_dir,
        aws: AwsSettings {
            profile: aws.profile,
            endpoint_url: aws.endpoint_url.map(|u| u.value),
            pacing: aws.pacing.unwrap_or_default(),
        },
        log_format: log.format,
        log_level: log.level,
        protected,
        exposure_interval,
        listen_metrics,
        regions,
        bindings,
        control_socket,
        readiness_interval,
        drill_warning_after,
        shutdown_grace,
        webhooks,
        jobs,
        storage,
        keep,
    })
}

enum BoundRunbook {
    Unreadable(std::io::Error),
    Invalid(Vec<Diagnostic>),
}

/// Load a bound runbook with its binding's params, as a run would.
fn check_bound_runbook(
    path: &std::path::Path,
    params: &[(String, String)],
) -> Result<crate::runbook::Runbook, BoundRunbook> {
    let text = crate::runbook::children::read(path).map_err(BoundRunbook::Unreadable)?;
    crate::runbook::load(
        &path.display().to_string(),
        &text,
        params,
        crate::runbook::MissingParams::Refuse,
    )
    .map(|loaded| loaded.runbook)
    .map_err(BoundRunbook::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem `load` finds in `text`, one per line.
    fn all_problems(file: &str, text: &str) -> String {
        let all: Vec<String> = load(file, text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        all.join("\n")
    }

    #[test]
    fn empty_config_takes_defaults() {
        let config = load("c.yaml", "").unwrap();
        assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(config.aws.endpoint_url, None);
    }

    #[test]
    fn every_problem_is_located() {
        let text = "state_dir: relative/dir\naws:\n  endpoint_url: localhost:5000\n  secret_access_key: abc\nlogg: {}\n";
        let problems = load("c.yaml", text).unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("c.yaml:1:12: error: `state_dir` must be an absolute path"));
        assert!(lines[1].starts_with("c.yaml:3:17: error: `endpoint_url` must start with http"));
        assert!(lines[2].starts_with("c.yaml:4:3: error: static AWS credentials are refused"));
        assert!(
            lines[3].starts_with("c.yaml:5:1: error: unknown field `logg`, did you mean `log`?")
        );
    }

    #[test]
    fn protected_resources_are_checked_and_named() {
        let text = "protected:\n  - { kind: rds, db_instance: app-db, region: us-west-2, rpo_target: 1h }\n  - { kind: s3, bucket: b, region: westus }\n  - { kind: ami, tags: {}, region: us-west-2 }\n  - { kind: disk, region: us-west-2 }\nexposure_interval: 0s\n";
        let problems = load("c.yaml", text).unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with(
                "c.yaml:3:5: error: protected `s3://b/`: `westus` is not an AWS region name"
            ),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with(
                "c.yaml:4:5: error: protected AMIs: `tags` must name at least one tag"
            ),
            "{lines:#?}"
        );
        assert!(lines[2].contains("disk"), "{lines:#?}");
        assert!(
            lines[3].contains("`exposure_interval` must be more than zero"),
            "{lines:#?}"
        );

        let ok = load("c.yaml", "protected:\n  - { kind: rds, db_instance: app-db, region: us-west-2, rpo_target: 1h }\n  - { kind: rds_replica, db_instance: app-db-replica, region: us-west-2, rpo_target: 5m }\n").unwrap();
        assert_eq!(ok.protected[0].name(), "rds:us-west-2:app-db");
        assert_eq!(
            ok.protected[1].name(),
            "rds-replica:us-west-2:app-db-replica"
        );
        assert_eq!(
            ok.protected[1].rpo_target().map(|t| t.get().as_secs()),
            Some(300)
        );
        assert_eq!(ok.exposure_interval, DEFAULT_EXPOSURE_INTERVAL);
    }

    #[test]
    fn regions_and_their_probes_are_checked() {
        let text = "regions:\n  us-east-1:\n    quorum: 3\n    probes:\n      - { name: a, http: { url: \"ftp://x\" } }\n      - { name: b, tcp: \"nohost\", aws_api: us-east-1 }\n  atlantis: { probes: [] }\n";
        let problems = load("c.yaml", text).unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let all = lines.join("\n");
        assert!(
            all.contains("`regions`: `atlantis` is not an AWS region name"),
            "{all}"
        );
        assert!(all.contains("region `atlantis` has no probes"), "{all}");
        assert!(
            all.contains("`quorum` 3 must be between 1 and its 2 probe(s)"),
            "{all}"
        );
        assert!(
            all.contains("probe `a`: `url` must start with http:// or https://"),
            "{all}"
        );
        assert!(
            all.contains("probe `b`: set exactly one of `http`, `tcp`, `aws_api`"),
            "{all}"
        );

        let ok = load(
            "c.yaml",
            "regions:\n  us-east-1:\n    probes:\n      - { name: api, aws_api: us-east-1 }\n",
        )
        .unwrap();
        let probe = &ok.regions["us-east-1"].probes[0];
        assert_eq!((probe.failure_threshold, probe.recovery_threshold), (3, 2));
        assert_eq!(probe.interval.get(), std::time::Duration::from_secs(10));
    }

    #[test]
    fn webhooks_are_checked_with_their_format_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("pd.key");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let text = format!(
            "notify:\n  - {{ url: \"https://events.pagerduty.com/v2/enqueue\", format: pagerduty }}\n  - {{ url: \"https://hooks.slack.com/services/x\", format: slack, secret_file: {k} }}\n  - {{ url: \"https://example.com/h\", secret_file: relative.key }}\n  - {{ url: \"https://example.com/h\", secret_file: {e} }}\n  - {{ url: \"https://example.com/h\", format: teams }}\n",
            k = key.display(),
            e = empty.display()
        );
        let all = all_problems("c.yaml", &text);
        assert!(all.contains("c.yaml:2:"), "{all}");
        assert!(
            all.contains("a `pagerduty` webhook needs `secret_file`"),
            "{all}"
        );
        assert!(
            all.contains("a `slack` webhook takes no `secret_file`"),
            "{all}"
        );
        assert!(
            all.contains("`secret_file` must be an absolute path, found `relative.key`"),
            "{all}"
        );
        assert!(all.contains("is empty"), "{all}");
        assert!(all.contains("teams"), "{all}");

        let ok = load(
            "c.yaml",
            &format!(
                "notify:\n  - {{ url: \"https://events.pagerduty.com/v2/enqueue\", format: pagerduty, secret_file: {} }}\n",
                key.display()
            ),
        )
        .unwrap();
        assert_eq!(ok.webhooks[0].format, WebhookFormat::Pagerduty);
        assert_eq!(
            ok.webhooks[0].secret.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let shown = format!("{:?}", ok.webhooks[0]);
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("/v2/enqueue"), "{shown}");
    }

    #[test]
    fn storage_is_embedded_unless_etcd_is_asked_for_and_checked() {
        assert_eq!(load("c.yaml", "").unwrap().storage, Storage::Embedded);
        let probes = "regions:\n  us-east-1:\n    probes:\n      - { name: web, http: { url: \"http://x\" }, interval: 2s, failure_threshold: 3 }\n";
        let text = format!(
            "{probes}storage:\n  backend: etcd\n  etcd:\n    endpoints: [\"http://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]\n    tls: {{ ca_file: /etc/lifeboat/ca.pem }}\n    lease_ttl: 5s\n    request_timeout: 1s\n    name: east\n    place: us-east-1\n"
        );
        let Storage::Etcd(etcd) = load("c.yaml", &text).unwrap().storage else {
            panic!("etcd storage expected");
        };
        assert_eq!(etcd.prefix, "/lifeboat");
        assert_eq!(etcd.quorum_places, 2);
        assert_eq!(etcd.lease_ttl, std::time::Duration::from_secs(5));
        assert_eq!(etcd.name, "east");
        assert_eq!(
            etcd.tls.and_then(|t| t.ca_file),
            Some(PathBuf::from("/etc/lifeboat/ca.pem"))
        );

        // Each problem, located at the section.
        let text = format!(
            "{probes}storage:\n  backend: etcd\n  etcd:\n    endpoints: [\"10.0.0.1:2379\"]\n    tls: {{ cert_file: /c.pem }}\n    lease_ttl: 10s\n    request_timeout: 4s\n    place: \"\"\n    quorum_places: 0\n    prefix: lifeboat\n"
        );
        let problems = load("c.yaml", &text).unwrap_err();
        let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let all = all.join("\n");
        for expected in [
            "c.yaml:8:17: error: `storage.etcd.endpoints`: `10.0.0.1:2379` must start with http:// or https://",
            "c.yaml:9:10: error: `storage.etcd.tls`: `cert_file` and `key_file` go together",
            "c.yaml:12:12: error: `storage.etcd.place` is empty",
            "`storage.etcd.quorum_places` must be at least 1",
            "`storage.etcd.prefix` must start with /",
            "c.yaml:10:16: error: storage.etcd timing rule: `request_timeout` 4s x 3 exceeds `lease_ttl` 10s",
            "timing rule: `lease_ttl` 10s exceeds the 6s probe `web` needs to declare a failure",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        // History and its archive; the embedded journal's keep.
        let text = format!(
            "{probes}storage:\n  backend: etcd\n  etcd:\n    endpoints: [\"http://10.0.0.1:2379\"]\n    lease_ttl: 5s\n    request_timeout: 1s\n    place: us-east-1\n    history: 30d\n    archive: {{ bucket: dr-journal, region: us-east-2 }}\n"
        );
        let Storage::Etcd(etcd) = load("c.yaml", &text).unwrap().storage else {
            panic!("etcd storage expected");
        };
        assert_eq!(etcd.history, std::time::Duration::from_secs(30 * 86_400));
        let archive = etcd.archive.unwrap();
        assert_eq!(
            (
                archive.bucket.as_str(),
                archive.prefix.as_str(),
                archive.region.as_str()
            ),
            ("dr-journal", "lifeboat/journal/", "us-east-2")
        );
        let text = format!(
            "{probes}storage:\n  backend: etcd\n  keep: 90d\n  etcd:\n    endpoints: [\"http://10.0.0.1:2379\"]\n    lease_ttl: 5s\n    request_timeout: 1s\n    place: us-east-1\n    history: 10m\n    archive: {{ bucket: b, region: us-east-2, prefix: p }}\n"
        );
        let all = all_problems("c.yaml", &text);
        for expected in [
            "c.yaml:7:9: error: `storage.keep` is for the embedded journal",
            "c.yaml:13:14: error: `storage.etcd.history` 600s is under an hour",
            "`storage.etcd.archive.prefix` `p` must end with /",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(
            load("c.yaml", "storage: { backend: embedded, keep: 400d }\n")
                .unwrap()
                .keep,
            Some(std::time::Duration::from_secs(400 * 86_400))
        );
        let problems = load("c.yaml", "storage: { backend: embedded, keep: 1h }\n").unwrap_err();
        assert!(
            problems[0].to_string().contains("under a day"),
            "{problems:?}"
        );
        let problems = load("c.yaml", "storage: { backend: etcd }\n").unwrap_err();
        assert!(
            problems[0]
                .to_string()
                .contains("`backend: etcd` needs `storage.etcd`")
        );
        let problems = load(
            "c.yaml",
            "storage: { backend: embedded, etcd: { endpoints: [], place: x } }\n",
        )
        .unwrap_err();
        assert!(problems[0].to_string().contains("say `backend: etcd`"));
        let problems = load("c.yaml", "storage: { backend: zookeeper }\n").unwrap_err();
        assert!(
            problems[0].to_string().contains("zookeeper"),
            "{problems:?}"
        );
    }

    #[test]
    fn bindings_are_checked_with_their_runbooks() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "regions:
  us-east-1:
    probes: [ {{ name: api, aws_api: us-east-1 }} ]
bindings:
  back:
    region: us-east-1
    runbook: {dir}/runbooks/failback.yaml
    policy: auto
  elsewhere:
    region: eu-west-1
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: approve
  wrong-way:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    params: {{ primary_region: us-east-2 }}
    policy: approve
  broken:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    params: {{ no_such_param: x }}
    policy: notify
  missing:
    region: us-east-1
    runbook: {dir}/runbooks/none.yaml
    policy: often
  lossy:
    region: us-east-1
    runbook: {dir}/runbooks/backup-restore.yaml
    policy: auto
    max_data_loss: 5m
  guarded:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: auto
    max_data_loss: 5m
    maintenance: [ {{ schedule: \"0 2 * * SUN\", timezone: Europe/Paris, duration: 2h }} ]
  windows:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: auto
    maintenance:
      - {{ schedule: \"0 2 * * SUN\", duration: 0s }}
      - {{ schedule: \"every sunday\", duration: 1h }}
notify:
  - {{ url: \"http://hooks.example.com/x\" }}
"
        );
        let problems = load("c.yaml", &text).unwrap_err();
        let all = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            all.contains("binding `back`: failback is never triggered automatically"),
            "{all}"
        );
        assert!(
            all.contains("binding `lossy`: max_data_loss needs a runbook whose recovery_point is read before it promotes (rds.replica_lag, aurora.global_lag or s3.newest_object); runbook `backup-restore-recovery` has rds.snapshot, read after the restore"),
            "{all}"
        );
        assert!(!all.contains("`guarded`"), "{all}");
        assert!(
            all.contains(
                "binding `windows`: maintenance window 1: `duration` must be more than 0s"
            ),
            "{all}"
        );
        assert!(
            all.contains(
                "binding `windows`: maintenance window 2: `every sunday` is not a cron expression"
            ),
            "{all}"
        );
        assert!(
            all.contains("binding `elsewhere`: region `eu-west-1` is not one of `regions`"),
            "{all}"
        );
        assert!(
            all.contains("binding `wrong-way` watches us-east-1 but runbook `pilot-light-failover` recovers from us-east-2"),
            "{all}"
        );
        assert!(all.contains("binding `broken`: runbook"), "{all}");
        assert!(
            all.contains("no_such_param"),
            "the runbook's own problem: {all}"
        );
        assert!(all.contains("often"), "{all}");
        assert!(all.contains("`notify` webhooks must be https://"), "{all}");
        assert!(all.starts_with("c.yaml:"), "located: {all}");

        let ok = load(
            "c.yaml",
            &format!(
                "regions:
  us-east-1:
    probes: [ {{ name: api, aws_api: us-east-1 }} ]
  us-west-2:
    probes: [ {{ name: api, aws_api: us-west-2 }} ]
cooldown: 2h
bindings:
  app:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: auto
  back:
    region: us-west-2
    runbook: {dir}/runbooks/failback.yaml
    policy: approve
    cooldown: 0s
"
            ),
        )
        .unwrap();
        assert_eq!(ok.bindings.len(), 2);
        assert_eq!(
            ok.bindings[0].cooldown,
            std::time::Duration::from_secs(7200)
        );
        assert_eq!(ok.bindings[1].cooldown, std::time::Duration::ZERO);
        assert_eq!(ok.control_socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
    }

    #[test]
    fn zonal_probes_and_bindings_are_checked() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "regions:
  us-east-1:
    probes:
      - {{ name: web-a, tcp: \"10.0.1.10:443\", zone: us-east-1a }}
      - {{ name: web-b, tcp: \"10.0.2.10:443\", zone: us-west-2b }}
      - {{ name: api, aws_api: us-east-1 }}
  us-west-2:
    probes:
      - {{ name: only-a, tcp: \"10.1.1.10:443\", zone: us-west-2a }}
bindings:
  zonal:
    region: us-east-1
    zone: us-east-1a
    runbook: {dir}/runbooks/multi-az.yaml
    policy: auto
  unwatched-zone:
    region: us-east-1
    zone: us-east-1c
    runbook: {dir}/runbooks/multi-az.yaml
    policy: approve
  no-zone:
    region: us-east-1
    runbook: {dir}/runbooks/multi-az.yaml
    policy: approve
  leaves-region:
    region: us-east-1
    zone: us-east-1a
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: approve
  other-zone-param:
    region: us-east-1
    zone: us-east-1a
    runbook: {dir}/runbooks/multi-az.yaml
    params: {{ zone: us-east-1b }}
    policy: approve
"
        );
        let all = all_problems("c.yaml", &text);
        for wanted in [
            "probe `web-b`: `zone` `us-west-2b` is not an Availability Zone of us-east-1",
            "region `us-west-2`: every probe watches us-west-2a, so a regional outage could never be told from a zonal one",
            "binding `unwatched-zone`: no probe of region `us-east-1` watches zone `us-east-1c`",
            "binding `no-zone`: runbook `multi-az-failover` is multi-az, which recovers from a zone's loss: give the binding the `zone` it watches",
            "binding `leaves-region` watches zone `us-east-1a` but runbook `pilot-light-failover` is pilot-light",
            "binding `other-zone-param`: param `zone` is `us-east-1b` but the binding watches `us-east-1a`",
        ] {
            assert!(all.contains(wanted), "{wanted}\n---\n{all}");
        }
        assert!(!all.contains("binding `zonal`"), "{all}");
    }

    #[test]
    fn a_reprotected_side_is_checked_and_flipping_twice_is_the_binding_again() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let config = |side: &str| {
            format!(
                "regions:
  us-east-1:
    probes: [ {{ name: api, aws_api: us-east-1 }} ]
  us-west-2:
    probes: [ {{ name: api, aws_api: us-west-2 }} ]
bindings:
  app:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: approve
    protected: [ {{ kind: rds_replica, db_instance: app-db-replica, region: us-west-2 }} ]
    reprotected: {side}
"
            )
        };
        let ok = load(
            "c.yaml",
            &config(&format!(
                "{{ region: us-west-2, runbook: {dir}/runbooks/pilot-light.yaml, params: {{ primary_region: us-west-2, dr_region: us-east-1 }}, protected: [ {{ kind: rds_replica, db_instance: app-db-reprotected, region: us-east-1, rpo_target: 5m }} ] }}"
            )),
        )
        .expect("a valid config");
        let b = &ok.bindings[0];
        let flipped = b.flipped().expect("a reprotected side");
        assert_eq!(
            (flipped.region.as_str(), flipped.reprotected),
            ("us-west-2", true)
        );
        // Its recovery points flip with it: what exposure measures follows.
        let names =
            |b: &Binding| -> Vec<String> { b.protected.iter().map(Protected::name).collect() };
        assert_eq!(names(b), ["rds-replica:us-west-2:app-db-replica"]);
        assert_eq!(
            names(&flipped),
            ["rds-replica:us-east-1:app-db-reprotected"]
        );
        assert_eq!(flipped.flipped().as_ref(), Some(b), "back as it was");
        let all = all_problems(
            "c.yaml",
            &config(&format!(
                "{{ region: eu-west-1, runbook: {dir}/runbooks/pilot-light.yaml, protected: [ {{ kind: rds_replica, db_instance: x, region: useast1 }} ] }}"
            )),
        );
        assert!(
            all.contains("protected `rds-replica:useast1:x`: `useast1` is not an AWS region name"),
            "{all}"
        );
        assert!(
            all.contains(
                "binding `app`: `reprotected`: region `eu-west-1` is not one of `regions`"
            ),
            "{all}"
        );
        assert!(
            all.contains("binding `app`: `reprotected` watches eu-west-1 but runbook `pilot-light-failover` recovers from us-east-1"),
            "{all}"
        );
    }
}
