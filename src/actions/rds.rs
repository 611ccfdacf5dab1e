//! RDS: snapshots (create, copy across regions), restores (from a snapshot,
//! to a point in time), read replicas (create, promote, wait for lag),
//! instance class changes, deletion of lifeboat's own instances, and
//! waiting until instances are available.
//!
//! Every action observes first. An instance or snapshot lifeboat creates
//! carries the [`CREATED_TAG`] from the call that creates it, so a second
//! run (or a resumed one) finds it and does not create it again, and
//! lifeboat never mistakes someone else's resource for its own.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{DbInstance, DbInstanceAutomatedBackup, DbSnapshot, Tag};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::aws_error::{classify, found};
use super::capacity::{self, Placed, first_with_capacity};
use super::{CREATED_TAG, Poll, Readiness, identifier, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::rds::{
    CopySnapshot, CreateReadReplica, CreateSnapshot, DbAlternative, DeleteInstance,
    ModifyInstanceClass, PromoteReadReplica, ReplicateAutomatedBackups, RestoreFromSnapshot,
    RestorePointInTime, WaitAvailable, WaitReplicaLag,
};
use crate::catalogue::{ActionInput, ActionKind, Tags};
use crate::engine::{ActionError, Outputs, StepContext};

mod failover;
mod global;
mod isolate;
mod serverless;
pub(super) use failover::{
    failover_cluster, failover_instance, would_fail_over_cluster, would_fail_over_instance,
};
pub(super) use global::{Move, move_primary, would_move};
pub(super) use isolate::{isolate, would_isolate};
pub(super) use serverless::{set_capacity as set_serverless_capacity, would_set_capacity};

/// How instances are selected.
enum Select<'a> {
    Ids(Vec<String>),
    Tags(&'a BTreeMap<String, String>),
    ReplicasOf(&'a str),
}

impl Select<'_> {
    fn describe(&self) -> String {
        match self {
            Select::Ids(ids) => format!("DB instance(s) {}", ids.join(", ")),
            Select::Tags(tags) => format!(
                "DB instances tagged {}",
                tags.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Select::ReplicasOf(source) => format!("read replicas of {source}"),
        }
    }
}

fn has_tags(db: &DbInstance, tags: &BTreeMap<String, String>) -> bool {
    tags.iter().all(|(k, v)| {
        db.tag_list()
            .iter()
            .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
    })
}

/// Whether `db` is a drill's copy that a selection by tags or by source
/// did not ask for: copies carry their step's tags and may replicate from
/// production, and production's selections must never pick them up (nor
/// one drill another's).
fn drill_copy_unasked(db: &DbInstance, which: &Select<'_>) -> bool {
    let asks_for_drills = match which {
        Select::Tags(tags) => tags.keys().any(|k| k.starts_with("lifeboat:drill")),
        _ => false,
    };
    !asks_for_drills && tag(db, crate::iam::DRILL_TAG).is_some()
}

fn tag(db: &DbInstance, key: &str) -> Option<String> {
    db.tag_list()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_string))
}

/// The selected instances as they are now.
async fn select(
    client: &aws_sdk_rds::Client,
    region: &str,
    which: &Select<'_>,
) -> Result<Vec<DbInstance>, ActionError> {
    let mut found = Vec::new();
    match which {
        // Many instances: one paginated describe rather than one call each.
        Select::Ids(ids) if ids.len() > 1 => {
            let mut pages = client.describe_db_instances().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| classify(&format!("DescribeDBInstances in {region}"), e))?;
                found.extend(
                    page.db_instances()
                        .iter()
                        .filter(|db| {
                            db.db_instance_identifier()
                                .is_some_and(|id| ids.iter().any(|i| i == id))
                        })
                        .cloned(),
                );
            }
            let missing: Vec<&str> = ids
                .iter()
                .filter(|id| {
                    !found
                        .iter()
                        .any(|db| db.db_instance_identifier() == Some(id.as_str()))
                })
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(ActionError::permanent(format!(
                    "no DB instance {} in {region}",
                    missing.join(", ")
                )));
            }
        }
        Select::Ids(ids) => {
            for id in ids {
                let db = find_instance(client, region, id).await?.ok_or_else(|| {
                    ActionError::permanent(format!("no DB instance {id} in {region}"))
                })?;
                found.push(db);
            }
        }
        Select::Tags(_) | Select::ReplicasOf(_) => {
            let mut pages = client.describe_db_instances().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| classify(&format!("DescribeDBInstances in {region}"), e))?;
                found.extend(
                    page.db_instances()
                        .iter()
                        .filter(|db| !drill_copy_unasked(db, which))
                        .filter(|db| match which {
                            Select::Tags(tags) => has_tags(db, tags),
                            Select::ReplicasOf(source) => db
                                .read_replica_source_db_instance_identifier()
                                .is_some_and(|s| {
                                    s == *source || s.ends_with(&format!(":db:{source}"))
                                }),
                            Select::Ids(_) => false,
                        })
                        .cloned(),
                );
            }
            if found.is_empty() {
                return Err(ActionError::permanent(format!(
                    "no {} in {region}",
                    which.describe()
                )));
            }
        }
    }
    Ok(found)
}

fn id_of(db: &DbInstance) -> String {
    db.db_instance_identifier().unwrap_or("?").to_string()
}

fn status(db: &DbInstance) -> &str {
    db.db_instance_status().unwrap_or("unknown")
}

/// Poll until every named instance is `available`, within the deadline.
async fn wait_available(
    client: &aws_sdk_rds::Client,
    region: &str,
    ids: &[String],
    ctx: &StepContext,
) -> Result<Vec<DbInstance>, ActionError> {
    poll_until(ctx, "DB instances not available", || async {
        let now = select(client, region, &Select::Ids(ids.to_vec())).await?;
        let behind: Vec<String> = now
            .iter()
            .filter(|db| status(db) != "available")
            .map(|db| format!("{} ({})", id_of(db), status(db)))
            .collect();
        Ok(if behind.is_empty() {
            Poll::Done(now)
        } else {
            Poll::NotYet(behind.join(", "))
        })
    })
    .await
}

/// Most PromoteReadReplica calls in flight at once within one step.
const PARALLEL_PROMOTIONS: usize = 8;

/// Promote one replica. RDS refuses a second promotion of an instance
/// whose first is under way (`InvalidDBInstanceState`); then the instance
/// is described, and one no longer available or no longer a replica is
/// taken as promoted by the earlier attempt (its answer lost), for the wait
/// to see through.
async fn promote_one(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
    days: Option<u32>,
) -> Result<(), ActionError> {
    let mut request = client.promote_read_replica().db_instance_identifier(id);
    if let Some(days) = days {
        request = request.backup_retention_period(i32::try_from(days).unwrap_or(i32::MAX));
    }
    let what = format!("PromoteReadReplica {id} in {region}");
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let refused_state = e
                .as_service_error()
                .and_then(aws_smithy_types::error::metadata::ProvideErrorMetadata::code)
                == Some("InvalidDBInstanceState");
            let e = classify(&what, e);
            if !refused_state {
                return Err(e);
            }
            let now = select(client, region, &Select::Ids(vec![id.to_string()])).await?;
            match now.first() {
                Some(db)
                    if status(db) != "available"
                        || db.read_replica_source_db_instance_identifier().is_none() =>
                {
                    Ok(())
                }
                _ => Err(e),
            }
        }
    }
}

