//! Failover within a region: a Multi-AZ instance to its standby, a DB
//! cluster to another of its instances. Each observes where the primary
//! (writer) is before it acts, and is done once it is where the step
//! wants it.

use aws_sdk_rds::types::{DbCluster, DbClusterMember, DbInstance};

use super::super::aws_error::{classify, found};
use super::super::{Poll, poll_until, region_of};
use super::{find_instance, id_of, instance_outputs, status, wait_available};
use crate::aws::AwsClients;
use crate::catalogue::rds::{FailoverCluster, FailoverInstance};
use crate::engine::{ActionError, Outputs, StepContext};

fn zone(db: &DbInstance) -> &str {
    db.availability_zone().unwrap_or("?")
}

/// The error code of a service error, if it is one.
pub(super) fn error_code<E, R>(e: &aws_sdk_rds::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(aws_smithy_types::error::metadata::ProvideErrorMetadata::code)
}

/// The Multi-AZ instance a failover acts on, as it is now: refused when
/// there is none, or when it has no standby to fail over to.
async fn multi_az_instance(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<DbInstance, ActionError> {
    let db = find_instance(client, region, id)
        .await?
        .ok_or_else(|| ActionError::permanent(format!("no DB instance {id} in {region}")))?;
    if db.multi_az() != Some(true) {
        return Err(ActionError::permanent(format!(
            "DB instance {id} in {region} is not Multi-AZ: it has no standby to fail over to (it is in {})",
            zone(&db)
        )));
    }
    Ok(db)
}

/// `rds.failover_instance`: while the primary of the Multi-AZ instance is
/// in `from_zone`, reboot it with failover (RDS makes the standby, in
/// another zone, the primary); then wait until it is available outside
/// `from_zone`. The zone is what says the failover happened: a resumed or
/// repeated step finds the primary elsewhere and does not reboot again
/// (which would fail it back into the zone it left).
pub(in crate::actions) async fn failover_instance(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &FailoverInstance,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = w.db_instance.as_str();
    let from = w.from_zone.as_str();
    let mut db = multi_az_instance(&client, region, id).await?;
    // A reboot under way (an interrupted attempt's) must end before the
    // zone tells where the primary is.
    if status(&db) != "available" {
        db = wait_available(&client, region, &[id.to_string()], ctx)
            .await?
            .swap_remove(0);
    }
    let before = zone(&db).to_string();
    let mut failed_over = false;
    if before == from {
        let what = format!("RebootDBInstance {id} (with failover) in {region}");
        match client
            .reboot_db_instance()
            .db_instance_identifier(id)
            .force_failover(true)
            .send()
            .await
        {
            Ok(_) => failed_over = true,
            // Refused because a reboot is under way: an earlier attempt's,
            // whose answer was lost; the wait sees it through.
            Err(e) if error_code(&e) == Some("InvalidDBInstanceState") => {
                let e = classify(&what, e);
                match find_instance(&client, region, id).await? {
                    Some(now) if status(&now) != "available" => failed_over = true,
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(classify(&what, e)),
        }
    }
    let done = poll_until(ctx, &format!("primary of {id} still in {from}"), || async {
        let now = find_instance(&client, region, id).await?.ok_or_else(|| {
            ActionError::permanent(format!("DB instance {id} in {region} is gone"))
        })?;
        Ok(if status(&now) == "available" && zone(&now) != from {
            Poll::Done(now)
        } else {
            Poll::NotYet(format!("{id} ({}, in {})", status(&now), zone(&now)))
        })
    })
    .await?;
    let mut outputs = instance_outputs(&done);
    outputs.extend([
        ("failed_over".to_string(), serde_json::json!(failed_over)),
        ("from_zone".to_string(), serde_json::json!(from)),
        (
            "availability_zone".to_string(),
            serde_json::json!(zone(&done)),
        ),
        (
            "secondary_availability_zone".to_string(),
            serde_json::json!(done.secondary_availability_zone()),
        ),
    ]);
    Ok(outputs)
}

/// A drill's stand-in for `rds.failover_instance`: the checks a failover
/// makes first, and what it would do; nothing is rebooted.
pub(in crate::actions) async fn would_fail_over_instance(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &FailoverInstance,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = w.db_instance.as_str();
    let db = multi_az_instance(&client, region, id).await?;
    let standby = db
        .secondary_availability_zone()
        .unwrap_or("its standby's zone");
    Ok(if zone(&db) == w.from_zone {
        format!(
            "would reboot {id} with failover: its primary is in {} ({}), its standby in {standby}",
            zone(&db),
            status(&db)
        )
    } else {
        format!(
            "{id}'s primary is already outside {} (in {}): a failover would do nothing",
            w.from_zone,
            zone(&db)
        )
    })
}

/// The DB cluster as it is now, or `None`.
async fn find_cluster(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<DbCluster>, ActionError> {
    let answer = client
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await;
    let out = found(
        &format!("DescribeDBClusters {id} in {region}"),
        answer,
        |e| e.is_db_cluster_not_found_fault(),
    )?;
    Ok(out.and_then(|out| out.db_clusters().first().cloned()))
}

fn cluster_status(c: &DbCluster) -> &str {
    c.status().unwrap_or("unknown")
}

fn writer_of(c: &DbCluster) -> Option<&str> {
    c.db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
}

/// A cluster's members with their instances as they are now, in the order
/// RDS would promote them (promotion tier, then name).
async fn cluster_members(
    client: &aws_sdk_rds::Client,
    region: &str,
    cluster: &DbCluster,
) -> Result<Vec<(DbClusterMember, DbInstance)>, ActionError> {
    let mut out = Vec::new();
    for m in cluster.db_cluster_members() {
        let id = m.db_instance_identifier().unwrap_or_default();
        if let Some(db) = find_instance(client, region, id).await? {
            out.push((m.clone(), db));
        }
    }
    out.sort_by_key(|(m, db)| (m.promotion_tier().unwrap_or(15), id_of(db)));
    Ok(out)
}

/// What a cluster failover is to reach, for its cluster as it is now: the
/// target to promote, or `None` when the writer already is where `w`
/// wants it.
async fn cluster_target(
    client: &aws_sdk_rds::Client,
    region: &str,
    cluster: &DbCluster,
    w: &FailoverCluster,
) -> Result<Option<String>, ActionError> {
    let name = w.db_cluster.as_str();
    let writer = writer_of(cluster);
    let members = cluster_members(client, region, cluster).await?;
    if let Some(target) = &w.target_instance {
        if !members.iter().any(|(_, db)| id_of(db) == *target) {
            return Err(ActionError::permanent(format!(
                "{target} is not an instance of DB cluster {name} in {region} (its instances: {})",
                members
                    .iter()
                    .map(|(_, db)| id_of(db))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        return Ok((writer != Some(target.as_str())).then(|| target.clone()));
    }
    let from = w.from_zone.as_deref().unwrap_or_default();
    let writer_zone = members
        .iter()
        .find(|(m, _)| m.is_cluster_writer() == Some(true))
        .map(|(_, db)| zone(db));
    if writer_zone.is_some_and(|z| z != from) {
        return Ok(None);
    }
    members
        .iter()
        .find(|(m, db)| {
            m.is_cluster_writer() != Some(true) && status(db) == "available" && zone(db) != from
        })
        .map(|(_, db)| Some(id_of(db)))
        .ok_or_else(|| {
            ActionError::permanent(format!(
                "DB cluster {name} in {region} has no available reader outside {from} to make its writer (its instances: {})",
                members
                    .iter()
                    .map(|(m, db)| format!(
                        "{}{} in {}, {}",
                        id_of(db),
                        if m.is_cluster_writer() == Some(true) { " (writer)" } else { "" },
                        zone(db),
                        status(db)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })
}

pub(super) async fn existing_cluster(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<DbCluster, ActionError> {
    find_cluster(client, region, id)
        .await?
        .ok_or_else(|| ActionError::permanent(format!("no DB cluster {id} in {region}")))
}

/// Wait until the cluster is available (a failover under way ends first).
async fn wait_cluster_available(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
    ctx: &StepContext,
) -> Result<DbCluster, ActionError> {
    poll_until(ctx, &format!("DB cluster {id} not available"), || async {
        let now = existing_cluster(client, region, id).await?;
        Ok(if cluster_status(&now) == "available" {
            Poll::Done(now)
        } else {
            Poll::NotYet(format!("{id} ({})", cluster_status(&now)))
        })
    })
    .await
}

/// `rds.failover_cluster`: unless the writer already is the target (or
/// already outside `from_zone`), fail the cluster over to the target (or to
/// the reader outside the zone RDS would promote first), and wait until the
/// cluster is available with the writer where it should be.
pub(in crate::actions) async fn failover_cluster(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &FailoverCluster,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let name = w.db_cluster.as_str();
    let mut cluster = existing_cluster(&client, region, name).await?;
    if cluster_status(&cluster) != "available" {
        cluster = wait_cluster_available(&client, region, name, ctx).await?;
    }
    let previous = writer_of(&cluster).map(str::to_string);
    let target = cluster_target(&client, region, &cluster, w).await?;
    if let Some(target) = &target {
        let what = format!("FailoverDBCluster {name} to {target} in {region}");
        match client
            .failover_db_cluster()
            .db_cluster_identifier(name)
            .target_db_instance_identifier(target)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("InvalidDBClusterStateFault") => {
                let e = classify(&what, e);
                let now = existing_cluster(&client, region, name).await?;
                if cluster_status(&now) == "available" {
                    return Err(e);
                }
            }
            Err(e) => return Err(classify(&what, e)),
        }
    }
    let done = poll_until(
        ctx,
        &format!("DB cluster {name} not failed over"),
        || async {
            let now = existing_cluster(&client, region, name).await?;
            if cluster_status(&now) != "available" {
                return Ok(Poll::NotYet(format!("{name} ({})", cluster_status(&now))));
            }
            Ok(match cluster_target(&client, region, &now, w).await {
                Ok(None) => Poll::Done(now),
                Ok(Some(_)) | Err(_) => Poll::NotYet(format!(
                    "{name}'s writer is {}",
                    writer_of(&now).unwrap_or("none")
                )),
            })
        },
    )
    .await?;
    let writer = writer_of(&done).unwrap_or_default().to_string();
    let writer_zone = match find_instance(&client, region, &writer).await? {
        Some(db) => zone(&db).to_string(),
        None => String::new(),
    };
    Ok(Outputs::from([
        ("db_cluster".to_string(), serde_json::json!(name)),
        (
            "db_cluster_arn".to_string(),
            serde_json::json!(done.db_cluster_arn().unwrap_or_default()),
        ),
        ("writer".to_string(), serde_json::json!(writer)),
        ("writer_zone".to_string(), serde_json::json!(writer_zone)),
        ("previous_writer".to_string(), serde_json::json!(previous)),
        (
            "failed_over".to_string(),
            serde_json::json!(target.is_some()),
        ),
        (
            "endpoint".to_string(),
            serde_json::json!(done.endpoint().unwrap_or_default()),
        ),
    ]))
}

/// A drill's stand-in for `rds.failover_cluster`: which instance would
/// become the writer, or that the writer already is where it should be.
pub(in crate::actions) async fn would_fail_over_cluster(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &FailoverCluster,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let name = w.db_cluster.as_str();
    let cluster = existing_cluster(&client, region, name).await?;
    let writer = writer_of(&cluster).unwrap_or("none").to_string();
    Ok(match cluster_target(&client, region, &cluster, w).await? {
        Some(target) => format!(
            "would fail DB cluster {name} over from {writer} to {target} ({})",
            cluster_status(&cluster)
        ),
        None => format!("DB cluster {name}'s writer {writer} already is where the step wants it"),
    })
}
