//! Route 53 actions against the emulator.

use lifeboat::actions::{Readiness, Registry};
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::route53::{
    Alias, Record, Rewrite, SetWeights, SwitchFailover, UpdateHealthCheck, UpsertRecords,
};
use lifeboat::engine::{Actions, FailureKind, StepContext};
use lifeboat::runbook::Mode;

use crate::support::moto::Moto;
use crate::support::step_context;

fn ctx() -> StepContext {
    step_context("run-1", "switch-dns", "us-east-1")
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
    let zone = crate::support::seed::zone(&aws, "example.com", &records).await;
    let registry = Registry::with_aws(aws.clone());
    let input = ActionInput::Route53UpsertRecords(UpsertRecords {
        zone: "example.com".into(),
        records: None,
        rewrite: Some(Rewrite {
            name_pattern: "svc-*.example.com".into(),
            record_type: "A".into(),
            replace: "192.0.2.".into(),
            with: "198.51.100.".into(),
            alias_zone_id: None,
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
        crate::support::seed::a_record(&aws, &zone, "svc-7.example.com").await,
        vec!["198.51.100.8"]
    );
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "legacy.example.com").await,
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
    let zone = crate::support::seed::zone(
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
                ..Record::default()
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
        crate::support::seed::a_record(&aws, &zone, "app.example.com").await,
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
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::failover_pair(&aws, &zone, "app.example.com").await;
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
        crate::support::seed::failover_roles(&aws, &zone, "app.example.com").await,
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

fn set_weights(weights: &[(&str, u32)]) -> ActionInput {
    ActionInput::Route53SetWeights(SetWeights {
        zone: "example.com".into(),
        name: "app.example.com".into(),
        record_type: "A".into(),
        weights: weights.iter().map(|(id, w)| (id.to_string(), *w)).collect(),
        wait_insync: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_set_once_only_where_they_differ_and_never_all_to_zero() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::weighted(
        &aws,
        &zone,
        "app.example.com",
        &[
            ("us-east-1", 50, "192.0.2.10"),
            ("us-west-2", 50, "198.51.100.10"),
            ("eu-west-1", 0, "203.0.113.10"),
        ],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let drain = set_weights(&[("us-east-1", 0), ("us-west-2", 100)]);
    assert!(matches!(
        registry.preflight(&ctx(), &drain, &[]).await,
        Readiness::Ready(m) if m.contains("eu-west-1=0, us-east-1=0, us-west-2=100 after; 2 would change")
    ));

    // Do: both named sets change, in one batch; the one not named keeps 0.
    let before = aws.calls().mutating();
    let out = registry.run(&ctx(), &drain).await.expect("set weights");
    assert_eq!(
        out["changed"],
        serde_json::json!(["us-east-1", "us-west-2"])
    );
    assert_eq!(out["weights"]["us-west-2"], 100);
    let after = aws.calls().mutating();
    let batches = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .filter(|(op, _)| op.contains("ChangeResourceRecordSets"))
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    assert_eq!(
        batches(&after) - batches(&before),
        1,
        "one change batch: {after:?}"
    );
    assert_eq!(
        crate::support::seed::weights(&aws, &zone, "app.example.com").await,
        vec![
            ("eu-west-1".to_string(), 0),
            ("us-east-1".to_string(), 0),
            ("us-west-2".to_string(), 100),
        ]
    );
    // Done already: nothing written.
    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &drain).await.expect("again");
    assert_eq!(again["changed"], serde_json::json!([]));
    assert_eq!(
        aws.calls().mutating(),
        before,
        "the weights are set: no change"
    );
    // Only what differs: restoring one set writes that one.
    let out = registry
        .run(
            &ctx(),
            &set_weights(&[("us-east-1", 50), ("us-west-2", 100)]),
        )
        .await
        .expect("restore");
    assert_eq!(out["changed"], serde_json::json!(["us-east-1"]));

    // A set the group does not have: named, nothing written.
    let err = registry
        .run(&ctx(), &set_weights(&[("ap-south-1", 10)]))
        .await
        .expect_err("no such set");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert_eq!(
        err.message,
        "no weighted A record app.example.com with set identifier `ap-south-1` in example.com (its weighted sets: eu-west-1, us-east-1, us-west-2)"
    );
    // All to 0 would send traffic everywhere alike: refused.
    let before = aws.calls().mutating();
    let err = registry
        .run(&ctx(), &set_weights(&[("us-east-1", 0), ("us-west-2", 0)]))
        .await
        .expect_err("all zero");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message.contains("routing to all of them alike"),
        "{}",
        err.message
    );
    assert_eq!(aws.calls().mutating(), before);
    assert!(matches!(
        registry
            .preflight(
                &ctx(),
                &set_weights(&[("us-east-1", 0), ("us-west-2", 0)]),
                &[]
            )
            .await,
        Readiness::WouldFail(_)
    ));

    // A drill writes a copy with the new weights; the live sets keep theirs.
    let live = crate::support::seed::weights(&aws, &zone, "app.example.com").await;
    let mut drill = ctx();
    drill.mode = Mode::Drill;
    drill.run_id = "20261204T100000-0001".into();
    let out = registry.run(&drill, &drain).await.expect("drill");
    assert!(
        out["drill"]
            .as_str()
            .is_some_and(|d| d.contains("the live sets kept theirs")),
        "{out:?}"
    );
    let copy = format!("drill-{}.app.example.com", drill.run_id).to_ascii_lowercase();
    assert_eq!(
        crate::support::seed::weights(&aws, &zone, &copy).await,
        vec![
            ("eu-west-1".to_string(), 0),
            ("us-east-1".to_string(), 0),
            ("us-west-2".to_string(), 100),
        ]
    );
    assert_eq!(
        crate::support::seed::weights(&aws, &zone, "app.example.com").await,
        live
    );
    let regions = ["us-east-1".to_string()].into_iter().collect();
    let which = lifeboat::actions::drill::Which::Run(drill.run_id.clone());
    let t = lifeboat::actions::drill::teardown(&aws, &regions, &which).await;
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert!(
        crate::support::seed::weights(&aws, &zone, &copy)
            .await
            .is_empty()
    );
    assert_eq!(
        crate::support::seed::weights(&aws, &zone, "app.example.com").await,
        live
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_is_inverted_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    let check = crate::support::seed::failover_pair(&aws, &zone, "app.example.com").await;
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
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::failover_pair(&aws, &zone, "app.example.com").await;
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
            ..Record::default()
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
            && err.message.contains("failover set `primary`"),
        "{err}"
    );
    assert_eq!(aws.calls().mutating(), before, "nothing sent");
    assert!(matches!(
        registry.preflight(&ctx(), &input, &[]).await,
        Readiness::WouldFail(m) if m.contains("beside routed sets")
    ));
    assert_eq!(
        crate::support::seed::failover_roles(&aws, &zone, "app.example.com")
            .await
            .len(),
        2
    );
}

/// Every record set of `name` in the zone, by set identifier ("" for none).
async fn sets_of(
    aws: &lifeboat::aws::AwsClients,
    zone: &str,
    name: &str,
) -> Vec<aws_sdk_route53::types::ResourceRecordSet> {
    let out = aws
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("list records");
    let mut sets: Vec<_> = out
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == name)
        .cloned()
        .collect();
    sets.sort_by(|a, b| a.set_identifier().cmp(&b.set_identifier()));
    sets
}

fn upsert(records: Vec<Record>) -> ActionInput {
    ActionInput::Route53UpsertRecords(UpsertRecords {
        zone: "example.com".into(),
        records: Some(records),
        rewrite: None,
        wait_insync: true,
    })
}

fn alias(dns_name: &str, zone_id: &str) -> Option<Alias> {
    Some(Alias {
        dns_name: dns_name.into(),
        zone_id: zone_id.into(),
        evaluate_target_health: true,
    })
}

/// The canonical hosted zones of Application Load Balancers in two regions.
const ALB_ZONE_EAST: &str = "Z35SXDOTRQ7X7K";
const ALB_ZONE_WEST: &str = "Z1H1FL5HABSF5";

/// Behind a load balancer DNS failover moves an alias target: written as an
/// alias, moved by a rewrite (target and its zone; evaluate-target-health
/// kept), never turned into fixed addresses, and an alias to a record of
/// the zone that does not exist is refused as Route 53 refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_records_are_written_and_moved_never_turned_into_addresses() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(
        &aws,
        "example.com",
        &[("dr-origin.example.com".into(), "198.51.100.7".into())],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let to_alb = upsert(vec![Record {
        name: "app.example.com".into(),
        record_type: "A".into(),
        alias: alias("primary-alb-1.us-east-1.elb.amazonaws.com", ALB_ZONE_EAST),
        ..Record::default()
    }]);
    let out = registry.run(&ctx(), &to_alb).await.expect("alias upsert");
    assert_eq!(out["changed"], 1);
    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &to_alb).await.expect("again");
    assert_eq!(again["changed"], 0, "the alias is there already");
    assert_eq!(aws.calls().mutating(), before);

    let rewrite = ActionInput::Route53UpsertRecords(UpsertRecords {
        zone: "example.com".into(),
        records: None,
        rewrite: Some(Rewrite {
            name_pattern: "app.example.com".into(),
            record_type: "A".into(),
            replace: "primary-alb-1.us-east-1".into(),
            with: "dr-alb-2.us-west-2".into(),
            alias_zone_id: Some(ALB_ZONE_WEST.into()),
        }),
        wait_insync: true,
    });
    let out = registry.run(&ctx(), &rewrite).await.expect("rewrite");
    assert_eq!(out["changed"], 1);
    let sets = sets_of(&aws, &zone, "app.example.com").await;
    assert_eq!(sets.len(), 1);
    let target = sets[0].alias_target().expect("still an alias");
    assert_eq!(
        target.dns_name().trim_end_matches('.'),
        "dr-alb-2.us-west-2.elb.amazonaws.com"
    );
    assert_eq!(target.hosted_zone_id(), ALB_ZONE_WEST);
    assert!(target.evaluate_target_health(), "kept");
    assert!(sets[0].resource_records().is_empty() && sets[0].ttl().is_none());

    let before = aws.calls().mutating();
    let to_address = upsert(vec![Record {
        name: "app.example.com".into(),
        record_type: "A".into(),
        values: vec!["198.51.100.7".into()],
        ..Record::default()
    }]);
    let err = registry
        .run(&ctx(), &to_address)
        .await
        .expect_err("an alias is not overwritten with addresses");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .contains("record app.example.com A in example.com")
            && err.message.contains("alias to dr-alb-2.us-west-2"),
        "{err}"
    );
    assert!(matches!(
        registry.preflight(&ctx(), &to_address, &[]).await,
        Readiness::WouldFail(m) if m.contains("fixed addresses")
    ));
    assert_eq!(aws.calls().mutating(), before, "nothing sent");

    // An alias to another record of the zone: Route 53 wants the target.
    let in_zone = |target: &str| {
        upsert(vec![Record {
            name: "www.example.com".into(),
            record_type: "A".into(),
            alias: alias(target, &zone),
            ..Record::default()
        }])
    };
    let err = registry
        .run(&ctx(), &in_zone("nowhere.example.com"))
        .await
        .expect_err("Route 53 refuses an alias to nothing");
    assert!(err.message.contains("that target was not found"), "{err}");
    registry
        .run(&ctx(), &in_zone("dr-origin.example.com"))
        .await
        .expect("an alias to a record that exists");
    let www = sets_of(&aws, &zone, "www.example.com").await;
    assert_eq!(
        www[0].alias_target().map(|a| a.hosted_zone_id()),
        Some(zone.as_str())
    );
}

/// Weighted sets are named by set identifier; what a record leaves out
/// (its weight, its health check) is kept, a rewrite keeps every field but
/// the values, and Route 53's rules (one routing policy per name and type,
/// no simple record beside routed ones) are refused before it is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_records_are_named_by_set_identifier_and_keep_what_they_leave_out() {
    use aws_sdk_route53::types::ResourceRecordSetRegion;
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    let check = crate::support::seed::failover_pair(&aws, &zone, "other.example.com").await;
    let registry = Registry::with_aws(aws.clone());
    let weighted = |id: &str, weight: u8, value: &str| Record {
        name: "app.example.com".into(),
        record_type: "A".into(),
        values: vec![value.into()],
        set_identifier: Some(id.into()),
        weight: Some(weight),
        ..Record::default()
    };
    let mut east = weighted("us-east-1", 100, "192.0.2.10");
    east.health_check_id = Some(check.clone());
    let out = registry
        .run(
            &ctx(),
            &upsert(vec![east, weighted("us-west-2", 0, "198.51.100.10")]),
        )
        .await
        .expect("weighted sets");
    assert_eq!(out["changed"], 2);

    // A set named without its routing keeps its weight and health check.
    let out = registry
        .run(
            &ctx(),
            &upsert(vec![Record {
                name: "app.example.com".into(),
                record_type: "A".into(),
                values: vec!["192.0.2.11".into()],
                set_identifier: Some("us-east-1".into()),
                ..Record::default()
            }]),
        )
        .await
        .expect("new target for one set");
    assert_eq!(out["changed"], 1);
    let sets = sets_of(&aws, &zone, "app.example.com").await;
    assert_eq!(sets[0].set_identifier(), Some("us-east-1"));
    assert_eq!(sets[0].weight(), Some(100));
    assert_eq!(sets[0].health_check_id(), Some(check.as_str()));
    assert_eq!(sets[0].resource_records()[0].value(), "192.0.2.11");

    // A rewrite matches routed sets and keeps weights and health check.
    let rewrite = ActionInput::Route53UpsertRecords(UpsertRecords {
        zone: "example.com".into(),
        records: None,
        rewrite: Some(Rewrite {
            name_pattern: "app.example.com".into(),
            record_type: "A".into(),
            replace: "192.0.2.".into(),
            with: "203.0.113.".into(),
            alias_zone_id: None,
        }),
        wait_insync: true,
    });
    let out = registry.run(&ctx(), &rewrite).await.expect("rewrite");
    assert_eq!(out["changed"], 1, "only the set whose values match");
    let sets = sets_of(&aws, &zone, "app.example.com").await;
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].resource_records()[0].value(), "203.0.113.11");
    assert_eq!(
        (sets[0].weight(), sets[0].health_check_id()),
        (Some(100), Some(check.as_str()))
    );
    assert_eq!(
        (sets[1].weight(), sets[1].resource_records()[0].value()),
        (Some(0), "198.51.100.10")
    );

    let before = aws.calls().mutating();
    let refusals = [
        (
            Record {
                name: "app.example.com".into(),
                record_type: "A".into(),
                values: vec!["192.0.2.99".into()],
                ..Record::default()
            },
            "weighted set `us-east-1`",
        ),
        (
            Record {
                name: "app.example.com".into(),
                record_type: "A".into(),
                values: vec!["192.0.2.99".into()],
                set_identifier: Some("eu-west-1".into()),
                region: Some("eu-west-1".into()),
                ..Record::default()
            },
            "set `eu-west-1` would be latency",
        ),
        (
            Record {
                name: "app.example.com".into(),
                record_type: "A".into(),
                values: vec!["192.0.2.99".into()],
                set_identifier: Some("eu-west-1".into()),
                ..Record::default()
            },
            "the zone has no set `eu-west-1`; give its routing",
        ),
    ];
    for (record, said) in refusals {
        let input = upsert(vec![record]);
        let err = registry.run(&ctx(), &input).await.expect_err(said);
        assert!(
            err.message
                .starts_with("record app.example.com A in example.com: ")
                && err.message.contains(said),
            "{err}"
        );
        assert!(matches!(
            registry.preflight(&ctx(), &input, &[]).await,
            Readiness::WouldFail(m) if m.contains(said)
        ));
    }
    assert_eq!(aws.calls().mutating(), before, "nothing sent");

    // Route 53 itself (played by the emulator's guard) refuses a latency
    // set beside weighted ones, which moto alone accepts.
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let latency = ResourceRecordSet::builder()
        .name("app.example.com")
        .r#type(RrType::A)
        .ttl(60)
        .set_identifier("eu-west-1")
        .region(ResourceRecordSetRegion::EuWest1)
        .resource_records(
            ResourceRecord::builder()
                .value("192.0.2.1")
                .build()
                .expect("valid"),
        )
        .build()
        .expect("valid");
    let refused = aws
        .route53()
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(latency)
                        .build()
                        .expect("valid"),
                )
                .build()
                .expect("valid"),
        )
        .send()
        .await
        .expect_err("one routing policy per name and type");
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("InvalidChangeBatch")
    );
}

