//! ECS and Lambda actions against the emulator: an ECS service scaled once
//! and steady, already scaled, missing; a Lambda function invoked with its
//! payload and lifeboat's context, its function error failing the step;
//! and both in a drill.

use lifeboat::actions::Registry;
use lifeboat::aws::AwsClients;
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::ecs::ScaleService;
use lifeboat::catalogue::lambda::Invoke;
use lifeboat::engine::{Actions, FailureKind, StepContext};
use lifeboat::runbook::Mode;

use crate::support::moto::Moto;
use crate::support::step_context;

const REGION: &str = "us-west-2";

fn ctx() -> StepContext {
    step_context("run-svc", "scale-api", REGION)
}

fn drill() -> StepContext {
    let mut c = ctx();
    c.mode = Mode::Drill;
    c
}

/// A cluster `dr` with the services `names`, each running `desired` tasks
/// of one task definition.
async fn services(aws: &AwsClients, names: &[&str], desired: i32) {
    let ecs = aws.ecs(REGION);
    ecs.create_cluster()
        .cluster_name("dr")
        .send()
        .await
        .expect("cluster");
    ecs.register_task_definition()
        .family("api")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("api")
                .image("public.ecr.aws/docker/library/nginx:latest")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .expect("task definition");
    for name in names {
        ecs.create_service()
            .cluster("dr")
            .service_name(*name)
            .task_definition("api")
            .desired_count(desired)
            .send()
            .await
            .expect("service");
    }
}

async fn desired_of(aws: &AwsClients, name: &str) -> i32 {
    aws.ecs(REGION)
        .describe_services()
        .cluster("dr")
        .services(name)
        .send()
        .await
        .expect("describe")
        .services()[0]
        .desired_count()
}

