//! The least IAM policy a set of runbooks needs, from each action's
//! declared IAM actions (the catalogue), scoped by region and, where a step
//! names its resources, by ARN or by tag.
//!
//! - Reads (`Describe*`, `List*`, `Get*`, `Head*`) mostly allow no
//!   resource-level scoping: one statement for them, on `*`, limited to
//!   the regions the runbooks act in (`aws:RequestedRegion`).
//! - Changes are scoped to the resources a step names: RDS instances and
//!   EC2 instances by id, Auto Scaling groups, health checks and buckets by
//!   name; instances selected by tags through `aws:ResourceTag`
//!   conditions. Changes that create resources (restores, launches,
//!   copies) touch several resource types whose ARNs are not known before
//!   the run, so they stay on `*` within the regions.
//! - In drill mode, an action that would change production gets instead
//!   what its drill behaviour needs: creating copies only with the
//!   `lifeboat:drill-run` tag in the request, deleting only what carries
//!   that tag, Route 53 changes only to `drill-` names.
//!
//! [`permissions_of`] maps an SDK operation to the IAM actions it needs,
//! so tests can check every call an action makes against its declaration.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::catalogue::{ActionInput, ActionKind, DrillKind, Service};
use crate::runbook::{Mode, Runbook};

/// The tag every drill resource carries.
pub const DRILL_TAG: &str = "lifeboat:drill-run";

