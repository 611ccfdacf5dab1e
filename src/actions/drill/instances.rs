//! Drill copies of EC2 instances. A drill does not start the standby
//! instances: it launches one copy of each, carrying what makes the source
//! work (AMI, type, security groups, instance profile, user data, key pair,
//! volumes, metadata options and tags), placed where the runbook's
//! `drill:` says, or beside the source with the report saying the drill
//! shares production's network. Copies launched alike go in one
//! `RunInstances` with a count.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, Instance,
    InstanceAttributeName, InstanceMetadataOptionsRequest, InstanceStateName, ResourceType, Tag,
    TagSpecification, Volume, VolumeType,
};

use crate::actions::aws_error::classify;
use crate::actions::ec2::{DRILL_OF_TAG, select, state, token, wait_for_state};
use crate::actions::{CREATED_TAG, region_of};
use crate::aws::AwsClients;
use crate::catalogue::ec2::Instances;
use crate::engine::{ActionError, FailureKind, Outputs, StepContext};
use crate::runbook::DrillPlacement;

/// A subnet named in `drill.subnets`, as EC2 describes it.
#[derive(Debug, Clone)]
pub(in crate::actions) struct DrillSubnet {
    pub id: String,
    pub zone: Option<String>,
    pub vpc: Option<String>,
}

/// The drill subnets, described; every one must exist in `region`.
pub(in crate::actions) async fn drill_subnets(
    client: &aws_sdk_ec2::Client,
    region: &str,
    placement: &DrillPlacement,
) -> Result<Vec<DrillSubnet>, ActionError> {
    if placement.subnets.is_empty() {
        return Ok(Vec::new());
    }
    let out = client
        .describe_subnets()
        .set_subnet_ids(Some(placement.subnets.clone()))
        .send()
        .await
        .map_err(|e| {
            let missing = e
                .as_service_error()
                .and_then(|s| aws_smithy_types::error::metadata::ProvideErrorMetadata::code(s))
                .is_some_and(|c| c.starts_with("InvalidSubnetID"));
            if missing {
                ActionError::permanent(format!(
                    "`drill.subnets`: {} not all found in {region}",
                    placement.subnets.join(", ")
                ))
            } else {
                classify(&format!("DescribeSubnets (drill subnets) in {region}"), e)
            }
        })?;
    let found: Vec<DrillSubnet> = placement
        .subnets
        .iter()
        .filter_map(|id| {
            out.subnets()
                .iter()
                .find(|s| s.subnet_id() == Some(id.as_str()))
                .map(|s| DrillSubnet {
                    id: id.clone(),
                    zone: s.availability_zone().map(str::to_string),
                    vpc: s.vpc_id().map(str::to_string),
                })
        })
        .collect();
    if found.len() != placement.subnets.len() {
        let missing: Vec<&str> = placement
            .subnets
            .iter()
            .filter(|id| !found.iter().any(|s| &s.id == *id))
            .map(String::as_str)
            .collect();
        return Err(ActionError::permanent(format!(
            "`drill.subnets`: no subnet {} in {region}",
            missing.join(", ")
        )));
    }
    Ok(found)
}

/// Where one copy goes and with which security groups, and what the
/// report says of it when that is production's network.
struct Placed {
    subnet: Option<String>,
    groups: Vec<String>,
    shared: Option<String>,
}

