//! The daemon's control API: one JSON request per connection on a Unix
//! socket (default `/run/lifeboat/control.sock`, mode 0660), answered with
//! one JSON response. Who asked is taken from the socket itself
//! (`SO_PEERCRED`: uid and pid), never from the request, and recorded in
//! the journal with what they asked for.
//!
//! The requests that are only journal rows (`ack`, `pause`, `resume`, and
//! approving, rejecting, skipping or cancelling a run's step) are applied
//! by the functions here, which the daemon calls for socket requests and
//! the CLI calls directly on the journal when no daemon is listening.

use std::io::{BufRead, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::journal::{DecisionKind, Journal, JournalError, Phase, RequestKind, StepState};
use crate::runbook::Mode;
use crate::trigger::decision;

/// Largest request accepted, in bytes.
const MAX_REQUEST: u64 = 64 * 1024;

/// What a client asks the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Regions, bindings, runs, the kill switch.
    Status,
    /// Start the run a binding waits approval for (no step), or approve a
    /// run's waiting step.
    Approve {
        /// A binding, or a run id.
        target: String,
        /// The run's step.
        step: Option<String>,
    },
    /// Decline a binding's pending run (no step), or reject a run's step.
    Reject {
        /// A binding, or a run id.
        target: String,
        /// The run's step.
        step: Option<String>,
    },
    /// Mark an interrupted step whose effect cannot be observed as done.
    Skip {
        /// Run id.
        run: String,
        /// Step id.
        step: String,
    },
    /// Cancel a run.
    Cancel {
        /// Run id.
        run: String,
    },
    /// Acknowledge a binding's last run, ending its cooldown's hold.
    Ack {
        /// The binding.
        binding: String,
    },
    /// Stop all automatic triggering (detection goes on).
    Pause {
        /// Why, for the record.
        reason: Option<String>,
    },
    /// Allow automatic triggering again.
    Resume,
    /// Start a binding's runbook now, by hand.
    Trigger {
        /// The binding.
        binding: String,
        /// The mode.
        mode: Mode,
    },
    /// Read the daemon's journal (runs, reports, audit) for a caller who
    /// cannot open it: its state directory is the service user's alone.
    Read {
        /// What to read.
        what: Read,
    },
}

/// What a [`Request::Read`] reads: the journal's own reads, one each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "read", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Read {
    /// Every run.
    Runs,
    /// One run, with the runbook text it ran.
    Run {
        /// Run id.
        id: String,
    },
    /// A run's step transitions.
    Events {
        /// Run id.
        run: String,
    },
    /// A run's marks (incident start, declaration, recovery point).
    Marks {
        /// Run id.
        run: String,
    },
    /// Every request left on runs.
    Requests,
    /// Every decision and human request of the daemon.
    Decisions,
}

/// A run as [`Read::Run`] answers it: the record and the runbook text
/// (which the record's own JSON leaves out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRead {
    /// The record.
    pub record: crate::journal::RunRecord,
    /// The runbook text it ran.
    pub runbook_text: String,
}

/// Answer `what` from `journal`, as JSON.
pub fn read(journal: &Journal, what: &Read) -> Result<serde_json::Value, JournalError> {
    let json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| JournalError::Corrupt {
            path: journal.path().to_path_buf(),
            message: format!("cannot encode a read: {e}"),
        })
    };
    match what {
        Read::Runs => json(serde_json::to_value(journal.runs()?)),
        Read::Run { id } => {
            let record = journal.run(id)?;
            let runbook_text = record.run.runbook_text.clone();
            json(serde_json::to_value(RunRead {
                record,
                runbook_text,
            }))
        }
        Read::Events { run } => json(serde_json::to_value(journal.events(run)?)),
        Read::Marks { run } => json(serde_json::to_value(journal.marks(run)?)),
        Read::Requests => json(serde_json::to_value(journal.all_requests()?)),
        Read::Decisions => json(serde_json::to_value(journal.decisions(None)?)),
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What was done, or why not.
    pub message: String,
    /// For `status`: the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    /// For `read`: what was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Response {
    /// Done.
    pub fn done(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: message.into(),
            status: None,
            data: None,
        }
    }

    /// Refused, and why.
    pub fn refused(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            message: message.into(),
            status: None,
            data: None,
        }
    }
}

