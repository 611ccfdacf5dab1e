//! ECS: a service's desired count, and waiting until the service is
//! steady at it (one deployment, as many tasks running as desired: the
//! rule of the SDK's `services-stable` waiter).

use aws_sdk_ecs::types::Service;

use super::aws_error::classify;
use super::{Poll, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::ecs::ScaleService;
use crate::engine::{ActionError, Outputs, StepContext};

/// The service as ECS reports it now: refused when the cluster or the
/// service is missing, or the service is not active.
pub(super) async fn service(
    client: &aws_sdk_ecs::Client,
    region: &str,
    cluster: &str,
    name: &str,
) -> Result<Service, ActionError> {
    let answer = client
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await;
    let out = match answer {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_cluster_not_found_exception()) =>
        {
            return Err(ActionError::permanent(format!(
                "no ECS cluster {cluster} in {region}"
            )));
        }
        Err(e) => {
            return Err(classify(
                &format!("DescribeServices {name} in cluster {cluster} ({region})"),
                e,
            ));
        }
    };
    if let Some(f) = out.failures().first() {
        return Err(ActionError::permanent(format!(
            "no ECS service {name} in cluster {cluster} ({region}): {}",
            f.reason().unwrap_or("not found")
        )));
    }
    let Some(s) = out.services().first() else {
        return Err(ActionError::permanent(format!(
            "no ECS service {name} in cluster {cluster} ({region})"
        )));
    };
    if s.status() != Some("ACTIVE") {
        return Err(ActionError::permanent(format!(
            "ECS service {name} in cluster {cluster} ({region}) is {}, not ACTIVE",
            s.status().unwrap_or("of unknown status")
        )));
    }
    Ok(s.clone())
}

/// Whether the service is steady at `desired` tasks.
pub(crate) fn steady(s: &Service, desired: i32) -> bool {
    s.desired_count() == desired && s.running_count() == desired && s.deployments().len() == 1
}

/// Where the service is, for a person: counts, deployments, and ECS's
/// newest event (which says why tasks do not start).
pub(crate) fn progress(s: &Service) -> String {
    let mut text = format!(
        "{}: {} of {} running, {} pending, {} deployment(s)",
        s.service_name().unwrap_or("?"),
        s.running_count(),
        s.desired_count(),
        s.pending_count(),
        s.deployments().len()
    );
    if let Some(message) = s.events().first().and_then(|e| e.message()) {
        text.push_str(&format!("; last event: {message}"));
    }
    text
}

/// `ecs.scale_service`: set the desired count unless it is set already,
/// then (unless told not to) wait until the service is steady at it.
pub(super) async fn scale_service(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &ScaleService,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.ecs(region);
    let desired = i32::try_from(w.desired).unwrap_or(i32::MAX);
    let before = service(&client, region, &w.cluster, &w.service).await?;
    let changed = before.desired_count() != desired;
    if changed {
        client
            .update_service()
            .cluster(&w.cluster)
            .service(&w.service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| {
                classify(
                    &format!(
                        "UpdateService {} in cluster {} ({region})",
                        w.service, w.cluster
                    ),
                    e,
                )
            })?;
    }
    let now = if w.wait_steady {
        poll_until(ctx, "ECS service not steady", || async {
            let s = service(&client, region, &w.cluster, &w.service).await?;
            Ok(if steady(&s, desired) {
                Poll::Done(s)
            } else {
                Poll::NotYet(progress(&s))
            })
        })
        .await?
    } else {
        service(&client, region, &w.cluster, &w.service).await?
    };
    Ok(Outputs::from([
        ("cluster".to_string(), serde_json::json!(w.cluster)),
        (
            "service".to_string(),
            serde_json::json!(now.service_name().unwrap_or(&w.service)),
        ),
        (
            "service_arn".to_string(),
            serde_json::json!(now.service_arn().unwrap_or_default()),
        ),
        ("desired".to_string(), serde_json::json!(desired)),
        (
            "running".to_string(),
            serde_json::json!(now.running_count()),
        ),
        (
            "previous_desired".to_string(),
            serde_json::json!(before.desired_count()),
        ),
        ("changed".to_string(), serde_json::json!(changed)),
    ]))
}

/// What a drill without a drill service would do: the service checked,
/// nothing changed.
pub(super) async fn would_scale(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &ScaleService,
) -> Result<String, ActionError> {
    let region = region_of(ctx)?;
    let s = service(&aws.ecs(region), region, &w.cluster, &w.service).await?;
    Ok(format!(
        "would set the desired count of {} in cluster {} to {} (now {}); no `drill_service`: nothing was scaled",
        w.service,
        w.cluster,
        w.desired,
        progress(&s)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Deployment, ServiceEvent};

    fn service(desired: i32, running: i32, deployments: usize) -> Service {
        let mut b = Service::builder()
            .service_name("api")
            .desired_count(desired)
            .running_count(running)
            .pending_count(desired - running)
            .events(
                ServiceEvent::builder()
                    .message("(service api) was unable to place a task")
                    .build(),
            );
        for i in 0..deployments {
            b = b.deployments(Deployment::builder().id(format!("ecs-svc/{i}")).build());
        }
        b.build()
    }

    #[test]
    fn steady_is_one_deployment_running_what_is_desired() {
        assert!(steady(&service(6, 6, 1), 6));
        assert!(!steady(&service(6, 4, 1), 6), "tasks still starting");
        assert!(!steady(&service(6, 6, 2), 6), "a deployment still rolling");
        assert!(!steady(&service(3, 3, 1), 6), "not yet asked for six");
        assert_eq!(
            progress(&service(6, 4, 2)),
            "api: 4 of 6 running, 2 pending, 2 deployment(s); last event: (service api) was unable to place a task"
        );
    }
}
