//! Bad input, as a user would feed it: every runbook and config in
//! `tests/corpus/` (truncated, wrong types, unknown actions, cycles, tabs,
//! two documents, deep nesting, an alias bomb, invalid UTF-8, static keys,
//! a bad binding, a bad cron) and a generated huge runbook is refused with
//! exit 2 and a located message, and nothing runs: the step that would
//! have touched a marker file never did, no journal was written.

use crate::support::{lifeboat, text};

/// The message names the file, and a line in it when the text could be read.
fn located(err: &str, name: &str, utf8: bool) -> bool {
    if utf8 {
        return err.contains(name) && err.contains("UTF-8");
    }
    err.lines().any(|l| {
        l.split_once(&format!("{name}:"))
            .is_some_and(|(_, rest)| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[test]
fn every_broken_input_is_refused_with_a_location_and_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("touched");
    let state = dir.path().join("state");
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir("tests/corpus")
        .expect("tests/corpus")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    let huge: String = (0..20_000)
        .map(|i| format!("  - {{ id: s{i}, action: exec, needs: [s{}], with: {{ argv: [touch, MARKER] }} }}\n", i + 1))
        .collect();
    inputs.push((
        "runbook-huge.yaml".into(),
        format!("name: t\nstrategy: pilot-light\nsteps:\n{huge}").into_bytes(),
    ));
    assert!(inputs.len() >= 15, "the corpus is there");
    for (name, bytes) in inputs {
        let path = dir.path().join(&name);
        let text_in =
            String::from_utf8_lossy(&bytes).replace("MARKER", marker.to_str().expect("utf-8"));
        let utf8 = std::str::from_utf8(&bytes).is_err();
        std::fs::write(
            &path,
            if utf8 {
                bytes.clone()
            } else {
                text_in.into_bytes()
            },
        )
        .expect("write");
        let file = path.to_str().expect("utf-8");
        let attempts: Vec<Vec<&str>> = if name.starts_with("runbook") {
            vec![
                vec!["validate", file],
                vec!["run", file, "--yes"],
                vec!["plan", file],
            ]
        } else {
            vec![vec!["check-config", file], vec!["daemon", "--config", file]]
        };
        for args in attempts {
            let out = lifeboat(&state, &args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
            assert!(
                located(&err, &name, utf8),
                "{name} {args:?} not located: {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
        assert!(!marker.exists(), "{name}: a step ran");
        assert!(
            !state.join("journal.sqlite").exists(),
            "{name}: a journal was written"
        );
    }
}
