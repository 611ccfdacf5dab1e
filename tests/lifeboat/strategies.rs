//! The shipped backup-restore, warm-standby, active-passive, active-active
//! and failback runbooks, each run with `lifeboat run` against the emulator end to end,
//! then checked with describe calls; and `lifeboat check` before and after.

use std::path::PathBuf;
use std::process::Output;

use aws_sdk_ec2::types::InstanceStateName;
use lifeboat::aws::AwsClients;

use crate::support::moto::Moto;
use crate::support::text;

/// A state directory, and the arguments naming the shipped `runbook` with
/// its health check pointed at a local endpoint that answers 200.
struct Scene {
    _dir: tempfile::TempDir,
    state: PathBuf,
    args: Vec<String>,
}

impl Scene {
    async fn new(runbook: &str) -> Scene {
        let health = lifeboat::demo::health_endpoint()
            .await
            .expect("health endpoint");
        let dir = tempfile::tempdir().expect("tempdir");
        Scene {
            state: dir.path().join("state"),
            _dir: dir,
            args: vec![
                format!("runbooks/{runbook}"),
                "-p".into(),
                format!("health_url={health}"),
            ],
        }
    }

    /// `lifeboat COMMAND... RUNBOOK -p health_url=...` against the emulator.
    /// A `run` is authorized, request by request, against the policy
    /// `iam-policy` prints for the runbook.
    fn lifeboat(&self, moto: &Moto, command: &[&str]) -> Output {
        let run = command.first() == Some(&"run");
        if run {
            self.enforce_policy(moto);
        }
        let out = moto
            .lifeboat(&self.state)
            .args(command)
            .args(&self.args)
            .output()
            .expect("run lifeboat");
        if run {
            moto.assert_authorized();
        }
        out
    }

    /// Check lifeboat's requests from now on against the failover policy
    /// `iam-policy` prints for this runbook and its parameters.
    fn enforce_policy(&self, moto: &Moto) {
        self.enforce_policy_of(moto, "failover");
    }

    fn enforce_policy_of(&self, moto: &Moto, mode: &str) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        moto.enforce_policy(&[&args[..], &["--mode", mode]].concat());
    }
}

impl Scene {
    /// A second `lifeboat run --yes` finds everything done: it succeeds
    /// and changes nothing.
    fn run_again_changes_nothing(&self, moto: &Moto) {
        let again = self.lifeboat(moto, &["run", "--yes"]);
        assert_ok(&again);
        assert!(
            text(&again.stderr).contains("(0 of them changes)"),
            "{}",
            text(&again.stderr)
        );
    }

    /// `lifeboat run --yes` in the background (a failback waits for its
    /// approvals); the child and its run's id.
    fn start(&self, moto: &Moto) -> (crate::support::KillOnDrop, String) {
        self.start_as(moto, "run")
    }

    /// `lifeboat COMMAND --yes` (`run` or `drill`) in the background,
    /// authorized against the policy of its mode.
    fn start_as(&self, moto: &Moto, command: &str) -> (crate::support::KillOnDrop, String) {
        self.enforce_policy_of(
            moto,
            if command == "drill" {
                "drill"
            } else {
                "failover"
            },
        );
        let mut child = moto
            .lifeboat(&self.state)
            .args([command, "--yes"])
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map(crate::support::KillOnDrop)
            .expect("start the run");
        let id = crate::support::started_run_id(&self.state, &mut child.0);
        (child, id)
    }
}

