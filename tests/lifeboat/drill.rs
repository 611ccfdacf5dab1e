//! Drills of the shipped runbooks on the emulator: production (every RDS
//! instance and snapshot, EC2 instance, Auto Scaling group, Route 53
//! record and S3 object that is not the drill's) is the same afterwards,
//! field for field; the drill made its copies, said what it substituted,
//! and its teardown left nothing tagged; a drill killed mid-way leaves
//! orphans that `lifeboat sweep` removes.

use std::process::Stdio;

use lifeboat::aws::AwsClients;

use crate::support::inventory::inventory;
use crate::support::moto::Moto;
use crate::support::seed::scenario_seed;
use crate::support::{KillOnDrop, text};

struct Env {
    moto: Moto,
    aws: AwsClients,
    dir: tempfile::TempDir,
    health: String,
}

impl Env {
    async fn new() -> Env {
        let moto = Moto::start();
        let aws = moto.clients().await;
        Env {
            moto,
            aws,
            dir: tempfile::tempdir().expect("tempdir"),
            health: lifeboat::demo::health_endpoint()
                .await
                .expect("health endpoint"),
        }
    }

    fn drill(&self, runbook: &str, extra: &[&str]) -> std::process::Output {
        let health = format!("health_url={}", self.health);
        self.moto
            .lifeboat(&self.dir.path().join("state"))
            .args([
                "drill",
                &format!("runbooks/{runbook}"),
                "--yes",
                "-p",
                &health,
            ])
            .args(extra)
            .output()
            .expect("run lifeboat drill")
    }

    /// `lifeboat sweep` on the journal at `state`, which must succeed.
    fn sweep(&self, state: &std::path::Path) -> std::process::Output {
        let out = self
            .moto
            .lifeboat(state)
            .arg("sweep")
            .output()
            .expect("sweep");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    }

