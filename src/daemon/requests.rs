//! Requests over the control socket: approvals, acknowledgements, the
//! kill switch, triggers by hand, and the status.

use tracing::{info, warn};

use super::Daemon;
use crate::control::{self, Request, Response};
use crate::journal::{DecisionKind, JournalError, RequestKind};
use crate::runbook::Mode;
use crate::trigger::{self, decision};

impl Daemon {
    /// One line for `systemctl status` (sd_notify `STATUS=`): role,
    /// regions, the kill switch, runs in progress.
    pub(super) fn status_line(&self) -> String {
        let role = match &self.ha {
            None => "single daemon",
            Some(m) if m.leads() => "leader",
            Some(_) => "follower",
        };
        let regions: Vec<String> = self
            .detectors
            .iter()
            .map(|(name, d)| format!("{name} {}", format!("{:?}", d.state()).to_lowercase()))
            .collect();
        let switch = if self.metrics.paused() {
            "paused"
        } else {
            "armed"
        };
        let mut runs: Vec<&str> = self.runs.keys().map(String::as_str).collect();
        runs.sort_unstable();
        let runs = if runs.is_empty() {
            "no run in progress".to_string()
        } else {
            format!("running {}", runs.join(", "))
        };
        let regions = if regions.is_empty() {
            "no region probed".to_string()
        } else {
            regions.join(", ")
        };
        format!("{role}; {regions}; {switch}; {runs}")
    }

    /// Answer a request from the control socket: reads of the journal in
    /// a blocking task (an audit of a long history must not hold the
    /// loop), everything else here.
    pub(super) fn answer(&mut self, incoming: control::Incoming) {
        if let Request::Read { what } = incoming.request {
            let journal = std::sync::Arc::clone(&self.journal);
            tokio::task::spawn_blocking(move || {
                let _ = incoming.reply.send(read_answer(&journal, &what));
            });
            return;
        }
        let response = self.control(incoming.request, &incoming.who);
        let _ = incoming.reply.send(response);
    }

    /// Carry out a request from the control socket.
    pub(super) fn control(&mut self, request: Request, who: &str) -> Response {
        let journaled = |r: Result<Result<String, String>, JournalError>| match r {
            Ok(r) => Response::from(r),
            Err(e) => Response::refused(format!("journal: {e}")),
        };
        let response = match request {
            Request::Status => match self.status() {
                Ok(status) => Response {
                    ok: true,
                    message: String::new(),
                    status: Some(status),
                    data: None,
                },
                Err(e) => Response::refused(format!("journal: {e}")),
            },
            Request::Approve {
                target,
                step: Some(step),
            } => journaled(control::leave_request(
                &self.journal,
                &target,
                Some(&step),
                RequestKind::Approve,
                who,
            )),
            Request::Reject {
                target,
                step: Some(step),
            } => journaled(control::leave_request(
                &self.journal,
                &target,
                Some(&step),
                RequestKind::Reject,
                who,
            )),
            Request::Skip { run, step } => journaled(control::leave_request(
                &self.journal,
                &run,
                Some(&step),
                RequestKind::Skip,
                who,
            )),
            Request::Cancel { run } => journaled(control::leave_request(
                &self.journal,
                &run,
                None,
                RequestKind::Cancel,
                who,
            )),
            Request::Approve { step: None, .. }
            | Request::Reject { step: None, .. }
            | Request::Trigger { .. }
                if !self.executes() =>
            {
                Response::refused(format!(
                    "this daemon is a follower: only the leader ({}) starts runs; send this to its control socket",
                    self.leader_name().unwrap_or_else(|| "not known yet".into())
                ))
            }
            Request::Approve { target, step: None } => self.decide_pending(&target, true, who),
            Request::Reject { target, step: None } => self.decide_pending(&target, false, who),
            Request::Ack { binding } => match self.binding(&binding) {
                None => Response::refused(format!("no binding `{binding}`")),
                Some(_) => {
                    let r = control::ack(&self.journal, &binding, who);
                    if matches!(r, Ok(Ok(_))) {
                        self.metrics
                            .count_decision(&binding, DecisionKind::Ack.as_str());
                    }
                    journaled(r)
                }
            },
            Request::Pause { reason } => {
                let r = control::set_paused(&self.journal, true, reason.as_deref(), who);
                if matches!(r, Ok(Ok(_))) {
                    self.metrics.set_paused(true);
                    warn!(who, reason = ?reason, "automatic triggering paused");
                }
                journaled(r)
            }
            Request::Resume => {
                let r = control::set_paused(&self.journal, false, None, who);
                if matches!(r, Ok(Ok(_))) {
                    self.metrics.set_paused(false);
                    info!(who, "automatic triggering resumed");
                }
                journaled(r)
            }
            Request::Trigger { binding, mode } => self.trigger_by_hand(&binding, mode, who),
            // Answered off the loop (`answer`); here only if called directly.
            Request::Read { what } => read_answer(&self.journal, &what),
        };
        if response.ok && !response.message.is_empty() {
            info!(who, "{}", response.message);
        }
        response
    }

