//! `with` blocks of the Route 53 actions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::exactly_one;

/// One record set to write.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Fully qualified name, e.g. `app.example.com`.
    pub name: String,
    /// Record type, e.g. `A`, `AAAA`, `CNAME`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds; default: the existing record's, else 60.
    pub ttl: Option<u32>,
    /// Values of the record.
    pub values: Vec<String>,
}

/// Rewrite every matching record's values (e.g. primary addresses to DR ones).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Glob over record names (`*` matches any run of characters), e.g. `svc-*.example.com`.
    pub name_pattern: String,
    /// Record type to match.
    #[serde(rename = "type", default = "a_record")]
    pub record_type: String,
    /// Text to find in each value, e.g. `192.0.2.`.
    pub replace: String,
    /// What to put in its place, e.g. `198.51.100.`.
    pub with: String,
}

/// `route53.upsert_records`: upsert records, given or by a rewrite rule, in
/// as few change batches as possible, then wait until INSYNC.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRecords {
    /// Hosted zone, by name (`example.com`) or id.
    pub zone: String,
    /// Records to upsert.
    pub records: Option<Vec<Record>>,
    /// Or: a rule rewriting existing records.
    pub rewrite: Option<Rewrite>,
    /// Wait until the change is INSYNC.
    #[serde(default = "yes")]
    pub wait_insync: bool,
}

impl UpsertRecords {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = exactly_one(&[
            ("records", self.records.is_some()),
            ("rewrite", self.rewrite.is_some()),
        ]);
        if self.records.as_ref().is_some_and(|r| r.is_empty()) {
            problems.push("`records` is empty".into());
        }
        if let Some(r) = &self.records {
            for record in r.iter().filter(|r| r.values.is_empty()) {
                problems.push(format!("record `{}` has no values", record.name));
            }
        }
        problems
    }
}

/// `route53.switch_failover`: make the named record set the PRIMARY of a
/// failover pair (and the other one SECONDARY).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchFailover {
    /// Hosted zone, by name or id.
    pub zone: String,
    /// Record name.
    pub name: String,
    /// Record type.
    #[serde(rename = "type", default = "a_record")]
    pub record_type: String,
    /// Set identifier of the record that becomes PRIMARY.
    pub make_primary: String,
    /// Wait until the change is INSYNC.
    #[serde(default = "yes")]
    pub wait_insync: bool,
}

/// `route53.update_health_check`: invert or disable a health check, which
/// forces the failover records that use it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHealthCheck {
    /// Health check id.
    pub health_check_id: String,
    /// Invert the check's status.
    pub inverted: Option<bool>,
    /// Disable the check (Route 53 then treats it as healthy).
    pub disabled: Option<bool>,
}

impl UpdateHealthCheck {
    pub(super) fn check(&self) -> Vec<String> {
        if self.inverted.is_none() && self.disabled.is_none() {
            vec!["set `inverted` or `disabled` (or both)".into()]
        } else {
            Vec::new()
        }
    }
}

fn a_record() -> String {
    "A".into()
}

fn yes() -> bool {
    true
}
