//! What the engine asks of actions, without naming any AWS service.
//!
//! An action implementation must be idempotent by construction: it first
//! observes the current state and returns its outputs without acting when
//! its effect is already in place; it uses client tokens where the API has
//! them; it waits, within the deadline it is given, until its effect is
//! visible; and it returns what it observed (ids, timestamps) as outputs
//! later steps can reference as `${steps.<id>.outputs.<key>}`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use crate::catalogue::{ActionInput, ActionKind};
use crate::runbook::{Mode, RecoveryPoint};

/// Values a step returns, by key.
pub type Outputs = BTreeMap<String, serde_json::Value>;

/// A boxed future, for dyn-compatible async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything an action is told about the attempt it is making.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step_id: String,
    /// The mode of the run.
    pub mode: Mode,
    /// The region the step acts in, for AWS actions.
    pub region: Option<String>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Whether an earlier attempt was interrupted (a crash or a kill) after
    /// it started: its side effect may or may not have happened.
    pub resumed: bool,
    /// When the step must be done by.
    pub deadline: Instant,
    /// The role the step's AWS calls act as (its own `assume_role` or the
    /// runbook's); `None`: the caller's own credentials.
    pub assume_role: Option<crate::runbook::AssumeRole>,
    /// Where a drill puts its copies (the runbook's `drill:`).
    pub placement: crate::runbook::DrillPlacement,
    /// When this attempt may expect its change done, and how long the step
    /// took the last time it went through cleanly (the journal's
    /// [`step_times`](crate::journal::Journal::step_times)): its waits look
    /// more often around then. `None` without history, and for a retry or a
    /// re-entered attempt, whose change may be part done.
    pub expected: Option<Expected>,
}

/// When a step's change may be done, from its last clean run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// This attempt's start plus `took`.
    pub at: Instant,
    /// How long the step took last time.
    pub took: std::time::Duration,
}

/// How an action failed, which decides whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// Worth another attempt: throttling, 5xx, timeouts, connection errors.
    Retryable,
    /// Will fail the same way again: bad input, missing resource, denied.
    Permanent,
}

/// An action's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// Retryable or not.
    pub kind: FailureKind,
    /// What went wrong, with the resource it concerns.
    pub message: String,
}

impl ActionError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        ActionError {
            kind: FailureKind::Retryable,
            message: message.into(),
        }
    }

    /// A failure that will repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        ActionError {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }
}

/// The actions a build of lifeboat can execute.
pub trait Actions: Send + Sync {
    /// Whether `action` can be executed (a runbook naming one that cannot is
    /// refused before anything runs).
    fn supports(&self, action: ActionKind) -> bool;

    /// Make one attempt of `input` (observe, act if needed, wait for the effect).
    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        input: &'a ActionInput,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>>;

    /// The calls an attempt would make, in words, making none (`--dry-run`).
    fn describe(&self, ctx: &StepContext, input: &ActionInput) -> Vec<String>;

    /// Read the runbook's recovery point as it stood at `incident_start`
    /// (the replica's lag then, read just before it is promoted; the newest
    /// object in the DR bucket), for RPO. `region` is the runbook's
    /// recovery region; `ctx` is the context of the step the reading
    /// precedes (its run, and the role its calls act as). Never fails: what
    /// cannot be read is recorded as not measurable, with why.
    fn read_recovery_point<'a>(
        &'a self,
        ctx: &'a StepContext,
        region: Option<&'a str>,
        source: &'a RecoveryPoint,
        incident_start: jiff::Timestamp,
    ) -> BoxFuture<'a, RecoveryReading> {
        let _ = (ctx, region, source, incident_start);
        Box::pin(async { RecoveryReading::unmeasurable("this build reads no recovery points") })
    }
}

/// A recovery point as read during a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecoveryReading {
    /// The moment the recovered data is current to (RFC 3339, UTC), when
    /// it could be told.
    pub at: Option<String>,
    /// How it was found, in words.
    pub how: String,
    /// Why there is no figure, when there is none.
    pub not_measurable: Option<String>,
}

impl RecoveryReading {
    /// No figure, and why.
    pub fn unmeasurable(why: impl Into<String>) -> RecoveryReading {
        RecoveryReading {
            at: None,
            how: String::new(),
            not_measurable: Some(why.into()),
        }
    }
}
