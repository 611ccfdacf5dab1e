//! `with` blocks of the Route 53 actions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::exactly_one;

/// One record set to write: fixed `values`, or an `alias` to an AWS
/// resource (a load balancer, a CloudFront distribution, another record);
/// routed (weighted, latency or failover) when it has a `set_identifier`.
/// Fields left out keep the zone's current ones (TTL, routing, health
/// check), so writing a target never drops what routes to it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Fully qualified name, e.g. `app.example.com`.
    pub name: String,
    /// Record type, e.g. `A`, `AAAA`, `CNAME`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds; default: the existing record's, else 60. Not for an
    /// alias, which takes its target's.
    pub ttl: Option<u32>,
    /// Values of the record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Or: an alias target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<Alias>,
    /// Which of the routed record sets of this name and type this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// Weighted routing: this set's weight, 0-255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// Latency routing: the AWS region of this set's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Failover routing: `PRIMARY` or `SECONDARY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverRole>,
    /// Health check that decides whether Route 53 answers with this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
}

/// Where an alias record points.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// The target's DNS name, e.g. `dr-alb-1234.us-west-2.elb.amazonaws.com`.
    pub dns_name: String,
    /// The target's hosted zone id: the load balancer's canonical hosted
    /// zone (one per region), CloudFront's `Z2FDTNDATAQYW2`, or this zone's
    /// own id for another record in it.
    pub zone_id: String,
    /// Whether Route 53 answers with this record only while its target is
    /// healthy.
    pub evaluate_target_health: bool,
}

/// A failover record's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FailoverRole {
    /// Answered while its health check is healthy.
    Primary,
    /// Answered when the primary is unhealthy.
    Secondary,
}

impl FailoverRole {
    /// The role as Route 53 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverRole::Primary => "PRIMARY",
            FailoverRole::Secondary => "SECONDARY",
        }
    }
}

impl Record {
    /// The routing policy the record's fields name, if any.
    pub fn routing(&self) -> Option<&'static str> {
        match (self.weight, &self.region, self.failover) {
            (Some(_), _, _) => Some("weighted"),
            (_, Some(_), _) => Some("latency"),
            (_, _, Some(_)) => Some("failover"),
            _ => None,
        }
    }

    fn check(&self) -> Vec<String> {
        let at = format!("record `{}` {}", self.name, self.record_type);
        let mut problems = Vec::new();
        match (self.values.is_empty(), &self.alias) {
            (true, None) => problems.push(format!("{at} has no values and no alias")),
            (false, Some(_)) => problems.push(format!(
                "{at} has both values and an alias; give one (Route 53 takes an alias target or values, not both)"
            )),
            (true, Some(_)) if self.ttl.is_some() => problems.push(format!(
                "{at} is an alias and has a ttl; an alias takes its target's TTL, remove `ttl`"
            )),
            _ => {}
        }
        let policies = [
            self.weight.is_some(),
            self.region.is_some(),
            self.failover.is_some(),
        ]
        .iter()
        .filter(|p| **p)
        .count();
        if policies > 1 {
            problems.push(format!(
                "{at} names more than one routing policy; give one of `weight`, `region`, `failover`"
            ));
        }
        // A set identifier alone keeps that set's routing.
        if self.set_identifier.is_none() && policies > 0 {
            problems.push(format!(
                "{at} has {} routing but no `set_identifier`",
                self.routing().unwrap_or("")
            ));
        }
        if let Some(id) = &self.set_identifier
            && (id.is_empty() || id.len() > 128)
        {
            problems.push(format!("{at}: a set identifier is 1-128 characters"));
        }
        problems
    }
}

/// Rewrite every matching record's values or alias target (e.g. primary
/// addresses or load balancer to DR ones), routed sets included; every
/// other field of each record is kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Glob over record names (`*` matches any run of characters), e.g. `svc-*.example.com`.
    pub name_pattern: String,
    /// Record type to match.
    #[serde(rename = "type", default = "a_record")]
    pub record_type: String,
    /// Text to find in each value or alias target, e.g. `192.0.2.`.
    pub replace: String,
    /// What to put in its place, e.g. `198.51.100.`.
    pub with: String,
    /// For alias records: the hosted zone of the rewritten targets (a load
    /// balancer's canonical zone differs by region); default: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_zone_id: Option<String>,
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
        for record in self.records.iter().flatten() {
            problems.extend(record.check());
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

/// `route53.set_weights`: set the weights of a name's weighted record sets,
/// by set identifier (e.g. `{ us-east-1: 0, us-west-2: 100 }`); only those
/// that differ are written, in one change batch. Sets not named keep
/// their weights.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWeights {
    /// Hosted zone, by name or id.
    pub zone: String,
    /// Record name.
    pub name: String,
    /// Record type.
    #[serde(rename = "type", default = "a_record")]
    pub record_type: String,
    /// The weight (0 to 255) of each record set, by set identifier.
    pub weights: std::collections::BTreeMap<String, u32>,
    /// Wait until the change is INSYNC.
    #[serde(default = "yes")]
    pub wait_insync: bool,
}

/// Route 53's largest weight.
pub const MAX_WEIGHT: u32 = 255;

impl SetWeights {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.weights.is_empty() {
            problems.push("`weights` names no record set".to_string());
        }
        for (id, weight) in &self.weights {
            if *weight > MAX_WEIGHT {
                problems.push(format!(
                    "`weights.{id}`: {weight} is over Route 53's largest weight, {MAX_WEIGHT}"
                ));
            }
        }
        problems
    }
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

#[cfg(test)]
mod tests {
    use super::{Alias, FailoverRole, Record};

    fn record() -> Record {
        Record {
            name: "app.example.com".into(),
            record_type: "A".into(),
            values: vec!["192.0.2.1".into()],
            ..Record::default()
        }
    }

    #[test]
    fn a_record_names_one_target_and_one_routing_policy() {
        assert!(record().check().is_empty());
        let alias = Some(Alias {
            dns_name: "dr-alb.us-west-2.elb.amazonaws.com".into(),
            zone_id: "Z1H1FL5HABSF5".into(),
            evaluate_target_health: true,
        });
        let cases = [
            (
                Record {
                    values: vec![],
                    ..record()
                },
                "has no values and no alias",
            ),
            (
                Record {
                    alias: alias.clone(),
                    ..record()
                },
                "has both values and an alias",
            ),
            (
                Record {
                    values: vec![],
                    alias: alias.clone(),
                    ttl: Some(60),
                    ..record()
                },
                "remove `ttl`",
            ),
            (
                Record {
                    weight: Some(10),
                    ..record()
                },
                "has weighted routing but no `set_identifier`",
            ),
            (
                Record {
                    set_identifier: Some("dr".into()),
                    weight: Some(10),
                    failover: Some(FailoverRole::Secondary),
                    ..record()
                },
                "more than one routing policy",
            ),
        ];
        for (r, said) in cases {
            let problems = r.check();
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(said) && p.starts_with("record `app.example.com` A")),
                "{said}: {problems:?}"
            );
        }
        let alias_only = Record {
            values: vec![],
            alias,
            set_identifier: Some("us-west-2".into()),
            ..record()
        };
        assert!(alias_only.check().is_empty(), "a set keeps its routing");
    }
}
