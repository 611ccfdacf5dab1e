//! `lifeboat check`: could this runbook run now?

use std::path::Path;

use super::args::Output;
use super::error::CliError;
use super::shared::{load_file, print, registry_for, report_calls};
use crate::actions::Readiness;
use crate::actions::preflight::{self, Part, StepCheck};
use crate::runbook::Mode;

/// Run every preflight of the runbook and report; exit 1 when any would fail.
pub(super) fn check(
    file: &Path,
    params: &[(String, String)],
    mode: Mode,
    output: Output,
) -> Result<(), CliError> {
    let (_, _, loaded) = load_file(file, params)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let registry = registry_for(&runtime, &loaded.runbook);
    let checks = runtime.block_on(preflight::check(&registry, &loaded.runbook, mode));
    if let Some(aws) = registry.aws() {
        report_calls(aws);
    }
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&checks)?))?,
        Output::Text => print(&render(&loaded.runbook.name, mode, &checks))?,
    }
    let failing = checks
        .iter()
        .filter(|c| matches!(c.readiness, Readiness::WouldFail(_)))
        .count();
    if failing > 0 {
        return Err(CliError::CheckFailed(failing));
    }
    Ok(())
}

fn render(name: &str, mode: Mode, checks: &[StepCheck]) -> String {
    let count = |f: fn(&Readiness) -> bool| checks.iter().filter(|c| f(&c.readiness)).count();
    let mut out = format!(
        "check of {name} ({mode} mode): {} ready, {} would fail, {} cannot be checked before the run\n",
        count(|r| matches!(r, Readiness::Ready(_))),
        count(|r| matches!(r, Readiness::WouldFail(_))),
        count(|r| matches!(r, Readiness::Unchecked(_))),
    );
    for c in checks {
        let (mark, detail) = match &c.readiness {
            Readiness::Ready(d) => ("ok  ", d),
            Readiness::WouldFail(d) => ("FAIL", d),
            Readiness::Unchecked(d) => ("--  ", d),
        };
        let part = match c.part {
            Part::Action => String::new(),
            Part::Fallback => " (fallback)".to_string(),
            Part::Rollback => " (rollback)".to_string(),
        };
        let region = c
            .region
            .as_deref()
            .map_or(String::new(), |r| format!(" in {r}"));
        out.push_str(&format!(
            "  {mark} {}{part}: {}{region}: {detail}\n",
            c.step, c.action
        ));
    }
    out
}