fn scale(service: &str, desired: u32, drill_service: Option<&str>) -> ActionInput {
    ActionInput::EcsScaleService(ScaleService {
        cluster: "dr".into(),
        service: service.into(),
        desired,
        wait_steady: true,
        drill_service: drill_service.map(str::to_string),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_service_is_scaled_once_and_waited_for() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    services(&aws, &["api"], 1).await;
    let registry = Registry::with_aws(aws.clone());

    let out = registry
        .run(&ctx(), &scale("api", 4, None))
        .await
        .expect("scale");
    assert_eq!(out["changed"], true, "{out:?}");
    assert_eq!(out["running"], 4);
    assert_eq!(out["previous_desired"], 1);
    assert_eq!(desired_of(&aws, "api").await, 4);
    assert_eq!(aws.calls().mutating().get("ECS.UpdateService"), Some(&1));

    let before = aws.calls().mutating();
    let again = registry
        .run(&ctx(), &scale("api", 4, None))
        .await
        .expect("again");
    assert_eq!(again["changed"], false);
    assert_eq!(aws.calls().mutating(), before, "at four already: no update");

    let err = registry
        .run(&ctx(), &scale("ghost", 4, None))
        .await
        .expect_err("no such service");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .starts_with("no ECS service ghost in cluster dr (us-west-2)"),
        "{}",
        err.message
    );
    let mut elsewhere = scale("api", 4, None);
    if let ActionInput::EcsScaleService(w) = &mut elsewhere {
        w.cluster = "nowhere".into();
    }
    let err = registry
        .run(&ctx(), &elsewhere)
        .await
        .expect_err("no cluster");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(err.message.contains("nowhere"), "{}", err.message);
    assert_eq!(aws.calls().mutating(), before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_drill_scales_the_drill_service_or_nothing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    services(&aws, &["api", "api-drill"], 1).await;
    let registry = Registry::with_aws(aws.clone());

    let out = registry
        .run(&drill(), &scale("api", 3, Some("api-drill")))
        .await
        .expect("drill");
    assert_eq!(
        out["drill"], "scaled the drill service api-drill",
        "{out:?}"
    );
    assert_eq!(desired_of(&aws, "api-drill").await, 3);
    assert_eq!(desired_of(&aws, "api").await, 1, "production untouched");

    let before = aws.calls().mutating();
    let out = registry
        .run(&drill(), &scale("api", 3, None))
        .await
        .expect("simulated");
    assert_eq!(out["simulated"], true);
    assert!(
        out["drill"]
            .as_str()
            .is_some_and(|d| d
                .starts_with("would set the desired count of api in cluster dr to 3 (now api: ")),
        "{out:?}"
    );
    assert_eq!(
        aws.calls().mutating(),
        before,
        "a simulated drill changes nothing"
    );
}

/// A function `name` in the DR region (its code is the emulator's to play).
async fn function(aws: &AwsClients, name: &str) {
    let iam = aws_sdk_iam::Client::new(&aws.config("us-east-1"));
    let role = iam
        .create_role()
        .role_name(format!("{name}-role"))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("role");
    aws.lambda(REGION, std::time::Duration::from_secs(30))
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role.role().map(|r| r.arn()).unwrap_or_default())
        .handler("index.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(zip_with_handler()))
                .build(),
        )
        .send()
        .await
        .expect("function");
}

/// A zip holding `index.py` (stored, not deflated).
fn zip_with_handler() -> Vec<u8> {
    let name = b"index.py";
    let body = b"def handler(event, context):\n    return event\n";
    let crc = crc32(body);
    let mut out = Vec::new();
    let local = |out: &mut Vec<u8>| {
        out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name);
        out.extend_from_slice(body);
    };
    local(&mut out);
    let central = out.len() as u32;
    out.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name);
    let size = out.len() as u32 - central;
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&central.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn invoke(function: &str, drill_function: Option<&str>) -> ActionInput {
    ActionInput::LambdaInvoke(Invoke {
        function: function.into(),
        qualifier: None,
        payload: Some(serde_json::json!({ "cutover": "us-west-2", "dry": false })),
        drill_function: drill_function.map(str::to_string),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_step_gets_its_result_and_a_function_error_fails_it() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    function(&aws, "cutover").await;
    let registry = Registry::with_aws(aws.clone());

    moto.play_function(
        REGION,
        "cutover",
        serde_json::json!({ "moved": 12 }),
        None,
        "moved 12 tenants\n",
    );
    let out = registry
        .run(&ctx(), &invoke("cutover", None))
        .await
        .expect("invoke");
    assert_eq!(out["result"], serde_json::json!({ "moved": 12 }), "{out:?}");
    assert_eq!(out["status_code"], 200);
    assert_eq!(out["log_tail"], "moved 12 tenants\n");
    let seen = moto.invocations();
    assert_eq!(
        seen[0]["event"],
        serde_json::json!({ "cutover": "us-west-2", "dry": false })
    );
    assert_eq!(
        seen[0]["client_context"]["custom"],
        serde_json::json!({ "lifeboat_run": "run-svc", "lifeboat_step": "scale-api", "lifeboat_mode": "failover" }),
        "the function is told which run and step invoke it"
    );

    moto.play_function(
        REGION,
        "cutover",
        serde_json::json!({ "errorType": "RuntimeError", "errorMessage": "tenant 7 is locked", "stackTrace": [] }),
        Some("Unhandled"),
        "Traceback: tenant 7 is locked\n",
    );
    let err = registry
        .run(&ctx(), &invoke("cutover", None))
        .await
        .expect_err("the function failed");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message.starts_with(
            "Lambda function cutover in us-west-2 failed: Unhandled RuntimeError: tenant 7 is locked"
        ) && err.message.contains("log tail:\nTraceback: tenant 7 is locked"),
        "{}",
        err.message
    );
    assert_eq!(
        aws.calls().snapshot().get("Lambda.Invoke"),
        Some(&2),
        "each invocation sent once: the SDK does not retry one"
    );

    let err = registry
        .run(&ctx(), &invoke("ghost", None))
        .await
        .expect_err("no such function");
    assert_eq!(err.message, "no Lambda function ghost in us-west-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_drill_invokes_the_drill_function_or_nothing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    function(&aws, "cutover").await;
    function(&aws, "cutover-drill").await;
    let registry = Registry::with_aws(aws.clone());

    let out = registry
        .run(&drill(), &invoke("cutover", Some("cutover-drill")))
        .await
        .expect("drill");
    assert_eq!(
        out["drill"], "invoked the drill function cutover-drill",
        "{out:?}"
    );
    let seen = moto.invocations();
    assert_eq!(seen.as_array().map(Vec::len), Some(1));
    assert_eq!(seen[0]["function"], "cutover-drill");
    assert_eq!(
        seen[0]["client_context"]["custom"]["lifeboat_mode"],
        "drill"
    );

    let out = registry
        .run(&drill(), &invoke("cutover", None))
        .await
        .expect("simulated");
    assert_eq!(out["simulated"], true);
    assert_eq!(
        out["drill"],
        "would invoke cutover; no `drill_function`: nothing was invoked"
    );
    assert_eq!(
        moto.invocations().as_array().map(Vec::len),
        Some(1),
        "nothing more invoked"
    );
}

/// A runbook of the new actions, run by `lifeboat run` with every request
/// authorized as IAM would against what `lifeboat iam-policy` prints for
/// it: the policy grants exactly what the actions call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_cluster_container_and_function_steps_stays_within_its_printed_policy() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::aurora_cluster(
        &aws,
        REGION,
        "orders",
        &[("orders-1", "us-west-2a", 1), ("orders-3", "us-west-2b", 1)],
    )
    .await;
    services(&aws, &["api"], 1).await;
    function(&aws, "cutover").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tier.yaml");
    std::fs::write(
        &file,
        "name: tier
strategy: warm-standby
regions: { from: us-east-1, to: us-west-2 }
steps:
  - id: database
    action: rds.failover_cluster
    with: { db_cluster: orders, target_instance: orders-3 }
  - id: warm
    action: rds.set_serverless_capacity
    with: { db_cluster: orders, min_acu: 8, max_acu: 64 }
  - id: api
    action: ecs.scale_service
    with: { cluster: dr, service: api, desired: 4 }
  - id: hook
    action: lambda.invoke
    needs: [database, warm, api]
    with: { function: cutover, payload: { go: true } }
    restores_service: true
",
    )
    .expect("write runbook");
    let path = file.to_str().expect("utf-8");
    moto.enforce_policy(&[path, "--mode", "failover"]);
    let state = dir.path().join("state");
    let out = moto
        .lifeboat(&state)
        .args(["run", path, "--yes"])
        .output()
        .expect("run lifeboat");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::support::text(&out.stderr)
    );
    moto.assert_authorized();
    assert_eq!(
        crate::support::seed::cluster_writer(&aws, REGION, "orders")
            .await
            .as_deref(),
        Some("orders-3")
    );
    assert_eq!(desired_of(&aws, "api").await, 4);
    assert_eq!(
        moto.invocations()[0]["event"],
        serde_json::json!({ "go": true })
    );
    crate::support::iam::assert_covered(&state);
}
