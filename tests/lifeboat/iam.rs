//! IAM: the policy `lifeboat iam-policy` prints for each shipped runbook,
//! against a recorded expectation (`tests/iam/`; `LIFEBOAT_BLESS=1`
//! rewrites them after a deliberate change), and the coverage check the
//! end-to-end runs call: every AWS operation each step made, as the
//! journal's call log records it, is covered by the permissions its action
//! declares, so the declarations cannot drift from the code.

use std::path::Path;

use lifeboat::engine::journal::{Access, Journal};
use lifeboat::runbook::{self, MissingParams, Mode};

use crate::run::{lifeboat, text};

/// Every run in `state`'s journal made only calls its runbook's declared
/// permissions cover; and made some.
pub fn assert_covered(state: &Path) {
    let journal = Journal::open(state, Access::Client).expect("journal");
    let mut operations = 0;
    for listed in journal.runs().expect("runs") {
        let record = journal.run(&listed.run.id).expect("run");
        let loaded = runbook::load(
            &record.run.file,
            &record.run.runbook_text,
            &record.run.params,
            MissingParams::Placeholder,
        )
        .expect("the runbook loads");
        let mode = match record.run.mode.as_str() {
            "drill" => Mode::Drill,
            "switchover" => Mode::Switchover,
            _ => Mode::Failover,
        };
        let calls = journal.calls(&record.run.id).expect("call log");
        operations += calls.iter().map(|c| c.calls.len()).sum::<usize>();
        let missing = lifeboat::iam::uncovered(&loaded.runbook, mode, &calls);
        assert!(
            missing.is_empty(),
            "run {} of {} made calls its declared IAM does not cover:\n{}",
            record.run.id,
            record.run.runbook,
            missing.join("\n")
        );
    }
    assert!(
        operations > 0,
        "no AWS call was logged: nothing was checked"
    );
}

#[test]
fn each_shipped_runbook_gets_its_recorded_policy() {
    let bless = std::env::var_os("LIFEBOAT_BLESS").is_some();
    let state = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir("runbooks").expect("runbooks/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
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
            let text = policy.to_string();
            assert!(
                !text.contains("\"Action\":\"*\"") && !text.contains(":*\""),
                "no wildcard action: {text}"
            );
        }
    }
}
