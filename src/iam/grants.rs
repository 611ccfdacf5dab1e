//! What one IAM action of one step is authorized against: the resources
//! AWS checks it on (the resource types the Service Authorization
//! Reference lists for the action), as narrow as the step's input names
//! them, and the conditions that keep it there.
//!
//! Each resource is either one the call creates, one it changes, or one
//! it only uses (a snapshot restored from, a subnet launched into). AWS
//! puts request tags in the context of created resources only, so a
//! drill's "the request carries the drill tag" condition goes on those,
//! "the resource carries it" on changed ones, and used resources get
//! neither: a drill may read production, never write it.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::ActionInput;
use crate::catalogue::route53::Record;

use super::DRILL_TAG;

/// A condition block: operator → key → values.
pub(super) type Conditions = BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>;

/// What the policy assembly knows beyond the runbooks: the account and
/// ids looked up by `iam-policy --resolve`.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// The account resources are in (ARNs keep `*` without it).
    pub account: Option<String>,
    /// Hosted zone ids by zone name (lowercase, no trailing dot).
    pub zones: BTreeMap<String, String>,
    /// Launch template ids by (region, name).
    pub launch_templates: BTreeMap<(String, String), String>,
}

/// How a drill keeps one of its permissions off production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum DrillScope {
    /// What the call creates must carry the drill tag in the request.
    Created,
    /// What the call changes must carry the drill tag.
    Tagged,
    /// Route 53 changes only to `drill-<run>.` names.
    DrillNames,
    /// As in production (the drill marks its writes another way).
    Unscoped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Created,
    Changed,
    Used,
}

/// One statement's worth: resources, conditions, and whether a lookup
/// (`--resolve`) could name the resources more narrowly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Grant {
    pub resources: BTreeSet<String>,
    pub conditions: Conditions,
    pub narrower: bool,
    /// A deny that keeps part of an allow's resources to a condition.
    pub deny: bool,
}

/// Where a step acts.
pub(super) struct At<'a> {
    /// The step's region (`*` when the runbook does not say).
    pub region: &'a str,
    pub resolved: &'a Resolved,
}

impl At<'_> {
    fn account(&self) -> &str {
        self.resolved.account.as_deref().unwrap_or("*")
    }
    fn rds(&self, region: &str, kind: &str, name: &str) -> String {
        if name.starts_with("arn:") {
            return pattern(name);
        }
        format!(
            "arn:aws:rds:{region}:{}:{kind}:{}",
            self.account(),
            pattern(name)
        )
    }
    fn ec2(&self, region: &str, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:ec2:{region}:{}:{kind}/{}",
            self.account(),
            pattern(id)
        )
    }
    /// Images and snapshots: no account in their ARN.
    fn ec2_public(&self, region: &str, kind: &str, id: &str) -> String {
        format!("arn:aws:ec2:{region}::{kind}/{}", pattern(id))
    }
    fn kms_key(&self, region: &str, key: Option<&str>) -> (String, bool) {
        match key {
            Some(arn) if arn.starts_with("arn:aws:kms:") && !arn.contains(":alias/") => {
                (arn.to_string(), false)
            }
            Some(id) if !id.starts_with("alias/") && !id.contains(':') => (
                format!(
                    "arn:aws:kms:{region}:{}:key/{}",
                    self.account(),
                    pattern(id)
                ),
                false,
            ),
            // An alias names a key IAM checks by its id.
            _ => (
                format!("arn:aws:kms:{region}:{}:key/*", self.account()),
                key.is_some(),
            ),
        }
    }
    /// A hosted zone, by id or by name (narrower once resolved).
    fn zone(&self, zone: &str) -> (String, bool) {
        if !zone.contains('.') {
            let id = zone.trim_start_matches("/hostedzone/");
            return (
                format!("arn:aws:route53:::hostedzone/{}", pattern(id)),
                false,
            );
        }
        match self.resolved.zones.get(&normalized(zone)) {
            Some(id) => (format!("arn:aws:route53:::hostedzone/{id}"), false),
            None => ("arn:aws:route53:::hostedzone/*".to_string(), true),
        }
    }
}

/// A name with its run-time references (`${...}`) as `*`.
pub(super) fn pattern(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                if !out.ends_with('*') {
                    out.push('*');
                }
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    if out.is_empty() { "*".to_string() } else { out }
}

/// A DNS name as Route 53's record-name condition key holds it: lowercase,
/// no trailing dot, characters other than `a-z0-9-_.` (and the `*` of a
/// pattern) as `\` and three octal digits.
pub fn normalized(name: &str) -> String {
    let name = pattern(name);
    let mut out = String::new();
    for c in name.trim_end_matches('.').chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*') {
            out.push(c);
        } else {
            for byte in c.to_string().bytes() {
                out.push_str(&format!("\\{byte:03o}"));
            }
        }
    }
    out
}

/// The touches of `action` for one use of an action with `input`.
struct Touches {
    list: Vec<(Role, String)>,
    /// Conditions every statement of this action carries.
    conditions: Conditions,
    narrower: bool,
    /// Tags that select the changed resources (failover only).
    selected_by: Option<crate::catalogue::Tags>,
}

