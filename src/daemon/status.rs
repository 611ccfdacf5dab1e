//! What the daemon knows now, as `lifeboat status`, `/status` and the
//! status page show it, and the per-binding series of the metrics.

use std::collections::VecDeque;

use super::Daemon;
use crate::journal::{DecisionKind, JournalError, RunRecord, RunState};
use crate::measure::Figures;
use crate::trigger;

/// How many of each probe's last results the status keeps.
pub(super) const RECENT: usize = 30;

/// What a binding's runs have proved: its last successful drill and
/// failover (or switchover), and whether the runbook changed since the
/// drill.
#[derive(Debug, Default)]
struct Proved {
    drill: Option<RunRecord>,
    failover: Option<RunRecord>,
}

/// What is wrong with a binding's drills: none succeeded within
/// `warn_after` of `now` (or ever), or the runbook changed since the last
/// one that did (as Azure Site Recovery reminds of test failovers).
pub(super) fn drill_warnings(
    last_success: Option<&str>,
    changed_since: Option<bool>,
    warn_after: std::time::Duration,
    now: jiff::Timestamp,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let days = |d: std::time::Duration| d.as_secs() / 86_400;
    let limit = match days(warn_after) {
        0 => crate::report::seconds(Some(warn_after.as_secs_f64())),
        n => format!("{n} days"),
    };
    match last_success.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        None => warnings.push(format!(
            "never drilled successfully (drills are due every {limit})"
        )),
        Some(at) => {
            let age = now.duration_since(at);
            if age.as_secs_f64() > warn_after.as_secs_f64() {
                let age = std::time::Duration::from_secs_f64(age.as_secs_f64().max(0.0));
                warnings.push(format!(
                    "no successful drill for {} (drills are due every {limit})",
                    match days(age) {
                        0 => crate::report::seconds(Some(age.as_secs_f64())),
                        n => format!("{n} days"),
                    }
                ));
            }
            if changed_since == Some(true) {
                warnings.push("the runbook changed since its last successful drill".into());
            }
        }
    }
    warnings
}

fn unix_seconds(at: Option<&str>) -> Option<f64> {
    let at: jiff::Timestamp = at?.parse().ok()?;
    Some(at.as_millisecond() as f64 / 1000.0)
}

impl Daemon {
    /// Remember a probe's result among its last [`RECENT`].
    pub(super) fn remember(&mut self, region: &str, probe: usize, ok: bool) {
        let recent = self
            .recent
            .entry((region.to_string(), probe))
            .or_insert_with(|| VecDeque::with_capacity(RECENT));
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(ok);
    }

    /// The runs the daemon started for `binding` that succeeded last, as
    /// a drill and as a failover or switchover.
    fn proved(&self, binding: &str) -> Result<Proved, JournalError> {
        let mut proved = Proved::default();
        for d in self.journal.decisions(Some(binding))?.iter().rev() {
            if proved.drill.is_some() && proved.failover.is_some() {
                break;
            }
            let drill = match d.kind {
                DecisionKind::StartedDrill => true,
                DecisionKind::Started => false,
                _ => continue,
            };
            let slot = if drill {
                &mut proved.drill
            } else {
                &mut proved.failover
            };
            if slot.is_some() {
                continue;
            }
            let Some(id) = &d.run else { continue };
            let Ok(record) = self.journal.run(id) else {
                continue;
            };
            if record.state == RunState::Succeeded {
                *slot = Some(record);
            }
        }
        Ok(proved)
    }

    /// Whether `binding`'s runbook now differs from the one `drill` ran;
    /// unknown until its readiness check read the file.
    fn changed_since(&self, binding: &str, drill: Option<&RunRecord>) -> Option<bool> {
        let now = self.readiness.get(binding)?.sha256.as_deref()?;
        Some(drill.is_none_or(|d| d.run.runbook_sha256 != now))
    }