fn place(
    original: &Instance,
    subnets: &[DrillSubnet],
    placement: &DrillPlacement,
) -> Result<Placed, String> {
    let id = original.instance_id().unwrap_or_default();
    let own_groups: Vec<String> = original
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect();
    let groups = if placement.security_groups.is_empty() {
        own_groups.clone()
    } else {
        placement.security_groups.clone()
    };
    let with_groups = |groups: &[String]| {
        if groups.is_empty() {
            String::new()
        } else {
            format!(" with its security groups {}", groups.join(", "))
        }
    };
    let Some(first) = subnets.first() else {
        let shared = original.subnet_id().map(|subnet| {
            format!(
                "{id}'s copy is in its subnet {subnet}{}",
                if placement.security_groups.is_empty() {
                    with_groups(&own_groups)
                } else {
                    String::new()
                }
            )
        });
        return Ok(Placed {
            subnet: original.subnet_id().map(str::to_string),
            groups,
            shared,
        });
    };
    let zone = original.placement().and_then(|p| p.availability_zone());
    let chosen = subnets
        .iter()
        .find(|s| s.zone.is_some() && s.zone.as_deref() == zone)
        .unwrap_or(first);
    let same_vpc = chosen.vpc.is_some() && chosen.vpc.as_deref() == original.vpc_id();
    if placement.security_groups.is_empty() && !same_vpc && !own_groups.is_empty() {
        return Err(format!(
            "the drill subnet {} is in VPC {}, {id}'s security groups {} are in {}: name the drill's own in `drill.security_groups`",
            chosen.id,
            chosen.vpc.as_deref().unwrap_or("?"),
            own_groups.join(", "),
            original.vpc_id().unwrap_or("?")
        ));
    }
    let shared = same_vpc.then(|| {
        format!(
            "{id}'s copy is in the drill subnet {} of its own VPC {}{}",
            chosen.id,
            chosen.vpc.as_deref().unwrap_or("?"),
            if placement.security_groups.is_empty() {
                with_groups(&own_groups)
            } else {
                String::new()
            }
        )
    });
    Ok(Placed {
        subnet: Some(chosen.id.clone()),
        groups,
        shared,
    })
}

/// The instance's user data as EC2 keeps it (base64), or `None`.
async fn user_data(
    client: &aws_sdk_ec2::Client,
    region: &str,
    id: &str,
) -> Result<Option<String>, ActionError> {
    let out = client
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!("DescribeInstanceAttribute userData of {id} in {region}"),
                e,
            )
        })?;
    Ok(out
        .user_data()
        .and_then(|v| v.value())
        .filter(|v| !v.is_empty())
        .map(str::to_string))
}

/// Devices the AMI brings (with their snapshots); a copy's other volumes
/// are created empty.
async fn image_devices(
    client: &aws_sdk_ec2::Client,
    region: &str,
    image: &str,
) -> Result<BTreeSet<String>, ActionError> {
    let image = crate::actions::ec2::newest_image(client, region, Some(image), None).await?;
    Ok(image
        .block_device_mappings()
        .iter()
        .filter(|m| m.ebs().is_some())
        .filter_map(|m| m.device_name().map(str::to_string))
        .collect())
}

/// The copy's block device mappings: each source volume's device, size,
/// type, IOPS, throughput and encryption, deleted with the copy. Volumes
/// the AMI brings are restored from its snapshots; the others are created
/// empty (named in `empty`).
fn mappings(
    original: &Instance,
    volumes: &BTreeMap<String, Volume>,
    from_image: &BTreeSet<String>,
    empty: &mut Vec<String>,
) -> Vec<BlockDeviceMapping> {
    let mut out = Vec::new();
    for m in original.block_device_mappings() {
        let (Some(device), Some(volume)) = (
            m.device_name(),
            m.ebs()
                .and_then(|e| e.volume_id())
                .and_then(|v| volumes.get(v)),
        ) else {
            continue;
        };
        let kind = volume.volume_type().cloned();
        let provisioned = matches!(
            kind,
            Some(VolumeType::Io1 | VolumeType::Io2 | VolumeType::Gp3)
        );
        let encrypted = volume.encrypted() == Some(true);
        let ebs = EbsBlockDevice::builder()
            .set_volume_size(volume.size())
            .set_volume_type(kind.clone())
            .set_iops(volume.iops().filter(|_| provisioned))
            .set_throughput(
                volume
                    .throughput()
                    .filter(|_| kind == Some(VolumeType::Gp3)),
            )
            .delete_on_termination(true)
            // Never `false`: a volume restored from an encrypted snapshot
            // cannot be decrypted, and AWS refuses the request.
            .set_encrypted(encrypted.then_some(true))
            .set_kms_key_id(
                volume
                    .kms_key_id()
                    .filter(|_| encrypted)
                    .map(str::to_string),
            )
            .build();
        if !from_image.contains(device) {
            empty.push(format!(
                "{device} of {}",
                original.instance_id().unwrap_or_default()
            ));
        }
        out.push(
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(ebs)
                .build(),
        );
    }
    out
}