/// `rds.promote_read_replica`: promote every selected replica that is not
/// promoted yet (RDS clears a promoted instance's
/// `ReadReplicaSourceDBInstanceIdentifier`), and wait until all are
/// available.
pub(super) async fn promote(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &PromoteReadReplica,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let which = promote_selection(w)?;
    let mut instances = select(&client, region, &which).await?;
    // A promotion already under way (an interrupted attempt) must finish
    // before the instance can be judged.
    let busy: Vec<String> = instances
        .iter()
        .filter(|db| status(db) != "available")
        .map(id_of)
        .collect();
    if !busy.is_empty() {
        wait_available(&client, region, &busy, ctx).await?;
        instances = select(&client, region, &which).await?;
    }
    let ids: Vec<String> = instances.iter().map(id_of).collect();
    let mut promoted = Vec::new();
    // Promotions are independent: run a bounded number at once.
    let mut tasks = tokio::task::JoinSet::new();
    let pending: Vec<String> = instances
        .iter()
        .filter(|db| db.read_replica_source_db_instance_identifier().is_some())
        .map(id_of)
        .collect();
    let mut queue = pending.into_iter();
    loop {
        while tasks.len() < PARALLEL_PROMOTIONS {
            let Some(id) = queue.next() else { break };
            let (client, region) = (client.clone(), region.to_string());
            let days = w.backup_retention_days;
            tasks.spawn(crate::engine::calls::same_call_log(async move {
                promote_one(&client, &region, &id, days).await.map(|()| id)
            }));
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let id = joined.map_err(|e| ActionError::permanent(format!("promotion task: {e}")))??;
        promoted.push(id);
    }
    promoted.sort();
    let done = wait_available(&client, region, &ids, ctx).await?;
    Ok(promotion_outputs(&done, &ids, &promoted))
}

/// What a promotion (or its drill stand-in) tells later steps: the
/// instances, those promoted now, and their endpoints.
fn promotion_outputs(done: &[DbInstance], ids: &[String], promoted: &[String]) -> Outputs {
    let endpoints: serde_json::Map<String, serde_json::Value> = done
        .iter()
        .map(|db| {
            let address = db.endpoint().and_then(|e| e.address()).unwrap_or_default();
            (id_of(db), serde_json::json!(address))
        })
        .collect();
    let mut outputs = Outputs::from([
        ("db_instances".to_string(), serde_json::json!(ids)),
        ("promoted".to_string(), serde_json::json!(promoted)),
        (
            "endpoints".to_string(),
            serde_json::Value::Object(endpoints),
        ),
    ]);
    if let [single] = done {
        let address = single
            .endpoint()
            .and_then(|e| e.address())
            .unwrap_or_default();
        outputs.insert("endpoint".to_string(), serde_json::json!(address));
    }
    outputs
}

/// A drill's stand-in for `rds.promote_read_replica`: each selected replica
/// is left replicating; its newest snapshot (or, when it has none, a fresh
/// one taken for the drill) is restored into `<replica>-drill-<run>`, with
/// the replica's class and subnet group.
pub(super) async fn drill_promote(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &PromoteReadReplica,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    // A replica the drill made itself (a failback drill rebuilds one under
    // a drill name) is the drill's to promote, for real.
    if let Some(id) = &w.db_instance {
        let copy = super::drill::name(id, &ctx.run_id);
        if let Some(own) = find_instance(&client, region, &copy).await?
            && own.read_replica_source_db_instance_identifier().is_some()
        {
            existing_is_ours(&own, region)?;
            let mut w = w.clone();
            w.db_instance = Some(copy.clone());
            let mut out = promote(aws, ctx, &w).await?;
            out.insert(
                "drill".to_string(),
                serde_json::json!(format!("promoted the drill's own replica {copy}")),
            );
            return Ok(out);
        }
    }
    let replicas = select(&client, region, &promote_selection(w)?).await?;
    let mut copies = Vec::new();
    let mut notes = Vec::new();
    let mut shared = Vec::new();
    for db in &replicas {
        let id = id_of(db);
        let copy = super::drill::name(&id, &ctx.run_id);
        if let Some(existing) = find_instance(&client, region, &copy).await? {
            existing_is_ours(&existing, region)?;
        } else {
            let snapshot =
                match choose_snapshot(&client, region, &SnapshotChoice::NewestOf(&id)).await {
                    Ok(s) => s,
                    Err(e) if e.kind == crate::engine::FailureKind::Permanent => {
                        if find_snapshot(&client, region, &copy).await?.is_none() {
                            client
                                .create_db_snapshot()
                                .db_instance_identifier(&id)
                                .db_snapshot_identifier(&copy)
                                .set_tags(Some(creation_tags(ctx, &Tags::new())))
                                .send()
                                .await
                                .map_err(|e| {
                                    classify(&format!("CreateDBSnapshot {copy} in {region}"), e)
                                })?;
                        }
                        wait_snapshot(&client, region, &copy, ctx).await?
                    }
                    Err(e) => return Err(e),
                };
            let snapshot_id = snapshot.db_snapshot_identifier().unwrap_or_default();
            // The replica's groups, or the drill's placement.
            let groups = GroupsOf::source(db).under(GroupsOf::drill(&ctx.placement));
            if ctx.placement.db_subnet_group.is_none() {
                shared.push(format!(
                    "{copy} is in {id}'s subnet group {}{}",
                    groups.subnet_group.as_deref().unwrap_or("(none)"),
                    if ctx.placement.db_security_groups.is_empty()
                        && !groups.security_groups.is_empty()
                    {
                        format!(
                            " with its security groups {}",
                            groups.security_groups.join(", ")
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            let mut tags = creation_tags(ctx, &Tags::new());
            tags.push(
                Tag::builder()
                    .key(RESTORED_FROM_TAG)
                    .value(snapshot_id)
                    .build(),
            );
            client
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&copy)
                .db_snapshot_identifier(snapshot_id)
                .set_db_instance_class(db.db_instance_class().map(str::to_string))
                .set_db_subnet_group_name(groups.subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!groups.security_groups.is_empty()).then(|| groups.security_groups.clone()),
                )
                .set_db_parameter_group_name(groups.parameter_group.clone())
                .set_option_group_name(groups.option_group.clone())
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| {
                    classify(
                        &format!("RestoreDBInstanceFromDBSnapshot {copy} in {region}"),
                        e,
                    )
                })?;
            notes.push(format!(
                "restored {id}'s snapshot {snapshot_id} into {copy} with {id}'s class, subnet group, security groups, parameter group and option group; {id} was not promoted"
            ));
        }
        copies.push(copy);
    }
    let done = wait_available(&client, region, &copies, ctx).await?;
    let mut outputs = promotion_outputs(&done, &copies, &[]);
    if notes.is_empty() {
        notes.push(format!("drill copies {} exist already", copies.join(", ")));
    }
    let mut note = notes.join("; ");
    if !shared.is_empty() {
        note.push_str(&format!(
            ". The drill shares production's network: {}",
            shared.join("; ")
        ));
    }
    outputs.insert("drill".to_string(), serde_json::json!(note));
    Ok(outputs)
}

/// Where a new instance goes and which groups it takes: a subnet group,
/// VPC security groups, a parameter group and an option group.
#[derive(Debug, Clone, Default, PartialEq)]
struct GroupsOf {
    subnet_group: Option<String>,
    security_groups: Vec<String>,
    parameter_group: Option<String>,
    option_group: Option<String>,
}

impl GroupsOf {
    /// An existing instance's.
    fn source(db: &DbInstance) -> GroupsOf {
        GroupsOf {
            subnet_group: db
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_string),
            security_groups: db
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                .collect(),
            // The engine's default groups (`default.postgres16`,
            // `default:postgres-16`) are what RDS uses when none is named:
            // only the source's own are carried.
            parameter_group: db
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .filter(|n| !n.starts_with("default."))
                .map(str::to_string),
            option_group: db
                .option_group_memberships()
                .first()
                .and_then(|g| g.option_group_name())
                .filter(|n| !n.starts_with("default:"))
                .map(str::to_string),
        }
    }

    /// What a point-in-time restore's step names.
    fn given(w: &RestorePointInTime) -> GroupsOf {
        GroupsOf {
            subnet_group: w.subnet_group.clone(),
            security_groups: w.security_groups.clone(),
            parameter_group: w.parameter_group.clone(),
            option_group: w.option_group.clone(),
        }
    }

    /// Where the runbook's `drill:` puts drill databases.
    fn drill(placement: &crate::runbook::DrillPlacement) -> GroupsOf {
        GroupsOf {
            subnet_group: placement.db_subnet_group.clone(),
            security_groups: placement.db_security_groups.clone(),
            parameter_group: None,
            option_group: None,
        }
    }

    /// These, each overridden by `top` where `top` names it.
    fn under(self, top: GroupsOf) -> GroupsOf {
        GroupsOf {
            subnet_group: top.subnet_group.or(self.subnet_group),
            security_groups: if top.security_groups.is_empty() {
                self.security_groups
            } else {
                top.security_groups
            },
            parameter_group: top.parameter_group.or(self.parameter_group),
            option_group: top.option_group.or(self.option_group),
        }
    }
}

/// Whether `id`'s drill copy exists in the step's region: what a drill
/// step naming `id` acts on instead.
pub(super) async fn drill_copy(
    aws: &AwsClients,
    ctx: &StepContext,
    id: &str,
) -> Result<Option<String>, ActionError> {
    let region = region_of(ctx)?;
    let copy = super::drill::name(id, &ctx.run_id);
    Ok(find_instance(&aws.rds(region), region, &copy)
        .await?
        .map(|_| copy))
}

/// `rds.wait_available`.
pub(super) async fn wait(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &WaitAvailable,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let ids: Vec<String> = select(&client, region, &wait_selection(w)?)
        .await?
        .iter()
        .map(id_of)
        .collect();
    wait_available(&client, region, &ids, ctx).await?;
    Ok(Outputs::from([(
        "db_instances".to_string(),
        serde_json::json!(ids),
    )]))
}

// ---------------------------------------------------------------------------
// Observation helpers shared by the actions below.

/// The instance as it is now, or `None` when there is no such instance.
async fn find_instance(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<DbInstance>, ActionError> {
    let answer = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await;
    let out = found(
        &format!("DescribeDBInstances {id} in {region}"),
        answer,
        |e| e.is_db_instance_not_found_fault(),
    )?;
    Ok(out.and_then(|out| out.db_instances().first().cloned()))
}

/// The snapshot (identifier or ARN) as it is now, or `None`.
async fn find_snapshot(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<DbSnapshot>, ActionError> {
    let answer = client
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await;
    let out = found(
        &format!("DescribeDBSnapshots {id} in {region}"),
        answer,
        |e| e.is_db_snapshot_not_found_fault(),
    )?;
    Ok(out.and_then(|out| out.db_snapshots().first().cloned()))
}

/// Which snapshot an action restores or copies.
enum SnapshotChoice<'a> {
    /// This one, by identifier or ARN.
    Named(&'a str),
    /// The newest available snapshot of this instance.
    NewestOf(&'a str),
    /// The newest available snapshot carrying all these tags.
    NewestTagged(&'a Tags),
}

impl SnapshotChoice<'_> {
    fn describe(&self) -> String {
        match self {
            SnapshotChoice::Named(id) => format!("DB snapshot {id}"),
            SnapshotChoice::NewestOf(db) => format!("available snapshot of {db}"),
            SnapshotChoice::NewestTagged(tags) => {
                format!("available snapshot tagged {}", describe_tags(tags))
            }
        }
    }
}

fn describe_tags(tags: &Tags) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn snapshot_has_tags(s: &DbSnapshot, tags: &Tags) -> bool {
    tags.iter().all(|(k, v)| {
        s.tag_list()
            .iter()
            .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
    })
}

/// The chosen snapshot, which must exist and be available.
async fn choose_snapshot(
    client: &aws_sdk_rds::Client,
    region: &str,
    choice: &SnapshotChoice<'_>,
) -> Result<DbSnapshot, ActionError> {
    let chosen = match choice {
        SnapshotChoice::Named(id) => find_snapshot(client, region, id).await?,
        SnapshotChoice::NewestOf(_) | SnapshotChoice::NewestTagged(_) => {
            let mut request = client.describe_db_snapshots();
            if let SnapshotChoice::NewestOf(db) = choice {
                request = request.db_instance_identifier(*db);
            }
            let mut newest: Option<DbSnapshot> = None;
            let mut pages = request.into_paginator().send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| classify(&format!("DescribeDBSnapshots in {region}"), e))?;
                for s in page.db_snapshots() {
                    let wanted = s.status() == Some("available")
                        && match choice {
                            SnapshotChoice::NewestTagged(tags) => snapshot_has_tags(s, tags),
                            _ => true,
                        };
                    if wanted && created(s) > newest.as_ref().map_or(0, created) {
                        newest = Some(s.clone());
                    }
                }
            }
            newest
        }
    };
    match chosen {
        Some(s) if s.status() == Some("available") => Ok(s),
        Some(s) => Err(ActionError::permanent(format!(
            "DB snapshot {} in {region} is {}, not available",
            s.db_snapshot_identifier().unwrap_or("?"),
            s.status().unwrap_or("unknown")
        ))),
        None => Err(ActionError::permanent(format!(
            "no {} in {region}",
            choice.describe()
        ))),
    }
}

/// The newest available snapshot of `db_instance` in `region` (copies
/// included), with when its data was taken; `None` when there is none.
pub(crate) async fn newest_snapshot(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
) -> Result<Option<(String, DateTime)>, ActionError> {
    match choose_snapshot(
        &aws.rds(region),
        region,
        &SnapshotChoice::NewestOf(db_instance),
    )
    .await
    {
        Ok(s) => Ok(taken(&s)
            .copied()
            .map(|at| (s.db_snapshot_identifier().unwrap_or("?").to_string(), at))),
        Err(e)
            if e.kind == crate::engine::FailureKind::Permanent && e.message.starts_with("no ") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The newest snapshot of `db_instance` in `region`: its identifier,
/// whether it is encrypted, and its KMS key.
pub(crate) async fn newest_snapshot_details(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
) -> Result<Option<(String, bool, Option<String>)>, ActionError> {
    match choose_snapshot(
        &aws.rds(region),
        region,
        &SnapshotChoice::NewestOf(db_instance),
    )
    .await
    {
        Ok(s) => Ok(Some((
            s.db_snapshot_identifier().unwrap_or("?").to_string(),
            s.encrypted().unwrap_or(false),
            s.kms_key_id().map(str::to_string),
        ))),
        Err(e)
            if e.kind == crate::engine::FailureKind::Permanent && e.message.starts_with("no ") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// When the data in a snapshot was taken: for a copy, the original's
/// creation time (a copy's own is when it was copied).
fn taken(s: &DbSnapshot) -> Option<&DateTime> {
    s.original_snapshot_create_time()
        .or(s.snapshot_create_time())
}

/// Creation time in epoch nanoseconds (0 when unknown), for choosing the newest.
fn created(s: &DbSnapshot) -> i128 {
    taken(s).map_or(0, DateTime::as_nanos)
}

fn rfc3339(t: Option<&DateTime>) -> serde_json::Value {
    time_text(t).map_or(serde_json::Value::Null, serde_json::Value::String)
}

fn time_text(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

/// A time for a message.
fn shown(t: Option<&DateTime>) -> String {
    time_text(t).unwrap_or_else(|| "at an unknown time".to_string())
}

/// Tags for a resource lifeboat creates: the user's and its own (and, in
/// a drill, the drill's).
fn creation_tags(ctx: &StepContext, tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .chain(
            super::drill::own_tags(ctx)
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build()),
        )
        .collect()
}

fn created_by_lifeboat(db: &DbInstance) -> bool {
    tag(db, CREATED_TAG).is_some()
}

/// Poll until the snapshot is `available`.
async fn wait_snapshot(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
    ctx: &StepContext,
) -> Result<DbSnapshot, ActionError> {
    poll_until(ctx, "DB snapshot not available", || async {
        match find_snapshot(client, region, id).await? {
            Some(s) if s.status() == Some("available") => Ok(Poll::Done(s)),
            Some(s) => Ok(Poll::NotYet(format!(
                "{id} ({}, {}%)",
                s.status().unwrap_or("unknown"),
                s.percent_progress().unwrap_or(0)
            ))),
            None => Ok(Poll::NotYet(format!("{id} not visible yet"))),
        }
    })
    .await
}

fn snapshot_outputs(s: &DbSnapshot) -> Outputs {
    Outputs::from([
        (
            "snapshot_id".to_string(),
            serde_json::json!(s.db_snapshot_identifier().unwrap_or_default()),
        ),
        (
            "snapshot_arn".to_string(),
            serde_json::json!(s.db_snapshot_arn().unwrap_or_default()),
        ),
        ("created_at".to_string(), rfc3339(taken(s))),
    ])
}

fn instance_outputs(db: &DbInstance) -> Outputs {
    Outputs::from([
        ("db_instance".to_string(), serde_json::json!(id_of(db))),
        (
            "db_instance_arn".to_string(),
            serde_json::json!(db.db_instance_arn().unwrap_or_default()),
        ),
        (
            "endpoint".to_string(),
            serde_json::json!(db.endpoint().and_then(|e| e.address()).unwrap_or_default()),
        ),
    ])
}

/// An instance lifeboat is about to create already exists: it is done when
/// lifeboat created it (an earlier or interrupted attempt, or an earlier
/// run); anything else under that name is not lifeboat's to touch.
fn existing_is_ours(db: &DbInstance, region: &str) -> Result<(), ActionError> {
    if created_by_lifeboat(db) {
        Ok(())
    } else {
        Err(ActionError::permanent(format!(
            "DB instance {} already exists in {region} and was not created by lifeboat (no `{CREATED_TAG}` tag); refusing to use or replace it",
            id_of(db)
        )))
    }
}

// ---------------------------------------------------------------------------
// Snapshots.

/// `rds.create_snapshot`: snapshot an instance unless the snapshot exists.
pub(super) async fn create_snapshot(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CreateSnapshot,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = snapshot_id_for(ctx, w);
    if find_snapshot(&client, region, &id).await?.is_none() {
        let db = find_instance(&client, region, &w.db_instance)
            .await?
            .ok_or_else(|| {
                ActionError::permanent(format!("no DB instance {} in {region}", w.db_instance))
            })?;
        client
            .create_db_snapshot()
            .db_instance_identifier(id_of(&db))
            .db_snapshot_identifier(&id)
            .set_tags(Some(creation_tags(ctx, &w.tags)))
            .send()
            .await
            .map_err(|e| classify(&format!("CreateDBSnapshot {id} in {region}"), e))?;
    }
    let done = wait_snapshot(&client, region, &id, ctx).await?;
    Ok(snapshot_outputs(&done))
}

fn snapshot_id_for(ctx: &StepContext, w: &CreateSnapshot) -> String {
    w.snapshot_id
        .clone()
        .unwrap_or_else(|| identifier(&[&w.db_instance, "lifeboat", &ctx.run_id]))
}

/// `rds.copy_snapshot`: copy the source snapshot into the step's region,
/// calling from that region with the source's ARN, unless the copy exists.
pub(super) async fn copy_snapshot(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CopySnapshot,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let source_client = aws.rds(&w.source_region);
    let source = choose_snapshot(&source_client, &w.source_region, &copy_source(w)).await?;
    let source_arn = source
        .db_snapshot_arn()
        .ok_or_else(|| ActionError::permanent("the source snapshot has no ARN"))?
        .to_string();
    let target = w.target_snapshot_id.clone().unwrap_or_else(|| {
        identifier(&[
            source.db_snapshot_identifier().unwrap_or("snapshot"),
            "copy",
            &ctx.run_id,
        ])
    });
    if find_snapshot(&client, region, &target).await?.is_none() {
        let mut request = client
            .copy_db_snapshot()
            .source_db_snapshot_identifier(&source_arn)
            .target_db_snapshot_identifier(&target)
            .copy_tags(w.copy_tags)
            .set_tags(Some(creation_tags(ctx, &Tags::new())))
            .set_kms_key_id(w.kms_key_id.clone());
        if w.kms_key_id.is_some() && w.source_region != region {
            request = request.pre_signed_url(
                super::presign::copy_db_snapshot(aws, &w.source_region, region, &source_arn, w)
                    .await?,
            );
        }
        request
            .send()
            .await
            .map_err(|e| classify(&format!("CopyDBSnapshot {target} in {region}"), e))?;
    }
    let done = wait_snapshot(&client, region, &target, ctx).await?;
    let mut outputs = snapshot_outputs(&done);
    // The recovery point is the source's, whatever the copy's own time.
    outputs.insert("created_at".to_string(), rfc3339(taken(&source)));
    outputs.insert(
        "source_snapshot_arn".to_string(),
        serde_json::json!(source_arn),
    );
    Ok(outputs)
}

fn copy_source(w: &CopySnapshot) -> SnapshotChoice<'_> {
    match (&w.source_snapshot, &w.source_db_instance) {
        (Some(id), _) => SnapshotChoice::Named(id),
        (None, Some(db)) => SnapshotChoice::NewestOf(db),
        (None, None) => SnapshotChoice::Named(""),
    }
}

// ---------------------------------------------------------------------------
// Restores and replicas: new instances.

fn restore_source(w: &RestoreFromSnapshot) -> SnapshotChoice<'_> {
    match (&w.snapshot, &w.snapshot_of, &w.snapshot_tags) {
        (Some(id), ..) => SnapshotChoice::Named(id),
        (_, Some(db), _) => SnapshotChoice::NewestOf(db),
        (_, _, Some(tags)) => SnapshotChoice::NewestTagged(tags),
        _ => SnapshotChoice::Named(""),
    }
}

/// `rds.restore_from_snapshot`: restore a new instance unless lifeboat has
/// restored it already; wait until it is available.
pub(super) async fn restore_from_snapshot(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &RestoreFromSnapshot,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let mut placed = None;
    let snapshot = match find_instance(&client, region, &w.db_instance).await? {
        Some(db) => {
            existing_is_ours(&db, region)?;
            // Restored earlier: the snapshot it came from, as recorded.
            match tag(&db, RESTORED_FROM_TAG) {
                Some(id) => find_snapshot(&client, region, &id).await?,
                None => None,
            }
        }
        None => {
            let snapshot = choose_snapshot(&client, region, &restore_source(w)).await?;
            let snapshot_id = snapshot
                .db_snapshot_identifier()
                .unwrap_or_default()
                .to_string();
            let mut tags = creation_tags(ctx, &w.tags);
            tags.push(
                Tag::builder()
                    .key(RESTORED_FROM_TAG)
                    .value(&snapshot_id)
                    .build(),
            );
            placed = Some(
                with_db_capacity(
                    format!("DB instance {} in {region}", w.db_instance),
                    (w.instance_class.as_ref(), w.availability_zone.as_ref()),
                    &w.alternatives,
                    |at| {
                        let what = format!(
                            "RestoreDBInstanceFromDBSnapshot {} in {region}{}",
                            w.db_instance,
                            at.describe()
                        );
                        capacity::answer(
                            what,
                            client
                                .restore_db_instance_from_db_snapshot()
                                .db_instance_identifier(&w.db_instance)
                                .db_snapshot_identifier(&snapshot_id)
                                .set_db_instance_class(at.instance_class)
                                .set_availability_zone(at.availability_zone)
                                .set_db_subnet_group_name(w.subnet_group.clone())
                                .set_vpc_security_group_ids(
                                    (!w.security_groups.is_empty())
                                        .then(|| w.security_groups.clone()),
                                )
                                .set_db_parameter_group_name(w.parameter_group.clone())
                                .set_option_group_name(w.option_group.clone())
                                .set_multi_az(w.multi_az)
                                .set_tags(Some(tags.clone()))
                                .send(),
                        )
                    },
                )
                .await?,
            );
            Some(snapshot)
        }
    };
    let done = wait_available(&client, region, std::slice::from_ref(&w.db_instance), ctx).await?;
    let mut outputs = instance_outputs(&done[0]);
    if let Some(snapshot) = snapshot {
        // The recovery point: when the restored snapshot's data was taken.
        outputs.insert(
            "snapshot_arn".to_string(),
            serde_json::json!(snapshot.db_snapshot_arn().unwrap_or_default()),
        );
        outputs.insert("snapshot_created_at".to_string(), rfc3339(taken(&snapshot)));
    }
    outputs.extend(db_placed_outputs(placed));
    Ok(outputs)
}

/// Where a new DB instance is tried: the step's own class and zone, then
/// each alternative (what it does not name stays as the step's).
#[derive(Debug, Clone, Default, PartialEq)]
struct DbPlacement {
    instance_class: Option<String>,
    availability_zone: Option<String>,
}

impl DbPlacement {
    fn describe(&self) -> String {
        match (&self.instance_class, &self.availability_zone) {
            (Some(c), Some(z)) => format!(" as {c} in {z}"),
            (Some(c), None) => format!(" as {c}"),
            (None, Some(z)) => format!(" in {z}"),
            (None, None) => String::new(),
        }
    }
}

/// Create a DB instance with the step's own class and zone (`own`), then
/// each alternative in turn, until RDS has capacity for one.
async fn with_db_capacity<T, F, Fut>(
    resource: String,
    own: (Option<&String>, Option<&String>),
    alternatives: &[DbAlternative],
    mut attempt: F,
) -> Result<Placed<T, DbPlacement>, ActionError>
where
    F: FnMut(DbPlacement) -> Fut,
    Fut: std::future::Future<Output = Result<T, capacity::Refusal>>,
{
    let options = db_placements(own.0, own.1, alternatives);
    first_with_capacity(&resource, &options, |_, at| attempt(at)).await
}

fn db_placements(
    class: Option<&String>,
    zone: Option<&String>,
    alternatives: &[DbAlternative],
) -> Vec<DbPlacement> {
    let own = DbPlacement {
        instance_class: class.cloned(),
        availability_zone: zone.cloned(),
    };
    let mut all = vec![own.clone()];
    all.extend(alternatives.iter().map(|a| {
        DbPlacement {
            instance_class: a
                .instance_class
                .clone()
                .or_else(|| own.instance_class.clone()),
            availability_zone: a
                .availability_zone
                .clone()
                .or_else(|| own.availability_zone.clone()),
        }
    }));
    all
}

/// What a creation that met a capacity shortage says of it: the class and
/// zone it was created with and each refusal before.
fn db_placed_outputs<T>(placed: Option<Placed<T, DbPlacement>>) -> Outputs {
    let mut out = Outputs::new();
    if let Some(placed) = placed.filter(|p| !p.refused.is_empty()) {
        out.insert(
            "instance_class".to_string(),
            serde_json::json!(placed.option.instance_class),
        );
        out.insert(
            "availability_zone".to_string(),
            serde_json::json!(placed.option.availability_zone),
        );
        out.insert(
            "capacity_refusals".to_string(),
            serde_json::json!(placed.refused),
        );
    }
    out
}

/// Tag on a restored instance naming the snapshot it came from, so the
/// recovery point can be told after a resume.
pub const RESTORED_FROM_TAG: &str = "lifeboat:restored-from";

/// `rds.restore_point_in_time`: restore a new instance to a moment (or the
/// latest restorable time) unless lifeboat has restored it already.
pub(super) async fn restore_point_in_time(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &RestorePointInTime,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let mut placed = None;
    let restored_to = match find_instance(&client, region, &w.target_db_instance).await? {
        Some(db) => {
            existing_is_ours(&db, region)?;
            tag(&db, RESTORED_TO_TAG)
        }
        None => {
            let moment = match &w.restore_time {
                Some(text) => Some(DateTime::from_str(text, Format::DateTime).map_err(|e| {
                    ActionError::permanent(format!(
                        "restore_time `{text}` is not an RFC 3339 time: {e}"
                    ))
                })?),
                None => None,
            };
            let source = pitr_source(&client, region, w).await?;
            // The moment actually restored to, recorded on the instance.
            let latest = match &source {
                PitrSource::Instance(db) => db.latest_restorable_time().copied(),
                PitrSource::Replicated(backups) => {
                    backups.check_moment(moment.as_ref())?;
                    backups.latest
                }
            };
            let to = moment
                .as_ref()
                .or(latest.as_ref())
                .and_then(|t| t.fmt(Format::DateTime).ok())
                .unwrap_or_else(|| "latest".to_string());
            let mut tags = creation_tags(ctx, &w.tags);
            tags.push(Tag::builder().key(RESTORED_TO_TAG).value(&to).build());
            // Restored like its source where the source's groups are at
            // hand (the same region): RDS would otherwise use the VPC's
            // default security group and the engine's default groups.
            let groups = match &source {
                PitrSource::Instance(db) => GroupsOf::source(db).under(GroupsOf::given(w)),
                PitrSource::Replicated(_) => GroupsOf::given(w),
            };
            placed = Some(
                with_db_capacity(
                    format!("DB instance {} in {region}", w.target_db_instance),
                    (w.instance_class.as_ref(), w.availability_zone.as_ref()),
                    &w.alternatives,
                    |at| {
                        let what = format!(
                            "RestoreDBInstanceToPointInTime {} in {region}{}",
                            w.target_db_instance,
                            at.describe()
                        );
                        let request = client.restore_db_instance_to_point_in_time();
                        let request = match &source {
                            PitrSource::Instance(db) => {
                                request.source_db_instance_identifier(id_of(db))
                            }
                            PitrSource::Replicated(backups) => {
                                request.source_db_instance_automated_backups_arn(&backups.arn)
                            }
                        };
                        capacity::answer(
                            what,
                            request
                                .target_db_instance_identifier(&w.target_db_instance)
                                .set_restore_time(moment)
                                .set_use_latest_restorable_time(
                                    w.restore_time.is_none().then_some(true),
                                )
                                .set_db_instance_class(at.instance_class)
                                .set_availability_zone(at.availability_zone)
                                .set_db_subnet_group_name(groups.subnet_group.clone())
                                .set_vpc_security_group_ids(
                                    (!groups.security_groups.is_empty())
                                        .then(|| groups.security_groups.clone()),
                                )
                                .set_db_parameter_group_name(groups.parameter_group.clone())
                                .set_option_group_name(groups.option_group.clone())
                                .set_tags(Some(tags.clone()))
                                .send(),
                        )
                    },
                )
                .await?,
            );
            Some(to)
        }
    };
    let done = wait_available(
        &client,
        region,
        std::slice::from_ref(&w.target_db_instance),
        ctx,
    )
    .await?;
    let mut outputs = instance_outputs(&done[0]);
    outputs.insert(
        "restored_to".to_string(),
        restored_to.map_or(serde_json::Value::Null, serde_json::Value::String),
    );
    outputs.extend(db_placed_outputs(placed));
    Ok(outputs)
}

/// What a point-in-time restore reads: the source instance in the step's
/// region, or its automated backups replicated there.
enum PitrSource {
    Instance(Box<DbInstance>),
    Replicated(ReplicatedBackups),
}

async fn pitr_source(
    client: &aws_sdk_rds::Client,
    region: &str,
    w: &RestorePointInTime,
) -> Result<PitrSource, ActionError> {
    let source = w
        .source_db_instance
        .rsplit(':')
        .next()
        .unwrap_or(&w.source_db_instance);
    match w.source_region.as_deref().filter(|r| *r != region) {
        None => find_instance(client, region, source)
            .await?
            .map(|db| PitrSource::Instance(Box::new(db)))
            .ok_or_else(|| ActionError::permanent(format!("no DB instance {source} in {region}"))),
        Some(from) => replicated_backups(client, region, source, from)
            .await?
            .map(PitrSource::Replicated)
            .ok_or_else(|| {
                ActionError::permanent(format!(
                    "no automated backups of {source} replicated from {from} into {region}; start the replication beforehand with `rds.replicate_automated_backups`"
                ))
            }),
    }
}

/// A source instance's automated backups as replicated into a region.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplicatedBackups {
    /// The replicated backups' ARN, in the destination region.
    pub arn: String,
    /// RDS's status of them (`pending`, `replicating`, `active`,
    /// `retained`, ...).
    pub status: String,
    /// The earliest moment they restore to.
    pub earliest: Option<DateTime>,
    /// The latest moment they restore to: the recovery point.
    pub latest: Option<DateTime>,
}

impl ReplicatedBackups {
    fn of(b: &DbInstanceAutomatedBackup) -> ReplicatedBackups {
        let window = b.restore_window();
        ReplicatedBackups {
            arn: b
                .db_instance_automated_backups_arn()
                .unwrap_or_default()
                .to_string(),
            status: b.status().unwrap_or_default().to_string(),
            earliest: window.and_then(|w| w.earliest_time()).copied(),
            latest: window.and_then(|w| w.latest_time()).copied(),
        }
    }

    /// `moment` (none: the latest) lies within the restore window.
    fn check_moment(&self, moment: Option<&DateTime>) -> Result<(), ActionError> {
        let (Some(earliest), Some(latest)) = (&self.earliest, &self.latest) else {
            return Err(ActionError::retryable(format!(
                "the replicated backups {} ({}) have no restore window yet: the first backup has not reached this region",
                self.arn, self.status
            )));
        };
        match moment {
            Some(m) if m < earliest || m > latest => Err(ActionError::permanent(format!(
                "restore_time {} is outside the replicated backups' window, {} to {}",
                shown(Some(m)),
                shown(Some(earliest)),
                shown(Some(latest))
            ))),
            _ => Ok(()),
        }
    }

    fn outputs(&self, started: bool) -> Outputs {
        Outputs::from([
            (
                "automated_backups_arn".to_string(),
                serde_json::json!(self.arn),
            ),
            ("status".to_string(), serde_json::json!(self.status)),
            (
                "restorable_from".to_string(),
                rfc3339(self.earliest.as_ref()),
            ),
            ("restorable_to".to_string(), rfc3339(self.latest.as_ref())),
            ("started".to_string(), serde_json::json!(started)),
        ])
    }
}

/// Among automated backups listed in a destination region, those
/// replicated from `source` in `source_region` (matched by the source's
/// identifier or ARN and region, never the destination's own backups);
/// of several (an earlier replication whose source was deleted, say), the
/// one that restores to the latest moment.
pub(crate) fn replicated_from(
    backups: &[DbInstanceAutomatedBackup],
    source: &str,
    source_region: &str,
) -> Option<ReplicatedBackups> {
    backups
        .iter()
        .filter(|b| b.region() == Some(source_region))
        .filter(|b| {
            b.db_instance_identifier()
                .is_some_and(|id| id.eq_ignore_ascii_case(source))
                || b.db_instance_arn()
                    .is_some_and(|arn| same_instance(arn, source))
        })
        .map(ReplicatedBackups::of)
        .max_by(|a, b| a.latest.cmp(&b.latest))
}

/// The automated backups of `source` replicated from `source_region` into
/// `region`, as RDS lists them there.
pub(crate) async fn replicated_backups(
    client: &aws_sdk_rds::Client,
    region: &str,
    source: &str,
    source_region: &str,
) -> Result<Option<ReplicatedBackups>, ActionError> {
    let mut all = Vec::new();
    let mut pages = client
        .describe_db_instance_automated_backups()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            classify(
                &format!("DescribeDBInstanceAutomatedBackups in {region}"),
                e,
            )
        })?;
        all.extend(page.db_instance_automated_backups().iter().cloned());
    }
    Ok(replicated_from(&all, source, source_region))
}

/// The source instance `w` names, if it could replicate its automated
/// backups as `w` asks.
async fn replication_source(
    aws: &AwsClients,
    w: &ReplicateAutomatedBackups,
) -> Result<DbInstance, ActionError> {
    let source = find_instance(
        &aws.rds(&w.source_region),
        &w.source_region,
        &w.source_db_instance,
    )
    .await?
    .ok_or_else(|| {
        ActionError::permanent(format!(
            "no DB instance {} in {}",
            w.source_db_instance, w.source_region
        ))
    })?;
    replicable(&source, w)?;
    Ok(source)
}

/// Whether `source` could replicate its automated backups as `w` asks:
/// it keeps automated backups, and an encrypted one has a key named for
/// the destination.
fn replicable(source: &DbInstance, w: &ReplicateAutomatedBackups) -> Result<(), ActionError> {
    let id = id_of(source);
    let retention = source.backup_retention_period().unwrap_or(0);
    if retention == 0 {
        return Err(ActionError::permanent(format!(
            "{id} in {} keeps no automated backups (backup retention 0 days): there is nothing to replicate; set a retention first",
            w.source_region
        )));
    }
    if source.storage_encrypted() == Some(true) && w.kms_key_id.is_none() {
        return Err(ActionError::permanent(format!(
            "{id} is encrypted: replicated backups need `kms_key_id`, a KMS key in the destination region"
        )));
    }
    Ok(())
}

/// `rds.replicate_automated_backups`: start replicating the source's
/// automated backups into the step's region unless they replicate there
/// already; wait until RDS lists them there.
pub(super) async fn replicate_automated_backups(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &ReplicateAutomatedBackups,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    if w.source_region == region {
        return Err(ActionError::permanent(format!(
            "source_region {} is the step's own region: automated backups replicate into another region",
            w.source_region
        )));
    }
    let client = aws.rds(region);
    let here = |found: Option<ReplicatedBackups>| found.filter(|b| b.status != "retained");
    if let Some(found) =
        here(replicated_backups(&client, region, &w.source_db_instance, &w.source_region).await?)
    {
        return Ok(found.outputs(false));
    }
    let source = replication_source(aws, w).await?;
    let arn = source.db_instance_arn().unwrap_or_default().to_string();
    client
        .start_db_instance_automated_backups_replication()
        .source_db_instance_arn(&arn)
        .set_backup_retention_period(
            w.backup_retention_days
                .map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
        )
        .set_kms_key_id(w.kms_key_id.clone())
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!("StartDBInstanceAutomatedBackupsReplication of {arn} into {region}"),
                e,
            )
        })?;
    let found = poll_until(
        ctx,
        &format!(
            "replicated backups of {} not listed in {region}",
            w.source_db_instance
        ),
        || async {
            Ok(
                match here(
                    replicated_backups(&client, region, &w.source_db_instance, &w.source_region)
                        .await?,
                ) {
                    Some(found) => Poll::Done(found),
                    None => Poll::NotYet("not listed yet".into()),
                },
            )
        },
    )
    .await?;
    Ok(found.outputs(true))
}