/// The run's exit status and its stderr, read to the end first (the run's
/// exit closes it), then reaped.
fn finish(mut child: crate::support::KillOnDrop) -> (std::process::ExitStatus, String) {
    let mut stderr = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let status = child.0.wait().expect("wait for the run");
    (status, stderr)
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

async fn instance_states(
    aws: &AwsClients,
    region: &str,
    tags: &[(&str, &str)],
) -> Vec<InstanceStateName> {
    let mut request = aws.ec2(region).describe_instances();
    for (k, v) in tags {
        request = request.filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{k}"))
                .values(*v)
                .build(),
        );
    }
    let out = request.send().await.expect("describe instances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.state().and_then(|s| s.name()).cloned())
        .collect()
}

async fn db(aws: &AwsClients, region: &str, id: &str) -> aws_sdk_rds::types::DbInstance {
    crate::support::seed::db(aws, region, id)
        .await
        .unwrap_or_else(|| panic!("no DB instance {id} in {region}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_rebuilds_the_service_from_the_dr_snapshot() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let copy = crate::support::seed::snapshot_copied_to_dr(&aws, "app-db").await;
    crate::support::seed::db_subnet_group(&aws, "us-west-2", "app-db-subnets").await;
    crate::support::seed::launch_template(&aws, "us-west-2", "app-server").await;
    let zone = crate::support::seed::zone(
        &aws,
        "example.com",
        &[("app.example.com".into(), "192.0.2.10".into())],
    )
    .await;
    let scene = Scene::new("backup-restore.yaml").await;

    let check = scene.lifeboat(&moto, &["check"]);
    assert_ok(&check);
    assert!(
        text(&check.stdout).contains(&format!("from snapshot {copy}")),
        "{}",
        text(&check.stdout)
    );

    assert_ok(&scene.lifeboat(&moto, &["run", "--yes"]));
    let restored = db(&aws, "us-west-2", "app-db-restored").await;
    assert_eq!(restored.db_instance_status(), Some("available"));
    assert_eq!(restored.db_instance_class(), Some("db.t3.medium"));
    assert!(
        restored
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("RestoredBy"))
    );
    assert_eq!(
        instance_states(&aws, "us-west-2", &[("Role", "app"), ("Env", "dr")]).await,
        vec![InstanceStateName::Running; 2]
    );
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "app.example.com").await,
        vec!["198.51.100.10"]
    );

    // A second run finds everything done: no new instance, no new restore.
    let before = instance_states(&aws, "us-west-2", &[]).await.len();
    scene.run_again_changes_nothing(&moto);
    assert_eq!(instance_states(&aws, "us-west-2", &[]).await.len(), before);
    crate::support::iam::assert_covered(&scene.state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_standby_promotes_scales_up_and_moves_traffic() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    crate::support::seed::group(&aws, "app-asg", 1).await;
    let zone = crate::support::seed::zone(
        &aws,
        "example.com",
        &[("app.example.com".into(), "192.0.2.10".into())],
    )
    .await;
    let scene = Scene::new("warm-standby.yaml").await;

    assert_ok(&scene.lifeboat(&moto, &["check"]));
    assert_ok(&scene.lifeboat(&moto, &["run", "--yes"]));
    let replica = db(&aws, "us-west-2", "app-db-replica").await;
    assert_eq!(replica.backup_retention_period(), Some(7), "promoted");
    assert_eq!(
        replica.db_instance_class(),
        Some("db.r6g.xlarge"),
        "warmed up"
    );
    let group = aws
        .autoscaling("us-west-2")
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("app-asg")
        .send()
        .await
        .expect("describe group");
    let group = &group.auto_scaling_groups()[0];
    assert_eq!(group.desired_capacity(), Some(6));
    assert_eq!(group.instances().len(), 6);
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "app.example.com").await,
        vec!["198.51.100.10"]
    );

    scene.run_again_changes_nothing(&moto);
    crate::support::iam::assert_covered(&scene.state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_passive_promotes_and_moves_traffic() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::switched_failover_pair(&aws, &zone, "app.example.com").await;
    let scene = Scene::new("active-passive.yaml").await;
    let state = &scene.state;

    let check = scene.lifeboat(&moto, &["check"]);
    assert_ok(&check);
    assert!(
        text(&check.stdout).contains("move-traffic (fallback): route53.switch_failover"),
        "{}",
        text(&check.stdout)
    );
    assert!(
        text(&check.stdout).contains("tracked by health check"),
        "the switch's alarm and health check are checked: {}",
        text(&check.stdout)
    );
    assert_ok(&scene.lifeboat(&moto, &["run", "--yes"]));
    assert_eq!(
        db(&aws, "us-west-2", "app-db-replica")
            .await
            .backup_retention_period(),
        Some(7)
    );
    // Traffic moved by the data plane: the switch metric was published in
    // the DR region, its alarm fired and the PRIMARY's health check turned
    // unhealthy (the emulator's guard plays CloudWatch and Route 53 there),
    // and the failover records were not edited.
    let show = crate::support::lifeboat(state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("run id");
    let show = crate::support::lifeboat(state, &["show", id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let step = show["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == "move-traffic"))
        .expect("move-traffic")
        .clone();
    assert_eq!(step["state"], "succeeded", "{step}");
    assert_eq!(step["outputs"]["metric"], "ForcePrimaryUnhealthy", "{step}");
    assert_eq!(step["outputs"]["value"], 1.0, "{step}");
    assert_eq!(step["outputs"]["alarm_state"], "ALARM", "confirmed: {step}");
    assert!(
        step["outputs"]["health_checks"]
            .to_string()
            .contains("0 of 8 checkers report success"),
        "{step}"
    );
    assert_eq!(
        crate::support::seed::failover_roles(&aws, &zone, "app.example.com").await,
        vec![
            ("dr".to_string(), "SECONDARY".to_string()),
            ("primary".to_string(), "PRIMARY".to_string())
        ],
        "the records are left to the data plane"
    );
    assert_eq!(
        crate::support::seed::switch_metric_dimensions(&aws).await,
        vec![vec!["Service".to_string()]]
    );
    crate::support::iam::assert_covered(state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_rebuilds_the_primary_after_two_approvals() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::strategy(&aws, "failback.yaml").await;
    let scene = Scene::new("failback.yaml").await;
    let state = &scene.state;

    let (child, id) = scene.start(&moto);
    crate::support::wait_for(state, &id, "approve", "waiting");
    assert!(
        crate::support::seed::db(&aws, "us-east-1", "app-db-failback")
            .await
            .is_none(),
        "nothing changes before the approval"
    );
    let approve = |step: &str| crate::support::lifeboat(state, &["approve", &id, step]);
    assert_eq!(approve("approve").status.code(), Some(0));
    crate::support::wait_for(state, &id, "confirm-writes-stopped", "waiting");
    let rebuilt = db(&aws, "us-east-1", "app-db-failback").await;
    assert!(
        rebuilt
            .read_replica_source_db_instance_identifier()
            .is_some_and(|s| s.ends_with(":db:app-db-replica")),
        "{rebuilt:?}"
    );
    assert_eq!(
        instance_states(&aws, "us-east-1", &[("Role", "app"), ("Env", "primary")]).await,
        vec![InstanceStateName::Running; 2],
        "the primary app tier starts in parallel"
    );
    assert_eq!(approve("confirm-writes-stopped").status.code(), Some(0));
    let (status, stderr) = finish(child);
    moto.assert_authorized();

    // The rebuilt replica's ReplicaLag (published as RDS would, by the
    // emulator's guard) shows it caught up: it is promoted and DNS moves
    // back.
    assert_eq!(status.code(), Some(0), "{stderr}");
    let show = crate::support::lifeboat(state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let step = |id: &str| {
        show["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["step"] == id))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(step("replica-caught-up")["state"], "succeeded", "{show}");
    assert_eq!(
        step("replica-caught-up")["outputs"]["lag_seconds"],
        0.0,
        "{show}"
    );
    assert_eq!(
        db(&aws, "us-east-1", "app-db-failback")
            .await
            .backup_retention_period(),
        Some(7),
        "promoted"
    );
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "app.example.com").await,
        vec!["192.0.2.10"]
    );
    crate::support::iam::assert_covered(state);
}

/// Each weighted set of `app.example.com`, with its weight; and the desired
/// capacity of `app-asg` in us-east-1 and us-west-2.
/// The desired capacity of `app-asg` in `region`.
async fn desired(aws: &AwsClients, region: &str) -> i32 {
    let groups = aws
        .autoscaling(region)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("app-asg")
        .send()
        .await
        .expect("describe group");
    groups.auto_scaling_groups()[0]
        .desired_capacity()
        .unwrap_or(-1)
}

/// The weights of `app.example.com` and the app tier's desired capacity
/// in each of `regions`.
async fn weights_and_capacity(
    aws: &AwsClients,
    zone: &str,
    regions: &[&str],
) -> (Vec<(String, i64)>, Vec<i32>) {
    let weights = crate::support::seed::weights(aws, zone, "app.example.com").await;
    let mut each = Vec::new();
    for region in regions {
        each.push(desired(aws, region).await);
    }
    (weights, each)
}

async fn active_active_state(aws: &AwsClients, zone: &str) -> (Vec<(String, i64)>, Vec<i32>) {
    weights_and_capacity(aws, zone, &["us-east-1", "us-west-2"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_active_drains_absorbs_and_its_failback_gives_the_traffic_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::strategy(&aws, "active-active.yaml").await;
    let before = active_active_state(&aws, &zone).await;
    let weights = |east: i64, west: i64| {
        vec![
            ("us-east-1".to_string(), east),
            ("us-west-2".to_string(), west),
        ]
    };
    assert_eq!(before, (weights(50, 50), vec![3, 3]));

    // The failover: us-east-1 drained, us-west-2 at six instances.
    let scene = Scene::new("active-active.yaml").await;
    assert_ok(&scene.lifeboat(&moto, &["check"]));
    assert_ok(&scene.lifeboat(&moto, &["run", "--yes"]));
    assert_eq!(
        active_active_state(&aws, &zone).await,
        (weights(0, 100), vec![3, 6])
    );
    let runs = crate::support::lifeboat(&scene.state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("run id").to_string();
    let report = crate::support::lifeboat(&scene.state, &["report", &id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert!(report["rto"]["seconds"].as_f64().is_some(), "{report}");
    assert_eq!(report["rto"]["verdict"], "met", "{report}");
    crate::support::iam::assert_covered(&scene.state);
    scene.run_again_changes_nothing(&moto);

    // The failback, once approved: both regions serve as before.
    let scene = Scene::new("failback-active-active.yaml").await;
    let (child, id) = scene.start(&moto);
    crate::support::wait_for(&scene.state, &id, "approve", "waiting");
    assert_eq!(
        active_active_state(&aws, &zone).await,
        (weights(0, 100), vec![3, 6]),
        "nothing changes before the approval"
    );
    let approve = crate::support::lifeboat(&scene.state, &["approve", &id, "approve"]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve.stderr));
    let (status, stderr) = finish(child);
    moto.assert_authorized();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(active_active_state(&aws, &zone).await, before);
    crate::support::iam::assert_covered(&scene.state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_drain_one_and_the_other_two_absorb_it() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::strategy(&aws, "active-active-three-regions.yaml").await;
    let regions = ["us-east-1", "us-west-2", "eu-west-1"];
    let state = || weights_and_capacity(&aws, &zone, &regions);
    let weights = |w: [i64; 3]| {
        let mut v: Vec<(String, i64)> = regions.iter().map(|r| r.to_string()).zip(w).collect();
        v.sort();
        v
    };
    assert_eq!(state().await, (weights([34, 33, 33]), vec![3, 3, 3]));

    let scene = Scene::new("active-active-three-regions.yaml").await;
    assert_ok(&scene.lifeboat(&moto, &["check"]));
    assert_ok(&scene.lifeboat(&moto, &["run", "--yes"]));
    assert_eq!(
        state().await,
        (weights([0, 50, 50]), vec![3, 5, 5]),
        "us-east-1 drained; each survivor at five instances"
    );
    let runs = crate::support::lifeboat(&scene.state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("run id").to_string();
    let report = crate::support::lifeboat(&scene.state, &["report", &id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(report["rto"]["verdict"], "met", "{report}");
    crate::support::iam::assert_covered(&scene.state);
    scene.run_again_changes_nothing(&moto);
}

/// The zone of the multi-AZ runbook's database primary, and its app tier's
/// desired capacity.
async fn multi_az_state(aws: &AwsClients) -> (String, i32) {
    let db = db(aws, "us-east-1", "app-db").await;
    (
        db.availability_zone().unwrap_or_default().to_string(),
        desired(aws, "us-east-1").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_az_leaves_the_zone_and_its_failback_gives_the_capacity_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::strategy(&aws, "multi-az.yaml").await;
    assert_eq!(multi_az_state(&aws).await, ("us-east-1a".to_string(), 4));

    // The failover: the primary on its standby in us-east-1b, six instances.
    let scene = Scene::new("multi-az.yaml").await;
    assert_ok(&scene.lifeboat(&moto, &["check"]));
    assert_ok(&scene.lifeboat(&moto, &["run", "--yes"]));
    assert_eq!(multi_az_state(&aws).await, ("us-east-1b".to_string(), 6));
    let runs = crate::support::lifeboat(&scene.state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("run id").to_string();
    let report = crate::support::lifeboat(&scene.state, &["report", &id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert!(report["rto"]["seconds"].as_f64().is_some(), "{report}");
    assert_eq!(report["rto"]["verdict"], "met", "{report}");
    crate::support::iam::assert_covered(&scene.state);
    // A second run finds the primary out of the zone: it reboots nothing.
    scene.run_again_changes_nothing(&moto);
    assert_eq!(multi_az_state(&aws).await, ("us-east-1b".to_string(), 6));

    // The failback, once approved: the usual capacity; the database stays.
    let scene = Scene::new("failback-multi-az.yaml").await;
    let (child, id) = scene.start(&moto);
    crate::support::wait_for(&scene.state, &id, "approve", "waiting");
    let approve = crate::support::lifeboat(&scene.state, &["approve", &id, "approve"]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve.stderr));
    let (status, stderr) = finish(child);
    moto.assert_authorized();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(multi_az_state(&aws).await, ("us-east-1b".to_string(), 4));
    let report = crate::support::lifeboat(&scene.state, &["report", &id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert!(report["rto"]["seconds"].as_f64().is_some(), "{report}");
    crate::support::iam::assert_covered(&scene.state);
}

/// Approve a failback's two approvals as each comes up.
fn approve_both(state: &std::path::Path, id: &str) {
    for step in ["approve", "confirm-writes-stopped"] {
        crate::support::wait_for(state, id, step, "waiting");
        assert_eq!(
            crate::support::lifeboat(state, &["approve", id, step])
                .status
                .code(),
            Some(0)
        );
    }
}

/// What users' traffic follows in the active-passive setup: the failover
/// roles, the switch alarm's state, and whether the PRIMARY's health check
/// is healthy (every checker reporting success).
async fn traffic(
    aws: &AwsClients,
    zone: &str,
    check: &str,
) -> (Vec<(String, String)>, String, bool) {
    let roles = crate::support::seed::failover_roles(aws, zone, "app.example.com").await;
    let alarms = aws
        .cloudwatch("us-west-2")
        .describe_alarms()
        .alarm_names(crate::support::seed::SWITCH_ALARM)
        .send()
        .await
        .expect("describe alarms");
    let alarm = alarms.metric_alarms()[0]
        .state_value()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let status = aws
        .route53()
        .get_health_check_status()
        .health_check_id(check)
        .send()
        .await
        .expect("health check status");
    let healthy = status.health_check_observations().iter().all(|o| {
        o.status_report()
            .and_then(|r| r.status())
            .is_some_and(|s| s.starts_with("Success"))
    });
    (roles, alarm, healthy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_passive_failover_then_its_failback_leave_traffic_as_before_the_outage() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    crate::support::seed::db_subnet_group(&aws, "us-east-1", "app-db-subnets").await;
    crate::support::seed::db_subnet_group(&aws, "us-west-2", "app-db-subnets").await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    let check = crate::support::seed::switched_failover_pair(&aws, &zone, "app.example.com").await;
    let before = traffic(&aws, &zone, &check).await;
    assert_eq!(before.1, "OK");
    assert!(before.2, "the primary is healthy before the outage");

    let failover = Scene::new("active-passive.yaml").await;
    assert_ok(&failover.lifeboat(&moto, &["run", "--yes"]));
    let failed_over = traffic(&aws, &zone, &check).await;
    assert_eq!(
        failed_over.0, before.0,
        "the records are left to the data plane"
    );
    assert_eq!(failed_over.1, "ALARM");
    assert!(!failed_over.2, "the primary's health check is unhealthy");

    // A plain record over the failover pair is refused before anything
    // changes: the pilot-light failback is not the one to use here.
    let wrong = Scene::new("failback.yaml").await;
    let check_out = wrong.lifeboat(&moto, &["check"]);
    assert!(
        text(&check_out.stdout).contains("cannot be written beside routed sets"),
        "{}",
        text(&check_out.stdout)
    );

    // Its drill first: copies only, every request within `iam-policy
    // --mode drill`, and traffic left as the failover left it.
    let drill = Scene::new("failback-active-passive.yaml").await;
    let (child, id) = drill.start_as(&moto, "drill");
    approve_both(&drill.state, &id);
    let (status, stderr) = finish(child);
    moto.assert_authorized();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("teardown: removed "), "{stderr}");
    assert_eq!(traffic(&aws, &zone, &check).await, failed_over);

    let failback = Scene::new("failback-active-passive.yaml").await;
    let state = &failback.state;
    let (child, id) = failback.start(&moto);
    approve_both(state, &id);
    let (status, stderr) = finish(child);
    moto.assert_authorized();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        traffic(&aws, &zone, &check).await,
        before,
        "DNS and the switch as before the outage"
    );
    assert_eq!(
        db(&aws, "us-east-1", "app-db-failback")
            .await
            .backup_retention_period(),
        Some(7),
        "the rebuilt primary is promoted"
    );
    crate::support::iam::assert_covered(state);
}

/// Run the shipped failover `runbook` on a world seeded for it (plus what
/// its failback needs: subnet groups, the primary app tier, stopped), then
/// the shipped failback with `failback_params`, approving its two
/// approvals: DNS must end as it was before the outage, served by a
/// database rebuilt in the repaired region.
async fn failover_then_failback(runbook: &str, failback_params: &[&str]) {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = if runbook == "pilot-light.yaml" {
        lifeboat::demo::seed(&aws).await.expect("seed").zone_id
    } else {
        crate::support::seed::strategy(&aws, runbook).await
    };
    crate::support::seed::db_subnet_group(&aws, "us-east-1", "app-db-subnets").await;
    if runbook != "backup-restore.yaml" {
        crate::support::seed::db_subnet_group(&aws, "us-west-2", "app-db-subnets").await;
    }
    crate::support::seed::stopped_instances(
        &aws,
        "us-east-1",
        2,
        &[("Role", "app"), ("Env", "primary")],
    )
    .await;
    let before = crate::support::seed::a_record(&aws, &zone, "app.example.com").await;

    let failover = Scene::new(runbook).await;
    assert_ok(&failover.lifeboat(&moto, &["run", "--yes"]));
    let moved = crate::support::seed::a_record(&aws, &zone, "app.example.com").await;
    assert_ne!(moved, before, "{runbook} moved DNS to the DR region");

    let mut failback = Scene::new("failback.yaml").await;
    for p in failback_params {
        failback.args.extend(["-p".to_string(), p.to_string()]);
    }
    let state = &failback.state;
    let (child, id) = failback.start(&moto);
    approve_both(state, &id);
    let (status, stderr) = finish(child);
    moto.assert_authorized();
    if runbook == "warm-standby.yaml" {
        // Its DR tier is an Auto Scaling group: the failback's step that
        // stops DR instances (allowed to fail) finds none, and the run
        // says so instead of claiming a clean success.
        assert_eq!(status.code(), Some(4), "{runbook}: {stderr}");
        assert!(
            stderr.contains("step `stop-dr-app` failed: no instances tagged"),
            "{runbook}: {stderr}"
        );
    } else {
        assert_eq!(status.code(), Some(0), "{runbook}: {stderr}");
    }
    assert_eq!(
        crate::support::seed::a_record(&aws, &zone, "app.example.com").await,
        before,
        "after {runbook} and its failback, DNS as before the outage"
    );
    assert_eq!(
        db(&aws, "us-east-1", "app-db-failback")
            .await
            .backup_retention_period(),
        Some(7),
        "the rebuilt primary is promoted"
    );
    // The DR app tier, where the failover ran one on EC2 (warm-standby's
    // is an Auto Scaling group, left as the failover scaled it).
    let dr_app = instance_states(&aws, "us-west-2", &[("Role", "app"), ("Env", "dr")]).await;
    assert!(
        dr_app.iter().all(|s| *s == InstanceStateName::Stopped)
            && (dr_app.is_empty() == (runbook == "warm-standby.yaml")),
        "{runbook}: the DR app tier is stopped again: {dr_app:?}"
    );
    crate::support::iam::assert_covered(state);
}

/// Each failover that moves DNS by record, then the shipped failback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_failover_then_its_failback_leave_dns_as_before_the_outage() {
    failover_then_failback("pilot-light.yaml", &[]).await;
    failover_then_failback("warm-standby.yaml", &[]).await;
    failover_then_failback("backup-restore.yaml", &["dr_db=app-db-restored"]).await;
}
