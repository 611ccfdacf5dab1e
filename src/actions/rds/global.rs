//! Aurora global databases: the primary moved to a secondary cluster, by a
//! planned switchover (no data loss) or an unplanned failover (data loss
//! allowed). Done once the target is the writer; a move under way (the
//! global cluster not available, or its `FailoverState` naming the
//! target) is waited for, never started twice.

use aws_sdk_rds::types::GlobalCluster;

use super::super::aws_error::{classify, found};
use super::super::{Poll, poll_until, region_of};
use super::failover::error_code;
use crate::aws::AwsClients;
use crate::engine::{ActionError, Outputs, StepContext};

/// How the primary moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Move {
    /// `SwitchoverGlobalCluster`: planned, no data loss.
    Switchover,
    /// `FailoverGlobalCluster` with `AllowDataLoss`.
    Failover,
}

impl Move {
    fn operation(self) -> &'static str {
        match self {
            Move::Switchover => "SwitchoverGlobalCluster",
            Move::Failover => "FailoverGlobalCluster",
        }
    }
}

async fn find_global(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<GlobalCluster>, ActionError> {
    let answer = client
        .describe_global_clusters()
        .global_cluster_identifier(id)
        .send()
        .await;
    let out = found(
        &format!("DescribeGlobalClusters {id} (from {region})"),
        answer,
        |e| e.is_global_cluster_not_found_fault(),
    )?;
    Ok(out.and_then(|o| o.global_clusters().first().cloned()))
}

async fn existing_global(
    client: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<GlobalCluster, ActionError> {
    find_global(client, region, id)
        .await?
        .ok_or_else(|| ActionError::permanent(format!("no global database {id}")))
}

/// The ARN of the target cluster (its identifier is looked up in the
/// step's region).
async fn target_arn(
    client: &aws_sdk_rds::Client,
    region: &str,
    target: &str,
) -> Result<String, ActionError> {
    if target.starts_with("arn:") {
        return Ok(target.to_string());
    }
    let answer = client
        .describe_db_clusters()
        .db_cluster_identifier(target)
        .send()
        .await;
    let out = found(
        &format!("DescribeDBClusters {target} in {region}"),
        answer,
        |e| e.is_db_cluster_not_found_fault(),
    )?;
    out.and_then(|o| {
        o.db_clusters()
            .first()
            .and_then(|c| c.db_cluster_arn().map(str::to_string))
    })
    .ok_or_else(|| ActionError::permanent(format!("no DB cluster {target} in {region}")))
}

/// The writer's ARN.
pub(crate) fn writer(g: &GlobalCluster) -> Option<&str> {
    g.global_cluster_members()
        .iter()
        .find(|m| m.is_writer() == Some(true))
        .and_then(|m| m.db_cluster_arn())
}

fn members(g: &GlobalCluster) -> Vec<&str> {
    g.global_cluster_members()
        .iter()
        .filter_map(|m| m.db_cluster_arn())
        .collect()
}

/// Whether a move is under way: the global cluster not available, or a
/// failover state reported.
pub(crate) fn moving(g: &GlobalCluster) -> bool {
    g.status() != Some("available") || g.failover_state().is_some_and(|f| f.status().is_some())
}

/// What the move would do, as it stands: `None` when the target is the
/// writer already, else the writer it replaces. A target that is not a
/// member is refused.
pub(crate) fn judge(
    g: &GlobalCluster,
    id: &str,
    target: &str,
) -> Result<Option<String>, ActionError> {
    if !members(g).contains(&target) {
        return Err(ActionError::permanent(format!(
            "{target} is not a member of global database {id} (its members: {})",
            members(g).join(", ")
        )));
    }
    Ok(match writer(g) {
        Some(w) if w == target => None,
        other => Some(other.unwrap_or("none").to_string()),
    })
}

/// `rds.switchover_global_cluster` and `rds.failover_global_cluster`.
pub(in crate::actions) async fn move_primary(
    aws: &AwsClients,
    ctx: &StepContext,
    global: &str,
    target: &str,
    how: Move,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let arn = target_arn(&client, region, target).await?;
    let mut g = existing_global(&client, region, global).await?;
    if moving(&g) {
        g = wait_settled(&client, region, global, ctx).await?;
    }
    let previous = writer(&g).map(str::to_string);
    let moved = judge(&g, global, &arn)?.is_some();
    if moved {
        let what = format!("{} {global} to {arn}", how.operation());
        let sent = match how {
            Move::Switchover => client
                .switchover_global_cluster()
                .global_cluster_identifier(global)
                .target_db_cluster_identifier(&arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e).map(str::to_string), classify(&what, e))),
            Move::Failover => client
                .failover_global_cluster()
                .global_cluster_identifier(global)
                .target_db_cluster_identifier(&arn)
                .allow_data_loss(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e).map(str::to_string), classify(&what, e))),
        };
        if let Err((code, e)) = sent {
            // Refused because a move is under way (an earlier attempt's,
            // its answer lost): the wait sees it through.
            if code.as_deref() != Some("InvalidGlobalClusterStateFault") {
                return Err(e);
            }
            let now = existing_global(&client, region, global).await?;
            let to_target =
                now.failover_state().and_then(|f| f.to_db_cluster_arn()) == Some(arn.as_str());
            if !(moving(&now) && to_target) {
                return Err(e);
            }
        }
    }
    let done = poll_until(
        ctx,
        &format!("global database {global} not yet primary in {arn}"),
        || async {
            let now = existing_global(&client, region, global).await?;
            Ok(if !moving(&now) && writer(&now) == Some(arn.as_str()) {
                Poll::Done(now)
            } else {
                Poll::NotYet(format!(
                    "{global} ({}, writer {})",
                    now.status().unwrap_or("?"),
                    writer(&now).unwrap_or("none")
                ))
            })
        },
    )
    .await?;
    Ok(Outputs::from([
        ("global_cluster".to_string(), serde_json::json!(global)),
        ("writer".to_string(), serde_json::json!(writer(&done))),
        ("previous_writer".to_string(), serde_json::json!(previous)),
        ("moved".to_string(), serde_json::json!(moved)),
        (
            "data_loss_allowed".to_string(),
            serde_json::json!(how == Move::Failover),
        ),
        (
            "endpoint".to_string(),
            serde_json::json!(done.endpoint().unwrap_or_default()),
        ),
    ]))
}

