//! Reliability through the simulation proxy (`proxy`): lifeboat against
//! an AWS that fails a fifth of its calls, and against a resource that
//! never reaches the state a step waits for.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat::journal::{Access, Journal};

use crate::support::moto::Moto;
use crate::support::proxy::{Fault, Proxy, Rules};
use crate::support::text;

/// `lifeboat run runbooks/RUNBOOK --yes -p health_url=HEALTH`, its journal
/// in `state`, its AWS calls through `proxy`.
fn shipped_run(
    moto: &Moto,
    proxy: &Proxy,
    state: &std::path::Path,
    runbook: &str,
    health: &str,
) -> std::process::Command {
    let mut command = moto.lifeboat(state);
    command
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["run", &format!("runbooks/{runbook}"), "--yes", "-p"])
        .arg(format!("health_url={health}"));
    command
}

/// `lifeboat show --output json` of the last run in `state`.
fn last_run(state: &std::path::Path) -> serde_json::Value {
    let runs = crate::support::lifeboat(state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("id");
    let show = crate::support::lifeboat(state, &["show", id, "--output", "json"]);
    serde_json::from_slice(&show.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_calls_failing_still_fails_over_within_the_retry_budget() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let seeded = lifeboat::demo::seed(&aws).await.expect("seed");
    moto.start_recording();
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            seed: 7,
            fault_rate: BTreeMap::from([("*".to_string(), 0.2)]),
            faults: vec![
                Fault::Internal,
                Fault::Unavailable,
                Fault::Throttle,
                Fault::Reset,
            ],
            ..Rules::default()
        },
    )
    .await;
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let out = shipped_run(&moto, &proxy, &state, "pilot-light.yaml", &health)
        .output()
        .expect("run lifeboat");
    let injected = proxy.injections();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} faults injected: {injected:?}\n{}",
        injected.len(),
        text(&out.stderr)
    );
    assert!(!injected.is_empty(), "faults were injected");

    // The end state is right, and every change reached AWS once.
    let db = crate::support::seed::db(&aws, "us-west-2", "app-db-replica").await;
    assert_eq!(db.and_then(|d| d.backup_retention_period()), Some(7));
    assert_eq!(
        crate::support::seed::a_record(&aws, &seeded.zone_id, "app.example.com").await,
        vec!["198.51.100.10"]
    );
    let changes = moto.changes();
    for (op, n) in &changes {
        assert_eq!(*n, 1, "{op} reached AWS {n} times: {changes:?}");
    }

    // The journal saw the faults: attempts beyond one for the operations
    // that were failed.
    let journal = Journal::open(&state, Access::Client).expect("journal");
    let id = journal.runs().expect("runs")[0].run.id.clone();
    let mut attempts: BTreeMap<String, u64> = BTreeMap::new();
    for logged in journal.calls(&id).expect("calls") {
        for (op, n) in logged.calls {
            *attempts.entry(op).or_default() += n;
        }
    }
    let faulted: Vec<&str> = injected.iter().map(|i| i.operation.as_str()).collect();
    assert!(
        attempts
            .iter()
            .any(|(op, n)| *n > 1 && faulted.iter().any(|f| op.ends_with(f))),
        "retried attempts in the journal: {attempts:?}, faults {faulted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_never_settles_times_out_at_the_deadline_and_rolls_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            seed: 1,
            transitions: BTreeMap::from([(
                "PromoteReadReplica".to_string(),
                ("modifying".to_string(), Duration::from_secs(3600)),
            )]),
            ..Rules::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("rolled-back");
    let runbook = dir.path().join("stuck.yaml");
    std::fs::write(
        &runbook,
        format!(
            "name: stuck
strategy: pilot-light
regions: {{ from: us-east-1, to: us-west-2 }}
steps:
  - id: announce
    action: exec
    with: {{ argv: [true] }}
    rollback: {{ action: exec, with: {{ argv: [touch, {}] }} }}
  - id: promote
    action: rds.promote_read_replica
    needs: [announce]
    with: {{ db_instance: app-db-replica }}
    timeout: 4s
    on_failure: rollback
    restores_service: true
",
            marker.display()
        ),
    )
    .expect("write runbook");
    let state = dir.path().join("state");
    let out = moto
        .lifeboat(&state)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["run", runbook.to_str().expect("utf-8"), "--yes"])
        .output()
        .expect("run lifeboat");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let show = last_run(&state);
    let promote = show["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == "promote"))
        .cloned()
        .expect("promote");
    assert_eq!(promote["state"], "failed", "{show}");
    let message = promote["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("modifying") && (message.contains("4s") || message.contains("deadline")),
        "a clear error naming the state it was stuck in and the deadline: {message}"
    );
    assert!(
        marker.exists(),
        "on_failure: rollback ran the earlier step's rollback"
    );
    assert!(
        proxy
            .injections()
            .iter()
            .any(|i| i.what == "transition modifying")
    );
}

