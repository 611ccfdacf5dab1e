//! RTO and RPO as a run achieved them, from its journal alone.
//!
//! The incident starts at the first failed probe of the declared outage
//! (an `incident_start` mark, written by the daemon) or, for a manual run
//! or a drill, when the run started. Service is restored when the step
//! marked `restores_service` succeeds, or when the last step ends if none
//! is marked. RTO is the time between, broken down into detection
//! (incident → declared), decision (declared → first step, plus approval
//! waits) and execution (the rest). RPO is the incident's start minus the
//! recovery point the run actually used, read as the runbook's
//! `recovery_point` says; when it cannot be told, the figure is absent and
//! the reason given, never a made-up zero.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::catalogue::DRILL_UNCHECKED as UNCHECKED;
use crate::engine::RecoveryReading;
use crate::journal::{Mark, MarkKind, Phase, RunRecord, RunState, StepEvent, StepState};
use crate::runbook::{RecoveryPoint, Runbook};

/// One step as it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSpan {
    /// Step id.
    pub step: String,
    /// Its action.
    pub action: String,
    /// Final state.
    pub state: StepState,
    /// When it started (RFC 3339).
    pub start: Option<String>,
    /// When it ended.
    pub end: Option<String>,
    /// Seconds from start to end.
    pub duration_s: Option<f64>,
    /// Seconds of it spent waiting for a human (approvals).
    pub waiting_s: f64,
    /// Attempts made.
    pub attempts: u32,
    /// On the critical path to service restored.
    pub critical: bool,
}

/// A figure against its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The figure in seconds, when there is one.
    pub seconds: Option<f64>,
    /// The runbook's target in seconds, if it sets one.
    pub target_s: Option<f64>,
    /// `met`, `breached`, `no target` or `not measurable`.
    pub verdict: &'static str,
    /// Seconds over the target (positive) or under it (negative).
    pub margin_s: Option<f64>,
    /// How the figure was found, or why there is none.
    pub how: String,
}

impl Measured {
    fn new(seconds: Option<f64>, target_s: Option<f64>, how: String) -> Measured {
        let (verdict, margin_s) = match (seconds, target_s) {
            (None, _) => ("not measurable", None),
            (Some(_), None) => ("no target", None),
            (Some(s), Some(t)) if s <= t => ("met", Some(s - t)),
            (Some(s), Some(t)) => ("breached", Some(s - t)),
        };
        Measured {
            seconds,
            target_s,
            verdict,
            margin_s,
            how,
        }
    }
}

/// Where the RTO went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    /// Incident start to outage declared.
    pub detection_s: Option<f64>,
    /// Declared to execution start, plus approval waits.
    pub decision_s: Option<f64>,
    /// The rest of the execution.
    pub execution_s: Option<f64>,
}

/// Why a run's figures could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    /// The journal failed or has no such run.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The runbook stored with the run no longer loads.
    #[error("run {run}'s runbook no longer loads: {problems}")]
    Runbook {
        /// The run.
        run: String,
        /// What is wrong.
        problems: String,
    },
}

/// A run's RTO and RPO and what they rest on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Run id.
    pub run: String,
    /// Runbook name.
    pub runbook: String,
    /// Mode (`failover`, `switchover`, `drill`).
    pub mode: String,
    /// Run state.
    pub state: RunState,
    /// Incident start (RFC 3339).
    pub incident_start: String,
    /// What the incident start is.
    pub incident_source: String,
    /// Outage declared, when the daemon declared one.
    pub outage_declared: Option<String>,
    /// The first step's start.
    pub execution_start: Option<String>,
    /// Service restored, if it was.
    pub service_restored: Option<String>,
    /// Recovery time achieved.
    pub rto: Measured,
    /// Its breakdown.
    pub breakdown: Breakdown,
    /// Recovery point achieved.
    pub rpo: Measured,
    /// The recovery point itself (RFC 3339), when known.
    pub recovery_point: Option<String>,
    /// Step ids on the critical path, in order.
    pub critical_path: Vec<String>,
    /// Every step that ran, in start order.
    pub steps: Vec<StepSpan>,
    /// In a drill: what each step did instead of its production action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub substitutions: Vec<Substitution>,
    /// Steps that acted as an assumed role: who and in which account.
    pub accounts: Vec<AccountUse>,
}

