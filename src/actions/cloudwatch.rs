//! CloudWatch: publish a metric datum (the data-plane traffic switch), and
//! read a replica's lag.

use aws_sdk_cloudwatch::types::{Datapoint, Dimension, MetricDatum, StandardUnit, Statistic};

use super::aws_error::classify;
use super::{Poll, Readiness, poll_route53, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::cloudwatch::{AlarmState, PutMetricData, SwitchConfirm};
use crate::engine::{ActionError, Outputs, StepContext};
use crate::runbook::Mode;

/// `cloudwatch.put_metric_data`. In a drill it adds a `DrillRun`
/// dimension, which no production alarm watches. A resumed attempt (the
/// process died while publishing) first looks whether the datum arrived:
/// when the newest minute of the metric holds that value and no other, it
/// is not sent again.
pub(super) async fn put(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &PutMetricData,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let outputs = Outputs::from([
        ("namespace".to_string(), serde_json::json!(w.namespace)),
        ("metric".to_string(), serde_json::json!(w.metric)),
        ("value".to_string(), serde_json::json!(w.value)),
    ]);
    let mut outputs = outputs;
    if ctx.resumed && published(aws, region, ctx, w).await? {
        outputs.insert("already_published".to_string(), serde_json::json!(true));
    } else {
        send(aws, region, ctx, w).await?;
    }
    match (&w.confirm, ctx.mode) {
        (Some(_), Mode::Drill) => {
            outputs.insert(
                "drill".to_string(),
                serde_json::json!(
                    "published under DrillRun, which no production alarm watches: the switch was not confirmed"
                ),
            );
        }
        (Some(c), _) => outputs.extend(confirm(aws, region, ctx, c).await?),
        (None, _) => {}
    }
    Ok(outputs)
}

async fn send(
    aws: &AwsClients,
    region: &str,
    ctx: &StepContext,
    w: &PutMetricData,
) -> Result<(), ActionError> {
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
    Ok(())
}

/// Wait until the switch is visible: the alarm in the wanted state, then
/// the health check that tracks it unhealthy (`ALARM`) or healthy (`OK`)
/// by Route 53's rule.
async fn confirm(
    aws: &AwsClients,
    region: &str,
    ctx: &StepContext,
    c: &SwitchConfirm,
) -> Result<Outputs, ActionError> {
    let want = c.state.as_str();
    let alarm = c.alarm.as_str();
    let reason = poll_until(
        ctx,
        &format!("alarm {alarm} in {region} not {want}"),
        || async {
            let found = describe_alarm(aws, region, alarm).await?;
            Ok(match found.state_value() {
                Some(state) if state.as_str() == want => {
                    Poll::Done(found.state_reason().unwrap_or_default().to_string())
                }
                state => Poll::NotYet(format!(
                    "alarm {alarm} is {}",
                    state.map_or("in no state", |s| s.as_str())
                )),
            })
        },
    )
    .await?;
    let mut out = Outputs::from([
        ("alarm".to_string(), serde_json::json!(alarm)),
        ("alarm_state".to_string(), serde_json::json!(want)),
        ("alarm_reason".to_string(), serde_json::json!(reason)),
    ]);
    let want_healthy = c.state == AlarmState::Ok;
    let word = if want_healthy { "healthy" } else { "unhealthy" };
    let mut seen = Vec::new();
    for id in health_checks(aws, region, c).await? {
        let detail = poll_route53(ctx, &format!("health check {id} not {word}"), || async {
            let status = aws
                .route53()
                .get_health_check_status()
                .health_check_id(&id)
                .send()
                .await
                .map_err(|e| classify(&format!("GetHealthCheckStatus {id}"), e))?;
            let (healthy, detail) = super::route53::judge_observations(
                &id,
                status
                    .health_check_observations()
                    .iter()
                    .map(|o| o.status_report().and_then(|r| r.status()).unwrap_or("")),
            );
            Ok(if healthy == want_healthy {
                Poll::Done(detail)
            } else {
                Poll::NotYet(detail)
            })
        })
        .await?;
        seen.push(detail);
    }
    out.insert("health_checks".to_string(), serde_json::json!(seen));
    Ok(out)
}

/// The Route 53 health checks a switch moves: the one named, which must
/// track the alarm, or else every health check that tracks it (at least
/// one: an alarm no health check tracks moves no traffic).
async fn health_checks(
    aws: &AwsClients,
    region: &str,
    c: &SwitchConfirm,
) -> Result<Vec<String>, ActionError> {
    use aws_sdk_route53::types::HealthCheck;
    let tracks = |h: &HealthCheck| {
        h.health_check_config()
            .and_then(|config| config.alarm_identifier())
            .is_some_and(|a| a.name() == c.alarm && a.region().as_str() == region)
    };
    if let Some(id) = &c.health_check_id {
        let out = aws
            .route53()
            .get_health_check()
            .health_check_id(id)
            .send()
            .await
            .map_err(|e| classify(&format!("GetHealthCheck {id}"), e))?;
        return match out.health_check() {
            Some(h) if tracks(h) => Ok(vec![id.clone()]),
            _ => Err(ActionError::permanent(format!(
                "health check {id} does not track alarm {} in {region}",
                c.alarm
            ))),
        };
    }
    let mut found = Vec::new();
    // The largest page Route 53 gives (100 when not asked).
    let mut pages = aws
        .route53()
        .list_health_checks()
        .max_items(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListHealthChecks", e))?;
        found.extend(
            page.health_checks()
                .iter()
                .filter(|h| tracks(h))
                .map(|h| h.id().to_string()),
        );
    }
    if found.is_empty() {
        return Err(ActionError::permanent(format!(
            "no Route 53 health check tracks alarm {} in {region}: publishing would move no traffic",
            c.alarm
        )));
    }
    Ok(found)
}

/// The metric alarm `name` in `region`; a missing one is a permanent error.
async fn describe_alarm(
    aws: &AwsClients,
    region: &str,
    name: &str,
) -> Result<aws_sdk_cloudwatch::types::MetricAlarm, ActionError> {
    let out = aws
        .cloudwatch(region)
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| classify(&format!("DescribeAlarms {name} in {region}"), e))?;
    out.metric_alarms().first().cloned().ok_or_else(|| {
        ActionError::permanent(format!("no CloudWatch metric alarm {name} in {region}"))
    })
}