/// Each other shipped runbook (but failback, whose approvals this test
/// does not give) completes with a fifth of its calls failing, each change
/// reaching AWS once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_fails_over_through_a_fifth_of_calls_failing() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    for (n, runbook) in [
        "backup-restore.yaml",
        "warm-standby.yaml",
        "active-passive.yaml",
    ]
    .into_iter()
    .enumerate()
    {
        moto.reset();
        crate::support::seed::strategy(&aws, runbook).await;
        moto.start_recording();
        let proxy = Proxy::start(
            &moto.endpoint(),
            Rules {
                seed: 11 + n as u64,
                fault_rate: BTreeMap::from([("*".to_string(), 0.2)]),
                faults: vec![
                    Fault::Internal,
                    Fault::Unavailable,
                    Fault::Throttle,
                    Fault::Reset,
                ],
                ..Rules::default()
            },
        )
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let out = shipped_run(&moto, &proxy, &dir.path().join("state"), runbook, &health)
            .output()
            .expect("run lifeboat");
        let injected = proxy.injections();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{runbook}: {} faults injected: {injected:?}\n{}",
            injected.len(),
            text(&out.stderr)
        );
        assert!(!injected.is_empty(), "{runbook}: faults were injected");
        let changes = moto.changes();
        for (op, count) in &changes {
            assert_eq!(
                *count, 1,
                "{runbook}: {op} reached AWS {count} times: {changes:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_slower_than_the_attempt_timeout_are_abandoned_and_retried() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    lifeboat::demo::seed(&aws).await.expect("seed");
    moto.start_recording();
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            seed: 3,
            fault_rate: BTreeMap::from([("*".to_string(), 0.15)]),
            faults: vec![Fault::Stall(Duration::from_secs(5))],
            ..Rules::default()
        },
    )
    .await;
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = shipped_run(
        &moto,
        &proxy,
        &dir.path().join("state"),
        "pilot-light.yaml",
        &health,
    )
    .env("LIFEBOAT_AWS_ATTEMPT_TIMEOUT", "1s")
    .output()
    .expect("run lifeboat");
    let stalled = proxy.injections();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stalled:?}\n{}",
        text(&out.stderr)
    );
    assert!(
        stalled.iter().any(|i| i.what.starts_with("Stall")),
        "answers were held past the timeout: {stalled:?}"
    );
    let changes = moto.changes();
    for (op, n) in &changes {
        assert_eq!(*n, 1, "{op} reached AWS {n} times: {changes:?}");
    }
}

