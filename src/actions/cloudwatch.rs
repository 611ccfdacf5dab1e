//! CloudWatch: publish a metric datum (the data-plane traffic switch).

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::aws_error::classify;
use super::region_of;
use crate::aws::AwsClients;
use crate::catalogue::cloudwatch::PutMetricData;
use crate::engine::{ActionError, Outputs, StepContext};
use crate::runbook::Mode;

/// `cloudwatch.put_metric_data`. Publishing the same value again changes
/// nothing an alarm sees, so the action needs no observation first. In a
/// drill it adds a `DrillRun` dimension, which no production alarm watches.
pub(super) async fn put(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &PutMetricData,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    aws.cloudwatch(region)
        .put_metric_data()
        .namespace(&w.namespace)
        .metric_data(datum(ctx, w))
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!("PutMetricData {}/{} in {region}", w.namespace, w.metric),
                e,
            )
        })?;
    Ok(Outputs::from([
        ("namespace".to_string(), serde_json::json!(w.namespace)),
        ("metric".to_string(), serde_json::json!(w.metric)),
        ("value".to_string(), serde_json::json!(w.value)),
    ]))
}

/// The datum to publish; a drill's carries its own `DrillRun` dimension.
fn datum(ctx: &StepContext, w: &PutMetricData) -> MetricDatum {
    let mut datum = MetricDatum::builder().metric_name(&w.metric).value(w.value);
    for (name, value) in &w.dimensions {
        datum = datum.dimensions(Dimension::builder().name(name).value(value).build());
    }
    if ctx.mode == Mode::Drill {
        datum = datum.dimensions(
            Dimension::builder()
                .name("DrillRun")
                .value(&ctx.run_id)
                .build(),
        );
    }
    if let Some(unit) = &w.unit {
        datum = datum.unit(StandardUnit::from(unit.as_str()));
    }
    datum.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(mode: Mode) -> Vec<(String, String)> {
        let ctx = StepContext {
            run_id: "run-9".into(),
            step_id: "move-traffic".into(),
            mode,
            region: Some("us-west-2".into()),
            attempt: 1,
            resumed: false,
            deadline: tokio::time::Instant::now(),
        };
        let w = PutMetricData {
            namespace: "Lifeboat".into(),
            metric: "ForcePrimaryUnhealthy".into(),
            value: 1.0,
            dimensions: [("Service".to_string(), "app".to_string())].into(),
            unit: Some("Count".into()),
        };
        let d = datum(&ctx, &w);
        assert_eq!(d.unit(), Some(&StandardUnit::Count));
        d.dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or_default().to_string(),
                    d.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_drill_publishes_under_its_own_dimension_only() {
        assert_eq!(
            dims(Mode::Failover),
            vec![("Service".to_string(), "app".to_string())]
        );
        assert_eq!(
            dims(Mode::Drill),
            vec![
                ("Service".to_string(), "app".to_string()),
                ("DrillRun".to_string(), "run-9".to_string())
            ]
        );
    }
}
