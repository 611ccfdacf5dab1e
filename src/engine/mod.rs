//! The execution engine: runs a validated runbook's plan as a DAG, with
//! bounded concurrency, per-step deadlines and retries, `on_failure`
//! policies, fallbacks, rollbacks, approvals and cancellation, journaling
//! every transition durably so a run killed at any instant resumes without
//! repeating or doubling anything.
//!
//! The engine names no AWS service: it drives [`Actions`]. It handles the
//! two things that are about people rather than systems itself:
//! `manual.approval` steps, and the decision a human must take about a step
//! whose effect cannot be observed (`exec`, `notify`) and whose attempt was
//! interrupted.

pub mod action;
pub mod calls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, info, warn};

use crate::journal::{
    self, Journal, JournalError, MarkKind, NewRun, Phase, RequestKind, RunState, StepEvent,
    StepState,
};
pub use action::{
    ActionError, Actions, BoxFuture, Expected, FailureKind, Outputs, RecoveryReading, StepContext,
};

use crate::catalogue::{ActionInput, ActionKind};
use crate::runbook::interp::{self, RuntimeValues};
use crate::runbook::plan::Plan;
use crate::runbook::{Invocation, Mode, OnFailure, Retry, Runbook, Step};

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Most steps running at once.
    pub concurrency: usize,
    /// How often waiting steps and the run look for requests (approve,
    /// reject, skip, cancel) left in the journal by other commands.
    pub poll_interval: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            concurrency: 16,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Why the engine stopped before the run reached an end.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal failed: the run stops at the last durable boundary.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The runbook names actions this build cannot execute.
    #[error("this build cannot execute {}", .0.join(", "))]
    Unsupported(Vec<&'static str>),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every step that had to succeed did.
    Succeeded,
    /// It ran to its end, but these steps, marked `on_failure: continue`,
    /// failed: each with its error.
    SucceededWithFailures(Vec<(String, String)>),
    /// A step failed (after rollback, if asked for).
    Failed(String),
    /// A human cancelled it.
    Cancelled,
    /// The process is stopping: no new step was started, the running ones
    /// reached their end, and the run stays unfinished in the journal for
    /// the next start to resume.
    Interrupted,
}

impl RunOutcome {
    /// The state recorded in the journal; none for a run left to resume.
    pub fn state(&self) -> Option<RunState> {
        match self {
            RunOutcome::Succeeded => Some(RunState::Succeeded),
            RunOutcome::SucceededWithFailures(_) => Some(RunState::SucceededWithFailures),
            RunOutcome::Failed(_) => Some(RunState::Failed),
            RunOutcome::Cancelled => Some(RunState::Cancelled),
            RunOutcome::Interrupted => None,
        }
    }

    /// In a word, for logs.
    pub fn word(&self) -> &'static str {
        self.state().map_or("interrupted", RunState::as_str)
    }

    /// What to tell the operator at the end: the word, and for a run that
    /// succeeded with failures, which steps failed.
    pub fn headline(&self) -> String {
        match self {
            RunOutcome::SucceededWithFailures(failed) => {
                format!("succeeded with failures: {}", tolerated_failures(failed))
            }
            other => other.word().to_string(),
        }
    }
}

/// What a run that succeeded with failures says of them: each step
/// allowed to fail (`on_failure: continue`) that did, and why.
pub fn tolerated_failures(failed: &[(String, String)]) -> String {
    let each: Vec<String> = failed
        .iter()
        .map(|(step, e)| format!("step `{step}` failed: {e}"))
        .collect();
    format!("{} (on_failure: continue)", each.join("; "))
}

/// Called with every step event once it is durable (progress display).
pub type Observer = Arc<dyn Fn(&StepEvent) + Send + Sync>;

/// Runs runbooks against a journal and a set of actions.
#[derive(Clone)]
pub struct Engine {
    journal: Arc<Journal>,
    actions: Arc<dyn Actions>,
    options: EngineOptions,
    observer: Option<Observer>,
    drain: Option<watch::Receiver<bool>>,
    /// The run's secrets: nothing reaches the journal or the log unredacted.
    redactor: Arc<std::sync::RwLock<crate::redact::Redactor>>,
}

/// The record of a new run of `runbook` (loaded from `file`, whose text is
/// `text`) with `params`; secret parameters' values are left out.
pub fn new_run(
    runbook: &Runbook,
    file: String,
    text: String,
    params: &[(String, String)],
    mode: Mode,
    started_by: String,
) -> NewRun {
    let secret = |name: &str| runbook.params.iter().any(|p| p.secret && p.name == name);
    NewRun {
        id: new_run_id(),
        runbook: runbook.name.clone(),
        file,
        runbook_sha256: sha256_hex(&text),
        runbook_text: text,
        params: params.iter().filter(|(k, _)| !secret(k)).cloned().collect(),
        secret_params: params
            .iter()
            .filter(|(k, _)| secret(k))
            .map(|(k, _)| k.clone())
            .collect(),
        mode: mode.as_str().to_string(),
        started_by,
        started_at: now(),
    }
}

/// The SHA-256 of `text`, as lowercase hex: how a run records its runbook.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn new_run_id() -> String {
    // `20261128T091627-3fa2`: sortable by start, unique enough per state dir.
    let compact: String = now()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    format!("{compact}-{:04x}", fastrand::u16(..))
}

/// The current UTC time, RFC 3339 with milliseconds.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// Which step event is being written: of what run, step, phase and attempt.
#[derive(Debug, Clone, Copy)]
struct At<'a> {
    run: &'a str,
    step: &'a str,
    phase: Phase,
    attempt: u32,
}

impl<'a> At<'a> {
    fn new(run: &'a str, step: &'a str, phase: Phase, attempt: u32) -> At<'a> {
        At {
            run,
            step,
            phase,
            attempt,
        }
    }
}