/// `cloudwatch.put_metric_data` read-only: with `confirm`, the alarm exists,
/// watches this very metric, would reach the wanted state on this value
/// and keep it when datapoints stop, and the health check tracks it.
pub(super) async fn preflight(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &PutMetricData,
) -> Result<Readiness, ActionError> {
    let Some(c) = &w.confirm else {
        return Ok(Readiness::Ready(
            "publishing a metric needs no existing resource".to_string(),
        ));
    };
    let region = region_of(ctx)?;
    let alarm = describe_alarm(aws, region, &c.alarm).await?;
    let problems = alarm_problems(&alarm, w, c, region);
    if !problems.is_empty() {
        return Ok(Readiness::WouldFail(problems.join("; ")));
    }
    let checks = match health_checks(aws, region, c).await {
        Ok(checks) => checks,
        Err(e) if e.kind == crate::engine::FailureKind::Permanent => {
            return Ok(Readiness::WouldFail(e.message));
        }
        Err(e) => return Err(e),
    };
    Ok(Readiness::Ready(format!(
        "alarm {} watches {}/{} and turns {} on {}{}",
        c.alarm,
        w.namespace,
        w.metric,
        c.state.as_str(),
        w.value,
        if checks.is_empty() {
            String::new()
        } else {
            format!("; tracked by health check {}", checks.join(", "))
        }
    )))
}