/// `rds.replicate_automated_backups` in a drill: what it would do; nothing
/// is started.
pub(super) async fn would_replicate(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &ReplicateAutomatedBackups,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    if let Some(found) =
        replicated_backups(&client, region, &w.source_db_instance, &w.source_region)
            .await?
            .filter(|b| b.status != "retained")
    {
        return Ok(format!(
            "backups of {} replicate into {region} already ({}, restorable to {})",
            w.source_db_instance,
            found.status,
            shown(found.latest.as_ref())
        ));
    }
    replication_source(aws, w).await?;
    Ok(format!(
        "would start replicating the automated backups of {} from {} into {region}",
        w.source_db_instance, w.source_region
    ))
}

/// Tag on a point-in-time restore naming the moment restored to.
pub const RESTORED_TO_TAG: &str = "lifeboat:restored-to";

/// `rds.create_read_replica`: create a replica in the step's region unless
/// it exists; wait until it is available.
pub(super) async fn create_read_replica(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CreateReadReplica,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let mut placed = None;
    match find_instance(&client, region, &w.db_instance).await? {
        Some(db) => {
            let replicates = db
                .read_replica_source_db_instance_identifier()
                .is_some_and(|s| same_instance(s, &w.source_db_instance));
            if !replicates {
                existing_is_ours(&db, region)?;
            }
        }
        None => {
            let source_region = w.source_region.as_deref().unwrap_or(region);
            let source = find_instance(
                &aws.rds(source_region),
                source_region,
                &w.source_db_instance,
            )
            .await?
            .ok_or_else(|| {
                ActionError::permanent(format!(
                    "no DB instance {} in {source_region}",
                    w.source_db_instance
                ))
            })?;
            // Cross-region replicas name their source by ARN.
            let source_ref = if source_region == region {
                id_of(&source)
            } else {
                source.db_instance_arn().unwrap_or_default().to_string()
            };
            let tags = creation_tags(ctx, &w.tags);
            placed = Some(
                with_db_capacity(
                    format!("read replica {} in {region}", w.db_instance),
                    (w.instance_class.as_ref(), w.availability_zone.as_ref()),
                    &w.alternatives,
                    |at| {
                        let what = format!(
                            "CreateDBInstanceReadReplica {} in {region}{}",
                            w.db_instance,
                            at.describe()
                        );
                        capacity::answer(
                            what,
                            client
                                .create_db_instance_read_replica()
                                .db_instance_identifier(&w.db_instance)
                                .source_db_instance_identifier(source_ref.clone())
                                .set_db_instance_class(at.instance_class)
                                .set_availability_zone(at.availability_zone)
                                .set_kms_key_id(w.kms_key_id.clone())
                                .set_db_subnet_group_name(w.subnet_group.clone())
                                .set_vpc_security_group_ids(
                                    (!w.security_groups.is_empty())
                                        .then(|| w.security_groups.clone()),
                                )
                                .set_db_parameter_group_name(w.parameter_group.clone())
                                .set_option_group_name(w.option_group.clone())
                                .set_tags(Some(tags.clone()))
                                .send(),
                        )
                    },
                )
                .await?,
            );
        }
    }
    let done = wait_available(&client, region, std::slice::from_ref(&w.db_instance), ctx).await?;
    let mut outputs = instance_outputs(&done[0]);
    outputs.extend(db_placed_outputs(placed));
    Ok(outputs)
}

