//! Aurora Serverless v2 capacity: a cluster's ACU range set, and waited
//! for until RDS reports it.

use aws_sdk_rds::types::{DbCluster, ServerlessV2ScalingConfiguration};

use super::super::aws_error::classify;
use super::super::{Poll, poll_until, region_of};
use super::failover::existing_cluster as cluster;
use crate::aws::AwsClients;
use crate::catalogue::rds::SetServerlessCapacity;
use crate::engine::{ActionError, Outputs, StepContext};

/// The cluster's range now, `(min, max)` ACUs, when it has one.
fn range(c: &DbCluster) -> Option<(f64, f64)> {
    let s = c.serverless_v2_scaling_configuration()?;
    Some((s.min_capacity()?, s.max_capacity()?))
}

fn shown(r: Option<(f64, f64)>) -> String {
    r.map_or("no Serverless v2 range".to_string(), |(min, max)| {
        format!("{min}-{max} ACUs")
    })
}

/// `rds.set_serverless_capacity`: unless the range is set already, set
/// it, then wait until the cluster is available with that range.
pub(in crate::actions) async fn set_capacity(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetServerlessCapacity,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let id = w.db_cluster.as_str();
    let wanted = (w.min_acu, w.max_acu);
    let before = range(&cluster(&client, region, id).await?);
    let changed = before != Some(wanted);
    if changed {
        client
            .modify_db_cluster()
            .db_cluster_identifier(id)
            .serverless_v2_scaling_configuration(
                ServerlessV2ScalingConfiguration::builder()
                    .min_capacity(w.min_acu)
                    .max_capacity(w.max_acu)
                    .build(),
            )
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| classify(&format!("ModifyDBCluster {id} in {region}"), e))?;
    }
    poll_until(
        ctx,
        &format!("DB cluster {id} not yet at its range"),
        || async {
            let now = cluster(&client, region, id).await?;
            let status = now.status().unwrap_or("unknown");
            Ok(if status == "available" && range(&now) == Some(wanted) {
                Poll::Done(())
            } else {
                Poll::NotYet(format!("{id} ({status}, {})", shown(range(&now))))
            })
        },
    )
    .await?;
    Ok(Outputs::from([
        ("db_cluster".to_string(), serde_json::json!(id)),
        ("min_acu".to_string(), serde_json::json!(w.min_acu)),
        ("max_acu".to_string(), serde_json::json!(w.max_acu)),
        ("previous".to_string(), serde_json::json!(shown(before))),
        ("changed".to_string(), serde_json::json!(changed)),
    ]))
}

/// A drill's stand-in (and the preflight): the range now, and what it
/// would be.
pub(in crate::actions) async fn would_set_capacity(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetServerlessCapacity,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let now = cluster(&aws.rds(region), region, &w.db_cluster).await?;
    Ok(format!(
        "would set DB cluster {} to {}-{} ACUs (now {})",
        w.db_cluster,
        w.min_acu,
        w.max_acu,
        shown(range(&now))
    ))
}
