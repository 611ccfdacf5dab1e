//! The multi-AZ rung: a Multi-AZ instance's forced failover and a DB
//! cluster's failover, each done once, already done, refused where AWS
//! refuses, and simulated in a drill.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat::actions::Registry;
use lifeboat::aws::AwsClients;
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::arc::{CancelZonalShift, StartZonalShift};
use lifeboat::catalogue::rds::{FailoverCluster, FailoverInstance};
use lifeboat::duration::HumanDuration;
use lifeboat::engine::{Actions, FailureKind, StepContext};
use lifeboat::runbook::Mode;

use crate::support::moto::Moto;
use crate::support::proxy::{Proxy, Rules};
use crate::support::seed;
use crate::support::step_context;

const REGION: &str = "us-west-2";

fn ctx() -> StepContext {
    step_context("run-az", "fail-over-db", REGION)
}

fn instance(from_zone: &str) -> ActionInput {
    ActionInput::RdsFailoverInstance(FailoverInstance {
        db_instance: "orders-db".into(),
        from_zone: from_zone.into(),
    })
}

fn cluster(target: Option<&str>, from_zone: Option<&str>) -> ActionInput {
    ActionInput::RdsFailoverCluster(FailoverCluster {
        db_cluster: "orders".into(),
        target_instance: target.map(str::to_string),
        from_zone: from_zone.map(str::to_string),
    })
}

