//! `autoscaling.set_capacity` on the emulator.

use lifeboat::actions::{Readiness, Registry};
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::autoscaling::SetCapacity;
use lifeboat::engine::{Actions, FailureKind, StepContext};

use crate::support::moto::Moto;
use crate::support::seed::group;
use crate::support::step_context;

const REGION: &str = "us-west-2";

fn ctx() -> StepContext {
    step_context("run-1", "scale-out", REGION)
}

fn set(group: &str, desired: u32, max: Option<u32>) -> ActionInput {
    ActionInput::AutoscalingSetCapacity(SetCapacity {
        group: group.into(),
        min: Some(1),
        desired,
        max,
        wait_in_service: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_set_once_and_waited_for() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    group(&aws, "app-dr", 0).await;
    let registry = Registry::with_aws(aws.clone());

    assert!(matches!(
        registry
            .preflight(&ctx(), &set("app-dr", 3, None), &[])
            .await,
        Readiness::Ready(_)
    ));
    let out = registry
        .run(&ctx(), &set("app-dr", 3, None))
        .await
        .expect("scale out");
    assert_eq!(out["changed"], true);
    assert_eq!(out["instance_ids"].as_array().map(Vec::len), Some(3));
    let g = aws
        .autoscaling(REGION)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("app-dr")
        .send()
        .await
        .expect("describe");
    let g = &g.auto_scaling_groups()[0];
    assert_eq!(
        (g.min_size(), g.desired_capacity(), g.max_size()),
        (Some(1), Some(3), Some(10))
    );

    let before = aws.calls().mutating();
    let again = registry
        .run(&ctx(), &set("app-dr", 3, None))
        .await
        .expect("again");
    assert_eq!(again["changed"], false);
    assert_eq!(
        aws.calls().mutating(),
        before,
        "at capacity: no mutating call"
    );

    // Beyond the group's max, unless the step raises it: refused, unchanged.
    let err = registry
        .run(&ctx(), &set("app-dr", 12, None))
        .await
        .expect_err("above max");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .contains("above the group's max size 10; set `max` too"),
        "{err}"
    );
    assert!(matches!(
        registry
            .preflight(&ctx(), &set("app-dr", 12, None), &[])
            .await,
        Readiness::WouldFail(_)
    ));
    assert_eq!(aws.calls().mutating(), before);

    let err = registry
        .run(&ctx(), &set("ghost", 2, None))
        .await
        .expect_err("no group");
    assert_eq!(err.message, "no Auto Scaling group ghost in us-west-2");
}
