//! `lifeboat report RUN`: the run's RTO and RPO and its timeline.

use std::path::Path;

use clap::ValueEnum;

use super::{CliError, print};
use crate::engine::journal::{Access, Journal};
use crate::measure::Figures;
use crate::runbook::{self, MissingParams};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for tickets and post-mortems.
    #[default]
    Md,
    /// JSON, for programs.
    Json,
    /// One self-contained HTML page with a timeline chart.
    Html,
}

/// Print the report of run `id`.
pub(super) fn report(state_dir: &Path, id: &str, format: ReportFormat) -> Result<(), CliError> {
    let journal = Journal::open(state_dir, Access::Client)?;
    let record = journal.run(id)?;
    // The runbook as it was run; secret values are not kept, and no
    // figure depends on them, so placeholders stand in.
    let loaded = runbook::load(
        &record.run.file,
        &record.run.runbook_text,
        &record.run.params,
        MissingParams::Placeholder,
    )
    .map_err(|problems| {
        CliError::Usage(format!(
            "run {id}'s runbook no longer loads: {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let figures = Figures::compute(
        &record,
        &loaded.runbook,
        &journal.events(id)?,
        &journal.marks(id)?,
    );
    print(&match format {
        ReportFormat::Md => crate::report::markdown(&figures),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&figures)?),
        ReportFormat::Html => crate::report::html(&figures),
    })
}
