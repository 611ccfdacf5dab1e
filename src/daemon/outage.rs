//! Outage detection: probe results into each region's detector, and a
//! declared outage (or a recovery) into each binding's decision.

use tracing::{error, info, warn};

use super::{Daemon, load_bound};
use crate::config::Binding;
use crate::detect::RegionState;
use crate::journal::DecisionKind;
use crate::notify::Event;
use crate::probe::Outcome;
use crate::runbook::Mode;
use crate::trigger::{self, DAEMON, Verdict, decision};

impl Daemon {
    /// Feed a probe result to its region's detector, and act on what changes.
    pub(super) fn observe(&mut self, outcome: Outcome) {
        let region = outcome.region.clone();
        let Some(detector) = self.detectors.get_mut(&region) else {
            return;
        };
        let probe = self
            .config
            .regions
            .get(&region)
            .and_then(|r| r.probes.get(outcome.probe))
            .map_or("?", |p| p.name.as_str());
        if !outcome.ok {
            info!(region = %region, probe, detail = %outcome.detail, "probe failed");
        }
        self.metrics
            .record_probe(&region, probe, outcome.ok, outcome.duration_s);
        let change = detector.observe(outcome.probe, outcome.ok, outcome.at.clone());
        self.remember(&region, outcome.probe, outcome.ok);
        self.last.insert((region.clone(), outcome.probe), outcome);
        let Some(change) = change else { return };
        self.metrics.set_region_health(&region, change.to.gauge());
        if self.ha.is_some() {
            // Shared: this daemon's view is published; the leader decides
            // when daemons in enough places agree.
            self.local_change(&region, &change);
            return;
        }
        match &change.declared {
            Some(incident) => {
                let evidence = self.evidence(&region, Some(incident), &change.at);
                warn!(
                    region = %region,
                    incident_start = %incident,
                    failing = ?change.failing,
                    "outage declared: a quorum of probes is failing"
                );
                self.notifier.send(Event {
                    event: "outage-declared".into(),
                    at: change.at.clone(),
                    binding: None,
                    region: Some(region.clone()),
                    run: None,
                    summary: format!("{region} declared down; first failure at {incident}"),
                    detail: Some(evidence.clone()),
                });
                self.outages.insert(region.clone(), evidence.clone());
                self.on_outage(&region, &evidence);
            }
            None => {
                info!(region = %region, from = ?change.from, to = ?change.to, "region health changed");
                if change.to == RegionState::Healthy && self.outages.remove(&region).is_some() {
                    self.on_recovered(&region);
                }
            }
        }
    }