    /// `approve BINDING` / `reject BINDING`: the outcome of a pending approval.
    pub(super) fn decide_pending(&mut self, target: &str, approve: bool, who: &str) -> Response {
        let Some(binding) = self.binding(target) else {
            return Response::refused(if self.journal.run(target).is_ok() {
                format!(
                    "name the step of run {target} to approve or reject: `lifeboat approve {target} STEP`"
                )
            } else {
                format!("no binding or run named `{target}`")
            });
        };
        let view = match trigger::view(&self.journal, &binding, jiff::Timestamp::now()) {
            Ok(v) => v,
            Err(e) => return Response::refused(format!("journal: {e}")),
        };
        let Some(awaiting) = view.awaiting else {
            return Response::refused(format!("binding `{target}` is not waiting for approval"));
        };
        let kind = if approve {
            DecisionKind::Approved
        } else {
            DecisionKind::Rejected
        };
        let d = decision(
            Some(target),
            kind,
            None,
            who,
            Some(serde_json::json!({ "request": awaiting.seq })),
        );
        if !self.record(
            &d,
            Some(&binding.region),
            format!("binding `{target}` {kind} by {who}"),
        ) {
            return Response::refused("cannot journal the decision");
        }
        if !approve {
            return Response::done(format!("binding `{target}`: the pending run is declined"));
        }
        let evidence = awaiting.detail.and_then(|d| d.get("evidence").cloned());
        match self.start(
            &binding,
            Mode::Failover,
            who,
            &format!("approved by {who}"),
            evidence,
        ) {
            Ok(id) => Response::done(format!("approved: run {id} started for binding `{target}`")),
            Err(why) => Response::refused(format!("approved, but the run could not start: {why}")),
        }
    }

    /// `trigger BINDING`: a human starts the binding's runbook now.
    pub(super) fn trigger_by_hand(&mut self, name: &str, mode: Mode, who: &str) -> Response {
        let Some(binding) = self.binding(name) else {
            return Response::refused(format!("no binding `{name}`"));
        };
        // One run of each kind per binding: a drill never holds back a
        // failover, nor a failover a drill.
        let drill = mode == Mode::Drill;
        let active = self.runs.iter().find(|(id, t)| {
            t.binding.as_deref() == Some(name)
                && self
                    .journal
                    .run(id)
                    .is_ok_and(|r| (r.run.mode == "drill") == drill)
        });
        if let Some((id, _)) = active {
            return Response::refused(format!(
                "run {id} of binding `{name}` is still in progress (`lifeboat cancel {id}` first)"
            ));
        }
        let d = decision(
            Some(name),
            DecisionKind::Trigger,
            None,
            who,
            Some(serde_json::json!({ "mode": mode.as_str() })),
        );
        if !self.record(
            &d,
            Some(&binding.region),
            format!("binding `{name}` triggered by {who} in {mode} mode"),
        ) {
            return Response::refused("cannot journal the request");
        }
        // A failover started during a declared outage answers that outage.
        let evidence = (mode == Mode::Failover)
            .then(|| self.outages.get(binding.scope()).cloned())
            .flatten();
        match self.start(&binding, mode, who, &format!("by hand: {who}"), evidence) {
            Ok(id) => Response::done(format!(
                "run {id} started for binding `{name}` in {mode} mode"
            )),
            Err(why) => Response::refused(why),
        }
    }
}

/// The answer to a read of the journal.
fn read_answer(journal: &crate::journal::Journal, what: &control::Read) -> Response {
    match control::read(journal, what) {
        Ok(data) => Response {
            ok: true,
            message: String::new(),
            status: None,
            data: Some(data),
        },
        Err(e) => Response::refused(e.to_string()),
    }
}
