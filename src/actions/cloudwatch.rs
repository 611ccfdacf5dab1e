//! CloudWatch: publish a metric datum (the data-plane traffic switch), and
//! read a replica's lag.

use aws_sdk_cloudwatch::types::{Datapoint, Dimension, MetricDatum, StandardUnit, Statistic};

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

/// The newest `AWS/RDS` `ReplicaLag` of a replica over the last five
/// minutes, in seconds; `None` when CloudWatch has no datapoint.
pub(super) async fn replica_lag(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
) -> Result<Option<f64>, ActionError> {
    let now = std::time::SystemTime::now();
    let out = aws
        .cloudwatch(region)
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name("ReplicaLag")
        .dimensions(
            Dimension::builder()
                .name("DBInstanceIdentifier")
                .value(db_instance)
                .build(),
        )
        .start_time((now - std::time::Duration::from_secs(300)).into())
        .end_time(now.into())
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!("GetMetricStatistics ReplicaLag of {db_instance} in {region}"),
                e,
            )
        })?;
    Ok(newest_maximum(out.datapoints()))
}

/// The replica's recovery point now: the present minus its current lag.
pub(super) async fn replica_point(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
) -> crate::engine::RecoveryReading {
    use crate::engine::RecoveryReading;
    let now = jiff::Timestamp::now();
    match replica_lag(aws, region, db_instance).await {
        Ok(Some(lag)) => {
            let lag_ms = (lag * 1000.0).round() as i64;
            let at = now - jiff::SignedDuration::from_millis(lag_ms);
            RecoveryReading {
                at: Some(at.to_string()),
                how: format!(
                    "CloudWatch ReplicaLag of {db_instance} in {region} was {lag} s just before promotion"
                ),
                not_measurable: None,
            }
        }
        Ok(None) => RecoveryReading::unmeasurable(format!(
            "CloudWatch had no ReplicaLag datapoint for {db_instance} in {region} in the last five minutes"
        )),
        Err(e) => RecoveryReading::unmeasurable(format!("reading ReplicaLag: {e}")),
    }
}

fn newest_maximum(points: &[Datapoint]) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.maximum().is_some())
        .max_by_key(|p| p.timestamp().map_or(i64::MIN, |t| t.secs()))
        .and_then(Datapoint::maximum)
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

    #[test]
    fn the_lag_is_the_newest_datapoint_not_the_largest() {
        let point = |secs: i64, max: f64| {
            Datapoint::builder()
                .timestamp(aws_smithy_types::DateTime::from_secs(secs))
                .maximum(max)
                .build()
        };
        assert_eq!(newest_maximum(&[]), None);
        assert_eq!(
            newest_maximum(&[point(120, 3.0), point(180, 0.5), point(60, 40.0)]),
            Some(0.5)
        );
    }
}
