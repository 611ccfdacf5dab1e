//! The shipped runbooks with real actions on the emulator, SIGKILLed at
//! every step boundary and in the middle of every changing AWS call, then
//! resumed: the end state is right and no change reached AWS twice
//! (pilot-light counted by the emulator's request recorder, the others per
//! resource at the simulation proxy, across both processes).
//!
//! As in `crash`, the test re-executes this binary as the child
//! (`crash_aws_child`, idle unless `LIFEBOAT_CRASH_AWS_CHILD` is set).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use lifeboat::actions::Registry;
use lifeboat::aws::{AwsClients, AwsSettings, Credentials};
use lifeboat::engine::{Engine, EngineOptions, RunOutcome, now};
use lifeboat::journal::{Access, Journal, NewRun, StepEvent};
use lifeboat::runbook::{MissingParams, Mode, load};

use crate::support::moto::Moto;

const RUN: &str = "crash-aws-run";
const STEPS: [&str; 5] = [
    "promote-db",
    "start-app",
    "app-running",
    "switch-dns",
    "verify",
];
/// The changing calls of the failover, each killed in flight.
const CALLS: [&str; 3] = [
    "RDS.PromoteReadReplica",
    "EC2.StartInstances",
    "Route 53.ChangeResourceRecordSets",
];

fn die() -> ! {
    let _ = Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    loop {
        std::thread::park();
    }
}