/// What the journal says of each step of a run: where it resumes.
struct Replay {
    states: Vec<State>,
    /// Steps that succeeded, in completion order (rollbacks undo them in
    /// reverse).
    completed: Vec<usize>,
    /// Steps already rolled back.
    rolled_back: Vec<usize>,
    /// A step whose failure asks for rollbacks failed.
    rollback_requested: bool,
}

/// Rebuild the state of every step of `runbook` from its journaled events,
/// in journal order.
fn replay(runbook: &Runbook, events: Vec<StepEvent>) -> Replay {
    let n = runbook.steps.len();
    let index: HashMap<&str, usize> = runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();

    let mut states = vec![State::Pending; n];
    let mut completed: Vec<usize> = Vec::new();
    let mut rolled_back: Vec<usize> = Vec::new();
    for event in events {
        let Some(&i) = index.get(event.step.as_str()) else {
            continue;
        };
        match (event.phase, event.state) {
            (Phase::Main, StepState::Succeeded) => {
                let outputs = match event.outputs {
                    Some(serde_json::Value::Object(map)) => map.into_iter().collect(),
                    _ => Outputs::new(),
                };
                states[i] = State::Succeeded(outputs);
                // Done again after a retry: its place is its latest end.
                completed.retain(|&c| c != i);
                completed.push(i);
            }
            (Phase::Main, StepState::Failed) => {
                states[i] = State::Failed(event.message.unwrap_or_default());
            }
            (Phase::Main, StepState::Skipped) => states[i] = State::Skipped,
            (Phase::Main, StepState::Queued) => {
                rolled_back.retain(|&r| r != i);
                states[i] = State::Queued {
                    attempt: event.attempt,
                }
            }
            (
                Phase::Main,
                StepState::Running
                | StepState::Retrying
                | StepState::Waiting
                | StepState::NeedsDecision,
            ) => {
                // A new attempt after a rollback (a retried run): that
                // rollback undid an earlier attempt, not this one.
                rolled_back.retain(|&r| r != i);
                states[i] = State::Interrupted {
                    attempt: event.attempt,
                    falling_back: None,
                }
            }
            (Phase::Main, StepState::FallingBack) => {
                states[i] = State::Interrupted {
                    attempt: event.attempt,
                    falling_back: Some(event.message.unwrap_or_default()),
                }
            }
            // A fallback's outcome is the step's next main event; until
            // then the step is falling back.
            (Phase::Fallback, _)
                if !matches!(
                    states[i],
                    State::Interrupted {
                        falling_back: Some(_),
                        ..
                    }
                ) =>
            {
                states[i] = State::Interrupted {
                    attempt: event.attempt,
                    falling_back: Some(String::new()),
                }
            }
            (Phase::Rollback, StepState::Succeeded) => rolled_back.push(i),
            // A fallback's other events, a rollback under way or failed
            // (never retried), and recovery-point readings (calls only)
            // change nothing of the step's own state.
            (Phase::Fallback | Phase::Rollback | Phase::RecoveryPoint, _) => {}
        }
    }
    // Rollbacks are asked for by a step that failed for good and asks for
    // them (not by one a retry set going again).
    let rollback_requested = states.iter().enumerate().any(|(i, s)| {
        matches!(s, State::Failed(_)) && runbook.steps[i].on_failure == OnFailure::Rollback
    });
    Replay {
        states,
        completed,
        rolled_back,
        rollback_requested,
    }
}

/// Set the steps of an ended run that did not succeed going again (`lifeboat
/// run --retry`): every step of the plan that failed, was skipped, or
/// succeeded and was then rolled back gets a durable `queued` event (its
/// next attempt, by `who`): the run starts them afresh (their earlier
/// attempts ended, nothing is in flight) and keeps every step that
/// succeeded; a crash before they ran leaves them queued for the next
/// resume. Returns the steps set going.
pub fn prepare_retry(
    journal: &Journal,
    id: &str,
    runbook: &Runbook,
    mode: Mode,
    who: &str,
) -> Result<Vec<String>, JournalError> {
    let events = journal.events(id)?;
    let mut last_attempt: HashMap<&str, u32> = HashMap::new();
    for e in &events {
        if e.phase == Phase::Main {
            let a = last_attempt.entry(e.step.as_str()).or_default();
            *a = (*a).max(e.attempt);
        }
    }
    let Replay {
        states,
        rolled_back,
        ..
    } = replay(runbook, events.clone());
    let plan = Plan::new(runbook, mode);
    let mut again = Vec::new();
    for (i, step) in runbook.steps.iter().enumerate() {
        if !plan.includes(i) {
            continue;
        }
        let redo = match &states[i] {
            State::Failed(_) | State::Skipped | State::Pending | State::Queued { .. } => true,
            State::Succeeded(_) => rolled_back.contains(&i),
            _ => false,
        };
        if !redo {
            continue;
        }
        let attempt = last_attempt.get(step.id.as_str()).copied().unwrap_or(0) + 1;
        let event = StepEvent {
            seq: 0,
            step: step.id.clone(),
            phase: Phase::Main,
            attempt,
            state: StepState::Queued,
            at: now(),
            outputs: None,
            message: Some(format!("run retried by {who}")),
        };
        journal.record(id, &event)?;
        again.push(step.id.clone());
    }
    Ok(again)
}

/// What the engine knows of one step during a run.
#[derive(Debug, Clone)]
enum State {
    Pending,
    /// Set going again by a retry: starts afresh at this attempt.
    Queued {
        attempt: u32,
    },
    Running,
    Succeeded(Outputs),
    Failed(String),
    Skipped,
    /// An attempt started and never ended (the process died): re-enter it.
    Interrupted {
        attempt: u32,
        /// The main action had failed (this, its last error) and the
        /// step's fallback had started: resume with the fallback.
        falling_back: Option<String>,
    },
}

/// What a step task returns.
enum TaskEnd {
    Succeeded(Outputs),
    Failed(String),
    Cancelled,
}

/// Shared, read-only facts of one run, for its step tasks.
struct RunCtx {
    id: String,
    mode: Mode,
    runbook: Arc<Runbook>,
    cancel: watch::Receiver<bool>,
    /// Held while the recovery point is read, so concurrent steps read it once.
    recovery_point: tokio::sync::Mutex<()>,
    /// How long each step took when it last went through cleanly.
    step_times: std::collections::BTreeMap<String, Duration>,
}

