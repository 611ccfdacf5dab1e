//! RPO exposure: for each protected resource, now minus its newest
//! recovery point in the DR region, read with cheap describe and list
//! calls, so that an alert can fire before a disaster breaks the RPO
//! target rather than after. The daemon refreshes it on an interval and
//! exports it; `lifeboat exposure` prints it once.

use jiff::Timestamp;
use serde::Serialize;

use crate::aws::AwsClients;
use crate::config::Protected;
use crate::metrics::Metrics;

/// One protected resource's exposure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    /// The resource, as named in metrics.
    pub resource: String,
    /// The newest recovery point: what it is.
    pub recovery_point: Option<String>,
    /// When its data was taken (RFC 3339).
    pub taken_at: Option<String>,
    /// Now minus that, in seconds.
    pub seconds: Option<f64>,
    /// The target, in seconds.
    pub target_s: Option<f64>,
    /// `ok`, `over target`, `no recovery point` or `unreadable`.
    pub verdict: &'static str,
    /// Why it is unreadable, when it is.
    pub error: Option<String>,
}

/// Measure one resource's exposure now.
pub async fn measure(aws: &AwsClients, p: &Protected, now: Timestamp) -> Exposure {
    let found = match p {
        Protected::Rds {
            db_instance,
            region,
            ..
        } => crate::actions::rds::newest_snapshot(aws, region, db_instance)
            .await
            .map(|s| s.map(|(id, at)| (format!("snapshot {id}"), at))),
        Protected::RdsReplica {
            db_instance,
            region,
            ..
        } => replica_point(aws, region, db_instance, now).await,
        Protected::S3 {
            bucket,
            prefix,
            region,
            ..
        } => crate::actions::s3::newest_object(aws, region, bucket, prefix)
            .await
            .map(|o| o.map(|(key, at)| (format!("object {key}"), at))),
        Protected::Ami { tags, region, .. } => {
            match crate::actions::ec2::newest_image(&aws.ec2(region), region, None, Some(tags))
                .await
            {
                Ok(image) => Ok(image.creation_date().and_then(|d| {
                    let at = aws_smithy_types::DateTime::from_str(
                        d,
                        aws_smithy_types::date_time::Format::DateTime,
                    )
                    .ok()?;
                    Some((format!("image {}", image.image_id().unwrap_or("?")), at))
                })),
                Err(e) if e.message.starts_with("no ") => Ok(None),
                Err(e) => Err(e),
            }
        }
    };
    let target_s = p.rpo_target().map(|t| t.get().as_secs_f64());
    let mut exposure = Exposure {
        resource: p.name(),
        recovery_point: None,
        taken_at: None,
        seconds: None,
        target_s,
        verdict: "no recovery point",
        error: None,
    };
    match found {
        Ok(Some((what, at))) => {
            let taken = Timestamp::from_second(at.secs()).ok().and_then(|t| {
                t.checked_add(jiff::SignedDuration::from_nanos(i64::from(
                    at.subsec_nanos(),
                )))
                .ok()
            });
            let seconds = taken.map(|t| now.duration_since(t).as_secs_f64().max(0.0));
            exposure.recovery_point = Some(what);
            exposure.taken_at = taken.map(|t| t.to_string());
            exposure.seconds = seconds;
            exposure.verdict = match (seconds, target_s) {
                (Some(s), Some(t)) if s > t => "over target",
                _ => "ok",
            };
        }
        Ok(None) => {}
        Err(e) => {
            exposure.verdict = "unreadable";
            exposure.error = Some(e.message);
        }
    }
    exposure
}

/// A replica's newest replicated moment: its newest `ReplicaLag`
/// datapoint that shows it replicating (RDS reports -1 when it is not),
/// that datapoint's time less the lag, however old the datapoint (an old
/// one makes the exposure grow, as it should). `None` when CloudWatch has
/// no such datapoint in the lookback.
async fn replica_point(
    aws: &AwsClients,
    region: &str,
    db_instance: &str,
    now: Timestamp,
) -> Result<Option<(String, aws_smithy_types::DateTime)>, crate::engine::ActionError> {
    let points = crate::actions::cloudwatch::lag_points(aws, region, db_instance, now).await?;
    Ok(points
        .iter()
        .filter(|p| p.lag_secs >= 0.0 && p.at <= now)
        .max_by_key(|p| p.at)
        .map(|p| {
            let to = p.replicated_to();
            (
                format!(
                    "replica {db_instance} (ReplicaLag {} s at {})",
                    p.lag_secs, p.at
                ),
                aws_smithy_types::DateTime::from_secs_and_nanos(
                    to.as_second(),
                    to.subsec_nanosecond().max(0) as u32,
                ),
            )
        }))
}

/// Measure every resource (concurrently) and export the figures.
pub async fn refresh(
    aws: &AwsClients,
    protected: &[Protected],
    metrics: &Metrics,
) -> Vec<Exposure> {
    let now = Timestamp::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in protected.iter().enumerate() {
        let (aws, p) = (aws.clone(), p.clone());
        tasks.spawn(async move { (i, measure(&aws, &p, now).await) });
    }
    let mut out: Vec<Option<Exposure>> = vec![None; protected.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, e)) = joined {
            out[i] = Some(e);
        }
    }
    let out: Vec<Exposure> = out.into_iter().flatten().collect();
    for e in &out {
        if let Some(s) = e.seconds {
            metrics.set_exposure(&e.resource, s, e.target_s);
        }
    }
    metrics.record_api_calls(aws.calls());
    out
}