impl From<Result<String, String>> for Response {
    fn from(result: Result<String, String>) -> Response {
        match result {
            Ok(m) => Response::done(m),
            Err(m) => Response::refused(m),
        }
    }
}

/// A request as the daemon receives it.
#[derive(Debug)]
pub struct Incoming {
    /// The request.
    pub request: Request,
    /// Who sent it: user, uid and pid from the socket.
    pub who: String,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Response>,
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another process answers on the path.
    #[error("another daemon is listening on {0}")]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The system refused.
    #[error("control socket {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Bind the control socket at `path` with mode 0660, replacing a stale
/// socket left by a daemon that died, never a live one or another file.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(SocketError::NotASocket(path.to_path_buf()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    Ok(listener)
}

/// The user name of `uid`, from the system's user database as NSS gives
/// it (`/etc/passwd`, LDAP, SSSD, ...): never from the environment.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
}

/// How a local peer is recorded: `alice (uid 1000, pid 4242)`; a uid the
/// user database does not know is recorded by number alone.
pub fn describe_peer(uid: u32, pid: Option<i32>) -> String {
    let ids = match pid {
        Some(pid) => format!("uid {uid}, pid {pid}"),
        None => format!("uid {uid}"),
    };
    match user_name(uid) {
        Some(name) => format!("{name} ({ids})"),
        None => format!("{ids}, not in the user database"),
    }
}

/// Accept connections on `listener` and pass each request to `to`.
pub async fn serve(listener: tokio::net::UnixListener, to: mpsc::Sender<Incoming>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "control socket");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let to = to.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, to).await {
                warn!(error = %e, "control connection");
            }
        });
    }
}

async fn answer(stream: tokio::net::UnixStream, to: mpsc::Sender<Incoming>) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let who = describe_peer(cred.uid(), cred.pid());
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no request within 10s"))??;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::refused(format!("bad request: {e}")),
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            if to
                .send(Incoming {
                    request,
                    who,
                    reply,
                })
                .await
                .is_err()
            {
                Response::refused("the daemon is stopping")
            } else {
                answer
                    .await
                    .unwrap_or_else(|_| Response::refused("the daemon is stopping"))
            }
        }
    };
    let mut text = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Send `request` to the daemon at `socket` and wait for its answer.
pub fn call(socket: &Path, request: &Request) -> std::io::Result<Response> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut text = serde_json::to_string(request).map_err(std::io::Error::other)?;
    text.push('\n');
    stream.write_all(text.as_bytes())?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

/// The state of a run's step: the last state its own action entered.
fn step_state(journal: &Journal, run: &str, step: &str) -> Result<Option<StepState>, JournalError> {
    Ok(journal
        .events(run)?
        .into_iter()
        .rev()
        .find(|e| e.step == step && e.phase == Phase::Main)
        .map(|e| e.state))
}

/// Leave `kind` for run `id`'s executor, if the run and step are in a
/// state it applies to.
pub fn leave_request(
    journal: &Journal,
    id: &str,
    step: Option<&str>,
    kind: RequestKind,
    who: &str,
) -> Result<Result<String, String>, JournalError> {
    let record = match journal.run(id) {
        Ok(r) => r,
        Err(JournalError::UnknownRun(_)) => return Ok(Err(format!("no run `{id}`"))),
        Err(e) => return Err(e),
    };
    if !record.state.unfinished() {
        return Ok(Err(format!("run {id} already ended ({})", record.state)));
    }
    if let Some(step) = step {
        let state = step_state(journal, id, step)?;
        let allowed: &[StepState] = match kind {
            RequestKind::Approve => &[StepState::Waiting, StepState::NeedsDecision],
            RequestKind::Reject => &[StepState::Waiting],
            RequestKind::Skip | RequestKind::Cancel => &[StepState::NeedsDecision],
        };
        if !state.is_some_and(|s| allowed.contains(&s)) {
            let state = state.map_or("not started", StepState::as_str);
            return Ok(Err(format!(
                "step `{step}` of run {id} is {state}, not waiting for `{kind}`"
            )));
        }
    }
    journal.request(id, step, kind, who, &crate::engine::now())?;
    let what = step.map_or_else(
        || format!("{kind} of run {id}"),
        |s| format!("{kind} of step `{s}` in run {id}"),
    );
    Ok(Ok(format!(
        "{what} recorded; the run acts on it within a second"
    )))
}

