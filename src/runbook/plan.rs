//! The execution plan of a runbook in one mode: which steps take part, the
//! waves of steps that can run in parallel, and the critical path with its
//! worst-case time budget against the RTO target.

use std::time::Duration;

use serde::Serialize;

use super::{Mode, Runbook, Step};
use crate::duration::HumanDuration;

/// A runbook laid out for one mode.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The runbook.
    pub runbook: &'a Runbook,
    /// The mode.
    pub mode: Mode,
    /// For each step of the runbook: the steps it waits for in this mode
    /// (through left-out steps), or `None` when it does not take part.
    pub deps: Vec<Option<Vec<usize>>>,
    /// Steps grouped by wave: each wave's steps can run together once the
    /// earlier waves are done.
    pub waves: Vec<Vec<usize>>,
    /// The chain of steps whose budgets add up to the longest time until
    /// service is restored.
    pub critical_path: Vec<usize>,
    /// Worst-case time along the critical path.
    pub budget: Duration,
}

impl<'a> Plan<'a> {
    /// Lay out `runbook` for `mode`. The runbook is validated, so its
    /// dependency graph is acyclic.
    pub fn new(runbook: &'a Runbook, mode: Mode) -> Plan<'a> {
        let steps = &runbook.steps;
        let order = topological_order(steps);
        let mut deps: Vec<Option<Vec<usize>>> = vec![None; steps.len()];
        // What a left-out step stands for: the included steps it waits for.
        let mut through: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
        for &i in &order {
            let mut mine: Vec<usize> = Vec::new();
            for &n in &steps[i].needs {
                if steps[n].runs_in(mode) {
                    mine.push(n);
                } else {
                    mine.extend(through[n].iter().copied());
                }
            }
            mine.sort_unstable();
            mine.dedup();
            if steps[i].runs_in(mode) {
                deps[i] = Some(mine);
            } else {
                through[i] = mine;
            }
        }

        let mut level = vec![0usize; steps.len()];
        let mut finish = vec![Duration::ZERO; steps.len()];
        let mut via: Vec<Option<usize>> = vec![None; steps.len()];
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            let Some(d) = &deps[i] else { continue };
            level[i] = d.iter().map(|&n| level[n] + 1).max().unwrap_or(0);
            let before = d.iter().copied().max_by_key(|&n| finish[n]);
            finish[i] = before.map_or(Duration::ZERO, |n| finish[n]) + steps[i].budget();
            via[i] = before;
            if waves.len() <= level[i] {
                waves.resize(level[i] + 1, Vec::new());
            }
            waves[level[i]].push(i);
        }
        for wave in &mut waves {
            wave.sort_unstable();
        }

        let end = steps
            .iter()
            .position(|s| s.restores_service && s.runs_in(mode))
            .or_else(|| {
                (0..steps.len())
                    .filter(|&i| deps[i].is_some())
                    .max_by_key(|&i| finish[i])
            });
        let mut critical_path = Vec::new();
        let mut cursor = end;
        while let Some(i) = cursor {
            critical_path.push(i);
            cursor = via[i];
        }
        critical_path.reverse();
        Plan {
            runbook,
            mode,
            deps,
            waves,
            budget: end.map_or(Duration::ZERO, |i| finish[i]),
            critical_path,
        }
    }

    /// Whether step `i` takes part.
    pub fn includes(&self, i: usize) -> bool {
        self.deps[i].is_some()
    }

    /// The plan as plain data (for `--output json` and the text view).
    pub fn view(&self) -> PlanView {
        let rb = self.runbook;
        let step_view = |i: usize| {
            let s: &Step = &rb.steps[i];
            StepView {
                id: s.id.clone(),
                action: s.action.name(),
                region: s.region.clone(),
                timeout: HumanDuration(s.timeout),
                attempts: s.retry.attempts,
                needs: self.deps[i]
                    .iter()
                    .flatten()
                    .map(|&n| rb.steps[n].id.clone())
                    .collect(),
                restores_service: s.restores_service,
                drill: (self.mode == Mode::Drill).then(|| s.action.info().drill_note),
            }
        };
        PlanView {
            runbook: rb.name.clone(),
            strategy: rb.strategy.as_str(),
            mode: self.mode,
            params: rb
                .params
                .iter()
                .map(|p| ParamView {
                    name: p.name.clone(),
                    value: p.shown(),
                    secret: p.secret,
                })
                .collect(),
            rto_target: rb.targets.rto,
            rpo_target: rb.targets.rpo,
            waves: self
                .waves
                .iter()
                .map(|w| w.iter().map(|&i| step_view(i)).collect())
                .collect(),
            left_out: rb
                .steps
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.includes(*i))
                .map(|(_, s)| LeftOut {
                    id: s.id.clone(),
                    runs_in: s.when.clone(),
                })
                .collect(),
            critical_path: CriticalPath {
                steps: self
                    .critical_path
                    .iter()
                    .map(|&i| rb.steps[i].id.clone())
                    .collect(),
                budget: HumanDuration(self.budget),
                within_rto_target: rb.targets.rto.map(|t| self.budget <= t.get()),
            },
        }
    }
}

