//! Aurora global databases: the primary moved to a secondary cluster. The
//! emulator keeps global databases and their members but implements
//! neither `SwitchoverGlobalCluster` nor `FailoverGlobalCluster`: what
//! these tests show is the SDK boundary (the target resolved and checked,
//! the request sent once with the target's ARN, the emulator's refusal a
//! permanent error), the already-done and refused cases, the drill, and
//! the recovery point read from `AuroraGlobalDBRPOLag`, which the
//! emulator's guard publishes as RDS does.

use lifeboat::actions::Registry;
use lifeboat::aws::AwsClients;
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::rds::{
    FailoverGlobalCluster, SetServerlessCapacity, SwitchoverGlobalCluster,
};
use lifeboat::engine::{Actions, FailureKind, StepContext};
use lifeboat::runbook::{Mode, RecoveryPoint};

use crate::support::moto::Moto;
use crate::support::proxy::{Proxy, Rules};
use crate::support::step_context;

const DR: &str = "us-west-2";

fn ctx() -> StepContext {
    step_context("run-gdb", "database", DR)
}

/// A global database `orders` whose members are `first` (its writer) and
/// `second`, each `(cluster, region)`.
async fn global(aws: &AwsClients, first: (&str, &str), second: (&str, &str)) -> (String, String) {
    aws.rds("us-east-1")
        .create_global_cluster()
        .global_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .send()
        .await
        .expect("global cluster");
    let mut arns = Vec::new();
    for (i, (cluster, region)) in [first, second].into_iter().enumerate() {
        let mut create = aws
            .rds(region)
            .create_db_cluster()
            .db_cluster_identifier(cluster)
            .engine("aurora-postgresql")
            .global_cluster_identifier("orders");
        if i == 0 {
            create = create
                .master_username("admin")
                .master_user_password("not-a-real-password");
        }
        let out = create.send().await.expect("member cluster");
        arns.push(
            out.db_cluster()
                .and_then(|c| c.db_cluster_arn())
                .expect("ARN")
                .to_string(),
        );
    }
    (arns[0].clone(), arns[1].clone())
}