/// What keeps `alarm` from confirming the switch `w` brings.
fn alarm_problems(
    alarm: &aws_sdk_cloudwatch::types::MetricAlarm,
    w: &PutMetricData,
    c: &SwitchConfirm,
    region: &str,
) -> Vec<String> {
    let name = &c.alarm;
    let mut problems = Vec::new();
    if alarm.namespace() != Some(w.namespace.as_str())
        || alarm.metric_name() != Some(w.metric.as_str())
    {
        problems.push(format!(
            "alarm {name} in {region} watches {}/{}, not {}/{}",
            alarm.namespace().unwrap_or("?"),
            alarm.metric_name().unwrap_or("?"),
            w.namespace,
            w.metric
        ));
        return problems;
    }
    let watched: std::collections::BTreeMap<String, String> = alarm
        .dimensions()
        .iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    if watched != w.dimensions {
        problems.push(format!(
            "alarm {name} watches the dimensions {watched:?}, the datum has {:?}",
            w.dimensions
        ));
    }
    use aws_sdk_cloudwatch::types::ComparisonOperator as Op;
    let fires = alarm.threshold().and_then(|t| {
        Some(match alarm.comparison_operator()? {
            Op::GreaterThanOrEqualToThreshold => w.value >= t,
            Op::GreaterThanThreshold => w.value > t,
            Op::LessThanThreshold => w.value < t,
            Op::LessThanOrEqualToThreshold => w.value <= t,
            _ => return None,
        })
    });
    match fires {
        Some(fires) if fires != (c.state == AlarmState::Alarm) => problems.push(format!(
            "{} does not put alarm {name} in {} (threshold {} {})",
            w.value,
            c.state.as_str(),
            alarm.comparison_operator().map_or("?", |o| o.as_str()),
            alarm.threshold().unwrap_or_default()
        )),
        Some(_) => {}
        None => problems.push(format!(
            "alarm {name} has no static threshold lifeboat can judge the datum against"
        )),
    }
    let missing = alarm.treat_missing_data().unwrap_or("missing");
    let holding = c.state.holding_missing_data();
    if !holding.contains(&missing) {
        problems.push(format!(
            "alarm {name} treats missing data as `{missing}`: once datapoints stop it would leave {}; set TreatMissingData to {}",
            c.state.as_str(),
            holding
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    problems
}

/// Whether the newest minute of the datum's metric (its exact dimensions)
/// in the last five holds `w.value` and nothing else.
async fn published(
    aws: &AwsClients,
    region: &str,
    ctx: &StepContext,
    w: &PutMetricData,
) -> Result<bool, ActionError> {
    let now = jiff::Timestamp::now().as_second();
    let datum = datum(ctx, w);
    let out = aws
        .cloudwatch(region)
        .get_metric_statistics()
        .namespace(&w.namespace)
        .metric_name(&w.metric)
        .set_dimensions(Some(datum.dimensions().to_vec()))
        .start_time(aws_smithy_types::DateTime::from_secs(now - 300))
        .end_time(aws_smithy_types::DateTime::from_secs(now + LAG_PERIOD_SECS))
        .period(LAG_PERIOD_SECS as i32)
        .statistics(Statistic::Minimum)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!(
                    "GetMetricStatistics {}/{} in {region}",
                    w.namespace, w.metric
                ),
                e,
            )
        })?;
    Ok(out
        .datapoints()
        .iter()
        .max_by_key(|p| p.timestamp().map_or(i64::MIN, |t| t.secs()))
        .is_some_and(|p| p.minimum() == Some(w.value) && p.maximum() == Some(w.value)))
}

/// RDS publishes `ReplicaLag` once a minute; lifeboat reads it at that period.
const LAG_PERIOD_SECS: i64 = 60;
/// A datapoint more than two periods older than the moment it is read for
/// says nothing of the lag at that moment.
const LAG_FRESH_SECS: i64 = 2 * LAG_PERIOD_SECS;
/// How far back before that moment datapoints are looked for.
const LAG_LOOKBACK_SECS: i64 = 15 * 60;

/// One `ReplicaLag` datapoint: its time and the period's maximum lag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LagPoint {
    /// The datapoint's timestamp.
    pub at: jiff::Timestamp,
    /// The replica's lag then, in seconds; RDS reports -1 when
    /// replication is not running.
    pub lag_secs: f64,
}

impl LagPoint {
    /// The moment the replica's data was current to: the datapoint's
    /// time less its lag.
    pub fn replicated_to(&self) -> jiff::Timestamp {
        let lag_ms = (self.lag_secs.max(0.0) * 1000.0).round() as i64;
        self.at - jiff::SignedDuration::from_millis(lag_ms)
    }
}

/// What the datapoints say of a replica's lag at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LagAt {
    /// The newest datapoint at or before the moment, within two periods.
    Fresh(LagPoint),
    /// The newest at or before the moment is older than two periods.
    Stale(LagPoint),
    /// The newest at or before the moment says replication is not running.
    NotReplicating(LagPoint),
    /// No datapoint at or before the moment in the lookback.
    Missing,
}