/// Record `who`'s acknowledgement of `binding`'s last run.
pub fn ack(
    journal: &Journal,
    binding: &str,
    who: &str,
) -> Result<Result<String, String>, JournalError> {
    let force = journal.in_force(binding)?;
    let Some(started) = &force.started else {
        return Ok(Err(format!(
            "binding `{binding}` has started no run: nothing to acknowledge"
        )));
    };
    let run = started.run.clone().unwrap_or_default();
    if force.ack.as_ref().is_some_and(|a| a.seq > started.seq) {
        return Ok(Err(format!(
            "run {run} of binding `{binding}` is already acknowledged"
        )));
    }
    let state = journal.run(&run)?.state;
    if state.unfinished() {
        return Ok(Err(format!(
            "run {run} of binding `{binding}` is still {state}; acknowledge it once it has ended"
        )));
    }
    journal.decide(&decision(
        Some(binding),
        DecisionKind::Ack,
        Some(&run),
        who,
        None,
    ))?;
    Ok(Ok(format!(
        "run {run} ({state}) of binding `{binding}` acknowledged; automatic runs resume after its cooldown"
    )))
}

/// Turn the kill switch on (`pause`) or off.
pub fn set_paused(
    journal: &Journal,
    pause: bool,
    reason: Option<&str>,
    who: &str,
) -> Result<Result<String, String>, JournalError> {
    let current = crate::trigger::paused(journal)?;
    match (pause, current) {
        (true, Some(p)) => Ok(Err(format!("already paused (by {} at {})", p.who, p.at))),
        (false, None) => Ok(Err("not paused".to_string())),
        (true, None) => {
            let detail = reason.map(|r| serde_json::json!({ "reason": r }));
            journal.decide(&decision(None, DecisionKind::Pause, None, who, detail))?;
            Ok(Ok(
                "automatic triggering paused; detection goes on (`lifeboat resume` to undo)"
                    .to_string(),
            ))
        }
        (false, Some(_)) => {
            journal.decide(&decision(None, DecisionKind::Resume, None, who, None))?;
            Ok(Ok("automatic triggering resumed".to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_named_by_the_user_database() {
        assert_eq!(describe_peer(0, Some(7)), "root (uid 0, pid 7)");
        // No user database holds this uid: the number alone, said so.
        assert_eq!(
            describe_peer(3_999_999_999, None),
            "uid 3999999999, not in the user database"
        );
    }

    #[test]
    fn requests_have_a_stable_wire_form() {
        let r = Request::Trigger {
            binding: "app".into(),
            mode: Mode::Drill,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"op":"trigger","binding":"app","mode":"drill"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"ack","binding":"a","who":"root"}"#).is_err()
        );
    }

    #[tokio::test]
    async fn a_live_socket_is_never_replaced_and_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/control.sock");
        let listener = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert!(matches!(bind(&path), Err(SocketError::InUse(_))));
        drop(listener);
        bind(&path).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(bind(&file), Err(SocketError::NotASocket(_))));
    }

    #[test]
    fn the_kill_switch_and_acks_are_checked_before_they_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), crate::journal::Access::Client).unwrap();
        assert!(set_paused(&journal, false, None, "a").unwrap().is_err());
        assert!(
            set_paused(&journal, true, Some("drill week"), "a")
                .unwrap()
                .is_ok()
        );
        assert!(set_paused(&journal, true, None, "b").unwrap().is_err());
        assert!(set_paused(&journal, false, None, "b").unwrap().is_ok());
        assert!(ack(&journal, "app", "a").unwrap().is_err());
        let kinds: Vec<String> = journal
            .decisions(None)
            .unwrap()
            .into_iter()
            .map(|d| format!("{} by {}", d.kind, d.who))
            .collect();
        assert_eq!(kinds, vec!["pause by a", "resume by b"]);
    }
}