/// Changes that take time, as on AWS: through the proxy a promoted
/// replica reads `modifying`, started instances `pending` and the Route 53
/// change `PENDING` for 2 s each (every call also 20 ms slower). The
/// pilot-light run waits each out, polling, and finishes; no wait step
/// ends before its resource settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_last_until_rds_ec2_and_route53_changes_settle() {
    use crate::support::proxy::Latency;
    let moto = Moto::start();
    let aws = moto.clients().await;
    lifeboat::demo::seed(&aws).await.expect("seed");
    let hold = Duration::from_secs(2);
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            seed: 5,
            latency: BTreeMap::from([("*".to_string(), Latency::fixed(Duration::from_millis(20)))]),
            transitions: BTreeMap::from([
                (
                    "PromoteReadReplica".to_string(),
                    ("modifying".to_string(), hold),
                ),
                ("StartInstances".to_string(), ("pending".to_string(), hold)),
                (
                    "ChangeResourceRecordSets".to_string(),
                    ("PENDING".to_string(), hold),
                ),
            ]),
            ..Rules::default()
        },
    )
    .await;
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let out = shipped_run(&moto, &proxy, &state, "pilot-light.yaml", &health)
        .output()
        .expect("run lifeboat");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Every transition was applied, and each was polled through: after
    // the change, more than one look at the resource.
    let requests = proxy.requests();
    for (change, look) in [
        ("PromoteReadReplica", "DescribeDBInstances"),
        ("StartInstances", "DescribeInstanceStatus"),
        ("ChangeResourceRecordSets", "GetChange"),
    ] {
        let at = requests
            .iter()
            .position(|r| r.operation == change)
            .unwrap_or_else(|| panic!("no {change}: {requests:?}"));
        let looks = requests[at..]
            .iter()
            .filter(|r| r.operation == look)
            .count();
        assert!(looks > 1, "{change}: {looks} {look} after it: {requests:?}");
    }
    // A step that waits for a change ends no sooner than the change
    // settles (a lower bound, which a slow machine only makes longer).
    let show = last_run(&state);
    for step in ["promote-db", "start-app", "switch-dns"] {
        let row = show["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["step"] == step))
            .unwrap_or_else(|| panic!("no {step}: {show}"));
        assert_eq!(row["state"], "succeeded", "{show}");
        let ms = row["duration_ms"].as_i64().expect("duration");
        assert!(
            ms >= hold.as_millis() as i64,
            "{step} ended after {ms} ms, before its change settled"
        );
    }
}

