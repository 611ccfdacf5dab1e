//! Drill groups: `autoscaling.set_capacity` in a drill scales a group of
//! the drill's own, made from the production group's launch template (or
//! mixed instances policy, or launch configuration) at the capacity the
//! failover would set, and waits for InService as the failover would; the
//! production group is left as it is. Teardown deletes the drill group
//! and its instances.

use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification, Tag};

use crate::actions::aws_error::classify;
use crate::actions::ec2::DRILL_OF_TAG;
use crate::actions::region_of;
use crate::actions::{autoscaling, drill};
use crate::aws::AwsClients;
use crate::catalogue::autoscaling::SetCapacity;
use crate::engine::{ActionError, FailureKind, Outputs, StepContext};
use crate::iam::DRILL_TAG;

/// The drill group standing in for `group` in this run, when it exists.
async fn existing(
    client: &aws_sdk_autoscaling::Client,
    region: &str,
    name: &str,
    run: &str,
) -> Result<Option<AutoScalingGroup>, ActionError> {
    match autoscaling::group(client, region, name).await {
        Ok(g) => {
            let ours = g
                .tags()
                .iter()
                .any(|t| t.key() == Some(DRILL_TAG) && t.value() == Some(run));
            if ours {
                Ok(Some(g))
            } else {
                Err(ActionError::permanent(format!(
                    "an Auto Scaling group {name} exists in {region} and is not this drill's; the drill will not touch it"
                )))
            }
        }
        Err(e) if e.kind == FailureKind::Permanent && e.message.starts_with("no Auto Scaling") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The tags of the drill group: the production group's own (not AWS's,
/// not lifeboat's, not its `Name`), propagated as they are, and the
/// drill's, propagated to every instance so teardown finds them.
fn tags(source: &AutoScalingGroup, ctx: &StepContext, name: &str) -> Vec<Tag> {
    let tag = |k: &str, v: &str, propagate: bool| {
        Tag::builder()
            .key(k)
            .value(v)
            .propagate_at_launch(propagate)
            .build()
    };
    let mut out: Vec<Tag> = source
        .tags()
        .iter()
        .filter_map(|t| {
            let k = t.key()?;
            (!k.starts_with("aws:") && !k.starts_with("lifeboat:") && k != "Name").then(|| {
                tag(
                    k,
                    t.value().unwrap_or_default(),
                    t.propagate_at_launch().unwrap_or(false),
                )
            })
        })
        .collect();
    for (k, v) in drill::own_tags(ctx) {
        out.push(tag(&k, &v, true));
    }
    out.push(tag(
        DRILL_OF_TAG,
        source.auto_scaling_group_name().unwrap_or_default(),
        true,
    ));
    out.push(tag("Name", name, true));
    out
}

/// A launch template as a request names it: by id or by name, not both
/// (Auto Scaling answers a group's template with both, and refuses a
/// request that gives both).
fn one_of(t: &LaunchTemplateSpecification) -> LaunchTemplateSpecification {
    let spec = LaunchTemplateSpecification::builder().set_version(t.version().map(str::to_string));
    match t.launch_template_id() {
        Some(id) => spec.launch_template_id(id).build(),
        None => spec
            .set_launch_template_name(t.launch_template_name().map(str::to_string))
            .build(),
    }
}

/// `autoscaling.set_capacity` in a drill.
pub(super) async fn set_capacity(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetCapacity,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.autoscaling(region);
    let name = drill::name(&w.group, &ctx.run_id);
    // A later step of the same drill (or this one, resumed) scales the
    // drill group the drill made, for real.
    if existing(&client, region, &name, &ctx.run_id)
        .await?
        .is_some()
    {
        let mut own = w.clone();
        own.group = name.clone();
        let mut out = autoscaling::set_capacity(aws, ctx, &own).await?;
        out.insert(
            "drill".to_string(),
            serde_json::json!(format!(
                "scaled the drill group {name}; {} was not changed",
                w.group
            )),
        );
        return Ok(out);
    }
    let source = autoscaling::group(&client, region, &w.group).await?;
    let (min, desired, max) = autoscaling::target(&source, w)
        .map_err(|e| ActionError::permanent(format!("Auto Scaling group {}: {e}", w.group)))?;
    if desired == 0 {
        return Ok(Outputs::from([
            ("simulated".to_string(), serde_json::json!(true)),
            (
                "drill".to_string(),
                serde_json::json!(format!(
                    "would set group {} to desired 0; the drill has no group of its own to scale down",
                    w.group
                )),
            ),
        ]));
    }
    let subnets = if ctx.placement.subnets.is_empty() {
        None
    } else {
        Some(ctx.placement.subnets.join(","))
    };
    let shared = subnets.is_none();
    let vpc_zones = subnets.or_else(|| source.vpc_zone_identifier().map(str::to_string));
    let zones = vpc_zones
        .is_none()
        .then(|| source.availability_zones().to_vec());
    let created = client
        .create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .set_launch_template(source.launch_template().map(one_of))
        .set_mixed_instances_policy(source.mixed_instances_policy().map(|m| {
            let mut m = m.clone();
            if let Some(t) = m.launch_template.as_mut() {
                t.launch_template_specification =
                    t.launch_template_specification.as_ref().map(one_of);
                if let Some(overrides) = t.overrides.as_mut() {
                    for o in overrides {
                        o.launch_template_specification =
                            o.launch_template_specification.as_ref().map(one_of);
                    }
                }
            }
            m
        }))
        .set_launch_configuration_name(source.launch_configuration_name().map(str::to_string))
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .set_vpc_zone_identifier(vpc_zones.clone())
        .set_availability_zones(zones)
        .set_health_check_type(source.health_check_type().map(str::to_string))
        .set_health_check_grace_period(source.health_check_grace_period())
        .set_default_instance_warmup(source.default_instance_warmup())
        .set_capacity_rebalance(source.capacity_rebalance())
        .set_tags(Some(tags(&source, ctx, &name)))
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .and_then(|s| aws_smithy_types::error::metadata::ProvideErrorMetadata::code(s))
            == Some("AlreadyExists");
        // Made by an attempt whose answer was lost: found again below.
        if !exists {
            let e = classify(
                &format!(
                    "CreateAutoScalingGroup {name} (drill copy of {}) in {region}",
                    w.group
                ),
                e,
            );
            return Err(drill::passing_roles(
                e,
                ctx,
                &format!(
                    "{}'s launch template or configuration, if it names an instance profile",
                    w.group
                ),
            ));
        }
        existing(&client, region, &name, &ctx.run_id).await?;
    }
    let ready = if w.wait_in_service {
        let wanted = usize::try_from(desired).unwrap_or(0);
        autoscaling::wait_at_capacity(&client, region, &name, wanted, ctx).await?
    } else {
        Vec::new()
    };
    let from = match (
        source.launch_template(),
        source.mixed_instances_policy(),
        source.launch_configuration_name(),
    ) {
        (Some(t), _, _) => format!(
            "launch template {} ({})",
            t.launch_template_name()
                .or(t.launch_template_id())
                .unwrap_or("?"),
            t.version().unwrap_or("$Default")
        ),
        (None, Some(_), _) => "mixed instances policy".to_string(),
        (None, None, Some(c)) => format!("launch configuration {c}"),
        (None, None, None) => "configuration".to_string(),
    };
    let mut note = format!(
        "created the drill group {name} from {}'s {from} at min {min}, desired {desired}, max {max}; {} was not changed, and the drill group is in no load balancer or target group",
        w.group, w.group
    );
    if shared {
        note.push_str(&format!(
            ". The drill shares production's network: {name} launches into {}'s subnets {}",
            w.group,
            vpc_zones
                .as_deref()
                .unwrap_or("(its zones' default subnets)")
        ));
    } else {
        note.push_str(&format!(
            ", in the drill subnets {} with the launch template's security groups",
            ctx.placement.subnets.join(", ")
        ));
    }
    Ok(Outputs::from([
        ("group".to_string(), serde_json::json!(name)),
        ("desired".to_string(), serde_json::json!(desired)),
        ("changed".to_string(), serde_json::json!(true)),
        ("instance_ids".to_string(), serde_json::json!(ready)),
        ("drill".to_string(), serde_json::json!(note)),
    ]))
}

/// Delete the drill groups `which` takes in `region`, instances with them
/// (`ForceDelete`): their instances carry the drill tag, so the instance
/// teardown that follows finds any still shutting down.
pub(super) async fn teardown(
    aws: &AwsClients,
    region: &str,
    which: &super::Which,
    t: &mut super::Teardown,
) {
    use aws_sdk_autoscaling::types::Filter;
    let client = aws.autoscaling(region);
    let mut pages = client
        .describe_auto_scaling_groups()
        .filters(Filter::builder().name("tag-key").values(DRILL_TAG).build())
        // The API's largest page (50 when not asked).
        .max_records(100)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                t.errors
                    .push(format!("DescribeAutoScalingGroups in {region}: {e}"));
                return;
            }
        };
        for g in page.auto_scaling_groups() {
            let run = g
                .tags()
                .iter()
                .find(|t| t.key() == Some(DRILL_TAG))
                .and_then(|t| t.value());
            if run.is_some_and(|r| which.takes(r))
                && let Some(n) = g.auto_scaling_group_name()
            {
                names.push(n.to_string());
            }
        }
    }
    for name in names {
        match client
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .force_delete(true)
            .send()
            .await
        {
            Ok(_) => t
                .removed
                .push(format!("Auto Scaling group {name} ({region})")),
            Err(e) => {
                let gone = e
                    .as_service_error()
                    .and_then(|s| {
                        aws_smithy_types::error::metadata::ProvideErrorMetadata::message(s)
                    })
                    .is_some_and(|m| m.contains("not found"));
                if !gone {
                    t.errors
                        .push(format!("DeleteAutoScalingGroup {name} in {region}: {e}"));
                }
            }
        }
    }
}