/// Whether a source reference (identifier or ARN) names `id`.
fn same_instance(reference: &str, id: &str) -> bool {
    let last = |s: &str| s.rsplit(':').next().unwrap_or(s).to_ascii_lowercase();
    last(reference) == last(id)
}

// ---------------------------------------------------------------------------
// Changing and removing instances.

/// `rds.modify_instance_class`: change the class of the selected instances
/// not already of (or changing to) it, and wait until all run with it.
pub(super) async fn modify_instance_class(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &ModifyInstanceClass,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let which = match (&w.db_instance, &w.tags) {
        (Some(id), _) => Select::Ids(vec![id.clone()]),
        (None, Some(tags)) => Select::Tags(tags),
        (None, None) => return Err(ActionError::permanent("no DB instance selected")),
    };
    let instances = select(&client, region, &which).await?;
    let class = w.instance_class.as_str();
    let to_modify: Vec<String> = instances
        .iter()
        .filter(|db| {
            db.db_instance_class() != Some(class)
                && db
                    .pending_modified_values()
                    .and_then(|p| p.db_instance_class())
                    != Some(class)
        })
        .map(id_of)
        .collect();
    for id in &to_modify {
        client
            .modify_db_instance()
            .db_instance_identifier(id)
            .db_instance_class(class)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| classify(&format!("ModifyDBInstance {id} in {region}"), e))?;
    }
    let ids: Vec<String> = instances.iter().map(id_of).collect();
    poll_until(ctx, &format!("DB instances not yet {class}"), || async {
        let now = select(&client, region, &Select::Ids(ids.clone())).await?;
        let behind: Vec<String> = now
            .iter()
            .filter(|db| status(db) != "available" || db.db_instance_class() != Some(class))
            .map(|db| {
                format!(
                    "{} ({}, {})",
                    id_of(db),
                    status(db),
                    db.db_instance_class().unwrap_or("?")
                )
            })
            .collect();
        Ok(if behind.is_empty() {
            Poll::Done(())
        } else {
            Poll::NotYet(behind.join(", "))
        })
    })
    .await?;
    Ok(Outputs::from([
        ("db_instances".to_string(), serde_json::json!(ids)),
        ("modified".to_string(), serde_json::json!(to_modify)),
        ("instance_class".to_string(), serde_json::json!(class)),
    ]))
}

