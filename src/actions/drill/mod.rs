//! Drills: every action in its declared drill behaviour, so that a drill
//! never changes production, and the teardown that removes what a drill
//! made.
//!
//! What a drill creates is named `<name>-drill-<run>` (Route 53 records
//! `drill-<run>.<name>`, S3 objects under `lifeboat-drill-<run>/`) and
//! tagged `lifeboat:drill-run=<run>` where the resource takes tags.
//! Teardown (and `lifeboat sweep`, for drills whose process died) finds
//! drill resources by those marks alone, in every region it is given.

mod groups;
mod instances;

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;

use super::{CREATED_TAG, identifier};
use crate::aws::AwsClients;
use crate::catalogue::ActionInput;
use crate::engine::{ActionError, Outputs, StepContext};
use crate::iam::DRILL_TAG;
use crate::runbook::Mode;

/// The tags lifeboat puts on what a step creates: its run, and in a drill
/// the drill's run.
pub(super) fn own_tags(ctx: &StepContext) -> Vec<(String, String)> {
    let mut tags = vec![(CREATED_TAG.to_string(), ctx.run_id.clone())];
    if ctx.mode == Mode::Drill {
        tags.push((DRILL_TAG.to_string(), ctx.run_id.clone()));
    }
    tags
}

/// `<id>-drill-<run>`, a valid identifier.
pub fn name(id: &str, run: &str) -> String {
    identifier(&[id, "drill", run])
}

/// `drill-<run>.<name>` for a DNS name.
pub fn record_name(name: &str, run: &str) -> String {
    format!("{}{name}", record_prefix(run))
}

fn record_prefix(run: &str) -> String {
    format!("drill-{}.", run.to_ascii_lowercase())
}

/// The key prefix of a drill's S3 objects.
pub fn s3_prefix(run: &str) -> String {
    format!("lifeboat-drill-{run}/")
}

/// Add the drill's note to a step's outputs.
fn noted(outputs: Result<Outputs, ActionError>, note: String) -> Result<Outputs, ActionError> {
    outputs.map(|mut o| {
        o.entry("drill".to_string())
            .or_insert_with(|| serde_json::json!(note));
        o
    })
}

/// A launch refused for want of permissions, when it passes a role (of
/// `what`, an instance profile or a template's): the drill's policy lets
/// it pass only the roles the runbook's `drill.instance_roles` names, so
/// say which those are.
fn passing_roles(e: ActionError, ctx: &StepContext, what: &str) -> ActionError {
    let denied = [
        "(UnauthorizedOperation)",
        "(AccessDenied)",
        "(AccessDeniedException)",
    ]
    .iter()
    .any(|code| e.message.contains(code));
    if !denied {
        return e;
    }
    let roles = &ctx.placement.instance_roles;
    ActionError {
        message: format!(
            "{}. The launch passes the role of {what} to EC2, and the drill's policy allows passing only the roles in the runbook's drill.instance_roles ({}): if that role is not among them, name it there",
            e.message,
            if roles.is_empty() {
                "none".to_string()
            } else {
                roles.join(", ")
            }
        ),
        ..e
    }
}

/// Put a drill database where the runbook's `drill:` says (its subnet
/// group and security groups over the step's), and say where it went:
/// with the step's own placement, the drill shares production's network.
fn db_placement(
    ctx: &StepContext,
    subnet_group: &mut Option<String>,
    security_groups: &mut Vec<String>,
) -> String {
    let p = &ctx.placement;
    if let Some(group) = &p.db_subnet_group {
        *subnet_group = Some(group.clone());
    }
    if !p.db_security_groups.is_empty() {
        *security_groups = p.db_security_groups.clone();
    }
    match (&p.db_subnet_group, subnet_group.as_deref()) {
        (Some(group), _) => format!(
            " in the drill's subnet group {group}{}",
            if security_groups.is_empty() {
                String::new()
            } else {
                format!(" with security groups {}", security_groups.join(", "))
            }
        ),
        (None, Some(group)) => format!(
            ". The drill shares production's network: the copy is in the step's subnet group {group}"
        ),
        (None, None) => {
            ". The drill shares production's network: the copy is in the region's default network"
                .to_string()
        }
    }
}

