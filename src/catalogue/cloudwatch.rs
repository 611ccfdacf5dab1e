//! `with` block of the CloudWatch action.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `cloudwatch.put_metric_data`: publish one datum in the step's region. A
/// Route 53 health check that tracks an alarm on this metric moves traffic
/// without any call to the Route 53 control plane; with `confirm`, the step
/// succeeds only once the alarm and the health check have turned.
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
    /// Wait until the datum's effect is visible: the alarm in `state`, and
    /// the health check tracking it unhealthy (or healthy again for `OK`).
    pub confirm: Option<SwitchConfirm>,
}

/// What a traffic-switch datum must bring about, checked before it is
/// published (preflight) and waited for after.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfirm {
    /// The CloudWatch alarm, in the step's region, that watches the metric
    /// (same namespace, name and dimensions).
    pub alarm: String,
    /// The alarm state the datum brings: `ALARM` (traffic leaves the
    /// record whose health check tracks the alarm) or `OK` (it returns).
    #[serde(default)]
    pub state: AlarmState,
    /// The Route 53 health check that tracks the alarm. Default: every
    /// health check that tracks it (there must be one). Each must turn
    /// unhealthy (`ALARM`) or healthy (`OK`) by Route 53's rule.
    pub health_check_id: Option<String>,
}

/// A CloudWatch alarm state a switch waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum AlarmState {
    /// The alarm fires.
    #[default]
    #[serde(rename = "ALARM")]
    Alarm,
    /// The alarm clears.
    #[serde(rename = "OK")]
    Ok,
}

impl AlarmState {
    /// CloudWatch's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Alarm => "ALARM",
            AlarmState::Ok => "OK",
        }
    }

    /// The `TreatMissingData` settings under which the state holds once
    /// datapoints stop: missing data must not undo the switch.
    pub fn holding_missing_data(self) -> &'static [&'static str] {
        match self {
            AlarmState::Alarm => &["breaching", "ignore"],
            AlarmState::Ok => &["notBreaching", "ignore"],
        }
    }
}
