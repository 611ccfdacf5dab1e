//! The coverage check end-to-end runs make: every AWS operation each step
//! made, as the journal's call log records it, is covered by the
//! permissions its action declares.

use std::path::Path;

use lifeboat::journal::{Access, Journal};
use lifeboat::runbook::{self, MissingParams, Mode};

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
