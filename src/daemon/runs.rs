//! Runs: starting a binding's runbook, resuming interrupted runs, a run's
//! end (its figures, its drill teardown), sweeping orphaned drills.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, error, info, warn};

use super::Daemon;
use crate::actions::Registry;
use crate::config::Binding;
use crate::engine::{Engine, EngineOptions};
use crate::journal::{DecisionKind, JournalError, Mark, MarkKind, StepEvent, StepState};
use crate::measure::Figures;
use crate::notify::Event;
use crate::runbook::{self, MissingParams, Mode, Runbook};
use crate::trigger::{DAEMON, decision};

/// A run the daemon is executing.
pub(super) struct RunTask {
    pub(super) binding: Option<String>,
    pub(super) handle: tokio::task::JoinHandle<()>,
}

/// A binding's runbook, read and loaded with its params as a run would.
pub(super) fn load_bound(binding: &Binding) -> Result<(String, runbook::Loaded), String> {
    let text = runbook::children::read(&binding.runbook)
        .map_err(|e| format!("cannot read {}: {e}", binding.runbook.display()))?;
    let loaded = runbook::load(
        &binding.runbook.display().to_string(),
        &text,
        &binding.params,
        MissingParams::Refuse,
    )
    .map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok((text, loaded))
}

/// Whether binding `name` is on its reprotected side, as its last
/// `reprotected` decision among `decisions` left it (none: its first side).
pub fn journaled_side(decisions: &[crate::journal::Decision], name: &str) -> bool {
    decisions
        .iter()
        .rev()
        .filter(|d| d.binding.as_deref() == Some(name))
        .find(|d| d.kind == DecisionKind::Reprotected)
        .and_then(|d| d.detail.as_ref()?.get("reprotected")?.as_bool())
        .unwrap_or(false)
}

/// Each binding on the side `decisions` left it on, as a daemon reading
/// that journal would have it.
pub fn on_journaled_sides(
    bindings: &[Binding],
    decisions: &[crate::journal::Decision],
) -> Vec<Binding> {
    bindings
        .iter()
        .map(|b| {
            if journaled_side(decisions, &b.name) != b.reprotected
                && let Some(flipped) = b.flipped()
            {
                flipped
            } else {
                b.clone()
            }
        })
        .collect()
}

/// The mode a run was recorded in.
pub(super) fn mode_of(record: &str) -> Mode {
    match record {
        "switchover" => Mode::Switchover,
        "drill" => Mode::Drill,
        "fence" => Mode::Fence,
        "reprotect" => Mode::Reprotect,
        _ => Mode::Failover,
    }
}

/// Log a step's transition, once it is durable (the run's and the step's
/// spans carry which).
fn log_transition(event: &StepEvent) {
    let (phase, state, attempt) = (event.phase.as_str(), event.state.as_str(), event.attempt);
    match (event.state, &event.message) {
        (StepState::Failed, Some(error)) => {
            warn!(phase, state, attempt, error = %error, "step failed");
        }
        (StepState::Retrying, Some(error)) => {
            warn!(phase, state, attempt, error = %error, "step retrying");
        }
        (_, detail) => info!(
            phase,
            state,
            attempt,
            detail = detail.as_deref().unwrap_or(""),
            "step {state}"
        ),
    }
}

