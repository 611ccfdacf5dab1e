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
}

impl Instances {
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
    /// Tags to put on the instances.
    #[serde(default)]
    pub tags: Tags,
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