fn failover(target: &str) -> ActionInput {
    ActionInput::RdsFailoverGlobalCluster(FailoverGlobalCluster {
        global_cluster: "orders".into(),
        target_cluster: target.into(),
        allow_data_loss: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_failover_is_sent_once_to_the_secondary_and_the_emulators_refusal_is_permanent() {
    let moto = Moto::start();
    let (east, west) = global(
        &moto.clients().await,
        ("orders-east", "us-east-1"),
        ("orders-west", DR),
    )
    .await;
    let proxy = Proxy::start(&moto.endpoint(), Rules::default()).await;
    let aws = proxy.clients().await;
    let registry = Registry::with_aws(aws.clone());

    let err = registry
        .run(&ctx(), &failover("orders-west"))
        .await
        .expect_err("the emulator lacks FailoverGlobalCluster");
    assert_eq!(err.kind, FailureKind::Permanent, "{}", err.message);
    assert!(
        err.message
            .contains(&format!("FailoverGlobalCluster orders to {west}"))
            && err.message.contains("does not implement"),
        "{}",
        err.message
    );
    let sent: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.operation == "FailoverGlobalCluster")
        .collect();
    assert_eq!(sent.len(), 1, "sent once: {sent:?}");
    assert!(
        sent[0].resources.contains(&"orders".to_string()) && sent[0].resources.contains(&west),
        "the global database and the target's ARN: {:?}",
        sent[0].resources
    );

    // The same at the switchover's boundary.
    let switchover = ActionInput::RdsSwitchoverGlobalCluster(SwitchoverGlobalCluster {
        global_cluster: "orders".into(),
        target_cluster: west.clone(),
    });
    let err = registry
        .run(&ctx(), &switchover)
        .await
        .expect_err("lacking");
    assert!(
        err.message.contains("SwitchoverGlobalCluster orders to"),
        "{}",
        err.message
    );

    // Refused before any call: a cluster that is no member, a missing one.
    let before = proxy.requests().len();
    let stranger = format!("{}-x", east.replace("orders-east", "orders"));
    let err = registry
        .run(&ctx(), &failover(&stranger))
        .await
        .expect_err("not a member");
    assert!(
        err.message.starts_with(&format!(
            "{stranger} is not a member of global database orders"
        )),
        "{}",
        err.message
    );
    let err = registry
        .run(&ctx(), &failover("orders-nowhere"))
        .await
        .expect_err("no such cluster");
    assert_eq!(err.message, "no DB cluster orders-nowhere in us-west-2");
    assert!(
        proxy.requests()[before..]
            .iter()
            .all(|r| !r.operation.ends_with("GlobalCluster") || r.operation.starts_with("Describe")),
        "nothing moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_that_is_the_primary_already_needs_nothing_and_a_drill_moves_nothing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    // The DR cluster is the writer: an earlier failover's work.
    let (west, east) = global(&aws, ("orders-west", DR), ("orders-east", "us-east-1")).await;
    let registry = Registry::with_aws(aws.clone());
    let seeded = aws.calls().mutating();
    let out = registry
        .run(&ctx(), &failover("orders-west"))
        .await
        .expect("already primary");
    assert_eq!(out["moved"], false, "{out:?}");
    assert_eq!(out["writer"], serde_json::json!(west));
    assert_eq!(
        aws.calls().mutating(),
        seeded,
        "nothing called that changes"
    );

    // A drill says what it would do, and does nothing.
    let mut drill = step_context("run-gdb", "database", "us-east-1");
    drill.mode = Mode::Drill;
    let out = registry
        .run(&drill, &failover("orders-east"))
        .await
        .expect("drill");
    assert_eq!(out["simulated"], true);
    assert_eq!(
        out["drill"],
        serde_json::json!(format!(
            "would fail over (allowing data loss) global database orders from {west} to {east}"
        ))
    );
    assert_eq!(aws.calls().mutating(), seeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_point_is_the_secondarys_rpo_lag_before_the_incident() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    global(&aws, ("orders-east", "us-east-1"), ("orders-west", DR)).await;
    moto.set_replica_lag(DR, "orders-west", Some(2.5));
    // RDS's AuroraGlobalDBRPOLag is in milliseconds.
    for _ in 0..100 {
        let now = jiff::Timestamp::now().as_second();
        let points = aws
            .cloudwatch(DR)
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name("AuroraGlobalDBRPOLag")
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("DBClusterIdentifier")
                    .value("orders-west")
                    .build(),
            )
            .start_time(aws_smithy_types::DateTime::from_secs(now - 600))
            .end_time(aws_smithy_types::DateTime::from_secs(now + 60))
            .period(60)
            .statistics(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .send()
            .await
            .expect("metric");
        if points
            .datapoints()
            .iter()
            .any(|p| p.maximum() == Some(2500.0))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let registry = Registry::with_aws(aws.clone());
    let source = RecoveryPoint::AuroraGlobalLag {
        db_cluster: "orders-west".into(),
        region: None,
    };
    let incident = jiff::Timestamp::now();
    let reading = registry
        .read_recovery_point(&ctx(), Some(DR), &source, incident)
        .await;
    assert_eq!(reading.not_measurable, None, "{reading:?}");
    assert!(
        reading.how.starts_with(
            "CloudWatch AuroraGlobalDBRPOLag of orders-west in us-west-2 was 2.5 s at"
        ),
        "{reading:?}"
    );
    let at: jiff::Timestamp = reading.at.expect("a point").parse().expect("a time");
    assert!(at < incident, "the data was current to before the incident");

    // No datapoint (the writer has none): not measurable, and said why.
    let writer = RecoveryPoint::AuroraGlobalLag {
        db_cluster: "orders-east".into(),
        region: Some("us-east-1".into()),
    };
    let reading = registry
        .read_recovery_point(&ctx(), Some(DR), &writer, incident)
        .await;
    assert!(
        reading
            .not_measurable
            .as_deref()
            .is_some_and(|w| w.contains("no AuroraGlobalDBRPOLag datapoint of orders-east")),
        "{reading:?}"
    );
}

#[test]
fn a_global_failover_must_say_it_allows_data_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gdb.yaml");
    std::fs::write(
        &file,
        "name: gdb
strategy: pilot-light
regions: { from: us-east-1, to: us-west-2 }
recovery_point: { from: aurora.global_lag, db_cluster: orders-west }
steps:
  - id: database
    action: rds.failover_global_cluster
    with: { global_cluster: orders, target_cluster: orders-west, allow_data_loss: false }
",
    )
    .expect("write");
    let out = crate::support::lifeboat(
        &dir.path().join("state"),
        &["validate", file.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        crate::support::text(&out.stderr)
            .contains("`allow_data_loss` must be `true`: a failover gives up what the secondary has not received"),
        "{}",
        crate::support::text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serverless_cluster_is_warmed_up_once_and_a_drill_changes_nothing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    aws.rds(DR)
        .create_db_cluster()
        .db_cluster_identifier("orders-west")
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .serverless_v2_scaling_configuration(
            aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                .min_capacity(0.5)
                .max_capacity(4.0)
                .build(),
        )
        .send()
        .await
        .expect("cluster");
    let registry = Registry::with_aws(aws.clone());
    let warm = ActionInput::RdsSetServerlessCapacity(SetServerlessCapacity {
        db_cluster: "orders-west".into(),
        min_acu: 8.0,
        max_acu: 64.0,
    });

    let mut drill = ctx();
    drill.mode = Mode::Drill;
    let seeded = aws.calls().mutating();
    let out = registry.run(&drill, &warm).await.expect("drill");
    assert_eq!(
        out["drill"],
        "would set DB cluster orders-west to 8-64 ACUs (now 0.5-4 ACUs)"
    );
    assert_eq!(aws.calls().mutating(), seeded, "a drill changes nothing");

    let out = registry.run(&ctx(), &warm).await.expect("warm up");
    assert_eq!(out["changed"], true, "{out:?}");
    assert_eq!(out["previous"], "0.5-4 ACUs");
    let range = aws
        .rds(DR)
        .describe_db_clusters()
        .db_cluster_identifier("orders-west")
        .send()
        .await
        .expect("describe")
        .db_clusters()[0]
        .serverless_v2_scaling_configuration()
        .map(|s| (s.min_capacity(), s.max_capacity()));
    assert_eq!(range, Some((Some(8.0), Some(64.0))));
    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &warm).await.expect("again");
    assert_eq!(again["changed"], false);
    assert_eq!(aws.calls().mutating(), before, "at its range already");

    let missing = ActionInput::RdsSetServerlessCapacity(SetServerlessCapacity {
        db_cluster: "nope".into(),
        min_acu: 8.0,
        max_acu: 64.0,
    });
    let err = registry
        .run(&ctx(), &missing)
        .await
        .expect_err("no cluster");
    assert_eq!(err.message, "no DB cluster nope in us-west-2");
}
