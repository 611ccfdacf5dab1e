//! `with` block of the CloudWatch action.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `cloudwatch.put_metric_data`: publish one datum in the step's region. A
/// Route 53 health check that tracks an alarm on this metric moves traffic
/// without any call to the Route 53 control plane.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMetricData {
    /// Metric namespace.
    pub namespace: String,
    /// Metric name.
    pub metric: String,
    /// The value to publish.
    pub value: f64,
    /// Dimensions of the datum.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// CloudWatch unit name, e.g. `Count`.
    pub unit: Option<String>,
}
