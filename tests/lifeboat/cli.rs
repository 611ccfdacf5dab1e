//! The `lifeboat` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::text;

fn lifeboat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run lifeboat")
}

fn shipped() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("runbooks/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            format!(
                "runbooks/{}",
                p.file_name().and_then(|n| n.to_str()).expect("name")
            )
        })
        .collect();
    files.sort();
    files
}

fn write_temp(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write temp file");
    path
}

#[test]
fn validate_accepts_every_shipped_runbook() {
    let files = shipped();
    assert_eq!(
        files.len(),
        11,
        "one runbook per strategy, and a failback for each way traffic moves: {files:?}"
    );
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = lifeboat(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for f in &files {
        assert!(stdout.contains(&format!("{f}: ok")), "{stdout}");
    }
    assert!(
        !text(&out.stderr).contains("error"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_reports_every_mistake_located_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write_temp(
        &dir,
        "bad.yaml",
        b"name: bad\nstrategy: pilot-lite\nsteps:\n  - id: a\n    action: ec2.start\n  - id: b\n    action: wait\n    with: { duration: 5 }\n    needs: [zz]\n",
    );
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/pilot-light.yaml");
    let out = lifeboat(&[
        "validate",
        bad.to_str().expect("utf-8 path"),
        good.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let located: Vec<&str> = stderr.lines().filter(|l| l.contains("bad.yaml:")).collect();
    assert_eq!(located.len(), 4, "{stderr}");
    assert!(
        located[0].contains(
            "bad.yaml:2:11: error: unknown value `pilot-lite`, did you mean `pilot-light`?"
        ),
        "{stderr}"
    );
    assert!(
        located[1].contains("bad.yaml:5:13: error: step `a`: unknown action `ec2.start`"),
        "{stderr}"
    );
    assert!(
        located[2].contains("bad.yaml:8:23: error: step `b`: `5` has no unit"),
        "{stderr}"
    );
    assert!(
        located[3].contains("bad.yaml:9:13: error: step `b`: `needs` names an unknown step `zz`"),
        "{stderr}"
    );
    // The valid file is still reported as valid.
    assert!(text(&out.stdout).contains("pilot-light.yaml: ok"));
}

#[test]
fn validate_refuses_unreadable_and_non_utf8_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = write_temp(&dir, "binary.yaml", b"name: x\n\xff\xfe\n");
    let out = lifeboat(&[
        "validate",
        binary.to_str().expect("utf-8 path"),
        "no/such/file.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not UTF-8 text (invalid byte at offset 8)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no/such/file.yaml: error: cannot read no/such/file.yaml"),
        "{stderr}"
    );
}

#[test]
fn validate_json_output_lists_each_file() {
    let out = lifeboat(&[
        "validate",
        "--output",
        "json",
        "runbooks/active-passive.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json[0]["file"], "runbooks/active-passive.yaml");
    assert_eq!(json[0]["valid"], true);
    assert_eq!(json[0]["steps"], 3);
}

#[test]
fn plan_shows_parallel_waves_and_the_critical_path() {
    let out = lifeboat(&["plan", "runbooks/pilot-light.yaml", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let first: Vec<&str> = plan["waves"][0]
        .as_array()
        .expect("waves")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(first, vec!["promote-db", "start-app"]);
    assert_eq!(plan["mode"], "failover");
    assert_eq!(
        plan["critical_path"]["steps"],
        serde_json::json!(["start-app", "app-running", "switch-dns", "verify"])
    );
    assert_eq!(plan["critical_path"]["within_rto_target"], true);
    assert_eq!(plan["left_out"][0]["id"], "confirm-writes-stopped");

    let out = lifeboat(&["plan", "runbooks/pilot-light.yaml", "--mode", "switchover"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("critical path: confirm-writes-stopped → replica-caught-up → promote-db"),
        "{stdout}"
    );
}

#[test]
fn plan_takes_parameters_and_refuses_unknown_ones() {
    let out = lifeboat(&[
        "plan",
        "runbooks/pilot-light.yaml",
        "-p",
        "dr_region=eu-west-1",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(plan["waves"][0][0]["region"], "eu-west-1");

    let out = lifeboat(&[
        "plan",
        "runbooks/pilot-light.yaml",
        "-p",
        "dr_regon=eu-west-1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean `dr_region`?"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let out = lifeboat(&["plan", "runbooks/pilot-light.yaml", "-p", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected NAME=VALUE"));
}

#[test]
fn plan_redacts_secret_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb = write_temp(
        &dir,
        "secret.yaml",
        b"name: s\nstrategy: pilot-light\nparams:\n  hook: { secret: true }\nsteps:\n  - { id: tell, action: notify, with: { webhook: '${hook}', message: hi } }\n",
    );
    let out = lifeboat(&[
        "plan",
        rb.to_str().expect("utf-8 path"),
        "-p",
        "hook=https://hooks.example/T0K3N",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("T0K3N"), "{all}");
    assert!(all.contains("hook=<redacted>"), "{all}");
}

#[test]
fn schema_is_draft_07_json() {
    for kind in ["runbook", "config"] {
        let out = lifeboat(&["schema", kind]);
        assert_eq!(out.status.code(), Some(0));
        let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "{kind}"
        );
    }
}

#[test]
fn completions_and_man_page_are_generated() {
    let out = lifeboat(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("validate"));
    let out = lifeboat(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH lifeboat"), "{page}");
    assert!(page.contains("Exit codes"), "{page}");
    // A page per subcommand, printed or written where man looks.
    let out = lifeboat(&["man", "run"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH lifeboat-run 1"), "{page}");
    assert!(page.contains("\\-\\-resume"), "{page}");
    let out = lifeboat(&["man", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the subcommands: "),
        "{}",
        text(&out.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let man1 = dir.path().join("man1");
    let out = lifeboat(&["man", "--dir", man1.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for page in [
        "lifeboat.1",
        "lifeboat-run.1",
        "lifeboat-drill.1",
        "lifeboat-daemon.1",
    ] {
        let text = std::fs::read_to_string(man1.join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(lifeboat(&["validate"]).status.code(), Some(2));
    assert_eq!(lifeboat(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        lifeboat(&["plan", "runbooks/pilot-light.yaml", "--mode", "yolo"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_config_reports_located_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_temp(
        &dir,
        "good.yaml",
        b"state_dir: /var/lib/lifeboat\naws: { endpoint_url: 'http://127.0.0.1:5000' }\n",
    );
    let out = lifeboat(&["check-config", good.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bad = write_temp(
        &dir,
        "bad.yaml",
        b"state_dir: [x]\naws:\n  access_key_id: AKIA\n",
    );
    let out = lifeboat(&["check-config", bad.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:1:12: error: expected a string, found a list"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:3:3: error: static AWS credentials are refused"),
        "{stderr}"
    );
}

#[test]
fn demo_fails_over_two_regions_on_the_emulator() {
    let out = lifeboat(&["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .contains("pilot-light-failover (runbooks/pilot-light.yaml), failover mode, succeeded"),
        "{stdout}"
    );
    for step in [
        "promote-db",
        "start-app",
        "app-running",
        "switch-dns",
        "verify",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(step) && l.contains("succeeded")),
            "{step}: {stdout}"
        );
    }
    // The summary gives an RPO figure, from the replica's lag.
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("RTO "))
        .unwrap_or_default();
    assert!(
        summary.contains("; RPO ")
            && summary.contains("(target 5m00s, met)")
            && summary.contains("ReplicaLag of app-db-replica"),
        "{stdout}"
    );
}

#[test]
fn actions_lists_the_whole_catalogue() {
    let out = lifeboat(&["actions", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = rows
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    for expected in [
        "rds.promote_read_replica",
        "route53.upsert_records",
        "cloudwatch.put_metric_data",
        "exec",
        "manual.approval",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    // As text, aligned, then the rungs of the ladder with their runbooks.
    let out = lifeboat(&["actions"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let column = |name: &str| {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        line.find(|c: char| c.is_uppercase())
    };
    assert_eq!(column("lambda.invoke"), column("wait"), "{stdout}");
    let rungs: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("strategies"))
        .skip(1)
        .collect();
    assert_eq!(rungs.len(), 7, "{stdout}");
    assert!(
        rungs[0].trim_start().starts_with("backup-restore")
            && rungs[1].contains("multi-az.yaml")
            && rungs[5].contains("active-active.yaml, active-active-three-regions.yaml")
            && rungs[6].contains("failback-multi-az.yaml"),
        "{stdout}"
    );
}

/// A binary installed outside its build tree (as `cargo install` or the
/// package leaves it) runs the demo from anywhere: the emulator's set-up
/// and guard are embedded, nothing is read from the source tree. The
/// virtualenv is named here so the test installs nothing new; where an
/// installed binary puts it by default is unit-tested.
#[test]
fn an_installed_binary_runs_the_demo_without_its_source_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let installed = dir.path().join("bin").join("lifeboat");
    std::fs::create_dir_all(installed.parent().expect("parent")).expect("bin dir");
    std::fs::copy(env!("CARGO_BIN_EXE_lifeboat"), &installed).expect("install the binary");
    let venv = lifeboat::emulator::venv();
    let out = std::process::Command::new(&installed)
        .arg("demo")
        .current_dir(dir.path())
        .env("LIFEBOAT_VENV", &venv)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the installed binary");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("failover mode, succeeded"),
        "{}",
        text(&out.stdout)
    );
}

/// On a Debian without `python3-venv` (no `ensurepip`) and no
/// `virtualenv`, the emulator's set-up stops with one line saying what to
/// install, and leaves a non-virtualenv path alone.
#[test]
fn the_emulator_set_up_says_what_to_install_when_python_cannot_make_a_virtualenv() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let stub = dir.path().join("python3");
    // A Python whose venv/ensurepip modules are missing.
    std::fs::write(&stub, "#!/bin/sh\nexit 1\n").expect("stub");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let setup = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/setup-moto");
    let run = |venv: &std::path::Path| {
        std::process::Command::new("bash")
            .arg(setup)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .env("PYTHON", &stub)
            .env("LIFEBOAT_VENV", venv)
            .output()
            .expect("run setup-moto")
    };
    let out = run(&dir.path().join("venv"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot make a virtualenv") && last.contains("install python3-venv"),
        "{stderr}"
    );
    // A path holding something else is never removed.
    let precious = dir.path().join("data");
    std::fs::create_dir_all(&precious).expect("dir");
    std::fs::write(precious.join("keep"), "x").expect("file");
    let out = run(&precious);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists and is not a virtualenv"),
        "{}",
        text(&out.stderr)
    );
    assert!(precious.join("keep").exists());
}

#[test]
fn an_endless_or_huge_input_is_refused_at_once_by_every_command_that_reads_one() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = dir.path().join("huge.yaml");
    // Sparse: 400 MB that take no disk.
    std::fs::File::create(&huge)
        .expect("create")
        .set_len(400 * 1024 * 1024)
        .expect("size");
    let state = dir.path().join("state");
    for input in ["/dev/zero", huge.to_str().expect("utf-8")] {
        for args in [
            &["validate", input][..],
            &["plan", input],
            &["check", input],
            &["iam-policy", input],
            &["run", input, "--yes"],
            &["drill", input, "--yes"],
            &["check-config", input],
            &["--config", input, "runs"],
            &["--config", input, "status"],
            &["--config", input, "exposure"],
            &["--config", input, "verify"],
            &["--config", input, "daemon"],
        ] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
                .args(args)
                .env("LIFEBOAT_STATE_DIR", &state)
                .env_remove("LIFEBOAT_CONFIG")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run lifeboat");
            // Bounded: an unbounded read of /dev/zero would never end.
            let status = crate::support::eventually(
                std::time::Duration::from_secs(60),
                || format!("{args:?} is still reading its input"),
                || child.try_wait().expect("wait"),
            );
            let mut err = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("stderr");
            assert_eq!(status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(input), "{args:?} names the file: {err}");
            assert!(err.contains("16 MiB"), "{args:?} says why: {err}");
        }
    }
    assert!(!state.exists(), "nothing was created");
}

#[test]
fn a_runbook_missing_a_required_field_still_has_every_other_problem_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rb.yaml");
    std::fs::write(
        &file,
        "name: x
steps:
  - { id: a, action: wait, needs: [zz], with: { duration: 1s } }
  - { id: b, action: wait, needs: [c], with: { duration: 1s } }
  - { id: c, action: wait, needs: [b], with: { duration: 1s } }
",
    )
    .expect("write");
    let out = lifeboat(&["validate", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for (at, what) in [
        ("rb.yaml:1:1: error: ", "missing field `strategy`"),
        ("rb.yaml:3:", "`needs` names an unknown step `zz`"),
        ("rb.yaml:5:", "dependency cycle: b → c → b"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(at) && l.contains(what)),
            "{at} {what}:\n{err}"
        );
    }
    assert!(err.contains("3 error(s)"), "{err}");
}