impl Touches {
    fn new() -> Touches {
        Touches {
            list: Vec::new(),
            conditions: Conditions::new(),
            narrower: false,
            selected_by: None,
        }
    }
    fn add(&mut self, role: Role, arn: String) -> &mut Self {
        self.list.push((role, arn));
        self
    }
    fn condition(&mut self, op: &'static str, key: &str, values: &[String]) -> &mut Self {
        self.conditions
            .entry(op)
            .or_default()
            .entry(key.to_string())
            .or_default()
            .extend(values.iter().cloned());
        self
    }
}

/// The DB instances an RDS action changes: named, or every one in the
/// region (then selected by tags, when it selects so).
fn dbs(at: &At, one: &Option<String>, many: &Option<Vec<String>>) -> Vec<String> {
    match (one, many) {
        (Some(id), _) => vec![at.rds(at.region, "db", id)],
        (None, Some(ids)) => ids.iter().map(|i| at.rds(at.region, "db", i)).collect(),
        _ => vec![at.rds(at.region, "db", "*")],
    }
}

/// The grants `action` needs for one use with `input` at `at`; in a drill,
/// scoped by `drill`.
///
/// One statement allows the action on every resource it needs (IAM
/// linters read a statement as a whole: each resource type the action
/// requires must be in it); where only some of those resources must meet
/// a condition (the drill tag on what a launch creates, not on the image
/// it launches from), a deny statement per condition refuses those
/// resources when the condition does not hold.
pub(super) fn grants(
    action: &str,
    input: &ActionInput,
    at: &At,
    drill: Option<DrillScope>,
) -> Vec<Grant> {
    let t = touches(action, input, at, drill.is_some());
    let mut by_conditions: BTreeMap<Conditions, BTreeSet<String>> = BTreeMap::new();
    for (role, arn) in &t.list {
        let mut extra = Conditions::new();
        let mut require = |op: &'static str, key: String, value: &str| {
            extra
                .entry(op)
                .or_default()
                .insert(key, BTreeSet::from([value.to_string()]));
        };
        match (drill, role) {
            (Some(DrillScope::Created), Role::Created) => {
                require("Null", format!("aws:RequestTag/{DRILL_TAG}"), "false")
            }
            (Some(DrillScope::Created | DrillScope::Tagged), Role::Changed)
            | (Some(DrillScope::Tagged), Role::Created) => {
                require("Null", format!("aws:ResourceTag/{DRILL_TAG}"), "false")
            }
            (None | Some(DrillScope::Unscoped), Role::Changed) if arn.ends_with('*') => {
                for (k, v) in t.selected_by.iter().flatten() {
                    require("StringEquals", format!("aws:ResourceTag/{k}"), v);
                }
            }
            _ => {}
        }
        by_conditions.entry(extra).or_default().insert(arn.clone());
    }
    let allow = |resources: BTreeSet<String>, extra: Option<&Conditions>| {
        let mut conditions = t.conditions.clone();
        for (op, keys) in extra.into_iter().flatten() {
            let entry = conditions.entry(op).or_default();
            for (k, v) in keys {
                entry.insert(k.clone(), v.clone());
            }
        }
        Grant {
            resources,
            conditions,
            narrower: t.narrower,
            deny: false,
        }
    };
    if by_conditions.len() == 1 {
        let (extra, resources) = by_conditions.into_iter().next().unwrap_or_default();
        return vec![allow(resources, Some(&extra))];
    }
    let everything: BTreeSet<String> = by_conditions.values().flatten().cloned().collect();
    let mut out = vec![allow(everything, None)];
    for (extra, resources) in by_conditions {
        for (op, keys) in extra {
            for (key, values) in keys {
                let (negated, values) = match op {
                    "Null" => (
                        "Null",
                        values
                            .iter()
                            .map(|v| if v == "false" { "true" } else { "false" }.to_string())
                            .collect(),
                    ),
                    _ => ("StringNotEquals", values),
                };
                let mut conditions = Conditions::new();
                conditions.entry(negated).or_default().insert(key, values);
                out.push(Grant {
                    resources: resources.clone(),
                    conditions,
                    narrower: false,
                    deny: true,
                });
            }
        }
    }
    out
}

/// `iam:PassRole` on the roles a drill's copies and groups may launch
/// with (the runbook's `drill.instance_roles`), to EC2 and nothing else.
pub(super) fn pass_roles(roles: &[String], resolved: &Resolved) -> Grant {
    let account = resolved.account.as_deref().unwrap_or("*");
    let mut conditions = Conditions::new();
    conditions.entry("StringEquals").or_default().insert(
        "iam:PassedToService".to_string(),
        BTreeSet::from(["ec2.amazonaws.com".to_string()]),
    );
    Grant {
        resources: roles
            .iter()
            .map(|role| format!("arn:aws:iam::{account}:role/{}", pattern(role)))
            .collect(),
        conditions,
        narrower: false,
        deny: false,
    }
}