/// A launch from a template placed where the runbook's `drill:` says:
/// into the drill subnets (the first, then the others where EC2 has no
/// capacity) with the drill's security groups; without them, into the
/// step's or the template's network, which the note says is production's.
fn launch_placement(
    ctx: &StepContext,
    w: &crate::catalogue::ec2::LaunchFromTemplate,
) -> (crate::catalogue::ec2::LaunchFromTemplate, String) {
    let p = &ctx.placement;
    let mut w = w.clone();
    if !p.security_groups.is_empty() {
        w.security_groups = p.security_groups.clone();
    }
    let Some((first, others)) = p.subnets.split_first() else {
        let into = w.subnet_id.as_deref().map_or_else(
            || format!("launch template {}'s network", w.launch_template),
            |s| format!("subnet {s}"),
        );
        return (
            w,
            format!(
                "launched instances tagged for the drill. The drill shares production's network: they are in {into}"
            ),
        );
    };
    w.subnet_id = Some(first.clone());
    let types: Vec<_> = w
        .alternatives
        .iter()
        .filter(|a| a.instance_type.is_some())
        .map(|a| crate::catalogue::ec2::Ec2Alternative {
            subnet_id: None,
            ..a.clone()
        })
        .collect();
    w.alternatives = types;
    w.alternatives.extend(
        others
            .iter()
            .map(|s| crate::catalogue::ec2::Ec2Alternative {
                instance_type: None,
                subnet_id: Some(s.clone()),
            }),
    );
    let note = format!(
        "launched instances tagged for the drill in the drill subnets {}{}",
        p.subnets.join(", "),
        if p.security_groups.is_empty() {
            " with the launch template's security groups".to_string()
        } else {
            format!(
                " with the drill's security groups {}",
                p.security_groups.join(", ")
            )
        }
    );
    (w, note)
}

/// Changed nothing: what would have been done.
use crate::catalogue::DRILL_UNCHECKED as UNCHECKED;

fn simulated(note: String) -> Result<Outputs, ActionError> {
    Ok(Outputs::from([
        ("simulated".to_string(), serde_json::json!(true)),
        ("drill".to_string(), serde_json::json!(note)),
    ]))
}

