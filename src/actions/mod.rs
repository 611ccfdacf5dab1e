//! The actions this build executes, behind the engine's [`Actions`] trait.
//!
//! One file per service, each action observing before it acts and waiting,
//! within the step's deadline, until its effect is visible. Generic actions
//! (no AWS service) live in `generic.rs`; `manual.approval` is handled by
//! the engine itself. AWS actions need clients: a registry built without
//! them supports only the generic actions.

mod aws_error;
mod cloudwatch;
mod ec2;
mod generic;
mod rds;
mod route53;

use std::time::Duration;

use crate::aws::AwsClients;
use crate::catalogue::{ActionInput, ActionKind, Service};
use crate::engine::{ActionError, Actions, BoxFuture, Outputs, StepContext};
use crate::runbook::{Mode, Runbook};

/// Every action implementation of this build.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    aws: Option<AwsClients>,
}

impl Registry {
    /// Generic actions only.
    pub fn new() -> Registry {
        Registry { aws: None }
    }

    /// Generic and AWS actions, through these clients.
    pub fn with_aws(aws: AwsClients) -> Registry {
        Registry { aws: Some(aws) }
    }

    /// The AWS clients, if any.
    pub fn aws(&self) -> Option<&AwsClients> {
        self.aws.as_ref()
    }

    fn clients(&self, action: ActionKind) -> Result<&AwsClients, ActionError> {
        self.aws.as_ref().ok_or_else(|| {
            ActionError::permanent(format!(
                "`{action}` needs AWS clients, and none were configured"
            ))
        })
    }
}

/// Whether `action` is implemented in this build (given AWS clients when
/// it calls AWS).
pub fn implemented(action: ActionKind) -> bool {
    matches!(
        action,
        ActionKind::Wait
            | ActionKind::Exec
            | ActionKind::HttpWaitHealthy
            | ActionKind::Notify
            | ActionKind::Ec2StartInstances
            | ActionKind::Ec2StopInstances
            | ActionKind::Ec2WaitRunning
            | ActionKind::RdsPromoteReadReplica
            | ActionKind::RdsWaitAvailable
            | ActionKind::Route53UpsertRecords
            | ActionKind::CloudwatchPutMetricData
    )
}

/// Names of the actions a run of `runbook` in `mode` would take that this
/// build does not implement (`manual.approval` is the engine's own).
pub fn unimplemented(runbook: &Runbook, mode: Mode) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = runbook
        .actions_in(mode)
        .filter(|a| *a != ActionKind::ManualApproval && !implemented(*a))
        .map(ActionKind::name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Whether any action of `runbook` calls AWS.
pub fn uses_aws(runbook: &Runbook) -> bool {
    runbook.actions().any(|a| a.info().service != Service::None)
}

impl Actions for Registry {
    fn supports(&self, action: ActionKind) -> bool {
        implemented(action) && (action.info().service == Service::None || self.aws.is_some())
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        input: &'a ActionInput,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            match input {
                ActionInput::Wait(w) => generic::wait(w).await,
                ActionInput::CloudwatchPutMetricData(w) => {
                    cloudwatch::put(self.clients(input.kind())?, ctx, w).await
                }
                ActionInput::Exec(e) => generic::exec(ctx, e).await,
                ActionInput::HttpWaitHealthy(w) => generic::wait_healthy(ctx, w).await,
                ActionInput::Notify(n) => generic::notify(ctx, n).await,
                ActionInput::RdsPromoteReadReplica(w) => {
                    rds::promote(self.clients(input.kind())?, ctx, w).await
                }
                ActionInput::RdsWaitAvailable(w) => {
                    rds::wait(self.clients(input.kind())?, ctx, w).await
                }
                ActionInput::Route53UpsertRecords(w) => {
                    route53::upsert(self.clients(input.kind())?, ctx, w).await
                }
                ActionInput::Ec2StartInstances(w) => {
                    ec2::transition(self.clients(input.kind())?, ctx, w, ec2::Direction::Start)
                        .await
                }
                ActionInput::Ec2StopInstances(w) => {
                    ec2::transition(self.clients(input.kind())?, ctx, w, ec2::Direction::Stop).await
                }
                ActionInput::Ec2WaitRunning(w) => {
                    ec2::wait_running(self.clients(input.kind())?, ctx, w).await
                }
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
            ActionInput::CloudwatchPutMetricData(w) => vec![format!(
                "cloudwatch:PutMetricData {}/{} = {} in {}",
                w.namespace,
                w.metric,
                w.value,
                ctx.region.as_deref().unwrap_or("?")
            )],
            ActionInput::Exec(e) => generic::describe_exec(ctx, e),
            ActionInput::HttpWaitHealthy(w) => vec![format!(
                "GET {} every {} until it answers {}",
                w.url, w.interval, w.status
            )],
            ActionInput::Notify(_) => vec!["POST the message to the webhook".to_string()],
            ActionInput::RdsPromoteReadReplica(_) => vec![
                "rds:DescribeDBInstances of the selected replicas".to_string(),
                "rds:PromoteReadReplica and AddTagsToResource on those not promoted yet"
                    .to_string(),
                "rds:DescribeDBInstances until all are available".to_string(),
            ],
            ActionInput::RdsWaitAvailable(_) => {
                vec!["rds:DescribeDBInstances until available".to_string()]
            }
            ActionInput::Route53UpsertRecords(w) => route53::describe(w),
            ActionInput::Ec2StartInstances(w) => ec2::describe(ec2::Direction::Start, ctx, w),
            ActionInput::Ec2StopInstances(w) => ec2::describe(ec2::Direction::Stop, ctx, w),
            ActionInput::Ec2WaitRunning(w) => vec![format!(
                "ec2:DescribeInstances{} until running",
                if w.status_ok {
                    " and ec2:DescribeInstanceStatus"
                } else {
                    ""
                }
            )],
            other => vec![format!("{} (not executable in this build)", other.kind())],
        }
    }
}