/// Whether an IAM action only reads.
pub fn is_read(action: &str) -> bool {
    let name = action.split(':').nth(1).unwrap_or(action);
    ["Describe", "List", "Get", "Head"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The IAM actions an SDK operation (`Service.Operation`, as the client
/// counter names it) needs.
pub fn permissions_of(operation: &str) -> Vec<String> {
    let (service, op) = operation.split_once('.').unwrap_or(("", operation));
    let prefix = match service {
        "RDS" => "rds",
        "EC2" => "ec2",
        "Route 53" | "Route53" => "route53",
        "S3" => "s3",
        "Auto Scaling" | "AutoScaling" => "autoscaling",
        "CloudWatch" => "cloudwatch",
        "STS" => "sts",
        "KMS" => "kms",
        other => return vec![format!("{}:{op}", other.to_lowercase())],
    };
    let s3 = |actions: &[&str]| actions.iter().map(|a| format!("s3:{a}")).collect();
    match (prefix, op) {
        ("s3", "ListObjectsV2" | "ListObjects" | "HeadBucket") => s3(&["ListBucket"]),
        ("s3", "HeadObject" | "GetObjectAttributes") => s3(&["GetObject"]),
        ("s3", "GetBucketReplication") => s3(&["GetReplicationConfiguration"]),
        ("s3", "CopyObject") => s3(&["GetObject", "PutObject"]),
        _ => vec![format!("{prefix}:{op}")],
    }
}

/// What a drill of `kind` needs instead of its failover permissions, each
/// with the condition that keeps it off production.
fn drill_permissions(kind: ActionKind) -> Vec<(&'static str, DrillScope)> {
    use ActionKind as K;
    use DrillScope::{Created, DrillNames, Tagged};
    match kind {
        K::RdsCreateSnapshot | K::RdsCopySnapshot => vec![
            ("rds:CreateDBSnapshot", Created),
            ("rds:CopyDBSnapshot", Created),
            ("rds:AddTagsToResource", Created),
            ("rds:DeleteDBSnapshot", Tagged),
        ],
        K::RdsRestoreFromSnapshot
        | K::RdsRestorePointInTime
        | K::RdsCreateReadReplica
        | K::RdsPromoteReadReplica => vec![
            ("rds:CreateDBSnapshot", Created),
            ("rds:RestoreDBInstanceFromDBSnapshot", Created),
            ("rds:RestoreDBInstanceToPointInTime", Created),
            ("rds:CreateDBInstanceReadReplica", Created),
            ("rds:AddTagsToResource", Created),
            ("rds:DeleteDBInstance", Tagged),
            ("rds:DeleteDBSnapshot", Tagged),
        ],
        K::RdsModifyInstanceClass => vec![("rds:ModifyDBInstance", Tagged)],
        K::RdsDeleteInstance => vec![("rds:DeleteDBInstance", Tagged)],
        K::Ec2StartInstances | K::Ec2LaunchFromTemplate => vec![
            ("ec2:RunInstances", Created),
            ("ec2:CreateTags", Created),
            ("ec2:TerminateInstances", Tagged),
        ],
        K::Ec2CopyImage => vec![
            ("ec2:CopyImage", Created),
            ("ec2:CreateTags", Created),
            ("ec2:DeregisterImage", Tagged),
            ("ec2:DeleteSnapshot", Tagged),
        ],
        K::Route53UpsertRecords | K::Route53SwitchFailover => {
            vec![("route53:ChangeResourceRecordSets", DrillNames)]
        }
        K::S3CopyObjects => vec![("s3:PutObject", Created), ("s3:DeleteObject", Tagged)],
        // Published with a `DrillRun` dimension no production alarm watches.
        K::CloudwatchPutMetricData => vec![("cloudwatch:PutMetricData", DrillScope::Unscoped)],
        _ => Vec::new(),
    }
}

/// Reads a drill behaviour makes beyond the action's own.
fn drill_reads(kind: ActionKind) -> &'static [&'static str] {
    match kind {
        ActionKind::RdsPromoteReadReplica => &["rds:DescribeDBSnapshots"],
        _ => &[],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DrillScope {
    /// The request must carry the drill tag.
    Created,
    /// The resource must carry the drill tag.
    Tagged,
    /// Route 53 record names must start with `drill-`.
    DrillNames,
    /// As in production (the drill marks its writes another way).
    Unscoped,
}

/// Where a change may apply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Scope {
    resources: BTreeSet<String>,
    /// `aws:RequestedRegion` values; empty for global services.
    regions: BTreeSet<String>,
    /// Further `StringEquals` conditions (tag selections).
    tags: BTreeMap<String, String>,
    drill: Option<DrillScope>,
}

fn global(service: Service) -> bool {
    matches!(service, Service::Route53)
}

/// ARNs (account left as `*`) of the resources an action's changes touch,
/// when its input names them; else `None`.
fn named(input: &ActionInput, region: &str) -> Option<Vec<String>> {
    let db = |id: &str| format!("arn:aws:rds:{region}:*:db:{id}");
    let ids = |one: &Option<String>, many: &Option<Vec<String>>| -> Option<Vec<String>> {
        match (one, many) {
            (Some(id), _) => Some(vec![db(id)]),
            (None, Some(ids)) => Some(ids.iter().map(|i| db(i)).collect()),
            _ => None,
        }
    };
    match input {
        ActionInput::RdsPromoteReadReplica(w) => ids(&w.db_instance, &w.db_instances),
        ActionInput::RdsModifyInstanceClass(w) => ids(&w.db_instance, &None),
        ActionInput::RdsDeleteInstance(w) => Some(vec![db(&w.db_instance)]),
        ActionInput::Ec2StartInstances(w) | ActionInput::Ec2StopInstances(w) => {
            w.instance_ids.as_ref().map(|ids| {
                ids.iter()
                    .map(|i| format!("arn:aws:ec2:{region}:*:instance/{i}"))
                    .collect()
            })
        }
        ActionInput::AutoscalingSetCapacity(w) => Some(vec![format!(
            "arn:aws:autoscaling:{region}:*:autoScalingGroup:*:autoScalingGroupName/{}",
            w.group
        )]),
        ActionInput::Route53UpdateHealthCheck(w) => Some(vec![format!(
            "arn:aws:route53:::healthcheck/{}",
            w.health_check_id
        )]),
        ActionInput::S3CopyObjects(w) => Some(vec![format!("arn:aws:s3:::{}/*", w.dest_bucket)]),
        _ => None,
    }
}

/// Tags that select the resources an action changes, when it selects by tag.
fn selected_by_tags(input: &ActionInput) -> Option<&crate::catalogue::Tags> {
    match input {
        ActionInput::Ec2StartInstances(w) | ActionInput::Ec2StopInstances(w) => w.tags.as_ref(),
        ActionInput::RdsPromoteReadReplica(w) => w.tags.as_ref(),
        ActionInput::RdsModifyInstanceClass(w) => w.tags.as_ref(),
        _ => None,
    }
}

/// Actions the runs of `runbooks` in `mode` could take, with the region
/// each acts in.
fn invocations<'a>(
    runbooks: &'a [Runbook],
    mode: Mode,
    principal: Option<&str>,
) -> Vec<(ActionKind, &'a ActionInput, Option<String>)> {
    let mut out = Vec::new();
    for runbook in runbooks {
        let default = runbook.regions.as_ref().map(|r| r.to.clone());
        for step in runbook
            .steps
            .iter()
            .filter(|s| s.runs_in(mode) && acts_as(s) == principal)
        {
            let region = step.region.clone().or_else(|| default.clone());
            out.push((step.action, &step.input, region.clone()));
            for inv in [&step.fallback, &step.rollback].into_iter().flatten() {
                out.push((
                    inv.action,
                    &inv.input,
                    inv.region.clone().or_else(|| region.clone()),
                ));
            }
        }
    }
    out
}

/// The role a step's calls act as; `None`: the caller's own credentials.
fn acts_as(step: &crate::runbook::Step) -> Option<&str> {
    step.assume_role.as_ref().map(|r| r.role_arn.as_str())
}

/// Whether `principal` may be the one reading `runbook`'s recovery point:
/// the engine reads it as the step it precedes (the first promotion for a
/// replica's lag, the first step to start for an S3 bucket).
fn reads_recovery_point(runbook: &Runbook, mode: Mode, principal: Option<&str>) -> bool {
    use crate::runbook::RecoveryPoint;
    runbook
        .steps
        .iter()
        .filter(|s| s.runs_in(mode))
        .filter(|s| match &runbook.recovery_point {
            Some(RecoveryPoint::RdsReplicaLag { .. }) => {
                s.action == ActionKind::RdsPromoteReadReplica
            }
            Some(RecoveryPoint::S3NewestObject { .. }) => s.needs.is_empty(),
            _ => false,
        })
        .any(|s| acts_as(s) == principal)
}

/// What reading a runbook's `recovery_point` needs, and in which region.
fn recovery_point_reads(runbook: &Runbook) -> (Vec<&'static str>, Option<String>) {
    use crate::runbook::RecoveryPoint;
    let to = runbook.regions.as_ref().map(|r| r.to.clone());
    match &runbook.recovery_point {
        Some(RecoveryPoint::RdsReplicaLag { region, .. }) => (
            vec!["cloudwatch:GetMetricStatistics"],
            region.clone().or(to),
        ),
        Some(RecoveryPoint::S3NewestObject { .. }) => (vec!["s3:ListBucket"], to),
        Some(RecoveryPoint::RdsSnapshot { .. }) | None => (Vec::new(), to),
    }
}

/// What one use of an action needs beyond its kind's list, for what its
/// `with` asks: changing a stopped instance's type to find capacity.
fn input_iam(input: &ActionInput) -> &'static [&'static str] {
    match input {
        ActionInput::Ec2StartInstances(w) if !w.alternative_instance_types.is_empty() => {
            &["ec2:ModifyInstanceAttribute"]
        }
        _ => &[],
    }
}

/// Who a policy is for: the caller's own credentials, or a role the
/// runbooks' steps assume (in its account).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Principal {
    /// The credentials lifeboat runs with.
    Caller,
    /// A role steps act as, by ARN.
    Role(String),
}