/// Run `input` in its drill behaviour, or `None` when the action runs as
/// in a failover (it only reads, or touches lifeboat's own resources).
/// Every action has its arm, with no catch-all: a new action does not
/// compile until its drill behaviour is decided here.
pub(super) async fn run(
    aws: &AwsClients,
    ctx: &StepContext,
    input: &ActionInput,
) -> Option<Result<Outputs, ActionError>> {
    use ActionInput as I;
    let run = ctx.run_id.as_str();
    Some(match input {
        I::RdsCreateSnapshot(w) => {
            let mut w = w.clone();
            let id = name(w.snapshot_id.as_deref().unwrap_or(&w.db_instance), run);
            w.snapshot_id = Some(id.clone());
            noted(
                super::rds::create_snapshot(aws, ctx, &w).await,
                format!("snapshot taken as {id}"),
            )
        }
        I::RdsCopySnapshot(w) => {
            let mut w = w.clone();
            let base = w
                .target_snapshot_id
                .clone()
                .or_else(|| w.source_db_instance.clone())
                .or_else(|| w.source_snapshot.clone())
                .unwrap_or_else(|| "copy".into());
            let base = base.rsplit(':').next().unwrap_or(&base).to_string();
            let id = name(&base, run);
            w.target_snapshot_id = Some(id.clone());
            noted(
                super::rds::copy_snapshot(aws, ctx, &w).await,
                format!("copied as {id}"),
            )
        }
        I::RdsRestoreFromSnapshot(w) => {
            let mut w = w.clone();
            w.db_instance = name(&w.db_instance, run);
            let placed = db_placement(ctx, &mut w.subnet_group, &mut w.security_groups);
            let note = format!("restored into {}{placed}", w.db_instance);
            noted(super::rds::restore_from_snapshot(aws, ctx, &w).await, note)
        }
        I::RdsRestorePointInTime(w) => {
            let mut w = w.clone();
            w.target_db_instance = name(&w.target_db_instance, run);
            let placed = db_placement(ctx, &mut w.subnet_group, &mut w.security_groups);
            let note = format!("restored into {}{placed}", w.target_db_instance);
            noted(super::rds::restore_point_in_time(aws, ctx, &w).await, note)
        }
        I::RdsCreateReadReplica(w) => {
            let mut w = w.clone();
            w.db_instance = name(&w.db_instance, run);
            let placed = db_placement(ctx, &mut w.subnet_group, &mut w.security_groups);
            let note = format!("replica created as {}{placed}", w.db_instance);
            noted(super::rds::create_read_replica(aws, ctx, &w).await, note)
        }
        I::RdsPromoteReadReplica(w) => super::rds::drill_promote(aws, ctx, w).await,
        I::RdsModifyInstanceClass(w) => {
            let copy = match &w.db_instance {
                Some(id) => match super::rds::drill_copy(aws, ctx, id).await {
                    Ok(copy) => copy,
                    Err(e) => return Some(Err(e)),
                },
                None => None,
            };
            match copy {
                Some(copy) => {
                    let mut w = w.clone();
                    w.db_instance = Some(copy.clone());
                    noted(
                        super::rds::modify_instance_class(aws, ctx, &w).await,
                        format!("modified the drill copy {copy}"),
                    )
                }
                None => simulated(format!(
                    "no drill copy to modify: would set the class of the selected instances to {}",
                    w.instance_class
                )),
            }
        }
        I::RdsDeleteInstance(w) => match super::rds::drill_copy(aws, ctx, &w.db_instance).await {
            Ok(Some(copy)) => {
                let mut w = w.clone();
                w.db_instance = copy.clone();
                w.final_snapshot_id = None;
                noted(
                    super::rds::delete_instance(aws, ctx, &w).await,
                    format!("deleted the drill copy {copy}"),
                )
            }
            Ok(None) => simulated(format!(
                "would delete {}; a drill deletes only its own copies",
                w.db_instance
            )),
            Err(e) => Err(e),
        },
        I::RdsWaitAvailable(w) => {
            let mut ids: Vec<String> = w
                .db_instance
                .iter()
                .cloned()
                .chain(w.db_instances.iter().flatten().cloned())
                .collect();
            let mut mapped = Vec::new();
            for id in &mut ids {
                match super::rds::drill_copy(aws, ctx, id).await {
                    Ok(Some(copy)) => {
                        mapped.push(format!("{id} -> {copy}"));
                        *id = copy;
                    }
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            if mapped.is_empty() {
                return None;
            }
            let mut w = w.clone();
            w.db_instance = None;
            w.db_instances = Some(ids);
            w.tags = None;
            noted(
                super::rds::wait(aws, ctx, &w).await,
                format!("waited for the drill copies ({})", mapped.join(", ")),
            )
        }
        // The lag of the drill's own replica when the drill made one (a
        // failback drill rebuilds the replica under a drill name), else the
        // production replica's, which reading does not change.
        I::RdsWaitReplicaLag(w) => match super::rds::drill_copy(aws, ctx, &w.db_instance).await {
            Ok(Some(copy)) => {
                let mut w = w.clone();
                w.db_instance = copy.clone();
                noted(
                    super::rds::wait_replica_lag(aws, ctx, &w).await,
                    format!("waited for the lag of the drill copy {copy}"),
                )
            }
            Ok(None) => return None,
            Err(e) => Err(e),
        },
        I::RdsReplicateAutomatedBackups(w) => {
            match super::rds::would_replicate(aws, ctx, w).await {
                Ok(note) => simulated(note),
                Err(e) => Err(e),
            }
        }
        I::RdsFailoverInstance(w) => {
            match super::rds::would_fail_over_instance(aws, ctx, w).await {
                Ok(note) => simulated(note),
                Err(e) => Err(e),
            }
        }
        I::RdsFailoverCluster(w) => match super::rds::would_fail_over_cluster(aws, ctx, w).await {
            Ok(note) => simulated(note),
            Err(e) => Err(e),
        },
        I::RdsIsolateInstance(w) => match super::rds::would_isolate(aws, ctx, w).await {
            Ok(note) => simulated(note),
            Err(e) => Err(e),
        },
        I::RdsSetServerlessCapacity(w) => match super::rds::would_set_capacity(aws, ctx, w).await {
            Ok(note) => simulated(note),
            Err(e) => Err(e),
        },
        I::RdsSwitchoverGlobalCluster(w) => {
            let how = super::rds::Move::Switchover;
            match super::rds::would_move(aws, ctx, &w.global_cluster, &w.target_cluster, how).await
            {
                Ok(note) => simulated(note),
                Err(e) => Err(e),
            }
        }
        I::RdsFailoverGlobalCluster(w) => {
            let how = super::rds::Move::Failover;
            match super::rds::would_move(aws, ctx, &w.global_cluster, &w.target_cluster, how).await
            {
                Ok(note) => simulated(note),
                Err(e) => Err(e),
            }
        }
        I::ArcStartZonalShift(w) => match super::arc::would_start(aws, ctx, w).await {
            Ok(note) => simulated(note),
            Err(e) => Err(e),
        },
        I::ArcCancelZonalShift(w) => match super::arc::would_cancel(aws, ctx, w).await {
            Ok(note) => simulated(note),
            Err(e) => Err(e),
        },
        I::Ec2StartInstances(w) => instances::start(aws, ctx, w).await,
        I::Ec2StopInstances(w) => match super::ec2::would_stop(aws, ctx, w).await {
            Ok(note) => simulated(note),
            Err(e) => Err(e),
        },
        I::Ec2WaitRunning(w) => super::ec2::drill_wait_running(aws, ctx, w).await,
        I::Ec2LaunchFromTemplate(w) => {
            let (w, note) = launch_placement(ctx, w);
            let what = format!(
                "launch template {}'s instance profile, if it names one",
                w.launch_template
            );
            let launched = super::ec2::launch_from_template(aws, ctx, &w)
                .await
                .map_err(|e| passing_roles(e, ctx, &what));
            noted(launched, note)
        }
        I::Ec2CopyImage(w) => {
            let mut w = w.clone();
            w.name = name(&w.name, run);
            let note = format!("copied as {}", w.name);
            noted(super::ec2::copy_image(aws, ctx, &w).await, note)
        }
        I::AutoscalingSetCapacity(w) => groups::set_capacity(aws, ctx, w).await,
        I::EcsScaleService(w) => match &w.drill_service {
            Some(service) => {
                let mut w = w.clone();
                w.service = service.clone();
                noted(
                    super::ecs::scale_service(aws, ctx, &w).await,
                    format!("scaled the drill service {service}"),
                )
            }
            None => match super::ecs::would_scale(aws, ctx, w).await {
                Ok(note) => simulated(note),
                Err(e) => Err(e),
            },
        },
        I::LambdaInvoke(w) => match super::lambda::drill_invoke(aws, ctx, w).await {
            Some(done) => noted(
                done,
                format!(
                    "invoked the drill function {}",
                    w.drill_function.as_deref().unwrap_or_default()
                ),
            ),
            None => simulated(format!(
                "would invoke {}{}; no `drill_function`: nothing was invoked",
                w.function,
                w.qualifier
                    .as_deref()
                    .map(|q| format!(":{q}"))
                    .unwrap_or_default()
            )),
        },
        I::Route53UpsertRecords(w) => super::route53::drill_upsert(aws, ctx, w).await,
        I::Route53SwitchFailover(w) => super::route53::drill_switch(aws, ctx, w).await,
        I::Route53SetWeights(w) => super::route53::drill_set_weights(aws, ctx, w).await,
        I::Route53UpdateHealthCheck(w) => simulated(format!(
            "would set health check {}{}{}",
            w.health_check_id,
            w.inverted
                .map(|v| format!(" inverted={v}"))
                .unwrap_or_default(),
            w.disabled
                .map(|v| format!(" disabled={v}"))
                .unwrap_or_default()
        )),
        I::S3CopyObjects(w) => super::s3::drill_copy_objects(aws, ctx, w).await,
        // Isolated by the action itself: the datum carries the drill's
        // `DrillRun` dimension, which no production alarm watches.
        I::CloudwatchPutMetricData(_) => return None,
        // Read only.
        I::S3CheckReplication(_) | I::S3NewestObjectAge(_) | I::S3VerifyChecksum(_) => {
            return None;
        }
        // Not AWS actions: the registry runs them (a drill's `exec` sees
        // `LIFEBOAT_MODE=drill`; its health check is `wait_healthy` below)
        // or the engine does (approvals).
        I::HttpWaitHealthy(_) => return None,
        I::ManualApproval(_) | I::Notify(_) | I::Wait(_) | I::Exec(_) => {
            return None;
        }
    })
}

/// `http.wait_healthy` in a drill: a check of the drill stack
/// (`drill_url`), or of nothing. Polling production would end the drill's
/// RTO when production answers, so without a `drill_url` the step polls
/// nothing and marks the drill's RTO unmeasured.
pub(super) async fn wait_healthy(
    ctx: &StepContext,
    w: &crate::catalogue::generic::WaitHealthy,
) -> Result<Outputs, ActionError> {
    let Some(url) = &w.drill_url else {
        return Ok(Outputs::from([
            ("simulated".to_string(), serde_json::json!(true)),
            (UNCHECKED.to_string(), serde_json::json!(true)),
            (
                "drill".to_string(),
                serde_json::json!(format!(
                    "did not poll {}: it is production's, and no `drill_url` points this check at the drill stack, so the drill measures no RTO",
                    w.url
                )),
            ),
        ]));
    };
    let drill = crate::catalogue::generic::WaitHealthy {
        url: url.clone(),
        ..w.clone()
    };
    let mut outputs = super::generic::wait_healthy(ctx, &drill).await?;
    outputs.insert(
        "drill".to_string(),
        serde_json::json!(format!(
            "polled the drill stack at {url} instead of {}",
            w.url
        )),
    );
    Ok(outputs)
}

/// Which drills' resources to remove.
#[derive(Debug, Clone)]
pub enum Which {
    /// This run's.
    Run(String),
    /// Every drill's except these runs' (the ones still going).
    AllBut(BTreeSet<String>),
}

impl Which {
    fn takes(&self, run: &str) -> bool {
        match self {
            Which::Run(r) => r.eq_ignore_ascii_case(run),
            Which::AllBut(live) => !live.iter().any(|l| l.eq_ignore_ascii_case(run)),
        }
    }
}

/// Where the drills a journal knows of may have left resources.
#[derive(Debug, Clone, Default)]
pub struct SweepScope {
    /// The regions their runbooks name.
    pub regions: BTreeSet<String>,
    /// The roles their runbooks assume (their copies in other accounts).
    pub roles: Vec<crate::runbook::AssumeRole>,
    /// The drills still unfinished in the journal.
    pub unfinished: BTreeSet<String>,
}

impl SweepScope {
    /// Add what `runbook` names: its regions and roles.
    pub fn add(&mut self, runbook: &crate::runbook::Runbook) {
        self.regions.extend(crate::runbook::regions_of(runbook));
        for role in crate::runbook::roles_of(runbook) {
            if !self.roles.contains(&role) {
                self.roles.push(role);
            }
        }
    }
}

/// The scope of a sweep from `journal`: each drill's runbook as journaled
/// (with its parameters; a parameter the journal does not keep, such as a
/// secret, stands as a placeholder).
pub fn sweep_scope(
    journal: &crate::journal::Journal,
) -> Result<SweepScope, crate::journal::JournalError> {
    let mut scope = SweepScope::default();
    for listed in journal.runs()? {
        if listed.run.mode != "drill" {
            continue;
        }
        let record = journal.run(&listed.run.id)?;
        if let Ok(loaded) = crate::runbook::load(
            &record.run.file,
            &record.run.runbook_text,
            &record.run.params,
            crate::runbook::MissingParams::Placeholder,
        ) {
            scope.add(&loaded.runbook);
        }
        if record.state.unfinished() {
            scope.unfinished.insert(record.run.id);
        }
    }
    Ok(scope)
}

/// What a teardown removed, and what it could not.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Teardown {
    /// Each resource removed, as `kind id (region)`.
    pub removed: Vec<String>,
    /// Each failure.
    pub errors: Vec<String>,
}

fn tag_of<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>, key: &str) -> Option<String> {
    tags.into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// `teardown` in the caller's own account and in each account `roles`
/// act in (a drill of a cross-account runbook made its copies there).
pub async fn teardown_in_accounts(
    aws: &AwsClients,
    roles: &[crate::runbook::AssumeRole],
    regions: &BTreeSet<String>,
    which: &Which,
) -> Teardown {
    let mut t = teardown(aws, regions, which).await;
    for role in roles {
        let session = role
            .session_name
            .clone()
            .unwrap_or_else(|| "lifeboat-teardown".to_string());
        let theirs = aws
            .assuming(&role.role_arn, role.external_id.as_deref(), &session)
            .await;
        let more = teardown(&theirs, regions, which).await;
        t.removed.extend(
            more.removed
                .into_iter()
                .map(|r| format!("{r} as {}", role.role_arn)),
        );
        t.errors.extend(
            more.errors
                .into_iter()
                .map(|e| format!("as {}: {e}", role.role_arn)),
        );
    }
    t
}

/// Remove drill resources in `regions` (Route 53 and S3 everywhere they
/// are reachable): RDS instances and snapshots, Auto Scaling groups, EC2
/// instances, detached volumes and AMIs tagged `lifeboat:drill-run`, `drill-<run>.` records, objects under
/// `lifeboat-drill-<run>/`.
pub async fn teardown(aws: &AwsClients, regions: &BTreeSet<String>, which: &Which) -> Teardown {
    let mut t = Teardown::default();
    for region in regions {
        rds(aws, region, which, &mut t).await;
        // Groups before instances: a group would replace what is terminated.
        groups::teardown(aws, region, which, &mut t).await;
        ec2(aws, region, which, &mut t).await;
        s3(aws, region, which, &mut t).await;
    }
    route53(aws, which, &mut t).await;
    t
}

async fn rds(aws: &AwsClients, region: &str, which: &Which, t: &mut Teardown) {
    let client = aws.rds(region);
    let mut pages = client.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                t.errors
                    .push(format!("DescribeDBInstances in {region}: {e}"));
                break;
            }
        };
        for db in page.db_instances() {
            let tags = db
                .tag_list()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value()?)));
            let Some(run) = tag_of(tags, DRILL_TAG) else {
                continue;
            };
            let id = db.db_instance_identifier().unwrap_or_default();
            if !which.takes(&run) || db.db_instance_status() == Some("deleting") {
                continue;
            }
            match client
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await
            {
                Ok(_) => t.removed.push(format!("RDS instance {id} ({region})")),
                // Gone already (a listing can show an instance another
                // region's teardown removed): nothing left to remove.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_db_instance_not_found_fault()) => {}
                Err(e) => t.errors.push(format!(
                    "DeleteDBInstance {id} in {region}: {}",
                    crate::actions::aws_error::causes(&e)
                )),
            }
        }
    }
    let mut pages = client
        .describe_db_snapshots()
        .snapshot_type("manual")
        .max_records(100)
        .into_paginator()
        .send();
    let mut snapshots = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Err(e) => {
                t.errors
                    .push(format!("DescribeDBSnapshots in {region}: {e}"));
                break;
            }
            Ok(out) => snapshots.extend(out.db_snapshots().iter().filter_map(|s| {
                let tags = s
                    .tag_list()
                    .iter()
                    .filter_map(|t| Some((t.key()?, t.value()?)));
                let run = tag_of(tags, DRILL_TAG)?;
                which
                    .takes(&run)
                    .then(|| s.db_snapshot_identifier().map(str::to_string))
                    .flatten()
            })),
        }
    }
    for id in snapshots {
        match client
            .delete_db_snapshot()
            .db_snapshot_identifier(&id)
            .send()
            .await
        {
            Ok(_) => t.removed.push(format!("RDS snapshot {id} ({region})")),
            Err(e) => t
                .errors
                .push(format!("DeleteDBSnapshot {id} in {region}: {e}")),
        }
    }
}

