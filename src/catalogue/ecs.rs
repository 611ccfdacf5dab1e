//! `with` block of the ECS action.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `ecs.scale_service`: set an ECS service's desired count and wait until
/// it is steady at it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleService {
    /// The cluster (name or ARN).
    pub cluster: String,
    /// The service (name or ARN).
    pub service: String,
    /// Tasks the service is to run.
    pub desired: u32,
    /// Wait until the service is steady: one deployment, and as many tasks
    /// running as desired (the SDK waiter's rule).
    #[serde(default = "yes")]
    pub wait_steady: bool,
    /// In a drill, the service (of the same cluster) scaled instead: a
    /// drill copy of the production service. Without one a drill changes
    /// nothing and says what it would have done.
    pub drill_service: Option<String>,
}

fn yes() -> bool {
    true
}
