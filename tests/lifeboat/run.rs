//! `lifeboat run`, `runs`, `show`, `approve`, `cancel` as a user runs them,
//! on runbooks of generic actions (no AWS).

use std::path::Path;
use std::process::{Child, Command};

use crate::support::{command, lifeboat, spawn, started_run_id, text, wait_for};

fn write(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    p.to_str().expect("utf-8").to_string()
}

fn only_run_id(state: &Path) -> String {
    let out = lifeboat(state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    runs[0]["id"].as_str().expect("id").to_string()
}

fn runbook(dir: &Path, marker: &Path, middle: &str) -> String {
    let marker = marker.display();
    write(
        dir,
        "rb.yaml",
        &format!(
            "name: generic\nstrategy: pilot-light\nsteps:\n  - {{ id: first, action: exec, with: {{ argv: [sh, -c, 'echo first >> {marker}'] }} }}\n{middle}  - {{ id: last, action: exec, needs: [middle], with: {{ argv: [sh, -c, 'echo last >> {marker}'] }}, restores_service: true }}\n"
        ),
    )
}

/// A temporary directory with a state dir, a marker file the runbook's
/// `exec` steps append to, and the runbook with `middle` between them.
fn scratch(
    middle: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let marker = dir.path().join("marker");
    let rb = runbook(dir.path(), &marker, middle);
    (dir, state, marker, rb)
}

/// A run started in another process, its `middle` step in a given state.
struct Background {
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    marker: std::path::PathBuf,
    rb: String,
    child: Child,
    id: String,
}

fn background(middle: &str, reached: &str) -> Background {
    let (dir, state, marker, rb) = scratch(middle);
    let mut child = spawn(&state, &["run", &rb, "--yes"]);
    let id = started_run_id(&state, &mut child);
    wait_for(&state, &id, "middle", reached);
    Background {
        _dir: dir,
        state,
        marker,
        rb,
        child,
        id,
    }
}

const APPROVAL: &str = "  - { id: middle, action: manual.approval, needs: [first], with: { prompt: 'Go?', timeout: 5m } }\n";

#[test]
fn a_run_executes_is_journaled_and_shown() {
    let (_dir, state, marker, rb) =
        scratch("  - { id: middle, action: wait, needs: [first], with: { duration: 100ms } }\n");

    let out = lifeboat(&state, &["run", &rb, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "first\nlast\n"
    );
    assert!(text(&out.stderr).contains("first"), "progress is shown");
    assert!(
        text(&out.stdout).contains("succeeded"),
        "{}",
        text(&out.stdout)
    );

    let id = only_run_id(&state);
    let out = lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(show["state"], "succeeded");
    assert_eq!(show["steps"][0]["step"], "first");
    assert_eq!(show["steps"][0]["outputs"]["exit_code"], 0);
    assert!(
        show["steps"][1]["duration_ms"]
            .as_i64()
            .is_some_and(|ms| ms >= 100),
        "{show}"
    );
    assert!(
        show["started_by"]
            .as_str()
            .is_some_and(|w| w.contains("uid")),
        "{show}"
    );
}

#[test]
fn who_started_a_run_is_the_user_database_s_name_of_the_uid_not_user() {
    let (_dir, state, _marker, rb) =
        scratch("  - { id: middle, action: wait, needs: [first], with: { duration: 1ms } }\n");
    let out = command(&state)
        .args(["run", &rb, "--yes"])
        .env("USER", "mallory")
        .output()
        .expect("run lifeboat");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let name = text(
        &Command::new("id")
            .arg("-un")
            .output()
            .expect("id -un")
            .stdout,
    );
    let uid = text(&Command::new("id").arg("-u").output().expect("id -u").stdout);
    let id = only_run_id(&state);
    let out = lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        show["started_by"],
        format!("{} (uid {})", name.trim(), uid.trim()),
        "{show}"
    );
}

#[test]
fn a_long_step_says_what_it_awaits_while_it_waits() {
    let (_dir, state, _marker, rb) =
        scratch("  - { id: middle, action: wait, needs: [first], with: { duration: 3s } }\n");
    let out = lifeboat(&state, &["run", &rb, "--yes", "--progress-every", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let beats: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("middle") && l.contains("still running: wait, "))
        .collect();
    assert!(beats.len() >= 2, "a heartbeat a second:\n{err}");
    assert!(beats.iter().all(|l| l.ends_with("so far")), "{beats:?}");
    assert!(
        !err.lines()
            .any(|l| l.contains("still running") && l.contains("first")),
        "finished steps are not said to be running:\n{err}"
    );
}

#[test]
fn a_failed_step_exits_1_and_says_why() {
    let (_dir, state, marker, rb) = scratch(
        "  - { id: middle, action: exec, needs: [first], with: { argv: [sh, -c, 'echo disk on fire >&2; exit 3'] } }\n",
    );
    let out = lifeboat(&state, &["run", &rb, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("exited with status 3: disk on fire"), "{all}");
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "first\n",
        "`last` never ran"
    );
}

#[test]
fn a_step_allowed_to_fail_that_fails_ends_the_run_succeeded_with_failures() {
    let (_dir, state, marker, rb) = scratch(
        "  - { id: middle, action: exec, needs: [first], with: { argv: [\"true\"] } }\n  - { id: page, action: exec, on_failure: continue, with: { argv: [sh, -c, 'echo pager down >&2; exit 2'] } }\n",
    );
    let out = lifeboat(&state, &["run", &rb, "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("succeeded with failures: step `page` failed")
            && stderr.contains("pager down"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "first\nlast\n",
        "the run went on to its end"
    );
    let runs = lifeboat(&state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    assert_eq!(runs[0]["state"], "succeeded-with-failures", "{runs}");
}

#[test]
fn a_failed_run_retried_reruns_only_what_did_not_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("fixed");
    let (_scratch, state, marker, rb) = scratch(&format!(
        "  - {{ id: middle, action: exec, needs: [first], with: {{ argv: [sh, -c, 'test -f {} || {{ echo quota exceeded >&2; exit 3; }}; echo middle >> {}'] }} }}\n",
        flag.display(),
        "MARKER",
    ));
    // The middle step appends to the same marker as the others.
    let written = std::fs::read_to_string(&rb).expect("runbook");
    std::fs::write(
        &rb,
        written.replace("MARKER", &marker.display().to_string()),
    )
    .expect("runbook");
    let out = lifeboat(&state, &["run", &rb, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let runs = lifeboat(&state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("id").to_string();

    // --resume is for runs that have not ended; it points at --retry.
    let out = lifeboat(&state, &["run", "--resume", &id, "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("--retry {id}")),
        "{}",
        text(&out.stderr)
    );

    // The cause fixed, the retry runs the failed step and what it held
    // up, and not the step that had succeeded.
    std::fs::write(&flag, "").expect("flag");
    let out = lifeboat(&state, &["run", "--retry", &id, "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("again: middle, last"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "first\nmiddle\nlast\n",
        "`first` ran once"
    );
    let show = lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(show["state"], "succeeded", "{show}");
    assert_eq!(show["steps"][1]["attempts"], 2, "{show}");

    // A run that succeeded has nothing to retry.
    let out = lifeboat(&state, &["run", "--retry", &id, "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing to retry"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_confirmation_nothing_runs() {
    let (_dir, state, marker, rb) =
        scratch("  - { id: middle, action: wait, needs: [first], with: { duration: 1ms } }\n");
    let out = lifeboat(&state, &["run", &rb]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pass --yes"));
    assert!(!marker.exists());

    let out = lifeboat(&state, &["run", &rb, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("run [\"sh\", \"-c\""),
        "{}",
        text(&out.stdout)
    );
    assert!(!marker.exists(), "a dry run makes no call");
}

#[test]
fn approval_from_another_terminal_lets_the_run_finish() {
    let mut bg = background(APPROVAL, "waiting");
    let (state, id) = (bg.state.clone(), bg.id.clone());

    // A second executor on the same state directory is refused.
    let out = lifeboat(&state, &["run", &bg.rb, "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("another lifeboat"),
        "{}",
        text(&out.stderr)
    );
    // Approving a step that is not waiting is refused.
    assert_eq!(
        lifeboat(&state, &["approve", &id, "last"]).status.code(),
        Some(2)
    );

    let out = lifeboat(&state, &["approve", &id, "middle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(bg.child.wait().expect("wait for the run").success());
    assert_eq!(
        std::fs::read_to_string(&bg.marker).expect("marker"),
        "first\nlast\n"
    );
    let show: serde_json::Value =
        serde_json::from_slice(&lifeboat(&state, &["show", &id, "--output", "json"]).stdout)
            .expect("JSON");
    assert!(
        show["steps"][1]["outputs"]["approved_by"]
            .as_str()
            .is_some_and(|w| w.contains("uid")),
        "{show}"
    );
}

#[test]
fn a_killed_run_resumes_without_repeating_finished_steps() {
    let mut bg = background(
        "  - { id: middle, action: wait, needs: [first], with: { duration: 2s } }\n",
        "running",
    );
    bg.child.kill().expect("SIGKILL the run");
    let _ = bg.child.wait();

    let out = lifeboat(&bg.state, &["run", "--resume", &bg.id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&bg.marker).expect("marker"),
        "first\nlast\n",
        "first ran once"
    );
    let out = lifeboat(&bg.state, &["run", "--resume", &bg.id]);
    assert_eq!(out.status.code(), Some(2), "an ended run is not resumed");
}

#[test]
fn cancel_stops_a_run() {
    let mut bg = background(APPROVAL, "waiting");
    assert_eq!(
        lifeboat(&bg.state, &["cancel", &bg.id]).status.code(),
        Some(0)
    );
    assert_eq!(bg.child.wait().expect("wait").code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&bg.marker).expect("marker"),
        "first\n"
    );
    let out = lifeboat(&bg.state, &["runs"]);
    assert!(
        text(&out.stdout).contains("cancelled"),
        "{}",
        text(&out.stdout)
    );
}

/// A parent runbook that runs `lib/child.yaml` between two steps of its
/// own, each step appending to `marker`.
fn parent_and_child(dir: &Path, marker: &Path, slow: &str) -> String {
    let marker = marker.display();
    std::fs::create_dir_all(dir.join("lib")).expect("lib");
    write(
        dir,
        "lib/child.yaml",
        &format!(
            "name: data tier\nstrategy: pilot-light\nparams:\n  word: {{}}\nsteps:\n  - {{ id: one, action: exec, with: {{ argv: [sh, -c, 'echo ${{word}}-one >> {marker}'] }} }}\n  - {{ id: slow, action: wait, needs: [one], with: {{ duration: {slow} }} }}\n  - {{ id: two, action: exec, needs: [slow], with: {{ argv: [sh, -c, 'echo ${{word}}-two >> {marker}'] }} }}\n"
        ),
    );
    write(
        dir,
        "parent.yaml",
        &format!(
            "name: parent\nstrategy: pilot-light\nsteps:\n  - {{ id: first, action: exec, with: {{ argv: [sh, -c, 'echo first >> {marker}'] }} }}\n  - {{ id: data, runbook: lib/child.yaml, needs: [first], params: {{ word: data }} }}\n  - {{ id: last, action: exec, needs: [data], with: {{ argv: [sh, -c, 'echo last >> {marker}'] }}, restores_service: true }}\n"
        ),
    )
}

#[test]
fn a_child_runbook_runs_inside_its_parent_and_resumes_from_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, marker) = (dir.path().join("state"), dir.path().join("marker"));
    let rb = parent_and_child(dir.path(), &marker, "3s");

    let out = lifeboat(&state, &["plan", &rb]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("critical path: first → data.one → data.slow → data.two → last"),
        "{}",
        text(&out.stdout)
    );

    let mut child = spawn(&state, &["run", &rb, "--yes"]);
    let id = started_run_id(&state, &mut child);
    wait_for(&state, &id, "data.slow", "running");
    child.kill().expect("SIGKILL the run");
    let _ = child.wait();

    // The child's file changes under the run: the run resumes with the
    // child it started with, carried in its journal.
    write(dir.path(), "lib/child.yaml", "name: [broken\n");
    let out = lifeboat(&state, &["run", "--resume", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "first\ndata-one\ndata-two\nlast\n",
        "what finished before the crash ran once"
    );
    let show = lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(show["state"], "succeeded", "{show}");
    let steps: Vec<&str> = show["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    assert_eq!(
        steps,
        ["first", "data.one", "data.slow", "data.two", "last"]
    );

    // Read now, the broken child refuses the parent, naming the child's
    // file and line, and nothing runs.
    let out = lifeboat(&state, &["validate", &rb]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("lib/child.yaml:2:1: error: YAML syntax"),
        "{stderr}"
    );
    assert!(
        stderr.contains("step `data`: the child runbook `lib/child.yaml` does not load"),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("lib/child.yaml")).expect("remove");
    let out = lifeboat(&state, &["run", &rb, "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("step `data` runs the child runbook"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("os error 2").count(),
        1,
        "the cause said once: {stderr}"
    );
    assert_eq!(only_run_id(&state), id, "no second run was started");
}
