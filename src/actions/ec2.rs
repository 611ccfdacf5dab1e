//! EC2: start and stop instances by ids or tags, wait until running.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};

use super::aws_error::classify;
use super::{Poll, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::ec2::{Instances, WaitRunning};
use crate::engine::{ActionError, Outputs, StepContext};

/// The instances a selector names, as described now (terminated ones left out).
async fn select(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ids: Option<&Vec<String>>,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Instance>, ActionError> {
    let mut request = client.describe_instances();
    if let Some(ids) = ids {
        request = request.set_instance_ids(Some(ids.clone()));
    }
    for (k, v) in tags.into_iter().flatten() {
        request = request.filters(Filter::builder().name(format!("tag:{k}")).values(v).build());
    }
    let what = match (ids, tags) {
        (Some(ids), _) => format!("instances {}", ids.join(", ")),
        (None, Some(tags)) => format!("instances tagged {}", describe_tags(tags)),
        (None, None) => "instances".to_string(),
    };
    let mut found = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| classify(&format!("DescribeInstances ({what}) in {region}"), e))?;
        for reservation in page.reservations() {
            found.extend(
                reservation
                    .instances()
                    .iter()
                    .filter(|i| state(i) != Some(InstanceStateName::Terminated))
                    .cloned(),
            );
        }
    }
    if found.is_empty() {
        return Err(ActionError::permanent(format!("no {what} in {region}")));
    }
    if let Some(ids) = ids {
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !found.iter().any(|i| i.instance_id() == Some(id.as_str())))
            .collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(ActionError::permanent(format!(
                "no instance {} in {region}",
                names.join(", ")
            )));
        }
    }
    Ok(found)
}

fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn state(i: &Instance) -> Option<InstanceStateName> {
    i.state().and_then(|s| s.name()).cloned()
}

fn ids_in(instances: &[Instance], wanted: &[InstanceStateName]) -> Vec<String> {
    instances
        .iter()
        .filter(|i| state(i).is_some_and(|s| wanted.contains(&s)))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

fn all_ids(instances: &[Instance]) -> Vec<String> {
    instances
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// Poll until every selected instance is in `target`, within the deadline.
async fn wait_for_state(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ids: &[String],
    target: InstanceStateName,
    ctx: &StepContext,
) -> Result<Vec<Instance>, ActionError> {
    let ids = ids.to_vec();
    poll_until(
        ctx,
        &format!("instances not {}", target.as_str()),
        || async {
            let now = select(client, region, Some(&ids), None).await?;
            let behind: Vec<String> = now
                .iter()
                .filter(|i| state(i).as_ref() != Some(&target))
                .map(|i| {
                    let st = state(i).map_or("unknown".to_string(), |s| s.as_str().to_string());
                    format!("{} ({st})", i.instance_id().unwrap_or("?"))
                })
                .collect();
            Ok(if behind.is_empty() {
                Poll::Done(now)
            } else {
                Poll::NotYet(behind.join(", "))
            })
        },
    )
    .await
}

/// Which way `ec2.start_instances` / `ec2.stop_instances` move instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// Stopped to running.
    Start,
    /// Running to stopped.
    Stop,
}

impl Direction {
    fn target(self) -> InstanceStateName {
        match self {
            Direction::Start => InstanceStateName::Running,
            Direction::Stop => InstanceStateName::Stopped,
        }
    }

    /// States from which the call moves an instance.
    fn from(self) -> &'static [InstanceStateName] {
        match self {
            Direction::Start => &[InstanceStateName::Stopped],
            Direction::Stop => &[InstanceStateName::Running, InstanceStateName::Pending],
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Direction::Start => "Start",
            Direction::Stop => "Stop",
        }
    }
}

/// `ec2.start_instances` / `ec2.stop_instances`: act only on the selected
/// instances not already there, then wait until all are.
pub(super) async fn transition(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &Instances,
    direction: Direction,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ec2(region);
    let mut instances = select(&client, region, w.instance_ids.as_ref(), w.tags.as_ref()).await?;
    // An instance still stopping cannot be started yet.
    let stopping = ids_in(&instances, &[InstanceStateName::Stopping]);
    if direction == Direction::Start && !stopping.is_empty() {
        wait_for_state(&client, region, &stopping, InstanceStateName::Stopped, ctx).await?;
        instances = select(&client, region, w.instance_ids.as_ref(), w.tags.as_ref()).await?;
    }
    let to_move = ids_in(&instances, direction.from());
    if !to_move.is_empty() {
        let what = format!(
            "{}Instances {} in {region}",
            direction.verb(),
            to_move.join(", ")
        );
        let ids = Some(to_move.clone());
        match direction {
            Direction::Start => client
                .start_instances()
                .set_instance_ids(ids)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(&what, e)),
            Direction::Stop => client
                .stop_instances()
                .set_instance_ids(ids)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(&what, e)),
        }?;
    }
    let ids = all_ids(&instances);
    wait_for_state(&client, region, &ids, direction.target(), ctx).await?;
    let moved = match direction {
        Direction::Start => "started",
        Direction::Stop => "stopped",
    };
    Ok(Outputs::from([
        ("instance_ids".to_string(), serde_json::json!(ids)),
        (moved.to_string(), serde_json::json!(to_move)),
    ]))
}

/// `ec2.wait_running`: wait until every selected instance runs (and, if
/// asked, passes its status checks).
pub(super) async fn wait_running(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &WaitRunning,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ec2(region);
    let instances = select(&client, region, w.instance_ids.as_ref(), w.tags.as_ref()).await?;
    let ids = all_ids(&instances);
    wait_for_state(&client, region, &ids, InstanceStateName::Running, ctx).await?;
    if w.status_ok {
        let total = ids.len();
        poll_until(ctx, "instances not passing their status checks", || async {
            let statuses = client
                .describe_instance_status()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| classify(&format!("DescribeInstanceStatus in {region}"), e))?;
            let ok = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                s.and_then(|s| s.status())
                    .is_some_and(|st| st.as_str() == "ok")
            };
            let passing = statuses
                .instance_statuses()
                .iter()
                .filter(|s| ok(s.instance_status()) && ok(s.system_status()))
                .count();
            Ok(if passing == total {
                Poll::Done(())
            } else {
                Poll::NotYet(format!("{passing} of {total} pass"))
            })
        })
        .await?;
    }
    Ok(Outputs::from([(
        "instance_ids".to_string(),
        serde_json::json!(ids),
    )]))
}

/// What `transition` would do, for dry runs.
pub(super) fn describe(direction: Direction, ctx: &StepContext, w: &Instances) -> Vec<String> {
    let region = ctx.region.as_deref().unwrap_or("?");
    let which = match (&w.instance_ids, &w.tags) {
        (Some(ids), _) => ids.join(", "),
        (None, Some(tags)) => format!("instances tagged {}", describe_tags(tags)),
        _ => "instances".into(),
    };
    let target = direction.target();
    vec![
        format!("ec2:DescribeInstances {which} in {region}"),
        format!(
            "ec2:{}Instances on those not already {}",
            direction.verb(),
            target.as_str()
        ),
        format!(
            "ec2:DescribeInstances until all are {} (polls 1 s apart, doubling to 15 s)",
            target.as_str()
        ),
    ]
}