/// A step that acted in another account, as an assumed role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountUse {
    /// The step.
    pub step: String,
    /// The principal STS named (`arn:aws:sts::ACCOUNT:assumed-role/...`).
    pub acting_as: String,
    /// Its account.
    pub account: String,
}

/// A drill step's stand-in for its production action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Substitution {
    /// The step.
    pub step: String,
    /// What it did instead.
    pub note: String,
}

fn ts(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// The steps as they ran, from their main-phase events.
fn spans(runbook: &Runbook, events: &[StepEvent]) -> Vec<StepSpan> {
    let mut by_step: HashMap<&str, StepSpan> = HashMap::new();
    let mut waiting_since: HashMap<&str, Timestamp> = HashMap::new();
    for e in events.iter().filter(|e| e.phase == Phase::Main) {
        let action = runbook
            .steps
            .iter()
            .find(|s| s.id == e.step)
            .map_or(String::new(), |s| s.action.to_string());
        let span = by_step.entry(e.step.as_str()).or_insert_with(|| StepSpan {
            step: e.step.clone(),
            action,
            state: e.state,
            start: None,
            end: None,
            duration_s: None,
            waiting_s: 0.0,
            attempts: 0,
            critical: false,
        });
        if span.start.is_none() && matches!(e.state, StepState::Running | StepState::Waiting) {
            span.start = Some(e.at.clone());
        }
        span.attempts = span.attempts.max(e.attempt);
        span.state = e.state;
        if matches!(e.state, StepState::Waiting | StepState::NeedsDecision) {
            if let Some(at) = ts(&e.at) {
                waiting_since.insert(e.step.as_str(), at);
            }
            continue;
        }
        // Any other transition ends a wait.
        if let (Some(since), Some(at)) = (waiting_since.remove(e.step.as_str()), ts(&e.at)) {
            span.waiting_s += secs(since, at);
        }
        if matches!(
            e.state,
            StepState::Succeeded | StepState::Failed | StepState::Skipped
        ) {
            span.end = Some(e.at.clone());
        }
    }
    let mut out: Vec<StepSpan> = by_step
        .into_values()
        .map(|mut s| {
            if s.state != StepState::Skipped {
                s.duration_s = match (
                    s.start.as_deref().and_then(ts),
                    s.end.as_deref().and_then(ts),
                ) {
                    (Some(a), Some(b)) => Some(secs(a, b)),
                    _ => None,
                };
            }
            s
        })
        .collect();
    out.sort_by(|a, b| a.start.cmp(&b.start).then(a.step.cmp(&b.step)));
    out
}

/// The chain of steps that decided when `last` ended: from `last`, back
/// through the need that ended latest each time.
fn critical_path(runbook: &Runbook, spans: &[StepSpan], last: &str) -> Vec<String> {
    let end_of = |id: &str| {
        spans
            .iter()
            .find(|s| s.step == id && s.state == StepState::Succeeded)
            .and_then(|s| s.end.as_deref().and_then(ts))
    };
    let mut path = vec![last.to_string()];
    let mut current = last.to_string();
    while let Some(step) = runbook.steps.iter().find(|s| s.id == current) {
        let Some(prev) = step
            .needs
            .iter()
            .map(|&i| runbook.steps[i].id.as_str())
            .filter_map(|id| end_of(id).map(|end| (end, id)))
            .max()
            .map(|(_, id)| id.to_string())
        else {
            break;
        };
        path.push(prev.clone());
        current = prev;
    }
    path.reverse();
    path
}

/// The recovery point the run used, as its runbook says to read it.
fn recovery_point(
    runbook: &Runbook,
    marks: &[Mark],
    events: &[StepEvent],
) -> Result<(Timestamp, String), String> {
    let Some(source) = &runbook.recovery_point else {
        return Err("the runbook names no `recovery_point`".to_string());
    };
    match source {
        RecoveryPoint::RdsSnapshot { step } => {
            let outputs = events
                .iter()
                .rev()
                .find(|e| {
                    e.step == *step && e.phase == Phase::Main && e.state == StepState::Succeeded
                })
                .and_then(|e| e.outputs.as_ref())
                .ok_or_else(|| format!("step `{step}` did not succeed"))?;
            let taken = outputs
                .get("snapshot_created_at")
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    format!(
                        "step `{step}` reports no snapshot creation time (`snapshot_created_at`)"
                    )
                })?;
            let at = ts(taken).ok_or_else(|| format!("unreadable snapshot time `{taken}`"))?;
            let snapshot = outputs
                .get("snapshot_arn")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            Ok((
                at,
                format!("creation time of snapshot {snapshot}, restored by step `{step}`"),
            ))
        }
        RecoveryPoint::RdsReplicaLag { .. }
        | RecoveryPoint::AuroraGlobalLag { .. }
        | RecoveryPoint::S3NewestObject { .. } => {
            let mark = marks
                .iter()
                .find(|m| m.kind == MarkKind::RecoveryPoint)
                .ok_or_else(|| {
                    "the recovery point was never read (no step it precedes ran)".to_string()
                })?;
            let reading: RecoveryReading = mark
                .detail
                .clone()
                .and_then(|d| serde_json::from_value(d).ok())
                .ok_or_else(|| "the recovery point reading is unreadable".to_string())?;
            if let Some(why) = reading.not_measurable {
                return Err(why);
            }
            let at = reading
                .at
                .as_deref()
                .and_then(ts)
                .ok_or_else(|| "the reading has no time".to_string())?;
            Ok((at, reading.how))
        }
    }
}

