//! The actions this build executes, behind the engine's [`Actions`] trait.
//!
//! One file per service. Generic actions (no AWS service) live in
//! `generic.rs`; `manual.approval` is handled by the engine itself.

mod generic;

use crate::catalogue::{ActionInput, ActionKind};
use crate::engine::{ActionError, Actions, BoxFuture, Outputs, StepContext};

/// Every action implementation of this build.
#[derive(Debug, Default, Clone)]
pub struct Registry {}

impl Registry {
    /// The registry.
    pub fn new() -> Registry {
        Registry {}
    }
}

impl Actions for Registry {
    fn supports(&self, action: ActionKind) -> bool {
        matches!(action, ActionKind::Wait | ActionKind::Exec)
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        input: &'a ActionInput,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            match input {
                ActionInput::Wait(w) => generic::wait(w).await,
                ActionInput::Exec(e) => generic::exec(ctx, e).await,
                other => Err(ActionError::permanent(format!(
                    "this build cannot execute `{}`",
                    other.kind()
                ))),
            }
        })
    }

    fn describe(&self, ctx: &StepContext, input: &ActionInput) -> Vec<String> {
        match input {
            ActionInput::Wait(w) => generic::describe_wait(w),
            ActionInput::Exec(e) => generic::describe_exec(ctx, e),
            other => vec![format!("{} (not executable in this build)", other.kind())],
        }
    }
}
