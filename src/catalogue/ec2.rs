//! `with` blocks of the EC2 actions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Tags, exactly_one};

/// `ec2.start_instances` / `ec2.stop_instances`: by ids or by tags.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instances {
    /// Instances by id.
    pub instance_ids: Option<Vec<String>>,
    /// Every instance in the region carrying all these tags.
    pub tags: Option<Tags>,
    /// `ec2.start_instances` only: instance types to change a stopped
    /// instance to, in order, when EC2 has no capacity to start it as it is
    /// (`InsufficientInstanceCapacity`); the zone of an existing instance
    /// cannot change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternative_instance_types: Vec<String>,
}

impl Instances {
    /// The rules of `ec2.stop_instances`: those of a selection, and no
    /// alternatives (stopping needs no capacity).
    pub(super) fn check_stop(&self) -> Vec<String> {
        let mut problems = self.check();
        if !self.alternative_instance_types.is_empty() {
            problems.push(
                "`alternative_instance_types` is for `ec2.start_instances`; stopping needs no capacity"
                    .into(),
            );
        }
        problems
    }

    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = exactly_one(&[
            ("instance_ids", self.instance_ids.is_some()),
            ("tags", self.tags.is_some()),
        ]);
        if self.tags.as_ref().is_some_and(|t| t.is_empty()) {
            problems.push(
                "`tags` must name at least one tag; an empty filter would select every instance"
                    .into(),
            );
        }
        problems
    }
}

/// `ec2.launch_from_template`: launch instances from a launch template.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchFromTemplate {
    /// Launch template name or id (`lt-...`).
    pub launch_template: String,
    /// Template version; default `$Default`.
    pub version: Option<String>,
    /// How many instances.
    #[serde(default = "one")]
    pub count: u32,
    /// Subnet to launch into, overriding the template.
    pub subnet_id: Option<String>,
    /// Security groups, overriding the template's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// Instance type, overriding the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Where else to launch, in order, when EC2 has no capacity for the
    /// launch as given (`InsufficientInstanceCapacity`): each names another
    /// instance type, another subnet (in another zone), or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Ec2Alternative>,
    /// Tags to put on the instances.
    #[serde(default)]
    pub tags: Tags,
}

/// One more place to find EC2 capacity: what it changes of the launch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ec2Alternative {
    /// Instance type instead.
    pub instance_type: Option<String>,
    /// Subnet instead (its zone is where the capacity is sought).
    pub subnet_id: Option<String>,
}

impl LaunchFromTemplate {
    pub(super) fn check(&self) -> Vec<String> {
        self.alternatives
            .iter()
            .enumerate()
            .filter(|(_, a)| a.instance_type.is_none() && a.subnet_id.is_none())
            .map(|(i, _)| {
                format!(
                    "alternative {}: give `instance_type`, `subnet_id` or both",
                    i + 1
                )
            })
            .collect()
    }
}

/// `ec2.copy_image`: copy an AMI into the step's region.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyImage {
    /// Region the source AMI lives in.
    pub source_region: String,
    /// The source AMI id.
    pub source_image_id: Option<String>,
    /// Or: the newest AMI in the source region carrying all these tags.
    pub source_image_tags: Option<Tags>,
    /// Name of the copy.
    pub name: String,
    /// Encrypt the copy's snapshots.
    #[serde(default)]
    pub encrypted: bool,
    /// KMS key in the destination region.
    pub kms_key_id: Option<String>,
}

impl CopyImage {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("source_image_id", self.source_image_id.is_some()),
            ("source_image_tags", self.source_image_tags.is_some()),
        ])
    }
}

/// `ec2.wait_running`: wait until instances run (and optionally pass status checks).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitRunning {
    /// Instances by id.
    pub instance_ids: Option<Vec<String>>,
    /// Every instance in the region carrying all these tags.
    pub tags: Option<Tags>,
    /// Also wait for instance and system status checks to pass.
    #[serde(default)]
    pub status_ok: bool,
}

impl WaitRunning {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("instance_ids", self.instance_ids.is_some()),
            ("tags", self.tags.is_some()),
        ])
    }
}

fn one() -> u32 {
    1
}