/// `rds.delete_instance`: delete an instance lifeboat created (never any
/// other), optionally with a final snapshot, and wait until it is gone.
pub(super) async fn delete_instance(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &DeleteInstance,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = w.db_instance.as_str();
    let mut deleted = false;
    if let Some(db) = find_instance(&client, region, id).await? {
        if !created_by_lifeboat(&db) {
            return Err(ActionError::permanent(format!(
                "DB instance {id} in {region} was not created by lifeboat (no `{CREATED_TAG}` tag); refusing to delete it"
            )));
        }
        if status(&db) != "deleting" {
            client
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(w.final_snapshot_id.is_none())
                .set_final_db_snapshot_identifier(w.final_snapshot_id.clone())
                .send()
                .await
                .map_err(|e| classify(&format!("DeleteDBInstance {id} in {region}"), e))?;
            deleted = true;
        }
        poll_until(ctx, "DB instance not deleted", || async {
            Ok(match find_instance(&client, region, id).await? {
                None => Poll::Done(()),
                Some(db) => Poll::NotYet(format!("{id} ({})", status(&db))),
            })
        })
        .await?;
    }
    Ok(Outputs::from([
        ("db_instance".to_string(), serde_json::json!(id)),
        ("deleted".to_string(), serde_json::json!(deleted)),
    ]))
}

