//! `lifeboat report RUN`: the run's RTO and RPO and its timeline.

use std::path::Path;

use super::args::{Output, ReportFormat};
use super::error::CliError;
use super::shared::{JournalAt, Reader, load_config, print};
use crate::journal::RunRecord;
use crate::journal::{Access, Journal};
use crate::measure::{Comparison, Figures};

/// Print the report of run `id`.
pub(super) fn report(at: &JournalAt, id: &str, format: ReportFormat) -> Result<(), CliError> {
    let reader = at.reader()?;
    let figures = reader.figures(id)?;
    let compared = compare(&reader, &figures)?;
    print(&match format {
        ReportFormat::Md => format!(
            "{}{}",
            crate::report::markdown(&figures),
            crate::report::comparison_markdown(&figures, &compared)
        ),
        ReportFormat::Json => {
            let mut json = serde_json::to_value(&figures)?;
            json["compared"] = serde_json::to_value(&compared)?;
            format!("{}\n", serde_json::to_string_pretty(&json)?)
        }
        ReportFormat::Html => crate::report::html_compared(&figures, &compared),
    })
}

/// The run beside its runbook's last successful failover and drills.
fn compare(reader: &Reader, this: &Figures) -> Result<Comparison, CliError> {
    let sha = reader.run(&this.run)?.run.runbook_sha256;
    let mut earlier: Vec<RunRecord> = reader
        .runs()?
        .into_iter()
        .filter(|r| {
            r.run.runbook == this.runbook
                && r.run.id != this.run
                && r.state == crate::journal::RunState::Succeeded
        })
        .collect();
    earlier.sort_by(|a, b| b.run.started_at.cmp(&a.run.started_at));
    // The newest failover and the newest drills are all a comparison uses.
    let mut wanted = Vec::new();
    let mut failover = false;
    let mut drills = 0;
    for r in earlier {
        let drill = r.run.mode == "drill";
        if (drill && drills < crate::measure::TREND_DRILLS) || (!drill && !failover) {
            if drill {
                drills += 1;
            } else {
                failover = true;
            }
            // A run whose runbook no longer loads is left out, not fatal.
            if let Ok(f) = reader.figures(&r.run.id) {
                wanted.push((r.run.runbook_sha256, f));
            }
        }
    }
    Ok(Comparison::of(this, &sha, &wanted))
}

/// `lifeboat exposure --config FILE`: each protected resource's RPO
/// exposure now, the config's and each binding's on the side the
/// daemon's journal has it on; exit 1 when one is over its target or
/// unreadable.
pub(super) fn exposure(at: &JournalAt, output: Output) -> Result<(), CliError> {
    let file = at.required_config()?;
    let config = load_config(file)?;
    if config.protected.is_empty() && config.bindings.iter().all(|b| b.protected.is_empty()) {
        return Err(CliError::Usage(format!(
            "{} lists no `protected` resources (neither its own nor a binding's)",
            file.display()
        )));
    }
    let bindings = crate::daemon::on_journaled_sides(&config.bindings, &at.decisions_if_any()?);
    let watched = crate::exposure::watched(&config.protected, &bindings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let metrics = crate::metrics::Metrics::new();
    let exposures = runtime.block_on(async {
        let aws = crate::aws::AwsClients::load(&config.aws, crate::aws::Credentials::Chain).await;
        crate::exposure::refresh(&aws, &watched, &metrics).await
    });
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&exposures)?))?,
        Output::Text => {
            let mut out = String::new();
            for e in &exposures {
                out.push_str(&format!(
                    "{:<40} {:>10}  target {:>8}  {}{}{}\n",
                    e.resource,
                    crate::report::seconds(e.seconds),
                    crate::report::seconds(e.target_s),
                    e.verdict,
                    match (&e.recovery_point, &e.error) {
                        (_, Some(err)) => format!(": {err}"),
                        (Some(point), None) =>
                            format!(" ({point}, taken {})", e.taken_at.as_deref().unwrap_or("?")),
                        (None, None) => String::new(),
                    },
                    e.binding
                        .as_deref()
                        .map_or(String::new(), |b| format!(" [binding {b}]")),
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