impl Figures {
    /// The figures of run `id` as its journal records it. The runbook is
    /// loaded as it was run; secret values are not kept, and no figure
    /// depends on them, so placeholders stand in.
    pub fn of_run(journal: &crate::journal::Journal, id: &str) -> Result<Figures, FiguresError> {
        Figures::of_record(&journal.run(id)?, &journal.events(id)?, &journal.marks(id)?)
    }

    /// The figures of a run from what its journal holds of it: its record
    /// (with the runbook text), its step events and its marks.
    pub fn of_record(
        record: &RunRecord,
        events: &[StepEvent],
        marks: &[Mark],
    ) -> Result<Figures, FiguresError> {
        let id = &record.run.id;
        let loaded = crate::runbook::load(
            &record.run.file,
            &record.run.runbook_text,
            &record.run.params,
            crate::runbook::MissingParams::Placeholder,
        )
        .map_err(|problems| FiguresError::Runbook {
            run: id.to_string(),
            problems: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        Ok(Figures::compute(record, &loaded.runbook, events, marks))
    }

    /// Compute a run's figures from its journal and its runbook.
    pub fn compute(
        record: &RunRecord,
        runbook: &Runbook,
        events: &[StepEvent],
        marks: &[Mark],
    ) -> Figures {
        let mark = |kind: MarkKind| marks.iter().find(|m| m.kind == kind);
        let (incident_start, incident_source) = match mark(MarkKind::IncidentStart) {
            Some(m) => (
                m.at.clone(),
                "first failed probe of the declared outage".to_string(),
            ),
            None => (
                record.run.started_at.clone(),
                format!("the {} run's start", record.run.mode),
            ),
        };
        let outage_declared = mark(MarkKind::OutageDeclared).map(|m| m.at.clone());
        let mut steps = spans(runbook, events);
        let execution_start = steps.iter().filter_map(|s| s.start.clone()).min();
        let restorer = runbook.steps.iter().find(|s| s.restores_service);
        let (restored, last) = match restorer {
            Some(step) => {
                let span = steps
                    .iter()
                    .find(|s| s.step == step.id && s.state == StepState::Succeeded);
                (span.and_then(|s| s.end.clone()), Some(step.id.clone()))
            }
            None if record.state.completed() => {
                let latest = steps
                    .iter()
                    .filter(|s| s.end.is_some())
                    .max_by(|a, b| a.end.cmp(&b.end));
                (
                    latest.and_then(|s| s.end.clone()),
                    latest.map(|s| s.step.clone()),
                )
            }
            None => (None, None),
        };
        let critical = match (&restored, &last) {
            (Some(_), Some(last)) => critical_path(runbook, &steps, last),
            _ => Vec::new(),
        };
        for s in &mut steps {
            s.critical = critical.contains(&s.step);
        }
        let target = |d: Option<crate::duration::HumanDuration>| d.map(|d| d.get().as_secs_f64());
        let incident = ts(&incident_start);
        let rto_s = match (incident, restored.as_deref().and_then(ts)) {
            (Some(a), Some(b)) => Some(secs(a, b)),
            _ => None,
        };
        // A drill whose health check could not be pointed at the drill
        // stack proved nothing about when service would be back.
        let unchecked: Vec<&str> = events
            .iter()
            .filter(|e| e.phase == Phase::Main && e.state == StepState::Succeeded)
            .filter(|e| {
                e.outputs
                    .as_ref()
                    .and_then(|o| o.get(UNCHECKED))
                    .is_some_and(|v| v == true)
            })
            .map(|e| e.step.as_str())
            .collect();
        let rto_s = if unchecked.is_empty() { rto_s } else { None };
        let rto_how = match &restored {
            _ if !unchecked.is_empty() => format!(
                "not measured: step{} {} checked nothing in this drill (`http.wait_healthy` without a `drill_url`), so no moment shows the drill stack answering",
                if unchecked.len() == 1 { "" } else { "s" },
                unchecked
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(at) => format!(
                "service restored at {at} ({}), {incident_source} at {incident_start}",
                match restorer {
                    Some(s) => format!("step `{}` succeeded", s.id),
                    None => "the last step ended".to_string(),
                }
            ),
            None => format!("service was not restored: the run is {}", record.state),
        };
        let waiting: f64 = steps.iter().map(|s| s.waiting_s).sum();
        let declared = outage_declared.as_deref().and_then(ts).or(incident);
        let start = execution_start.as_deref().and_then(ts);
        let breakdown = Breakdown {
            detection_s: match (incident, declared) {
                (Some(a), Some(b)) => Some(secs(a, b)),
                _ => None,
            },
            decision_s: match (declared, start) {
                (Some(a), Some(b)) => Some(secs(a, b) + waiting),
                _ => None,
            },
            execution_s: match (start, restored.as_deref().and_then(ts)) {
                (Some(a), Some(b)) => Some(secs(a, b) - waiting),
                _ => None,
            },
        };
        let (rpo_s, recovery_point_at, rpo_how) =
            match (incident, recovery_point(runbook, marks, events)) {
                (Some(incident), Ok((at, how))) => {
                    (Some(secs(at, incident).max(0.0)), Some(at.to_string()), how)
                }
                (_, Err(why)) => (None, None, why),
                (None, Ok(_)) => (None, None, "the incident start is unreadable".to_string()),
            };
        Figures {
            run: record.run.id.clone(),
            runbook: record.run.runbook.clone(),
            mode: record.run.mode.clone(),
            state: record.state,
            incident_start,
            incident_source,
            outage_declared,
            execution_start,
            service_restored: restored,
            rto: Measured::new(rto_s, target(runbook.targets.rto), rto_how),
            breakdown,
            rpo: Measured::new(rpo_s, target(runbook.targets.rpo), rpo_how),
            recovery_point: recovery_point_at,
            critical_path: critical,
            steps,
            substitutions: events
                .iter()
                .filter(|e| e.phase == Phase::Main && e.state == StepState::Succeeded)
                .filter_map(|e| {
                    let note = e.outputs.as_ref()?.get("drill")?.as_str()?;
                    Some(Substitution {
                        step: e.step.clone(),
                        note: note.to_string(),
                    })
                })
                .collect(),
            accounts: events
                .iter()
                .filter(|e| e.phase == Phase::Main && e.state == StepState::Succeeded)
                .filter_map(|e| {
                    let outputs = e.outputs.as_ref()?;
                    Some(AccountUse {
                        step: e.step.clone(),
                        acting_as: outputs.get("acting_as")?.as_str()?.to_string(),
                        account: outputs.get("account")?.as_str()?.to_string(),
                    })
                })
                .collect(),
        }
    }
}

/// How many earlier drills a report compares a run with.
pub const TREND_DRILLS: usize = 5;

/// An earlier run of the same runbook, as a report compares with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Past {
    /// Run id.
    pub run: String,
    /// Its mode.
    pub mode: String,
    /// When it started.
    pub started_at: String,
    /// Its RTO, when measured.
    pub rto_s: Option<f64>,
    /// Its RPO, when measured.
    pub rpo_s: Option<f64>,
    /// Whether it ran the same runbook text (by SHA-256) as this run.
    pub same_runbook: bool,
}

/// One step's duration in this run and in the runs compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTrend {
    /// Step id.
    pub step: String,
    /// In this run.
    pub this_s: Option<f64>,
    /// In the last successful failover or switchover.
    pub last_failover_s: Option<f64>,
    /// In the last successful drills, newest first.
    pub drills_s: Vec<Option<f64>>,
}

/// A run beside the runbook's last successful failover (or switchover)
/// and its last successful drills: the trend a drill's figures mean
/// something against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The last successful failover or switchover before this run.
    pub last_failover: Option<Past>,
    /// The last successful drills before this run, newest first.
    pub drills: Vec<Past>,
    /// Each step of this run.
    pub steps: Vec<StepTrend>,
}