/// `rds.wait_replica_lag`: wait until the replica's CloudWatch `ReplicaLag`
/// is at most `max_lag`, by a datapoint no older than two periods (an old
/// one says nothing of the lag now).
pub(super) async fn wait_replica_lag(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &WaitReplicaLag,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = w.db_instance.as_str();
    let db = find_instance(&client, region, id)
        .await?
        .ok_or_else(|| ActionError::permanent(format!("no DB instance {id} in {region}")))?;
    if db.read_replica_source_db_instance_identifier().is_none() {
        return Err(ActionError::permanent(format!(
            "DB instance {id} in {region} is not a read replica"
        )));
    }
    let max = w.max_lag.get().as_secs_f64();
    let lag = poll_until(ctx, &format!("replica {id} still lagging"), || async {
        Ok(
            match super::cloudwatch::current_lag(aws, region, id).await? {
                Ok(lag) if lag <= max => Poll::Done(lag),
                Ok(lag) => Poll::NotYet(format!("ReplicaLag {lag} s, want at most {max} s")),
                Err(why) => Poll::NotYet(why),
            },
        )
    })
    .await?;
    Ok(Outputs::from([
        ("db_instance".to_string(), serde_json::json!(id)),
        ("lag_seconds".to_string(), serde_json::json!(lag)),
    ]))
}

