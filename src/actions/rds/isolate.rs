//! Fencing a DB instance: it is given only the quarantine security groups,
//! so that no application reaches it, its data kept. Done once RDS reports
//! exactly those groups, all active.

use std::collections::BTreeSet;

use aws_sdk_rds::types::DbInstance;

use super::super::aws_error::classify;
use super::super::{Poll, poll_until, region_of};
use super::{find_instance, instance_outputs, status};
use crate::aws::AwsClients;
use crate::catalogue::rds::IsolateInstance;
use crate::engine::{ActionError, Outputs, StepContext};

/// The instance's VPC security groups, by id, with their status.
fn groups(db: &DbInstance) -> Vec<(String, String)> {
    db.vpc_security_groups()
        .iter()
        .map(|g| {
            (
                g.vpc_security_group_id().unwrap_or_default().to_string(),
                g.status().unwrap_or("unknown").to_string(),
            )
        })
        .collect()
}

/// Whether the instance has exactly `wanted`, each active.
pub(crate) fn isolated(db: &DbInstance, wanted: &BTreeSet<&str>) -> bool {
    let now = groups(db);
    now.len() == wanted.len()
        && now
            .iter()
            .all(|(id, s)| wanted.contains(id.as_str()) && s == "active")
}

fn shown(db: &DbInstance) -> String {
    groups(db)
        .iter()
        .map(|(id, s)| format!("{id} ({s})"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn instance(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<DbInstance, ActionError> {
    find_instance(client, region, id)
        .await?
        .ok_or_else(|| ActionError::permanent(format!("no DB instance {id} in {region}")))
}

/// `rds.isolate_instance`.
pub(in crate::actions) async fn isolate(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &IsolateInstance,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = w.db_instance.as_str();
    let wanted: BTreeSet<&str> = w.security_groups.iter().map(String::as_str).collect();
    let before = instance(&client, region, id).await?;
    let previous: Vec<String> = groups(&before).into_iter().map(|(g, _)| g).collect();
    let had: BTreeSet<&str> = previous.iter().map(String::as_str).collect();
    let changed = had != wanted;
    if changed {
        client
            .modify_db_instance()
            .db_instance_identifier(id)
            .set_vpc_security_group_ids(Some(w.security_groups.clone()))
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| classify(&format!("ModifyDBInstance {id} in {region}"), e))?;
    }
    let done = poll_until(
        ctx,
        &format!("DB instance {id} not yet isolated"),
        || async {
            let now = instance(&client, region, id).await?;
            Ok(if isolated(&now, &wanted) && status(&now) == "available" {
                Poll::Done(now)
            } else {
                Poll::NotYet(format!("{id} ({}, {})", status(&now), shown(&now)))
            })
        },
    )
    .await?;
    let mut outputs = instance_outputs(&done);
    outputs.extend([
        (
            "security_groups".to_string(),
            serde_json::json!(w.security_groups),
        ),
        (
            "previous_security_groups".to_string(),
            serde_json::json!(previous),
        ),
        ("changed".to_string(), serde_json::json!(changed)),
    ]);
    Ok(outputs)
}

/// A drill's stand-in (and the preflight).
pub(in crate::actions) async fn would_isolate(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &IsolateInstance,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let db = instance(&aws.rds(region), region, &w.db_instance).await?;
    Ok(format!(
        "would put DB instance {} behind {} only (now {})",
        w.db_instance,
        w.security_groups.join(", "),
        shown(&db)
    ))
}