impl Engine {
    /// An engine writing to `journal` and acting through `actions`.
    pub fn new(journal: Arc<Journal>, actions: Arc<dyn Actions>, options: EngineOptions) -> Engine {
        Engine {
            journal,
            actions,
            options,
            observer: None,
            drain: None,
            redactor: Arc::default(),
        }
    }

    /// When `drain` turns true, start no new step, let the running ones end,
    /// and return [`RunOutcome::Interrupted`] with the run left to resume.
    pub fn with_drain(mut self, drain: watch::Receiver<bool>) -> Engine {
        self.drain = Some(drain);
        self
    }

    /// Call `observer` with every step event once it is durable.
    pub fn with_observer(mut self, observer: Observer) -> Engine {
        self.observer = Some(observer);
        self
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    fn redactor(&self) -> crate::redact::Redactor {
        self.redactor.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn record(
        &self,
        at: At<'_>,
        state: StepState,
        outputs: Option<&Outputs>,
        message: Option<String>,
    ) -> Result<(), JournalError> {
        let redactor = self.redactor();
        let mut event = StepEvent {
            seq: 0,
            step: at.step.to_string(),
            phase: at.phase,
            attempt: at.attempt,
            state,
            at: now(),
            outputs: outputs.map(|o| {
                redactor.json(&serde_json::Value::Object(o.clone().into_iter().collect()))
            }),
            message: message.map(|m| redactor.text(&m)),
        };
        event.seq = self.journal.record(at.run, &event)?;
        if let Some(observer) = &self.observer {
            observer(&event);
        }
        Ok(())
    }

    /// Execute (or resume) run `id` of `runbook` in `mode`. The run record
    /// must exist in the journal. Steps already finished are not repeated.
    pub async fn execute(
        &self,
        id: &str,
        runbook: Arc<Runbook>,
        mode: Mode,
    ) -> Result<RunOutcome, EngineError> {
        let unsupported = unsupported(self.actions.as_ref(), &runbook, mode);
        if !unsupported.is_empty() {
            return Err(EngineError::Unsupported(unsupported));
        }
        if let Ok(mut redactor) = self.redactor.write() {
            *redactor = crate::redact::Redactor::new(runbook.secrets());
        }
        let plan = Plan::new(&runbook, mode);
        let n = runbook.steps.len();
        let Replay {
            mut states,
            mut completed,
            rolled_back,
            mut rollback_requested,
        } = replay(&runbook, self.journal.events(id)?);
        self.journal
            .set_run_state(id, RunState::Running, None, None)?;

        // Without its history a run's waits only keep their usual cadence:
        // an unreadable one is said, and the run goes on.
        let step_times = self.journal.step_times(&runbook.name).unwrap_or_else(|e| {
            warn!(
                run = id,
                "the runbook's past step times are unreadable: {e}"
            );
            Default::default()
        });
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let ctx = Arc::new(RunCtx {
            id: id.to_string(),
            mode,
            runbook: Arc::clone(&runbook),
            cancel: cancel_rx,
            recovery_point: tokio::sync::Mutex::new(()),
            step_times,
        });
        let mut tasks: JoinSet<(usize, Result<TaskEnd, JournalError>)> = JoinSet::new();
        let mut running = 0usize;
        let mut stopping = rollback_requested;
        let mut journal_error: Option<JournalError> = None;
        let mut failure: Option<String> = states.iter().enumerate().find_map(|(i, s)| match s {
            State::Failed(e) if runbook.steps[i].on_failure != OnFailure::Continue => {
                Some(format!("step `{}` failed: {e}", runbook.steps[i].id))
            }
            _ => None,
        });
        stopping |= failure.is_some();
        let mut cancelled = false;
        let mut drain = self.drain.clone();
        let mut draining = drain.as_ref().is_some_and(|d| *d.borrow());
        stopping |= draining;
        let mut tick = tokio::time::interval(self.options.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            // Skip what can no longer run (until nothing changes: a skip can
            // make a step earlier in the file skippable), then start what can.
            let mut changed = true;
            while changed {
                changed = false;
                for i in 0..n {
                    let Some(deps) = &plan.deps[i] else { continue };
                    if !matches!(
                        states[i],
                        State::Pending | State::Queued { .. } | State::Interrupted { .. }
                    ) {
                        continue;
                    }
                    if let Some(&blocker) = deps
                        .iter()
                        .find(|&&d| matches!(states[d], State::Failed(_) | State::Skipped))
                    {
                        let reason = format!(
                            "needs `{}`, which did not succeed",
                            runbook.steps[blocker].id
                        );
                        self.record(
                            At::new(id, &runbook.steps[i].id, Phase::Main, 0),
                            StepState::Skipped,
                            None,
                            Some(reason.clone()),
                        )?;
                        states[i] = State::Skipped;
                        changed = true;
                    }
                }
            }
            for i in 0..n {
                let Some(deps) = &plan.deps[i] else { continue };
                if !matches!(
                    states[i],
                    State::Pending | State::Queued { .. } | State::Interrupted { .. }
                ) {
                    continue;
                }
                if stopping || running >= self.options.concurrency {
                    continue;
                }
                if !deps
                    .iter()
                    .all(|&d| matches!(states[d], State::Succeeded(_)))
                {
                    continue;
                }
                let outputs = collect_outputs(&runbook, &states);
                let (first_attempt, resumed, falling_back) = match &states[i] {
                    State::Interrupted {
                        attempt,
                        falling_back,
                    } => ((*attempt).max(1), true, falling_back.clone()),
                    State::Queued { attempt } => ((*attempt).max(1), false, None),
                    _ => (1, false, None),
                };
                states[i] = State::Running;
                running += 1;
                let engine = self.clone();
                let ctx = Arc::clone(&ctx);
                let step = &runbook.steps[i];
                // Everything logged while the step runs carries its run,
                // step, action and region.
                let span = tracing::info_span!(
                    "step",
                    run_id = %id,
                    step_id = %step.id,
                    action = %step.action.name(),
                    region = tracing::field::Empty,
                );
                if let Some(region) = &step.region {
                    span.record("region", region.as_str());
                }
                tasks.spawn(
                    async move {
                        let end = match falling_back {
                            // The main action had already failed: do not try
                            // it again, finish the fallback it started.
                            Some(failure) if ctx.runbook.steps[i].fallback.is_some() => {
                                engine
                                    .fall_back(
                                        &ctx,
                                        &ctx.runbook.steps[i],
                                        first_attempt,
                                        failure,
                                        &outputs,
                                    )
                                    .await
                            }
                            _ => {
                                engine
                                    .run_step(&ctx, i, first_attempt, resumed, &outputs)
                                    .await
                            }
                        };
                        (i, end)
                    }
                    .instrument(span),
                );
            }
            if running == 0 {
                break;
            }
            tokio::select! {
                joined = tasks.join_next() => {
                    let Some(joined) = joined else { break };
                    running -= 1;
                    let (i, end) = match joined {
                        Ok((i, Ok(end))) => (i, end),
                        Err(_) | Ok((_, Err(_))) if journal_error.is_some() => continue,
                        Ok((i, Err(e))) => {
                            // The journal cannot be written: nothing more may
                            // start (an unjournaled side effect could be
                            // doubled after a restart), not even a rollback.
                            // Running steps end; the run is left to resume.
                            warn!(run_id = id, step_id = %runbook.steps[i].id, error = %e, "the journal cannot be written: stopping");
                            journal_error = Some(e);
                            stopping = true;
                            continue;
                        }
                        Err(e) => {
                            // A step task panicked: a bug, reported as the step's failure.
                            warn!(run_id = id, error = %e, "step task ended abnormally");
                            failure.get_or_insert_with(|| format!("internal error: {e}"));
                            stopping = true;
                            continue;
                        }
                    };
                    let step = &runbook.steps[i];
                    match end {
                        TaskEnd::Succeeded(outputs) => {
                            states[i] = State::Succeeded(outputs);
                            completed.push(i);
                        }
                        TaskEnd::Cancelled => states[i] = State::Skipped,
                        TaskEnd::Failed(error) => {
                            match step.on_failure {
                                OnFailure::Continue => {}
                                OnFailure::Abort => stopping = true,
                                OnFailure::Rollback => {
                                    stopping = true;
                                    rollback_requested = true;
                                }
                            }
                            if step.on_failure != OnFailure::Continue {
                                failure.get_or_insert_with(|| format!("step `{}` failed: {error}", step.id));
                            }
                            states[i] = State::Failed(error);
                        }
                    }
                }
                Ok(()) = async {
                    match drain.as_mut() {
                        Some(d) => d.wait_for(|&on| on).await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                }, if !draining => {
                    info!(run_id = id, "stopping: no new step starts; running steps finish");
                    draining = true;
                    stopping = true;
                }
                _ = tick.tick() => {
                    for request in self.journal.pending_requests(id)? {
                        if request.kind == RequestKind::Cancel {
                            self.journal.consume(request.seq, &now())?;
                            info!(run_id = id, who = %request.who, "run cancelled");
                            cancelled = true;
                            stopping = true;
                            let _ = cancel_tx.send(true);
                        }
                    }
                }
            }
        }

        if let Some(e) = journal_error {
            return Err(e.into());
        }
        let unstarted = states.iter().enumerate().any(|(i, s)| {
            plan.deps[i].is_some()
                && matches!(
                    s,
                    State::Pending | State::Queued { .. } | State::Interrupted { .. }
                )
        });
        if draining && !cancelled && (unstarted || rollback_requested) {
            // What is left (steps, rollbacks) is for the next start.
            return Ok(RunOutcome::Interrupted);
        }

        // Steps that never started.
        let reason = if cancelled {
            "run cancelled"
        } else {
            "run stopped after a failure"
        };
        for (i, state) in states.iter_mut().enumerate() {
            if plan.deps[i].is_some()
                && matches!(
                    state,
                    State::Pending | State::Queued { .. } | State::Interrupted { .. }
                )
            {
                let at = At::new(id, &runbook.steps[i].id, Phase::Main, 0);
                self.record(at, StepState::Skipped, None, Some(reason.into()))?;
                *state = State::Skipped;
            }
        }

        if rollback_requested {
            self.roll_back(&ctx, &completed, &rolled_back, &states)
                .await?;
        }

        let restoring = runbook
            .steps
            .iter()
            .position(|s| s.restores_service)
            .filter(|&r| plan.deps[r].is_some());
        let outcome = if cancelled {
            RunOutcome::Cancelled
        } else if let Some(f) = failure {
            RunOutcome::Failed(f)
        } else if let Some(r) = restoring.filter(|&r| !matches!(states[r], State::Succeeded(_))) {
            RunOutcome::Failed(format!(
                "step `{}`, which restores service, did not succeed",
                runbook.steps[r].id
            ))
        } else {
            let tolerated: Vec<(String, String)> = states
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match s {
                    State::Failed(e) => Some((runbook.steps[i].id.clone(), e.clone())),
                    _ => None,
                })
                .collect();
            if tolerated.is_empty() {
                RunOutcome::Succeeded
            } else {
                RunOutcome::SucceededWithFailures(tolerated)
            }
        };
        let error = match &outcome {
            RunOutcome::Failed(e) => Some(self.redactor().text(e)),
            RunOutcome::SucceededWithFailures(failed) => {
                Some(self.redactor().text(&tolerated_failures(failed)))
            }
            _ => None,
        };
        if let Some(state) = outcome.state() {
            self.journal
                .set_run_state(id, state, Some(&now()), error.as_deref())?;
        }
        Ok(outcome)
    }

    /// Run the rollbacks of completed steps, most recent first, once each.
    async fn roll_back(
        &self,
        ctx: &RunCtx,
        completed: &[usize],
        done: &[usize],
        states: &[State],
    ) -> Result<(), JournalError> {
        for &i in completed.iter().rev() {
            let step = &ctx.runbook.steps[i];
            let Some(rollback) = &step.rollback else {
                continue;
            };
            if done.contains(&i) {
                continue;
            }
            let outputs = collect_outputs(&ctx.runbook, states);
            match self
                .invoke(ctx, step, rollback, Phase::Rollback, &outputs)
                .await?
            {
                Ok(_) => {}
                Err(e) => {
                    warn!(run_id = %ctx.id, step_id = %step.id, error = %self.redactor().text(&e), "rollback failed")
                }
            }
        }
        Ok(())
    }

    /// Run one step to its end: attempts with retries, then its fallback.
    /// Read and journal the runbook's recovery point when `action` is
    /// about to start and the reading is due: before the first promotion
    /// for a replica's lag, before the first step for an S3 bucket. Read
    /// once per run, also across a resume (the mark is in the journal).
    async fn read_recovery_point(
        &self,
        ctx: &RunCtx,
        step: &Step,
        deadline: Instant,
    ) -> Result<(), JournalError> {
        let (step_id, action) = (step.id.as_str(), step.action);
        let Some(source) = &ctx.runbook.recovery_point else {
            return Ok(());
        };
        if !source.read_before(action) {
            return Ok(());
        }
        let _once = ctx.recovery_point.lock().await;
        let marks = self.journal.marks(&ctx.id)?;
        if marks.iter().any(|m| m.kind == MarkKind::RecoveryPoint) {
            return Ok(());
        }
        // The same incident start the figures use: the daemon's mark, or
        // the run's own start.
        let incident_start = match marks.iter().find(|m| m.kind == MarkKind::IncidentStart) {
            Some(m) => m.at.clone(),
            None => self.journal.run(&ctx.id)?.run.started_at,
        };
        // A replica's (or secondary cluster's) lag is read where the
        // promotion it precedes acts (one of several recovery regions); a
        // bucket's newest object in `regions.to`.
        let to = ctx.runbook.regions.as_ref().map(|r| r.to.as_str());
        let region = match source {
            crate::runbook::RecoveryPoint::S3NewestObject { .. } => to,
            _ => step.region.as_deref().or(to),
        };
        // A point read against a made-up incident start would be a made-up
        // RPO: an unreadable one is said, not replaced by the present.
        let (reading, calls) = match incident_start.parse::<jiff::Timestamp>() {
            Ok(at) => {
                let sctx = StepContext {
                    run_id: ctx.id.clone(),
                    step_id: step.id.clone(),
                    mode: ctx.mode,
                    region: step.region.clone(),
                    attempt: 1,
                    resumed: false,
                    deadline,
                    assume_role: step.assume_role.clone(),
                    placement: ctx.runbook.drill.clone(),
                    expected: None,
                };
                calls::logging_calls(self.actions.read_recovery_point(&sctx, region, source, at))
                    .await
            }
            Err(e) => (
                RecoveryReading::unmeasurable(format!(
                    "the journal's incident start `{incident_start}` is unreadable: {e}"
                )),
                Default::default(),
            ),
        };
        self.journal.record_calls(
            &ctx.id,
            &journal::StepCalls {
                step: step_id.to_string(),
                phase: Phase::RecoveryPoint,
                attempt: 1,
                calls,
            },
        )?;
        self.journal.mark(
            &ctx.id,
            &journal::Mark {
                kind: MarkKind::RecoveryPoint,
                at: now(),
                detail: serde_json::to_value(&reading).ok(),
            },
        )
    }

    async fn run_step(
        &self,
        ctx: &RunCtx,
        i: usize,
        first_attempt: u32,
        resumed: bool,
        outputs: &HashMap<String, serde_json::Map<String, serde_json::Value>>,
    ) -> Result<TaskEnd, JournalError> {
        let step = &ctx.runbook.steps[i];
        if let ActionInput::ManualApproval(approval) = &step.input {
            return self
                .await_approval(
                    ctx,
                    step,
                    &approval.prompt,
                    approval.timeout.get(),
                    approval.on_timeout,
                )
                .await;
        }
        if resumed && !step.action.info().observable && !step.repeatable {
            match self.await_decision(ctx, step, first_attempt).await? {
                Decision::Rerun => {}
                Decision::Skip(who) => {
                    self.record(
                        At::new(&ctx.id, &step.id, Phase::Main, first_attempt),
                        StepState::Succeeded,
                        Some(&Outputs::new()),
                        Some(format!("marked done by {who} without re-running")),
                    )?;
                    return Ok(TaskEnd::Succeeded(Outputs::new()));
                }
                Decision::Cancelled => return Ok(TaskEnd::Cancelled),
            }
        }
        let deadline = Instant::now() + step.timeout;
        let input = match resolve_input(ctx, step.action, &step.with, outputs) {
            Ok(input) => input,
            Err(error) => {
                self.record(
                    At::new(&ctx.id, &step.id, Phase::Main, first_attempt),
                    StepState::Failed,
                    None,
                    Some(error.clone()),
                )?;
                return Ok(TaskEnd::Failed(error));
            }
        };
        self.read_recovery_point(ctx, step, deadline).await?;
        let deadline = match self.hold_past_data_loss(ctx, step, first_attempt).await? {
            Hold::Pass => deadline,
            // The step's time starts once a human let it go on.
            Hold::Accepted => Instant::now() + step.timeout,
            Hold::End(end) => return Ok(end),
        };
        let mut attempt = first_attempt;
        let failure = loop {
            let note = (resumed && attempt == first_attempt)
                .then(|| "re-entering an interrupted attempt".to_string());
            self.record(
                At::new(&ctx.id, &step.id, Phase::Main, attempt),
                StepState::Running,
                None,
                note,
            )?;
            let sctx = StepContext {
                run_id: ctx.id.clone(),
                step_id: step.id.clone(),
                mode: ctx.mode,
                region: step.region.clone(),
                attempt,
                resumed: resumed && attempt == first_attempt,
                deadline,
                assume_role: step.assume_role.clone(),
                placement: ctx.runbook.drill.clone(),
                expected: ctx
                    .step_times
                    .get(&step.id)
                    .filter(|_| !resumed && attempt == first_attempt)
                    .map(|&took| Expected {
                        at: Instant::now() + took,
                        took,
                    }),
            };
            let (result, calls) = calls::logging_calls(tokio::time::timeout_at(
                deadline,
                self.actions.run(&sctx, &input),
            ))
            .await;
            self.journal.record_calls(
                &ctx.id,
                &journal::StepCalls {
                    step: step.id.clone(),
                    phase: Phase::Main,
                    attempt,
                    calls,
                },
            )?;
            match result {
                Ok(Ok(outputs)) => {
                    self.record(
                        At::new(&ctx.id, &step.id, Phase::Main, attempt),
                        StepState::Succeeded,
                        Some(&outputs),
                        None,
                    )?;
                    return Ok(TaskEnd::Succeeded(outputs));
                }
                Ok(Err(e)) if e.kind == FailureKind::Retryable && attempt < step.retry.attempts => {
                    let wait = backoff(&step.retry, attempt);
                    if Instant::now() + wait >= deadline {
                        break format!(
                            "{} (no time left for attempt {} before the {} deadline)",
                            e.message,
                            attempt + 1,
                            crate::duration::HumanDuration(step.timeout)
                        );
                    }
                    self.record(
                        At::new(&ctx.id, &step.id, Phase::Main, attempt),
                        StepState::Retrying,
                        None,
                        Some(format!("{}; retrying in {}ms", e.message, wait.as_millis())),
                    )?;
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Ok(Err(e)) => break e.message,
                Err(_) => {
                    break format!(
                        "timed out after {} ({attempt} attempt(s))",
                        crate::duration::HumanDuration(step.timeout)
                    );
                }
            }
        };
        if step.fallback.is_some() {
            self.record(
                At::new(&ctx.id, &step.id, Phase::Main, attempt),
                StepState::FallingBack,
                None,
                Some(failure.clone()),
            )?;
        }
        self.fall_back(ctx, step, attempt, failure, outputs).await
    }

    /// The end of a step whose main action failed with `failure`: its
    /// fallback (when it has one) and the step's last event.
    async fn fall_back(
        &self,
        ctx: &RunCtx,
        step: &Step,
        attempt: u32,
        failure: String,
        outputs: &HashMap<String, serde_json::Map<String, serde_json::Value>>,
    ) -> Result<TaskEnd, JournalError> {
        if let Some(fallback) = &step.fallback
            && let Ok(fb_outputs) = self
                .invoke(ctx, step, fallback, Phase::Fallback, outputs)
                .await?
        {
            self.record(
                At::new(&ctx.id, &step.id, Phase::Main, attempt),
                StepState::Succeeded,
                Some(&fb_outputs),
                Some(format!("through its fallback, after: {failure}")),
            )?;
            return Ok(TaskEnd::Succeeded(fb_outputs));
        }
        self.record(
            At::new(&ctx.id, &step.id, Phase::Main, attempt),
            StepState::Failed,
            None,
            Some(failure.clone()),
        )?;
        Ok(TaskEnd::Failed(failure))
    }

    /// Run a step's rollback or fallback, with its own deadline and retries.
    async fn invoke(
        &self,
        ctx: &RunCtx,
        step: &Step,
        call: &Invocation,
        phase: Phase,
        outputs: &HashMap<String, serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Result<Outputs, String>, JournalError> {
        let input = match resolve_input(ctx, call.action, &call.with, outputs) {
            Ok(input) => input,
            Err(e) => {
                self.record(
                    At::new(&ctx.id, &step.id, phase, 1),
                    StepState::Failed,
                    None,
                    Some(e.clone()),
                )?;
                return Ok(Err(e));
            }
        };
        let deadline = Instant::now() + call.timeout;
        let mut attempt = 1;
        loop {
            self.record(
                At::new(&ctx.id, &step.id, phase, attempt),
                StepState::Running,
                None,
                Some(call.action.name().to_string()),
            )?;
            let sctx = StepContext {
                run_id: ctx.id.clone(),
                step_id: step.id.clone(),
                mode: ctx.mode,
                region: call.region.clone(),
                attempt,
                resumed: false,
                deadline,
                assume_role: step.assume_role.clone(),
                placement: ctx.runbook.drill.clone(),
                expected: None,
            };
            let (result, calls) = calls::logging_calls(tokio::time::timeout_at(
                deadline,
                self.actions.run(&sctx, &input),
            ))
            .await;
            self.journal.record_calls(
                &ctx.id,
                &journal::StepCalls {
                    step: step.id.clone(),
                    phase,
                    attempt,
                    calls,
                },
            )?;
            let error = match result {
                Ok(Ok(outputs)) => {
                    self.record(
                        At::new(&ctx.id, &step.id, phase, attempt),
                        StepState::Succeeded,
                        Some(&outputs),
                        None,
                    )?;
                    return Ok(Ok(outputs));
                }
                Ok(Err(e)) if e.kind == FailureKind::Retryable && attempt < call.retry.attempts => {
                    let wait = backoff(&call.retry, attempt);
                    if Instant::now() + wait >= deadline {
                        e.message
                    } else {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                }
                Ok(Err(e)) => e.message,
                Err(_) => format!(
                    "timed out after {}",
                    crate::duration::HumanDuration(call.timeout)
                ),
            };
            self.record(
                At::new(&ctx.id, &step.id, phase, attempt),
                StepState::Failed,
                None,
                Some(error.clone()),
            )?;
            return Ok(Err(error));
        }
    }

    /// Wait for `lifeboat approve` / `reject`, or the approval's timeout.
    async fn await_approval(
        &self,
        ctx: &RunCtx,
        step: &Step,
        prompt: &str,
        timeout: Duration,
        on_timeout: crate::catalogue::generic::OnTimeout,
    ) -> Result<TaskEnd, JournalError> {
        self.record(
            At::new(&ctx.id, &step.id, Phase::Main, 1),
            StepState::Waiting,
            None,
            Some(format!(
                "{prompt} (lifeboat approve {} {} / lifeboat reject {} {})",
                ctx.id, step.id, ctx.id, step.id
            )),
        )?;
        let deadline = Instant::now() + timeout;
        let mut cancel = ctx.cancel.clone();
        loop {
            if let Some(request) = self.answer_for(&ctx.id, &step.id)? {
                // The step's end is journaled before the request is marked
                // consumed: a crash between the two leaves a finished step
                // and an inert request, never a consumed approval with the
                // step still waiting for one.
                if request.kind == RequestKind::Approve {
                    let outputs = Outputs::from([(
                        "approved_by".to_string(),
                        serde_json::Value::String(request.who.clone()),
                    )]);
                    self.record(
                        At::new(&ctx.id, &step.id, Phase::Main, 1),
                        StepState::Succeeded,
                        Some(&outputs),
                        Some(format!("approved by {}", request.who)),
                    )?;
                    self.journal.consume(request.seq, &now())?;
                    return Ok(TaskEnd::Succeeded(outputs));
                }
                let message = format!("rejected by {}", request.who);
                self.record(
                    At::new(&ctx.id, &step.id, Phase::Main, 1),
                    StepState::Failed,
                    None,
                    Some(message.clone()),
                )?;
                self.journal.consume(request.seq, &now())?;
                return Ok(TaskEnd::Failed(message));
            }
            if Instant::now() >= deadline {
                let waited = crate::duration::HumanDuration(timeout);
                return match on_timeout {
                    crate::catalogue::generic::OnTimeout::Continue => {
                        let outputs = Outputs::from([(
                            "timed_out".to_string(),
                            serde_json::Value::Bool(true),
                        )]);
                        self.record(
                            At::new(&ctx.id, &step.id, Phase::Main, 1),
                            StepState::Succeeded,
                            Some(&outputs),
                            Some(format!(
                                "no answer within {waited}; continuing as configured"
                            )),
                        )?;
                        Ok(TaskEnd::Succeeded(outputs))
                    }
                    crate::catalogue::generic::OnTimeout::Fail => {
                        let message = format!("no answer within {waited}");
                        self.record(
                            At::new(&ctx.id, &step.id, Phase::Main, 1),
                            StepState::Failed,
                            None,
                            Some(message.clone()),
                        )?;
                        Ok(TaskEnd::Failed(message))
                    }
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(self.options.poll_interval.min(deadline - Instant::now())) => {}
                _ = cancel.changed() => {
                    self.record(At::new(&ctx.id, &step.id, Phase::Main, 1), StepState::Skipped, None, Some("run cancelled".into()))?;
                    return Ok(TaskEnd::Cancelled);
                }
            }
        }
    }

    /// The first approval or rejection of `step` left for run `run`.
    fn answer_for(&self, run: &str, step: &str) -> Result<Option<journal::Request>, JournalError> {
        Ok(self.journal.pending_requests(run)?.into_iter().find(|r| {
            r.step.as_deref() == Some(step)
                && matches!(r.kind, RequestKind::Approve | RequestKind::Reject)
        }))
    }

    /// Hold a step the recovery point is read before (a promotion) while
    /// the run's data-loss limit (its binding's `max_data_loss`) is
    /// exceeded, or the loss cannot be told, until a human approves or
    /// rejects it. Once accepted, the run's other such steps go on.
    async fn hold_past_data_loss(
        &self,
        ctx: &RunCtx,
        step: &Step,
        attempt: u32,
    ) -> Result<Hold, JournalError> {
        let gated = ctx
            .runbook
            .recovery_point
            .as_ref()
            .is_some_and(|source| source.read_before(step.action));
        if !gated {
            return Ok(Hold::Pass);
        }
        let marks = self.journal.marks(&ctx.id)?;
        let limit = marks
            .iter()
            .find(|m| m.kind == MarkKind::DataLossLimit)
            .and_then(|m| m.detail.as_ref()?["seconds"].as_f64());
        let Some(limit) = limit.map(Duration::from_secs_f64) else {
            return Ok(Hold::Pass);
        };
        if marks.iter().any(|m| m.kind == MarkKind::DataLossAccepted) {
            return Ok(Hold::Pass);
        }
        let started_at = self.journal.run(&ctx.id)?.run.started_at;
        let limit_text = crate::duration::HumanDuration(limit);
        let why = match data_loss(&marks, &started_at) {
            Ok(loss) if loss <= limit => return Ok(Hold::Pass),
            Ok(loss) => format!(
                "promoting would lose {} of data, over the limit of {limit_text}",
                crate::duration::HumanDuration(loss)
            ),
            Err(why) => {
                format!("the data loss cannot be told ({why}); the limit is {limit_text}")
            }
        };
        let message = format!(
            "held: {why} (`lifeboat approve {run} {id}` promotes anyway, `lifeboat reject {run} {id}` fails the step)",
            run = ctx.id,
            id = step.id
        );
        warn!(run_id = %ctx.id, step_id = %step.id, "{message}");
        self.record(
            At::new(&ctx.id, &step.id, Phase::Main, attempt),
            StepState::Waiting,
            None,
            Some(message),
        )?;
        let mut cancel = ctx.cancel.clone();
        loop {
            if let Some(request) = self.answer_for(&ctx.id, &step.id)? {
                // Journaled before the request is used up, as an approval
                // step's outcome is.
                if request.kind == RequestKind::Approve {
                    self.journal.mark(
                        &ctx.id,
                        &journal::Mark {
                            kind: MarkKind::DataLossAccepted,
                            at: now(),
                            detail: Some(serde_json::json!({
                                "by": request.who,
                                "step": step.id,
                                "why": why,
                            })),
                        },
                    )?;
                    self.journal.consume(request.seq, &now())?;
                    return Ok(Hold::Accepted);
                }
                let message = format!("rejected by {}: {why}", request.who);
                self.record(
                    At::new(&ctx.id, &step.id, Phase::Main, attempt),
                    StepState::Failed,
                    None,
                    Some(message.clone()),
                )?;
                self.journal.consume(request.seq, &now())?;
                return Ok(Hold::End(TaskEnd::Failed(message)));
            }
            tokio::select! {
                _ = tokio::time::sleep(self.options.poll_interval) => {}
                _ = cancel.changed() => {
                    self.record(At::new(&ctx.id, &step.id, Phase::Main, attempt), StepState::Skipped, None, Some("run cancelled".into()))?;
                    return Ok(Hold::End(TaskEnd::Cancelled));
                }
            }
        }
    }

    /// A step whose effect cannot be observed was interrupted mid-attempt:
    /// wait for a human to say whether to run it again or mark it done.
    async fn await_decision(
        &self,
        ctx: &RunCtx,
        step: &Step,
        attempt: u32,
    ) -> Result<Decision, JournalError> {
        let message = format!(
            "attempt {attempt} was interrupted and `{}` cannot observe whether it took effect: `lifeboat approve {} {}` runs it again, `lifeboat skip {} {}` marks it done",
            step.action, ctx.id, step.id, ctx.id, step.id
        );
        warn!(run_id = %ctx.id, step_id = %step.id, "{}", self.redactor().text(&message));
        self.record(
            At::new(&ctx.id, &step.id, Phase::Main, attempt),
            StepState::NeedsDecision,
            None,
            Some(message),
        )?;
        self.journal.set_run_state(
            &ctx.id,
            RunState::Paused,
            None,
            Some(&format!("waiting for a decision on step `{}`", step.id)),
        )?;
        let mut cancel = ctx.cancel.clone();
        loop {
            for request in self.journal.pending_requests(&ctx.id)? {
                if request.step.as_deref() != Some(step.id.as_str())
                    || !matches!(request.kind, RequestKind::Approve | RequestKind::Skip)
                {
                    continue;
                }
                self.journal.consume(request.seq, &now())?;
                self.journal
                    .set_run_state(&ctx.id, RunState::Running, None, None)?;
                return Ok(if request.kind == RequestKind::Approve {
                    Decision::Rerun
                } else {
                    Decision::Skip(request.who)
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(self.options.poll_interval) => {}
                _ = cancel.changed() => {
                    self.record(At::new(&ctx.id, &step.id, Phase::Main, attempt), StepState::Skipped, None, Some("run cancelled".into()))?;
                    return Ok(Decision::Cancelled);
                }
            }
        }
    }
}

/// Actions a run of `runbook` in `mode` would take that `actions` cannot execute (`manual.approval`
/// is the engine's own).
pub fn unsupported(actions: &dyn Actions, runbook: &Runbook, mode: Mode) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = runbook
        .actions_in(mode)
        .filter(|a| *a != ActionKind::ManualApproval && !actions.supports(*a))
        .map(ActionKind::name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

enum Decision {
    Rerun,
    Skip(String),
    Cancelled,
}

/// What the data-loss limit does to a step.
enum Hold {
    /// Nothing: within the limit, no limit, or not a step it gates.
    Pass,
    /// A human let it go on past the limit.
    Accepted,
    /// The step ended while held (rejected, or the run cancelled).
    End(TaskEnd),
}

/// The data a promotion now would lose, from the run's recovery point
/// reading: the incident's start (the daemon's mark, or the run's start)
/// minus the moment the recovered data is current to.
fn data_loss(marks: &[journal::Mark], started_at: &str) -> Result<Duration, String> {
    let reading: RecoveryReading = marks
        .iter()
        .find(|m| m.kind == MarkKind::RecoveryPoint)
        .and_then(|m| serde_json::from_value(m.detail.clone()?).ok())
        .ok_or("no recovery point reading")?;
    if let Some(why) = reading.not_measurable {
        return Err(why);
    }
    let parse = |t: &str| {
        t.parse::<jiff::Timestamp>()
            .map_err(|e| format!("`{t}`: {e}"))
    };
    let at = parse(reading.at.as_deref().ok_or("the reading has no time")?)?;
    let incident = marks
        .iter()
        .find(|m| m.kind == MarkKind::IncidentStart)
        .map_or(started_at, |m| m.at.as_str());
    let lost = parse(incident)?.duration_since(at);
    Ok(Duration::try_from(lost).unwrap_or(Duration::ZERO))
}

/// Outputs of every succeeded step, for `${steps.X.outputs.Y}`.
fn collect_outputs(
    runbook: &Runbook,
    states: &[State],
) -> HashMap<String, serde_json::Map<String, serde_json::Value>> {
    runbook
        .steps
        .iter()
        .zip(states)
        .filter_map(|(s, state)| match state {
            State::Succeeded(o) => Some((s.id.clone(), o.clone().into_iter().collect())),
            _ => None,
        })
        .collect()
}

/// The input an attempt receives: run-time references resolved, typed again.
fn resolve_input(
    ctx: &RunCtx,
    action: ActionKind,
    with: &crate::yaml::Node,
    outputs: &HashMap<String, serde_json::Map<String, serde_json::Value>>,
) -> Result<ActionInput, String> {
    let lookup = |step: &str| outputs.get(step);
    let values = RuntimeValues {
        run_id: &ctx.id,
        mode: ctx.mode.as_str(),
        outputs: &lookup,
    };
    let node = interp::resolve_runtime(with, &values)?;
    let (input, problems) = action.decode_with(&node);
    match input {
        Some(input) if problems.is_empty() => Ok(input),
        _ => Err(problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Wait before attempt `attempt + 1`: exponential, capped, with jitter
/// (between half and all of the exponential value).
pub fn backoff(retry: &Retry, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    let full = retry.backoff.saturating_mul(factor).min(retry.max_backoff);
    let half = full / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=jitter_ms))
}

#[cfg(test)]
mod tests;
