//! `with` block of the Auto Scaling action.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `autoscaling.set_capacity`: set a group's capacity and wait for it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCapacity {
    /// Auto Scaling group name.
    pub group: String,
    /// Minimum size; unchanged when absent.
    pub min: Option<u32>,
    /// Desired capacity.
    pub desired: u32,
    /// Maximum size; unchanged when absent.
    pub max: Option<u32>,
    /// Wait until `desired` instances are InService.
    #[serde(default = "yes")]
    pub wait_in_service: bool,
}

impl SetCapacity {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(min) = self.min
            && min > self.desired
        {
            problems.push(format!(
                "`min` ({min}) is above `desired` ({})",
                self.desired
            ));
        }
        if let Some(max) = self.max
            && max < self.desired
        {
            problems.push(format!(
                "`max` ({max}) is below `desired` ({})",
                self.desired
            ));
        }
        problems
    }
}

fn yes() -> bool {
    true
}