// ---------------------------------------------------------------------------
// Preflights: read-only, each saying whether the action could run now.

/// Actions that create DB instances.
const MAKES_INSTANCES: &[ActionKind] = &[
    ActionKind::RdsRestoreFromSnapshot,
    ActionKind::RdsRestorePointInTime,
    ActionKind::RdsCreateReadReplica,
];
/// Actions that create DB snapshots.
const MAKES_SNAPSHOTS: &[ActionKind] = &[
    ActionKind::RdsCreateSnapshot,
    ActionKind::RdsCopySnapshot,
    ActionKind::RdsDeleteInstance,
];

/// Why a replica's replication is not healthy, if it is not.
fn replication_trouble(db: &DbInstance) -> Option<String> {
    db.status_infos()
        .iter()
        .find(|s| s.status_type() == Some("read replication") && s.normal() == Some(false))
        .map(|s| {
            format!(
                "replication of {} is {}{}",
                id_of(db),
                s.status().unwrap_or("unhealthy"),
                s.message().map(|m| format!(": {m}")).unwrap_or_default()
            )
        })
}

/// An instance that must exist to be acted on.
async fn instance_to_act_on(
    client: &aws_sdk_rds::Client,
    region: &str,
    which: &Select<'_>,
    upstream: &[ActionKind],
) -> Result<Readiness, ActionError> {
    Ok(match select(client, region, which).await {
        Ok(found) => Readiness::Ready(format!(
            "{} found in {region}: {}",
            which.describe(),
            found
                .iter()
                .map(|db| format!("{} ({})", id_of(db), status(db)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) if e.kind == crate::engine::FailureKind::Permanent => {
            Readiness::missing(e.message, upstream, MAKES_INSTANCES)
        }
        Err(e) => return Err(e),
    })
}

/// A new instance's name is free, or holds lifeboat's own instance.
async fn new_instance_name(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<Readiness>, ActionError> {
    Ok(find_instance(client, region, id)
        .await?
        .map(|db| match existing_is_ours(&db, region) {
            Ok(()) => Readiness::Ready(format!(
                "DB instance {id} exists already, created by lifeboat: nothing to do"
            )),
            Err(e) => Readiness::WouldFail(e.message),
        }))
}

/// Whether the RDS action `input` could run now.
pub(super) async fn preflight(
    aws: &AwsClients,
    ctx: &StepContext,
    input: &ActionInput,
    upstream: &[ActionKind],
) -> Result<Readiness, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    Ok(match input {
        ActionInput::RdsCreateSnapshot(w) => {
            let id = snapshot_id_for(ctx, w);
            if find_snapshot(&client, region, &id).await?.is_some() {
                Readiness::Ready(format!("snapshot {id} exists already: nothing to do"))
            } else {
                let which = Select::Ids(vec![w.db_instance.clone()]);
                instance_to_act_on(&client, region, &which, upstream).await?
            }
        }
        ActionInput::RdsCopySnapshot(w) => {
            let source_client = aws.rds(&w.source_region);
            match choose_snapshot(&source_client, &w.source_region, &copy_source(w)).await {
                Ok(s) => Readiness::Ready(format!(
                    "source snapshot {} (taken {}) is available in {}",
                    s.db_snapshot_identifier().unwrap_or("?"),
                    shown(taken(&s)),
                    w.source_region
                )),
                Err(e) => Readiness::missing(e.message, upstream, MAKES_SNAPSHOTS),
            }
        }
        ActionInput::RdsRestoreFromSnapshot(w) => {
            match new_instance_name(&client, region, &w.db_instance).await? {
                Some(verdict) => verdict,
                None => match choose_snapshot(&client, region, &restore_source(w)).await {
                    Ok(s) => Readiness::Ready(format!(
                        "would restore {} from snapshot {} (taken {})",
                        w.db_instance,
                        s.db_snapshot_identifier().unwrap_or("?"),
                        shown(taken(&s))
                    )),
                    Err(e) => Readiness::missing(e.message, upstream, MAKES_SNAPSHOTS),
                },
            }
        }
        ActionInput::RdsRestorePointInTime(w) => {
            match new_instance_name(&client, region, &w.target_db_instance).await? {
                Some(verdict) => verdict,
                None if w.source_region.as_deref().is_some_and(|r| r != region) => {
                    match pitr_source(&client, region, w).await {
                        Ok(PitrSource::Replicated(b)) => match b.check_moment(None) {
                            Ok(()) => Readiness::Ready(format!(
                                "automated backups of {} replicate into {region} ({}); restorable from {} to {}",
                                w.source_db_instance,
                                b.status,
                                shown(b.earliest.as_ref()),
                                shown(b.latest.as_ref())
                            )),
                            Err(e) => Readiness::WouldFail(e.message),
                        },
                        Ok(PitrSource::Instance(db)) => {
                            Readiness::Ready(format!("{} found in {region}", id_of(&db)))
                        }
                        Err(e) if e.kind == crate::engine::FailureKind::Permanent => {
                            Readiness::WouldFail(e.message)
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => match find_instance(&client, region, &w.source_db_instance).await? {
                    None => Readiness::WouldFail(format!(
                        "no DB instance {} in {region}",
                        w.source_db_instance
                    )),
                    Some(db) if db.backup_retention_period().unwrap_or(0) == 0 => {
                        Readiness::WouldFail(format!(
                            "DB instance {} has automated backups turned off: nothing to restore to a point in time",
                            w.source_db_instance
                        ))
                    }
                    Some(db) => Readiness::Ready(format!(
                        "{} keeps automated backups; latest restorable time {}",
                        w.source_db_instance,
                        shown(db.latest_restorable_time())
                    )),
                },
            }
        }
        ActionInput::RdsCreateReadReplica(w) => {
            match find_instance(&client, region, &w.db_instance).await? {
                Some(db)
                    if db
                        .read_replica_source_db_instance_identifier()
                        .is_some_and(|s| same_instance(s, &w.source_db_instance)) =>
                {
                    Readiness::Ready(format!(
                        "{} replicates {} already: nothing to do",
                        w.db_instance, w.source_db_instance
                    ))
                }
                Some(_) => new_instance_name(&client, region, &w.db_instance)
                    .await?
                    .unwrap_or_else(|| Readiness::Ready(String::new())),
                None => {
                    let source_region = w.source_region.as_deref().unwrap_or(region);
                    match find_instance(
                        &aws.rds(source_region),
                        source_region,
                        &w.source_db_instance,
                    )
                    .await?
                    {
                        Some(db) => Readiness::Ready(format!(
                            "source {} is {} in {source_region}",
                            w.source_db_instance,
                            status(&db)
                        )),
                        None => Readiness::WouldFail(format!(
                            "no DB instance {} in {source_region}",
                            w.source_db_instance
                        )),
                    }
                }
            }
        }
        ActionInput::RdsPromoteReadReplica(w) => {
            let which = promote_selection(w)?;
            match select(&client, region, &which).await {
                Err(e) => Readiness::missing(e.message, upstream, MAKES_INSTANCES),
                Ok(found) => {
                    let trouble: Vec<String> =
                        found.iter().filter_map(replication_trouble).collect();
                    if trouble.is_empty() {
                        let replicas = found
                            .iter()
                            .filter(|db| db.read_replica_source_db_instance_identifier().is_some())
                            .count();
                        Readiness::Ready(format!(
                            "{} of the {} selected instances are read replicas to promote; the rest are standalone already",
                            replicas,
                            found.len()
                        ))
                    } else {
                        Readiness::WouldFail(trouble.join("; "))
                    }
                }
            }
        }
        ActionInput::RdsModifyInstanceClass(w) => {
            let which = match (&w.db_instance, &w.tags) {
                (Some(id), _) => Select::Ids(vec![id.clone()]),
                (None, Some(tags)) => Select::Tags(tags),
                (None, None) => return Err(ActionError::permanent("no DB instance selected")),
            };
            instance_to_act_on(&client, region, &which, upstream).await?
        }
        ActionInput::RdsDeleteInstance(w) => {
            match find_instance(&client, region, &w.db_instance).await? {
                None => Readiness::Ready(format!(
                    "no DB instance {} in {region} now: nothing to delete unless an earlier step creates it",
                    w.db_instance
                )),
                Some(db) if created_by_lifeboat(&db) => Readiness::Ready(format!(
                    "{} was created by lifeboat (run {})",
                    w.db_instance,
                    tag(&db, CREATED_TAG).unwrap_or_default()
                )),
                Some(_) => Readiness::WouldFail(format!(
                    "DB instance {} in {region} was not created by lifeboat; it would not be deleted",
                    w.db_instance
                )),
            }
        }
        ActionInput::RdsWaitAvailable(w) => {
            instance_to_act_on(&client, region, &wait_selection(w)?, upstream).await?
        }
        ActionInput::RdsReplicateAutomatedBackups(w) => match would_replicate(aws, ctx, w).await {
            Ok(note) => Readiness::Ready(note),
            Err(e) if e.kind == crate::engine::FailureKind::Permanent => {
                Readiness::WouldFail(e.message)
            }
            Err(e) => return Err(e),
        },
        ActionInput::RdsSwitchoverGlobalCluster(w) => Readiness::judge(
            would_move(
                aws,
                ctx,
                &w.global_cluster,
                &w.target_cluster,
                Move::Switchover,
            )
            .await,
        )?,
        ActionInput::RdsFailoverGlobalCluster(w) => Readiness::judge(
            would_move(
                aws,
                ctx,
                &w.global_cluster,
                &w.target_cluster,
                Move::Failover,
            )
            .await,
        )?,
        ActionInput::RdsSetServerlessCapacity(w) => {
            Readiness::judge(would_set_capacity(aws, ctx, w).await)?
        }
        ActionInput::RdsIsolateInstance(w) => Readiness::judge(would_isolate(aws, ctx, w).await)?,
        ActionInput::RdsFailoverInstance(w) => {
            Readiness::judge(would_fail_over_instance(aws, ctx, w).await)?
        }
        ActionInput::RdsFailoverCluster(w) => {
            Readiness::judge(would_fail_over_cluster(aws, ctx, w).await)?
        }
        ActionInput::RdsWaitReplicaLag(w) => {
            match find_instance(&client, region, &w.db_instance).await? {
                None => Readiness::missing(
                    format!("no DB instance {} in {region}", w.db_instance),
                    upstream,
                    MAKES_INSTANCES,
                ),
                Some(db) if db.read_replica_source_db_instance_identifier().is_none() => {
                    Readiness::WouldFail(format!(
                        "DB instance {} in {region} is not a read replica",
                        w.db_instance
                    ))
                }
                Some(db) => match replication_trouble(&db) {
                    Some(trouble) => Readiness::WouldFail(trouble),
                    None => Readiness::Ready(format!(
                        "{} is a read replica; its lag is read from CloudWatch during the run",
                        w.db_instance
                    )),
                },
            }
        }
        other => Readiness::Unchecked(format!("{} is not an RDS action", other.kind())),
    })
}

fn promote_selection(w: &PromoteReadReplica) -> Result<Select<'_>, ActionError> {
    Ok(
        match (&w.db_instance, &w.db_instances, &w.tags, &w.replicas_of) {
            (Some(id), ..) => Select::Ids(vec![id.clone()]),
            (_, Some(ids), ..) => Select::Ids(ids.clone()),
            (_, _, Some(tags), _) => Select::Tags(tags),
            (_, _, _, Some(source)) => Select::ReplicasOf(source),
            _ => return Err(ActionError::permanent("no DB instance selected")),
        },
    )
}

fn wait_selection(w: &WaitAvailable) -> Result<Select<'_>, ActionError> {
    Ok(match (&w.db_instance, &w.db_instances, &w.tags) {
        (Some(id), ..) => Select::Ids(vec![id.clone()]),
        (_, Some(ids), _) => Select::Ids(ids.clone()),
        (_, _, Some(tags)) => Select::Tags(tags),
        _ => return Err(ActionError::permanent("no DB instance selected")),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::types::{DbInstanceAutomatedBackup, RestoreWindow};
    use aws_smithy_types::DateTime;

    use super::replicated_from;
    use crate::engine::FailureKind;

    fn backup(
        id: &str,
        region: &str,
        arn: &str,
        status: &str,
        window: Option<(i64, i64)>,
    ) -> DbInstanceAutomatedBackup {
        DbInstanceAutomatedBackup::builder()
            .db_instance_identifier(id)
            .db_instance_arn(format!("arn:aws:rds:{region}:123456789012:db:{id}"))
            .region(region)
            .db_instance_automated_backups_arn(arn)
            .status(status)
            .set_restore_window(window.map(|(from, to)| {
                RestoreWindow::builder()
                    .earliest_time(DateTime::from_secs(from))
                    .latest_time(DateTime::from_secs(to))
                    .build()
            }))
            .build()
    }

    /// In the DR region RDS lists the region's own automated backups and
    /// the replicated ones side by side: only the source's, from its
    /// region, count; of two (a deleted incarnation's retained ones and
    /// the current), the one that restores to the latest moment.
    #[test]
    fn replicated_backups_are_the_sources_from_its_region() {
        let listed = [
            backup("app-db", "us-west-2", "arn:own", "active", Some((0, 900))),
            backup(
                "other-db",
                "us-east-1",
                "arn:other",
                "replicating",
                Some((0, 900)),
            ),
            backup("app-db", "us-east-1", "arn:old", "retained", Some((0, 100))),
            backup(
                "app-db",
                "us-east-1",
                "arn:now",
                "replicating",
                Some((50, 800)),
            ),
        ];
        let found = replicated_from(&listed, "app-db", "us-east-1").expect("replicated");
        assert_eq!(found.arn, "arn:now");
        assert_eq!(found.latest, Some(DateTime::from_secs(800)));
        let by_arn = replicated_from(
            &listed,
            "arn:aws:rds:us-east-1:123456789012:db:app-db",
            "us-east-1",
        );
        assert_eq!(by_arn.map(|b| b.arn), Some("arn:now".to_string()));
        assert!(replicated_from(&listed, "app-db", "eu-west-1").is_none());
        assert!(replicated_from(&listed[..2], "app-db", "us-east-1").is_none());
    }

    #[test]
    fn a_restore_time_must_lie_in_the_replicated_window() {
        let b = replicated_from(
            &[backup(
                "db",
                "us-east-1",
                "arn:b",
                "replicating",
                Some((1000, 2000)),
            )],
            "db",
            "us-east-1",
        )
        .expect("found");
        assert!(b.check_moment(None).is_ok());
        assert!(b.check_moment(Some(&DateTime::from_secs(1500))).is_ok());
        let late = b
            .check_moment(Some(&DateTime::from_secs(2500)))
            .expect_err("after the latest restorable time");
        assert_eq!(late.kind, FailureKind::Permanent);
        assert!(
            late.message
                .contains("outside the replicated backups' window")
        );
        let pending = replicated_from(
            &[backup("db", "us-east-1", "arn:p", "pending", None)],
            "db",
            "us-east-1",
        )
        .expect("found");
        let err = pending
            .check_moment(None)
            .expect_err("nothing restorable yet");
        assert_eq!(err.kind, FailureKind::Retryable);
        assert!(err.message.contains("no restore window yet"), "{err}");
    }
}
