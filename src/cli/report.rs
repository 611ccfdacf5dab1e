//! `lifeboat report RUN`: the run's RTO and RPO and its timeline.

use std::path::Path;

use super::args::{Output, ReportFormat};
use super::error::CliError;
use super::shared::{JournalAt, load_config, print};
use crate::journal::{Access, Journal};

/// Print the report of run `id`.
pub(super) fn report(at: &JournalAt, id: &str, format: ReportFormat) -> Result<(), CliError> {
    let figures = at.reader()?.figures(id)?;
    print(&match format {
        ReportFormat::Md => crate::report::markdown(&figures),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&figures)?),
        ReportFormat::Html => crate::report::html(&figures),
    })
}

/// `lifeboat exposure --config FILE`: each protected resource's RPO
/// exposure now; exit 1 when one is over its target or unreadable.
pub(super) fn exposure(file: &Path, output: Output) -> Result<(), CliError> {
    let config = load_config(file)?;
    if config.protected.is_empty() {
        return Err(CliError::Usage(format!(
            "{} lists no `protected` resources",
            file.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let metrics = crate::metrics::Metrics::new();
    let exposures = runtime.block_on(async {
        let aws = crate::aws::AwsClients::load(&config.aws, crate::aws::Credentials::Chain).await;
        crate::exposure::refresh(&aws, &config.protected, &metrics).await
    });
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&exposures)?))?,
        Output::Text => {
            let mut out = String::new();
            for e in &exposures {
                out.push_str(&format!(
                    "{:<40} {:>10}  target {:>8}  {}{}\n",
                    e.resource,
                    crate::report::seconds(e.seconds),
                    crate::report::seconds(e.target_s),
                    e.verdict,
                    match (&e.recovery_point, &e.error) {
                        (_, Some(err)) => format!(": {err}"),
                        (Some(point), None) =>
                            format!(" ({point}, taken {})", e.taken_at.as_deref().unwrap_or("?")),
                        (None, None) => String::new(),
                    }
                ));
            }
            print(&out)?;
        }
    }
    let bad = exposures.iter().filter(|e| e.verdict != "ok").count();
    if bad > 0 {
        return Err(CliError::ExposureOverTarget(bad));
    }
    Ok(())
}

/// `lifeboat verify --config FILE [--job NAME]`: run verification jobs now;
/// exit 1 when a check fails. Results are journaled in the config's state
/// directory when it can be opened.
pub(super) fn verify(file: &Path, job: Option<&str>, output: Output) -> Result<(), CliError> {
    let config = load_config(file)?;
    let jobs: Vec<&crate::verify::JobSpec> = config
        .jobs
        .iter()
        .filter(|j| job.is_none_or(|name| j.name == name))
        .collect();
    if jobs.is_empty() {
        return Err(CliError::Usage(match job {
            Some(name) => format!(
                "{} has no verify job `{name}` (it has: {})",
                file.display(),
                config
                    .jobs
                    .iter()
                    .map(|j| j.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("{} lists no `verify` jobs", file.display()),
        }));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let results: Vec<crate::verify::JobResult> = runtime.block_on(async {
        let aws = crate::aws::AwsClients::load(&config.aws, crate::aws::Credentials::Chain).await;
        let mut results = Vec::new();
        for j in &jobs {
            results.push(crate::verify::run(&aws, j).await);
        }
        results
    });
    match Journal::open(&config.state_dir, Access::Client) {
        Ok(journal) => {
            for r in &results {
                journal.record_verification(
                    &r.job,
                    &r.started_at,
                    r.ok,
                    &serde_json::to_value(r)?,
                )?;
            }
        }
        Err(e) => super::eprint(&format!("lifeboat: results not journaled: {e}")),
    }
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&results)?))?,
        Output::Text => {
            let mut out = String::new();
            for r in &results {
                out.push_str(&format!(
                    "job {}: {} in {}\n",
                    r.job,
                    if r.ok { "passed" } else { "FAILED" },
                    crate::report::seconds(Some(r.duration_s))
                ));
                for c in &r.checks {
                    out.push_str(&format!(
                        "  {:<4} {:<36} {:<28} {}\n",
                        if c.ok { "ok" } else { "FAIL" },
                        c.resource,
                        c.check,
                        c.detail
                    ));
                }
            }
            print(&out)?;
        }
    }
    let failed = results
        .iter()
        .flat_map(|r| &r.checks)
        .filter(|c| !c.ok)
        .count();
    if failed > 0 {
        return Err(CliError::VerifyFailed(failed));
    }
    Ok(())
}
