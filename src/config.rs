//! The daemon's config file (`/etc/lifeboat/lifeboat.yaml`): typed, checked
//! with located problems like runbooks, every problem reported at once.
//!
//! This holds the settings every part of lifeboat shares (state directory,
//! AWS access, logging); the daemon's own sections (regions, probes,
//! bindings, schedules) are added to [`ConfigSpec`] alongside.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aws::AwsSettings;
use crate::diag::{Diagnostic, Diagnostics};
use crate::duration::HumanDuration;
use crate::yaml::{self, Checked, Spanned, Value};

/// Where the daemon keeps its journal when the config does not say.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lifeboat";

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
}

/// How one region is watched.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Its probes.
    pub probes: Vec<crate::probe::ProbeSpec>,
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
}

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
            | Protected::S3 { region, .. }
            | Protected::Ami { region, .. } => region,
        }
    }

    /// Its RPO target.
    pub fn rpo_target(&self) -> Option<HumanDuration> {
        match self {
            Protected::Rds { rpo_target, .. }
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
}

const STATIC_KEYS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "session_token",
];

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
    let mut protected = Vec::new();
    for item in spec.protected {
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
    let exposure_interval = match &spec.exposure_interval {
        Some(d) if d.value.get().is_zero() => {
            diags.error(d.loc, None, "`exposure_interval` must be more than zero");
            DEFAULT_EXPOSURE_INTERVAL
        }
        Some(d) => d.value.get(),
        None => DEFAULT_EXPOSURE_INTERVAL,
    };
    let mut regions = std::collections::BTreeMap::new();
    for (name, region) in spec.regions {
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
                    "probe `{}`: set exactly one of `http`, `tcp`, `aws_api`",
                    p.name
                )),
                Some(crate::probe::Check::Http(h))
                    if !(h.url.starts_with("http://") || h.url.starts_with("https://")) =>
                {
                    problem(format!(
                        "probe `{}`: `url` must start with http:// or https://",
                        p.name
                    ));
                }
                Some(crate::probe::Check::Tcp(address)) if !address.contains(':') => {
                    problem(format!("probe `{}`: `tcp` must be HOST:PORT", p.name));
                }
                Some(crate::probe::Check::AwsApi(region)) if !crate::runbook::is_region(region) => {
                    problem(format!(
                        "probe `{}`: `{region}` is not an AWS region name",
                        p.name
                    ));
                }
                Some(_) => {}
            }
        }
        regions.insert(name, r);
    }
    let listen = spec.listen.and_then(|l| l.0).unwrap_or_default();
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
        return Err(diags.into_sorted());
    }
    Ok(Config {
        state_dir,
        aws: AwsSettings {
            profile: aws.profile,
            endpoint_url: aws.endpoint_url.map(|u| u.value),
        },
        log_format: log.format,
        log_level: log.level,
        protected,
        exposure_interval,
        listen_metrics,
        regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

        let ok = load("c.yaml", "protected:\n  - { kind: rds, db_instance: app-db, region: us-west-2, rpo_target: 1h }\n").unwrap();
        assert_eq!(ok.protected[0].name(), "rds:us-west-2:app-db");
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
}