    /// Drill `runbook`: production unchanged, the drill substituted, nothing
    /// of it left. The drill's step notes.
    async fn drill_leaves_production_alone(&self, runbook: &str) -> Vec<String> {
        let before = inventory(&self.aws, false).await;
        assert!(!before.is_empty());
        // Every request the drill makes, its teardown's included, is one
        // `iam-policy --mode drill` allows.
        let health = format!("health_url={}", self.health);
        let path = format!("runbooks/{runbook}");
        self.moto
            .enforce_policy(&[&path, "-p", &health, "--mode", "drill"]);
        let out = self.drill(runbook, &[]);
        self.moto.assert_authorized();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{runbook}:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("teardown: removed "),
            "{}",
            text(&out.stderr)
        );
        let after = inventory(&self.aws, false).await;
        let changed: Vec<String> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v} -> {:?}", after.get(k)))
            .chain(
                after
                    .keys()
                    .filter(|k| !before.contains_key(*k))
                    .map(|k| format!("new: {k}")),
            )
            .collect();
        assert!(
            changed.is_empty(),
            "{runbook} changed production:\n{}",
            changed.join("\n")
        );
        let left = inventory(&self.aws, true).await;
        assert!(
            left.is_empty(),
            "{runbook}: drill resources left: {left:#?}"
        );
        let state = self.dir.path().join("state");
        let runs = crate::support::lifeboat(&state, &["runs", "--output", "json"]);
        let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
        let id = runs[0]["id"].as_str().expect("id").to_string();
        let show = crate::support::lifeboat(&state, &["show", &id, "--output", "json"]);
        let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
        assert_eq!(show["mode"], "drill");
        let report = crate::support::lifeboat(&state, &["report", &id]);
        assert!(
            text(&report.stdout).contains("Drill"),
            "the report says it was a drill: {}",
            text(&report.stdout)
        );
        // What the drill's steps called is what `iam-policy --mode drill` grants.
        crate::support::iam::assert_covered(&state);
        show["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| {
                s["outputs"]["drill"]
                    .as_str()
                    .map(|n| format!("{}: {n}", s["step"]))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_of_the_shipped_runbooks_change_nothing_in_production() {
    let env = Env::new().await;
    lifeboat::demo::seed(&env.aws).await.expect("seed");
    crate::support::seed::snapshot_copied_to_dr(&env.aws, "app-db").await;
    crate::support::seed::db_subnet_group(&env.aws, "us-west-2", "app-db-subnets").await;
    crate::support::seed::launch_template(&env.aws, "us-west-2", "app-server").await;
    crate::support::seed::group(&env.aws, "app-asg", 1).await;

    let notes = env.drill_leaves_production_alone("pilot-light.yaml").await;
    let all = notes.join("\n");
    assert!(all.contains("app-db-replica was not promoted"), "{all}");
    assert!(
        all.contains("the standby instances were not started"),
        "{all}"
    );
    assert!(all.contains("drill-"), "DNS went to a drill name: {all}");

    let notes = env
        .drill_leaves_production_alone("backup-restore.yaml")
        .await;
    assert!(
        notes
            .join("\n")
            .contains("restored into app-db-restored-drill-"),
        "{notes:?}"
    );

    let notes = env.drill_leaves_production_alone("warm-standby.yaml").await;
    assert!(
        notes
            .join("\n")
            .contains("created the drill group app-asg-drill-"),
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_passive_drill_switches_a_copy_of_the_failover_pair() {
    let env = Env::new().await;
    crate::support::seed::primary_and_replica(&env.aws, "app-db", "app-db-replica").await;
    let zone = crate::support::seed::zone(&env.aws, "example.com", &[]).await;
    crate::support::seed::switched_failover_pair(&env.aws, &zone, "app.example.com").await;
    let notes = env
        .drill_leaves_production_alone("active-passive.yaml")
        .await;
    // The data-plane switch ran in the drill, under its own `DrillRun`
    // dimension: the metric production's alarm watches got no datapoint.
    let dimension_sets = crate::support::seed::switch_metric_dimensions(&env.aws).await;
    assert_eq!(
        dimension_sets,
        vec![vec!["DrillRun".to_string(), "Service".to_string()]],
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_az_drill_fails_nothing_over_and_says_where_the_primary_would_go() {
    let env = Env::new().await;
    crate::support::seed::strategy(&env.aws, "multi-az.yaml").await;
    let notes = env.drill_leaves_production_alone("multi-az.yaml").await;
    assert!(
        notes.iter().any(|n| n.starts_with(
            "\"database\": would reboot app-db with failover: its primary is in us-east-1a (available), its standby in us-east-1b"
        )),
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_killed_midway_is_swept_clean() {
    let env = Env::new().await;
    lifeboat::demo::seed(&env.aws).await.expect("seed");
    let before = inventory(&env.aws, false).await;
    // The drill stack's health check never answers: the drill waits in
    // its last step.
    let shipped = std::fs::read_to_string("runbooks/pilot-light.yaml").expect("runbook");
    let check = r#"with: { url: "${health_url}", status: 200, interval: 5s }"#;
    assert!(shipped.contains(check), "the shipped verify step changed");
    let runbook = env.dir.path().join("pilot-light.yaml");
    std::fs::write(
        &runbook,
        shipped.replace(
            check,
            r#"with: { url: "${health_url}", drill_url: "http://127.0.0.1:9/never", status: 200, interval: 5s }"#,
        ),
    )
    .expect("write runbook");
    let health = "health_url=http://127.0.0.1:9/production";
    let state = env.dir.path().join("state");
    let mut child = env
        .moto
        .lifeboat(&state)
        .args([
            "drill",
            runbook.to_str().expect("utf-8"),
            "--yes",
            "-p",
            health,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .expect("start the drill");
    let id = crate::support::started_run_id(&state, &mut child.0);
    crate::support::wait_for(&state, &id, "verify", "running");
    child.0.kill().expect("SIGKILL the drill");
    let _ = child.0.wait();
    assert!(
        !inventory(&env.aws, true).await.is_empty(),
        "the killed drill left its copies"
    );

    let sweep = env.sweep(&state);
    assert!(
        text(&sweep.stdout).contains("removed RDS instance app-db-replica-drill-"),
        "{}",
        text(&sweep.stdout)
    );
    let left = inventory(&env.aws, true).await;
    assert!(left.is_empty(), "left after sweep: {left:#?}");
    assert_eq!(
        inventory(&env.aws, false).await,
        before,
        "production unchanged"
    );
    let show = crate::support::lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(show["state"], "failed", "the dead drill is closed: {show}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_drill_resources_are_swept_when_the_daemon_starts() {
    let env = Env::new().await;
    lifeboat::demo::seed(&env.aws).await.expect("seed");
    let out = env.drill("pilot-light.yaml", &["--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("drill resources kept (--keep)"));
    assert!(
        !inventory(&env.aws, true).await.is_empty(),
        "kept for inspection"
    );

    let config = env.dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\nlisten: {{ metrics: \"127.0.0.1:0\", control: {} }}\nregions:\n  us-west-2:\n    probes: [ {{ name: api, aws_api: us-west-2, interval: 10s }} ]\n",
            env.dir.path().join("state").display(),
            env.dir.path().join("control.sock").display()
        ),
    )
    .expect("write config");
    let _daemon = env.moto.daemon(&env.dir.path().join("state"), &config);
    crate::support::eventually_async(
        std::time::Duration::from_secs(60),
        || "never swept".into(),
        || async { inventory(&env.aws, true).await.is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_drills_a_binding_on_its_schedule_and_tears_it_down() {
    let env = Env::new().await;
    lifeboat::demo::seed(&env.aws).await.expect("seed");
    let before = inventory(&env.aws, false).await;
    let runbook = std::env::current_dir()
        .expect("cwd")
        .join("runbooks/pilot-light.yaml");
    let state = env.dir.path().join("state");
    let config = env.dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}
listen: {{ metrics: \"127.0.0.1:0\", control: {} }}
regions:
  us-east-1:
    probes: [ {{ name: api, aws_api: us-east-1, interval: 30s }} ]
bindings:
  app:
    region: us-east-1
    runbook: {}
    params: {{ health_url: \"{}\" }}
    policy: notify
    drill: {{ schedule: \"*/3 * * * * *\" }}
",
            state.display(),
            env.dir.path().join("control.sock").display(),
            runbook.display(),
            env.health
        ),
    )
    .expect("write config");
    let _daemon = env.moto.daemon(&state, &config);
    let drilled = crate::support::eventually_async(
        std::time::Duration::from_secs(90),
        || "no scheduled drill finished".into(),
        || async {
            let journal =
                lifeboat::journal::Journal::open(&state, lifeboat::journal::Access::Client).ok()?;
            journal.runs().ok()?.into_iter().find(|r| {
                r.run.mode == "drill"
                    && r.state == "succeeded"
                    && journal
                        .marks(&r.run.id)
                        .is_ok_and(|m| m.iter().any(|m| m.kind == "teardown"))
            })
        },
    )
    .await;
    assert_eq!(drilled.run.started_by, "lifeboat daemon");
    // Drills may be going on at this moment; production is never touched.
    assert_eq!(inventory(&env.aws, false).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_scenario_drills_without_touching_production() {
    let env = Env::new().await;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let seeded = std::process::Command::new(python)
        .arg(scenario_seed())
        .args(["--scale", "2", "--endpoint", &env.moto.endpoint()])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run seed.py");
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let before = inventory(&env.aws, false).await;
    env.moto
        .enforce_policy(&["bench/failover.yaml", "--mode", "drill"]);
    let out = env
        .moto
        .lifeboat(&env.dir.path().join("state"))
        .args(["drill", "bench/failover.yaml", "--yes"])
        .output()
        .expect("run lifeboat drill");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.moto.assert_authorized();
    assert_eq!(
        inventory(&env.aws, false).await,
        before,
        "production unchanged"
    );
    let left = inventory(&env.aws, true).await;
    assert!(left.is_empty(), "drill resources left: {left:#?}");
    assert!(
        text(&out.stderr).contains("teardown: removed "),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_drill_rebuilds_only_drill_copies_and_is_torn_down() {
    let env = Env::new().await;
    // The state a failover leaves: the DR replica promoted, the primary
    // tier stopped, the DR tier running, DNS on the DR address.
    crate::support::seed::primary_and_replica(&env.aws, "app-db", "app-db-replica").await;
    env.aws
        .rds("us-west-2")
        .promote_read_replica()
        .db_instance_identifier("app-db-replica")
        .send()
        .await
        .expect("promote");
    crate::support::seed::db_subnet_group(&env.aws, "us-east-1", "app-db-subnets").await;
    crate::support::seed::db_subnet_group(&env.aws, "us-west-2", "app-db-subnets").await;
    crate::support::seed::stopped_instances(
        &env.aws,
        "us-east-1",
        2,
        &[("Role", "app"), ("Env", "primary")],
    )
    .await;
    crate::support::seed::running_instances(
        &env.aws,
        "us-west-2",
        2,
        &[("Role", "app"), ("Env", "dr")],
    )
    .await;
    crate::support::seed::zone(
        &env.aws,
        "example.com",
        &[("app.example.com".into(), "198.51.100.10".into())],
    )
    .await;
    let before = inventory(&env.aws, false).await;
    let state = env.dir.path().join("state");
    let health = format!("health_url={}", env.health);
    env.moto
        .enforce_policy(&["runbooks/failback.yaml", "-p", &health, "--mode", "drill"]);
    let mut child = env
        .moto
        .lifeboat(&state)
        .args(["drill", "runbooks/failback.yaml", "--yes", "-p", &health])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(KillOnDrop)
        .expect("start the drill");
    let id = crate::support::started_run_id(&state, &mut child.0);
    let approve = |step: &str| crate::support::lifeboat(&state, &["approve", &id, step]);
    crate::support::wait_for(&state, &id, "approve", "waiting");
    assert_eq!(approve("approve").status.code(), Some(0));
    crate::support::wait_for(&state, &id, "confirm-writes-stopped", "waiting");
    assert_eq!(approve("confirm-writes-stopped").status.code(), Some(0));
    let mut stderr = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let status = child.0.wait().expect("wait for the drill");
    // The drill's own replica catches up (its ReplicaLag published as RDS
    // would, by the emulator's guard), so the drill runs to its end.
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("teardown: removed "), "{stderr}");
    env.moto.assert_authorized();
    assert_eq!(
        inventory(&env.aws, false).await,
        before,
        "production unchanged"
    );
    let left = inventory(&env.aws, true).await;
    assert!(left.is_empty(), "drill resources left: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_s_rto_ends_when_the_drill_stack_answers_not_production() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::new().await;
    // An endpoint that counts its requests and fails the first `failing`.
    async fn counting(failing: usize) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    let status = if n <= failing {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    };
                    let _ = stream
                        .write_all(
                            format!("HTTP/1.1 {status}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        (url, seen)
    }
    // Production answers at once; the drill stack from its fourth request.
    let (production, production_seen) = counting(0).await;
    let (drill_stack, drill_seen) = counting(3).await;
    let write = |name: &str, drill_url: &str| {
        let path = env.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "name: drill-check
strategy: pilot-light
targets: {{ rto: 1m }}
steps:
  - {{ id: prepare, action: wait, with: {{ duration: 10ms }} }}
  - id: verify
    action: http.wait_healthy
    needs: [prepare]
    restores_service: true
    with: {{ url: \"{production}/healthz\", {drill_url} interval: 200ms }}
"
            ),
        )
        .expect("write runbook");
        path.to_str().expect("utf-8").to_string()
    };
    let state = env.dir.path().join("state");
    let drill = |file: &str| {
        let out = env
            .moto
            .lifeboat(&state)
            .args(["drill", file, "--yes"])
            .output()
            .expect("drill");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        env.moto.newest_report(&state)
    };

    // Pointed at the drill stack: the drill waits for it, not production.
    let pointed = write(
        "pointed.yaml",
        &format!("drill_url: \"{drill_stack}/healthz\","),
    );
    // The runtime's other worker serves the endpoints meanwhile.
    let report = tokio::task::block_in_place(|| drill(&pointed));
    assert_eq!(
        drill_seen.load(Ordering::SeqCst),
        4,
        "polled until it answered"
    );
    assert_eq!(
        production_seen.load(Ordering::SeqCst),
        0,
        "production untouched"
    );
    let rto = report["rto"]["seconds"].as_f64().expect("an RTO");
    // Three refusals 200 ms apart came before the answer.
    assert!(
        rto >= 0.6,
        "the RTO ends at the drill stack's answer: {rto}"
    );
    let notes = report["substitutions"].to_string();
    assert!(notes.contains("polled the drill stack at"), "{notes}");

    // Not pointed: production is not polled and no RTO is claimed.
    let unpointed = write("unpointed.yaml", "");
    let report = tokio::task::block_in_place(|| drill(&unpointed));
    assert!(report["rto"]["seconds"].is_null(), "{report}");
    assert_eq!(
        production_seen.load(Ordering::SeqCst),
        0,
        "production untouched"
    );
    assert_eq!(report["rto"]["verdict"], "not measurable");
    let how = report["rto"]["how"].as_str().expect("how");
    assert!(
        how.contains("`verify`") && how.contains("drill_url"),
        "{how}"
    );
}

/// A security group named `name` in `vpc`.
async fn security_group(ec2: &aws_sdk_ec2::Client, vpc: &str, name: &str) -> String {
    ec2.create_security_group()
        .group_name(name)
        .description(name)
        .vpc_id(vpc)
        .send()
        .await
        .expect("security group")
        .group_id()
        .expect("an id")
        .to_string()
}

/// The default VPC of `ec2`'s region.
async fn default_vpc(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.describe_vpcs()
        .send()
        .await
        .expect("vpcs")
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id().map(str::to_string))
        .expect("the default VPC")
}

/// The drill copies of `standby` (kept by `--keep`).
async fn copies_of(ec2: &aws_sdk_ec2::Client, standby: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    ec2.describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:lifeboat:drill-of")
                .values(standby)
                .build(),
        )
        .send()
        .await
        .expect("describe")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .cloned()
        .collect()
}

/// The newest run's report, in Markdown.
fn last_report(env: &Env, state: &std::path::Path) -> String {
    let runs = env
        .moto
        .lifeboat(state)
        .args(["runs", "--output", "json"])
        .output()
        .expect("runs");
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let report = env
        .moto
        .lifeboat(state)
        .args(["report", runs[0]["id"].as_str().expect("a run")])
        .output()
        .expect("report");
    text(&report.stdout)
}

const START_APP: &str = "name: start
strategy: warm-standby
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: start-app, action: ec2.start_instances, with: { tags: { Role: app } }, restores_service: true }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_copy_of_an_instance_carries_what_makes_its_source_work() {
    use aws_sdk_ec2::types::{
        BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, InstanceType,
        ResourceType, Tag, TagSpecification, VolumeType,
    };
    let env = Env::new().await;
    let ec2 = env.aws.ec2("us-west-2");
    let vpc = default_vpc(&ec2).await;
    let group = security_group(&ec2, &vpc, "app").await;
    ec2.create_key_pair()
        .key_name("app-key")
        .send()
        .await
        .expect("key pair");
    let iam = aws_sdk_iam::Client::new(&env.aws.config("us-east-1"));
    iam.create_role()
        .role_name("app")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("role");
    let profile = iam
        .create_instance_profile()
        .instance_profile_name("app")
        .send()
        .await
        .expect("instance profile")
        .instance_profile()
        .map(|p| p.arn().to_string())
        .expect("an ARN");
    iam.add_role_to_instance_profile()
        .instance_profile_name("app")
        .role_name("app")
        .send()
        .await
        .expect("role in profile");
    let image = ec2.describe_images().send().await.expect("images").images()[0]
        .image_id()
        .expect("an AMI")
        .to_string();
    // "#!/bin/sh\nexec /opt/app/serve\n", as EC2 takes user data: base64.
    let user_data = "IyEvYmluL3NoCmV4ZWMgL29wdC9hcHAvc2VydmUK";
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let standby = ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Micro)
        .security_group_ids(&group)
        .key_name("app-key")
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .arn(&profile)
                .build(),
        )
        .user_data(user_data)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(20)
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build(),
        )
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag("Role", "app"))
                .tags(tag("Team", "payments"))
                .tags(tag("Name", "app-standby"))
                .build(),
        )
        .send()
        .await
        .expect("standby")
        .instances()[0]
        .instance_id()
        .expect("an id")
        .to_string();
    ec2.stop_instances()
        .instance_ids(&standby)
        .send()
        .await
        .expect("stop");
    let write = |name: &str, drill: &str| {
        let path = env.dir.path().join(name);
        std::fs::write(&path, format!("{START_APP}{drill}")).expect("write runbook");
        path.to_str().expect("utf-8").to_string()
    };
    let state = env.dir.path().join("state");
    // A drill of `runbook` under its own least-privilege drill policy.
    let drill = |runbook: &str, extra: &[&str]| {
        env.moto.enforce_policy(&[runbook, "--mode", "drill"]);
        env.moto
            .lifeboat(&state)
            .args(["drill", runbook, "--yes"])
            .args(extra)
            .output()
            .expect("drill")
    };

    // A runbook that names no role the drill may pass: the copy launches
    // without the profile, as the policy (no iam:PassRole) requires, and
    // the report says so.
    let unnamed = write("unnamed.yaml", "");
    let out = drill(&unnamed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.moto.assert_authorized();
    let md = last_report(&env, &state);
    assert!(
        md.contains("Launched without their sources' instance profiles") && md.contains(&profile),
        "{md}"
    );

    // Another role named: AWS refuses to pass this one, and the error
    // says where the drill's roles are named.
    let other = write("other.yaml", "drill: { instance_roles: [other] }\n");
    let out = drill(&other, &[]);
    assert_ne!(out.status.code(), Some(0));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains("iam:PassRole") && said.contains("drill.instance_roles (other)"),
        "{said}"
    );

    // Its own role named: as the least-privilege drill policy allows, no
    // more (that role, passed to EC2 and nowhere else).
    let runbook = write("start.yaml", "drill: { instance_roles: [app] }\n");
    let out = drill(&runbook, &["--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.moto.assert_authorized();
    let copies = copies_of(&ec2, &standby).await;
    assert_eq!(copies.len(), 1, "one copy, kept");
    let copy = &copies[0];
    let copy_id = copy.instance_id().expect("an id").to_string();
    let groups: Vec<&str> = copy
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, [group.as_str()], "not the VPC's default group");
    assert_eq!(copy.key_name(), Some("app-key"));
    assert_eq!(
        copy.iam_instance_profile().and_then(|p| p.arn()),
        Some(profile.as_str()),
        "the source's instance profile"
    );
    let data = ec2
        .describe_instance_attribute()
        .instance_id(&copy_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .expect("user data");
    assert_eq!(
        data.user_data().and_then(|v| v.value()),
        Some(user_data),
        "the source's user data"
    );
    let volume = copy
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some("/dev/sdf"))
        .and_then(|m| m.ebs().and_then(|e| e.volume_id()))
        .expect("the copy has the source's extra volume")
        .to_string();
    let volumes = ec2
        .describe_volumes()
        .volume_ids(&volume)
        .send()
        .await
        .expect("volumes");
    let v = &volumes.volumes()[0];
    assert_eq!(
        (v.size(), v.volume_type()),
        (Some(20), Some(&VolumeType::Gp3))
    );
    let tags: std::collections::BTreeMap<&str, &str> = copy
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert_eq!(tags.get("Team"), Some(&"payments"), "{tags:?}");
    assert_eq!(tags.get("Role"), Some(&"app"), "{tags:?}");
    assert!(
        tags.get("Name").is_some_and(|n| n.contains("-drill-")),
        "{tags:?}"
    );
    assert!(tags.contains_key(lifeboat::iam::DRILL_TAG), "{tags:?}");
    let md = last_report(&env, &state);
    assert!(md.contains("The drill shares production's network"), "{md}");
    assert!(md.contains(&group), "{md}");
    assert!(md.contains("/dev/sdf of"), "the empty volume is said: {md}");

    // The copy carries production's tags, but production's selectors do
    // not pick it up: a failover by tag starts the standby, not the copy.
    let failover_state = env.dir.path().join("failover");
    env.moto.enforce_policy(&[&runbook]);
    let out = env
        .moto
        .lifeboat(&failover_state)
        .args(["run", &runbook, "--yes"])
        .output()
        .expect("failover");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let show = env
        .moto
        .lifeboat(&failover_state)
        .args(["runs", "--output", "json"])
        .output()
        .expect("runs");
    let runs: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let show = env
        .moto
        .lifeboat(&failover_state)
        .args([
            "show",
            runs[0]["id"].as_str().expect("a run"),
            "--output",
            "json",
        ])
        .output()
        .expect("show");
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(
        show["steps"][0]["outputs"]["instance_ids"],
        serde_json::json!([standby]),
        "{show:#}"
    );

    env.moto.enforce_policy(&[&runbook, "--mode", "drill"]);
    env.sweep(&state);
    env.moto.assert_authorized();
    assert!(
        inventory(&env.aws, true).await.is_empty(),
        "the kept copy is swept"
    );
    let left = ec2
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values(lifeboat::iam::DRILL_TAG)
                .build(),
        )
        .send()
        .await
        .expect("volumes");
    let left: Vec<_> = left
        .volumes()
        .iter()
        .filter(|v| v.state().map(|s| s.as_str()) != Some("deleted"))
        .filter_map(|v| v.volume_id())
        .collect();
    assert!(left.is_empty(), "drill volumes left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_places_its_copies_where_the_runbook_s_drill_section_says() {
    use aws_sdk_ec2::types::InstanceType;
    let env = Env::new().await;
    let ec2 = env.aws.ec2("us-west-2");
    let production = default_vpc(&ec2).await;
    let app = security_group(&ec2, &production, "app").await;
    // An isolated drill network: its own VPC, subnet and security group.
    let drill_vpc = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .expect("vpc")
        .vpc()
        .and_then(|v| v.vpc_id().map(str::to_string))
        .expect("an id");
    let drill_subnet = ec2
        .create_subnet()
        .vpc_id(&drill_vpc)
        .cidr_block("10.99.1.0/24")
        .availability_zone("us-west-2b")
        .send()
        .await
        .expect("subnet")
        .subnet()
        .and_then(|s| s.subnet_id().map(str::to_string))
        .expect("an id");
    let drill_group = security_group(&ec2, &drill_vpc, "drill").await;
    let image = ec2.describe_images().send().await.expect("images").images()[0]
        .image_id()
        .expect("an AMI")
        .to_string();
    let standby = ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Micro)
        .security_group_ids(&app)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Role")
                        .value("app")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("standby")
        .instances()[0]
        .instance_id()
        .expect("an id")
        .to_string();
    let state = env.dir.path().join("state");
    let drill = |name: &str, section: &str| {
        let path = env.dir.path().join(name);
        std::fs::write(&path, format!("{START_APP}drill: {section}\n")).expect("write");
        env.moto
            .lifeboat(&state)
            .args(["drill", path.to_str().expect("utf-8"), "--yes", "--keep"])
            .output()
            .expect("drill")
    };

    // The drill subnet is in another VPC than the source's security
    // groups, and the drill names none of its own: refused, saying why.
    let out = drill("mismatch.yaml", &format!("{{ subnets: [{drill_subnet}] }}"));
    assert_ne!(out.status.code(), Some(0));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("drill.security_groups"), "{said}");
    assert!(
        copies_of(&ec2, &standby).await.is_empty(),
        "nothing launched"
    );

    let out = drill(
        "isolated.yaml",
        &format!("{{ subnets: [{drill_subnet}], security_groups: [{drill_group}] }}"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let copies = copies_of(&ec2, &standby).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].subnet_id(), Some(drill_subnet.as_str()));
    assert_eq!(copies[0].vpc_id(), Some(drill_vpc.as_str()));
    let groups: Vec<&str> = copies[0]
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, [drill_group.as_str()]);
    let md = last_report(&env, &state);
    assert!(!md.contains("shares production's network"), "{md}");
    assert!(md.contains(&drill_group), "{md}");

    // A bad id in `drill:` is an error of the runbook, located.
    let path = env.dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        format!("{START_APP}drill: {{ subnets: [{drill_group}] }}\n"),
    )
    .expect("write");
    let out = env
        .moto
        .lifeboat(&state)
        .args(["validate", path.to_str().expect("utf-8")])
        .output()
        .expect("validate");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("bad.yaml:6"), "{said}");
    assert!(said.contains("`drill.subnets`"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_standby_drill_scales_a_drill_group_of_its_own_and_tears_it_down() {
    let env = Env::new().await;
    lifeboat::demo::seed(&env.aws).await.expect("seed");
    crate::support::seed::group(&env.aws, "app-asg", 1).await;
    let asg = env.aws.autoscaling("us-west-2");
    let before = inventory(&env.aws, false).await;
    let state = env.dir.path().join("state");
    let health = format!("health_url={}", env.health);
    env.moto.enforce_policy(&[
        "runbooks/warm-standby.yaml",
        "-p",
        &health,
        "--mode",
        "drill",
    ]);
    let out = env.drill("warm-standby.yaml", &["--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.moto.assert_authorized();

    let groups = asg
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("groups");
    let drill_group = groups
        .auto_scaling_groups()
        .iter()
        .find(|g| {
            g.tags()
                .iter()
                .any(|t| t.key() == Some(lifeboat::iam::DRILL_TAG))
        })
        .expect("a drill group");
    assert_eq!(
        drill_group.desired_capacity(),
        Some(6),
        "the failover's capacity"
    );
    let in_service = drill_group
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
        .count();
    assert_eq!(in_service, 6);
    assert_eq!(
        drill_group
            .launch_template()
            .and_then(|t| t.launch_template_name()),
        Some("app-asg-template"),
        "the production group's template"
    );
    let production = groups
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some("app-asg"))
        .expect("the production group");
    assert_eq!(production.desired_capacity(), Some(1), "left as it was");

    let md = last_report(&env, &state);
    assert!(md.contains("created the drill group"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| scale-app |"))
        .expect("the scale step in the report");
    let duration = row.split('|').nth(5).expect("a duration column").trim();
    assert!(duration.ends_with(" s"), "its duration is measured: {row}");

    let sweep = env.sweep(&state);
    assert!(
        text(&sweep.stdout).contains("removed Auto Scaling group app-asg-drill-"),
        "{}",
        text(&sweep.stdout)
    );
    assert!(
        inventory(&env.aws, true).await.is_empty(),
        "the drill group and its instances are gone: {:#?}",
        inventory(&env.aws, true).await
    );
    assert_eq!(
        inventory(&env.aws, false).await,
        before,
        "production unchanged"
    );
}

const PROMOTE_DB: &str = "name: promote
strategy: active-passive
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: promote-db, action: rds.promote_read_replica, with: { db_instance: app-replica }, restores_service: true }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_database_carries_its_source_s_groups_or_goes_where_the_drill_section_says() {
    let env = Env::new().await;
    crate::support::seed::primary_and_replica(&env.aws, "app-db", "app-replica").await;
    let rds = env.aws.rds("us-west-2");
    let ec2 = env.aws.ec2("us-west-2");
    rds.create_db_parameter_group()
        .db_parameter_group_name("app-pg")
        .db_parameter_group_family("postgres16")
        .description("the app's settings")
        .send()
        .await
        .expect("parameter group");
    let vpc = default_vpc(&ec2).await;
    let app = security_group(&ec2, &vpc, "app-db").await;
    rds.modify_db_instance()
        .db_instance_identifier("app-replica")
        .db_parameter_group_name("app-pg")
        .vpc_security_group_ids(&app)
        .apply_immediately(true)
        .send()
        .await
        .expect("modify the replica");
    let state = env.dir.path().join("state");
    let drill = |name: &str, section: &str| {
        let path = env.dir.path().join(name);
        std::fs::write(&path, format!("{PROMOTE_DB}{section}")).expect("write");
        env.moto
            .lifeboat(&state)
            .args(["drill", path.to_str().expect("utf-8"), "--yes", "--keep"])
            .output()
            .expect("drill")
    };
    let copy_of = |run: String| {
        let rds = rds.clone();
        async move {
            rds.describe_db_instances()
                .db_instance_identifier(lifeboat::actions::drill::name("app-replica", &run))
                .send()
                .await
                .expect("the drill copy")
                .db_instances()[0]
                .clone()
        }
    };
    let newest_run = || {
        let runs = crate::support::lifeboat(&state, &["runs", "--output", "json"]);
        let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
        runs[0]["id"].as_str().expect("a run").to_string()
    };
    let groups = |db: &aws_sdk_rds::types::DbInstance| {
        (
            db.db_parameter_groups()
                .iter()
                .filter_map(|g| g.db_parameter_group_name())
                .map(str::to_string)
                .collect::<Vec<_>>(),
            db.vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id())
                .map(str::to_string)
                .collect::<Vec<_>>(),
            db.db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_string),
        )
    };

    // No `drill:` section: the copy takes the replica's groups, in its
    // network, and the report says the drill shares production's.
    let out = drill("shared.yaml", "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let source = seed_db(&env, "app-replica").await;
    let copy = copy_of(newest_run()).await;
    let (parameters, security, subnets) = groups(&copy);
    assert_eq!(parameters, ["app-pg"]);
    assert_eq!(security, [app]);
    assert_eq!(subnets, groups(&source).2);
    let md = last_report(&env, &state);
    assert!(md.contains("shares production's network"), "{md}");

    // A drill subnet group and security group: the copy goes there and
    // keeps the replica's parameter group.
    crate::support::seed::db_subnet_group(&env.aws, "us-west-2", "drill-db").await;
    let drill_vpc = rds
        .describe_db_subnet_groups()
        .db_subnet_group_name("drill-db")
        .send()
        .await
        .expect("subnet group")
        .db_subnet_groups()[0]
        .vpc_id()
        .expect("its VPC")
        .to_string();
    let isolated = security_group(&ec2, &drill_vpc, "drill-db").await;
    let out = drill(
        "isolated.yaml",
        &format!("drill: {{ db_subnet_group: drill-db, db_security_groups: [{isolated}] }}\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let copy = copy_of(newest_run()).await;
    let (parameters, security, subnets) = groups(&copy);
    assert_eq!(parameters, ["app-pg"]);
    assert_eq!(security, [isolated]);
    assert_eq!(subnets.as_deref(), Some("drill-db"));
    let md = last_report(&env, &state);
    assert!(!md.contains("shares production's network"), "{md}");

    // The replica itself is still a replica, with its own groups.
    let after = seed_db(&env, "app-replica").await;
    assert!(after.read_replica_source_db_instance_identifier().is_some());
    assert_eq!(groups(&after), groups(&source));
    env.sweep(&state);
    assert!(
        inventory(&env.aws, true).await.is_empty(),
        "the sweep left drill resources"
    );
}

async fn seed_db(env: &Env, id: &str) -> aws_sdk_rds::types::DbInstance {
    crate::support::seed::db(&env.aws, "us-west-2", id)
        .await
        .expect("the instance")
}

/// The sources each drill copy stands for, from its `lifeboat:drill-of`
/// (its launch's sources) and its position among its launch's copies.
fn copy_sources(
    copies: &[aws_sdk_ec2::types::Instance],
) -> std::collections::BTreeMap<String, String> {
    let mut by_launch: std::collections::BTreeMap<String, Vec<&aws_sdk_ec2::types::Instance>> =
        Default::default();
    for c in copies {
        let of = c
            .tags()
            .iter()
            .find(|t| t.key() == Some("lifeboat:drill-of"))
            .and_then(|t| t.value())
            .expect("a drill copy names its sources")
            .to_string();
        by_launch.entry(of).or_default().push(c);
    }
    by_launch
        .into_iter()
        .flat_map(|(of, copies)| {
            let sources: Vec<String> = of.split(' ').map(str::to_string).collect();
            assert_eq!(sources.len(), copies.len(), "one copy per source of {of}");
            copies
                .into_iter()
                .zip(sources)
                .map(|(c, s)| (c.instance_id().expect("id").to_string(), s))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A drill's copies of many standby instances go out in one RunInstances
/// per launch spec, each copy knowing its source; a resumed step launches
/// nothing; a copy lost is replaced for its own source alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_launches_its_copies_in_one_call_per_spec_and_never_twice() {
    use lifeboat::actions::Registry;
    use lifeboat::catalogue::ActionInput;
    use lifeboat::catalogue::ec2::Instances;
    use lifeboat::engine::Actions;
    use lifeboat::runbook::Mode;

    const REGION: &str = "us-west-2";
    let env = Env::new().await;
    let web = crate::support::seed::stopped_instances(
        &env.aws,
        REGION,
        3,
        &[("Role", "app"), ("Tier", "web")],
    )
    .await;
    let api = crate::support::seed::stopped_instances(
        &env.aws,
        REGION,
        2,
        &[("Role", "app"), ("Tier", "api")],
    )
    .await;
    let registry = Registry::with_aws(env.aws.clone());
    let mut ctx = crate::support::step_context("20261203T100000-0001", "start-app", REGION);
    ctx.mode = Mode::Drill;
    let input = ActionInput::Ec2StartInstances(Instances {
        instance_ids: None,
        tags: Some(
            [("Role".to_string(), "app".to_string())]
                .into_iter()
                .collect(),
        ),
        alternative_instance_types: vec![],
    });
    let ec2 = env.aws.ec2(REGION);
    let launches = |aws: &AwsClients| {
        aws.calls()
            .mutating()
            .get("EC2.RunInstances")
            .copied()
            .unwrap_or(0)
    };

    let seeded = launches(&env.aws);
    let out = registry.run(&ctx, &input).await.expect("drill start");
    assert_eq!(
        launches(&env.aws) - seeded,
        2,
        "one RunInstances per launch spec (the Tier tag differs)"
    );
    let copies: std::collections::BTreeMap<String, String> =
        serde_json::from_value(out["copies"].clone()).expect("copies by source");
    let sources: std::collections::BTreeSet<&String> = web.iter().chain(&api).collect();
    assert_eq!(
        copies.keys().collect::<std::collections::BTreeSet<_>>(),
        sources
    );
    let copy_ids: std::collections::BTreeSet<&String> = copies.values().collect();
    assert_eq!(
        copy_ids.len(),
        5,
        "a copy of its own for each source: {copies:?}"
    );
    let described = ec2
        .describe_instances()
        .set_instance_ids(Some(copies.values().cloned().collect()))
        .send()
        .await
        .expect("describe copies");
    assert_eq!(described.reservations().len(), 2, "two launches");
    let all: Vec<aws_sdk_ec2::types::Instance> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect();
    let tagged = copy_sources(&all);
    for (source, copy) in &copies {
        assert_eq!(
            tagged.get(copy),
            Some(source),
            "{copy}'s tags name its source"
        );
        let tier = |id: &str| {
            all.iter()
                .find(|i| i.instance_id() == Some(id))
                .and_then(|i| i.tags().iter().find(|t| t.key() == Some("Tier")))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let expected = if web.contains(source) { "web" } else { "api" };
        assert_eq!(
            tier(copy).as_deref(),
            Some(expected),
            "{copy} carries its source's tags"
        );
    }
    let standby_states = ec2
        .describe_instances()
        .set_instance_ids(Some(web.iter().chain(&api).cloned().collect()))
        .send()
        .await
        .expect("describe standby");
    assert!(
        standby_states
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .all(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("stopped")),
        "the standby instances stay stopped"
    );

    // Resumed: every source has its copy; nothing is launched.
    let mut resumed = ctx.clone();
    resumed.resumed = true;
    resumed.attempt = 2;
    let again = registry.run(&resumed, &input).await.expect("resumed");
    assert_eq!(launches(&env.aws) - seeded, 2, "nothing launched again");
    assert_eq!(again["copies"], out["copies"]);

    // One copy lost: another step of the drill copies that source alone.
    let lost_source = api[0].clone();
    ec2.terminate_instances()
        .instance_ids(&copies[&lost_source])
        .send()
        .await
        .expect("terminate one copy");
    let mut later = ctx.clone();
    later.step_id = "start-app-again".into();
    let third = registry.run(&later, &input).await.expect("after a loss");
    assert_eq!(launches(&env.aws) - seeded, 3, "one more launch");
    let now: std::collections::BTreeMap<String, String> =
        serde_json::from_value(third["copies"].clone()).expect("copies");
    for (source, copy) in &copies {
        if *source == lost_source {
            assert_ne!(&now[source], copy, "a new copy for the lost one");
        } else {
            assert_eq!(&now[source], copy, "{source} kept its copy");
        }
    }

    let regions = [REGION.to_string()].into_iter().collect();
    let which = lifeboat::actions::drill::Which::Run(ctx.run_id.clone());
    let t = lifeboat::actions::drill::teardown(&env.aws, &regions, &which).await;
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert_eq!(
        t.removed
            .iter()
            .filter(|r| r.starts_with("EC2 instance"))
            .count(),
        5,
        "{:?}",
        t.removed
    );
}
