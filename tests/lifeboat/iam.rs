//! IAM: the policy `lifeboat iam-policy` prints for each shipped runbook,
//! against a recorded expectation (`tests/iam/`; `LIFEBOAT_BLESS=1`
//! rewrites them after a deliberate change), and the coverage check the
//! end-to-end runs call: every AWS operation each step made, as the
//! journal's call log records it, is covered by the permissions its action
//! declares, so the declarations cannot drift from the code.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::support::iam::assert_covered;
use crate::support::moto::Moto;
use crate::support::{lifeboat, text};

/// The runbooks whose policies are recorded: every shipped one and the
/// benchmark's standard scenario, each by the name its files take.
fn recorded_runbooks() -> Vec<(String, PathBuf)> {
    let mut all: Vec<(String, PathBuf)> = std::fs::read_dir("runbooks")
        .expect("runbooks/")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_string();
            (name, path)
        })
        .collect();
    all.push((
        "bench-failover".into(),
        PathBuf::from("bench/failover.yaml"),
    ));
    all.sort();
    all
}

#[test]
fn each_shipped_runbook_gets_its_recorded_policy() {
    let bless = std::env::var_os("LIFEBOAT_BLESS").is_some();
    let state = tempfile::tempdir().expect("tempdir");
    for (name, path) in recorded_runbooks() {
        for mode in ["failover", "drill"] {
            let out = lifeboat(
                state.path(),
                &["iam-policy", path.to_str().expect("utf-8"), "--mode", mode],
            );
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let policy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let expected = Path::new("tests/iam").join(format!("{name}.{mode}.json"));
            if bless {
                std::fs::write(&expected, &out.stdout).expect("write expectation");
                continue;
            }
            let recorded: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&expected)
                    .unwrap_or_else(|e| panic!("{}: {e}", expected.display())),
            )
            .expect("recorded JSON");
            assert_eq!(policy, recorded, "{name} in {mode} mode");
            for statement in policy["Statement"].as_array().expect("statements") {
                assert!(
                    !statement["Action"].to_string().contains('*'),
                    "no wildcard action: {statement}"
                );
            }
        }
    }
}

/// Parliament (the IAM policy linter), installed beside the emulator
/// once per test process; its Python.
fn linter() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = lifeboat::emulator::install().expect("the emulator's virtualenv");
        let status = std::process::Command::new(".ci/setup-lint")
            .env("LIFEBOAT_VENV", lifeboat::emulator::venv())
            .status()
            .expect("run .ci/setup-lint");
        assert!(status.success(), ".ci/setup-lint failed: {status}");
        python
    })
}

/// Parliament's findings, at every severity and with its community
/// auditors, on the policy documents `files`.
fn lint(files: &[PathBuf]) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(linter())
        .arg("tests/iam_lint.py")
        .args(files)
        .output()
        .expect("run the linter");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the linter failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a finding"))
        .collect()
}