/// The journal's disk fills up mid-run (the run's file size limit, with
/// SIGXFSZ ignored: each write past it fails as on a full disk). Tried at
/// limits 24 KiB apart until the run fits: each time the run stops with an
/// error naming the journal and the way to resume, exit 3; nothing
/// changed in AWS for a step the journal had not recorded as running; the
/// journal passes SQLite's integrity check and `show` reads it; and
/// `run --resume` with room again finishes the run, each change made once
/// across both processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_disk_stops_the_run_at_a_boundary_and_resume_finishes_it() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    let step_of = |op: &str| match op {
        "PromoteReadReplica" => "promote-db",
        "StartInstances" => "start-app",
        "ChangeResourceRecordSets" => "switch-dns",
        other => panic!("an unexpected change: {other}"),
    };
    let mut stopped = 0;
    for kib in (64..).step_by(24) {
        assert!(kib < 512, "the run never fitted in the journal");
        moto.reset();
        lifeboat::demo::seed(&aws).await.expect("seed");
        moto.start_recording();
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let base = moto.lifeboat(&state);
        let mut limited = std::process::Command::new("bash");
        limited
            .arg("-c")
            .arg(r#"trap '' XFSZ; ulimit -f "$0"; exec "$@""#)
            .arg(kib.to_string())
            .arg(base.get_program())
            .args(["run", "runbooks/pilot-light.yaml", "--yes", "-p"])
            .arg(format!("health_url={health}"))
            .stdin(std::process::Stdio::null());
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => limited.env(k, v),
                None => limited.env_remove(k),
            };
        }
        let out = limited.output().expect("run lifeboat");
        if out.status.success() {
            break;
        }
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{kib} KiB: {stderr}");
        let journal_file = state.join("journal.sqlite");
        let db = rusqlite::Connection::open(&journal_file).expect("open the journal");
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity check");
        assert_eq!(check, "ok", "{kib} KiB");
        drop(db);
        let journal = Journal::open(&state, Access::Client).expect("journal");
        let Some(run) = journal.runs().expect("runs").first().cloned() else {
            // The limit stopped it before the run was recorded: nothing ran.
            assert!(stderr.contains("journal"), "{kib} KiB: {stderr}");
            assert!(moto.changes().is_empty(), "{kib} KiB: {:?}", moto.changes());
            continue;
        };
        assert!(
            stderr.contains("the journal could not be written") && stderr.contains("--resume"),
            "{kib} KiB: a clear error: {stderr}"
        );
        let id = run.run.id.clone();
        assert_eq!(run.state, "running", "{kib} KiB: left to resume");
        let running: Vec<String> = journal
            .events(&id)
            .expect("events")
            .into_iter()
            .filter(|e| e.state == "running")
            .map(|e| e.step)
            .collect();
        for op in moto.changes().keys() {
            assert!(
                running.iter().any(|s| s == step_of(op)),
                "{kib} KiB: {op} reached AWS, but its step was never journaled as running: {running:?}"
            );
        }
        let show = crate::support::lifeboat(&state, &["show", &id]);
        assert!(show.status.success(), "{}", text(&show.stderr));
        stopped += 1;
        eprintln!("{kib} KiB: stopped after journaling {running:?} as running");

        let resumed = moto
            .lifeboat(&state)
            .args(["run", "--resume", &id, "--yes"])
            .output()
            .expect("resume");
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{kib} KiB: {}",
            text(&resumed.stderr)
        );
        assert_eq!(journal.run(&id).expect("run").state, "succeeded");
        let changes = moto.changes();
        for (op, n) in &changes {
            assert_eq!(*n, 1, "{kib} KiB: {op} reached AWS {n} times: {changes:?}");
        }
        assert_eq!(
            changes.len(),
            3,
            "{kib} KiB: every change made: {changes:?}"
        );
    }
    assert!(stopped >= 2, "the disk filled mid-run {stopped} time(s)");
}

