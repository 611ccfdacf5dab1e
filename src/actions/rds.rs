//! RDS: promote read replicas, wait until instances are available.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{DbInstance, Tag};

use super::aws_error::classify;
use super::{Poll, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::rds::{PromoteReadReplica, WaitAvailable};
use crate::engine::{ActionError, Outputs, StepContext};

/// Tag lifeboat puts on an instance it promoted: its own durable record of
/// the promotion, for emulators that keep reporting the instance as a
/// replica afterwards (real RDS clears `ReadReplicaSourceDBInstanceIdentifier`).
pub const PROMOTED_TAG: &str = "lifeboat:promoted-by-run";

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
                let out = client
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send()
                    .await;
                match out {
                    Ok(out) => found.extend(out.db_instances().iter().cloned()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
                    {
                        return Err(ActionError::permanent(format!(
                            "no DB instance {id} in {region}"
                        )));
                    }
                    Err(e) => {
                        return Err(classify(
                            &format!("DescribeDBInstances {id} in {region}"),
                            e,
                        ));
                    }
                }
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

/// Promote one replica and record the promotion in lifeboat's tag.
async fn promote_one(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
    arn: Option<&str>,
    days: Option<u32>,
    run_id: &str,
) -> Result<(), ActionError> {
    let mut request = client.promote_read_replica().db_instance_identifier(id);
    if let Some(days) = days {
        request = request.backup_retention_period(i32::try_from(days).unwrap_or(i32::MAX));
    }
    request
        .send()
        .await
        .map_err(|e| classify(&format!("PromoteReadReplica {id} in {region}"), e))?;
    if let Some(arn) = arn {
        client
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(Tag::builder().key(PROMOTED_TAG).value(run_id).build())
            .send()
            .await
            .map_err(|e| classify(&format!("AddTagsToResource {id} in {region}"), e))?;
    }
    Ok(())
}

/// `rds.promote_read_replica`: promote every selected replica that is not
/// promoted yet, tag it, and wait until all are available.
pub(super) async fn promote(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &PromoteReadReplica,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let which = match (&w.db_instance, &w.db_instances, &w.tags, &w.replicas_of) {
        (Some(id), ..) => Select::Ids(vec![id.clone()]),
        (_, Some(ids), ..) => Select::Ids(ids.clone()),
        (_, _, Some(tags), _) => Select::Tags(tags),
        (_, _, _, Some(source)) => Select::ReplicasOf(source),
        _ => return Err(ActionError::permanent("no DB instance selected")),
    };
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
    let pending: Vec<(String, Option<String>)> = instances
        .iter()
        .filter(|db| {
            db.read_replica_source_db_instance_identifier().is_some()
                && tag(db, PROMOTED_TAG).is_none()
        })
        .map(|db| (id_of(db), db.db_instance_arn().map(str::to_string)))
        .collect();
    let mut queue = pending.into_iter();
    loop {
        while tasks.len() < PARALLEL_PROMOTIONS {
            let Some((id, arn)) = queue.next() else { break };
            let (client, region, run_id) = (client.clone(), region.to_string(), ctx.run_id.clone());
            let days = w.backup_retention_days;
            tasks.spawn(async move {
                promote_one(&client, &region, &id, arn.as_deref(), days, &run_id)
                    .await
                    .map(|()| id)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let id = joined.map_err(|e| ActionError::permanent(format!("promotion task: {e}")))??;
        promoted.push(id);
    }
    promoted.sort();
    let done = wait_available(&client, region, &ids, ctx).await?;
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
    if let [single] = done.as_slice() {
        let address = single
            .endpoint()
            .and_then(|e| e.address())
            .unwrap_or_default();
        outputs.insert("endpoint".to_string(), serde_json::json!(address));
    }
    Ok(outputs)
}

/// `rds.wait_available`.
pub(super) async fn wait(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &WaitAvailable,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let which = match (&w.db_instance, &w.db_instances, &w.tags) {
        (Some(id), ..) => Select::Ids(vec![id.clone()]),
        (_, Some(ids), _) => Select::Ids(ids.clone()),
        (_, _, Some(tags)) => Select::Tags(tags),
        _ => return Err(ActionError::permanent("no DB instance selected")),
    };
    let ids: Vec<String> = select(&client, region, &which)
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