    /// Set the per-binding metrics (state, last drill and failover) from
    /// the journal now, and tell the webhooks when a binding's drill
    /// warnings change (once each time, not at every reading).
    pub(super) fn refresh_bindings(&mut self) {
        let status = match self.status() {
            Ok(status) => status,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the bindings' state from the journal");
                return;
            }
        };
        for b in status["bindings"].as_array().into_iter().flatten() {
            let Some(name) = b["name"].as_str() else {
                continue;
            };
            let warnings: Vec<String> = b["drill_warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect();
            let before = self.drill_warned.insert(name.to_string(), warnings.clone());
            // At start, only a warning is news; afterwards, any change is.
            let news = match &before {
                None => !warnings.is_empty(),
                Some(before) => *before != warnings,
            };
            if !news {
                continue;
            }
            let (event, summary) = if warnings.is_empty() {
                (
                    "drill-current",
                    format!("binding `{name}`: its drills are current again"),
                )
            } else {
                (
                    "drill-overdue",
                    format!("binding `{name}`: {}", warnings.join("; ")),
                )
            };
            if warnings.is_empty() {
                tracing::info!(binding = name, "{summary}");
            } else {
                tracing::warn!(binding = name, "{summary}");
            }
            self.notifier.send(crate::notify::Event {
                event: event.into(),
                at: crate::engine::now(),
                binding: Some(name.to_string()),
                region: None,
                run: None,
                summary,
                detail: Some(serde_json::json!({ "drill_warnings": warnings })),
            });
        }
    }