/// What a drill's teardown needs, as every principal of the drill, in each
/// of `regions`: finding what carries the drill tag (RDS instances and
/// snapshots, EC2 instances and AMIs), objects under `lifeboat-drill-`
/// and `drill-` records, and deleting them; `(action, grant, region)`,
/// the region `None` for global calls.
pub(super) fn teardown(
    regions: &BTreeSet<String>,
    resolved: &Resolved,
) -> Vec<(&'static str, Grant, Option<String>)> {
    let mut out = Vec::new();
    let plain = |resources: &[String], conditions: Conditions| Grant {
        resources: resources.iter().cloned().collect(),
        conditions,
        narrower: false,
        deny: false,
    };
    let tagged = || {
        let mut c = Conditions::new();
        c.entry("Null").or_default().insert(
            format!("aws:ResourceTag/{DRILL_TAG}"),
            BTreeSet::from(["false".to_string()]),
        );
        c
    };
    let like = |key: &str, values: &[&str]| {
        let mut c = Conditions::new();
        c.entry("StringLike").or_default().insert(
            key.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        c
    };
    for region in regions {
        let at = At { region, resolved };
        let r = Some(region.clone());
        let rds = |kind: &str, name: &str| at.rds(region, kind, name);
        out.push((
            "rds:DescribeDBInstances",
            plain(&[rds("db", "*")], Conditions::new()),
            r.clone(),
        ));
        out.push((
            "rds:DescribeDBSnapshots",
            plain(&[rds("snapshot", "*")], Conditions::new()),
            r.clone(),
        ));
        out.push((
            "rds:DeleteDBInstance",
            plain(&[rds("db", "*-drill-*")], tagged()),
            r.clone(),
        ));
        out.push((
            "rds:DeleteDBSnapshot",
            plain(&[rds("snapshot", "*-drill-*")], tagged()),
            r.clone(),
        ));
        for read in [
            "ec2:DescribeInstances",
            "ec2:DescribeImages",
            "ec2:DescribeVolumes",
            "autoscaling:DescribeAutoScalingGroups",
            "s3:ListAllMyBuckets",
        ] {
            out.push((
                read,
                plain(&["*".to_string()], Conditions::new()),
                r.clone(),
            ));
        }
        out.push((
            "ec2:TerminateInstances",
            plain(&[at.ec2(region, "instance", "*")], tagged()),
            r.clone(),
        ));
        out.push((
            "ec2:DeleteVolume",
            plain(&[at.ec2(region, "volume", "*")], tagged()),
            r.clone(),
        ));
        out.push((
            "autoscaling:DeleteAutoScalingGroup",
            plain(
                &[format!(
                    "arn:aws:autoscaling:{region}:{}:autoScalingGroup:*:autoScalingGroupName/*-drill-*",
                    at.account()
                )],
                tagged(),
            ),
            r.clone(),
        ));
        out.push((
            "ec2:DeregisterImage",
            plain(&[at.ec2_public(region, "image", "*")], tagged()),
            r.clone(),
        ));
        out.push((
            "s3:ListBucket",
            plain(
                &["arn:aws:s3:::*".to_string()],
                like("s3:prefix", &["lifeboat-drill-*"]),
            ),
            r.clone(),
        ));
        out.push((
            "s3:DeleteObject",
            plain(
                &["arn:aws:s3:::*/lifeboat-drill-*".to_string()],
                Conditions::new(),
            ),
            r.clone(),
        ));
    }
    out.push((
        "route53:ListHostedZones",
        plain(&["*".to_string()], Conditions::new()),
        None,
    ));
    out.push((
        "route53:ListResourceRecordSets",
        plain(
            &["arn:aws:route53:::hostedzone/*".to_string()],
            Conditions::new(),
        ),
        None,
    ));
    let mut delete = Conditions::new();
    delete
        .entry("ForAllValues:StringEquals")
        .or_default()
        .insert(
            "route53:ChangeResourceRecordSetsActions".to_string(),
            BTreeSet::from(["DELETE".to_string()]),
        );
    delete.entry("ForAllValues:StringLike").or_default().insert(
        "route53:ChangeResourceRecordSetsNormalizedRecordNames".to_string(),
        BTreeSet::from(["drill-*".to_string()]),
    );
    out.push((
        "route53:ChangeResourceRecordSets",
        plain(&["arn:aws:route53:::hostedzone/*".to_string()], delete),
        None,
    ));
    out
}

/// The regions a use of `input` sends `action` to beyond the step's own:
/// reads of a cross-region source, and the source-region request RDS
/// replays from a pre-signed URL.
pub(super) fn other_regions(action: &str, input: &ActionInput) -> Vec<String> {
    use ActionInput as I;
    let source = match input {
        I::RdsCopySnapshot(w) => Some(w.source_region.clone()),
        I::RdsCreateReadReplica(w) => w.source_region.clone(),
        I::RdsRestorePointInTime(w) => w.source_region.clone(),
        I::RdsReplicateAutomatedBackups(w) => Some(w.source_region.clone()),
        I::Ec2CopyImage(w) => Some(w.source_region.clone()),
        _ => None,
    };
    let in_source = match input {
        I::RdsCopySnapshot(_) => matches!(
            action,
            "rds:DescribeDBSnapshots" | "rds:CopyDBSnapshot" | "rds:DescribeDBInstances"
        ),
        I::RdsCreateReadReplica(_) => matches!(
            action,
            "rds:DescribeDBInstances" | "rds:CreateDBInstanceReadReplica"
        ),
        I::RdsReplicateAutomatedBackups(_) => matches!(
            action,
            "rds:DescribeDBInstances"
                | "rds:DescribeDBInstanceAutomatedBackups"
                | "rds:StartDBInstanceAutomatedBackupsReplication"
        ),
        I::RdsRestorePointInTime(_) => action == "rds:DescribeDBInstanceAutomatedBackups",
        I::Ec2CopyImage(_) => action == "ec2:DescribeImages",
        _ => false,
    };
    source.filter(|_| in_source).into_iter().collect()
}

fn touches(action: &str, input: &ActionInput, at: &At, drilled: bool) -> Touches {
    use ActionInput as I;
    let r = at.region;
    let mut t = Touches::new();
    // Names of what a drill creates: `<id>-drill-<run>`, truncated to the
    // identifier's limit, so matched by their marker only.
    let created_db = |id: &str| {
        if drilled {
            at.rds(r, "db", "*-drill-*")
        } else {
            at.rds(r, "db", id)
        }
    };
    let created_snapshot = |id: Option<&str>| match (drilled, id) {
        (true, _) => at.rds(r, "snapshot", "*-drill-*"),
        (false, Some(id)) => at.rds(r, "snapshot", id),
        (false, None) => at.rds(r, "snapshot", "*"),
    };
    let db_support = |t: &mut Touches, subnet_group: Option<&str>| {
        t.add(Role::Used, at.rds(r, "og", "*"))
            .add(Role::Used, at.rds(r, "pg", "*"))
            .add(Role::Used, at.rds(r, "subgrp", subnet_group.unwrap_or("*")));
    };
    match (action, input) {
        // Reads without resource-level permissions.
        (
            "ec2:DescribeInstances"
            | "ec2:DescribeInstanceStatus"
            | "ec2:DescribeImages"
            | "ec2:DescribeLaunchTemplates"
            | "ec2:DescribeVolumes"
            | "ec2:DescribeSubnets"
            | "ec2:DescribeAvailabilityZones"
            | "arc-zonal-shift:ListZonalShifts"
            | "autoscaling:DescribeAutoScalingGroups"
            | "autoscaling:DescribeScalingActivities"
            | "cloudwatch:GetMetricStatistics"
            | "route53:ListHostedZonesByName"
            | "route53:ListHealthChecks",
            _,
        ) => {
            t.add(Role::Used, "*".to_string());
        }
        ("rds:DescribeDBInstances", _) => {
            t.add(Role::Used, at.rds(r, "db", "*"));
        }
        ("ec2:DescribeInstanceAttribute", _) => {
            t.add(Role::Used, at.ec2(r, "instance", "*"));
        }
        ("rds:DescribeDBClusters", input) => {
            let cluster = match input {
                I::RdsFailoverCluster(w) => w.db_cluster.as_str(),
                I::RdsSwitchoverGlobalCluster(w) => w.target_cluster.as_str(),
                I::RdsFailoverGlobalCluster(w) => w.target_cluster.as_str(),
                I::RdsSetServerlessCapacity(w) => w.db_cluster.as_str(),
                _ => "*",
            };
            t.add(Role::Used, at.rds(r, "cluster", cluster));
        }
        ("rds:DescribeDBSnapshots", _) => {
            t.add(Role::Used, at.rds(r, "db", "*"))
                .add(Role::Used, at.rds(r, "snapshot", "*"));
        }
        ("rds:DescribeDBInstanceAutomatedBackups", _) => {
            t.add(Role::Used, at.rds(r, "db", "*"))
                .add(Role::Used, at.rds(r, "auto-backup", "*"));
        }
        ("route53:GetChange", _) => {
            t.add(Role::Used, "arn:aws:route53:::change/*".to_string());
        }
        ("route53:ListResourceRecordSets", I::Route53UpsertRecords(w)) => {
            let (zone, narrower) = at.zone(&w.zone);
            t.add(Role::Used, zone).narrower = narrower;
        }
        ("route53:ListResourceRecordSets", I::Route53SwitchFailover(w)) => {
            let (zone, narrower) = at.zone(&w.zone);
            t.add(Role::Used, zone).narrower = narrower;
        }
        ("route53:ListResourceRecordSets", I::Route53SetWeights(w)) => {
            let (zone, narrower) = at.zone(&w.zone);
            t.add(Role::Used, zone).narrower = narrower;
        }
        ("route53:GetHealthCheck" | "route53:GetHealthCheckStatus", input) => {
            let id = match input {
                I::Route53UpdateHealthCheck(w) => Some(w.health_check_id.as_str()),
                I::CloudwatchPutMetricData(w) => w
                    .confirm
                    .as_ref()
                    .and_then(|c| c.health_check_id.as_deref()),
                _ => None,
            };
            t.add(
                Role::Used,
                format!(
                    "arn:aws:route53:::healthcheck/{}",
                    pattern(id.unwrap_or("*"))
                ),
            );
        }
        ("route53:UpdateHealthCheck", I::Route53UpdateHealthCheck(w)) => {
            t.add(
                Role::Changed,
                format!(
                    "arn:aws:route53:::healthcheck/{}",
                    pattern(&w.health_check_id)
                ),
            );
        }
        ("route53:ChangeResourceRecordSets", input) => {
            let (zone, names, types) = match input {
                I::Route53UpsertRecords(w) => {
                    let (names, types) = record_names(w);
                    (w.zone.as_str(), names, types)
                }
                I::Route53SwitchFailover(w) => (
                    w.zone.as_str(),
                    vec![w.name.clone()],
                    vec![w.record_type.clone()],
                ),
                I::Route53SetWeights(w) => (
                    w.zone.as_str(),
                    vec![w.name.clone()],
                    vec![w.record_type.clone()],
                ),
                _ => ("*", vec!["*".to_string()], Vec::new()),
            };
            let (zone, narrower) = at.zone(zone);
            let names: Vec<String> = names
                .iter()
                .map(|n| {
                    if drilled {
                        format!("drill-*.{}", normalized(n))
                    } else {
                        normalized(n)
                    }
                })
                .collect();
            let actions: Vec<String> = if drilled {
                // The teardown deletes what the drill wrote.
                vec!["DELETE".into(), "UPSERT".into()]
            } else {
                vec!["UPSERT".into()]
            };
            let types: Vec<String> = types.iter().map(|t| t.to_ascii_uppercase()).collect();
            t.add(Role::Changed, zone).narrower = narrower;
            t.condition(
                "ForAllValues:StringLike",
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                &names,
            )
            .condition(
                "ForAllValues:StringEquals",
                "route53:ChangeResourceRecordSetsActions",
                &actions,
            );
            if !types.is_empty() {
                t.condition(
                    "ForAllValues:StringEquals",
                    "route53:ChangeResourceRecordSetsRecordTypes",
                    &types,
                );
            }
        }
        // RDS changes.
        ("rds:PromoteReadReplica", I::RdsPromoteReadReplica(w)) => {
            for db in dbs(at, &w.db_instance, &w.db_instances) {
                t.add(Role::Changed, db);
            }
            if drilled {
                // A drill promotes only the replica it made itself.
                t.list = vec![(Role::Changed, at.rds(r, "db", "*-drill-*"))];
            }
            t.selected_by = w.tags.clone();
        }
        ("rds:ModifyDBInstance", I::RdsIsolateInstance(w)) => {
            t.add(Role::Changed, at.rds(r, "db", &w.db_instance));
        }
        ("rds:ModifyDBInstance", I::RdsModifyInstanceClass(w)) => {
            if drilled {
                t.add(Role::Changed, at.rds(r, "db", "*-drill-*"));
            } else {
                for db in dbs(at, &w.db_instance, &None) {
                    t.add(Role::Changed, db);
                }
                t.selected_by = w.tags.clone();
            }
        }
        ("arc-zonal-shift:StartZonalShift" | "arc-zonal-shift:GetManagedResource", input) => {
            if let I::ArcStartZonalShift(w) = input {
                for r in &w.resources {
                    t.add(Role::Changed, r.clone());
                }
            }
        }
        ("arc-zonal-shift:CancelZonalShift", input) => {
            if let I::ArcCancelZonalShift(w) = input {
                for r in &w.resources {
                    t.add(Role::Changed, r.clone());
                }
            }
        }
        ("ecs:DescribeServices" | "ecs:UpdateService", I::EcsScaleService(w)) => {
            let service = match (&w.drill_service, drilled && action == "ecs:UpdateService") {
                (Some(drill), true) => drill.as_str(),
                _ => w.service.as_str(),
            };
            t.add(Role::Changed, ecs_service(at, &w.cluster, service));
            // Reads are granted alike in both modes; a drill reads its
            // drill service.
            if action == "ecs:DescribeServices"
                && let Some(drill) = &w.drill_service
            {
                t.add(Role::Changed, ecs_service(at, &w.cluster, drill));
            }
        }
        ("lambda:InvokeFunction", I::LambdaInvoke(w)) => {
            let (function, qualifier) = match (&w.drill_function, drilled) {
                (Some(drill), true) => (drill.as_str(), None),
                _ => (w.function.as_str(), w.qualifier.as_deref()),
            };
            t.add(Role::Changed, lambda_function(at, function, qualifier));
        }
        ("rds:DescribeGlobalClusters", input) => {
            let global = match input {
                I::RdsSwitchoverGlobalCluster(w) => w.global_cluster.as_str(),
                I::RdsFailoverGlobalCluster(w) => w.global_cluster.as_str(),
                _ => "*",
            };
            t.add(Role::Used, at.rds("", "global-cluster", global));
        }
        ("rds:SwitchoverGlobalCluster" | "rds:FailoverGlobalCluster", input) => {
            let (global, target) = match input {
                I::RdsSwitchoverGlobalCluster(w) => {
                    (w.global_cluster.as_str(), w.target_cluster.as_str())
                }
                I::RdsFailoverGlobalCluster(w) => {
                    (w.global_cluster.as_str(), w.target_cluster.as_str())
                }
                _ => ("*", "*"),
            };
            t.add(Role::Changed, at.rds("", "global-cluster", global))
                .add(Role::Changed, at.rds(r, "cluster", target));
        }
        ("rds:ModifyDBCluster", I::RdsSetServerlessCapacity(w)) => {
            t.add(Role::Changed, at.rds(r, "cluster", &w.db_cluster));
        }
        ("rds:RebootDBInstance", I::RdsFailoverInstance(w)) => {
            t.add(Role::Changed, at.rds(r, "db", &w.db_instance));
        }
        ("rds:FailoverDBCluster", I::RdsFailoverCluster(w)) => {
            t.add(Role::Changed, at.rds(r, "cluster", &w.db_cluster));
        }
        ("rds:DeleteDBInstance", I::RdsDeleteInstance(w)) if !drilled => {
            t.add(Role::Changed, at.rds(r, "db", &w.db_instance));
        }
        ("rds:DeleteDBInstance", _) => {
            t.add(Role::Changed, at.rds(r, "db", "*-drill-*"));
        }
        ("rds:DeleteDBSnapshot", _) => {
            t.add(Role::Changed, at.rds(r, "snapshot", "*-drill-*"));
        }
        ("rds:CreateDBSnapshot", input) => {
            let (source, name) = match input {
                I::RdsCreateSnapshot(w) => (w.db_instance.as_str(), w.snapshot_id.as_deref()),
                I::RdsPromoteReadReplica(w) => (w.db_instance.as_deref().unwrap_or("*"), None),
                _ => ("*", None),
            };
            t.add(Role::Used, at.rds(r, "db", source))
                .add(Role::Created, created_snapshot(name));
        }
        ("rds:CopyDBSnapshot", I::RdsCopySnapshot(w)) => {
            let source = w.source_snapshot.as_deref().unwrap_or("*");
            t.add(Role::Used, at.rds(&w.source_region, "snapshot", source))
                .add(
                    Role::Created,
                    created_snapshot(w.target_snapshot_id.as_deref()),
                );
        }
        ("rds:RestoreDBInstanceFromDBSnapshot", input) => {
            let (target, snapshot, subnet_group) = match input {
                I::RdsRestoreFromSnapshot(w) => (
                    w.db_instance.as_str(),
                    w.snapshot.as_deref(),
                    w.subnet_group.as_deref(),
                ),
                I::RdsPromoteReadReplica(w) => {
                    (w.db_instance.as_deref().unwrap_or("*"), None, None)
                }
                _ => ("*", None, None),
            };
            t.add(Role::Created, created_db(target))
                .add(Role::Used, at.rds(r, "snapshot", snapshot.unwrap_or("*")));
            db_support(&mut t, subnet_group);
        }
        ("rds:RestoreDBInstanceToPointInTime", I::RdsRestorePointInTime(w)) => {
            t.add(Role::Created, created_db(&w.target_db_instance));
            match w.source_region.as_deref().filter(|s| *s != r) {
                None => {
                    t.add(Role::Used, at.rds(r, "db", &w.source_db_instance));
                }
                Some(_) => {
                    t.add(Role::Used, at.rds(r, "auto-backup", "*"));
                }
            }
            db_support(&mut t, w.subnet_group.as_deref());
        }
        ("rds:CreateDBInstanceReadReplica", I::RdsCreateReadReplica(w)) => {
            let source_region = w.source_region.as_deref().unwrap_or(r);
            t.add(Role::Created, created_db(&w.db_instance))
                .add(
                    Role::Used,
                    at.rds(source_region, "db", &w.source_db_instance),
                )
                // Required by the action's definition (an Aurora
                // replica's cluster); none exists for an instance replica.
                .add(Role::Used, at.rds(r, "cluster", "*"));
            db_support(&mut t, w.subnet_group.as_deref());
        }
        ("rds:AddTagsToResource", input) => {
            // Tags given at creation are authorized as tagging what the
            // call creates.
            let snapshot = matches!(
                input,
                I::RdsCreateSnapshot(_) | I::RdsCopySnapshot(_) | I::RdsPromoteReadReplica(_)
            );
            let target = match input {
                I::RdsRestoreFromSnapshot(w) => Some(w.db_instance.as_str()),
                I::RdsRestorePointInTime(w) => Some(w.target_db_instance.as_str()),
                I::RdsCreateReadReplica(w) => Some(w.db_instance.as_str()),
                _ => None,
            };
            if let Some(target) = target {
                t.add(Role::Created, created_db(target));
            } else if drilled {
                t.add(Role::Created, at.rds(r, "db", "*-drill-*"));
            }
            if snapshot {
                let name = match input {
                    I::RdsCreateSnapshot(w) => w.snapshot_id.as_deref(),
                    I::RdsCopySnapshot(w) => w.target_snapshot_id.as_deref(),
                    _ => None,
                };
                t.add(Role::Created, created_snapshot(name));
            }
        }
        ("rds:StartDBInstanceAutomatedBackupsReplication", I::RdsReplicateAutomatedBackups(w)) => {
            t.add(
                Role::Used,
                at.rds(&w.source_region, "db", &w.source_db_instance),
            )
            .add(Role::Created, at.rds(r, "auto-backup", "*"));
        }
        ("kms:CreateGrant" | "kms:DescribeKey", input) => {
            let key = match input {
                I::RdsCopySnapshot(w) => w.kms_key_id.as_deref(),
                I::RdsCreateReadReplica(w) => w.kms_key_id.as_deref(),
                I::RdsReplicateAutomatedBackups(w) => w.kms_key_id.as_deref(),
                I::Ec2CopyImage(w) => w.kms_key_id.as_deref(),
                _ => None,
            };
            let (arn, narrower) = at.kms_key(r, key);
            t.add(Role::Used, arn).narrower = narrower;
            // The service that encrypts the copy uses the key, on the
            // caller's behalf.
            let service = if matches!(input, I::Ec2CopyImage(_)) {
                "ec2"
            } else {
                "rds"
            };
            t.condition(
                "StringEquals",
                "kms:ViaService",
                &[format!("{service}.{r}.amazonaws.com")],
            );
            if action == "kms:CreateGrant" {
                t.condition("Bool", "kms:GrantIsForAWSResource", &["true".to_string()]);
            }
        }
        // EC2 changes.
        (
            "ec2:StartInstances" | "ec2:StopInstances" | "ec2:ModifyInstanceAttribute",
            I::Ec2StartInstances(w) | I::Ec2StopInstances(w),
        ) => {
            match &w.instance_ids {
                Some(ids) => {
                    for id in ids {
                        t.add(Role::Changed, at.ec2(r, "instance", id));
                    }
                }
                None => {
                    t.add(Role::Changed, at.ec2(r, "instance", "*"));
                }
            }
            t.selected_by = w.tags.clone();
        }
        ("ec2:StopInstances" | "ec2:TerminateInstances", _) => {
            // A drill stops or tears down only its own instances.
            t.add(Role::Changed, at.ec2(r, "instance", "*"));
        }
        // Auto Scaling checks that whoever makes a group from a launch
        // template may launch from it; that check carries no request tags,
        // so it is held to launches from launch templates instead.
        ("ec2:RunInstances", I::AutoscalingSetCapacity(_)) => {
            for kind in ["instance", "volume", "network-interface"] {
                t.add(Role::Used, at.ec2(r, kind, "*"));
            }
            t.add(Role::Used, at.ec2(r, "launch-template", "*"))
                .add(Role::Used, at.ec2(r, "subnet", "*"))
                .add(Role::Used, at.ec2(r, "security-group", "*"))
                .add(Role::Used, at.ec2(r, "key-pair", "*"))
                .add(Role::Used, at.ec2_public(r, "image", "*"))
                .add(Role::Used, at.ec2_public(r, "snapshot", "*"));
            t.condition(
                "ArnLike",
                "ec2:LaunchTemplate",
                &[format!(
                    "arn:aws:ec2:{r}:{}:launch-template/*",
                    at.account()
                )],
            );
        }
        ("ec2:CreateTags", I::AutoscalingSetCapacity(_)) => {
            for kind in ["instance", "volume"] {
                t.add(Role::Created, at.ec2(r, kind, "*"));
            }
            t.condition(
                "StringEquals",
                "ec2:CreateAction",
                &["RunInstances".to_string()],
            );
        }
        ("ec2:RunInstances", input) => {
            for kind in ["instance", "volume", "network-interface"] {
                t.add(Role::Created, at.ec2(r, kind, "*"));
            }
            let (template, subnet) = match input {
                I::Ec2LaunchFromTemplate(w) => {
                    (Some(w.launch_template.as_str()), w.subnet_id.clone())
                }
                _ => (None, None),
            };
            // A drill launches where the runbook's `drill:` says.
            let subnet = subnet.filter(|_| !drilled);
            let subnets: Vec<String> = match subnet {
                Some(first) => std::iter::once(first)
                    .chain(match input {
                        I::Ec2LaunchFromTemplate(w) => w
                            .alternatives
                            .iter()
                            .filter_map(|a| a.subnet_id.clone())
                            .collect(),
                        _ => Vec::new(),
                    })
                    .collect(),
                None => vec!["*".to_string()],
            };
            for subnet in subnets {
                t.add(Role::Used, at.ec2(r, "subnet", &subnet));
            }
            t.add(Role::Used, at.ec2_public(r, "image", "*"))
                .add(Role::Used, at.ec2_public(r, "snapshot", "*"))
                .add(Role::Used, at.ec2(r, "security-group", "*"))
                .add(Role::Used, at.ec2(r, "key-pair", "*"));
            if let Some(template) = template {
                let id = if template.starts_with("lt-") {
                    Some(template.to_string())
                } else {
                    at.resolved
                        .launch_templates
                        .get(&(r.to_string(), template.to_string()))
                        .cloned()
                };
                t.narrower = id.is_none();
                t.add(
                    Role::Used,
                    at.ec2(r, "launch-template", id.as_deref().unwrap_or("*")),
                );
            }
        }
        ("ec2:CreateTags", I::Ec2CopyImage(_)) => {
            // The copy is tagged once it exists, by its own request.
            t.add(Role::Created, at.ec2_public(r, "image", "*"));
        }
        ("ec2:CreateTags", _) => {
            // Tags given to RunInstances are authorized as CreateTags with
            // the creating action in the context.
            for kind in ["instance", "volume", "network-interface"] {
                t.add(Role::Created, at.ec2(r, kind, "*"));
            }
            t.condition(
                "StringEquals",
                "ec2:CreateAction",
                &["RunInstances".to_string()],
            );
        }
        ("ec2:CopyImage", I::Ec2CopyImage(w)) => {
            let source = w.source_image_id.as_deref().unwrap_or("*");
            t.add(Role::Used, at.ec2_public(&w.source_region, "image", source))
                .add(Role::Created, at.ec2_public(r, "image", "*"))
                .add(Role::Created, at.ec2_public(r, "snapshot", "*"));
        }
        ("ec2:DeregisterImage", _) => {
            t.add(Role::Changed, at.ec2_public(r, "image", "*"));
        }
        ("ec2:DeleteSnapshot", _) => {
            t.add(Role::Changed, at.ec2_public(r, "snapshot", "*"));
        }
        // The rest.
        ("autoscaling:UpdateAutoScalingGroup", I::AutoscalingSetCapacity(w)) => {
            let group = if drilled {
                "*-drill-*"
            } else {
                w.group.as_str()
            };
            t.add(
                Role::Changed,
                format!(
                    "arn:aws:autoscaling:{r}:{}:autoScalingGroup:*:autoScalingGroupName/{}",
                    at.account(),
                    pattern(group)
                ),
            );
        }
        // Only a drill's own groups are ever deleted, at its teardown.
        ("autoscaling:DeleteAutoScalingGroup", _) => {
            t.add(
                Role::Changed,
                format!(
                    "arn:aws:autoscaling:{r}:{}:autoScalingGroup:*:autoScalingGroupName/*-drill-*",
                    at.account()
                ),
            );
        }
        // A drill's own group, made from the production group's launch
        // template, tagged as it is made.
        ("autoscaling:CreateAutoScalingGroup" | "autoscaling:CreateOrUpdateTags", _) => {
            t.add(
                Role::Created,
                format!(
                    "arn:aws:autoscaling:{r}:{}:autoScalingGroup:*:autoScalingGroupName/*-drill-*",
                    at.account()
                ),
            );
        }
        ("cloudwatch:PutMetricData", I::CloudwatchPutMetricData(w)) => {
            t.add(Role::Changed, "*".to_string());
            t.condition(
                "StringEquals",
                "cloudwatch:namespace",
                &[pattern(&w.namespace)],
            );
        }
        ("cloudwatch:DescribeAlarms", input) => {
            let alarm = match input {
                I::CloudwatchPutMetricData(w) => w.confirm.as_ref().map(|c| c.alarm.as_str()),
                _ => None,
            };
            t.add(
                Role::Used,
                format!(
                    "arn:aws:cloudwatch:{r}:{}:alarm:{}",
                    at.account(),
                    pattern(alarm.unwrap_or("*"))
                ),
            );
        }
        (s3, input) if s3.starts_with("s3:") => s3_touches(&mut t, s3, input, drilled),
        _ => {
            // An action this table does not know: `*`, which the linter
            // test then reports for any action that has resource types.
            t.add(Role::Used, "*".to_string());
        }
    }
    t
}

/// An ECS service's ARN (`service/CLUSTER/SERVICE`), from names or ARNs.
fn ecs_service(at: &At, cluster: &str, service: &str) -> String {
    if service.starts_with("arn:") {
        return service.to_string();
    }
    let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
    format!(
        "arn:aws:ecs:{}:{}:service/{}/{}",
        at.region,
        at.account(),
        pattern(cluster),
        pattern(service)
    )
}

/// A Lambda function's ARN from its name, `name:alias` or ARN, with the
/// qualifier the call names (IAM matches a qualified ARN for a qualified
/// call).
fn lambda_function(at: &At, function: &str, qualifier: Option<&str>) -> String {
    let base = if function.starts_with("arn:") {
        function.to_string()
    } else {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            at.region,
            at.account(),
            pattern(function)
        )
    };
    match qualifier {
        Some(q) => format!("{base}:{}", pattern(q)),
        None => base,
    }
}