impl Daemon {
    /// Execute run `id` in its own task; its id goes to `ended` when it stops.
    pub(super) fn spawn_run(
        &mut self,
        id: String,
        runbook: Arc<Runbook>,
        mode: Mode,
        binding: Option<String>,
    ) {
        let engine = Engine::new(
            Arc::clone(&self.journal),
            Arc::new(Registry::with_aws(self.aws.clone())),
            EngineOptions::default(),
        )
        .with_drain(self.drain.subscribe())
        .with_observer(Arc::new(log_transition));
        let ended = self.ended.clone();
        let run = id.clone();
        let span = tracing::info_span!(
            "run",
            run_id = %id,
            runbook = %runbook.name,
            mode = %mode,
            binding = tracing::field::Empty,
        );
        if let Some(binding) = &binding {
            span.record("binding", binding.as_str());
        }
        // A leader's runs stop the instant its lease runs out by the local
        // clock, whatever the daemon is busy with: no step goes on without it.
        let lease = self.lease_clock();
        let handle = tokio::spawn(async move {
            let expired = async {
                match &lease {
                    Some(clock) => clock.expired().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = engine.execute(&run, runbook, mode) => match ended {
                    Ok(outcome) => info!(run_id = %run, state = outcome.word(), "run ended"),
                    Err(e) => error!(run_id = %run, error = %e, "run stopped"),
                },
                () = expired => {
                    error!(run_id = %run, "the lease ran out by the local clock: every step of the run stopped at once (stepping down); the next leader resumes it");
                    return;
                }
            }
            let _ = ended.send(run).await;
        }.instrument(span));
        self.runs.insert(id, RunTask { binding, handle });
    }

    /// Resume every run the journal shows unfinished.
    pub(super) fn resume_runs(&mut self) -> Result<(), JournalError> {
        let started_by_binding: HashMap<String, String> = self
            .journal
            .decisions(None)?
            .into_iter()
            .filter(|d| matches!(d.kind, DecisionKind::Started | DecisionKind::StartedDrill))
            .filter_map(|d| Some((d.run?, d.binding?)))
            .collect();
        for listed in self.journal.unfinished_runs()? {
            let id = listed.run.id.clone();
            // The listing leaves the runbook's text out; the run itself has it.
            let record = self.journal.run(&id)?;
            if !record.run.secret_params.is_empty() {
                error!(
                    run_id = %id,
                    "not resuming: it was started with secret parameters, which the journal does not keep; resume it with `lifeboat run --resume {id} --param ...`"
                );
                continue;
            }
            let loaded = match runbook::load(
                &record.run.file,
                &record.run.runbook_text,
                &record.run.params,
                MissingParams::Refuse,
            ) {
                Ok(loaded) => loaded,
                Err(problems) => {
                    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    error!(run_id = %id, problems = %problems.join("; "), "not resuming: its runbook no longer loads");
                    continue;
                }
            };
            info!(run_id = %id, runbook = %record.run.runbook, "resuming an interrupted run");
            let binding = started_by_binding.get(&id).cloned();
            self.spawn_run(
                id,
                Arc::new(loaded.runbook),
                mode_of(&record.run.mode),
                binding,
            );
        }
        Ok(())
    }

    /// A run stopped: export its figures and tell the webhooks.
    pub(super) fn on_run_end(&mut self, id: &str) {
        let binding = self.runs.remove(id).and_then(|t| t.binding);
        self.metrics.record_api_calls(self.aws.calls());
        let figures = match Figures::of_run(&self.journal, id) {
            Ok(f) => f,
            Err(e) => {
                error!(run_id = %id, error = %e, "cannot read the run's figures");
                return;
            }
        };
        if figures.state.unfinished() {
            // Interrupted by a stop: the next start resumes it.
            return;
        }
        if figures.mode == "drill" {
            self.tear_down(id);
        }
        self.metrics.record_run(&figures);
        self.refresh_bindings();
        let seconds = |s: Option<f64>| {
            s.map_or_else(
                || "not measurable".into(),
                |s| crate::report::seconds(Some(s)),
            )
        };
        // A reprotect run that succeeded: the binding now watches its other
        // side (the protection rebuilt the other way).
        if figures.mode == "reprotect"
            && figures.state == crate::journal::RunState::Succeeded
            && let Some(name) = binding.as_deref()
        {
            self.reprotected(name, id);
        }
        // A failover that ended after its failed region came back: fence
        // now (on the region's recovery it was still running).
        if figures.mode == "failover"
            && let Some(b) = binding.as_deref().and_then(|name| self.binding(name))
            && !self.outages.contains_key(b.scope())
            && self
                .detectors
                .get(b.scope())
                .is_some_and(|d| d.state() == crate::detect::RegionState::Healthy)
        {
            self.fence(&b);
        }
        self.notifier.send(Event {
            event: "run-ended".into(),
            at: crate::engine::now(),
            binding,
            region: None,
            run: Some(id.to_string()),
            summary: format!(
                "run {id} of {} {}: RTO {} ({}), RPO {} ({})",
                figures.runbook,
                figures.state,
                seconds(figures.rto.seconds),
                figures.rto.verdict,
                seconds(figures.rpo.seconds),
                figures.rpo.verdict
            ),
            detail: serde_json::to_value(&figures).ok(),
        });
    }

    /// Binding `name`'s reprotect run `run` succeeded: journal that the
    /// binding now acts as its other side, and act so.
    fn reprotected(&mut self, name: &str, run: &str) {
        let Some(flipped) = self.binding(name).and_then(|b| b.flipped()) else {
            return;
        };
        let d = decision(
            Some(name),
            DecisionKind::Reprotected,
            Some(run),
            crate::trigger::DAEMON,
            Some(serde_json::json!({
                "reprotected": flipped.reprotected,
                "region": flipped.region,
                "zone": flipped.zone,
                "runbook": flipped.runbook.display().to_string(),
            })),
        );
        let summary = format!(
            "binding `{name}` reprotected by run {run}: it now watches {} and runs {} (armed once `lifeboat ack {name}`)",
            flipped.scope(),
            flipped.runbook.display()
        );
        if self.record(&d, Some(&flipped.region), summary) {
            self.set_binding(flipped);
        }
    }

    /// Replace the binding of that name.
    pub(super) fn set_binding(&mut self, binding: Binding) {
        if let Some(b) = self
            .config
            .bindings
            .iter_mut()
            .find(|b| b.name == binding.name)
        {
            *b = binding;
        }
    }

    /// Each binding as its journal says: the side its last `reprotected`
    /// decision left it on (a fresh config describes the first side).
    pub(super) fn apply_sides(&mut self) {
        let names: Vec<String> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.other_side.is_some())
            .map(|b| b.name.clone())
            .collect();
        for name in names {
            let Ok(decisions) = self.journal.decisions(Some(&name)) else {
                continue;
            };
            let wanted = journaled_side(&decisions, &name);
            if let Some(b) = self.binding(&name)
                && b.reprotected != wanted
                && let Some(flipped) = b.flipped()
            {
                info!(binding = %name, region = %flipped.region, "binding on its reprotected side, as journaled");
                self.set_binding(flipped);
            }
        }
    }

