//! A planted secret never leaves the process that needs it: after a full
//! run using it (a step that succeeds with it in its output, one that fails
//! with it in its error, a rollback), it is in no output of `run`, `show`,
//! `runs`, `report` (every format), `plan` or `--dry-run`, in no log line
//! (at the most verbose level) and in no byte of the journal's files.

use std::path::Path;
use std::process::Output;

use crate::support::{command, text};

fn lifeboat(state: &Path, args: &[&str]) -> Output {
    command(state)
        .env("LIFEBOAT_LOG", "trace")
        .args(args)
        .output()
        .expect("run lifeboat")
}

const SECRET: &str = "PLANTED-s3cr3t-value-42";
/// Printed by a step (assembled by the shell, so not in the runbook's text).
const KEY_ID: &str = "AKIAPLANTEDKEY000042";

#[test]
fn a_planted_secret_is_in_no_output_log_report_or_journal_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let used = dir.path().join("used");
    let runbook = dir.path().join("secret.yaml");
    std::fs::write(
        &runbook,
        format!(
            "name: secretive
strategy: pilot-light
params:
  token: {{ secret: true, description: An API token }}
steps:
  - id: use
    action: exec
    with: {{ argv: [sh, -c, 'printf %s \"$1\" > {used}; echo \"token is $1, key AKIA\"\"PLANTEDKEY000042\"', sh, '${{token}}'] }}
    rollback: {{ action: exec, with: {{ argv: [sh, -c, 'echo undo $1 >&2; exit 1', sh, '${{token}}'] }} }}
  - id: fail
    action: exec
    needs: [use]
    on_failure: rollback
    with: {{ argv: [sh, -c, 'echo \"refused $1\" >&2; exit 3', sh, '${{token}}'] }}
",
            used = used.display()
        ),
    )
    .expect("write runbook");
    let file = runbook.to_str().expect("utf-8");
    let param = format!("token={SECRET}");

    let mut outputs = Vec::new();
    let run = lifeboat(&state, &["run", file, "--yes", "-p", &param]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "the run fails: {}",
        text(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&used).expect("the step ran"),
        SECRET,
        "the step itself got the secret"
    );
    outputs.push(("run", run));
    let runs = lifeboat(&state, &["runs", "--output", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = list[0]["id"].as_str().expect("run id").to_string();
    outputs.push(("runs", runs));
    for args in [
        vec!["show", id.as_str()],
        vec!["show", id.as_str(), "--output", "json"],
        vec!["report", id.as_str(), "--format", "md"],
        vec!["report", id.as_str(), "--format", "json"],
        vec!["report", id.as_str(), "--format", "html"],
        vec!["plan", file, "-p", &param],
        vec!["plan", file, "-p", &param, "--output", "json"],
        vec!["run", file, "--dry-run", "-p", &param],
        vec!["status"],
    ] {
        let out = lifeboat(&state, &args);
        outputs.push((args[0], out));
    }
    let show = &outputs[3].1;
    assert!(
        text(&show.stdout).contains("token is <redacted>, key <redacted>"),
        "the output is kept, redacted: {}",
        text(&show.stdout)
    );
    for (what, out) in &outputs {
        for planted in [SECRET, KEY_ID] {
            assert!(
                !text(&out.stdout).contains(planted) && !text(&out.stderr).contains(planted),
                "`{what}` printed {planted}:\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
    for entry in std::fs::read_dir(&state).expect("state dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read journal file");
        for planted in [SECRET, KEY_ID] {
            assert!(
                !bytes
                    .windows(planted.len())
                    .any(|w| w == planted.as_bytes()),
                "{} holds {planted}",
                path.display()
            );
        }
    }
}