impl LagAt {
    /// Judge `points` for the moment `at`.
    pub fn of(points: &[LagPoint], at: jiff::Timestamp) -> LagAt {
        let Some(newest) = points
            .iter()
            .filter(|p| p.at <= at)
            .max_by_key(|p| p.at)
            .copied()
        else {
            return LagAt::Missing;
        };
        if newest.lag_secs < 0.0 {
            LagAt::NotReplicating(newest)
        } else if at.duration_since(newest.at).as_secs() > LAG_FRESH_SECS {
            LagAt::Stale(newest)
        } else {
            LagAt::Fresh(newest)
        }
    }
}

/// The `AWS/RDS` `ReplicaLag` datapoints of a replica from the lookback
/// before `at` to `at` (and, when `at` is past, up to now), one a minute.
pub(crate) async fn lag_points(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
    at: jiff::Timestamp,
) -> Result<Vec<LagPoint>, ActionError> {
    metric_lag_points(aws, region, &LagMetric::replica(db_instance), at).await
}

/// A lag metric RDS publishes: `ReplicaLag` of a read replica (seconds),
/// or `AuroraGlobalDBRPOLag` of an Aurora global database's secondary
/// cluster (milliseconds).
pub(crate) struct LagMetric<'a> {
    name: &'static str,
    dimension: &'static str,
    id: &'a str,
    per_second: f64,
}

impl<'a> LagMetric<'a> {
    /// A read replica's `ReplicaLag`.
    pub fn replica(db_instance: &'a str) -> LagMetric<'a> {
        LagMetric {
            name: "ReplicaLag",
            dimension: "DBInstanceIdentifier",
            id: db_instance,
            per_second: 1.0,
        }
    }

    /// A secondary cluster's `AuroraGlobalDBRPOLag`: how far behind the
    /// primary its data is.
    pub fn global_secondary(db_cluster: &'a str) -> LagMetric<'a> {
        LagMetric {
            name: "AuroraGlobalDBRPOLag",
            dimension: "DBClusterIdentifier",
            id: db_cluster,
            per_second: 1000.0,
        }
    }
}

/// The datapoints of a lag metric around `at`, in seconds.
pub(crate) async fn metric_lag_points(
    aws: &AwsClients,
    region: &str,
    metric: &LagMetric<'_>,
    at: jiff::Timestamp,
) -> Result<Vec<LagPoint>, ActionError> {
    let secs = |t: jiff::Timestamp| aws_smithy_types::DateTime::from_secs(t.as_second());
    let start = at - jiff::SignedDuration::from_secs(LAG_LOOKBACK_SECS);
    // EndTime is exclusive: a minute past the later of `at` and now.
    let end = at.max(jiff::Timestamp::now()) + jiff::SignedDuration::from_secs(LAG_PERIOD_SECS);
    let out = aws
        .cloudwatch(region)
        .get_metric_statistics()
        .namespace("AWS/RDS")
        .metric_name(metric.name)
        .dimensions(
            Dimension::builder()
                .name(metric.dimension)
                .value(metric.id)
                .build(),
        )
        .start_time(secs(start))
        .end_time(secs(end))
        .period(LAG_PERIOD_SECS as i32)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!(
                    "GetMetricStatistics {} of {} in {region}",
                    metric.name, metric.id
                ),
                e,
            )
        })?;
    Ok(points(out.datapoints())
        .into_iter()
        .map(|p| LagPoint {
            lag_secs: if p.lag_secs < 0.0 {
                p.lag_secs
            } else {
                p.lag_secs / metric.per_second
            },
            ..p
        })
        .collect())
}