/// A drill writes routed sets under its own name with the live set
/// identifiers; its teardown deletes exactly those (moto alone deletes
/// every set of that identifier in the zone, the live ones too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_routed_records_is_torn_down_without_touching_the_live_sets() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::failover_pair(&aws, &zone, "app.example.com").await;
    let live = sets_of(&aws, &zone, "app.example.com").await;
    assert_eq!(live.len(), 2);
    let registry = Registry::with_aws(aws.clone());
    let mut drill = ctx();
    drill.mode = Mode::Drill;
    drill.run_id = "20261201T100000-0001".into();
    let input = upsert(vec![Record {
        name: "app.example.com".into(),
        record_type: "A".into(),
        values: vec!["198.51.100.99".into()],
        set_identifier: Some("dr".into()),
        ..Record::default()
    }]);
    let out = registry.run(&drill, &input).await.expect("drill upsert");
    assert_eq!(out["changed"], 1);
    let copy = format!("drill-{}.app.example.com", drill.run_id).to_ascii_lowercase();
    let written = sets_of(&aws, &zone, &copy).await;
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].set_identifier(), Some("dr"));
    assert_eq!(
        sets_of(&aws, &zone, "app.example.com").await,
        live,
        "the live pair is untouched by the drill"
    );

    let regions = ["us-east-1".to_string()].into_iter().collect();
    let which = lifeboat::actions::drill::Which::Run(drill.run_id.clone());
    let t = lifeboat::actions::drill::teardown(&aws, &regions, &which).await;
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert!(
        t.removed.iter().any(|r| r.contains("(set `dr`)")),
        "{:?}",
        t.removed
    );
    assert!(sets_of(&aws, &zone, &copy).await.is_empty());
    assert_eq!(
        sets_of(&aws, &zone, "app.example.com").await,
        live,
        "the teardown deleted only the drill's set"
    );
}