async fn wait_settled(
    client: &aws_sdk_rds::Client,
    region: &str,
    global: &str,
    ctx: &StepContext,
) -> Result<GlobalCluster, ActionError> {
    poll_until(ctx, &format!("global database {global} busy"), || async {
        let now = existing_global(client, region, global).await?;
        Ok(if moving(&now) {
            Poll::NotYet(format!("{global} ({})", now.status().unwrap_or("?")))
        } else {
            Poll::Done(now)
        })
    })
    .await
}

/// A drill's stand-in (and the preflight): the target checked, and what
/// would move.
pub(in crate::actions) async fn would_move(
    aws: &AwsClients,
    ctx: &StepContext,
    global: &str,
    target: &str,
    how: Move,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.rds(region);
    let arn = target_arn(&client, region, target).await?;
    let g = existing_global(&client, region, global).await?;
    Ok(match judge(&g, global, &arn)? {
        None => format!("{arn} is the primary of global database {global} already"),
        Some(from) => format!(
            "would {} global database {global} from {from} to {arn}{}",
            match how {
                Move::Switchover => "switch over",
                Move::Failover => "fail over (allowing data loss)",
            },
            if moving(&g) {
                format!(" once it settles ({})", g.status().unwrap_or("?"))
            } else {
                String::new()
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::{FailoverState, FailoverStatus, GlobalClusterMember};

    const EAST: &str = "arn:aws:rds:us-east-1:1:cluster:orders-east";
    const WEST: &str = "arn:aws:rds:us-west-2:1:cluster:orders-west";

    fn global(writer: &str, status: &str, failing_to: Option<&str>) -> GlobalCluster {
        let mut b = GlobalCluster::builder().status(status);
        for arn in [EAST, WEST] {
            b = b.global_cluster_members(
                GlobalClusterMember::builder()
                    .db_cluster_arn(arn)
                    .is_writer(arn == writer)
                    .build(),
            );
        }
        if let Some(to) = failing_to {
            b = b.failover_state(
                FailoverState::builder()
                    .status(FailoverStatus::FailingOver)
                    .from_db_cluster_arn(writer)
                    .to_db_cluster_arn(to)
                    .build(),
            );
        }
        b.build()
    }

    #[test]
    fn the_target_as_writer_is_done_a_stranger_is_refused() {
        let g = global(EAST, "available", None);
        assert_eq!(
            judge(&g, "orders", WEST).expect("judged"),
            Some(EAST.to_string())
        );
        assert_eq!(
            judge(&global(WEST, "available", None), "orders", WEST).expect("judged"),
            None
        );
        let err = judge(&g, "orders", "arn:aws:rds:eu-west-1:1:cluster:x").expect_err("refused");
        assert!(err.message.starts_with(
            "arn:aws:rds:eu-west-1:1:cluster:x is not a member of global database orders"
        ));
    }

    #[test]
    fn a_failover_state_or_a_busy_status_is_a_move_under_way() {
        assert!(!moving(&global(EAST, "available", None)));
        assert!(moving(&global(EAST, "failing-over", None)));
        assert!(moving(&global(EAST, "available", Some(WEST))));
    }
}