/// The faults show in the daemon's metrics: a run the daemon starts by
/// hand (`lifeboat trigger`) through an AWS failing a fifth of its calls
/// succeeds, and `/metrics` counts the failed attempts by the codes the
/// proxy answered with (a reset has no code: it counts as the client's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_s_metrics_count_the_faults_a_run_retried_through() {
    use crate::support::{free_port, get};
    let moto = Moto::start();
    let aws = moto.clients().await;
    lifeboat::demo::seed(&aws).await.expect("seed");
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            seed: 21,
            fault_rate: BTreeMap::from([("*".to_string(), 0.2)]),
            faults: vec![Fault::Internal, Fault::Unavailable, Fault::Throttle],
            ..Rules::default()
        },
    )
    .await;
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    // The primary stays up: only the operator starts the run.
    let primary = std::net::TcpListener::bind("127.0.0.1:0").expect("primary");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let socket = dir.path().join("control.sock");
    let port = free_port();
    let config = dir.path().join("lifeboat.yaml");
    let runbook = std::env::current_dir()
        .expect("cwd")
        .join("runbooks/pilot-light.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}
listen: {{ metrics: \"127.0.0.1:{port}\", control: {} }}
regions:
  us-east-1:
    probes: [ {{ name: web, tcp: \"{}\", interval: 1s }} ]
bindings:
  app:
    region: us-east-1
    runbook: {}
    params: {{ health_url: \"{health}\" }}
    policy: approve
",
            state.display(),
            socket.display(),
            primary.local_addr().expect("address"),
            runbook.display()
        ),
    )
    .expect("write config");
    let _daemon = moto
        .lifeboat(&state)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["daemon", "--config", config.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(crate::support::KillOnDrop)
        .expect("start the daemon");
    crate::support::eventually_async(
        Duration::from_secs(60),
        || "no control socket".into(),
        || async { socket.exists().then_some(()) },
    )
    .await;
    let trigger = crate::support::lifeboat(
        &state,
        &[
            "--socket",
            socket.to_str().expect("utf-8"),
            "trigger",
            "app",
        ],
    );
    assert!(trigger.status.success(), "{}", text(&trigger.stderr));

    // Once the run succeeded, and its calls are counted, each injected
    // fault is one failed attempt under its code.
    let codes = [
        ("Internal", "InternalFailure"),
        ("Unavailable", "ServiceUnavailable"),
        ("Throttle", "Throttling"),
    ];
    let counted = |metrics: &str, code: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("lifeboat_aws_api_errors_total{")
                    && l.contains(&format!("code=\"{code}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let metrics = get(port, "/metrics").unwrap_or_default();
        let injected = proxy.injections();
        let expected: Vec<u64> = codes
            .iter()
            .map(|(fault, _)| injected.iter().filter(|i| i.what == *fault).count() as u64)
            .collect();
        let found: Vec<u64> = codes
            .iter()
            .map(|(_, code)| counted(&metrics, code))
            .collect();
        let succeeded = metrics.contains(
            r#"lifeboat_runs_total{runbook="pilot-light-failover",mode="failover",outcome="succeeded"} 1"#,
        );
        if succeeded && !injected.is_empty() && found == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "succeeded: {succeeded}; injected {expected:?} of {codes:?}, counted {found:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One engine attempt of a step whose call keeps failing makes at most the
/// SDK's configured HTTP attempts (counted at the proxy), then hands the
/// retryable error to the engine, whose `retry` decides what comes next;
/// every request names lifeboat in its user agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_attempt_of_a_failing_call_makes_at_most_the_configured_http_attempts() {
    use lifeboat::actions::Registry;
    use lifeboat::catalogue::ActionInput;
    use lifeboat::catalogue::ec2::Instances;
    use lifeboat::engine::{Actions, FailureKind, StepContext};

    let moto = Moto::start();
    let direct = moto.clients().await;
    let ids =
        crate::support::seed::stopped_instances(&direct, "us-west-2", 1, &[("Role", "app")]).await;
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            fault_rate: BTreeMap::from([("StartInstances".to_string(), 1.0)]),
            faults: vec![Fault::Internal],
            ..Rules::default()
        },
    )
    .await;
    let aws = lifeboat::aws::AwsClients::load(
        &lifeboat::aws::AwsSettings {
            profile: None,
            endpoint_url: Some(proxy.endpoint.clone()),
            ..Default::default()
        },
        lifeboat::aws::Credentials::Emulator,
    )
    .await;
    let ctx = StepContext {
        run_id: "20261201T130000-sdk1".into(),
        step_id: "start-app".into(),
        mode: lifeboat::runbook::Mode::Failover,
        region: Some("us-west-2".into()),
        attempt: 1,
        resumed: false,
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        assume_role: None,
        placement: Default::default(),
        expected: None,
    };
    let start = ActionInput::Ec2StartInstances(Instances {
        instance_ids: Some(ids),
        tags: None,
        alternative_instance_types: vec![],
    });
    let err = Registry::with_aws(aws)
        .run(&ctx, &start)
        .await
        .expect_err("every StartInstances fails");
    assert_eq!(err.kind, FailureKind::Retryable, "{err}");
    let requests = proxy.requests();
    let starts = requests
        .iter()
        .filter(|r| r.operation == "StartInstances")
        .count();
    assert_eq!(
        starts,
        lifeboat::aws::SDK_MAX_ATTEMPTS as usize,
        "HTTP attempts of one engine attempt"
    );
    assert!(
        requests.iter().all(|r| r
            .user_agent
            .contains(&format!("app/{}", lifeboat::aws::APP_NAME))),
        "{:?}",
        requests.iter().map(|r| &r.user_agent).collect::<Vec<_>>()
    );
}