async fn ec2(aws: &AwsClients, region: &str, which: &Which, t: &mut Teardown) {
    let client = aws.ec2(region);
    let takes = |tags: &[aws_sdk_ec2::types::Tag]| {
        let tags = tags.iter().filter_map(|t| Some((t.key()?, t.value()?)));
        tag_of(tags, DRILL_TAG).is_some_and(|run| which.takes(&run))
    };
    let mut ids: Vec<String> = Vec::new();
    let mut pages = client
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(DRILL_TAG).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Err(e) => {
                t.errors.push(format!("DescribeInstances in {region}: {e}"));
                break;
            }
            Ok(out) => ids.extend(
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter(|i| takes(i.tags()))
                    .filter_map(|i| i.instance_id().map(str::to_string)),
            ),
        }
    }
    // What was found is terminated even when a later page failed: the
    // next sweep finds the rest.
    for chunk in ids.chunks(super::ec2::IDS_PER_CALL) {
        match client
            .terminate_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(_) => t
                .removed
                .extend(chunk.iter().map(|i| format!("EC2 instance {i} ({region})"))),
            Err(e) => t
                .errors
                .push(format!("TerminateInstances in {region}: {e}")),
        }
    }
    // A copy's volumes go with it (`DeleteOnTermination`); one left
    // detached (a launch that failed half-way) goes here, or at the next
    // sweep once its instance is gone.
    let mut pages = client
        .describe_volumes()
        .filters(Filter::builder().name("tag-key").values(DRILL_TAG).build())
        .filters(Filter::builder().name("status").values("available").build())
        .max_results(500)
        .into_paginator()
        .send();
    let mut volumes = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Err(e) => {
                t.errors.push(format!("DescribeVolumes in {region}: {e}"));
                break;
            }
            Ok(out) => volumes.extend(
                out.volumes()
                    .iter()
                    .filter(|v| takes(v.tags()))
                    .filter_map(|v| v.volume_id().map(str::to_string)),
            ),
        }
    }
    for id in volumes {
        match client.delete_volume().volume_id(&id).send().await {
            Ok(_) => t.removed.push(format!("EBS volume {id} ({region})")),
            Err(e) => t.errors.push(format!("DeleteVolume {id} in {region}: {e}")),
        }
    }
    let mut pages = client
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("tag-key").values(DRILL_TAG).build())
        .max_results(1000)
        .into_paginator()
        .send();
    let mut images = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Err(e) => {
                t.errors.push(format!("DescribeImages in {region}: {e}"));
                break;
            }
            Ok(out) => images.extend(
                out.images()
                    .iter()
                    .filter(|i| takes(i.tags()))
                    .filter_map(|i| i.image_id().map(str::to_string)),
            ),
        }
    }
    for id in images {
        match client.deregister_image().image_id(&id).send().await {
            Ok(_) => t.removed.push(format!("AMI {id} ({region})")),
            Err(e) => t
                .errors
                .push(format!("DeregisterImage {id} in {region}: {e}")),
        }
    }
}