impl Comparison {
    /// Compare `this` run (its runbook's SHA-256 `sha256`) with `earlier`
    /// runs of its runbook: each with its SHA-256 and figures, in any
    /// order; only those that started before it and succeeded count.
    pub fn of(this: &Figures, sha256: &str, earlier: &[(String, Figures)]) -> Comparison {
        let start = |f: &Figures| {
            f.execution_start
                .clone()
                .unwrap_or_else(|| f.incident_start.clone())
        };
        let this_start = start(this);
        let mut before: Vec<&(String, Figures)> = earlier
            .iter()
            .filter(|(_, f)| {
                f.run != this.run
                    && f.runbook == this.runbook
                    && f.state == RunState::Succeeded
                    && start(f) < this_start
            })
            .collect();
        before.sort_by_key(|(_, f)| std::cmp::Reverse(start(f)));
        let past = |(sha, f): &(String, Figures)| Past {
            run: f.run.clone(),
            mode: f.mode.clone(),
            started_at: start(f),
            rto_s: f.rto.seconds,
            rpo_s: f.rpo.seconds,
            same_runbook: sha == sha256,
        };
        let failover = before.iter().copied().find(|(_, f)| f.mode != "drill");
        let drills: Vec<&(String, Figures)> = before
            .iter()
            .copied()
            .filter(|(_, f)| f.mode == "drill")
            .take(TREND_DRILLS)
            .collect();
        let duration = |f: &Figures, step: &str| {
            f.steps
                .iter()
                .find(|s| s.step == step)
                .and_then(|s| s.duration_s)
        };
        let steps = this
            .steps
            .iter()
            .map(|s| StepTrend {
                step: s.step.clone(),
                this_s: s.duration_s,
                last_failover_s: failover.and_then(|(_, f)| duration(f, &s.step)),
                drills_s: drills.iter().map(|(_, f)| duration(f, &s.step)).collect(),
            })
            .collect();
        Comparison {
            last_failover: failover.map(past),
            drills: drills.into_iter().map(past).collect(),
            steps,
        }
    }

