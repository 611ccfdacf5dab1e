//! RDS actions against the emulator.

use lifeboat::actions::Registry;
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::rds::{PromoteReadReplica, WaitAvailable};
use lifeboat::engine::{Actions, FailureKind, StepContext};

use crate::support::moto::Moto;
use crate::support::step_context;

fn ctx() -> StepContext {
    step_context("run-7", "promote-db", "us-west-2")
}

fn promote(select: impl FnOnce(&mut PromoteReadReplica)) -> ActionInput {
    let mut w = PromoteReadReplica {
        db_instance: None,
        db_instances: None,
        tags: None,
        replicas_of: None,
        backup_retention_days: Some(7),
    };
    select(&mut w);
    ActionInput::RdsPromoteReadReplica(w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_promotes_once_and_a_second_run_changes_nothing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let registry = Registry::with_aws(aws.clone());
    let input = promote(|w| w.db_instance = Some("app-db-replica".into()));

    let out = registry.run(&ctx(), &input).await.expect("promote");
    assert_eq!(out["promoted"], serde_json::json!(["app-db-replica"]));
    assert!(
        out["endpoint"].as_str().is_some_and(|e| !e.is_empty()),
        "{out:?}"
    );
    let db = crate::support::seed::db(&aws, "us-west-2", "app-db-replica")
        .await
        .expect("the replica");
    // moto applies the retention only while the instance is a replica: it proves the call.
    assert_eq!(db.backup_retention_period(), Some(7));
    assert_eq!(
        db.read_replica_source_db_instance_identifier(),
        None,
        "a replica no more"
    );
    assert_eq!(
        aws.calls().mutating().get("RDS.PromoteReadReplica"),
        Some(&1)
    );

    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &input).await.expect("promote again");
    assert_eq!(again["promoted"], serde_json::json!([]));
    assert_eq!(
        aws.calls().mutating(),
        before,
        "already promoted: no mutating call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_selected_by_tag_or_source() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db-0", "app-db-0-replica").await;
    crate::support::seed::primary_and_replica(&aws, "app-db-1", "app-db-1-replica").await;
    let registry = Registry::with_aws(aws.clone());

    let by_source = promote(|w| w.replicas_of = Some("app-db-1".into()));
    let out = registry
        .run(&ctx(), &by_source)
        .await
        .expect("promote replicas of app-db-1");
    assert_eq!(out["promoted"], serde_json::json!(["app-db-1-replica"]));

    let by_tag =
        promote(|w| w.tags = Some([("dr-role".to_string(), "replica".to_string())].into()));
    let out = registry.run(&ctx(), &by_tag).await.expect("promote by tag");
    assert_eq!(
        out["promoted"],
        serde_json::json!(["app-db-0-replica"]),
        "app-db-1-replica was promoted already"
    );
    assert_eq!(
        aws.calls().mutating().get("RDS.PromoteReadReplica"),
        Some(&2)
    );

    let wait = ActionInput::RdsWaitAvailable(WaitAvailable {
        db_instance: None,
        db_instances: Some(vec!["app-db-0-replica".into(), "app-db-1-replica".into()]),
        tags: None,
    });
    registry.run(&ctx(), &wait).await.expect("both available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_replica_is_a_permanent_error_naming_it() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let registry = Registry::with_aws(aws.clone());
    let err = registry
        .run(
            &ctx(),
            &promote(|w| w.db_instance = Some("nope-replica".into())),
        )
        .await
        .expect_err("no such instance");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert_eq!(err.message, "no DB instance nope-replica in us-west-2");
    let err = registry
        .run(&ctx(), &promote(|w| w.replicas_of = Some("ghost".into())))
        .await
        .expect_err("no replicas");
    assert_eq!(err.message, "no read replicas of ghost in us-west-2");
    assert!(aws.calls().mutating().is_empty());
}