fn metadata_options(original: &Instance) -> Option<InstanceMetadataOptionsRequest> {
    let m = original.metadata_options()?;
    Some(
        InstanceMetadataOptionsRequest::builder()
            .set_http_tokens(m.http_tokens().cloned())
            .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
            .set_http_endpoint(m.http_endpoint().cloned())
            .set_instance_metadata_tags(m.instance_metadata_tags().cloned())
            .build(),
    )
}

/// The source's own tags a copy carries: not AWS's (`aws:` keys cannot be
/// set), not lifeboat's, and not its `Name` (the copy has its own).
fn carried_tags(original: &Instance) -> Vec<(String, String)> {
    original
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("lifeboat:") && k != "Name")
        .collect()
}

fn spec(kind: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(k).value(v).build());
    }
    spec.build()
}

/// Most characters in an EC2 tag value: a launch's `lifeboat:drill-of`
/// lists its sources within it.
const TAG_VALUE_MAX: usize = 256;

/// Most volume ids asked of one DescribeVolumes call (its page maximum).
const VOLUMES_PER_CALL: usize = 500;

/// What one copy is launched with. Copies whose sources agree on all of it
/// go in one `RunInstances` with a count.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    image: Option<String>,
    instance_type: Option<aws_sdk_ec2::types::InstanceType>,
    subnet: Option<String>,
    groups: Vec<String>,
    key_name: Option<String>,
    profile: Option<IamInstanceProfileSpecification>,
    user_data: Option<String>,
    mappings: Vec<BlockDeviceMapping>,
    metadata: Option<InstanceMetadataOptionsRequest>,
    ebs_optimized: Option<bool>,
    /// The sources' own tags the copies carry.
    tags: Vec<(String, String)>,
}

/// One `RunInstances`: a spec and the sources (in launch-index order) it
/// makes a copy of each.
#[derive(Debug, Clone, PartialEq)]
struct Launch {
    spec: Spec,
    sources: Vec<String>,
}

/// `launches` with each split so that its sources, joined by spaces, fit
/// in one tag value: a copy's `lifeboat:drill-of` names every source of its
/// launch, and its launch index says which is its own.
fn fit_tags(launches: Vec<Launch>) -> Vec<Launch> {
    let mut out = Vec::new();
    for launch in launches {
        let mut sources: Vec<String> = Vec::new();
        let mut len = 0;
        for source in launch.sources {
            let more = if sources.is_empty() { 0 } else { 1 } + source.len();
            if !sources.is_empty() && len + more > TAG_VALUE_MAX {
                out.push(Launch {
                    spec: launch.spec.clone(),
                    sources: std::mem::take(&mut sources),
                });
                len = 0;
            }
            len += if sources.is_empty() { 0 } else { 1 } + source.len();
            sources.push(source);
        }
        if !sources.is_empty() {
            out.push(Launch {
                spec: launch.spec,
                sources,
            });
        }
    }
    out
}

