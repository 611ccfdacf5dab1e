//! Commands for the daemon (`status`, `approve`, `reject`, `skip`,
//! `cancel`, `ack`, `pause`, `resume`, `trigger`): sent over its control
//! socket when a daemon answers there, so that it records who asked;
//! otherwise, where the request is a journal record, left in the daemon's
//! journal (found from its config) for it to read when it starts, and said
//! so. A request is never left in a journal that did not exist.
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::Path;

use super::args::Output;
use super::error::CliError;
use super::shared::{JournalAt, eprint, print, who};
use crate::control::{self, Request, Response};
use crate::journal::RequestKind;

/// The daemon's answer, or why no daemon answers on `socket`.
fn ask(socket: &Path, request: &Request) -> Result<Result<Response, String>, CliError> {
    if !socket.exists() {
        return Ok(Err("no socket there".into()));
    }
    match control::call(socket, request) {
        Ok(response) => Ok(Ok(response)),
        // A socket file nobody listens on: a daemon that died.
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            Ok(Err(e.to_string()))
        }
        Err(e) => Err(CliError::NoDaemon {
            socket: socket.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn answered(response: Response) -> Result<(), CliError> {
    if response.ok {
        print(&format!("{}\n", response.message))
    } else {
        Err(CliError::Refused(response.message))
    }
}

/// Send `request` to the daemon; when none answers, leave what is a
/// journal record in the daemon's journal (saying so), never in a journal
/// nobody reads.
pub fn send(at: &JournalAt, request: Request) -> Result<(), CliError> {
    let socket = at.socket()?;
    let why = match ask(&socket, &request)? {
        Ok(response) => return answered(response),
        Err(why) => why,
    };
    let no_daemon = |what: &str| CliError::NoDaemon {
        socket: socket.clone(),
        reason: format!("{why}, and {what}"),
    };
    match &request {
        Request::Approve { step: None, .. } | Request::Reject { step: None, .. } => {
            return Err(no_daemon(
                "a binding's pending run is approved or declined by the daemon (for a run's step, give RUN STEP)",
            ));
        }
        Request::Trigger { .. } => {
            return Err(no_daemon(
                "bindings are triggered by the daemon (`lifeboat run FILE` starts a runbook without one)",
            ));
        }
        Request::Status => return status(at, Output::Text),
        Request::Read { .. } => {
            return Err(no_daemon("the read commands read the journal themselves"));
        }
        _ => {}
    }
    let who = who();
    let (journal, recorded) = at.open_for_request(&why)?;
    let result = match &request {
        Request::Approve {
            target,
            step: Some(step),
        } => control::leave_request(&journal, target, Some(step), RequestKind::Approve, &who)?,
        Request::Reject {
            target,
            step: Some(step),
        } => control::leave_request(&journal, target, Some(step), RequestKind::Reject, &who)?,
        Request::Skip { run, step } => {
            control::leave_request(&journal, run, Some(step), RequestKind::Skip, &who)?
        }
        Request::Cancel { run } => {
            control::leave_request(&journal, run, None, RequestKind::Cancel, &who)?
        }
        Request::Ack { binding } => control::ack(&journal, binding, &who)?,
        Request::Pause { reason } => control::set_paused(&journal, true, reason.as_deref(), &who)?,
        Request::Resume => control::set_paused(&journal, false, None, &who)?,
        Request::Approve { step: None, .. }
        | Request::Reject { step: None, .. }
        | Request::Trigger { .. }
        | Request::Status
        | Request::Read { .. } => return Ok(()),
    };
    if result.is_ok() {
        eprint(&format!("lifeboat: {recorded}"));
    }
    answered(Response::from(result))
}

/// `lifeboat status`.
pub fn status(at: &JournalAt, output: Output) -> Result<(), CliError> {
    let socket = at.socket()?;
    let status = match ask(&socket, &Request::Status)? {
        Ok(response) if response.ok => response.status.unwrap_or_default(),
        Ok(response) => return Err(CliError::Refused(response.message)),
        Err(why) => journal_status(at, &why)?,
    };
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&status)?)),
        Output::Text => print(&render(&status)),
    }
}

