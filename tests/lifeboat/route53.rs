//! Route 53 actions against the emulator.

use std::time::Duration;

use lifeboat::actions::{Readiness, Registry};
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::route53::{
    Record, Rewrite, SwitchFailover, UpdateHealthCheck, UpsertRecords,
};
use lifeboat::engine::{Actions, FailureKind, StepContext};
use lifeboat::runbook::Mode;

use crate::moto::Moto;

fn ctx() -> StepContext {
    StepContext {
        run_id: "run-1".into(),
        step_id: "switch-dns".into(),
        mode: Mode::Failover,
        region: Some("us-east-1".into()),
        attempt: 1,
        resumed: false,
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        assume_role: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_moves_every_matching_record_in_few_batches_and_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let mut records: Vec<(String, String)> = (0..1200)
        .map(|j| {
            (
                format!("svc-{j}.example.com"),
                format!("192.0.2.{}", j % 250 + 1),
            )
        })
        .collect();
    records.push(("legacy.example.com".into(), "192.0.2.254".into()));
    let zone = crate::seed::zone(&aws, "example.com", &records).await;
    let registry = Registry::with_aws(aws.clone());
    let input = ActionInput::Route53UpsertRecords(UpsertRecords {
        zone: "example.com".into(),
        records: None,
        rewrite: Some(Rewrite {
            name_pattern: "svc-*.example.com".into(),
            record_type: "A".into(),
            replace: "192.0.2.".into(),
            with: "198.51.100.".into(),
        }),
        wait_insync: true,
    });
    let before = aws
        .calls()
        .snapshot()
        .get("Route 53.ChangeResourceRecordSets")
        .copied()
        .unwrap_or(0);
    let out = registry.run(&ctx(), &input).await.expect("rewrite");
    assert_eq!(out["changed"], 1200);
    let calls = aws.calls().snapshot();
    let batches = calls
        .iter()
        .filter(|(k, _)| k.ends_with(".ChangeResourceRecordSets"))
        .map(|(_, v)| *v)
        .sum::<u64>()
        - before;
    // An UPSERT counts each value twice against Route 53's 1,000 a call.
    assert_eq!(
        batches, 3,
        "1,200 single-value UPSERTs take three calls: {calls:?}"
    );
    assert_eq!(
        crate::seed::a_record(&aws, &zone, "svc-7.example.com").await,
        vec!["198.51.100.8"]
    );
    assert_eq!(
        crate::seed::a_record(&aws, &zone, "legacy.example.com").await,
        vec!["192.0.2.254"],
        "the decoy is left alone"
    );

    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &input).await.expect("rewrite again");
    assert_eq!(again["changed"], 0);
    assert_eq!(
        aws.calls().mutating(),
        before,
        "nothing left to change: no call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_records_are_upserted_and_a_missing_zone_is_named() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::seed::zone(
        &aws,
        "example.com",
        &[("app.example.com".into(), "192.0.2.10".into())],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let upsert = |zone: &str| {
        ActionInput::Route53UpsertRecords(UpsertRecords {
            zone: zone.into(),
            records: Some(vec![Record {
                name: "app.example.com".into(),
                record_type: "A".into(),
                ttl: Some(60),
                values: vec!["198.51.100.10".into()],
            }]),
            rewrite: None,
            wait_insync: true,
        })
    };
    let out = registry
        .run(&ctx(), &upsert("example.com"))
        .await
        .expect("upsert");
    assert_eq!(out["changed"], 1);
    assert_eq!(
        crate::seed::a_record(&aws, &zone, "app.example.com").await,
        vec!["198.51.100.10"]
    );
    let err = registry
        .run(&ctx(), &upsert("example.org"))
        .await
        .expect_err("no such zone");
    assert_eq!(err.message, "no hosted zone example.org.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_failover_swaps_the_pair_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::seed::zone(&aws, "example.com", &[]).await;
    crate::seed::failover_pair(&aws, &zone, "app.example.com").await;
    let registry = Registry::with_aws(aws.clone());
    let switch = |primary: &str| {
        ActionInput::Route53SwitchFailover(SwitchFailover {
            zone: "example.com".into(),
            name: "app.example.com".into(),
            record_type: "A".into(),
            make_primary: primary.into(),
            wait_insync: true,
        })
    };
    assert!(matches!(
        registry.preflight(&ctx(), &switch("dr"), &[]).await,
        Readiness::Ready(m) if m.contains("`dr` is SECONDARY now")
    ));
    let out = registry.run(&ctx(), &switch("dr")).await.expect("switch");
    assert_eq!(out["switched"], true);
    assert_eq!(
        crate::seed::failover_roles(&aws, &zone, "app.example.com").await,
        vec![
            ("dr".to_string(), "PRIMARY".to_string()),
            ("primary".to_string(), "SECONDARY".to_string())
        ]
    );
    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &switch("dr")).await.expect("again");
    assert_eq!(again["switched"], false);
    assert_eq!(
        aws.calls().mutating(),
        before,
        "switched already: no change"
    );

    let err = registry
        .run(&ctx(), &switch("west"))
        .await
        .expect_err("no such set");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert_eq!(
        err.message,
        "no failover A record app.example.com with set identifier `west` in example.com"
    );
    assert!(matches!(
        registry.preflight(&ctx(), &switch("west"), &[]).await,
        Readiness::WouldFail(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_is_inverted_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::seed::zone(&aws, "example.com", &[]).await;
    let check = crate::seed::failover_pair(&aws, &zone, "app.example.com").await;
    let registry = Registry::with_aws(aws.clone());
    let invert = |id: &str| {
        ActionInput::Route53UpdateHealthCheck(UpdateHealthCheck {
            health_check_id: id.into(),
            inverted: Some(true),
            disabled: None,
        })
    };
    let out = registry.run(&ctx(), &invert(&check)).await.expect("invert");
    assert_eq!(out["changed"], true);
    let now = aws
        .route53()
        .get_health_check()
        .health_check_id(&check)
        .send()
        .await
        .expect("get");
    assert_eq!(
        now.health_check()
            .and_then(|h| h.health_check_config())
            .and_then(|c| c.inverted()),
        Some(true)
    );
    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &invert(&check)).await.expect("again");
    assert_eq!(again["changed"], false);
    assert_eq!(aws.calls().mutating(), before);

    let err = registry
        .run(&ctx(), &invert("00000000-0000-0000-0000-000000000000"))
        .await
        .expect_err("no such check");
    assert_eq!(
        err.message,
        "no health check 00000000-0000-0000-0000-000000000000"
    );
}

/// Route 53 refuses a simple record beside a failover pair of the same
/// name and type (the emulator's guard plays that rule, which moto lacks),
/// and `upsert_records` refuses it first, naming the record, changing
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_record_over_a_failover_pair_is_refused_by_route53_and_before_it() {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::seed::zone(&aws, "example.com", &[]).await;
    crate::seed::failover_pair(&aws, &zone, "app.example.com").await;
    let plain = ResourceRecordSet::builder()
        .name("app.example.com")
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder()
                .value("192.0.2.99")
                .build()
                .expect("record"),
        )
        .build()
        .expect("set");
    let refused = aws
        .route53()
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(plain)
                        .build()
                        .expect("change"),
                )
                .build()
                .expect("batch"),
        )
        .send()
        .await
        .expect_err("Route 53 refuses it");
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("InvalidChangeBatch"),
        "{refused:?}"
    );

    let registry = Registry::with_aws(aws.clone());
    let input = ActionInput::Route53UpsertRecords(UpsertRecords {
        zone: "example.com".into(),
        records: Some(vec![Record {
            name: "app.example.com".into(),
            record_type: "A".into(),
            ttl: None,
            values: vec!["192.0.2.99".into()],
        }]),
        rewrite: None,
        wait_insync: true,
    });
    let before = aws.calls().mutating();
    let err = registry.run(&ctx(), &input).await.expect_err("refused");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .contains("record app.example.com A in example.com")
            && err.message.contains("routed set `primary`"),
        "{err}"
    );
    assert_eq!(aws.calls().mutating(), before, "nothing sent");
    assert!(matches!(
        registry.preflight(&ctx(), &input, &[]).await,
        Readiness::WouldFail(m) if m.contains("routed set")
    ));
    assert_eq!(
        crate::seed::failover_roles(&aws, &zone, "app.example.com")
            .await
            .len(),
        2
    );
}
