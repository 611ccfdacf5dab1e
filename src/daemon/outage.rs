//! Outage detection: probe results into each region's detector, and a
//! declared outage (or a recovery) into each binding's decision.

use tracing::{error, info, warn};

use super::{Daemon, Scope, load_bound};
use crate::config::Binding;
use crate::detect::{RegionState, Transition};
use crate::journal::DecisionKind;
use crate::notify::Event;
use crate::probe::Outcome;
use crate::runbook::Mode;
use crate::trigger::{self, DAEMON, Verdict, decision};

impl Daemon {
    /// Feed a probe result to its region's detector and, when the probe
    /// watches a zone, to the zone's; act on what changes.
    pub(super) fn observe(&mut self, outcome: Outcome) {
        let region = outcome.region.clone();
        if !self.detectors.contains_key(&region) {
            return;
        }
        let spec = self
            .config
            .regions
            .get(&region)
            .and_then(|r| r.probes.get(outcome.probe));
        let probe = spec.map_or("?", |p| p.name.as_str()).to_string();
        let zone = spec.and_then(|p| p.zone.clone());
        if !outcome.ok {
            info!(region = %region, probe, detail = %outcome.detail, "probe failed");
        }
        self.metrics
            .record_probe(&region, &probe, outcome.ok, outcome.duration_s);
        let mut changes = Vec::new();
        for key in std::iter::once(region.clone()).chain(zone) {
            let Some(local) = self
                .scopes
                .get(&key)
                .and_then(|s| s.probes.iter().position(|&i| i == outcome.probe))
            else {
                continue;
            };
            if let Some(detector) = self.detectors.get_mut(&key)
                && let Some(change) = detector.observe(local, outcome.ok, outcome.at.clone())
            {
                changes.push((key, change));
            }
        }
        self.remember(&region, outcome.probe, outcome.ok);
        self.last.insert((region.clone(), outcome.probe), outcome);
        for (scope, change) in changes {
            self.changed(&scope, &change);
        }
    }

    /// Whether `region` is declared down (or its detector says it is).
    fn region_down(&self, region: &str) -> bool {
        self.outages.contains_key(region)
            || self
                .detectors
                .get(region)
                .is_some_and(|d| d.state() == RegionState::Down)
    }

