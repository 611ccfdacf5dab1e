//! Capacity in a crunch: the simulation proxy plays EC2's and RDS's "no
//! capacity of that kind in that zone" (moto always has capacity), and the
//! launch, start, restore and replica actions go on to their alternatives
//! in order, saying each refusal, or fail naming the resource.

use std::time::Duration;

use lifeboat::actions::Registry;
use lifeboat::aws::{AwsClients, AwsSettings, Credentials};
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::ec2::{Ec2Alternative, Instances, LaunchFromTemplate};
use lifeboat::catalogue::rds::{DbAlternative, RestoreFromSnapshot};
use lifeboat::engine::{Actions, FailureKind, StepContext};

use crate::support::moto::Moto;
use crate::support::proxy::{Pool, Proxy, Rules};
use crate::support::step_context;

const REGION: &str = "us-west-2";

fn ctx(step: &str) -> StepContext {
    StepContext {
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        ..step_context("20261201T120000-cap1", step, REGION)
    }
}

/// Clients that reach the emulator through a proxy with no capacity in
/// `pools`.
async fn crunch(moto: &Moto, pools: Vec<Pool>) -> (Proxy, AwsClients) {
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            no_capacity: pools,
            ..Rules::default()
        },
    )
    .await;
    let aws = AwsClients::load(
        &AwsSettings {
            profile: None,
            endpoint_url: Some(proxy.endpoint.clone()),
            ..Default::default()
        },
        Credentials::Emulator,
    )
    .await;
    (proxy, aws)
}

/// Two subnets of one VPC in `REGION`, in zones a and b.
async fn subnets(aws: &AwsClients) -> (String, String) {
    let ec2 = aws.ec2(REGION);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .expect("create VPC");
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).expect("VPC id");
    let mut ids = Vec::new();
    for (i, zone) in ["a", "b"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(vpc)
            .cidr_block(format!("10.1.{i}.0/24"))
            .availability_zone(format!("{REGION}{zone}"))
            .send()
            .await
            .expect("create subnet");
        ids.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .expect("subnet id")
                .to_string(),
        );
    }
    (ids[0].clone(), ids[1].clone())
}

async fn instance(aws: &AwsClients, id: &str) -> aws_sdk_ec2::types::Instance {
    let out = aws
        .ec2(REGION)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe");
    out.reservations()[0].instances()[0].clone()
}

fn refusals(outputs: &lifeboat::engine::Outputs) -> Vec<String> {
    outputs["capacity_refusals"]
        .as_array()
        .expect("refusals said")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Zone a has nothing left: the launch as given and the first alternative
/// (another type, same subnet) are refused, the second (another subnet)
/// launches; each refusal is said; run again, nothing more is launched.
/// Without alternatives the error says so and names what was launched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_without_capacity_goes_on_to_its_alternatives_in_order() {
    let moto = Moto::start();
    let direct = moto.clients().await;
    crate::support::seed::launch_template(&direct, REGION, "app-tier").await;
    let (zone_a, zone_b) = subnets(&direct).await;
    let (proxy, aws) = crunch(
        &moto,
        vec![Pool {
            instance_type: None,
            zone: Some(zone_a.clone()),
        }],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let launch = |alternatives: Vec<Ec2Alternative>| {
        ActionInput::Ec2LaunchFromTemplate(LaunchFromTemplate {
            security_groups: Vec::new(),
            launch_template: "app-tier".into(),
            version: None,
            count: 2,
            subnet_id: Some(zone_a.clone()),
            instance_type: None,
            alternatives,
            tags: [("Role".to_string(), "app".to_string())].into(),
        })
    };
    let input = launch(vec![
        Ec2Alternative {
            instance_type: Some("m5a.large".into()),
            subnet_id: None,
        },
        Ec2Alternative {
            instance_type: None,
            subnet_id: Some(zone_b.clone()),
        },
    ]);
    let out = registry
        .run(&ctx("launch"), &input)
        .await
        .expect("launched");
    assert_eq!(out["launched"], 2);
    assert_eq!(out["subnet_id"], zone_b.as_str());
    let said = refusals(&out);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains(&format!("in {zone_a}"))
            && said[1].contains(&format!("as m5a.large in {zone_a}"))
            && said
                .iter()
                .all(|r| r.contains("(InsufficientInstanceCapacity)")),
        "{said:?}"
    );
    for id in out["instance_ids"].as_array().expect("ids") {
        let i = instance(&direct, id.as_str().expect("id")).await;
        assert_eq!(i.subnet_id(), Some(zone_b.as_str()));
    }
    let forwarded: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.operation == "RunInstances" && r.forwarded)
        .collect();
    assert_eq!(forwarded.len(), 1, "one launch reached EC2");

    let before = aws.calls().mutating();
    let again = registry.run(&ctx("launch"), &input).await.expect("again");
    assert_eq!(again["launched"], 0);
    assert_eq!(aws.calls().mutating(), before, "nothing launched twice");

    let err = registry
        .run(&ctx("launch-more"), &launch(vec![]))
        .await
        .expect_err("no capacity and no alternative");
    assert_eq!(err.kind, FailureKind::Retryable, "capacity comes back");
    assert!(
        err.message.starts_with(
            "no capacity for 2 instance(s) from launch template app-tier in us-west-2: "
        ) && err.message.contains("the step gives no `alternatives`"),
        "{err}"
    );
}