#[test]
fn parliament_finds_nothing_in_any_recorded_policy() {
    let files: Vec<PathBuf> = recorded_runbooks()
        .into_iter()
        .flat_map(|(name, _)| {
            ["failover", "drill"]
                .map(|mode| Path::new("tests/iam").join(format!("{name}.{mode}.json")))
        })
        .collect();
    assert_eq!(
        files.len(),
        2 * (std::fs::read_dir("runbooks").expect("runbooks/").count() + 1)
    );
    let findings = lint(&files);
    assert!(
        findings.is_empty(),
        "Parliament's findings:\n{}",
        findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_widened_resource_is_a_finding() {
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/iam/pilot-light.failover.json").expect("recorded"),
    )
    .expect("JSON");
    let mut widened = recorded.clone();
    let statement = widened["Statement"]
        .as_array_mut()
        .expect("statements")
        .iter_mut()
        .find(|s| s["Action"].to_string().contains("rds:PromoteReadReplica"))
        .expect("the promotion's statement");
    statement["Resource"] = serde_json::json!("*");
    let dir = tempfile::tempdir().expect("tempdir");
    let (narrow, wide) = (dir.path().join("narrow.json"), dir.path().join("wide.json"));
    std::fs::write(&narrow, recorded.to_string()).expect("write");
    std::fs::write(&wide, widened.to_string()).expect("write");
    assert!(lint(std::slice::from_ref(&narrow)).is_empty());
    let findings = lint(&[wide]);
    assert!(
        findings.iter().any(|f| f["issue"] == "RESOURCE_STAR"
            && f["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("rds:PromoteReadReplica")),
        "{findings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_missing_an_action_stops_the_run_where_aws_would() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    lifeboat::demo::seed(&aws).await.expect("seed");
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    let health = format!("health_url={health}");
    let dir = tempfile::tempdir().expect("tempdir");
    let printed = moto
        .lifeboat(dir.path())
        .args(["iam-policy", "runbooks/pilot-light.yaml", "-p", &health])
        .output()
        .expect("iam-policy");
    let mut policy: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("JSON");
    // Drop one action the run needs.
    for statement in policy["Statement"].as_array_mut().expect("statements") {
        if let Some(actions) = statement["Action"].as_array_mut() {
            actions.retain(|a| a != "ec2:StartInstances");
        }
    }
    policy["Statement"]
        .as_array_mut()
        .expect("statements")
        .retain(|s| s["Action"].as_array().is_some_and(|a| !a.is_empty()));
    moto.enforce_printed(&policy);
    let out = moto
        .lifeboat(&dir.path().join("state"))
        .args(["run", "runbooks/pilot-light.yaml", "--yes", "-p", &health])
        .output()
        .expect("run lifeboat");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("not authorized to perform: ec2:StartInstances"),
        "the run says what AWS refused: {said}"
    );
    let decisions = moto.iam_decisions();
    let denied: Vec<String> = decisions["denied"]
        .as_array()
        .expect("denied")
        .iter()
        .map(|d| d["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !denied.is_empty() && denied.iter().all(|a| a == "ec2:StartInstances"),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_scenario_fails_over_within_its_printed_policy() {
    let moto = Moto::start();
    let seeded = std::process::Command::new(lifeboat::emulator::venv().join("bin/python"))
        .arg(crate::support::seed::scenario_seed())
        .args(["--scale", "2", "--endpoint", &moto.endpoint()])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run seed.py");
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    moto.enforce_policy(&["bench/failover.yaml"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = moto
        .lifeboat(dir.path())
        .args(["run", "bench/failover.yaml", "--yes"])
        .output()
        .expect("run lifeboat");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    moto.assert_authorized();
    assert_covered(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_names_the_account_zone_and_launch_template_by_arn() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let zone = crate::support::seed::zone(&aws, "example.com", &[]).await;
    crate::support::seed::launch_template(&aws, "us-west-2", "app-server").await;
    let template = aws
        .ec2("us-west-2")
        .describe_launch_templates()
        .launch_template_names("app-server")
        .send()
        .await
        .expect("describe")
        .launch_templates()[0]
        .launch_template_id()
        .expect("id")
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = moto
        .lifeboat(dir.path())
        .args(["iam-policy", "runbooks/backup-restore.yaml", "--resolve"])
        .output()
        .expect("iam-policy --resolve");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let policy = text(&out.stdout);
    assert!(
        policy.contains(&format!("arn:aws:route53:::hostedzone/{zone}")),
        "{policy}"
    );
    assert!(
        policy.contains(&format!(
            "arn:aws:ec2:us-west-2:123456789012:launch-template/{template}"
        )),
        "{policy}"
    );
    assert!(
        policy.contains("arn:aws:rds:us-west-2:123456789012:db:"),
        "{policy}"
    );
    assert!(!policy.contains("NarrowerWithResolve"), "{policy}");
    let plain = moto
        .lifeboat(dir.path())
        .args(["iam-policy", "runbooks/backup-restore.yaml"])
        .output()
        .expect("iam-policy");
    assert!(text(&plain.stdout).contains("NarrowerWithResolve"));
    // A zone that is not there is an error, not a wider policy.
    let missing = moto
        .lifeboat(dir.path())
        .args([
            "iam-policy",
            "runbooks/backup-restore.yaml",
            "--resolve",
            "-p",
            "zone=nowhere.example",
        ])
        .output()
        .expect("iam-policy --resolve");
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        text(&missing.stderr).contains("nowhere.example"),
        "{}",
        text(&missing.stderr)
    );
}
