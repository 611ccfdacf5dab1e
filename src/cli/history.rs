//! `runs` and `show`: the journal's runs, and one run step by step.

use std::fmt::Write as _;

use serde::Serialize;

use super::args::Output;
use super::error::CliError;
use super::shared::{JournalAt, StepRow, print, render_run, step_rows};
use crate::journal::RunRecord;

/// `lifeboat runs`.
pub fn runs(at: &JournalAt, output: Output) -> Result<(), CliError> {
    let journal = at.reader()?;
    let runs = journal.runs()?;
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&runs)?)),
        Output::Text => {
            let mut out = String::new();
            for r in &runs {
                let _ = writeln!(
                    out,
                    "{}  {:10}  {:10}  {}  {}",
                    r.run.id, r.state, r.run.mode, r.run.runbook, r.run.started_at
                );
            }
            if runs.is_empty() {
                out.push_str("no runs\n");
            }
            print(&out)
        }
    }
}

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    run: &'a RunRecord,
    steps: &'a [StepRow],
}

/// `lifeboat show RUN`.
pub fn show(at: &JournalAt, id: &str, output: Output) -> Result<(), CliError> {
    let journal = at.reader()?;
    let record = journal.run(id)?;
    let rows = step_rows(&journal.events(id)?);
    match output {
        Output::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&ShowJson {
                run: &record,
                steps: &rows
            })?
        )),
        Output::Text => print(&render_run(&record, &rows)),
    }
}