impl Principal {
    /// The account a role is in, from its ARN (`arn:aws:iam::ACCOUNT:role/NAME`).
    pub fn account(&self) -> Option<&str> {
        match self {
            Principal::Caller => None,
            Principal::Role(arn) => arn.split(':').nth(4).filter(|a| !a.is_empty()),
        }
    }
}

/// Every principal the runs of `runbooks` in `mode` act as, the caller
/// first, with the policy each needs: the caller's grants what its own
/// steps do and `sts:AssumeRole` on the roles; each role's, what the steps
/// acting as it do (to attach in the role's account).
pub fn policies(runbooks: &[Runbook], mode: Mode) -> Vec<(Principal, Value)> {
    let roles: BTreeSet<String> = runbooks
        .iter()
        .flat_map(|r| r.steps.iter())
        .filter(|s| s.runs_in(mode))
        .filter_map(|s| acts_as(s).map(str::to_string))
        .collect();
    let mut out = vec![(Principal::Caller, policy_for(runbooks, mode, None))];
    for role in roles {
        let policy = policy_for(runbooks, mode, Some(&role));
        out.push((Principal::Role(role), policy));
    }
    out
}

/// The policy document (IAM JSON) the caller's credentials need for the
/// runs of `runbooks` in `mode` (see [`policies`] for the roles').
pub fn policy(runbooks: &[Runbook], mode: Mode) -> Value {
    policy_for(runbooks, mode, None)
}