/// A standby instance of a type EC2 has none of: started as the next
/// alternative type (changed while stopped), said in `resized`; one with
/// no alternatives fails naming the instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_capacity_changes_the_instance_type_in_order() {
    let moto = Moto::start();
    let direct = moto.clients().await;
    let ids = crate::support::seed::stopped_instances(&direct, REGION, 2, &[("Role", "app")]).await;
    let (_proxy, aws) = crunch(
        &moto,
        vec![
            Pool {
                instance_type: Some("t3.micro".into()),
                zone: None,
            },
            Pool {
                instance_type: Some("t3.small".into()),
                zone: None,
            },
        ],
    )
    .await;
    let registry = Registry::with_aws(aws.clone());
    let start = |id: &str, alternatives: &[&str]| {
        ActionInput::Ec2StartInstances(Instances {
            instance_ids: Some(vec![id.to_string()]),
            tags: None,
            alternative_instance_types: alternatives.iter().map(|t| t.to_string()).collect(),
        })
    };
    let out = registry
        .run(&ctx("start"), &start(&ids[0], &["t3.small", "t3.medium"]))
        .await
        .expect("started as another type");
    assert_eq!(out["resized"][&ids[0]], "t3.medium");
    assert_eq!(refusals(&out).len(), 3, "together, alone, as t3.small");
    let started = instance(&direct, &ids[0]).await;
    assert_eq!(
        started.instance_type().map(|t| t.as_str()),
        Some("t3.medium")
    );
    assert_eq!(
        started.state().and_then(|s| s.name()).map(|s| s.as_str()),
        Some("running")
    );

    let err = registry
        .run(&ctx("start"), &start(&ids[1], &[]))
        .await
        .expect_err("no capacity for t3.micro");
    assert!(
        err.message.starts_with(&format!(
            "no capacity for instance {} in us-west-2: ",
            ids[1]
        )) && err.message.contains("the step gives no `alternatives`"),
        "{err}"
    );
    assert_eq!(
        instance(&direct, &ids[1])
            .await
            .instance_type()
            .map(|t| t.as_str()),
        Some("t3.micro"),
        "left as it was"
    );
}

/// RDS has no db.r6g.large in the region: the restore goes on to the next
/// class, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_without_capacity_takes_the_next_instance_class() {
    let moto = Moto::start();
    let direct = moto.clients().await;
    crate::support::seed::primary_and_replica(&direct, "app-db", "app-db-replica").await;
    let copy = crate::support::seed::snapshot_copied_to_dr(&direct, "app-db").await;
    let (_proxy, aws) = crunch(
        &moto,
        vec![Pool {
            instance_type: Some("db.r6g.large".into()),
            zone: None,
        }],
    )
    .await;
    let input = ActionInput::RdsRestoreFromSnapshot(RestoreFromSnapshot {
        parameter_group: None,
        option_group: None,
        db_instance: "app-db-restored".into(),
        snapshot: Some(copy),
        snapshot_of: None,
        snapshot_tags: None,
        instance_class: Some("db.r6g.large".into()),
        subnet_group: None,
        security_groups: Vec::new(),
        multi_az: None,
        availability_zone: None,
        alternatives: vec![DbAlternative {
            instance_class: Some("db.r6i.large".into()),
            availability_zone: None,
        }],
        tags: Default::default(),
    });
    let out = Registry::with_aws(aws.clone())
        .run(&ctx("restore"), &input)
        .await
        .expect("restored");
    assert_eq!(out["instance_class"], "db.r6i.large");
    let said = refusals(&out);
    assert!(
        said.len() == 1 && said[0].contains("(InsufficientDBInstanceCapacity)"),
        "{said:?}"
    );
    let db = crate::support::seed::db(&direct, REGION, "app-db-restored")
        .await
        .expect("restored");
    assert_eq!(db.db_instance_class(), Some("db.r6i.large"));
}
