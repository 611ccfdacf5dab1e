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
use crate::journal::Phase;
use crate::runbook::{Mode, Runbook};

mod grants;

use grants::{DrillScope, Grant};
pub use grants::{Resolved, normalized};

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
        "ARC Zonal Shift" => "arc-zonal-shift",
        "ECS" => "ecs",
        "Lambda" => "lambda",
        other => return vec![format!("{}:{op}", other.to_lowercase())],
    };
    let s3 = |actions: &[&str]| actions.iter().map(|a| format!("s3:{a}")).collect();
    match (prefix, op) {
        ("s3", "ListObjectsV2" | "ListObjects" | "HeadBucket") => s3(&["ListBucket"]),
        ("s3", "HeadObject" | "GetObjectAttributes") => s3(&["GetObject"]),
        ("s3", "GetBucketReplication") => s3(&["GetReplicationConfiguration"]),
        ("s3", "CopyObject") => s3(&["GetObject", "PutObject"]),
        ("lambda", "Invoke") => vec!["lambda:InvokeFunction".to_string()],
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
        K::RdsRestoreFromSnapshot => drill_db("rds:RestoreDBInstanceFromDBSnapshot"),
        K::RdsRestorePointInTime => drill_db("rds:RestoreDBInstanceToPointInTime"),
        K::RdsCreateReadReplica => drill_db("rds:CreateDBInstanceReadReplica"),
        // A drill restores the replica's newest snapshot (or a fresh one),
        // or promotes the replica the drill itself made.
        K::RdsPromoteReadReplica => vec![
            ("rds:CreateDBSnapshot", Created),
            ("rds:RestoreDBInstanceFromDBSnapshot", Created),
            ("rds:AddTagsToResource", Created),
            ("rds:PromoteReadReplica", Tagged),
            ("rds:DeleteDBInstance", Tagged),
            ("rds:DeleteDBSnapshot", Tagged),
        ],
        K::RdsModifyInstanceClass => vec![("rds:ModifyDBInstance", Tagged)],
        K::RdsDeleteInstance => vec![("rds:DeleteDBInstance", Tagged)],
        K::Ec2StartInstances => vec![
            ("ec2:RunInstances", Created),
            ("ec2:CreateTags", Created),
            ("ec2:TerminateInstances", Tagged),
        ],
        K::Ec2LaunchFromTemplate => vec![
            ("ec2:RunInstances", Created),
            ("ec2:CreateTags", Created),
            ("ec2:TerminateInstances", Tagged),
        ],
        // A drill group of the drill's own, from the production group's
        // launch template, deleted at teardown.
        K::AutoscalingSetCapacity => vec![
            ("autoscaling:CreateAutoScalingGroup", Created),
            ("autoscaling:CreateOrUpdateTags", Created),
            ("autoscaling:UpdateAutoScalingGroup", Tagged),
            ("autoscaling:DeleteAutoScalingGroup", Tagged),
            ("ec2:RunInstances", DrillScope::Unscoped),
            ("ec2:CreateTags", DrillScope::Unscoped),
        ],
        K::Ec2StopInstances => vec![("ec2:StopInstances", Tagged)],
        K::Ec2CopyImage => vec![
            ("ec2:CopyImage", Created),
            ("ec2:CreateTags", Created),
            ("ec2:DeregisterImage", Tagged),
            ("ec2:DeleteSnapshot", Tagged),
        ],
        K::Route53UpsertRecords | K::Route53SwitchFailover | K::Route53SetWeights => {
            vec![("route53:ChangeResourceRecordSets", DrillNames)]
        }
        K::S3CopyObjects => vec![("s3:PutObject", Created), ("s3:DeleteObject", Tagged)],
        // The runbook's drill service or drill function, as named.
        K::EcsScaleService => vec![("ecs:UpdateService", DrillScope::Unscoped)],
        K::LambdaInvoke => vec![("lambda:InvokeFunction", DrillScope::Unscoped)],
        // Published with a `DrillRun` dimension no production alarm watches.
        K::CloudwatchPutMetricData => vec![("cloudwatch:PutMetricData", DrillScope::Unscoped)],
        _ => Vec::new(),
    }
}