/// The run id in a drill key or record prefix (`...drill-<run>...`).
fn run_in(text: &str, marker: &str) -> Option<String> {
    let rest = text.strip_prefix(marker)?;
    let end = rest.find(['/', '.'])?;
    Some(rest[..end].to_string())
}

async fn s3(aws: &AwsClients, region: &str, which: &Which, t: &mut Teardown) {
    let client = aws.s3(region);
    let buckets = match client.list_buckets().send().await {
        Ok(out) => out,
        Err(e) => {
            t.errors.push(format!("ListBuckets: {e}"));
            return;
        }
    };
    for bucket in buckets.buckets() {
        let Some(name) = bucket.name() else { continue };
        if bucket.bucket_region().is_some_and(|r| r != region) {
            continue;
        }
        let listed = client
            .list_objects_v2()
            .bucket(name)
            .prefix("lifeboat-drill-")
            .send()
            .await;
        let Ok(listed) = listed else { continue };
        for object in listed.contents() {
            let Some(key) = object.key() else { continue };
            if !run_in(key, "lifeboat-drill-").is_some_and(|run| which.takes(&run)) {
                continue;
            }
            match client.delete_object().bucket(name).key(key).send().await {
                Ok(_) => t.removed.push(format!("s3://{name}/{key}")),
                Err(e) => t
                    .errors
                    .push(format!("DeleteObject s3://{name}/{key}: {e}")),
            }
        }
    }
}

