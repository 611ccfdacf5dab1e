//! `lifeboat check`: every step's preflight, read-only, at once.

use serde::Serialize;

use super::{Readiness, Registry};
use crate::catalogue::{ActionInput, ActionKind};
use crate::engine::StepContext;
use crate::runbook::interp::{self, RuntimeValues};
use crate::runbook::{Mode, Runbook};

/// Most preflights in flight at once.
const PARALLEL_CHECKS: usize = 8;

/// Which of a step's actions a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The step's own action.
    Action,
    /// Its fallback.
    Fallback,
    /// Its rollback.
    Rollback,
}

/// The preflight of one action of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepCheck {
    /// The step.
    pub step: String,
    /// Which of its actions.
    pub part: Part,
    /// The action.
    pub action: ActionKind,
    /// Where it acts.
    pub region: Option<String>,
    /// What the preflight found.
    #[serde(flatten)]
    pub readiness: Readiness,
}

/// Run the preflight of every action a run of `runbook` in `mode` could
/// take (each step's action, fallback and rollback), in step order. Only
/// read-only calls are made.
pub async fn check(registry: &Registry, runbook: &Runbook, mode: Mode) -> Vec<StepCheck> {
    let mut work = Vec::new();
    for (index, step) in runbook.steps.iter().enumerate() {
        if !step.runs_in(mode) {
            continue;
        }
        let upstream = upstream_actions(runbook, index, mode);
        let mut parts = vec![(Part::Action, step.action, &step.with, &step.region)];
        if let Some(f) = &step.fallback {
            parts.push((Part::Fallback, f.action, &f.with, &f.region));
        }
        if let Some(r) = &step.rollback {
            parts.push((Part::Rollback, r.action, &r.with, &r.region));
        }
        for (part, action, with, region) in parts {
            let ctx = StepContext {
                run_id: "check".to_string(),
                step_id: step.id.clone(),
                mode,
                region: region.clone(),
                attempt: 1,
                resumed: false,
                deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(60),
                assume_role: step.assume_role.clone(),
                placement: runbook.drill.clone(),
                expected: None,
            };
            let input = resolve(action, with, mode);
            // A rollback undoes its step: it runs after the step's action.
            let mut before = upstream.clone();
            if part == Part::Rollback {
                before.push(step.action);
            }
            work.push((ctx, part, action, input, before));
        }
    }
    let mut results: Vec<Option<StepCheck>> = vec![None; work.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = work.into_iter().enumerate();
    loop {
        while tasks.len() < PARALLEL_CHECKS {
            let Some((i, (ctx, part, action, input, upstream))) = queue.next() else {
                break;
            };
            let registry = registry.clone();
            tasks.spawn(async move {
                let readiness = match input {
                    Ok(input) => registry.preflight(&ctx, &input, &upstream).await,
                    Err(why) => why,
                };
                let check = StepCheck {
                    step: ctx.step_id,
                    part,
                    action,
                    region: ctx.region,
                    readiness,
                };
                (i, check)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        if let Ok((i, check)) = joined {
            results[i] = Some(check);
        }
    }
    results.into_iter().flatten().collect()
}

/// The input as the run would give it, or why it cannot be known yet.
fn resolve(
    action: ActionKind,
    with: &crate::yaml::Node,
    mode: Mode,
) -> Result<ActionInput, Readiness> {
    let from_steps: Vec<String> = interp::references(with)
        .into_iter()
        .filter(|(_, name)| name.starts_with("steps."))
        .map(|(_, name)| name)
        .collect();
    if !from_steps.is_empty() {
        return Err(Readiness::Unchecked(format!(
            "its inputs use {}, known only during the run",
            from_steps.join(", ")
        )));
    }
    let none = |_: &str| None;
    let values = RuntimeValues {
        run_id: "check",
        mode: mode.as_str(),
        outputs: &none,
    };
    let node = interp::resolve_runtime(with, &values).map_err(Readiness::WouldFail)?;
    match action.decode_with(&node) {
        (Some(input), problems) if problems.is_empty() => Ok(input),
        (_, problems) => Err(Readiness::WouldFail(
            problems
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// Actions of the steps that run before step `index` (everything it needs,
/// directly or not).
fn upstream_actions(runbook: &Runbook, index: usize, mode: Mode) -> Vec<ActionKind> {
    let mut seen = vec![false; runbook.steps.len()];
    let mut stack = runbook.steps[index].needs.clone();
    let mut actions = Vec::new();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let step = &runbook.steps[i];
        if step.runs_in(mode) {
            actions.extend(step.actions());
        }
        stack.extend(step.needs.iter().copied());
    }
    actions
}