    /// Remove what drill `id` made, in the background; the result is
    /// journaled as its `teardown` mark.
    pub(super) fn tear_down(&self, id: &str) {
        let Ok(record) = self.journal.run(id) else {
            return;
        };
        let (regions, roles) = runbook::load(
            &record.run.file,
            &record.run.runbook_text,
            &record.run.params,
            MissingParams::Placeholder,
        )
        .map(|l| {
            (
                runbook::regions_of(&l.runbook),
                runbook::roles_of(&l.runbook),
            )
        })
        .unwrap_or_default();
        let (aws, journal, id) = (self.aws.clone(), Arc::clone(&self.journal), id.to_string());
        tokio::spawn(async move {
            let which = crate::actions::drill::Which::Run(id.clone());
            let t =
                crate::actions::drill::teardown_in_accounts(&aws, &roles, &regions, &which).await;
            if t.errors.is_empty() {
                info!(run_id = %id, removed = t.removed.len(), "drill torn down");
            } else {
                error!(run_id = %id, errors = ?t.errors, "drill teardown incomplete; the next sweep retries");
            }
            let mark = Mark {
                kind: MarkKind::Teardown,
                at: crate::engine::now(),
                detail: serde_json::to_value(&t).ok(),
            };
            if let Err(e) = journal.mark(&id, &mark) {
                error!(run_id = %id, error = %e, "cannot journal the teardown");
            }
        });
    }

    /// At start: remove the resources of drills that are over (or whose
    /// process died), in the background, where drills may have made them:
    /// the regions and accounts of the bound runbooks and of the drills in
    /// the journal. A daemon with neither has nothing to sweep, and loads
    /// nothing of the AWS SDK for it.
    pub(super) fn sweep(&self) -> Result<(), JournalError> {
        let mut scope = crate::actions::drill::sweep_scope(&self.journal)?;
        for b in &self.config.bindings {
            if let Ok((_, loaded)) = load_bound(b) {
                scope.add(&loaded.runbook);
            }
        }
        // Drills the journal shows unfinished are resumed, not swept.
        let crate::actions::drill::SweepScope {
            regions,
            roles,
            unfinished: live,
        } = scope;
        if regions.is_empty() {
            return Ok(());
        }
        let aws = self.aws.clone();
        tokio::spawn(async move {
            let which = crate::actions::drill::Which::AllBut(live);
            let t =
                crate::actions::drill::teardown_in_accounts(&aws, &roles, &regions, &which).await;
            if !t.removed.is_empty() {
                warn!(removed = ?t.removed, "swept drill resources left by earlier drills");
            }
            if !t.errors.is_empty() {
                error!(errors = ?t.errors, "drill sweep incomplete");
            }
        });
        Ok(())
    }

    /// Start `binding`'s runbook in `mode` for `who`. The run, the marks of
    /// the outage it answers (from `evidence`) and the decision are
    /// journaled together before anything executes.
    pub(super) fn start(
        &mut self,
        binding: &Binding,
        mode: Mode,
        who: &str,
        how: &str,
        evidence: Option<serde_json::Value>,
    ) -> Result<String, String> {
        let started = self.start_inner(binding, mode, who, how, evidence.clone());
        if let Err(why) = &started {
            let d = decision(
                Some(&binding.name),
                DecisionKind::StartFailed,
                None,
                who,
                Some(serde_json::json!({ "error": why, "evidence": evidence })),
            );
            self.record(
                &d,
                Some(&binding.region),
                format!("could not start binding `{}`: {why}", binding.name),
            );
        }
        started
    }

