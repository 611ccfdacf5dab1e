//! The pilot-light failover with real actions on the emulator, SIGKILLed at
//! every step boundary and in the middle of every changing AWS call, then
//! resumed: the end state is right and no change reached AWS twice (counted
//! by the emulator's request recorder, across both processes).
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
use lifeboat::engine::journal::{Access, Journal, NewRun, StepEvent};
use lifeboat::engine::{Engine, EngineOptions, RunOutcome, now};
use lifeboat::runbook::{MissingParams, Mode, load};

use crate::moto::Moto;

const RUN: &str = "crash-aws-run";
const STEPS: [&str; 5] = [
    "promote-db",
    "start-app",
    "app-running",
    "switch-dns",
    "verify",
];
/// The changing calls of the failover, each killed in flight.
const CALLS: [&str; 4] = [
    "RDS.PromoteReadReplica",
    "RDS.AddTagsToResource",
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
        };
        let aws = AwsClients::load(&settings, Credentials::Emulator).await;
        if let Some(call) = failpoint.strip_prefix("mid:") {
            // Die while the call is in flight: it has left lifeboat, and
            // may or may not have reached AWS.
            let (aws, call) = (aws.clone(), call.to_string());
            std::thread::spawn(move || {
                loop {
                    if aws.calls().snapshot().contains_key(&call) {
                        std::thread::sleep(Duration::from_millis(fastrand::u64(0..5)));
                        die();
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
        let health = lifeboat::demo::health_endpoint().await.expect("health");
        let params = vec![("health_url".to_string(), health)];
        let text = std::fs::read_to_string("runbooks/pilot-light.yaml").expect("runbook");
        let journal =
            Arc::new(Journal::open(&dir.join("state"), Access::Executor).expect("journal"));
        if journal.run(RUN).is_err() {
            journal
                .create_run(&NewRun {
                    id: RUN.into(),
                    runbook: "pilot-light-failover".into(),
                    file: "runbooks/pilot-light.yaml".into(),
                    runbook_sha256: String::new(),
                    runbook_text: text.clone(),
                    params: params.clone(),
                    secret_params: Vec::new(),
                    mode: "failover".into(),
                    started_by: "crash test".into(),
                    started_at: now(),
                })
                .expect("create run");
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
        let runbook = load("pilot-light.yaml", &text, &params, MissingParams::Refuse)
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
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "crash_aws::crash_aws_child",
        "--test-threads=1",
        "--quiet",
    ])
    .env("LIFEBOAT_CRASH_AWS_CHILD", dir)
    .env("LIFEBOAT_CRASH_ENDPOINT", endpoint)
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

        // Each change reached AWS once. The exception is the emulator's
        // gap (README, "Emulator gaps"): it keeps reporting a promoted
        // replica as a replica, so a kill (at any failpoint: steps run in
        // parallel) between PromoteReadReplica and lifeboat's tag makes the
        // resume promote again; real RDS clears the source on promotion,
        // and lifeboat sees it is done. That, and only that, shows in the
        // order the calls arrived: promote, promote, tag.
        let changes = moto.changes();
        let mut expected = BTreeMap::from([
            ("PromoteReadReplica".to_string(), 1),
            ("AddTagsToResource".to_string(), 1),
            ("StartInstances".to_string(), 1),
            ("ChangeResourceRecordSets".to_string(), 1),
        ]);
        let rds: Vec<String> = moto
            .changes_in_order()
            .into_iter()
            .filter(|op| op == "PromoteReadReplica" || op == "AddTagsToResource")
            .collect();
        if rds
            == [
                "PromoteReadReplica",
                "PromoteReadReplica",
                "AddTagsToResource",
            ]
        {
            expected.insert("PromoteReadReplica".to_string(), 2);
        }
        assert_eq!(changes, expected, "{failpoint}: every change once");

        let db = crate::seed::db(&aws, "us-west-2", "app-db-replica").await;
        assert_eq!(
            db.and_then(|d| d.backup_retention_period()),
            Some(7),
            "{failpoint}"
        );
        let instances = aws
            .ec2("us-west-2")
            .describe_instances()
            .set_instance_ids(Some(seeded.app_instances.clone()))
            .send()
            .await
            .expect("describe instances");
        let states: Vec<InstanceStateName> = instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.state().and_then(|s| s.name()).cloned())
            .collect();
        assert_eq!(states, vec![InstanceStateName::Running; 2], "{failpoint}");
        assert_eq!(
            crate::seed::a_record(&aws, &seeded.zone_id, "app.example.com").await,
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