async fn zone_of(aws: &AwsClients, id: &str) -> String {
    seed::db(aws, REGION, id)
        .await
        .and_then(|db| db.availability_zone().map(str::to_string))
        .expect("the instance's zone")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_az_failover_moves_the_primary_out_of_the_zone_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    seed::multi_az_db(&aws, REGION, "orders-db").await;
    assert_eq!(zone_of(&aws, "orders-db").await, "us-west-2a");
    let registry = Registry::with_aws(aws.clone());

    let out = registry
        .run(&ctx(), &instance("us-west-2a"))
        .await
        .expect("fail over");
    assert_eq!(out["failed_over"], true, "{out:?}");
    assert_eq!(out["availability_zone"], "us-west-2b");
    assert_eq!(out["secondary_availability_zone"], "us-west-2a");
    assert_eq!(zone_of(&aws, "orders-db").await, "us-west-2b");
    assert_eq!(aws.calls().mutating().get("RDS.RebootDBInstance"), Some(&1));

    // Out of the zone already: a second run must not fail it back into it.
    let before = aws.calls().mutating();
    let again = registry
        .run(&ctx(), &instance("us-west-2a"))
        .await
        .expect("again");
    assert_eq!(again["failed_over"], false);
    assert_eq!(aws.calls().mutating(), before, "no second reboot");
    assert_eq!(zone_of(&aws, "orders-db").await, "us-west-2b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_a_standby_or_missing_is_refused_and_nothing_changes() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    seed::single_az_db(&aws, REGION, "orders-db", "us-west-2a").await;
    let registry = Registry::with_aws(aws.clone());
    let seeded = aws.calls().mutating();

    let err = registry
        .run(&ctx(), &instance("us-west-2a"))
        .await
        .expect_err("no standby");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .contains("orders-db in us-west-2 is not Multi-AZ: it has no standby"),
        "{}",
        err.message
    );
    let missing = ActionInput::RdsFailoverInstance(FailoverInstance {
        db_instance: "ghost-db".into(),
        from_zone: "us-west-2a".into(),
    });
    let err = registry
        .run(&ctx(), &missing)
        .await
        .expect_err("no instance");
    assert_eq!(err.message, "no DB instance ghost-db in us-west-2");
    assert_eq!(aws.calls().mutating(), seeded, "nothing was called");

    // What RDS answers a forced failover of a single-AZ instance (the
    // emulator's guard plays it; moto ignores `ForceFailover`).
    let refused = aws
        .rds(REGION)
        .reboot_db_instance()
        .db_instance_identifier("orders-db")
        .force_failover(true)
        .send()
        .await
        .expect_err("refused");
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&refused),
        Some("InvalidParameterCombination")
    );
    assert_eq!(zone_of(&aws, "orders-db").await, "us-west-2a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_interrupted_while_rebooting_resumes_without_a_second_reboot() {
    let moto = Moto::start();
    seed::multi_az_db(&moto.clients().await, REGION, "orders-db").await;
    // RDS shows `rebooting` for a while after the call; the proxy plays it.
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            transitions: BTreeMap::from([(
                "RebootDBInstance".to_string(),
                ("rebooting".to_string(), Duration::from_secs(3)),
            )]),
            ..Rules::default()
        },
    )
    .await;
    let aws = proxy.clients().await;
    let registry = Registry::with_aws(aws.clone());
    let mut short = ctx();
    short.deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    let err = registry
        .run(&short, &instance("us-west-2a"))
        .await
        .expect_err("the deadline passes while it reboots");
    assert!(err.message.contains("rebooting"), "{}", err.message);

    let mut resumed = ctx();
    resumed.resumed = true;
    resumed.attempt = 2;
    let out = registry
        .run(&resumed, &instance("us-west-2a"))
        .await
        .expect("resumed");
    assert_eq!(out["availability_zone"], "us-west-2b");
    assert_eq!(
        aws.calls().mutating().get("RDS.RebootDBInstance"),
        Some(&1),
        "the resumed attempt waited for the reboot under way and did not reboot again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_fails_over_to_the_best_reader_outside_the_zone_or_a_chosen_one() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    // The tier-0 reader shares the writer's zone: leaving the zone skips it.
    seed::aurora_cluster(
        &aws,
        REGION,
        "orders",
        &[
            ("orders-1", "us-west-2a", 1),
            ("orders-2", "us-west-2a", 0),
            ("orders-3", "us-west-2b", 1),
        ],
    )
    .await;
    assert_eq!(
        seed::cluster_writer(&aws, REGION, "orders")
            .await
            .as_deref(),
        Some("orders-1")
    );
    let registry = Registry::with_aws(aws.clone());

    let out = registry
        .run(&ctx(), &cluster(None, Some("us-west-2a")))
        .await
        .expect("fail over out of the zone");
    assert_eq!(out["writer"], "orders-3", "{out:?}");
    assert_eq!(out["previous_writer"], "orders-1");
    assert_eq!(out["writer_zone"], "us-west-2b");
    assert_eq!(out["failed_over"], true);
    assert_eq!(
        aws.calls().mutating().get("RDS.FailoverDBCluster"),
        Some(&1)
    );

    let before = aws.calls().mutating();
    let again = registry
        .run(&ctx(), &cluster(None, Some("us-west-2a")))
        .await
        .expect("again");
    assert_eq!(again["failed_over"], false);
    assert_eq!(
        aws.calls().mutating(),
        before,
        "the writer is out of the zone"
    );

    let chosen = registry
        .run(&ctx(), &cluster(Some("orders-2"), None))
        .await
        .expect("fail over to orders-2");
    assert_eq!(chosen["writer"], "orders-2");
    assert_eq!(
        seed::cluster_writer(&aws, REGION, "orders")
            .await
            .as_deref(),
        Some("orders-2")
    );
    let before = aws.calls().mutating();
    registry
        .run(&ctx(), &cluster(Some("orders-2"), None))
        .await
        .expect("again");
    assert_eq!(aws.calls().mutating(), before, "orders-2 is the writer");

    let err = registry
        .run(&ctx(), &cluster(Some("stranger"), None))
        .await
        .expect_err("not a member");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .starts_with("stranger is not an instance of DB cluster orders in us-west-2"),
        "{}",
        err.message
    );
    let err = registry
        .run(
            &ctx(),
            &ActionInput::RdsFailoverCluster(FailoverCluster {
                db_cluster: "nope".into(),
                target_instance: None,
                from_zone: Some("us-west-2a".into()),
            }),
        )
        .await
        .expect_err("no cluster");
    assert_eq!(err.message, "no DB cluster nope in us-west-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_every_reader_in_the_zone_is_refused_naming_them() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    seed::aurora_cluster(
        &aws,
        REGION,
        "orders",
        &[("orders-1", "us-west-2a", 1), ("orders-2", "us-west-2a", 0)],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let seeded = aws.calls().mutating();
    let err = registry
        .run(&ctx(), &cluster(None, Some("us-west-2a")))
        .await
        .expect_err("nowhere to go");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .contains("no available reader outside us-west-2a")
            && err.message.contains("orders-1 (writer) in us-west-2a"),
        "{}",
        err.message
    );
    assert_eq!(aws.calls().mutating(), seeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_fails_nothing_over_and_says_what_it_would_do() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    seed::multi_az_db(&aws, REGION, "orders-db").await;
    seed::aurora_cluster(
        &aws,
        REGION,
        "orders",
        &[("orders-1", "us-west-2a", 1), ("orders-3", "us-west-2b", 1)],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let mut drill = ctx();
    drill.mode = Mode::Drill;
    let seeded = aws.calls().mutating();

    let out = registry
        .run(&drill, &instance("us-west-2a"))
        .await
        .expect("drill");
    assert_eq!(out["simulated"], true, "{out:?}");
    assert!(
        out["drill"]
            .as_str()
            .is_some_and(|d| d.contains("would reboot orders-db with failover")
                && d.contains("standby in us-west-2b")),
        "{out:?}"
    );
    let out = registry
        .run(&drill, &cluster(None, Some("us-west-2a")))
        .await
        .expect("drill");
    assert!(
        out["drill"]
            .as_str()
            .is_some_and(|d| d.contains("from orders-1 to orders-3")),
        "{out:?}"
    );
    assert_eq!(aws.calls().mutating(), seeded, "a drill changed nothing");
    assert_eq!(zone_of(&aws, "orders-db").await, "us-west-2a");

    // A drill checks what a failover would need: a standby.
    seed::single_az_db(&aws, REGION, "lonely-db", "us-west-2a").await;
    let lonely = ActionInput::RdsFailoverInstance(FailoverInstance {
        db_instance: "lonely-db".into(),
        from_zone: "us-west-2a".into(),
    });
    let err = registry.run(&drill, &lonely).await.expect_err("no standby");
    assert!(err.message.contains("not Multi-AZ"), "{}", err.message);
}

const ALB: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/orders/50dc6c495c0c9188";

fn shift(resources: &[&str], away_from: &str) -> ActionInput {
    ActionInput::ArcStartZonalShift(StartZonalShift {
        resources: resources.iter().map(|r| r.to_string()).collect(),
        away_from: away_from.into(),
        expires_in: HumanDuration::from_secs(6 * 3600),
        comment: None,
    })
}

async fn proxied(moto: &Moto) -> (Proxy, AwsClients) {
    let proxy = Proxy::start(&moto.endpoint(), Rules::default()).await;
    let aws = proxy.clients().await;
    (proxy, aws)
}

/// The emulator has no ARC zonal shift: what the tests show is the SDK
/// boundary. The zone's name is resolved to the account's zone ID first
/// (EC2), then the resource's active shifts are read with that ID, and
/// the emulator's refusal is a permanent error saying what it lacks, sent
/// once (HTTP 400, not retried as a 500 would be).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zonal_shift_resolves_the_zone_and_reads_the_resources_shifts_first() {
    let moto = Moto::start();
    let (proxy, aws) = proxied(&moto).await;
    let zone_id = aws
        .ec2(REGION)
        .describe_availability_zones()
        .zone_names("us-west-2a")
        .send()
        .await
        .expect("zones")
        .availability_zones()[0]
        .zone_id()
        .expect("an id")
        .to_string();
    let registry = Registry::with_aws(aws.clone());

    let err = registry
        .run(&ctx(), &shift(&[ALB], "us-west-2a"))
        .await
        .expect_err("the emulator lacks ARC");
    assert_eq!(err.kind, FailureKind::Permanent, "{}", err.message);
    assert!(
        err.message
            .contains("ListZonalShifts arn:aws:elasticloadbalancing:us-west-2")
            && err.message.contains(
                "The emulator (moto) does not implement ARC zonal shift (GET /zonalshifts?"
            ),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("status=ACTIVE") && err.message.contains("resourceIdentifier=arn"),
        "the shifts read are the resource's active ones: {}",
        err.message
    );
    let asked: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| r.operation.clone())
        .filter(|op| op == "DescribeAvailabilityZones" || op.contains("zonalshifts"))
        .collect();
    assert_eq!(
        asked,
        [
            "DescribeAvailabilityZones",
            "DescribeAvailabilityZones",
            "GET /zonalshifts"
        ],
        "the harness's own look, the step's, then one read of the shifts"
    );
    assert!(
        !aws.calls()
            .mutating()
            .contains_key("ARC Zonal Shift.StartZonalShift"),
        "nothing is started before the shifts are read"
    );

    // Given as a zone ID, the zone is checked the same way.
    let err = registry
        .run(&ctx(), &shift(&[ALB], &zone_id))
        .await
        .expect_err("the emulator lacks ARC");
    assert!(
        err.message.contains("does not implement ARC zonal shift"),
        "{}",
        err.message
    );

    let err = registry
        .run(&ctx(), &shift(&[ALB], "us-west-2z"))
        .await
        .expect_err("no such zone");
    assert_eq!(err.message, "no Availability Zone us-west-2z in us-west-2");

    // Nothing named: nothing shifted, no call made.
    let before = proxy.requests().len();
    let out = registry
        .run(&ctx(), &shift(&[], "us-west-2a"))
        .await
        .expect("nothing to shift");
    assert_eq!(out["note"], "no resources named: no zonal shift");
    let cancel = ActionInput::ArcCancelZonalShift(CancelZonalShift {
        resources: Vec::new(),
        away_from: "us-west-2a".into(),
    });
    registry
        .run(&ctx(), &cancel)
        .await
        .expect("nothing to cancel");
    assert_eq!(proxy.requests().len(), before, "no call for an empty list");
}