    /// What `lifeboat status`, `/status` and the status page show; the
    /// per-binding metrics are set from the same reading.
    pub(super) fn status(&self) -> Result<serde_json::Value, JournalError> {
        let now = jiff::Timestamp::now();
        let regions: Vec<serde_json::Value> = self
            .detectors
            .iter()
            .map(|(name, d)| {
                let mut e = self.evidence(name, None, "");
                e["incident_start"] = self
                    .outages
                    .get(name)
                    .map_or(serde_json::Value::Null, |o| o["incident_start"].clone());
                if let Some(map) = e.as_object_mut() {
                    map.remove("declared_at");
                }
                e["state"] = serde_json::json!(d.state());
                let (region, indexes) = self
                    .scopes
                    .get(name)
                    .map_or((name.clone(), Vec::new()), |s| {
                        (s.region.clone(), s.probes.clone())
                    });
                if let Some(probes) = e["probes"].as_array_mut() {
                    for (j, p) in probes.iter_mut().enumerate() {
                        let key = (region.clone(), indexes.get(j).copied().unwrap_or(j));
                        p["last_duration_s"] =
                            serde_json::json!(self.last.get(&key).map(|o| o.duration_s));
                        p["recent"] = serde_json::json!(self.recent.get(&key));
                    }
                }
                e
            })
            .collect();
        let mut bindings = Vec::new();
        for b in &self.config.bindings {
            let view = trigger::view(&self.journal, b, now)?;
            let state = if view.active_run.is_some() {
                "running"
            } else if view.awaiting.is_some() {
                "awaiting-approval"
            } else if view.cooling.is_some() {
                "cooling-down"
            } else if view.maintenance.is_some() && b.policy != crate::config::Policy::Notify {
                "in-maintenance"
            } else if b.policy == crate::config::Policy::Notify {
                "notify-only"
            } else if view.paused.is_some() {
                "paused"
            } else {
                "armed"
            };
            self.metrics.set_binding_state(&b.name, state);
            let last = view
                .last_run
                .as_deref()
                .and_then(|id| Figures::of_run(&self.journal, id).ok());
            let readiness = self.readiness.get(&b.name);
            let proved = self.proved(&b.name)?;
            let changed = self.changed_since(&b.name, proved.drill.as_ref());
            self.metrics.set_binding_history(
                &b.name,
                unix_seconds(proved.drill.as_ref().and_then(|r| r.finished_at.as_deref())),
                unix_seconds(
                    proved
                        .failover
                        .as_ref()
                        .and_then(|r| r.finished_at.as_deref()),
                ),
                changed.unwrap_or(proved.drill.is_none()),
            );
            let drill_warnings = drill_warnings(
                proved.drill.as_ref().and_then(|r| r.finished_at.as_deref()),
                changed,
                self.config.drill_warning_after,
                now,
            );
            self.metrics
                .set_drill_max_age(&b.name, self.config.drill_warning_after.as_secs_f64());
            let proof = |r: &RunRecord| {
                serde_json::json!({
                    "run": r.run.id,
                    "mode": r.run.mode,
                    "finished_at": r.finished_at,
                    "runbook_sha256": r.run.runbook_sha256,
                })
            };
            bindings.push(serde_json::json!({
                "name": b.name,
                "region": b.region,
                "zone": b.zone,
                "policy": b.policy.as_str(),
                "runbook": b.runbook.display().to_string(),
                "state": state,
                "active_run": view.active_run,
                "cooling": view.cooling,
                "awaiting_since": view.awaiting.as_ref().map(|d| d.at.clone()),
                "paused": view.paused.is_some(),
                "maintenance_until": view.maintenance.map(|t| format!("{t:.0}")),
                "last_run": last.as_ref().map(|f| serde_json::json!({
                    "run": f.run,
                    "state": f.state,
                    "rto_s": f.rto.seconds,
                    "rto_target_s": f.rto.target_s,
                    "rto_verdict": f.rto.verdict,
                    "rpo_s": f.rpo.seconds,
                    "rpo_target_s": f.rpo.target_s,
                    "rpo_verdict": f.rpo.verdict,
                })),
                "last_drill": proved.drill.as_ref().map(proof),
                "last_failover": proved.failover.as_ref().map(proof),
                "runbook_changed_since_drill": changed,
                "drill_warnings": drill_warnings,
                "ready": readiness.map(|r| r.ready),
                "readiness_checked_at": readiness.map(|r| r.checked_at.clone()),
                "not_ready": readiness.map(|r| r.problems.clone()).unwrap_or_default(),
            }));
        }
        let mut ids: Vec<&String> = self.runs.keys().collect();
        ids.sort_unstable();
        let runs: Vec<serde_json::Value> = ids
            .into_iter()
            .map(|id| {
                let t = &self.runs[id];
                let record = self.journal.run(id).ok();
                let figures = Figures::of_run(&self.journal, id).ok();
                // The steps not started yet, in the runbook's order.
                let started: Vec<&str> = figures
                    .iter()
                    .flat_map(|f| &f.steps)
                    .map(|s| s.step.as_str())
                    .collect();
                let pending: Vec<serde_json::Value> = record
                    .as_ref()
                    .and_then(|r| {
                        crate::runbook::load(
                            &r.run.file,
                            &r.run.runbook_text,
                            &r.run.params,
                            crate::runbook::MissingParams::Placeholder,
                        )
                        .ok()
                    })
                    .map(|loaded| {
                        loaded
                            .runbook
                            .steps
                            .iter()
                            .filter(|s| !started.contains(&s.id.as_str()))
                            .map(|s| {
                                serde_json::json!({
                                    "step": s.id,
                                    "action": s.action.to_string(),
                                    "state": "pending",
                                    "start": null,
                                    "end": null,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                serde_json::json!({
                    "run": id,
                    "binding": t.binding,
                    "runbook": record.as_ref().map(|r| r.run.runbook.clone()),
                    "mode": record.as_ref().map(|r| r.run.mode.clone()),
                    "state": record.as_ref().map(|r| r.state),
                    "started_at": record.as_ref().map(|r| r.run.started_at.clone()),
                    "steps": figures.as_ref().map(|f| f.steps.iter().map(|s| serde_json::json!({
                        "step": s.step,
                        "action": s.action,
                        "state": s.state,
                        "start": s.start,
                        "end": s.end,
                    })).chain(pending).collect::<Vec<_>>()),
                    "timeline_svg": figures.as_ref().map(|f| crate::report::timeline_svg_at(f, Some(now))),
                })
            })
            .collect();
        let verification: Vec<serde_json::Value> = self
            .config
            .jobs
            .iter()
            .map(|job| {
                let results = self.journal.verifications(&job.name).unwrap_or_default();
                let last = results.last();
                let last_success = results
                    .iter()
                    .rev()
                    .find(|r| r["ok"] == true)
                    .and_then(|r| r["started_at"].as_str().map(str::to_string));
                serde_json::json!({
                    "job": job.name,
                    "ok": last.map(|r| r["ok"] == true),
                    "started_at": last.and_then(|r| r["started_at"].as_str()),
                    "duration_s": last.and_then(|r| r["duration_s"].as_f64()),
                    "failed_checks": last.map(|r| r["checks"].as_array().map_or(0, |c| c.iter().filter(|c| c["ok"] != true).count())),
                    "last_success_started_at": last_success,
                })
            })
            .collect();
        let paused = trigger::paused(&self.journal)?;
        Ok(serde_json::json!({
            "generated_at": now.to_string(),
            "version": env!("CARGO_PKG_VERSION"),
            "cluster": self.ha_status(),
            "paused": paused.map(|p| serde_json::json!({
                "by": p.who,
                "at": p.at,
                "reason": p.detail.and_then(|d| d.get("reason").cloned()),
            })),
            "regions": regions,
            "bindings": bindings,
            "runs": runs,
            "exposure": self.exposures,
            "verification": verification,
        }))
    }
}