/// The step's region; every AWS step has one after validation.
fn region_of(ctx: &StepContext) -> Result<&str, ActionError> {
    ctx.region
        .as_deref()
        .ok_or_else(|| ActionError::permanent(format!("step `{}` has no region", ctx.step_id)))
}

/// Time before the next describe call of a wait: 1 s, doubling, at most
/// 15 s, so a wait neither hammers the API nor oversleeps a quick change.
fn wait_interval(polls_so_far: u32) -> Duration {
    Duration::from_secs(1u64 << polls_so_far.min(4)).min(Duration::from_secs(15))
}

/// Every wait of every action: call `check` (one round of describe calls)
/// until it answers `Done`, sleeping [`wait_interval`] between rounds; at
/// the step's deadline, fail with `what` and the last reason it gave.
async fn poll_until<T, F, Fut>(
    ctx: &StepContext,
    what: &str,
    mut check: F,
) -> Result<T, ActionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Poll<T>, ActionError>>,
{
    let mut polls = 0u32;
    loop {
        let reason = match check().await? {
            Poll::Done(value) => return Ok(value),
            Poll::NotYet(reason) => reason,
        };
        let wait = wait_interval(polls);
        if tokio::time::Instant::now() + wait >= ctx.deadline {
            return Err(ActionError::permanent(format!(
                "{what} by the step's deadline: {reason}"
            )));
        }
        tokio::time::sleep(wait).await;
        polls += 1;
    }
}

/// One round of a wait.
enum Poll<T> {
    /// The effect is visible.
    Done(T),
    /// Not yet, and why.
    NotYet(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(deadline_secs: u64) -> StepContext {
        StepContext {
            run_id: "r".into(),
            step_id: "s".into(),
            mode: Mode::Failover,
            region: Some("us-west-2".into()),
            attempt: 1,
            resumed: false,
            deadline: tokio::time::Instant::now() + Duration::from_secs(deadline_secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_backs_off_and_fails_at_the_deadline_with_the_last_reason() {
        let polls = std::sync::Mutex::new(Vec::new());
        let start = tokio::time::Instant::now();
        let result: Result<(), ActionError> = poll_until(&ctx(60), "db not available", || async {
            polls.lock().unwrap().push(start.elapsed().as_secs());
            Ok(Poll::NotYet("app-db (modifying)".to_string()))
        })
        .await;
        let err = result.unwrap_err();
        assert_eq!(
            err.message,
            "db not available by the step's deadline: app-db (modifying)"
        );
        // 1, 2, 4, 8, then every 15 s: describe calls stay few.
        assert_eq!(*polls.lock().unwrap(), vec![0, 1, 3, 7, 15, 30, 45]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_as_soon_as_the_effect_is_visible() {
        let mut rounds = 0;
        let value = poll_until(&ctx(60), "x", || {
            rounds += 1;
            let done = rounds == 3;
            async move {
                Ok(if done {
                    Poll::Done(7)
                } else {
                    Poll::NotYet("not yet".into())
                })
            }
        })
        .await
        .unwrap();
        assert_eq!((value, rounds), (7, 3));
    }
}