/// The recovery point of an Aurora global database's secondary cluster at
/// the incident start, from its `AuroraGlobalDBRPOLag`.
pub(super) async fn global_point(
    aws: &AwsClients,
    region: &str,
    db_cluster: &str,
    incident_start: jiff::Timestamp,
) -> crate::engine::RecoveryReading {
    use crate::engine::RecoveryReading;
    let metric = LagMetric::global_secondary(db_cluster);
    let points = match metric_lag_points(aws, region, &metric, incident_start).await {
        Ok(points) => points,
        Err(e) => {
            return RecoveryReading::unmeasurable(format!(
                "CloudWatch did not answer for the AuroraGlobalDBRPOLag of {db_cluster} in {region}: {e}"
            ));
        }
    };
    match LagAt::of(&points, incident_start) {
        LagAt::Fresh(p) => RecoveryReading {
            at: Some(p.replicated_to().to_string()),
            how: format!(
                "CloudWatch AuroraGlobalDBRPOLag of {db_cluster} in {region} was {} s at {}, the newest datapoint at or before the incident start ({incident_start})",
                p.lag_secs, p.at
            ),
            not_measurable: None,
        },
        LagAt::Stale(p) => RecoveryReading::unmeasurable(format!(
            "the newest AuroraGlobalDBRPOLag datapoint of {db_cluster} in {region} at or before the incident start ({incident_start}) is from {}, more than two {LAG_PERIOD_SECS} s periods earlier: the secondary's lag at the incident is not known",
            p.at
        )),
        LagAt::NotReplicating(p) => RecoveryReading::unmeasurable(format!(
            "AuroraGlobalDBRPOLag of {db_cluster} in {region} was {} at {}: replication was not running at the incident start ({incident_start})",
            p.lag_secs, p.at
        )),
        LagAt::Missing => RecoveryReading::unmeasurable(format!(
            "CloudWatch has no AuroraGlobalDBRPOLag datapoint of {db_cluster} in {region} in the {} minutes up to the incident start ({incident_start}): RDS publishes it for a secondary cluster of a global database",
            LAG_LOOKBACK_SECS / 60
        )),
    }
}

fn points(datapoints: &[Datapoint]) -> Vec<LagPoint> {
    datapoints
        .iter()
        .filter_map(|p| {
            let t = p.timestamp()?;
            let at = jiff::Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()?;
            Some(LagPoint {
                at,
                lag_secs: p.maximum()?,
            })
        })
        .collect()
}

/// The replica's lag now, for a gate: a fresh reading, or why there is
/// none (stale, not replicating, missing), in words.
pub(crate) async fn current_lag(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
) -> Result<Result<f64, String>, ActionError> {
    let now = jiff::Timestamp::now();
    let points = lag_points(aws, region, db_instance, now).await?;
    Ok(match LagAt::of(&points, now) {
        LagAt::Fresh(p) => Ok(p.lag_secs),
        LagAt::Stale(p) => Err(format!(
            "the newest ReplicaLag datapoint ({} s, at {}) is {} s old, more than two {LAG_PERIOD_SECS} s periods: no current reading",
            p.lag_secs,
            p.at,
            now.duration_since(p.at).as_secs()
        )),
        LagAt::NotReplicating(p) => Err(format!(
            "ReplicaLag was {} at {}: replication is not running",
            p.lag_secs, p.at
        )),
        LagAt::Missing => Err(format!(
            "no ReplicaLag datapoint in the last {} minutes",
            LAG_LOOKBACK_SECS / 60
        )),
    })
}

/// The replica's recovery point at the incident's start: the newest
/// datapoint at or before it, its time less its lag. A datapoint older
/// than two periods, or one saying replication had stopped, gives no
/// figure, and the reading says why.
pub(super) async fn replica_point(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
    incident_start: jiff::Timestamp,
) -> crate::engine::RecoveryReading {
    use crate::engine::RecoveryReading;
    let points = match lag_points(aws, region, db_instance, incident_start).await {
        Ok(points) => points,
        Err(e) => {
            return RecoveryReading::unmeasurable(format!(
                "CloudWatch did not answer for the ReplicaLag of {db_instance} in {region}: {e}"
            ));
        }
    };
    lag_reading(&points, db_instance, region, incident_start)
}