async fn route53(aws: &AwsClients, which: &Which, t: &mut Teardown) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
    let client = aws.route53();
    let mut zones = Vec::new();
    let mut pages = client.list_hosted_zones().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => zones.extend(page.hosted_zones().iter().cloned()),
            Err(e) => {
                t.errors.push(format!("ListHostedZones: {e}"));
                break;
            }
        }
    }
    for zone in &zones {
        let zone_id = zone.id().trim_start_matches("/hostedzone/");
        let sets = match super::route53::record_sets(&client, zone_id).await {
            Ok(sets) => sets,
            Err(e) => {
                t.errors.push(format!("{} ({})", e.message, zone.name()));
                continue;
            }
        };
        let doomed: Vec<_> = sets
            .into_iter()
            .filter(|s| run_in(s.name(), "drill-").is_some_and(|run| which.takes(&run)))
            .collect();
        for batch in super::route53::batches(&doomed) {
            let changes: Result<Vec<Change>, _> = batch
                .iter()
                .map(|s| {
                    Change::builder()
                        .action(ChangeAction::Delete)
                        .resource_record_set(s.clone())
                        .build()
                })
                .collect();
            let batch_request =
                changes.and_then(|c| ChangeBatch::builder().set_changes(Some(c)).build());
            let sent = match batch_request {
                Ok(request) => client
                    .change_resource_record_sets()
                    .hosted_zone_id(zone_id)
                    .change_batch(request)
                    .send()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(_) => t
                    .removed
                    .extend(batch.iter().map(|s| match s.set_identifier() {
                        Some(id) => format!("record {} (set `{id}`)", s.name()),
                        None => format!("record {}", s.name()),
                    })),
                Err(e) => t
                    .errors
                    .push(format!("ChangeResourceRecordSets {}: {e}", zone.name())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drill_names_carry_the_run_and_stay_valid() {
        assert_eq!(
            name("app-db-replica", "20261128T141153-7656"),
            "app-db-replica-drill-20261128t141153-7656"
        );
        assert_eq!(
            record_name("app.example.com.", "20261128T141153-7656"),
            "drill-20261128t141153-7656.app.example.com."
        );
        assert_eq!(
            run_in("drill-20261128t141153-7656.app.example.com.", "drill-").as_deref(),
            Some("20261128t141153-7656")
        );
        assert_eq!(
            run_in("lifeboat-drill-R1/db/dump.sql", "lifeboat-drill-").as_deref(),
            Some("R1")
        );
        assert!(Which::Run("20261128T1-a".into()).takes("20261128t1-a"));
        assert!(!Which::AllBut(BTreeSet::from(["r1".to_string()])).takes("R1"));
    }
}