    pub(super) fn start_inner(
        &mut self,
        binding: &Binding,
        mode: Mode,
        who: &str,
        how: &str,
        evidence: Option<serde_json::Value>,
    ) -> Result<String, String> {
        let (text, loaded) = load_bound(binding)?;
        if let Some(why) = runbook::nothing_to_do(&loaded.runbook, mode) {
            return Err(why);
        }
        if loaded.runbook.strategy == crate::runbook::Strategy::Failback
            && who == DAEMON
            && mode != Mode::Drill
        {
            return Err("a failback is never started automatically".into());
        }
        let record = crate::engine::new_run(
            &loaded.runbook,
            binding.runbook.display().to_string(),
            text,
            &binding.params,
            mode,
            who.to_string(),
        );
        let id = record.id.clone();
        let mut marks = Vec::new();
        if let Some(e) = &evidence {
            if let Some(at) = e["incident_start"].as_str() {
                marks.push(Mark {
                    kind: MarkKind::IncidentStart,
                    at: at.to_string(),
                    detail: Some(e.clone()),
                });
            }
            if let Some(at) = e["declared_at"].as_str() {
                marks.push(Mark {
                    kind: MarkKind::OutageDeclared,
                    at: at.to_string(),
                    detail: None,
                });
            }
        }
        if let Some(limit) = binding.max_data_loss.filter(|_| mode == Mode::Failover) {
            marks.push(Mark {
                kind: MarkKind::DataLossLimit,
                at: crate::engine::now(),
                detail: Some(serde_json::json!({
                    "seconds": limit.as_secs_f64(),
                    "binding": binding.name,
                })),
            });
        }
        let kind = if mode == Mode::Drill {
            DecisionKind::StartedDrill
        } else {
            DecisionKind::Started
        };
        let d = decision(
            Some(&binding.name),
            kind,
            Some(&id),
            who,
            Some(serde_json::json!({
                "how": how,
                "policy": binding.policy.as_str(),
                "mode": mode.as_str(),
                "runbook": loaded.runbook.name,
                "evidence": evidence,
            })),
        );
        self.journal
            .start_run(&record, &marks, Some(&d))
            .map_err(|e| format!("cannot journal the run: {e}"))?;
        self.count_and_tell(
            &d,
            Some(&binding.region),
            format!(
                "started run {id} of {} in {mode} mode for binding `{}` ({how})",
                loaded.runbook.name, binding.name
            ),
        );
        self.spawn_run(
            id.clone(),
            Arc::new(loaded.runbook),
            mode,
            Some(binding.name.clone()),
        );
        Ok(id)
    }
}

/// How soon after the start the first retention pass runs, then how often.
pub(super) const RETENTION_FIRST: Duration = Duration::from_secs(10);
/// See `RETENTION_FIRST`.
pub(super) const RETENTION_EVERY: Duration = Duration::from_secs(3600);

impl Daemon {
    /// What ended longer ago than the config keeps it leaves the journal:
    /// to the archive (etcd's `history`), or deleted (the embedded
    /// journal's `keep`). Only the executing daemon does it, off the
    /// runtime's threads; nothing without those settings.
    pub(super) fn retire(&self) {
        if !self.executes() {
            return;
        }
        let (keep, to) = match &self.config.storage {
            crate::config::Storage::Etcd(s) if s.archive.is_some() => {
                (s.history, "moved to the archive")
            }
            crate::config::Storage::Etcd(_) => return,
            crate::config::Storage::Embedded => match self.config.keep {
                Some(keep) => (keep, "deleted"),
                None => return,
            },
        };
        let Ok(before) = jiff::SignedDuration::try_from(keep)
            .ok()
            .and_then(|k| jiff::Timestamp::now().checked_sub(k).ok())
            .ok_or(())
        else {
            return;
        };
        let journal = Arc::clone(&self.journal);
        tokio::task::spawn_blocking(move || match journal.retire(before) {
            Ok(r) if r.nothing() => tracing::debug!("retention: nothing ended before {before:.0}"),
            Ok(r) => info!(
                runs = r.runs,
                decisions = r.decisions,
                requests = r.requests,
                verifications = r.verifications,
                "retention: what ended before {before:.0} {to}"
            ),
            Err(e) => {
                warn!(error = %e, "retention: the pass failed (it runs again within the hour)")
            }
        });
    }
}