    /// A scope's state changed: export it, and declare or end its outage.
    fn changed(&mut self, scope: &str, change: &Transition<String>) {
        let Some(Scope { region, zone, .. }) = self.scopes.get(scope).cloned() else {
            return;
        };
        match &zone {
            None => self.metrics.set_region_health(&region, change.to.gauge()),
            Some(z) => self.metrics.set_zone_health(&region, z, change.to.gauge()),
        }
        if self.ha.is_some() {
            // Shared: this daemon's view is published; the leader decides
            // when daemons in enough places agree.
            self.local_change(scope, change);
            return;
        }
        match &change.declared {
            Some(incident) => {
                if zone.is_some() && self.region_down(&region) {
                    warn!(zone = %scope, region = %region, "the zone's probes are failing, but its region is declared down: the region's bindings decide");
                    return;
                }
                let evidence = self.evidence(scope, Some(incident), &change.at);
                warn!(
                    scope = %scope,
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
                    summary: match &zone {
                        None => format!("{region} declared down; first failure at {incident}"),
                        Some(z) => format!(
                            "{z} (an Availability Zone of {region}) declared down while the rest of the region answers; first failure at {incident}"
                        ),
                    },
                    detail: Some(evidence.clone()),
                });
                self.outages.insert(scope.to_string(), evidence.clone());
                self.on_outage(scope, &evidence);
            }
            None => {
                info!(scope = %scope, from = ?change.from, to = ?change.to, "health changed");
                if change.to == RegionState::Healthy && self.outages.remove(scope).is_some() {
                    self.on_recovered(scope);
                }
            }
        }
    }

    /// A region (or a zone) was declared down: decide for each of its
    /// bindings (a zone's bindings name the zone).
    pub(super) fn on_outage(&mut self, scope: &str, evidence: &serde_json::Value) {
        let bindings: Vec<Binding> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.scope() == scope)
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
            let Some(evidence) = self.outages.get(binding.scope()).cloned() else {
                continue;
            };
            info!(binding = %name, scope = %binding.scope(), "the maintenance window closed with its region (or zone) still down: deciding now");
            self.decide(&binding, &evidence);
        }
    }

    /// Decide for `binding` on its region's (or zone's) declared outage.
    fn decide(&mut self, binding: &Binding, evidence: &serde_json::Value) {
        let region = binding.region.as_str();
        let scope = binding.scope();
        let (failback, into) = match load_bound(binding) {
            Ok((_, loaded)) => (
                loaded.runbook.strategy == crate::runbook::Strategy::Failback,
                loaded
                    .runbook
                    .regions
                    .map(|r| r.recovery().map(str::to_string).collect::<Vec<_>>())
                    .unwrap_or_default(),
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
        let (recovery, recovery_evidence) = self.recovery_of_all(&into, binding.zone.as_deref());
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
                    "{scope} is down: binding `{name}` waits for `lifeboat approve {name}`{}",
                    why.as_ref()
                        .map_or(String::new(), |why| format!(" ({why})"))
                ),
            ),
            Verdict::Notify => (
                serde_json::json!({ "evidence": evidence, "recovery_region": recovery_evidence }),
                format!("{scope} is down: binding `{name}` only notifies"),
            ),
            Verdict::Blocked(_, why) => (
                serde_json::json!({
                    "reason": why,
                    "evidence": evidence,
                    "recovery_region": recovery_evidence,
                }),
                format!("{scope} is down, but binding `{name}` does not run: {why}"),
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

    /// A region (or zone) declared down is healthy again: pending
    /// approvals lapse.
    pub(super) fn on_recovered(&mut self, scope: &str) {
        let region = self
            .scopes
            .get(scope)
            .map_or(scope.to_string(), |s| s.region.clone());
        let region = region.as_str();
        self.notifier.send(Event {
            event: "region-recovered".into(),
            at: crate::engine::now(),
            binding: None,
            region: Some(region.to_string()),
            run: None,
            summary: format!("{scope} is healthy again"),
            detail: None,
        });
        let bindings: Vec<Binding> = self
            .config
            .bindings
            .iter()
            .filter(|b| b.scope() == scope)
            .cloned()
            .collect();
        for binding in bindings {
            self.fence(&binding);
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
                        "{scope} recovered: binding `{}` no longer waits for approval",
                        binding.name
                    ),
                );
            }
        }
    }

    /// The binding's region is back: when the binding's last run was a
    /// failover that succeeded and its runbook has `when: fence` steps, fence
    /// the old primary now (unless the binding only notifies), so that two
    /// primaries never take writes. A fence run is not held by the cooldown
    /// or an unacknowledged run: it protects, it does not move traffic.
    pub(super) fn fence(&mut self, binding: &Binding) {
        let Ok((_, loaded)) = load_bound(binding) else {
            return;
        };
        if !loaded.runbook.steps.iter().any(|s| s.runs_in(Mode::Fence)) {
            return;
        }
        let Ok(decisions) = self.journal.decisions(Some(&binding.name)) else {
            return;
        };
        // The binding's last run, fence or failover (drills aside).
        let last = decisions
            .iter()
            .rev()
            .filter(|d| d.kind == DecisionKind::Started)
            .find_map(|d| d.run.clone());
        let Some(run) = last else { return };
        let Ok(record) = self.journal.run(&run) else {
            return;
        };
        let failed_over = record.run.mode == "failover"
            && matches!(
                record.state,
                crate::journal::RunState::Succeeded
                    | crate::journal::RunState::SucceededWithFailures
            );
        if !failed_over {
            return;
        }
        let name = &binding.name;
        let scope = binding.scope();
        if binding.policy == crate::config::Policy::Notify {
            self.notifier.send(Event {
                event: "fence-needed".into(),
                at: crate::engine::now(),
                binding: Some(name.clone()),
                region: Some(binding.region.clone()),
                run: Some(run.clone()),
                summary: format!(
                    "{scope} is back after run {run}: binding `{name}` only notifies; fence its old primary with `lifeboat trigger {name} --mode fence`"
                ),
                detail: None,
            });
            return;
        }
        let _ = self.start(
            binding,
            Mode::Fence,
            DAEMON,
            &format!(
                "automatic: {scope} is back after failover run {run}; fencing its old primary"
            ),
            None,
        );
    }

    /// The health of every region a failover recovers into, as one: down
    /// when any is, unsure when any is, unwatched when any is, else
    /// healthy; the evidence of each (one region: its own).
    fn recovery_of_all(
        &self,
        regions: &[String],
        leaves: Option<&str>,
    ) -> (trigger::Recovery, serde_json::Value) {
        use trigger::Recovery;
        if regions.len() <= 1 {
            return self.recovery(regions.first().map(String::as_str), leaves);
        }
        let each: Vec<(Recovery, serde_json::Value)> = regions
            .iter()
            .map(|r| self.recovery(Some(r), leaves))
            .collect();
        let said = |pick: fn(&Recovery) -> Option<&String>| {
            let words: Vec<&str> = each
                .iter()
                .filter_map(|(r, _)| pick(r).map(String::as_str))
                .collect();
            (!words.is_empty()).then(|| words.join("; "))
        };
        let down = said(|r| match r {
            Recovery::Down(w) => Some(w),
            _ => None,
        });
        let unsure = said(|r| match r {
            Recovery::Unsure(w) => Some(w),
            _ => None,
        });
        let recovery = match (down, unsure) {
            (Some(w), _) => Recovery::Down(w),
            (None, Some(w)) => Recovery::Unsure(w),
            (None, None) if each.iter().any(|(r, _)| *r == Recovery::Unwatched) => {
                Recovery::Unwatched
            }
            (None, None) => Recovery::Healthy,
        };
        let evidence = serde_json::Value::Array(each.into_iter().map(|(_, e)| e).collect());
        (recovery, evidence)
    }

    /// The health of `region`, a failover's recovery region, as this
    /// daemon sees it (declared down: as the daemons agreed, in a shared
    /// journal), with what its probes show. A zonal failover recovers into
    /// the rest of its region: the probes of the zone it `leaves` do not
    /// count.
    pub(super) fn recovery(
        &self,
        region: Option<&str>,
        leaves: Option<&str>,
    ) -> (trigger::Recovery, serde_json::Value) {
        use trigger::Recovery;
        let watched = region.and_then(|r| Some((r, self.detectors.get(r)?)));
        let Some((region, detector)) = watched else {
            return (
                Recovery::Unwatched,
                serde_json::json!({ "region": region, "state": "unwatched" }),
            );
        };
        let mut evidence = self.evidence(region, None, &crate::engine::now());
        let specs = self
            .config
            .regions
            .get(region)
            .map(|r| r.probes.as_slice())
            .unwrap_or_default();
        let counted: Vec<usize> = (0..specs.len())
            .filter(|&i| leaves.is_none() || specs[i].zone.as_deref() != leaves)
            .collect();
        let total = counted.len();
        let failing_now = detector.failing();
        let failing = counted.iter().filter(|i| failing_now.contains(i)).count();
        // A probe's last check failing counts before its threshold does:
        // regions failing together (this host cut off, say) are declared
        // in some order, and the first must not fail into the second.
        let failed_last = counted
            .iter()
            .filter(|&&i| {
                self.last
                    .get(&(region.to_string(), i))
                    .is_some_and(|o| !o.ok)
            })
            .count();
        let state = detector.state();
        let word = serde_json::json!(state);
        let what = match leaves {
            None => format!(
                "{region} is {} with {failing} of {total} probes failing ({failed_last} failed their last check)",
                word.as_str().unwrap_or_default()
            ),
            Some(zone) => format!(
                "the rest of {region} (outside {zone}) has {failing} of {total} probes failing ({failed_last} failed their last check)"
            ),
        };
        if let Some(zone) = leaves {
            evidence["outside_zone"] = serde_json::json!(zone);
        }
        let recovery = if self.outages.contains_key(region) || state == RegionState::Down {
            Recovery::Down(what)
        } else if failing > 0
            || failed_last > 0
            || (leaves.is_none() && state == RegionState::Recovering)
        {
            Recovery::Unsure(what)
        } else {
            Recovery::Healthy
        };
        (recovery, evidence)
    }

    /// What the probes of `scope` (a region, or a zone of one) show now,
    /// with the outage's times.
    pub(super) fn evidence(
        &self,
        scope: &str,
        incident: Option<&str>,
        at: &str,
    ) -> serde_json::Value {
        let (Some(detector), Some(watch)) = (self.detectors.get(scope), self.scopes.get(scope))
        else {
            return serde_json::Value::Null;
        };
        let failing = detector.failing();
        let specs = self
            .config
            .regions
            .get(&watch.region)
            .map(|r| r.probes.as_slice())
            .unwrap_or_default();
        let probes: Vec<serde_json::Value> = watch
            .probes
            .iter()
            .enumerate()
            .filter_map(|(j, &i)| {
                let p = specs.get(i)?;
                let last = self.last.get(&(watch.region.clone(), i));
                Some(serde_json::json!({
                    "probe": p.name,
                    "zone": p.zone,
                    "failing": failing.contains(&j),
                    "last_ok": last.map(|o| o.ok),
                    "last_detail": last.map(|o| o.detail.clone()),
                    "last_at": last.map(|o| o.at.clone()),
                }))
            })
            .collect();
        serde_json::json!({
            "region": watch.region,
            "zone": watch.zone,
            "state": detector.state(),
            "incident_start": incident,
            "declared_at": at,
            "quorum": detector.quorum(),
            "probes": probes,
        })
    }
}
