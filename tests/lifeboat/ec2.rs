//! EC2 actions against the emulator: do, already done (no mutating call),
//! and a clear failure for a missing resource; then `lifeboat run` itself.

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_ec2::types::InstanceStateName;
use lifeboat::actions::{Readiness, Registry};
use lifeboat::aws::AwsClients;
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::ec2::{CopyImage, Instances, LaunchFromTemplate, WaitRunning};
use lifeboat::engine::{Actions, FailureKind, StepContext};

use crate::support::moto::Moto;
use crate::support::seed::launch_template;
use crate::support::step_context;

const REGION: &str = "us-west-2";

fn ctx(step: &str) -> StepContext {
    step_context("test-run", step, REGION)
}

async fn seed(aws: &AwsClients, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
    crate::support::seed::stopped_instances(aws, REGION, count, tags).await
}

async fn states(aws: &AwsClients, ids: &[String]) -> Vec<InstanceStateName> {
    crate::support::seed::instance_states(aws, REGION, ids).await
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_by_tags_starts_only_the_matching_instances_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let app = seed(&aws, 3, &[("Role", "app"), ("Env", "dr")]).await;
    let decoy = seed(&aws, 1, &[("Role", "batch"), ("Env", "dr")]).await;
    let registry = Registry::with_aws(aws.clone());
    let input = ActionInput::Ec2StartInstances(Instances {
        instance_ids: None,
        tags: Some(tags(&[("Role", "app"), ("Env", "dr")])),
        alternative_instance_types: vec![],
    });

    let outputs = registry
        .run(&ctx("start-app"), &input)
        .await
        .expect("start");
    assert_eq!(outputs["started"].as_array().map(Vec::len), Some(3));
    assert!(
        states(&aws, &app)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Running)
    );
    assert_eq!(
        states(&aws, &decoy).await,
        vec![InstanceStateName::Stopped],
        "the decoy stays stopped"
    );
    let mutating = aws.calls().mutating();
    assert_eq!(mutating.get("EC2.StartInstances"), Some(&1), "{mutating:?}");

    // Already done: observed, nothing started, no mutating call.
    let before = aws.calls().mutating();
    let again = registry
        .run(&ctx("start-app"), &input)
        .await
        .expect("start again");
    assert_eq!(again["started"], serde_json::json!([]));
    assert_eq!(aws.calls().mutating(), before);

    // And the wait sees them running (with status checks).
    let wait = ActionInput::Ec2WaitRunning(WaitRunning {
        instance_ids: Some(app.clone()),
        tags: None,
        status_ok: true,
    });
    let waited = registry
        .run(&ctx("app-running"), &wait)
        .await
        .expect("wait running");
    assert_eq!(waited["instance_ids"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_observed_first_too() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let ids = seed(&aws, 2, &[("Role", "app")]).await;
    aws.ec2(REGION)
        .start_instances()
        .set_instance_ids(Some(ids.clone()))
        .send()
        .await
        .expect("start");
    let registry = Registry::with_aws(aws.clone());
    let input = ActionInput::Ec2StopInstances(Instances {
        instance_ids: Some(ids.clone()),
        tags: None,
        alternative_instance_types: vec![],
    });
    registry.run(&ctx("stop"), &input).await.expect("stop");
    assert!(
        states(&aws, &ids)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Stopped)
    );
    let before = aws.calls().mutating();
    registry
        .run(&ctx("stop"), &input)
        .await
        .expect("stop again");
    assert_eq!(aws.calls().mutating(), before, "already stopped: no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_instances_fail_permanently_naming_them() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let registry = Registry::with_aws(aws.clone());
    let by_id = ActionInput::Ec2StartInstances(Instances {
        instance_ids: Some(vec!["i-0123456789abcdef0".into()]),
        tags: None,
        alternative_instance_types: vec![],
    });
    let err = registry
        .run(&ctx("start"), &by_id)
        .await
        .expect_err("no such instance");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message.contains("i-0123456789abcdef0") && err.message.contains(REGION),
        "{}",
        err.message
    );

    let by_tag = ActionInput::Ec2StartInstances(Instances {
        instance_ids: None,
        tags: Some(tags(&[("Role", "nothing-has-this")])),
        alternative_instance_types: vec![],
    });
    let err = registry
        .run(&ctx("start"), &by_tag)
        .await
        .expect_err("nothing tagged");
    assert_eq!(
        err.message,
        format!("no instances tagged Role=nothing-has-this in {REGION}")
    );
    assert!(aws.calls().mutating().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifeboat_run_starts_the_standby_app_tier() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let app = seed(&aws, 2, &[("Role", "app"), ("Env", "dr")]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = dir.path().join("start.yaml");
    std::fs::write(
        &rb,
        "name: start-app\nstrategy: pilot-light\nregions: { from: us-east-1, to: us-west-2 }\nsteps:\n  - { id: start-app, action: ec2.start_instances, with: { tags: { Role: app, Env: dr } } }\n  - { id: app-running, action: ec2.wait_running, needs: [start-app], with: { tags: { Role: app, Env: dr } }, restores_service: true }\n",
    )
    .expect("write runbook");
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["run", rb.to_str().expect("utf-8"), "--yes"])
        .env("LIFEBOAT_STATE_DIR", dir.path().join("state"))
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run lifeboat");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        states(&aws, &app)
            .await
            .iter()
            .all(|s| *s == InstanceStateName::Running)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_from_template_launches_only_what_is_missing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let registry = Registry::with_aws(aws.clone());
    let launch = |template: &str| {
        ActionInput::Ec2LaunchFromTemplate(LaunchFromTemplate {
            security_groups: Vec::new(),
            launch_template: template.into(),
            version: None,
            count: 2,
            subnet_id: None,
            tags: tags(&[("Role", "app")]),
            instance_type: None,
            alternatives: vec![],
        })
    };
    let missing = registry
        .preflight(&ctx("launch"), &launch("app-tier"), &[])
        .await;
    assert_eq!(
        missing,
        Readiness::WouldFail("no launch template app-tier in us-west-2".into())
    );
    let err = registry
        .run(&ctx("launch"), &launch("app-tier"))
        .await
        .expect_err("no template");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(err.message.contains("app-tier"), "{err}");

    launch_template(&aws, REGION, "app-tier").await;
    assert!(matches!(
        registry
            .preflight(&ctx("launch"), &launch("app-tier"), &[])
            .await,
        Readiness::Ready(_)
    ));
    let out = registry
        .run(&ctx("launch"), &launch("app-tier"))
        .await
        .expect("launch");
    let ids: Vec<String> =
        serde_json::from_value(out["instance_ids"].clone()).expect("instance ids");
    assert_eq!(ids.len(), 2);
    assert_eq!(
        states(&aws, &ids).await,
        vec![InstanceStateName::Running; 2]
    );
    // One refused call (no template yet), one launch.
    assert_eq!(aws.calls().mutating().get("EC2.RunInstances"), Some(&2));

    let again = registry
        .run(&ctx("launch"), &launch("app-tier"))
        .await
        .expect("launch again");
    assert_eq!(again["instance_ids"], out["instance_ids"]);
    assert_eq!(again["launched"], 0);
    // A later run of the same step finds them too.
    let mut later = ctx("launch");
    later.run_id = "a-later-run".into();
    let third = registry
        .run(&later, &launch("app-tier"))
        .await
        .expect("later run");
    assert_eq!(third["launched"], 0);
    assert_eq!(
        aws.calls().mutating().get("EC2.RunInstances"),
        Some(&2),
        "the step never launches what it launched before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_image_copies_an_ami_across_regions_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let registry = Registry::with_aws(aws.clone());
    let images = aws
        .ec2("us-east-1")
        .describe_images()
        .send()
        .await
        .expect("images");
    let source = images.images()[0].image_id().expect("an AMI").to_string();
    let copy = |id: &str| {
        ActionInput::Ec2CopyImage(CopyImage {
            source_region: "us-east-1".into(),
            source_image_id: Some(id.into()),
            source_image_tags: None,
            name: "app-golden-dr".into(),
            encrypted: false,
            kms_key_id: None,
        })
    };
    let out = registry
        .run(&ctx("copy"), &copy(&source))
        .await
        .expect("copy");
    assert_eq!(out["source_image_id"], source.as_str());
    let image = out["image_id"].as_str().expect("image id").to_string();
    assert_ne!(image, source);
    let copied = aws
        .ec2(REGION)
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .expect("describe copy");
    assert_eq!(copied.images()[0].name(), Some("app-golden-dr"));

    let before = aws.calls().mutating();
    let again = registry
        .run(&ctx("copy"), &copy(&source))
        .await
        .expect("again");
    assert_eq!(again["image_id"], image.as_str());
    assert_eq!(
        aws.calls().mutating(),
        before,
        "already copied: no mutating call"
    );
    assert_eq!(aws.calls().mutating().get("EC2.CopyImage"), Some(&1));

    let err = registry
        .run(&ctx("copy"), &copy("ami-0000000000000000f"))
        .await
        .expect_err("no such AMI");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message.contains("ami-0000000000000000f in us-east-1"),
        "{err}"
    );
}