/// The source each live copy stands for, from the copies of this drill:
/// a copy's `lifeboat:drill-of` lists its launch's sources, and its launch
/// index picks its own. Where EC2 does not say the index, the copies of a
/// launch take its sources in order.
fn sources_of(copies: &[Instance]) -> BTreeMap<String, String> {
    let mut launches: BTreeMap<String, Vec<&Instance>> = BTreeMap::new();
    for copy in copies {
        let of = copy
            .tags()
            .iter()
            .find(|t| t.key() == Some(DRILL_OF_TAG))
            .and_then(|t| t.value());
        if let Some(of) = of {
            launches.entry(of.to_string()).or_default().push(copy);
        }
    }
    let mut out = BTreeMap::new();
    for (of, mut copies) in launches {
        let sources: Vec<&str> = of.split(' ').filter(|s| !s.is_empty()).collect();
        copies.sort_by_key(|c| (c.ami_launch_index().is_none(), c.ami_launch_index()));
        let mut taken = vec![false; sources.len()];
        for copy in copies {
            let Some(id) = copy.instance_id() else {
                continue;
            };
            let at = copy
                .ami_launch_index()
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| taken.get(*i) == Some(&false))
                .or_else(|| taken.iter().position(|t| !t));
            if let Some(at) = at {
                taken[at] = true;
                out.entry(sources[at].to_string())
                    .or_insert_with(|| id.to_string());
            }
        }
    }
    out
}