/// A drill that creates a DB instance copy with `create`, torn down after.
fn drill_db(create: &'static str) -> Vec<(&'static str, DrillScope)> {
    vec![
        (create, DrillScope::Created),
        ("rds:AddTagsToResource", DrillScope::Created),
        ("rds:DeleteDBInstance", DrillScope::Tagged),
    ]
}

/// Reads a drill behaviour makes beyond the action's own.
fn drill_reads(kind: ActionKind) -> &'static [&'static str] {
    match kind {
        ActionKind::RdsPromoteReadReplica => &["rds:DescribeDBSnapshots"],
        ActionKind::Ec2StartInstances => &[
            "ec2:DescribeSubnets",
            "ec2:DescribeInstanceAttribute",
            "ec2:DescribeVolumes",
            "ec2:DescribeImages",
        ],
        _ => &[],
    }
}

/// Whether a drill of `kind` launches instances, which then carry an
/// instance profile (a copy's source's, a launch template's).
fn launches_instances(kind: ActionKind) -> bool {
    matches!(
        kind,
        ActionKind::Ec2StartInstances
            | ActionKind::Ec2LaunchFromTemplate
            | ActionKind::AutoscalingSetCapacity
    )
}

fn global(service: Service) -> bool {
    matches!(service, Service::Route53)
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
            Some(
                point @ (RecoveryPoint::RdsReplicaLag { .. }
                | RecoveryPoint::AuroraGlobalLag { .. }),
            ) => point.read_before(s.action),
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
        Some(
            RecoveryPoint::RdsReplicaLag { region, .. }
            | RecoveryPoint::AuroraGlobalLag { region, .. },
        ) => (
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

/// Whether a use of an action calls nothing at all: a zonal shift of no
/// resources (a runbook's list parameter left empty).
fn makes_no_call(input: &ActionInput) -> bool {
    match input {
        ActionInput::ArcStartZonalShift(w) => w.resources.is_empty(),
        ActionInput::ArcCancelZonalShift(w) => w.resources.is_empty(),
        _ => false,
    }
}

/// Whether a drill of this use changes nothing because the runbook names
/// no drill copy to act on (an ECS service without `drill_service`, a
/// function without `drill_function`): its drill only reads.
fn drill_changes_nothing(input: &ActionInput) -> bool {
    match input {
        ActionInput::EcsScaleService(w) => w.drill_service.is_none(),
        ActionInput::LambdaInvoke(w) => w.drill_function.is_none(),
        _ => false,
    }
}

/// Whether a use of an action names a KMS key: only then does the service
/// use a key on the caller's behalf (a cross-region copy of an encrypted
/// resource needs one named; without one the source is unencrypted).
fn uses_kms_key(input: &ActionInput) -> bool {
    match input {
        ActionInput::RdsCopySnapshot(w) => w.kms_key_id.is_some(),
        ActionInput::RdsCreateReadReplica(w) => w.kms_key_id.is_some(),
        ActionInput::RdsReplicateAutomatedBackups(w) => w.kms_key_id.is_some(),
        ActionInput::Ec2CopyImage(w) => w.kms_key_id.is_some(),
        _ => true,
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
pub fn policies(runbooks: &[Runbook], mode: Mode, resolved: &Resolved) -> Vec<(Principal, Value)> {
    let mut out = vec![(
        Principal::Caller,
        policy_for(runbooks, mode, None, resolved),
    )];
    for role in roles(runbooks, mode).into_keys() {
        // The role's resources are in its own account.
        let in_account = Resolved {
            account: Principal::Role(role.clone()).account().map(str::to_string),
            ..Resolved::default()
        };
        let policy = policy_for(runbooks, mode, Some(&role), &in_account);
        out.push((Principal::Role(role), policy));
    }
    out
}

/// The roles steps assume in `mode`, each with the external ids its
/// steps present.
fn roles(runbooks: &[Runbook], mode: Mode) -> BTreeMap<String, BTreeSet<String>> {
    let mut roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for step in runbooks
        .iter()
        .flat_map(|r| r.steps.iter())
        .filter(|s| s.runs_in(mode))
    {
        if let Some(role) = &step.assume_role {
            roles
                .entry(role.role_arn.clone())
                .or_default()
                .extend(role.external_id.clone());
        }
    }
    roles
}

/// The trust policy `role` needs so that `caller` (the ARN lifeboat runs
/// as) may assume it, with the external id its steps present.
pub fn trust_policy(runbooks: &[Runbook], mode: Mode, role: &str, caller: &str) -> Value {
    let external_ids = roles(runbooks, mode).remove(role).unwrap_or_default();
    let mut statement = json!({
        "Sid": "AssumedByLifeboat",
        "Effect": "Allow",
        "Principal": { "AWS": caller_principal(caller) },
        "Action": "sts:AssumeRole",
    });
    if !external_ids.is_empty() {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": external_ids } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// A caller's identity as a trust policy names it: an assumed-role
/// session (`arn:aws:sts::A:assumed-role/R/S`) by its role.
pub fn caller_principal(arn: &str) -> String {
    match arn.strip_prefix("arn:aws:sts::").and_then(|rest| {
        let (account, path) = rest.split_once(":assumed-role/")?;
        let role = path.split('/').next()?;
        Some(format!("arn:aws:iam::{account}:role/{role}"))
    }) {
        Some(role) => role,
        None => arn.to_string(),
    }
}

/// The policy document (IAM JSON) the caller's credentials need for the
/// runs of `runbooks` in `mode` (see [`policies`] for the roles').
pub fn policy(runbooks: &[Runbook], mode: Mode) -> Value {
    policy_for(runbooks, mode, None, &Resolved::default())
}

/// What kind of statement a grant belongs in (its `Sid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Read,
    Change,
    Drill,
    Deny,
}

type Statements = BTreeMap<(Kind, Grant), BTreeSet<String>>;

/// Add `grant` for `action`, with the region condition of a regional call.
fn grant(out: &mut Statements, kind: Kind, action: &str, mut grant: Grant, region: Option<&str>) {
    let kind = if grant.deny { Kind::Deny } else { kind };
    if let Some(region) = region.filter(|_| !grant.deny) {
        grant.conditions.entry("StringEquals").or_default().insert(
            "aws:RequestedRegion".to_string(),
            BTreeSet::from([region.to_string()]),
        );
    }
    out.entry((kind, grant))
        .or_default()
        .insert(action.to_string());
}

fn policy_for(
    runbooks: &[Runbook],
    mode: Mode,
    principal: Option<&str>,
    resolved: &Resolved,
) -> Value {
    let mut out = Statements::new();
    for runbook in runbooks {
        if !reads_recovery_point(runbook, mode, principal) {
            continue;
        }
        let (actions, region) = recovery_point_reads(runbook);
        let region = region.unwrap_or_else(|| "*".to_string());
        for action in actions {
            let resources = recovery_point_resources(runbook, action);
            let read = Grant {
                resources,
                conditions: grants::Conditions::new(),
                narrower: false,
                deny: false,
            };
            grant(&mut out, Kind::Read, action, read, Some(&region));
        }
    }
    for (kind, input, region) in invocations(runbooks, mode, principal) {
        if makes_no_call(input) {
            continue;
        }
        let info = kind.info();
        let simulated = mode == Mode::Drill && drill_changes_nothing(input);
        let is_global = global(info.service);
        let drilled = mode == Mode::Drill && info.drill != DrillKind::AsIs;
        let extra: &[&str] = if drilled { drill_reads(kind) } else { &[] };
        let step_region = region.clone().unwrap_or_else(|| "*".to_string());
        let mut wanted: Vec<(&str, Option<DrillScope>)> = info
            .iam
            .iter()
            .chain(extra)
            .chain(input_iam(input))
            .filter(|a| !drilled || is_read(a) || a.starts_with("kms:Describe"))
            .filter(|a| !a.starts_with("kms:") || uses_kms_key(input))
            .map(|a| (*a, None))
            .collect();
        if drilled && !simulated {
            wanted.extend(
                drill_permissions(kind)
                    .into_iter()
                    .map(|(a, d)| (a, Some(d))),
            );
        }
        for (action, drill) in wanted {
            let read = is_read(action) || action.starts_with("kms:Describe");
            let statement_kind = match (read, drill) {
                (true, _) => Kind::Read,
                (false, Some(_)) => Kind::Drill,
                (false, None) => Kind::Change,
            };
            // A Route 53 call an action of another service makes (the
            // data-plane switch confirming its health check) is global too:
            // a region condition would deny it.
            let global_call =
                is_global || action.starts_with("route53:") || action.starts_with("iam:");
            let mut regions = vec![step_region.clone()];
            regions.extend(grants::other_regions(action, input));
            regions.dedup();
            for at_region in &regions {
                let at = grants::At {
                    region: at_region,
                    resolved,
                };
                for g in grants::grants(action, input, &at, drill) {
                    let region = (!global_call).then_some(at_region.as_str());
                    grant(&mut out, statement_kind, action, g, region);
                }
            }
        }
    }
    if mode == Mode::Drill {
        let regions: BTreeSet<String> = runbooks
            .iter()
            .flat_map(crate::runbook::regions_of)
            .collect();
        // Passing the roles of instance profiles to EC2: only the roles
        // the runbook's `drill.instance_roles` names, never any role.
        for runbook in runbooks {
            let launches = invocations(std::slice::from_ref(runbook), mode, principal)
                .iter()
                .any(|(kind, _, _)| launches_instances(*kind));
            if launches && !runbook.drill.instance_roles.is_empty() {
                let g = grants::pass_roles(&runbook.drill.instance_roles, resolved);
                grant(&mut out, Kind::Drill, "iam:PassRole", g, None);
            }
        }
        for (action, g, region) in grants::teardown(&regions, resolved) {
            let kind = if is_read(action) {
                Kind::Read
            } else {
                Kind::Drill
            };
            grant(&mut out, kind, action, g, region.as_deref());
        }
    }
    let roles = roles(runbooks, mode);
    if principal.is_none() && !roles.is_empty() {
        let assume = Grant {
            resources: roles.into_keys().collect(),
            conditions: grants::Conditions::new(),
            narrower: false,
            deny: false,
        };
        grant(&mut out, Kind::Change, "sts:AssumeRole", assume, None);
    }
    document(out)
}

/// The resources a recovery-point read is authorized against.
fn recovery_point_resources(runbook: &Runbook, action: &str) -> BTreeSet<String> {
    use crate::runbook::RecoveryPoint;
    match (&runbook.recovery_point, action) {
        (
            Some(RecoveryPoint::S3NewestObject {
                source_bucket,
                dr_bucket,
                ..
            }),
            "s3:ListBucket",
        ) => [source_bucket, dr_bucket]
            .iter()
            .map(|b| format!("arn:aws:s3:::{}", grants::pattern(b)))
            .collect(),
        _ => BTreeSet::from(["*".to_string()]),
    }
}

/// Statements from grants: the actions of identical grants together, then
/// the resources of statements alike but for them.
fn document(out: Statements) -> Value {
    let mut merged: BTreeMap<(Kind, BTreeSet<String>, grants::Conditions, bool), BTreeSet<String>> =
        BTreeMap::new();
    for ((kind, g), actions) in out {
        merged
            .entry((kind, actions, g.conditions, g.narrower))
            .or_default()
            .extend(g.resources);
    }
    let mut ordered: Vec<_> = merged.into_iter().collect();
    ordered.sort_by(|((ka, aa, ca, na), ra), ((kb, ab, cb, nb), rb)| {
        (ka, aa, ra, ca, na).cmp(&(kb, ab, rb, cb, nb))
    });
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut statements = Vec::new();
    for ((kind, actions, conditions, narrower), resources) in ordered {
        let n = counts.entry(kind).or_default();
        *n += 1;
        let mut sid = format!("{kind:?}{n}");
        if narrower {
            sid.push_str("NarrowerWithResolve");
        }
        let resource = if resources.len() == 1 {
            json!(resources.iter().next())
        } else {
            json!(resources)
        };
        let mut s = json!({
            "Sid": sid,
            "Effect": if kind == Kind::Deny { "Deny" } else { "Allow" },
            "Action": actions,
            "Resource": resource,
        });
        if !conditions.is_empty() {
            let mut block = serde_json::Map::new();
            for (op, keys) in conditions {
                let mut entries = serde_json::Map::new();
                for (key, values) in keys {
                    let value = if values.len() == 1 && !op.starts_with("ForAllValues") {
                        json!(values.iter().next())
                    } else {
                        json!(values)
                    };
                    entries.insert(key, value);
                }
                block.insert(op.to_string(), Value::Object(entries));
            }
            s["Condition"] = Value::Object(block);
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
    calls: &[crate::journal::StepCalls],
) -> Vec<String> {
    let mut missing = BTreeSet::new();
    for logged in calls {
        let Some(step) = runbook.steps.iter().find(|s| s.id == logged.step) else {
            missing.insert(format!("step `{}` is not in the runbook", logged.step));
            continue;
        };
        let (what, granted): (String, BTreeSet<String>) = match logged.phase {
            Phase::RecoveryPoint => (
                "recovery point".into(),
                recovery_point_reads(runbook)
                    .0
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
            phase => {
                let kind = match phase {
                    Phase::Fallback => step.fallback.as_ref().map(|f| f.action),
                    Phase::Rollback => step.rollback.as_ref().map(|r| r.action),
                    Phase::Main | Phase::RecoveryPoint => Some(step.action),
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
    fn a_drill_passes_only_the_roles_its_runbook_names() {
        let head = "name: r
strategy: warm-standby
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: start, action: ec2.start_instances, with: { tags: { Role: app } } }
";
        let passes = |text: &str, mode: Mode| {
            policy(&[load(text)], mode)["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| {
                    s["Action"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a == "iam:PassRole")
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(passes(head, Mode::Drill).is_empty(), "no role named: none");
        let named = format!("{head}drill: {{ instance_roles: [app, service/web] }}\n");
        let pass = passes(&named, Mode::Drill);
        assert_eq!(pass.len(), 1, "{pass:#?}");
        assert_eq!(
            pass[0]["Resource"],
            json!(["arn:aws:iam::*:role/app", "arn:aws:iam::*:role/service/web"])
        );
        assert_eq!(
            pass[0]["Condition"]["StringEquals"]["iam:PassedToService"],
            "ec2.amazonaws.com"
        );
        assert!(
            pass[0]["Condition"]["StringEquals"]
                .get("aws:RequestedRegion")
                .is_none(),
            "IAM is global"
        );
        assert!(
            passes(&named, Mode::Failover).is_empty(),
            "a failover starts its own instances and passes no role"
        );
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
            json!("arn:aws:rds:us-west-2:*:db:app-db-replica")
        );
        let start = find("ec2:StartInstances");
        assert_eq!(
            start["Condition"]["StringEquals"]["aws:ResourceTag/Role"],
            "app"
        );
        assert_eq!(start["Resource"], "arn:aws:ec2:us-west-2:*:instance/*");
        assert_eq!(
            find("ec2:DescribeInstances")["Condition"]["StringEquals"]["aws:RequestedRegion"],
            "us-west-2"
        );
        let dns = find("route53:ChangeResourceRecordSets");
        assert!(
            dns["Condition"].get("StringEquals").is_none(),
            "Route 53 is global: no region condition: {dns}"
        );
        assert_eq!(
            dns["Condition"]["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"],
            json!(["a.example.com"])
        );
        assert_eq!(
            dns["Condition"]["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsActions"],
            json!(["UPSERT"])
        );
        assert_eq!(dns["Resource"], "arn:aws:route53:::hostedzone/*");
        assert!(
            dns["Sid"]
                .as_str()
                .unwrap()
                .ends_with("NarrowerWithResolve"),
            "a zone known by name could be named by id: {dns}"
        );

        let drill = super::policy(std::slice::from_ref(&runbook), Mode::Drill);
        let text = drill.to_string();
        assert!(!text.contains("ec2:StartInstances"), "{text}");
        for s in drill["Statement"].as_array().unwrap() {
            let actions = s["Action"].to_string();
            if actions.contains("rds:PromoteReadReplica") {
                // Only the drill's own replica, tagged for the drill.
                assert_eq!(s["Resource"], "arn:aws:rds:us-west-2:*:db:*-drill-*", "{s}");
                assert_eq!(
                    s["Condition"]["Null"]["aws:ResourceTag/lifeboat:drill-run"],
                    "false"
                );
            }
            if actions.contains("route53:ChangeResourceRecordSets") && s["Effect"] == "Allow" {
                let names = s["Condition"]["ForAllValues:StringLike"]
                    ["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
                    .to_string();
                assert!(names.contains("drill-*"), "{s}");
            }
        }
        // What a launch creates must carry the drill tag; what it launches
        // from (image, subnet) cannot: a deny refuses untagged creations.
        let deny = drill["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Effect"] == "Deny" && s["Action"].to_string().contains("ec2:RunInstances"))
            .unwrap_or_else(|| panic!("a deny on untagged launches: {text}"));
        assert_eq!(
            deny["Condition"]["Null"]["aws:RequestTag/lifeboat:drill-run"],
            "true"
        );
        assert!(
            deny["Resource"].to_string().contains("instance/*"),
            "{deny}"
        );
        assert!(!deny["Resource"].to_string().contains("image/"), "{deny}");
    }

    #[test]
    fn a_role_gets_a_trust_policy_for_the_caller_with_its_external_id() {
        let runbook = load(
            "name: r
strategy: pilot-light
regions: { from: us-east-1, to: us-west-2 }
assume_role: { role_arn: \"arn:aws:iam::111111111111:role/dr\", external_id: x-1 }
steps:
  - { id: promote, action: rds.promote_read_replica, with: { db_instance: db-replica } }
",
        );
        let all = policies(
            std::slice::from_ref(&runbook),
            Mode::Failover,
            &Resolved::default(),
        );
        assert_eq!(all.len(), 2);
        let role_policy = all[1].1.to_string();
        assert!(
            role_policy.contains("arn:aws:rds:us-west-2:111111111111:db:db-replica"),
            "{role_policy}"
        );
        assert!(all[0].1.to_string().contains("sts:AssumeRole"));
        let trust = trust_policy(
            std::slice::from_ref(&runbook),
            Mode::Failover,
            "arn:aws:iam::111111111111:role/dr",
            "arn:aws:sts::222222222222:assumed-role/lifeboat/i-0abc",
        );
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"]["AWS"], "arn:aws:iam::222222222222:role/lifeboat",
            "an assumed-role session is trusted by its role"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["sts:ExternalId"],
            json!(["x-1"])
        );
    }
}