/// What the journal alone says, when no daemon answers (`why`).
fn journal_status(at: &JournalAt, why: &str) -> Result<serde_json::Value, CliError> {
    let (journal, _) = at.open_for_request(why)?;
    let paused = crate::trigger::paused(&journal)?;
    let runs: Vec<serde_json::Value> = journal
        .unfinished_runs()?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "run": r.run.id,
                "runbook": r.run.runbook,
                "mode": r.run.mode,
                "started_at": r.run.started_at,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "daemon": "not running",
        "paused": paused.map(|p| serde_json::json!({
            "by": p.who,
            "at": p.at,
            "reason": p.detail.and_then(|d| d.get("reason").cloned()),
        })),
        "runs": runs,
    }))
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn render(status: &serde_json::Value) -> String {
    let mut out = String::new();
    if status["daemon"] == "not running" {
        out.push_str("daemon: not running (this is what the journal says)\n");
    }
    let cluster = &status["cluster"];
    if cluster.is_object() {
        let _ = writeln!(
            out,
            "cluster: {} ({}) is {}{}; leader {}",
            text(&cluster["name"]),
            text(&cluster["place"]),
            text(&cluster["role"]),
            cluster["epoch"]
                .as_i64()
                .map(|e| format!(" (epoch {e})"))
                .unwrap_or_default(),
            cluster["leader"].as_str().unwrap_or("not known yet"),
        );
    }
    match &status["paused"] {
        serde_json::Value::Null => out.push_str("automatic triggering: on\n"),
        p => {
            let _ = writeln!(
                out,
                "automatic triggering: PAUSED by {} at {}{}",
                text(&p["by"]),
                text(&p["at"]),
                p["reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    for region in status["regions"].as_array().into_iter().flatten() {
        let what = match region["zone"].as_str() {
            Some(zone) => format!("zone {zone} ({})", text(&region["region"])),
            None => format!("region {}", text(&region["region"])),
        };
        let _ = writeln!(
            out,
            "\n{what}: {}{}",
            text(&region["state"]),
            region["incident_start"]
                .as_str()
                .map(|t| format!(", incident since {t}"))
                .unwrap_or_default()
        );
        for p in region["probes"].as_array().into_iter().flatten() {
            let state = match (p["failing"].as_bool(), p["last_ok"].as_bool()) {
                (Some(true), _) => "FAILING",
                (_, Some(true)) => "ok",
                (_, Some(false)) => "failed",
                _ => "not yet run",
            };
            let _ = writeln!(
                out,
                "  {:<20} {:<11} {}",
                text(&p["probe"]),
                state,
                p["last_detail"].as_str().unwrap_or("")
            );
        }
    }
    for b in status["bindings"].as_array().into_iter().flatten() {
        let ready = match b["ready"].as_bool() {
            Some(true) => "ready".to_string(),
            Some(false) => format!(
                "NOT READY: {}",
                b["not_ready"]
                    .as_array()
                    .map(|p| p.iter().map(text).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default()
            ),
            None => "readiness not checked yet".to_string(),
        };
        let _ = writeln!(
            out,
            "\nbinding {} ({} -> {}, policy {}): {}; {ready}",
            text(&b["name"]),
            b["zone"]
                .as_str()
                .map_or_else(|| text(&b["region"]), |z| format!("zone {z}")),
            text(&b["runbook"]),
            text(&b["policy"]),
            text(&b["state"]),
        );
        if let Some(why) = b["cooling"].as_str() {
            let _ = writeln!(out, "  held: {why}");
        }
        if let Some(until) = b["maintenance_until"].as_str() {
            let _ = writeln!(
                out,
                "  in a maintenance window until {until}: nothing starts automatically"
            );
        }
        let last = &b["last_run"];
        if !last.is_null() && last["run"] == b["active_run"] {
            let _ = writeln!(out, "  run {} in progress", text(&last["run"]));
        } else if !last.is_null() {
            let figure = |s: &serde_json::Value| crate::report::seconds(s.as_f64());
            let _ = writeln!(
                out,
                "  last run {} {}: RTO {} ({}), RPO {} ({})",
                text(&last["run"]),
                text(&last["state"]),
                figure(&last["rto_s"]),
                text(&last["rto_verdict"]),
                figure(&last["rpo_s"]),
                text(&last["rpo_verdict"]),
            );
        }
        // Only the daemon knows what its runs proved.
        if b.get("last_drill").is_some() {
            let drill = match b["last_drill"]["run"].as_str() {
                Some(run) => format!(
                    "last successful drill {run} at {}",
                    text(&b["last_drill"]["finished_at"])
                ),
                None => "never drilled successfully".to_string(),
            };
            let _ = writeln!(out, "  {drill}");
            for w in b["drill_warnings"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "  WARNING: {}", text(w));
            }
        }
    }
    let runs = status["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        out.push_str("\nno run in progress\n");
    } else {
        out.push_str("\nruns in progress:\n");
        for r in &runs {
            let _ = writeln!(
                out,
                "  {}  {} ({}) since {}{}",
                text(&r["run"]),
                text(&r["runbook"]),
                text(&r["mode"]),
                text(&r["started_at"]),
                r["binding"]
                    .as_str()
                    .map(|b| format!(", binding {b}"))
                    .unwrap_or_default()
            );
        }
    }
    out
}