/// This drill's live copies in `region` (of any step: one copy per source
/// serves the whole drill).
async fn live_copies(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ctx: &StepContext,
) -> Result<Vec<Instance>, ActionError> {
    let identity: BTreeMap<String, String> = super::own_tags(ctx)
        .into_iter()
        .filter(|(k, _)| k != CREATED_TAG)
        .collect();
    match select(client, region, None, Some(&identity)).await {
        Ok(found) => Ok(found
            .into_iter()
            .filter(|i| {
                state(i).is_none_or(|s| {
                    ![
                        InstanceStateName::ShuttingDown,
                        InstanceStateName::Terminated,
                    ]
                    .contains(&s)
                })
            })
            .collect()),
        Err(e) if e.kind == FailureKind::Permanent => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The EBS volumes of `sources`, by id, in as few DescribeVolumes calls as
/// the API's page allows.
async fn volumes(
    client: &aws_sdk_ec2::Client,
    region: &str,
    sources: &[&Instance],
) -> Result<BTreeMap<String, Volume>, ActionError> {
    let ids: Vec<String> = sources
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
        .collect();
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(VOLUMES_PER_CALL) {
        let page = client
            .describe_volumes()
            .set_volume_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| {
                classify(
                    &format!("DescribeVolumes of the standby instances in {region}"),
                    e,
                )
            })?;
        out.extend(
            page.volumes()
                .iter()
                .filter_map(|v| Some((v.volume_id()?.to_string(), v.clone()))),
        );
    }
    Ok(out)
}

/// A drill's stand-in for `ec2.start_instances`: the selected standby
/// instances stay stopped; one copy of each is launched, tagged for the
/// drill. Copies launched alike go in one `RunInstances` with a count,
/// tagged `lifeboat:drill-of=<their sources>`; a source that has a live
/// copy in this drill already (the step resumed, or another step's) is not
/// copied again.
pub(in crate::actions) async fn start(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &Instances,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ec2(region);
    let standby = select(&client, region, w.instance_ids.as_ref(), w.tags.as_ref()).await?;
    let subnets = drill_subnets(&client, region, &ctx.placement).await?;
    let mut copies = sources_of(&live_copies(&client, region, ctx).await?);
    let todo: Vec<&Instance> = standby
        .iter()
        .filter(|i| !copies.contains_key(i.instance_id().unwrap_or_default()))
        .collect();
    let found_before = standby.len() - todo.len();
    let volumes = volumes(&client, region, &todo).await?;
    let mut shared = Vec::new();
    let mut empty = Vec::new();
    let mut unprofiled = Vec::new();
    let mut images: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut launches: Vec<Launch> = Vec::new();
    for original in todo {
        let original_id = original.instance_id().unwrap_or_default().to_string();
        let placed = place(original, &subnets, &ctx.placement)
            .map_err(|e| ActionError::permanent(format!("drill copy of {original_id}: {e}")))?;
        shared.extend(placed.shared.clone());
        let image = original.image_id().unwrap_or_default().to_string();
        if !images.contains_key(&image) {
            let devices = image_devices(&client, region, &image).await?;
            images.insert(image.clone(), devices);
        }
        let mappings = mappings(
            original,
            &volumes,
            images.get(&image).unwrap_or(&BTreeSet::new()),
            &mut empty,
        );
        // The profile's role is passed to EC2 only where the runbook lets
        // the drill pass roles at all: without `drill.instance_roles` the
        // copy goes without it, and the note says so.
        let source_profile = original.iam_instance_profile().and_then(|p| p.arn());
        let profile = source_profile
            .filter(|_| !ctx.placement.instance_roles.is_empty())
            .map(|arn| IamInstanceProfileSpecification::builder().arn(arn).build());
        if let (Some(arn), None) = (source_profile, &profile) {
            unprofiled.push(format!("{original_id} ({arn})"));
        }
        let mut tags = carried_tags(original);
        tags.sort();
        let spec = Spec {
            image: original.image_id().map(str::to_string),
            instance_type: original.instance_type().cloned(),
            subnet: placed.subnet,
            groups: placed.groups,
            key_name: original.key_name().map(str::to_string),
            profile,
            user_data: user_data(&client, region, &original_id).await?,
            mappings,
            metadata: metadata_options(original),
            ebs_optimized: original.ebs_optimized().filter(|on| *on),
            tags,
        };
        match launches.iter_mut().find(|l| l.spec == spec) {
            Some(launch) => launch.sources.push(original_id),
            None => launches.push(Launch {
                spec,
                sources: vec![original_id],
            }),
        }
    }
    let launches = fit_tags(launches);
    let mut launched = Vec::new();
    for launch in &launches {
        let made = run_launch(&client, region, ctx, launch).await?;
        for (source, copy) in launch.sources.iter().zip(made) {
            launched.push(format!("{copy} for {source}"));
            copies.insert(source.clone(), copy);
        }
    }
    let ids: Vec<String> = standby
        .iter()
        .filter_map(|i| copies.get(i.instance_id()?).cloned())
        .collect();
    wait_for_state(&client, region, &ids, InstanceStateName::Running, None, ctx).await?;
    let mut note = if launched.is_empty() {
        format!("drill instances {} exist already", ids.join(", "))
    } else {
        let calls = match launches.len() {
            1 => "one launch".to_string(),
            n => format!("{n} launches"),
        };
        let mut note = format!(
            "launched drill instances {} ({calls}) with the standby instances' AMIs, types, security groups, instance profiles, user data, key pairs, volumes and tags; the standby instances were not started",
            launched.join(", ")
        );
        if found_before > 0 {
            note.push_str(&format!(
                "; {found_before} had a copy in this drill already"
            ));
        }
        note
    };
    if !ctx.placement.security_groups.is_empty() && !launched.is_empty() {
        note.push_str(&format!(
            ", and the drill's security groups {} instead of theirs",
            ctx.placement.security_groups.join(", ")
        ));
    }
    if !empty.is_empty() {
        note.push_str(&format!(
            ". Volumes the AMI does not bring are created empty at their source's size and type: {}",
            empty.join(", ")
        ));
    }
    if !unprofiled.is_empty() {
        note.push_str(&format!(
            ". Launched without their sources' instance profiles, since the runbook's drill.instance_roles names no role the drill may pass: {}",
            unprofiled.join(", ")
        ));
    }
    if !shared.is_empty() {
        note.push_str(&format!(
            ". The drill shares production's network: {}",
            shared.join("; ")
        ));
    }
    let by_source: serde_json::Map<String, serde_json::Value> = standby
        .iter()
        .filter_map(|i| {
            let source = i.instance_id()?;
            Some((source.to_string(), serde_json::json!(copies.get(source)?)))
        })
        .collect();
    Ok(Outputs::from([
        ("instance_ids".to_string(), serde_json::json!(ids)),
        ("started".to_string(), serde_json::json!([])),
        ("copies".to_string(), serde_json::Value::Object(by_source)),
        ("drill".to_string(), serde_json::json!(note)),
    ]))
}

/// Launch one copy of each of `launch`'s sources in one `RunInstances`
/// (all or none: its minimum count is its count). Its client token is the
/// step's and the sources', so a resumed step that asks again before EC2's
/// describes show the copies gets the same launch back, not a second one.
/// The copies' ids, in the order of the sources.
async fn run_launch(
    client: &aws_sdk_ec2::Client,
    region: &str,
    ctx: &StepContext,
    launch: &Launch,
) -> Result<Vec<String>, ActionError> {
    let spec = &launch.spec;
    let of = launch.sources.join(" ");
    let name = match launch.sources.as_slice() {
        [one] => super::name(one, &ctx.run_id),
        [first, rest @ ..] => super::name(&format!("{first}-and-{}-more", rest.len()), &ctx.run_id),
        [] => return Ok(Vec::new()),
    };
    let identity = [
        (DRILL_OF_TAG.to_string(), of.clone()),
        ("Name".to_string(), name),
    ];
    let instance_tags: Vec<(String, String)> = spec
        .tags
        .iter()
        .cloned()
        .chain(super::own_tags(ctx))
        .chain(identity.iter().cloned())
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let volume_tags: Vec<(String, String)> = super::own_tags(ctx)
        .into_iter()
        .chain(identity.iter().cloned())
        .collect();
    let count = i32::try_from(launch.sources.len()).unwrap_or(i32::MAX);
    let out = client
        .run_instances()
        .set_image_id(spec.image.clone())
        .set_instance_type(spec.instance_type.clone())
        .set_subnet_id(spec.subnet.clone())
        .set_security_group_ids((!spec.groups.is_empty()).then(|| spec.groups.clone()))
        .set_key_name(spec.key_name.clone())
        .set_iam_instance_profile(spec.profile.clone())
        .set_user_data(spec.user_data.clone())
        .set_block_device_mappings((!spec.mappings.is_empty()).then(|| spec.mappings.clone()))
        .set_metadata_options(spec.metadata.clone())
        .set_ebs_optimized(spec.ebs_optimized)
        .min_count(count)
        .max_count(count)
        .tag_specifications(self::spec(ResourceType::Instance, &instance_tags))
        .tag_specifications(self::spec(ResourceType::Volume, &volume_tags))
        .client_token(token(&format!(
            "{}/{}/drill-of/{of}",
            ctx.run_id, ctx.step_id
        )))
        .send()
        .await
        .map_err(|e| {
            let e = classify(
                &format!("RunInstances (drill copies of {of}) in {region}"),
                e,
            );
            match spec.profile.as_ref().and_then(|p| p.arn()) {
                Some(arn) => super::passing_roles(e, ctx, &format!("instance profile {arn}")),
                None => e,
            }
        })?;
    let mut made: Vec<(usize, String)> = out
        .instances()
        .iter()
        .enumerate()
        .filter_map(|(at, i)| {
            let index = i
                .ami_launch_index()
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(at);
            Some((index, i.instance_id()?.to_string()))
        })
        .collect();
    made.sort();
    if made.len() != launch.sources.len() {
        return Err(ActionError::retryable(format!(
            "RunInstances (drill copies of {of}) in {region} answered {} instances for {} sources",
            made.len(),
            launch.sources.len()
        )));
    }
    Ok(made.into_iter().map(|(_, id)| id).collect())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{EbsInstanceBlockDevice, InstanceBlockDeviceMapping};

    use super::*;

    fn copy(id: &str, of: &str, index: Option<i32>) -> Instance {
        Instance::builder()
            .instance_id(id)
            .set_ami_launch_index(index)
            .tags(Tag::builder().key(DRILL_OF_TAG).value(of).build())
            .build()
    }

    fn spec() -> Spec {
        Spec {
            image: Some("ami-1".into()),
            instance_type: None,
            subnet: None,
            groups: vec![],
            key_name: None,
            profile: None,
            user_data: None,
            mappings: vec![],
            metadata: None,
            ebs_optimized: None,
            tags: vec![],
        }
    }

    #[test]
    fn a_launch_s_sources_fit_in_one_tag_value() {
        let sources: Vec<String> = (0..40).map(|i| format!("i-{i:017x}")).collect();
        let launches = fit_tags(vec![Launch {
            spec: spec(),
            sources: sources.clone(),
        }]);
        assert!(launches.len() > 1);
        for l in &launches {
            assert!(l.sources.join(" ").len() <= TAG_VALUE_MAX, "{l:?}");
        }
        // 19-character ids: twelve fit (239 characters), thirteen do not.
        assert_eq!(launches[0].sources.len(), 12);
        let back: Vec<String> = launches.into_iter().flat_map(|l| l.sources).collect();
        assert_eq!(back, sources, "every source, once, in order");
    }

    #[test]
    fn a_copy_s_launch_index_names_its_source() {
        let copies = [
            copy("i-c2", "i-a i-b i-c", Some(2)),
            copy("i-c0", "i-a i-b i-c", Some(0)),
            copy("i-c1", "i-a i-b i-c", Some(1)),
            copy("i-d", "i-d-source", None),
        ];
        let of = sources_of(&copies);
        assert_eq!(of["i-a"], "i-c0");
        assert_eq!(of["i-b"], "i-c1");
        assert_eq!(of["i-c"], "i-c2");
        assert_eq!(of["i-d-source"], "i-d");
        // One copy of a launch lost: the others still name their own.
        let of = sources_of(&copies[..2]);
        assert_eq!(of.len(), 2);
        assert_eq!(of["i-a"], "i-c0");
        assert_eq!(of["i-c"], "i-c2");
        // Without launch indexes (the emulator), in the order described.
        let plain = [copy("i-x", "i-a i-b", None), copy("i-y", "i-a i-b", None)];
        let of = sources_of(&plain);
        assert_eq!((of["i-a"].as_str(), of["i-b"].as_str()), ("i-x", "i-y"));
    }

    fn instance(devices: &[(&str, &str)]) -> Instance {
        let mut i = Instance::builder().instance_id("i-1");
        for (device, volume) in devices {
            i = i.block_device_mappings(
                InstanceBlockDeviceMapping::builder()
                    .device_name(*device)
                    .ebs(EbsInstanceBlockDevice::builder().volume_id(*volume).build())
                    .build(),
            );
        }
        i.tags(Tag::builder().key("Role").value("app").build())
            .tags(Tag::builder().key("Name").value("app-1").build())
            .tags(
                Tag::builder()
                    .key("aws:autoscaling:groupName")
                    .value("g")
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("lifeboat:created-by-run")
                    .value("r")
                    .build(),
            )
            .build()
    }

    fn volume(id: &str, kind: VolumeType, iops: i32, encrypted: bool) -> (String, Volume) {
        (
            id.to_string(),
            Volume::builder()
                .volume_id(id)
                .size(20)
                .volume_type(kind)
                .iops(iops)
                .throughput(250)
                .encrypted(encrypted)
                .kms_key_id("key-1")
                .build(),
        )
    }

    #[test]
    fn a_copy_s_volumes_keep_their_shape_and_go_with_it() {
        let i = instance(&[("/dev/xvda", "vol-root"), ("/dev/sdf", "vol-data")]);
        let volumes = BTreeMap::from([
            volume("vol-root", VolumeType::Gp2, 100, false),
            volume("vol-data", VolumeType::Gp3, 3000, true),
        ]);
        let mut empty = Vec::new();
        let from_image = BTreeSet::from(["/dev/xvda".to_string()]);
        let m = mappings(&i, &volumes, &from_image, &mut empty);
        assert_eq!(m.len(), 2);
        let root = m[0].ebs().expect("ebs");
        // gp2 takes no IOPS or throughput, and an unencrypted volume is
        // never asked to be unencrypted (AWS refuses it for an encrypted
        // snapshot).
        assert_eq!(root.iops(), None);
        assert_eq!(root.throughput(), None);
        assert_eq!(root.encrypted(), None);
        assert_eq!(root.kms_key_id(), None);
        assert_eq!(root.delete_on_termination(), Some(true));
        let data = m[1].ebs().expect("ebs");
        assert_eq!(
            (data.volume_size(), data.iops(), data.throughput()),
            (Some(20), Some(3000), Some(250))
        );
        assert_eq!(data.encrypted(), Some(true));
        assert_eq!(data.kms_key_id(), Some("key-1"));
        assert_eq!(data.delete_on_termination(), Some(true));
        assert_eq!(empty, ["/dev/sdf of i-1"], "the AMI does not bring it");
    }

    #[test]
    fn a_copy_carries_its_source_s_own_tags_only() {
        assert_eq!(
            carried_tags(&instance(&[])),
            [("Role".to_string(), "app".to_string())]
        );
    }

    fn subnet(id: &str, zone: &str, vpc: &str) -> DrillSubnet {
        DrillSubnet {
            id: id.into(),
            zone: Some(zone.into()),
            vpc: Some(vpc.into()),
        }
    }

    fn source(zone: &str, vpc: &str) -> Instance {
        Instance::builder()
            .instance_id("i-1")
            .subnet_id("subnet-prod")
            .vpc_id(vpc)
            .placement(
                aws_sdk_ec2::types::Placement::builder()
                    .availability_zone(zone)
                    .build(),
            )
            .security_groups(
                aws_sdk_ec2::types::GroupIdentifier::builder()
                    .group_id("sg-prod")
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_copy_goes_to_the_drill_subnet_of_its_source_s_zone() {
        let subnets = [
            subnet("subnet-a", "us-west-2a", "vpc-drill"),
            subnet("subnet-b", "us-west-2b", "vpc-drill"),
        ];
        let placement = DrillPlacement {
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_groups: vec!["sg-drill".into()],
            ..DrillPlacement::default()
        };
        let placed =
            place(&source("us-west-2b", "vpc-prod"), &subnets, &placement).expect("placed");
        assert_eq!(placed.subnet.as_deref(), Some("subnet-b"));
        assert_eq!(placed.groups, ["sg-drill"]);
        assert_eq!(placed.shared, None, "an isolated network");
        // No subnet in its zone: the first.
        let placed =
            place(&source("us-west-2c", "vpc-prod"), &subnets, &placement).expect("placed");
        assert_eq!(placed.subnet.as_deref(), Some("subnet-a"));
    }

    #[test]
    fn production_s_groups_in_another_vpc_are_refused_and_its_network_is_said() {
        let subnets = [subnet("subnet-a", "us-west-2a", "vpc-drill")];
        let only_subnets = DrillPlacement {
            subnets: vec!["subnet-a".into()],
            ..DrillPlacement::default()
        };
        let e = place(&source("us-west-2a", "vpc-prod"), &subnets, &only_subnets)
            .err()
            .expect("refused");
        assert!(e.contains("drill.security_groups"), "{e}");
        // The drill subnet in production's own VPC: allowed, and said.
        let placed =
            place(&source("us-west-2a", "vpc-drill"), &subnets, &only_subnets).expect("placed");
        assert_eq!(placed.groups, ["sg-prod"]);
        assert!(
            placed
                .shared
                .as_deref()
                .is_some_and(|s| s.contains("its own VPC")),
            "{:?}",
            placed.shared
        );
        // No placement at all: beside its source, and said.
        let placed = place(
            &source("us-west-2a", "vpc-prod"),
            &[],
            &DrillPlacement::default(),
        )
        .expect("placed");
        assert_eq!(placed.subnet.as_deref(), Some("subnet-prod"));
        assert!(
            placed
                .shared
                .as_deref()
                .is_some_and(|s| s.contains("subnet-prod"))
        );
    }
}
