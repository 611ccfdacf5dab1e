//! The CloudWatch data-plane switch against the emulator (whose guard
//! evaluates alarms and follows them in alarm-tracking health checks, as
//! AWS does): its preflight, its confirmation, and a switch back.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat::actions::{Readiness, Registry};
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::cloudwatch::{AlarmState, PutMetricData, SwitchConfirm};
use lifeboat::engine::{Actions, StepContext};

use crate::support::moto::Moto;
use crate::support::seed::SWITCH_ALARM;
use crate::support::step_context;

fn ctx(deadline_secs: u64) -> StepContext {
    StepContext {
        deadline: tokio::time::Instant::now() + Duration::from_secs(deadline_secs),
        ..step_context("run-1", "move-traffic", "us-west-2")
    }
}

fn switch(value: f64, state: AlarmState, dimension: &str) -> ActionInput {
    ActionInput::CloudwatchPutMetricData(PutMetricData {
        namespace: "Lifeboat".into(),
        metric: "ForcePrimaryUnhealthy".into(),
        value,
        dimensions: BTreeMap::from([("Service".to_string(), dimension.to_string())]),
        unit: Some("Count".into()),
        confirm: Some(SwitchConfirm {
            alarm: SWITCH_ALARM.into(),
            state,
            health_check_id: None,
        }),
    })
}

async fn alarm_state(aws: &lifeboat::aws::AwsClients) -> String {
    let out = aws
        .cloudwatch("us-west-2")
        .describe_alarms()
        .alarm_names(SWITCH_ALARM)
        .send()
        .await
        .expect("describe alarms");
    out.metric_alarms()[0]
        .state_value()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_is_confirmed_by_the_alarm_and_the_health_check_then_switched_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    let check = crate::support::seed::switched_failover_pair(&aws, &zone, "app.example.com").await;
    let registry = Registry::with_aws(aws.clone());

    let ready = registry
        .preflight(&ctx(60), &switch(1.0, AlarmState::Alarm, "app"), &[])
        .await;
    assert!(
        matches!(&ready, Readiness::Ready(m) if m.contains(&check)),
        "{ready:?}"
    );
    let out = registry
        .run(&ctx(60), &switch(1.0, AlarmState::Alarm, "app"))
        .await
        .expect("switched");
    assert_eq!(out["alarm_state"], "ALARM", "{out:?}");
    let checks = out["health_checks"].to_string();
    assert!(
        checks.contains("0 of 8 checkers report success"),
        "{checks}"
    );
    assert_eq!(alarm_state(&aws).await, "ALARM");

    // Back: 0 clears the alarm and the health check is healthy again.
    let out = registry
        .run(&ctx(60), &switch(0.0, AlarmState::Ok, "app"))
        .await
        .expect("switched back");
    assert_eq!(out["alarm_state"], "OK", "{out:?}");
    assert!(
        out["health_checks"]
            .to_string()
            .contains("8 of 8 checkers report success"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_whose_alarm_would_not_hold_or_not_fire_is_refused_before_and_unconfirmed_after() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::switched_failover_pair(&aws, &zone, "app.example.com").await;
    let registry = Registry::with_aws(aws.clone());

    // A datum the alarm does not watch (other dimensions) moves nothing:
    // refused by the preflight, and unconfirmed at the deadline.
    let wrong = switch(1.0, AlarmState::Alarm, "billing");
    let refused = registry.preflight(&ctx(60), &wrong, &[]).await;
    assert!(
        matches!(&refused, Readiness::WouldFail(m) if m.contains("dimensions")),
        "{refused:?}"
    );
    let err = registry
        .run(&ctx(3), &wrong)
        .await
        .expect_err("never confirmed");
    assert!(
        err.message
            .contains(&format!("alarm {SWITCH_ALARM} in us-west-2 not ALARM")),
        "{err}"
    );
    assert_eq!(alarm_state(&aws).await, "OK");

    // An alarm that would fall back once datapoints stop.
    crate::support::seed::switch_alarm(&aws, "notBreaching").await;
    let refused = registry
        .preflight(&ctx(60), &switch(1.0, AlarmState::Alarm, "app"), &[])
        .await;
    assert!(
        matches!(&refused, Readiness::WouldFail(m) if m.contains("treats missing data as `notBreaching`")),
        "{refused:?}"
    );
    // A value below the threshold does not fire it.
    let refused = registry
        .preflight(&ctx(60), &switch(0.5, AlarmState::Alarm, "app"), &[])
        .await;
    assert!(
        matches!(&refused, Readiness::WouldFail(m) if m.contains("does not put alarm")),
        "{refused:?}"
    );
    assert_eq!(
        aws.calls().mutating().get("CloudWatch.PutMetricData"),
        Some(&1),
        "the preflights published nothing; the one run did"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_no_health_check_tracks_moves_no_traffic() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::switched_failover_pair(&aws, &zone, "app.example.com").await;
    let out = aws
        .route53()
        .list_health_checks()
        .send()
        .await
        .expect("list");
    for h in out.health_checks() {
        aws.route53()
            .delete_health_check()
            .health_check_id(h.id())
            .send()
            .await
            .expect("delete");
    }
    let refused = Registry::with_aws(aws.clone())
        .preflight(&ctx(60), &switch(1.0, AlarmState::Alarm, "app"), &[])
        .await;
    assert!(
        matches!(&refused, Readiness::WouldFail(m) if m.contains("no Route 53 health check tracks alarm")),
        "{refused:?}"
    );
}