    /// Whether there is anything to compare with.
    pub fn is_empty(&self) -> bool {
        self.last_failover.is_none() && self.drills.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::NewRun;
    use crate::runbook::{MissingParams, load};

    const RUNBOOK: &str = "name: t
strategy: backup-restore
targets: { rto: 1m, rpo: 1h }
recovery_point: { from: rds.snapshot, step: restore }
steps:
  - { id: approve, action: manual.approval, with: { prompt: go, timeout: 1h } }
  - { id: restore, action: wait, needs: [approve], with: { duration: 1s } }
  - { id: other, action: wait, needs: [approve], with: { duration: 1s } }
  - { id: verify, action: wait, needs: [restore, other], with: { duration: 1s }, restores_service: true }
";

    fn event(step: &str, state: &str, at: &str, outputs: Option<serde_json::Value>) -> StepEvent {
        StepEvent {
            seq: 0,
            step: step.into(),
            phase: Phase::Main,
            attempt: 1,
            state: state.parse().unwrap(),
            at: at.into(),
            outputs,
            message: None,
        }
    }

    fn record(state: &str) -> RunRecord {
        RunRecord {
            run: NewRun {
                id: "r".into(),
                runbook: "t".into(),
                file: "t.yaml".into(),
                runbook_sha256: String::new(),
                runbook_text: String::new(),
                params: Vec::new(),
                secret_params: Vec::new(),
                mode: "failover".into(),
                started_by: "me".into(),
                started_at: "2026-11-28T10:00:00Z".into(),
            },
            state: state.parse().unwrap(),
            finished_at: None,
            error: None,
        }
    }

    fn events() -> Vec<StepEvent> {
        let snap = serde_json::json!({
            "snapshot_created_at": "2026-11-28T09:30:00Z",
            "snapshot_arn": "arn:aws:rds:us-west-2:1:snapshot:s",
        });
        vec![
            event("approve", "waiting", "2026-11-28T10:00:02Z", None),
            event("approve", "succeeded", "2026-11-28T10:00:12Z", None),
            event("restore", "running", "2026-11-28T10:00:12Z", None),
            event("other", "running", "2026-11-28T10:00:12Z", None),
            event("other", "succeeded", "2026-11-28T10:00:20Z", None),
            event("restore", "succeeded", "2026-11-28T10:00:30Z", Some(snap)),
            event("verify", "running", "2026-11-28T10:00:30Z", None),
            event("verify", "succeeded", "2026-11-28T10:00:35Z", None),
        ]
    }

    fn runbook() -> Runbook {
        load("t.yaml", RUNBOOK, &[], MissingParams::Refuse)
            .expect("runbook")
            .runbook
    }

    #[test]
    fn rto_runs_from_the_run_start_to_the_restoring_step_with_its_breakdown() {
        let f = Figures::compute(&record("succeeded"), &runbook(), &events(), &[]);
        assert_eq!(f.rto.seconds, Some(35.0));
        assert_eq!((f.rto.verdict, f.rto.margin_s), ("met", Some(-25.0)));
        // Manual run: detection is nil; the 10 s approval wait is decision.
        assert_eq!(f.breakdown.detection_s, Some(0.0));
        assert_eq!(f.breakdown.decision_s, Some(12.0));
        assert_eq!(f.breakdown.execution_s, Some(23.0));
        assert_eq!(f.critical_path, vec!["approve", "restore", "verify"]);
        assert!(!f.steps.iter().find(|s| s.step == "other").unwrap().critical);
    }

    #[test]
    fn rpo_is_the_incident_start_minus_the_restored_snapshot_time() {
        let f = Figures::compute(&record("succeeded"), &runbook(), &events(), &[]);
        assert_eq!(f.rpo.seconds, Some(1800.0));
        assert_eq!(f.rpo.verdict, "met");
        assert!(
            f.rpo
                .how
                .contains("snapshot arn:aws:rds:us-west-2:1:snapshot:s")
        );
    }

    #[test]
    fn a_declared_outage_splits_detection_from_decision() {
        let marks = [
            Mark {
                kind: MarkKind::IncidentStart,
                at: "2026-11-28T09:59:00Z".into(),
                detail: None,
            },
            Mark {
                kind: MarkKind::OutageDeclared,
                at: "2026-11-28T09:59:40Z".into(),
                detail: None,
            },
        ];
        let f = Figures::compute(&record("succeeded"), &runbook(), &events(), &marks);
        assert_eq!(f.rto.seconds, Some(95.0));
        assert_eq!((f.rto.verdict, f.rto.margin_s), ("breached", Some(35.0)));
        assert_eq!(f.breakdown.detection_s, Some(40.0));
        // 09:59:40 to the first step at 10:00:02, plus the 10 s approval.
        assert_eq!(f.breakdown.decision_s, Some(32.0));
        assert_eq!(f.rpo.seconds, Some(1740.0));
    }

    #[test]
    fn what_cannot_be_told_is_not_measurable_never_zero() {
        let mut failed = events();
        failed.truncate(5);
        failed.push(event("restore", "failed", "2026-11-28T10:00:30Z", None));
        let f = Figures::compute(&record("failed"), &runbook(), &failed, &[]);
        assert_eq!((f.rto.seconds, f.rto.verdict), (None, "not measurable"));
        assert_eq!(f.rto.how, "service was not restored: the run is failed");
        assert_eq!((f.rpo.seconds, f.rpo.verdict), (None, "not measurable"));
        assert_eq!(f.rpo.how, "step `restore` did not succeed");

        let lag = RUNBOOK.replace(
            "{ from: rds.snapshot, step: restore }",
            "{ from: rds.replica_lag, db_instance: db, region: us-west-2 }",
        );
        let runbook = load("t.yaml", &lag, &[], MissingParams::Refuse)
            .expect("runbook")
            .runbook;
        let reading = RecoveryReading::unmeasurable("CloudWatch answered HTTP 404");
        let marks = [Mark {
            kind: MarkKind::RecoveryPoint,
            at: "2026-11-28T10:00:12Z".into(),
            detail: serde_json::to_value(reading).ok(),
        }];
        let f = Figures::compute(&record("succeeded"), &runbook, &events(), &marks);
        assert_eq!(f.rpo.seconds, None);
        assert_eq!(f.rpo.how, "CloudWatch answered HTTP 404");
    }
}