/// The recovery reading the datapoints give for the incident start.
fn lag_reading(
    points: &[LagPoint],
    db_instance: &str,
    region: &str,
    incident_start: jiff::Timestamp,
) -> crate::engine::RecoveryReading {
    use crate::engine::RecoveryReading;
    match LagAt::of(points, incident_start) {
        LagAt::Fresh(p) => RecoveryReading {
            at: Some(p.replicated_to().to_string()),
            how: format!(
                "CloudWatch ReplicaLag of {db_instance} in {region} was {} s at {}, the newest datapoint at or before the incident start ({incident_start})",
                p.lag_secs, p.at
            ),
            not_measurable: None,
        },
        LagAt::Stale(p) => RecoveryReading::unmeasurable(format!(
            "the newest ReplicaLag datapoint of {db_instance} in {region} at or before the incident start ({incident_start}) is from {}, {} s earlier, more than two {LAG_PERIOD_SECS} s periods: the replica's lag at the incident is not known",
            p.at,
            incident_start.duration_since(p.at).as_secs()
        )),
        LagAt::NotReplicating(p) => RecoveryReading::unmeasurable(format!(
            "ReplicaLag of {db_instance} in {region} was {} at {}: replication was not running at the incident start ({incident_start})",
            p.lag_secs, p.at
        )),
        LagAt::Missing => RecoveryReading::unmeasurable(format!(
            "CloudWatch has no ReplicaLag datapoint of {db_instance} in {region} in the {} minutes up to the incident start ({incident_start}): RDS publishes it only for a replica that replicates",
            LAG_LOOKBACK_SECS / 60
        )),
    }
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
            assume_role: None,
            placement: Default::default(),
            expected: None,
        };
        let w = PutMetricData {
            namespace: "Lifeboat".into(),
            metric: "ForcePrimaryUnhealthy".into(),
            value: 1.0,
            dimensions: [("Service".to_string(), "app".to_string())].into(),
            unit: Some("Count".into()),
            confirm: None,
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

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).expect("in range")
    }

    fn lag(secs: i64, lag_secs: f64) -> LagPoint {
        LagPoint {
            at: at(secs),
            lag_secs,
        }
    }

    #[test]
    fn the_lag_is_the_newest_datapoint_at_or_before_the_moment_not_the_largest() {
        let points = [lag(-120, 3.0), lag(-60, 0.5), lag(-180, 40.0), lag(30, 9.0)];
        assert_eq!(LagAt::of(&points, at(0)), LagAt::Fresh(lag(-60, 0.5)));
        assert_eq!(LagAt::of(&points, at(40)), LagAt::Fresh(lag(30, 9.0)));
        assert_eq!(LagAt::of(&points, at(-200)), LagAt::Missing);
        assert_eq!(LagAt::of(&[], at(0)), LagAt::Missing);
    }

    #[test]
    fn a_datapoint_older_than_two_periods_is_no_reading() {
        assert_eq!(
            LagAt::of(&[lag(-120, 2.0)], at(0)),
            LagAt::Fresh(lag(-120, 2.0))
        );
        assert_eq!(
            LagAt::of(&[lag(-121, 2.0)], at(0)),
            LagAt::Stale(lag(-121, 2.0))
        );
        assert_eq!(
            LagAt::of(&[lag(-10, -1.0)], at(0)),
            LagAt::NotReplicating(lag(-10, -1.0))
        );
    }

    #[test]
    fn the_recovery_point_is_the_datapoint_time_less_its_lag_not_now_less_it() {
        let reading = lag_reading(&[lag(-50, 20.0), lag(20, 1.0)], "db", "us-west-2", at(0));
        assert_eq!(reading.at, Some(at(-70).to_string()), "{reading:?}");
        assert!(
            reading.how.contains("20 s at") && reading.how.contains("incident start"),
            "{}",
            reading.how
        );
        let stale = lag_reading(&[lag(-400, 1.0)], "db", "us-west-2", at(0));
        assert_eq!(stale.at, None);
        let why = stale.not_measurable.unwrap_or_default();
        assert!(
            why.contains("400 s earlier") && why.contains("two 60 s periods"),
            "{why}"
        );
        let stopped = lag_reading(&[lag(-5, -1.0)], "db", "us-west-2", at(0));
        assert!(
            stopped
                .not_measurable
                .is_some_and(|w| w.contains("replication was not running")),
        );
    }

    #[test]
    fn datapoints_without_a_maximum_or_a_time_are_skipped() {
        let full = Datapoint::builder()
            .timestamp(aws_smithy_types::DateTime::from_secs(1_800_000_000))
            .maximum(4.0)
            .build();
        let no_max = Datapoint::builder()
            .timestamp(aws_smithy_types::DateTime::from_secs(1_800_000_060))
            .build();
        assert_eq!(points(&[full, no_max]), vec![lag(0, 4.0)]);
    }
}
