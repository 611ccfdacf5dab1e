//! `lifeboat audit`: who did what, when and from what input, from the
//! journal's append-only records: runs (with their runbook's file and hash
//! and their parameters, secret ones by name only), requests on runs
//! (approve, reject, skip, cancel), and the daemon's decisions and the
//! requests it carried out (approve, ack, pause, resume, trigger), config
//! loads included.

use std::fmt::Write as _;

use serde::Serialize;

use super::args::Output;
use super::error::CliError;
use super::shared::{JournalAt, print};

/// One thing that happened.
#[derive(Debug, Serialize)]
struct Entry {
    at: String,
    who: String,
    what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

/// The moment `--since` names: an RFC 3339 time, or a duration ago (`24h`).
fn since(text: &str) -> Result<jiff::Timestamp, CliError> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let ago = text
        .parse::<crate::duration::HumanDuration>()
        .map_err(|e| {
            CliError::Usage(format!(
                "--since: `{text}` is neither an RFC 3339 time nor a duration: {e}"
            ))
        })?;
    jiff::Timestamp::now()
        .checked_sub(ago.get())
        .map_err(|e| CliError::Usage(format!("--since: {e}")))
}

/// `lifeboat audit [--since T]`.
pub fn audit(at: &JournalAt, from: Option<&str>, output: Output) -> Result<(), CliError> {
    let from = from.map(since).transpose()?;
    let journal = at.reader()?;
    let mut entries = Vec::new();
    for listed in journal.runs()? {
        let r = journal.run(&listed.run.id)?;
        entries.push(Entry {
            at: r.run.started_at.clone(),
            who: r.run.started_by.clone(),
            what: format!("run-started ({})", r.run.mode),
            run: Some(r.run.id.clone()),
            step: None,
            binding: None,
            detail: Some(serde_json::json!({
                "runbook": r.run.runbook,
                "file": r.run.file,
                "sha256": r.run.runbook_sha256,
                "params": r.run.params,
                "secret_params": r.run.secret_params,
            })),
        });
        if let Some(at) = &r.finished_at {
            entries.push(Entry {
                at: at.clone(),
                who: "lifeboat".into(),
                what: format!("run-{}", r.state),
                run: Some(r.run.id.clone()),
                step: None,
                binding: None,
                detail: r.error.as_ref().map(|e| serde_json::json!({ "error": e })),
            });
        }
    }
    for q in journal.all_requests()? {
        entries.push(Entry {
            at: q.at,
            who: q.who,
            what: q.kind.to_string(),
            run: Some(q.run),
            step: q.step,
            binding: None,
            detail: None,
        });
    }
    for d in journal.decisions()? {
        entries.push(Entry {
            at: d.at,
            who: d.who,
            what: d.kind.to_string(),
            run: d.run,
            step: None,
            binding: d.binding,
            detail: d.detail,
        });
    }
    entries.retain(|e| {
        from.is_none_or(|from| e.at.parse::<jiff::Timestamp>().is_ok_and(|at| at >= from))
    });
    entries.sort_by(|a, b| a.at.cmp(&b.at));
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&entries)?)),
        Output::Text => {
            let mut out = String::new();
            for e in &entries {
                let mut about = Vec::new();
                if let Some(b) = &e.binding {
                    about.push(format!("binding {b}"));
                }
                if let Some(r) = &e.run {
                    about.push(format!("run {r}"));
                }
                if let Some(s) = &e.step {
                    about.push(format!("step {s}"));
                }
                let _ = writeln!(
                    out,
                    "{}  {:<24} {:<40} {}",
                    e.at,
                    e.what,
                    e.who,
                    about.join(", ")
                );
            }
            print(&out)
        }
    }
}
