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
            .contains("would set group app-asg to desired"),
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

    let sweep = env
        .moto
        .lifeboat(&state)
        .arg("sweep")
        .output()
        .expect("sweep");
    assert_eq!(sweep.status.code(), Some(0), "{}", text(&sweep.stderr));
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
    // tier stopped, DNS on the DR address.
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
        let runs = env
            .moto
            .lifeboat(&state)
            .args(["runs", "--output", "json"])
            .output()
            .expect("runs");
        let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
        let id = runs[0]["id"].as_str().expect("a run").to_string();
        let report = env
            .moto
            .lifeboat(&state)
            .args(["report", &id, "--format", "json"])
            .output()
            .expect("report");
        serde_json::from_slice::<serde_json::Value>(&report.stdout).expect("report JSON")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_copy_of_an_instance_keeps_its_security_groups_and_key_pair() {
    use aws_sdk_ec2::types::{Filter, InstanceType};
    let env = Env::new().await;
    let ec2 = env.aws.ec2("us-west-2");
    let vpc = ec2
        .describe_vpcs()
        .send()
        .await
        .expect("vpcs")
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id().map(str::to_string))
        .expect("the default VPC");
    let group = ec2
        .create_security_group()
        .group_name("app")
        .description("the app tier")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("security group")
        .group_id()
        .expect("an id")
        .to_string();
    ec2.create_key_pair()
        .key_name("app-key")
        .send()
        .await
        .expect("key pair");
    let image = ec2.describe_images().send().await.expect("images").images()[0]
        .image_id()
        .expect("an AMI")
        .to_string();
    let standby = ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Micro)
        .security_group_ids(&group)
        .key_name("app-key")
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
    ec2.stop_instances()
        .instance_ids(&standby)
        .send()
        .await
        .expect("stop");
    let runbook = env.dir.path().join("start.yaml");
    std::fs::write(
        &runbook,
        "name: start
strategy: warm-standby
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: start-app, action: ec2.start_instances, with: { tags: { Role: app } }, restores_service: true }
",
    )
    .expect("write runbook");
    let state = env.dir.path().join("state");
    // As the least-privilege drill policy allows, no more.
    env.moto
        .enforce_policy(&[runbook.to_str().expect("utf-8"), "--mode", "drill"]);
    let out = env
        .moto
        .lifeboat(&state)
        .args(["drill", runbook.to_str().expect("utf-8"), "--yes", "--keep"])
        .output()
        .expect("drill");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let copies = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:lifeboat:drill-of")
                .values(&standby)
                .build(),
        )
        .send()
        .await
        .expect("describe");
    let copy = copies
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .expect("a drill copy, kept");
    let groups: Vec<&str> = copy
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, [group.as_str()], "not the VPC's default group");
    assert_eq!(copy.key_name(), Some("app-key"));
    let runs = env
        .moto
        .lifeboat(&state)
        .args(["runs", "--output", "json"])
        .output()
        .expect("runs");
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let report = env
        .moto
        .lifeboat(&state)
        .args(["report", runs[0]["id"].as_str().expect("a run")])
        .output()
        .expect("report");
    let md = text(&report.stdout);
    assert!(md.contains("The drill shares production's network"), "{md}");
    assert!(md.contains(&group), "{md}");

    let sweep = env
        .moto
        .lifeboat(&state)
        .arg("sweep")
        .output()
        .expect("sweep");
    assert_eq!(sweep.status.code(), Some(0), "{}", text(&sweep.stderr));
    assert!(
        inventory(&env.aws, true).await.is_empty(),
        "the kept copy is swept"
    );
}
