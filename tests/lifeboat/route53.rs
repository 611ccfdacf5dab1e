//! Route 53 actions against the emulator.

use std::time::Duration;

use lifeboat::actions::Registry;
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::route53::{Record, Rewrite, UpsertRecords};
use lifeboat::engine::{Actions, StepContext};
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
