//! Backup verification jobs as configured: what each checks and when.

use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;

/// A verification job as configured.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Its name (`lifeboat verify --job NAME`, metrics, notifications).
    pub name: String,
    /// When the daemon runs it: a cron expression (five fields, or six with
    /// seconds first).
    pub schedule: Option<String>,
    /// Time zone of the schedule (IANA name); default UTC.
    pub timezone: Option<String>,
    /// What it checks.
    pub resources: Vec<Resource>,
    /// Also run the posture checks; default true.
    #[serde(default = "yes")]
    pub posture: bool,
    /// Backup buckets must archive objects older than this many days to
    /// Glacier; default 180.
    #[serde(default = "half_a_year")]
    pub lifecycle_days: u32,
}

fn yes() -> bool {
    true
}
fn half_a_year() -> u32 {
    180
}

/// A resource whose backups a job checks.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Resource {
    /// An RDS instance's snapshots.
    Rds {
        /// The instance.
        db_instance: String,
        /// Its region.
        region: String,
        /// Where copies of its snapshots must be.
        dr_region: Option<String>,
        /// Oldest acceptable newest snapshot (and copy).
        rpo_target: HumanDuration,
        /// Snapshots must be encrypted.
        #[serde(default)]
        encrypted: bool,
        /// With this KMS key (id or ARN).
        kms_key: Option<String>,
        /// Restore the newest DR snapshot into a scratch instance.
        deep: Option<Deep>,
        /// Its automated backups must replicate into `dr_region`
        /// (`rds.replicate_automated_backups`), restorable there to a
        /// moment within `rpo_target`: a point-in-time restore in the DR
        /// region.
        #[serde(default)]
        replicated_backups: bool,
    },
    /// Objects under a prefix of a backup bucket.
    S3 {
        /// The bucket holding the backups (the DR copy).
        bucket: String,
        /// Key prefix.
        #[serde(default)]
        prefix: String,
        /// Its region.
        region: String,
        /// Oldest acceptable newest object.
        rpo_target: HumanDuration,
        /// The bucket replicating into `bucket`, whose replication
        /// configuration is checked.
        source_bucket: Option<String>,
        /// The source bucket's region; default `region`.
        source_region: Option<String>,
    },
    /// AMIs carrying all these tags.
    Ami {
        /// Tags.
        tags: std::collections::BTreeMap<String, String>,
        /// Their region.
        region: String,
        /// Oldest acceptable newest image.
        rpo_target: HumanDuration,
    },
}

/// Deep verification of an RDS resource.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deep {
    /// Instance class of the scratch instance; default the snapshot's.
    pub instance_class: Option<String>,
    /// DB subnet group to restore into.
    pub subnet_group: Option<String>,
    /// A command run once the instance is available, with
    /// `LIFEBOAT_VERIFY_ENDPOINT` and `LIFEBOAT_VERIFY_PORT` in its
    /// environment; it must exit 0.
    pub check: Option<Vec<String>>,
    /// Longest the restore and check may take; default `2h`.
    pub timeout: Option<HumanDuration>,
}

/// A job's schedule: a cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl Schedule {
    /// Parse `expr` (five fields, or six with seconds first) in `tz`
    /// (an IANA name; default UTC).
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<Schedule, String> {
        let cron = expr
            .parse::<croner::Cron>()
            .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
        let tz = match tz {
            None => chrono_tz::UTC,
            Some(name) => name
                .parse::<chrono_tz::Tz>()
                .map_err(|_| format!("`{name}` is not a time zone name (e.g. Europe/Paris)"))?,
        };
        Ok(Schedule { cron, tz })
    }

    /// The first time strictly after `t` the schedule fires.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let local =
            chrono::DateTime::from_timestamp_millis(t.as_millisecond())?.with_timezone(&self.tz);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Timestamp::from_millisecond(next.timestamp_millis()).ok()
    }

    /// The time between its next two firings after `t`: how often a job is
    /// expected to succeed.
    pub fn interval(&self, t: Timestamp) -> Option<Duration> {
        let a = self.next_after(t)?;
        let b = self.next_after(a)?;
        b.duration_since(a).try_into().ok()
    }
}
