//! Fencing: after a failover, the old primary's region back, the runbook's
//! `when: fence` steps stop its app tier and isolate its database, so two
//! primaries never take writes; nothing else runs in that mode, and the
//! other modes never run them.

use crate::support::moto::Moto;
use crate::support::{seed, text};

const RUNBOOK: &str = "name: fenced
strategy: pilot-light
regions: { from: us-east-1, to: us-west-2 }
params:
  quarantine: { description: The security group that lets nothing in }
steps:
  - id: promote
    action: rds.promote_read_replica
    with: { db_instance: app-db-replica }
  - id: confirm
    action: wait
    needs: [promote]
    with: { duration: 1s }
    restores_service: true
  - id: stop-old-app
    action: ec2.stop_instances
    region: us-east-1
    when: fence
    with: { tags: { Role: app, Env: primary } }
  - id: isolate-old-db
    action: rds.isolate_instance
    region: us-east-1
    when: fence
    with: { db_instance: app-db, security_groups: [\"${quarantine}\"] }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_run_stops_the_old_app_tier_and_isolates_the_old_database_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let old_app =
        seed::running_instances(&aws, "us-east-1", 2, &[("Role", "app"), ("Env", "primary")]).await;
    let ec2 = aws.ec2("us-east-1");
    let vpc = ec2.describe_vpcs().send().await.expect("vpcs").vpcs()[0]
        .vpc_id()
        .expect("vpc")
        .to_string();
    let quarantine = ec2
        .create_security_group()
        .group_name("quarantine")
        .description("lets nothing in")
        .vpc_id(vpc)
        .send()
        .await
        .expect("group")
        .group_id()
        .expect("id")
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fenced.yaml");
    std::fs::write(&file, RUNBOOK).expect("write runbook");
    let path = file.to_str().expect("utf-8");
    let param = format!("quarantine={quarantine}");
    let state = dir.path().join("state");
    let run = |mode: &str| {
        moto.enforce_policy(&[path, "-p", &param, "--mode", mode]);
        let out = moto
            .lifeboat(&state)
            .args(["run", path, "-p", &param, "--mode", mode, "--yes"])
            .output()
            .expect("run lifeboat");
        moto.assert_authorized();
        out
    };

    // The failover runs no fence step: the old tier keeps running.
    let out = run("failover");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let states = |ids: &[String]| {
        let ec2 = ec2.clone();
        let ids = ids.to_vec();
        async move {
            ec2.describe_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .expect("describe")
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| {
                    i.state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(states(&old_app).await, ["running", "running"]);

    // The fence: only the fence steps, each effect checked.
    let out = run("fence");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(states(&old_app).await, ["stopped", "stopped"]);
    let db = seed::db(&aws, "us-east-1", "app-db")
        .await
        .expect("the old primary");
    let groups: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(
        groups,
        [quarantine.as_str()],
        "behind the quarantine group only"
    );
    crate::support::iam::assert_covered(&state);

    // Again: everything is fenced already, nothing changes.
    moto.start_recording();
    let out = run("fence");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("(0 of them changes)"),
        "{}",
        text(&out.stderr)
    );
    assert!(moto.changes().is_empty(), "{:?}", moto.changes());
}

#[test]
fn a_runbook_without_fence_steps_has_nothing_to_fence_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = crate::support::lifeboat(
        &dir.path().join("state"),
        &[
            "run",
            "runbooks/pilot-light.yaml",
            "--mode",
            "fence",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has no `when: fence` step: there is nothing to fence with"),
        "{}",
        text(&out.stderr)
    );
}
