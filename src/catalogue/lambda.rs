//! `with` block of the Lambda action.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `lambda.invoke`: a custom step, run as a Lambda function: invoked with
/// a payload, its result awaited; its function error is the step's error.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// The function: its name, its ARN, or `name:alias`.
    pub function: String,
    /// A version or alias to invoke.
    pub qualifier: Option<String>,
    /// The event the function receives, as JSON (the runbook's mapping).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub payload: Option<serde_json::Value>,
    /// In a drill, the function invoked instead (name, ARN or
    /// `name:alias`, e.g. a `drill` alias pointing at a harmless version).
    /// Without one a drill invokes nothing and says so.
    pub drill_function: Option<String>,
}

/// The largest payload a synchronous invocation takes (6 MB, Lambda's
/// limit).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

impl Invoke {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.function.trim().is_empty() {
            problems.push("`function` is empty".to_string());
        }
        let size = self
            .payload
            .as_ref()
            .map_or(0, |p| serde_json::to_vec(p).map_or(0, |b| b.len()));
        if size > MAX_PAYLOAD {
            problems.push(format!(
                "`payload` is {size} bytes as JSON; Lambda takes at most {MAX_PAYLOAD} in a synchronous invocation"
            ));
        }
        problems
    }
}
