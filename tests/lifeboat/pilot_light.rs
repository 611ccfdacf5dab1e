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
    let states = |ids: Vec<String>| {
        let aws = aws.clone();
        async move { crate::support::seed::instance_states(&aws, "us-west-2", &ids).await }
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

/// The same recovery split the way teams share runbooks: a data tier and
/// an app tier each a child runbook of a regional parent. The children
/// run as blocks of the parent's run, the data tier's recovery point
/// measures the run's RPO, and the parent's least-privilege policy covers
/// what its children do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_of_two_child_runbooks_recovers_and_measures_the_childs_recovery_point() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let seeded = lifeboat::demo::seed(&aws).await.expect("seed");
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    moto.set_replica_lag("us-west-2", "app-db-replica", Some(2.0));
    crate::support::seed::wait_for_replica_lag(&aws, "us-west-2", "app-db-replica", 2.0).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let parent = "tests/runbooks/regional.yaml";
    let health_param = format!("health_url={health}");
    // Every request is authorized against the parent's printed policy.
    moto.enforce_policy(&[parent, "-p", &health_param]);
    let state = dir.path().join("state");
    let out = moto
        .lifeboat(&state)
        .args(["run", parent, "--yes", "-p", &health_param])
        .output()
        .expect("run lifeboat");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = crate::support::seed::db(&aws, "us-west-2", "app-db-replica").await;
    assert_eq!(
        db.and_then(|d| d.backup_retention_period()),
        Some(7),
        "promoted by the data tier"
    );
    assert_eq!(
        crate::support::seed::instance_states(&aws, "us-west-2", &seeded.app_instances).await,
        vec![InstanceStateName::Running; 2],
        "started by the app tier"
    );
    assert_eq!(
        crate::support::seed::a_record(&aws, &seeded.zone_id, "app.example.com").await,
        vec!["198.51.100.10"]
    );

    let figures = moto.newest_report(&state);
    let rpo = figures["rpo"]["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("an RPO figure from the data tier's replica: {figures}"));
    assert!(rpo >= 2.0, "2 s of replica lag at least: {figures}");
    assert_eq!(figures["rpo"]["verdict"], "met", "{figures}");
    let mut steps: Vec<&str> = figures["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    steps.sort_unstable();
    assert_eq!(
        steps,
        [
            "app.running",
            "app.start",
            "data.promote-db",
            "switch-dns",
            "verify"
        ],
        "{figures}"
    );
    assert_eq!(
        figures["critical_path"],
        serde_json::json!(["data.promote-db", "switch-dns", "verify"])
    );
    crate::support::iam::assert_covered(&state);
    moto.assert_authorized();
}
