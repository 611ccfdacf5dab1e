//! EC2: start and stop instances by ids or tags, launch instances from a
//! launch template, copy AMIs across regions, wait until instances run.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeValue, Filter, Image, ImageState, Instance, InstanceStateChange, InstanceStateName,
    InstanceType, LaunchTemplateSpecification, ResourceType, Tag, TagSpecification,
};

use super::aws_error::classify;
use super::capacity::{self, Placed, first_with_capacity};
use super::{CREATED_TAG, Poll, Readiness, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::ec2::{CopyImage, Instances, LaunchFromTemplate, WaitRunning};
use crate::catalogue::{ActionInput, ActionKind};
use crate::engine::{ActionError, FailureKind, Outputs, StepContext};

/// The instances a selector names, as described now (terminated ones left out).
pub(super) async fn select(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ids: Option<&Vec<String>>,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Instance>, ActionError> {
    let mut request = client.describe_instances();
    match ids {
        Some(ids) => request = request.set_instance_ids(Some(ids.clone())),
        // The largest page the API allows (it refuses a page size with
        // ids): each page re-runs the filter, so fewer pages cost less.
        None => request = request.max_results(1000),
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
                    .filter(|i| !drill_copy_unasked(i, tags))
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

/// Whether `i` is a drill's copy that a tag selector did not ask for: a
/// drill copy carries its source's tags, and a selector of production's
/// instances must never pick it up (nor one drill another's copies).
fn drill_copy_unasked(i: &Instance, tags: Option<&BTreeMap<String, String>>) -> bool {
    let Some(tags) = tags else { return false };
    let asks_for_drills = tags.keys().any(|k| k.starts_with("lifeboat:drill"));
    !asks_for_drills
        && i.tags()
            .iter()
            .any(|t| t.key() == Some(crate::iam::DRILL_TAG))
}

fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn state(i: &Instance) -> Option<InstanceStateName> {
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

/// Most instance ids one DescribeInstanceStatus call takes.
const STATUS_IDS_PER_CALL: usize = 100;

/// The state of each instance, by id, from DescribeInstanceStatus: only
/// states, far less than DescribeInstances returns, which matters when a
/// wait polls a thousand instances.
async fn states(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ids: &[String],
) -> Result<BTreeMap<String, InstanceStateName>, ActionError> {
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(STATUS_IDS_PER_CALL) {
        let mut pages = client
            .describe_instance_status()
            .set_instance_ids(Some(chunk.to_vec()))
            .include_all_instances(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify(&format!("DescribeInstanceStatus in {region}"), e))?;
            for status in page.instance_statuses() {
                if let (Some(id), Some(state)) = (
                    status.instance_id(),
                    status.instance_state().and_then(|s| s.name()),
                ) {
                    found.insert(id.to_string(), state.clone());
                }
            }
        }
    }
    Ok(found)
}

/// Poll until every instance in `ids` is in `target`, within the deadline.
/// `known` is what an earlier answer (StartInstances' own) said: when it
/// shows every instance there already, no call is needed.
pub(super) async fn wait_for_state(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ids: &[String],
    target: InstanceStateName,
    known: Option<BTreeMap<String, InstanceStateName>>,
    ctx: &StepContext,
) -> Result<(), ActionError> {
    if known.is_some_and(|k| ids.iter().all(|id| k.get(id) == Some(&target))) {
        return Ok(());
    }
    let target = &target;
    poll_until(
        ctx,
        &format!("instances not {}", target.as_str()),
        || async move {
            let now = states(client, region, ids).await?;
            let behind: Vec<String> = ids
                .iter()
                .filter(|id| now.get(*id) != Some(target))
                .map(|id| {
                    let st = now.get(id).map_or("not found", |s| s.as_str());
                    format!("{id} ({st})")
                })
                .collect();
            Ok(if behind.is_empty() {
                Poll::Done(())
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

/// Most instance ids one StartInstances, StopInstances or
/// TerminateInstances call is given: TerminateInstances documents 1,000 as
/// its limit, and the others are kept to it.
pub(crate) const IDS_PER_CALL: usize = 1000;

/// `ec2.start_instances` / `ec2.stop_instances`: act only on the selected
/// instances not already there (in calls of up to [`IDS_PER_CALL`]), then
/// wait until all are.
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
        wait_for_state(
            &client,
            region,
            &stopping,
            InstanceStateName::Stopped,
            None,
            ctx,
        )
        .await?;
        instances = select(&client, region, w.instance_ids.as_ref(), w.tags.as_ref()).await?;
    }
    let to_move = ids_in(&instances, direction.from());
    let mut resized = Outputs::new();
    // What the selection and the call itself say: the wait's first look.
    let mut known: BTreeMap<String, InstanceStateName> = instances
        .iter()
        .filter_map(|i| Some((i.instance_id()?.to_string(), state(i)?)))
        .collect();
    for chunk in to_move.chunks(IDS_PER_CALL) {
        let what = format!(
            "{}Instances {} in {region}",
            direction.verb(),
            chunk.join(", ")
        );
        let ids = Some(chunk.to_vec());
        let changes = match direction {
            Direction::Start => {
                match client
                    .start_instances()
                    .set_instance_ids(ids)
                    .send()
                    .await
                    .map_err(|e| capacity::refusal(&what, e))
                {
                    Ok(out) => Ok(out.starting_instances().to_vec()),
                    Err(capacity::Refusal::Failed(e)) => Err(e),
                    Err(capacity::Refusal::NoCapacity(why)) => {
                        let (changes, more) =
                            start_one_by_one(&client, region, &instances, chunk, w, why).await?;
                        merge_resized(&mut resized, more);
                        Ok(changes)
                    }
                }
            }
            Direction::Stop => client
                .stop_instances()
                .set_instance_ids(ids)
                .send()
                .await
                .map(|out| out.stopping_instances().to_vec())
                .map_err(|e| classify(&what, e)),
        }?;
        for change in changes {
            if let (Some(id), Some(state)) = (
                change.instance_id(),
                change.current_state().and_then(|s| s.name()),
            ) {
                known.insert(id.to_string(), state.clone());
            }
        }
    }
    let ids = all_ids(&instances);
    wait_for_state(&client, region, &ids, direction.target(), Some(known), ctx).await?;
    let moved = match direction {
        Direction::Start => "started",
        Direction::Stop => "stopped",
    };
    let mut outputs = Outputs::from([
        ("instance_ids".to_string(), serde_json::json!(ids)),
        (moved.to_string(), serde_json::json!(to_move)),
    ]);
    outputs.extend(resized);
    Ok(outputs)
}

/// `more`'s capacity refusals and resized instances added to `into`'s.
fn merge_resized(into: &mut Outputs, more: Outputs) {
    for (key, value) in more {
        match (into.get_mut(&key), value) {
            (Some(serde_json::Value::Array(have)), serde_json::Value::Array(new)) => {
                have.extend(new)
            }
            (Some(serde_json::Value::Object(have)), serde_json::Value::Object(new)) => {
                have.extend(new)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// After EC2 had no capacity to start `to_move` together (`why`): start
/// each on its own as it is, then as each of the step's alternative
/// instance types in turn (changed while it is stopped), until it starts.
/// The state changes, and what was resized with each refusal before.
async fn start_one_by_one(
    client: &aws_sdk_ec2::Client,
    region: &str,
    instances: &[Instance],
    to_move: &[String],
    w: &Instances,
    why: String,
) -> Result<(Vec<InstanceStateChange>, Outputs), ActionError> {
    tracing::warn!(region, "no capacity to start {}: {why}", to_move.join(", "));
    let mut changes = Vec::new();
    let mut resized = serde_json::Map::new();
    let mut refusals = vec![why];
    for id in to_move {
        let own = instances
            .iter()
            .find(|i| i.instance_id() == Some(id.as_str()))
            .and_then(|i| i.instance_type())
            .map(|t| t.as_str().to_string());
        let mut types = vec![own.clone()];
        types.extend(w.alternative_instance_types.iter().cloned().map(Some));
        let placed = first_with_capacity(&format!("instance {id} in {region}"), &types, |i, t| {
            let client = client.clone();
            let id = id.clone();
            async move {
                if i > 0
                    && let Some(t) = &t
                {
                    client
                        .modify_instance_attribute()
                        .instance_id(&id)
                        .instance_type(AttributeValue::builder().value(t).build())
                        .send()
                        .await
                        .map_err(|e| {
                            classify(
                                &format!(
                                    "ModifyInstanceAttribute {id} instanceType {t} in {region}"
                                ),
                                e,
                            )
                        })?;
                }
                let what = match (&t, i) {
                    (Some(t), 1..) => format!("StartInstances {id} as {t} in {region}"),
                    _ => format!("StartInstances {id} in {region}"),
                };
                client
                    .start_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .map(|out| out.starting_instances().to_vec())
                    .map_err(|e| capacity::refusal(&what, e))
            }
        })
        .await?;
        changes.extend(placed.value);
        if placed.option != own
            && let Some(t) = placed.option
        {
            resized.insert(id.clone(), serde_json::json!(t));
        }
        refusals.extend(placed.refused);
    }
    let mut out = Outputs::from([("capacity_refusals".to_string(), serde_json::json!(refusals))]);
    if !resized.is_empty() {
        out.insert("resized".to_string(), serde_json::Value::Object(resized));
    }
    Ok((changes, out))
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
    wait_for_state(&client, region, &ids, InstanceStateName::Running, None, ctx).await?;
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
            "ec2:DescribeInstances until all are {} (polls 250 ms apart at first, then a 25th of the time waited, at most 15 s)",
            target.as_str()
        ),
    ]
}

/// Tag on instances lifeboat launched, naming the step that launched them.
pub const STEP_TAG: &str = "lifeboat:step";

/// A client token for a step's launch of `count` instances: the same for
/// every attempt of the step in the run, so EC2 itself refuses to launch
/// twice when an answer was lost.
/// Each alternative placement (`option` > 0) has a token of its own: EC2
/// refuses one token for different parameters.
pub(super) fn client_token(ctx: &StepContext, count: usize, option: usize) -> String {
    match option {
        0 => token(&format!("{}/{}/{count}", ctx.run_id, ctx.step_id)),
        n => token(&format!("{}/{}/{count}/{n}", ctx.run_id, ctx.step_id)),
    }
}

/// An EC2 client token (at most 64 ASCII characters) that stands for `key`.
pub(super) fn token(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    digest.iter().take(16).fold(String::new(), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    })
}

fn template_spec(w: &LaunchFromTemplate) -> LaunchTemplateSpecification {
    let spec = LaunchTemplateSpecification::builder()
        .version(w.version.clone().unwrap_or_else(|| "$Default".to_string()));
    if w.launch_template.starts_with("lt-") {
        spec.launch_template_id(&w.launch_template).build()
    } else {
        spec.launch_template_name(&w.launch_template).build()
    }
}

/// `ec2.launch_from_template`: make sure `count` live instances carry the
/// step's tags and its [`STEP_TAG`], launching only the missing ones (an
/// earlier attempt's or an earlier run's count), then wait until they run.
pub(super) async fn launch_from_template(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &LaunchFromTemplate,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ec2(region);
    let mut identity = w.tags.clone();
    identity.insert(STEP_TAG.to_string(), ctx.step_id.clone());
    // A drill's instances are its own: never counted with production's.
    identity.extend(
        super::drill::own_tags(ctx)
            .into_iter()
            .filter(|(k, _)| k != CREATED_TAG),
    );
    let live = |found: Vec<Instance>| -> Vec<Instance> {
        let gone = [
            InstanceStateName::ShuttingDown,
            InstanceStateName::Terminated,
        ];
        found
            .into_iter()
            .filter(|i| state(i).is_none_or(|s| !gone.contains(&s)))
            .collect()
    };
    let mut found = match select(&client, region, None, Some(&identity)).await {
        Ok(found) => live(found),
        Err(e) if e.kind == FailureKind::Permanent => Vec::new(),
        Err(e) => return Err(e),
    };
    let wanted = usize::try_from(w.count).unwrap_or(usize::MAX);
    let missing = wanted.saturating_sub(found.len());
    let mut placed: Option<Placed<(), Ec2Placement>> = None;
    if missing > 0 {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        let created = (CREATED_TAG.to_string(), ctx.run_id.clone());
        for (k, v) in identity.iter().chain([(&created.0, &created.1)]) {
            spec = spec.tags(Tag::builder().key(k).value(v).build());
        }
        let spec = spec.build();
        let count = i32::try_from(missing).unwrap_or(i32::MAX);
        let resource = format!(
            "{missing} instance(s) from launch template {} in {region}",
            w.launch_template
        );
        let launched = first_with_capacity(&resource, &placements(w), |i, at| {
            let request = client
                .run_instances()
                .launch_template(template_spec(w))
                .min_count(count)
                .max_count(count)
                .set_instance_type(at.instance_type.as_deref().map(InstanceType::from))
                .set_subnet_id(at.subnet_id.clone())
                .set_security_group_ids(
                    (!w.security_groups.is_empty()).then(|| w.security_groups.clone()),
                )
                .tag_specifications(spec.clone())
                .client_token(client_token(ctx, missing, i));
            let what = format!(
                "RunInstances ({missing}) from launch template {} in {region}{}",
                w.launch_template,
                at.describe()
            );
            capacity::answer(what, request.send())
        })
        .await?;
        found.extend(launched.value.instances().iter().cloned());
        placed = Some(Placed {
            value: (),
            option: launched.option,
            refused: launched.refused,
        });
    }
    let ids = all_ids(&found);
    wait_for_state(&client, region, &ids, InstanceStateName::Running, None, ctx).await?;
    let addresses: Vec<&str> = found
        .iter()
        .filter_map(|i| i.private_ip_address())
        .collect();
    let mut outputs = Outputs::from([
        ("instance_ids".to_string(), serde_json::json!(ids)),
        ("private_ips".to_string(), serde_json::json!(addresses)),
        ("launched".to_string(), serde_json::json!(missing)),
    ]);
    if let Some(placed) = placed {
        outputs.extend(placed_outputs(
            placed.option.instance_type,
            placed.option.subnet_id,
            placed.refused,
        ));
    }
    Ok(outputs)
}

/// Where a launch is tried: the step's own choice, then each alternative
/// (what it does not name stays as the step's).
#[derive(Debug, Clone, Default, PartialEq)]
struct Ec2Placement {
    instance_type: Option<String>,
    subnet_id: Option<String>,
}

impl Ec2Placement {
    fn describe(&self) -> String {
        match (&self.instance_type, &self.subnet_id) {
            (Some(t), Some(s)) => format!(" as {t} in {s}"),
            (Some(t), None) => format!(" as {t}"),
            (None, Some(s)) => format!(" in {s}"),
            (None, None) => String::new(),
        }
    }
}

fn placements(w: &LaunchFromTemplate) -> Vec<Ec2Placement> {
    let own = Ec2Placement {
        instance_type: w.instance_type.clone(),
        subnet_id: w.subnet_id.clone(),
    };
    let mut all = vec![own.clone()];
    all.extend(w.alternatives.iter().map(|a| {
        Ec2Placement {
            instance_type: a
                .instance_type
                .clone()
                .or_else(|| own.instance_type.clone()),
            subnet_id: a.subnet_id.clone().or_else(|| own.subnet_id.clone()),
        }
    }));
    all
}

/// What a launch or start that met a capacity shortage says of it: the
/// type and subnet used, and each refusal before.
fn placed_outputs(
    instance_type: Option<String>,
    subnet_id: Option<String>,
    refused: Vec<String>,
) -> Outputs {
    let mut out = Outputs::new();
    if refused.is_empty() {
        return out;
    }
    out.insert(
        "instance_type".to_string(),
        serde_json::json!(instance_type),
    );
    out.insert("subnet_id".to_string(), serde_json::json!(subnet_id));
    out.insert("capacity_refusals".to_string(), serde_json::json!(refused));
    out
}

/// The tag naming the production instance a drill instance stands in for.
pub const DRILL_OF_TAG: &str = "lifeboat:drill-of";

/// `ec2.wait_running` in a drill: for the instances this drill launched.
pub(super) async fn drill_wait_running(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &WaitRunning,
) -> Result<Outputs, ActionError> {
    let drill = WaitRunning {
        instance_ids: None,
        tags: Some(BTreeMap::from([(
            crate::iam::DRILL_TAG.to_string(),
            ctx.run_id.clone(),
        )])),
        status_ok: w.status_ok,
    };
    let mut outputs = wait_running(aws, ctx, &drill).await?;
    outputs.insert(
        "drill".to_string(),
        serde_json::json!("waited for this drill's instances instead of the named ones"),
    );
    Ok(outputs)
}

/// What `ec2.stop_instances` would stop, for a drill's record.
pub(super) async fn would_stop(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &Instances,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let found = select(
        &aws.ec2(region),
        region,
        w.instance_ids.as_ref(),
        w.tags.as_ref(),
    )
    .await?;
    Ok(format!(
        "would stop {} in {region}; nothing was stopped",
        all_ids(&found).join(", ")
    ))
}

/// The AMI a copy starts from, in the source region.
async fn source_image(client: &aws_sdk_ec2::Client, w: &CopyImage) -> Result<Image, ActionError> {
    newest_image(
        client,
        &w.source_region,
        w.source_image_id.as_deref(),
        w.source_image_tags.as_ref(),
    )
    .await
}

/// The AMI with this id, or the newest available one of this account
/// carrying all these tags, in `region`.
pub(crate) async fn newest_image(
    client: &aws_sdk_ec2::Client,
    region: &str,
    id: Option<&str>,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<Image, ActionError> {
    let mut request = client.describe_images();
    let what = match (id, tags) {
        (Some(id), _) => {
            request = request.image_ids(id);
            format!("AMI {id}")
        }
        (None, Some(tags)) => {
            request = request.owners("self");
            for (k, v) in tags {
                request =
                    request.filters(Filter::builder().name(format!("tag:{k}")).values(v).build());
            }
            format!("AMI tagged {}", describe_tags(tags))
        }
        (None, None) => return Err(ActionError::permanent("no source AMI selected")),
    };
    let out = match request.send().await {
        Ok(out) => out,
        // An id that does not exist is an error, not an empty answer.
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().code())
                .is_some_and(|c| c.starts_with("InvalidAMIID")) =>
        {
            return Err(ActionError::permanent(format!("no {what} in {region}")));
        }
        Err(e) => return Err(classify(&format!("DescribeImages ({what}) in {region}"), e)),
    };
    out.images()
        .iter()
        .filter(|i| i.state() == Some(&ImageState::Available))
        .max_by(|a, b| a.creation_date().cmp(&b.creation_date()))
        .cloned()
        .ok_or_else(|| ActionError::permanent(format!("no available {what} in {region}")))
}

/// The AMI named `name` in the step's region, owned by this account.
async fn image_named(
    client: &aws_sdk_ec2::Client,
    region: &str,
    name: &str,
) -> Result<Option<Image>, ActionError> {
    let out = client
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|e| classify(&format!("DescribeImages name={name} in {region}"), e))?;
    Ok(out
        .images()
        .iter()
        .find(|i| i.state() != Some(&ImageState::Deregistered))
        .cloned())
}

/// `ec2.copy_image`: copy the source AMI into the step's region under
/// `name` unless an AMI of that name is there, then wait until available.
pub(super) async fn copy_image(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CopyImage,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ec2(region);
    let source = source_image(&aws.ec2(&w.source_region), w).await?;
    let source_id = source.image_id().unwrap_or_default().to_string();
    let image_id = match image_named(&client, region, &w.name).await? {
        Some(existing) => existing.image_id().unwrap_or_default().to_string(),
        None => {
            let out = client
                .copy_image()
                .source_region(&w.source_region)
                .source_image_id(&source_id)
                .name(&w.name)
                .encrypted(w.encrypted)
                .set_kms_key_id(w.kms_key_id.clone())
                .client_token(client_token(ctx, 1, 0))
                .send()
                .await
                .map_err(|e| classify(&format!("CopyImage {source_id} to {region}"), e))?;
            let id = out.image_id().unwrap_or_default().to_string();
            client
                .create_tags()
                .resources(&id)
                .set_tags(Some(
                    super::drill::own_tags(ctx)
                        .into_iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| classify(&format!("CreateTags {id} in {region}"), e))?;
            id
        }
    };
    poll_until(ctx, &format!("AMI {image_id} not available"), || async {
        let out = client
            .describe_images()
            .image_ids(&image_id)
            .send()
            .await
            .map_err(|e| classify(&format!("DescribeImages {image_id} in {region}"), e))?;
        Ok(match out.images().first().and_then(|i| i.state()) {
            Some(ImageState::Available) => Poll::Done(()),
            Some(ImageState::Failed | ImageState::Error | ImageState::Deregistered) => {
                return Err(ActionError::permanent(format!(
                    "the copy {image_id} of {source_id} failed in {region}"
                )));
            }
            other => Poll::NotYet(format!(
                "{image_id} is {}",
                other.map_or("not visible yet", |s| s.as_str())
            )),
        })
    })
    .await?;
    Ok(Outputs::from([
        ("image_id".to_string(), serde_json::json!(image_id)),
        ("source_image_id".to_string(), serde_json::json!(source_id)),
    ]))
}

/// Whether the EC2 action `input` could run now.
pub(super) async fn preflight(
    aws: &AwsClients,
    ctx: &StepContext,
    input: &ActionInput,
    upstream: &[ActionKind],
) -> Result<Readiness, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ec2(region);
    let instances = |ids: &Option<Vec<String>>, tags: &Option<BTreeMap<String, String>>| {
        let (ids, tags) = (ids.clone(), tags.clone());
        let client = client.clone();
        async move {
            match select(&client, region, ids.as_ref(), tags.as_ref()).await {
                Ok(found) => {
                    let mut by_state = BTreeMap::<String, usize>::new();
                    for i in &found {
                        *by_state
                            .entry(state(i).map_or("unknown".into(), |s| s.as_str().to_string()))
                            .or_default() += 1;
                    }
                    let states = by_state
                        .iter()
                        .map(|(s, n)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    Ok(Readiness::Ready(format!(
                        "{} instance(s) in {region}: {states}",
                        found.len()
                    )))
                }
                Err(e) if e.kind == FailureKind::Permanent => Ok(Readiness::missing(
                    e.message,
                    upstream,
                    &[ActionKind::Ec2LaunchFromTemplate],
                )),
                Err(e) => Err(e),
            }
        }
    };
    Ok(match input {
        ActionInput::Ec2StartInstances(w) | ActionInput::Ec2StopInstances(w) => {
            instances(&w.instance_ids, &w.tags).await?
        }
        ActionInput::Ec2WaitRunning(w) => instances(&w.instance_ids, &w.tags).await?,
        ActionInput::Ec2LaunchFromTemplate(w) => {
            let mut request = client.describe_launch_templates();
            request = if w.launch_template.starts_with("lt-") {
                request.launch_template_ids(&w.launch_template)
            } else {
                request.launch_template_names(&w.launch_template)
            };
            match request.send().await {
                Ok(out) if !out.launch_templates().is_empty() => Readiness::Ready(format!(
                    "launch template {} exists in {region}",
                    w.launch_template
                )),
                Ok(_) => Readiness::WouldFail(format!(
                    "no launch template {} in {region}",
                    w.launch_template
                )),
                Err(e)
                    if e.as_service_error()
                        .and_then(|s| s.meta().code())
                        .is_some_and(|c| c.starts_with("InvalidLaunchTemplate")) =>
                {
                    Readiness::WouldFail(format!(
                        "no launch template {} in {region}",
                        w.launch_template
                    ))
                }
                Err(e) => {
                    return Err(classify(&format!("DescribeLaunchTemplates in {region}"), e));
                }
            }
        }
        ActionInput::Ec2CopyImage(w) => match image_named(&client, region, &w.name).await? {
            Some(i) => Readiness::Ready(format!(
                "AMI {} named {} exists in {region} already: nothing to do",
                i.image_id().unwrap_or("?"),
                w.name
            )),
            None => match source_image(&aws.ec2(&w.source_region), w).await {
                Ok(i) => Readiness::Ready(format!(
                    "source AMI {} is available in {}",
                    i.image_id().unwrap_or("?"),
                    w.source_region
                )),
                Err(e) if e.kind == FailureKind::Permanent => Readiness::WouldFail(e.message),
                Err(e) => return Err(e),
            },
        },
        other => Readiness::Unchecked(format!("{} is not an EC2 action", other.kind())),
    })
}