    /// A region was declared down: decide for each of its bindings.
    pub(super) fn on_outage(&mut self, region: &str, evidence: &serde_json::Value) {
        let bindings: Vec<Binding> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.region == region)
            .cloned()
            .collect();
        for binding in bindings {
            self.decide(&binding, evidence);
        }
    }

    /// Bindings whose maintenance window has closed while their region is
    /// still declared down: decide for them now.
    pub(super) fn after_maintenance(&mut self) {
        let now = jiff::Timestamp::now();
        let closed: Vec<String> = self
            .maintenance_held
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in closed {
            self.maintenance_held.remove(&name);
            let Some(binding) = self
                .config
                .bindings
                .iter()
                .find(|b| b.name == name)
                .cloned()
            else {
                continue;
            };
            let Some(evidence) = self.outages.get(&binding.region).cloned() else {
                continue;
            };
            info!(binding = %name, region = %binding.region, "the maintenance window closed with the region still down: deciding now");
            self.decide(&binding, &evidence);
        }
    }

    /// Decide for `binding` on its region's declared outage.
    fn decide(&mut self, binding: &Binding, evidence: &serde_json::Value) {
        let region = binding.region.as_str();
        let (failback, into) = match load_bound(binding) {
            Ok((_, loaded)) => (
                loaded.runbook.strategy == crate::runbook::Strategy::Failback,
                loaded.runbook.regions.map(|r| r.to),
            ),
            Err(why) => {
                let d = decision(
                    Some(&binding.name),
                    DecisionKind::StartFailed,
                    None,
                    DAEMON,
                    Some(serde_json::json!({ "error": why, "evidence": evidence })),
                );
                self.record(
                    &d,
                    Some(region),
                    format!("binding `{}`: {why}", binding.name),
                );
                return;
            }
        };
        let view = match trigger::view(&self.journal, binding, jiff::Timestamp::now()) {
            Ok(v) => v,
            Err(e) => {
                error!(binding = %binding.name, error = %e, "cannot read the binding's state; not acting");
                return;
            }
        };
        self.metrics.set_paused(view.paused.is_some());
        let (recovery, recovery_evidence) = self.recovery(into.as_deref());
        let verdict = trigger::on_outage(binding.policy, failback, &view, &recovery);
        let name = &binding.name;
        let (detail, summary) = match &verdict {
            Verdict::Start => {
                let _ = self.start(
                    binding,
                    Mode::Failover,
                    DAEMON,
                    "automatic: policy auto",
                    Some(evidence.clone()),
                );
                return;
            }
            Verdict::AwaitApproval(why) => (
                serde_json::json!({
                    "reason": why,
                    "evidence": evidence,
                    "recovery_region": recovery_evidence,
                }),
                format!(
                    "{region} is down: binding `{name}` waits for `lifeboat approve {name}`{}",
                    why.as_ref()
                        .map_or(String::new(), |why| format!(" ({why})"))
                ),
            ),
            Verdict::Notify => (
                serde_json::json!({ "evidence": evidence, "recovery_region": recovery_evidence }),
                format!("{region} is down: binding `{name}` only notifies"),
            ),
            Verdict::Blocked(_, why) => (
                serde_json::json!({
                    "reason": why,
                    "evidence": evidence,
                    "recovery_region": recovery_evidence,
                }),
                format!("{region} is down, but binding `{name}` does not run: {why}"),
            ),
        };
        if let Some(until) = view.maintenance
            && verdict.kind() == DecisionKind::BlockedMaintenance
        {
            self.maintenance_held.insert(binding.name.clone(), until);
        }
        let run = match verdict {
            Verdict::Blocked(..) => view.active_run.as_deref(),
            _ => None,
        };
        let d = decision(Some(name), verdict.kind(), run, DAEMON, Some(detail));
        self.record(&d, Some(region), summary);
    }

    /// A region declared down is healthy again: pending approvals lapse.
    pub(super) fn on_recovered(&mut self, region: &str) {
        self.notifier.send(Event {
            event: "region-recovered".into(),
            at: crate::engine::now(),
            binding: None,
            region: Some(region.to_string()),
            run: None,
            summary: format!("{region} is healthy again"),
            detail: None,
        });
        let bindings: Vec<Binding> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.region == region)
            .cloned()
            .collect();
        for binding in bindings {
            let Ok(view) = trigger::view(&self.journal, &binding, jiff::Timestamp::now()) else {
                continue;
            };
            if view.awaiting.is_some() {
                let d = decision(
                    Some(&binding.name),
                    DecisionKind::Withdrawn,
                    None,
                    DAEMON,
                    Some(serde_json::json!({ "reason": "the region recovered before approval" })),
                );
                self.record(
                    &d,
                    Some(region),
                    format!(
                        "{region} recovered: binding `{}` no longer waits for approval",
                        binding.name
                    ),
                );
            }
        }
    }

    /// The health of `region`, a failover's recovery region, as this
    /// daemon sees it (declared down: as the daemons agreed, in a shared
    /// journal), with what its probes show.
    pub(super) fn recovery(&self, region: Option<&str>) -> (trigger::Recovery, serde_json::Value) {
        use trigger::Recovery;
        let watched = region.and_then(|r| Some((r, self.detectors.get(r)?)));
        let Some((region, detector)) = watched else {
            return (
                Recovery::Unwatched,
                serde_json::json!({ "region": region, "state": "unwatched" }),
            );
        };
        let evidence = self.evidence(region, None, &crate::engine::now());
        let total = self
            .config
            .regions
            .get(region)
            .map_or(0, |r| r.probes.len());
        let failing = detector.failing().len();
        // A probe's last check failing counts before its threshold does:
        // regions failing together (this host cut off, say) are declared
        // in some order, and the first must not fail into the second.
        let failed_last = (0..total)
            .filter(|&i| {
                self.last
                    .get(&(region.to_string(), i))
                    .is_some_and(|o| !o.ok)
            })
            .count();
        let state = detector.state();
        let word = serde_json::json!(state);
        let what = format!(
            "{region} is {} with {failing} of {total} probes failing ({failed_last} failed their last check)",
            word.as_str().unwrap_or_default()
        );
        let recovery = if self.outages.contains_key(region) || state == RegionState::Down {
            Recovery::Down(what)
        } else if failing > 0 || failed_last > 0 || state == RegionState::Recovering {
            Recovery::Unsure(what)
        } else {
            Recovery::Healthy
        };
        (recovery, evidence)
    }

    /// What the probes of `region` show now, with the outage's times.
    pub(super) fn evidence(
        &self,
        region: &str,
        incident: Option<&str>,
        at: &str,
    ) -> serde_json::Value {
        let Some(detector) = self.detectors.get(region) else {
            return serde_json::Value::Null;
        };
        let failing = detector.failing();
        let probes: Vec<serde_json::Value> = self
            .config
            .regions
            .get(region)
            .map(|r| r.probes.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let last = self.last.get(&(region.to_string(), i));
                serde_json::json!({
                    "probe": p.name,
                    "failing": failing.contains(&i),
                    "last_ok": last.map(|o| o.ok),
                    "last_detail": last.map(|o| o.detail.clone()),
                    "last_at": last.map(|o| o.at.clone()),
                })
            })
            .collect();
        serde_json::json!({
            "region": region,
            "state": detector.state(),
            "incident_start": incident,
            "declared_at": at,
            "quorum": detector.quorum(),
            "probes": probes,
        })
    }
}
