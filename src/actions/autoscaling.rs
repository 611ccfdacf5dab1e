//! Auto Scaling: set a group's capacity and wait for its instances.

use aws_sdk_autoscaling::types::{AutoScalingGroup, ScalingActivityStatusCode};

use super::aws_error::classify;
use super::{Poll, Readiness, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::autoscaling::SetCapacity;
use crate::engine::{ActionError, Outputs, StepContext};

pub(super) async fn group(
    client: &aws_sdk_autoscaling::Client,
    region: &str,
    name: &str,
) -> Result<AutoScalingGroup, ActionError> {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| classify(&format!("DescribeAutoScalingGroups {name} in {region}"), e))?;
    out.auto_scaling_groups()
        .first()
        .cloned()
        .ok_or_else(|| ActionError::permanent(format!("no Auto Scaling group {name} in {region}")))
}

/// The sizes the group gets: what the step sets, the rest as they are.
/// A desired capacity outside the group's bounds is refused rather than
/// silently widening them.
pub(super) fn target(g: &AutoScalingGroup, w: &SetCapacity) -> Result<(i32, i32, i32), String> {
    let int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let desired = int(w.desired);
    let min = w.min.map_or(g.min_size().unwrap_or(0), int);
    let max = w.max.map_or(g.max_size().unwrap_or(0), int);
    if desired > max {
        return Err(format!(
            "desired capacity {desired} is above the group's max size {max}; set `max` too"
        ));
    }
    if desired < min {
        return Err(format!(
            "desired capacity {desired} is below the group's min size {min}; set `min` too"
        ));
    }
    Ok((min, desired, max))
}

pub(super) fn in_service(g: &AutoScalingGroup) -> Vec<String> {
    g.instances()
        .iter()
        .filter(|i| {
            i.lifecycle_state().map(|s| s.as_str()) == Some("InService")
                && i.health_status() == Some("Healthy")
        })
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// `autoscaling.set_capacity`: update the group unless it has the sizes
/// already, then (by default) wait until `desired` instances are InService.
pub(super) async fn set_capacity(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetCapacity,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.autoscaling(region);
    let now = group(&client, region, &w.group).await?;
    let (min, desired, max) = target(&now, w)
        .map_err(|e| ActionError::permanent(format!("Auto Scaling group {}: {e}", w.group)))?;
    let current = (
        now.min_size().unwrap_or(0),
        now.desired_capacity().unwrap_or(0),
        now.max_size().unwrap_or(0),
    );
    let changed = current != (min, desired, max);
    if changed {
        client
            .update_auto_scaling_group()
            .auto_scaling_group_name(&w.group)
            .min_size(min)
            .desired_capacity(desired)
            .max_size(max)
            .send()
            .await
            .map_err(|e| {
                classify(
                    &format!("UpdateAutoScalingGroup {} in {region}", w.group),
                    e,
                )
            })?;
    }
    let mut ready = in_service(&now);
    if w.wait_in_service {
        let wanted = usize::try_from(desired).unwrap_or(0);
        ready = wait_at_capacity(&client, region, &w.group, wanted, ctx).await?;
    }
    Ok(Outputs::from([
        ("group".to_string(), serde_json::json!(w.group)),
        ("desired".to_string(), serde_json::json!(desired)),
        ("changed".to_string(), serde_json::json!(changed)),
        ("instance_ids".to_string(), serde_json::json!(ready)),
    ]))
}

/// Wait until `wanted` of the group's instances are InService and
/// healthy; while they are not, the newest failed scaling activity (a
/// launch AWS refused) is said with the count.
pub(super) async fn wait_at_capacity(
    client: &aws_sdk_autoscaling::Client,
    region: &str,
    name: &str,
    wanted: usize,
    ctx: &StepContext,
) -> Result<Vec<String>, ActionError> {
    poll_until(
        ctx,
        &format!("Auto Scaling group {name} not at capacity"),
        || async {
            let g = group(client, region, name).await?;
            let ready = in_service(&g);
            if ready.len() >= wanted {
                return Ok(Poll::Done(ready));
            }
            let failed = last_failure(client, region, name).await?;
            Ok(Poll::NotYet(format!(
                "{} of {wanted} instances InService and healthy{}",
                ready.len(),
                failed
                    .map(|m| format!("; the last launch failed: {m}"))
                    .unwrap_or_default()
            )))
        },
    )
    .await
}

/// The status message of the group's newest scaling activity, when it failed.
async fn last_failure(
    client: &aws_sdk_autoscaling::Client,
    region: &str,
    name: &str,
) -> Result<Option<String>, ActionError> {
    let out = client
        .describe_scaling_activities()
        .auto_scaling_group_name(name)
        .max_records(1)
        .send()
        .await
        .map_err(|e| classify(&format!("DescribeScalingActivities {name} in {region}"), e))?;
    Ok(out.activities().first().and_then(|a| {
        (a.status_code() == Some(&ScalingActivityStatusCode::Failed))
            .then(|| a.status_message().unwrap_or("no reason given").to_string())
    }))
}

/// Whether the group exists and can take the capacity.
pub(super) async fn preflight(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetCapacity,
) -> Result<Readiness, ActionError> {
    let region = region_of(ctx)?;
    let g = match group(&aws.autoscaling(region), region, &w.group).await {
        Ok(g) => g,
        Err(e) if e.kind == crate::engine::FailureKind::Permanent => {
            return Ok(Readiness::WouldFail(e.message));
        }
        Err(e) => return Err(e),
    };
    Ok(match target(&g, w) {
        Ok((min, desired, max)) => Readiness::Ready(format!(
            "group {} has {} of {} desired now; would become min {min}, desired {desired}, max {max}",
            w.group,
            in_service(&g).len(),
            g.desired_capacity().unwrap_or(0)
        )),
        Err(e) => Readiness::WouldFail(format!("Auto Scaling group {}: {e}", w.group)),
    })
}
