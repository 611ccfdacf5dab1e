//! RPO exposure: for each protected resource, now minus its newest
//! recovery point in the DR region, read with cheap describe and list
//! calls, so that an alert can fire before a disaster breaks the RPO
//! target rather than after. The daemon refreshes it on an interval and
//! exports it; `lifeboat exposure` prints it once. What is measured is the
//! config's `protected` resources and each binding's, on the side the
//! binding is on: once a reprotect has rebuilt the protection the other
//! way, the exposure measured is the new replica's, and the old one's
//! figures are withdrawn.

use jiff::Timestamp;
use serde::Serialize;

use crate::aws::AwsClients;
use crate::config::{Binding, Protected};
use crate::metrics::Metrics;

/// A resource whose exposure is measured, and the binding whose recovery
/// relies on it (none for the config's own `protected`).
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    /// The resource.
    pub protected: Protected,
    /// Its binding.
    pub binding: Option<String>,
}

/// What exposure measures: the config's `protected`, then each binding's
/// on the side it is on, each resource once (as first named).
pub fn watched(protected: &[Protected], bindings: &[Binding]) -> Vec<Watched> {
    let mut out: Vec<Watched> = Vec::new();
    let own = protected.iter().map(|p| (p, None));
    let bound = bindings
        .iter()
        .flat_map(|b| b.protected.iter().map(move |p| (p, Some(b.name.clone()))));
    for (p, binding) in own.chain(bound) {
        if !out.iter().any(|w| w.protected.name() == p.name()) {
            out.push(Watched {
                protected: p.clone(),
                binding,
            });
        }
    }
    out
}

/// One protected resource's exposure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    /// The resource, as named in metrics.
    pub resource: String,
    /// The binding that relies on it, if it is a binding's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
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
        binding: None,
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

/// Measure every resource (concurrently) and export the figures; the
/// figures of a resource no longer watched are withdrawn.
pub async fn refresh(aws: &AwsClients, watched: &[Watched], metrics: &Metrics) -> Vec<Exposure> {
    let now = Timestamp::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, w) in watched.iter().enumerate() {
        let (aws, w) = (aws.clone(), w.clone());
        tasks.spawn(async move {
            let mut e = measure(&aws, &w.protected, now).await;
            e.binding = w.binding;
            (i, e)
        });
    }
    let mut out: Vec<Option<Exposure>> = vec![None; watched.len()];
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
    let names: Vec<String> = watched.iter().map(|w| w.protected.name()).collect();
    metrics.retain_exposures(&names);
    metrics.record_api_calls(aws.calls());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_binding_adds_its_sides_recovery_points_once_and_a_dropped_one_is_withdrawn() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let config = crate::config::load(
            "c.yaml",
            &format!(
                "regions:
  us-east-1:
    probes: [ {{ name: api, aws_api: us-east-1 }} ]
  us-west-2:
    probes: [ {{ name: api, aws_api: us-west-2 }} ]
protected: [ {{ kind: s3, bucket: backups-dr, region: us-west-2 }} ]
bindings:
  app:
    region: us-east-1
    runbook: {dir}/runbooks/pilot-light.yaml
    policy: approve
    protected:
      - {{ kind: rds_replica, db_instance: app-db-replica, region: us-west-2 }}
      - {{ kind: s3, bucket: backups-dr, region: us-west-2 }}
    reprotected:
      region: us-west-2
      runbook: {dir}/runbooks/pilot-light.yaml
      params: {{ primary_region: us-west-2, dr_region: us-east-1 }}
      protected: [ {{ kind: rds_replica, db_instance: app-db-reprotected, region: us-east-1 }} ]
"
            ),
        )
        .expect("a valid config");
        let named = |w: &[Watched]| -> Vec<(String, Option<String>)> {
            w.iter()
                .map(|w| (w.protected.name(), w.binding.clone()))
                .collect()
        };
        let app = || Some("app".to_string());
        assert_eq!(
            named(&watched(&config.protected, &config.bindings)),
            [
                ("s3://backups-dr/".to_string(), None),
                ("rds-replica:us-west-2:app-db-replica".to_string(), app()),
            ]
        );
        let flipped = vec![config.bindings[0].flipped().expect("other side")];
        assert_eq!(
            named(&watched(&config.protected, &flipped)),
            [
                ("s3://backups-dr/".to_string(), None),
                (
                    "rds-replica:us-east-1:app-db-reprotected".to_string(),
                    app()
                ),
            ]
        );

        // The metric of a resource no longer watched is withdrawn.
        let metrics = Metrics::new();
        metrics.set_exposure("rds-replica:us-west-2:app-db-replica", 12.0, Some(300.0));
        metrics.set_exposure("s3://backups-dr/", 60.0, None);
        assert!(metrics.render().contains("app-db-replica"));
        metrics.retain_exposures(&["s3://backups-dr/".to_string()]);
        let text = metrics.render();
        assert!(!text.contains("app-db-replica"), "{text}");
        assert!(text.contains("resource=\"s3://backups-dr/\""), "{text}");
    }
}