fn policy_for(runbooks: &[Runbook], mode: Mode, principal: Option<&str>) -> Value {
    let mut reads: BTreeMap<bool, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut changes: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
    for runbook in runbooks {
        if !reads_recovery_point(runbook, mode, principal) {
            continue;
        }
        let (actions, region) = recovery_point_reads(runbook);
        if !actions.is_empty() {
            let entry = reads.entry(false).or_default();
            entry.0.extend(actions.iter().map(|a| a.to_string()));
            entry.1.extend(region);
        }
    }
    for (kind, input, region) in invocations(runbooks, mode, principal) {
        let info = kind.info();
        let is_global = global(info.service);
        let regions: BTreeSet<String> = if is_global {
            BTreeSet::new()
        } else {
            region.iter().cloned().collect()
        };
        let drilled = mode == Mode::Drill && info.drill != DrillKind::AsIs;
        let extra: &[&str] = if drilled { drill_reads(kind) } else { &[] };
        for &action in info.iam.iter().chain(extra).chain(input_iam(input)) {
            if is_read(action) || action.starts_with("kms:Describe") {
                // A Route 53 read an action of another service makes (the
                // data-plane switch confirming its health check) is global
                // too: a region condition would deny it.
                let global_read = is_global || action.starts_with("route53:");
                let entry = reads.entry(global_read).or_default();
                entry.0.insert(action.to_string());
                if !global_read {
                    entry.1.extend(regions.iter().cloned());
                }
                continue;
            }
            if drilled {
                continue;
            }
            let region_name = region.as_deref().unwrap_or("*");
            let scope = Scope {
                resources: named(input, region_name)
                    .map(|r| r.into_iter().collect())
                    .unwrap_or_else(|| BTreeSet::from(["*".to_string()])),
                regions: regions.clone(),
                tags: selected_by_tags(input)
                    .filter(|_| named(input, region_name).is_none())
                    .map(|tags| {
                        tags.iter()
                            .map(|(k, v)| (format!("aws:ResourceTag/{k}"), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                drill: None,
            };
            changes.entry(scope).or_default().insert(action.to_string());
        }
        if drilled {
            for (action, drill) in drill_permissions(kind) {
                let resources = match (drill, input) {
                    (DrillScope::DrillNames, _) => "arn:aws:route53:::hostedzone/*".to_string(),
                    (_, ActionInput::S3CopyObjects(w)) => {
                        format!("arn:aws:s3:::{}/drill-*", w.dest_bucket)
                    }
                    _ => "*".to_string(),
                };
                let scope = Scope {
                    resources: BTreeSet::from([resources]),
                    regions: regions.clone(),
                    tags: BTreeMap::new(),
                    drill: Some(drill),
                };
                changes.entry(scope).or_default().insert(action.to_string());
            }
        }
    }
    let roles: BTreeSet<String> = runbooks
        .iter()
        .flat_map(|r| r.steps.iter())
        .filter(|s| s.runs_in(mode))
        .filter_map(|s| acts_as(s).map(str::to_string))
        .collect();
    if principal.is_none() && !roles.is_empty() {
        let scope = Scope {
            resources: roles,
            regions: BTreeSet::new(),
            tags: BTreeMap::new(),
            drill: None,
        };
        changes
            .entry(scope)
            .or_default()
            .insert("sts:AssumeRole".to_string());
    }
    let mut statements = Vec::new();
    for (is_global, (actions, regions)) in &reads {
        let mut s = json!({
            "Sid": if *is_global { "ReadGlobal" } else { "Read" },
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*",
        });
        if !regions.is_empty() {
            s["Condition"] = json!({ "StringEquals": { "aws:RequestedRegion": regions } });
        }
        statements.push(s);
    }
    for (n, (scope, actions)) in changes.iter().enumerate() {
        let mut condition = serde_json::Map::new();
        let mut equals = serde_json::Map::new();
        if !scope.regions.is_empty() {
            equals.insert("aws:RequestedRegion".into(), json!(scope.regions));
        }
        for (k, v) in &scope.tags {
            equals.insert(k.clone(), json!(v));
        }
        if !equals.is_empty() {
            condition.insert("StringEquals".into(), Value::Object(equals));
        }
        match scope.drill {
            Some(DrillScope::Created) => {
                condition.insert(
                    "Null".into(),
                    json!({ format!("aws:RequestTag/{DRILL_TAG}"): "false" }),
                );
            }
            Some(DrillScope::Tagged) => {
                condition.insert(
                    "Null".into(),
                    json!({ format!("aws:ResourceTag/{DRILL_TAG}"): "false" }),
                );
            }
            Some(DrillScope::DrillNames) => {
                condition.insert(
                    "ForAllValues:StringLike".into(),
                    json!({ "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["drill-*"] }),
                );
            }
            Some(DrillScope::Unscoped) | None => {}
        }
        let sid = match scope.drill {
            Some(_) => format!("Drill{}", n + 1),
            None => format!("Change{}", n + 1),
        };
        let mut s = json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": scope.resources,
        });
        if !condition.is_empty() {
            s["Condition"] = Value::Object(condition);
        }
        statements.push(s);
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The IAM actions a policy for `kind` in `mode` grants, declared reads
/// included: what every operation the action calls must be covered by.
pub fn granted(kind: ActionKind, mode: Mode) -> BTreeSet<String> {
    let info = kind.info();
    let mut all: BTreeSet<String> = info.iam.iter().map(|a| a.to_string()).collect();
    if mode == Mode::Drill && info.drill != DrillKind::AsIs {
        all.retain(|a| is_read(a) || a.starts_with("kms:Describe"));
        all.extend(
            drill_permissions(kind)
                .into_iter()
                .map(|(a, _)| a.to_string()),
        );
        all.extend(drill_reads(kind).iter().map(|a| a.to_string()));
    }
    all
}

/// The operations a run made (its journal's call log) that the permissions
/// its runbook's actions declare do not cover, each as `step (action):
/// Service.Operation needs permission`. Empty when the declarations hold.
pub fn uncovered(
    runbook: &Runbook,
    mode: Mode,
    calls: &[crate::engine::journal::StepCalls],
) -> Vec<String> {
    let mut missing = BTreeSet::new();
    for logged in calls {
        let Some(step) = runbook.steps.iter().find(|s| s.id == logged.step) else {
            missing.insert(format!("step `{}` is not in the runbook", logged.step));
            continue;
        };
        let (what, granted): (String, BTreeSet<String>) = match logged.phase.as_str() {
            "recovery_point" => (
                "recovery point".into(),
                recovery_point_reads(runbook)
                    .0
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
            phase => {
                let kind = match phase {
                    "fallback" => step.fallback.as_ref().map(|f| f.action),
                    "rollback" => step.rollback.as_ref().map(|r| r.action),
                    _ => Some(step.action),
                };
                let Some(kind) = kind else { continue };
                (kind.name().to_string(), granted(kind, mode))
            }
        };
        for operation in logged.calls.keys() {
            for permission in permissions_of(operation) {
                if !granted.contains(&permission) {
                    missing.insert(format!(
                        "step `{}` ({what}): {operation} needs {permission}",
                        step.id
                    ));
                }
            }
        }
    }
    missing.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_the_permissions_iam_checks() {
        assert_eq!(
            permissions_of("RDS.PromoteReadReplica"),
            ["rds:PromoteReadReplica"]
        );
        assert_eq!(permissions_of("S3.ListObjectsV2"), ["s3:ListBucket"]);
        assert_eq!(
            permissions_of("S3.CopyObject"),
            ["s3:GetObject", "s3:PutObject"]
        );
        assert_eq!(
            permissions_of("Auto Scaling.UpdateAutoScalingGroup"),
            ["autoscaling:UpdateAutoScalingGroup"]
        );
        assert!(is_read("ec2:DescribeInstances") && !is_read("ec2:StartInstances"));
    }

    fn load(text: &str) -> Runbook {
        crate::runbook::load("r.yaml", text, &[], crate::runbook::MissingParams::Refuse)
            .unwrap()
            .runbook
    }

    #[test]
    fn changes_are_scoped_to_named_resources_and_tags() {
        let runbook = load(
            "name: r
strategy: pilot-light
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: promote, action: rds.promote_read_replica, with: { db_instance: app-db-replica } }
  - { id: start, action: ec2.start_instances, with: { tags: { Role: app } } }
  - { id: dns, action: route53.upsert_records, with: { zone: example.com, records: [ { name: a.example.com, type: A, values: [192.0.2.1] } ] } }
",
        );
        let policy = policy(std::slice::from_ref(&runbook), Mode::Failover);
        let text = policy.to_string();
        let statements = policy["Statement"].as_array().unwrap();
        let find = |action: &str| {
            statements
                .iter()
                .find(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
                .unwrap_or_else(|| panic!("{action} in {text}"))
        };
        assert_eq!(
            find("rds:PromoteReadReplica")["Resource"],
            json!(["arn:aws:rds:us-west-2:*:db:app-db-replica"])
        );
        assert_eq!(
            find("ec2:StartInstances")["Condition"]["StringEquals"]["aws:ResourceTag/Role"],
            "app"
        );
        assert_eq!(
            find("ec2:DescribeInstances")["Condition"]["StringEquals"]["aws:RequestedRegion"],
            json!(["us-west-2"])
        );
        let dns = find("route53:ChangeResourceRecordSets");
        assert!(dns.get("Condition").is_none(), "Route 53 is global: {dns}");

        let drill = policy_text(&runbook, Mode::Drill);
        assert!(!drill.contains("rds:PromoteReadReplica"), "{drill}");
        assert!(!drill.contains("ec2:StartInstances"), "{drill}");
        assert!(
            drill.contains("aws:ResourceTag/lifeboat:drill-run"),
            "{drill}"
        );
        assert!(
            drill.contains("ChangeResourceRecordSetsNormalizedRecordNames"),
            "{drill}"
        );
    }

    fn policy_text(runbook: &Runbook, mode: Mode) -> String {
        policy(std::slice::from_ref(runbook), mode).to_string()
    }
}
