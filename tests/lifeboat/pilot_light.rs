//! The shipped pilot-light runbook, run with `lifeboat run` against the
//! emulator, end to end: the replica promoted, the app tier started, DNS
//! moved, the health check answered; the decoys untouched.

use aws_sdk_ec2::types::InstanceStateName;

use crate::support::moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pilot_light_failover_recovers_into_the_dr_region() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let seeded = lifeboat::demo::seed(&aws).await.expect("seed");
    let (app, batch, zone) = (
        seeded.app_instances,
        vec![seeded.decoy_instance],
        seeded.zone_id,
    );
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    let dir = tempfile::tempdir().expect("tempdir");

    let run = |extra: &[&str]| {
        let mut args = vec!["run", "runbooks/pilot-light.yaml", "--yes", "-p"];
        let health_param = format!("health_url={health}");
        args.push(&health_param);
        args.extend_from_slice(extra);
        moto.lifeboat(&dir.path().join("state"))
            .args(&args)
            .output()
            .expect("run lifeboat")
    };
    // Before: every preflight passes, with read-only calls only. From here
    // on every request lifeboat makes is authorized against the policy
    // `iam-policy` prints for the runbook, as IAM would.
    let health_param = format!("health_url={health}");
    moto.enforce_policy(&["runbooks/pilot-light.yaml", "-p", &health_param]);
    let check = moto
        .lifeboat(&dir.path().join("state"))
        .args(["check", "runbooks/pilot-light.yaml", "-p", &health_param])
        .output()
        .expect("run lifeboat check");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("(0 of them changes)"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("4 ready, 0 would fail"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let db = crate::support::seed::db(&aws, "us-west-2", "app-db-replica").await;
    assert_eq!(
        db.and_then(|d| d.backup_retention_period()),
        Some(7),
        "promoted with 7 days of backups"
    );
    let ec2 = aws.ec2("us-west-2");
    let states = |ids: Vec<String>| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .expect("describe");
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.state().and_then(|s| s.name()).cloned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(states(app).await, vec![InstanceStateName::Running; 2]);
    assert_eq!(states(batch).await, vec![InstanceStateName::Stopped]);
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "app.example.com").await,
        vec!["198.51.100.10"]
    );
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "legacy.example.com").await,
        vec!["192.0.2.254"]
    );

    // Running the failover again finds everything done and succeeds.
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::support::iam::assert_covered(&dir.path().join("state"));
    moto.assert_authorized();
}