fn s3_touches(t: &mut Touches, action: &str, input: &ActionInput, drilled: bool) {
    use ActionInput as I;
    let bucket = |b: &str| format!("arn:aws:s3:::{}", pattern(b));
    let objects =
        |b: &str, prefix: &str| format!("arn:aws:s3:::{}/{}*", pattern(b), pattern(prefix));
    match (action, input) {
        ("s3:ListBucket" | "s3:GetReplicationConfiguration", I::S3CheckReplication(w)) => {
            t.add(Role::Used, bucket(&w.bucket));
        }
        ("s3:GetObject", I::S3CheckReplication(w)) => {
            t.add(Role::Used, objects(&w.bucket, &w.prefix));
        }
        ("s3:ListBucket", I::S3NewestObjectAge(w)) => {
            t.add(Role::Used, bucket(&w.bucket));
        }
        ("s3:ListBucket", I::S3CopyObjects(w)) => {
            t.add(Role::Used, bucket(&w.source_bucket))
                .add(Role::Used, bucket(&w.dest_bucket));
        }
        ("s3:GetObject", I::S3CopyObjects(w)) => {
            t.add(Role::Used, objects(&w.source_bucket, &w.prefix));
        }
        ("s3:PutObject" | "s3:DeleteObject", I::S3CopyObjects(w)) => {
            let prefix = if drilled {
                format!("lifeboat-drill-*/{}", w.prefix)
            } else {
                w.prefix.clone()
            };
            t.add(Role::Changed, objects(&w.dest_bucket, &prefix));
        }
        ("s3:GetObject", I::S3VerifyChecksum(w)) => {
            t.add(
                Role::Used,
                format!("arn:aws:s3:::{}/{}", pattern(&w.bucket), pattern(&w.key)),
            );
        }
        _ => {
            t.add(Role::Used, "*".to_string());
        }
    }
}

/// The names and types an upsert writes: its records', or its rewrite
/// rule's pattern (Route 53 conditions match `*` as IAM does).
fn record_names(w: &crate::catalogue::route53::UpsertRecords) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut types = Vec::new();
    for Record {
        name, record_type, ..
    } in w.records.iter().flatten()
    {
        names.push(name.clone());
        types.push(record_type.clone());
    }
    if let Some(rule) = &w.rewrite {
        names.push(rule.name_pattern.clone());
        types.push(rule.record_type.clone());
    }
    (names, types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_patterns_and_normalized_record_names() {
        assert_eq!(pattern("app-${run.id}-db"), "app-*-db");
        assert_eq!(pattern("${steps.a.outputs.b}"), "*");
        assert_eq!(pattern("plain"), "plain");
        assert_eq!(normalized("App.Example.COM."), "app.example.com");
        assert_eq!(normalized("a b.example.com"), "a\\040b.example.com");
        assert_eq!(normalized("*.example.com"), "*.example.com");
    }
}