#[test]
fn crash_aws_child() {
    let Some(dir) = std::env::var_os("LIFEBOAT_CRASH_AWS_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let endpoint = std::env::var("LIFEBOAT_CRASH_ENDPOINT").expect("endpoint");
    let failpoint = std::env::var("LIFEBOAT_FAILPOINT").unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let settings = AwsSettings {
            profile: None,
            endpoint_url: Some(endpoint),
            ..Default::default()
        };
        let aws = AwsClients::load(&settings, Credentials::Emulator).await;
        if let Some(call) = failpoint.strip_prefix("mid:") {
            // Die while the call is in flight: it has left lifeboat, and
            // may or may not have reached AWS.
            let (aws, call) = (aws.clone(), call.to_string());
            std::thread::spawn(move || {
                loop {
                    let suffix = format!(".{call}");
                    if aws
                        .calls()
                        .snapshot()
                        .keys()
                        .any(|k| *k == call || k.ends_with(&suffix))
                    {
                        std::thread::sleep(Duration::from_millis(fastrand::u64(0..5)));
                        die();
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
        let health = lifeboat::demo::health_endpoint().await.expect("health");
        let params = vec![("health_url".to_string(), health)];
        let file = std::env::var("LIFEBOAT_CRASH_RUNBOOK")
            .unwrap_or_else(|_| "pilot-light.yaml".to_string());
        // A shipped runbook by its name, or a test's by its path (read
        // with its children, as `lifeboat run` reads it).
        let path = if file.contains('/') {
            file.clone()
        } else {
            format!("runbooks/{file}")
        };
        let text = lifeboat::runbook::children::read(Path::new(&path)).expect("runbook");
        let journal =
            Arc::new(Journal::open(&dir.join("state"), Access::Executor).expect("journal"));
        if journal.run(RUN).is_err() {
            journal
                .create_run(&NewRun {
                    id: RUN.into(),
                    runbook: file.clone(),
                    file: path.clone(),
                    runbook_sha256: String::new(),
                    runbook_text: text.clone(),
                    params: params.clone(),
                    secret_params: Vec::new(),
                    mode: "failover".into(),
                    started_by: "crash test".into(),
                    started_at: now(),
                })
                .expect("create run");
            // Every approval given up front: the matrix is about crashes,
            // not about waiting for people.
            let loaded = load(&file, &text, &params, MissingParams::Refuse).expect("runbook");
            for step in &loaded.runbook.steps {
                if step.action == lifeboat::catalogue::ActionKind::ManualApproval {
                    journal
                        .request(
                            RUN,
                            Some(&step.id),
                            lifeboat::journal::RequestKind::Approve,
                            "crash test",
                            &now(),
                        )
                        .expect("approve");
                }
            }
        }
        let boundary = failpoint.clone();
        let engine = Engine::new(
            journal,
            Arc::new(Registry::with_aws(aws)),
            EngineOptions::default(),
        )
        .with_observer(Arc::new(move |e: &StepEvent| {
            let at = match e.state.as_str() {
                "running" => format!("before:{}", e.step),
                "succeeded" => format!("after:{}", e.step),
                _ => return,
            };
            if at == boundary {
                die();
            }
        }));
        let runbook = load(&file, &text, &params, MissingParams::Refuse)
            .expect("runbook")
            .runbook;
        let outcome = engine
            .execute(RUN, Arc::new(runbook), Mode::Failover)
            .await
            .expect("execute");
        assert_eq!(outcome, RunOutcome::Succeeded);
    });
}

fn child(dir: &Path, endpoint: &str, failpoint: Option<&str>) -> std::process::ExitStatus {
    child_running(dir, endpoint, "pilot-light.yaml", failpoint)
}

/// The child running the shipped `runbook` through `endpoint`, killing
/// itself at `failpoint`.
fn child_running(
    dir: &Path,
    endpoint: &str,
    runbook: &str,
    failpoint: Option<&str>,
) -> std::process::ExitStatus {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "crash_aws::crash_aws_child",
        "--test-threads=1",
        "--quiet",
    ])
    .env("LIFEBOAT_CRASH_AWS_CHILD", dir)
    .env("LIFEBOAT_CRASH_ENDPOINT", endpoint)
    .env("LIFEBOAT_CRASH_RUNBOOK", runbook)
    .env_remove("LIFEBOAT_FAILPOINT")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    if let Some(fp) = failpoint {
        cmd.env("LIFEBOAT_FAILPOINT", fp);
    }
    cmd.status().expect("run the child")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pilot_light_killed_anywhere_resumes_without_doubling_a_change() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let mut failpoints: Vec<String> = STEPS
        .iter()
        .flat_map(|s| [format!("before:{s}"), format!("after:{s}")])
        .collect();
    failpoints.extend(CALLS.iter().map(|c| format!("mid:{c}")));
    for failpoint in &failpoints {
        moto.reset();
        let seeded = lifeboat::demo::seed(&aws).await.expect("seed");
        moto.start_recording();
        let dir = tempfile::tempdir().expect("tempdir");
        let killed = child(dir.path(), &moto.endpoint(), Some(failpoint));
        assert_eq!(
            killed.signal(),
            Some(9),
            "{failpoint}: the child was to be killed, it exited {killed}"
        );
        let resumed = child(dir.path(), &moto.endpoint(), None);
        assert!(resumed.success(), "{failpoint}: resume failed: {resumed}");

        // Each change reached AWS once: a promotion sent before the kill
        // shows in the resumed process's describe (the emulator, as RDS,
        // no longer names the replica's source), so it is not sent again.
        let changes = moto.changes();
        let expected = BTreeMap::from([
            ("PromoteReadReplica".to_string(), 1),
            ("StartInstances".to_string(), 1),
            ("ChangeResourceRecordSets".to_string(), 1),
        ]);
        assert_eq!(changes, expected, "{failpoint}: every change once");

        let db = crate::support::seed::db(&aws, "us-west-2", "app-db-replica").await;
        assert_eq!(
            db.and_then(|d| d.backup_retention_period()),
            Some(7),
            "{failpoint}"
        );
        let states =
            crate::support::seed::instance_states(&aws, "us-west-2", &seeded.app_instances).await;
        assert_eq!(states, vec![InstanceStateName::Running; 2], "{failpoint}");
        assert_eq!(
            crate::support::seed::a_record(&aws, &seeded.zone_id, "app.example.com").await,
            vec!["198.51.100.10"],
            "{failpoint}"
        );
        let journal = Journal::open(&dir.path().join("state"), Access::Client).expect("journal");
        assert_eq!(
            journal.run(RUN).expect("run").state,
            "succeeded",
            "{failpoint}"
        );
    }
}

/// What a run leaves in the emulator (`inventory`), without the names AWS
/// makes up: EC2 instances counted by what they are, automated snapshots
/// without their creation minute.
async fn end_state(aws: &lifeboat::aws::AwsClients) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for (key, description) in crate::support::inventory::inventory(aws, false).await {
        let key = match key.strip_prefix("ec2 ") {
            Some(rest) => format!("ec2 {}", rest.split(' ').next().unwrap_or_default()),
            // `rds:app-db-2026-11-28-17-37`
            None if key.starts_with("snapshot ") && key.contains(" rds:") => {
                key[..key.len().saturating_sub("-2026-11-28-17-37".len())].to_string()
            }
            None => key,
        };
        *all.entry(format!("{key}: {description}")).or_default() += 1;
    }
    all
}

/// Backup-restore, warm-standby, active-passive, active-active, multi-AZ,
/// failback (pilot-light is above) and a parent of child runbooks (the
/// children's steps each a boundary), each killed before and after every step it runs and in
/// flight of every changing call it makes, then resumed: the run ends as
/// an uninterrupted one (succeeded), the emulator ends as a run that
/// was never killed left it, and the changes that reached AWS,
/// counted per operation and per resource at the simulation proxy across
/// both processes, are the uninterrupted run's, each once. (A change is a
/// mutating call the emulator accepted: one killed before its answer may
/// be sent again, and is counted once if it took effect once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_killed_anywhere_resumes_without_doubling_a_change() {
    use crate::support::proxy::{Proxy, Rules};
    let moto = Moto::start();
    let aws = moto.clients().await;
    for runbook in [
        "backup-restore.yaml",
        "warm-standby.yaml",
        "active-passive.yaml",
        "active-active.yaml",
        "active-active-three-regions.yaml",
        "multi-az.yaml",
        "failback.yaml",
        "tests/runbooks/regional.yaml",
    ] {
        let end = "succeeded";
        // The uninterrupted run: what it changes, where it stops.
        moto.reset();
        crate::support::seed::strategy(&aws, runbook).await;
        let proxy = Proxy::start(&moto.endpoint(), Rules::default()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let clean = child_running(dir.path(), &proxy.endpoint, runbook, None);
        assert!(clean.success(), "{runbook}: the uninterrupted run: {clean}");
        let expected_state = end_state(&aws).await;
        let per_op = |p: &Proxy| {
            let mut ops: BTreeMap<String, u64> = BTreeMap::new();
            for r in p.requests() {
                if r.changed() {
                    *ops.entry(r.operation).or_default() += 1;
                }
            }
            ops
        };
        let expected_ops = per_op(&proxy);
        let journal = Journal::open(&dir.path().join("state"), Access::Client).expect("journal");
        let mut failpoints: Vec<String> = Vec::new();
        // Before each step that started, after each that succeeded (the
        // child's observer dies at those events).
        for event in journal.events(RUN).expect("events") {
            let at = match event.state.as_str() {
                "running" => "before",
                "succeeded" => "after",
                _ => continue,
            };
            let failpoint = format!("{at}:{}", event.step);
            if event.phase == "main" && !failpoints.contains(&failpoint) {
                failpoints.push(failpoint);
            }
        }
        failpoints.extend(expected_ops.keys().map(|op| format!("mid:{op}")));
        drop(journal);

        for failpoint in &failpoints {
            moto.reset();
            crate::support::seed::strategy(&aws, runbook).await;
            let proxy = Proxy::start(&moto.endpoint(), Rules::default()).await;
            let dir = tempfile::tempdir().expect("tempdir");
            let killed = child_running(dir.path(), &proxy.endpoint, runbook, Some(failpoint));
            assert_eq!(
                killed.signal(),
                Some(9),
                "{runbook} {failpoint}: the child was to be killed, it exited {killed}"
            );
            let resumed = child_running(dir.path(), &proxy.endpoint, runbook, None);
            assert!(
                resumed.success(),
                "{runbook} {failpoint}: resume failed: {resumed}"
            );
            let journal =
                Journal::open(&dir.path().join("state"), Access::Client).expect("journal");
            assert_eq!(
                journal.run(RUN).expect("run").state,
                end,
                "{runbook} {failpoint}"
            );

            // Each change once, per operation and per resource.
            let ops = per_op(&proxy);
            assert_eq!(
                ops, expected_ops,
                "{runbook} {failpoint}: every change once"
            );
            for ((op, resource), n) in proxy.changes() {
                assert!(
                    n == 1,
                    "{runbook} {failpoint}: {op} of {resource} reached AWS {n} times"
                );
            }
            assert_eq!(
                end_state(&aws).await,
                expected_state,
                "{runbook} {failpoint}: the end state of an uninterrupted run"
            );
        }
    }
}