/// Steps ordered so that every step comes after the steps it needs.
fn topological_order(steps: &[Step]) -> Vec<usize> {
    let mut waiting: Vec<usize> = steps.iter().map(|s| s.needs.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for &n in &s.needs {
            dependents[n].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    ready.reverse();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    order
}

/// A plan as data.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// Runbook name.
    pub runbook: String,
    /// Its strategy.
    pub strategy: &'static str,
    /// The mode planned.
    pub mode: Mode,
    /// Parameter values, secrets redacted.
    pub params: Vec<ParamView>,
    /// RTO target.
    pub rto_target: Option<HumanDuration>,
    /// RPO target.
    pub rpo_target: Option<HumanDuration>,
    /// The waves.
    pub waves: Vec<Vec<StepView>>,
    /// Steps that do not run in this mode.
    pub left_out: Vec<LeftOut>,
    /// The critical path.
    pub critical_path: CriticalPath,
}

/// A parameter as shown.
#[derive(Debug, Clone, Serialize)]
pub struct ParamView {
    /// Name.
    pub name: String,
    /// Value, or `<redacted>` for secrets.
    pub value: String,
    /// Whether it is secret.
    pub secret: bool,
}

/// A planned step.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Step id.
    pub id: String,
    /// Action name.
    pub action: &'static str,
    /// Region, if it calls AWS.
    pub region: Option<String>,
    /// Deadline of the step.
    pub timeout: HumanDuration,
    /// Attempts.
    pub attempts: u32,
    /// Steps it waits for in this mode.
    pub needs: Vec<String>,
    /// Whether its success marks service restored.
    pub restores_service: bool,
    /// What it does instead in a drill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<&'static str>,
}

/// A step left out of this mode.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    /// Step id.
    pub id: String,
    /// The modes it runs in.
    pub runs_in: Vec<Mode>,
}

/// The longest chain to service restored.
#[derive(Debug, Clone, Serialize)]
pub struct CriticalPath {
    /// Step ids in order.
    pub steps: Vec<String>,
    /// Worst-case time along it.
    pub budget: HumanDuration,
    /// Whether that fits the RTO target (`None` without a target).
    pub within_rto_target: Option<bool>,
}

impl PlanView {
    /// The plan as text for a terminal.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}), mode {}",
            self.runbook, self.strategy, self.mode
        );
        if !self.params.is_empty() {
            let params: Vec<String> = self
                .params
                .iter()
                .map(|p| format!("{}={}", p.name, p.value))
                .collect();
            let _ = writeln!(out, "params: {}", params.join(" "));
        }
        let show = |d: &Option<HumanDuration>| d.map_or("none".to_string(), |d| d.to_string());
        let _ = writeln!(
            out,
            "targets: RTO {}, RPO {}",
            show(&self.rto_target),
            show(&self.rpo_target)
        );
        let width = self
            .waves
            .iter()
            .flatten()
            .map(|s| s.id.len())
            .max()
            .unwrap_or(0);
        let action_width = self
            .waves
            .iter()
            .flatten()
            .map(|s| s.action.len())
            .max()
            .unwrap_or(0);
        for (n, wave) in self.waves.iter().enumerate() {
            let together = if wave.len() > 1 {
                format!(" ({} steps in parallel)", wave.len())
            } else {
                String::new()
            };
            let _ = writeln!(out, "\nwave {}{together}", n + 1);
            for s in wave {
                let mut line = format!(
                    "  {:width$}  {:action_width$}  {:9}  timeout {}, {} attempt(s)",
                    s.id,
                    s.action,
                    s.region.as_deref().unwrap_or("-"),
                    s.timeout,
                    s.attempts,
                );
                if !s.needs.is_empty() {
                    let _ = write!(line, "  needs {}", s.needs.join(", "));
                }
                if s.restores_service {
                    line.push_str("  [restores service]");
                }
                let _ = writeln!(out, "{}", line.trim_end());
                if let Some(note) = s.drill {
                    let _ = writeln!(out, "  {:width$}  drill: {note}", "");
                }
            }
        }
        if !self.left_out.is_empty() {
            let left: Vec<String> = self
                .left_out
                .iter()
                .map(|l| {
                    let modes: Vec<&str> = l.runs_in.iter().map(|m| m.as_str()).collect();
                    format!("{} ({})", l.id, modes.join(", "))
                })
                .collect();
            let _ = writeln!(out, "\nnot in this mode: {}", left.join("; "));
        }
        let cp = &self.critical_path;
        let _ = writeln!(out, "\ncritical path: {}", cp.steps.join(" → "));
        let verdict = match (cp.within_rto_target, self.rto_target) {
            (Some(true), Some(t)) => format!(", within the RTO target of {t}"),
            (Some(false), Some(t)) => {
                format!(", above the RTO target of {t} if every attempt runs to its deadline")
            }
            _ => String::new(),
        };
        let _ = writeln!(out, "worst-case budget {}{verdict}", cp.budget);
        out
    }
}
