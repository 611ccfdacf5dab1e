//! What the daemon does about a declared outage, binding by binding.
//!
//! Everything a decision depends on is read back from the journal's
//! append-only decisions, never kept only in memory: the kill switch (the
//! last `pause` or `resume`), a binding's active run and cooldown (its last
//! `started` run, and whether an `ack` followed), a pending approval (an
//! `awaiting-approval` not yet followed by its outcome). A restarted daemon
//! therefore decides exactly as the one before it would have.

use jiff::Timestamp;

use crate::config::{Binding, Policy};
use crate::journal::{Decision, DecisionKind, Journal, JournalError};

/// Who the daemon's own decisions are recorded as.
pub const DAEMON: &str = "lifeboat daemon";

/// A binding's situation, as the journal tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The `pause` decision in force, if the kill switch is on.
    pub paused: Option<Decision>,
    /// The binding's run that has not ended.
    pub active_run: Option<String>,
    /// Why automatic runs are held back after the last run, if they are.
    pub cooling: Option<String>,
    /// The decision that asked for approval, while it stands.
    pub awaiting: Option<Decision>,
    /// The binding's last run.
    pub last_run: Option<String>,
    /// When the maintenance window it is in closes, if it is in one.
    pub maintenance: Option<Timestamp>,
}

/// The kill switch: the `pause` decision in force, if any.
pub fn paused(journal: &Journal) -> Result<Option<Decision>, JournalError> {
    Ok(journal
        .in_force("")?
        .switch
        .filter(|d| d.kind == DecisionKind::Pause))
}

/// Read `binding`'s situation at `now`: from the decisions still in force
/// (a bounded read, whatever the history) and the last run's record.
pub fn view(journal: &Journal, binding: &Binding, now: Timestamp) -> Result<View, JournalError> {
    let force = journal.in_force(&binding.name)?;
    let mut view = View {
        paused: force
            .switch
            .clone()
            .filter(|d| d.kind == DecisionKind::Pause),
        ..View::default()
    };
    if let Some(started) = &force.started
        && let Some(run) = &started.run
    {
        view.last_run = Some(run.clone());
        let record = journal.run(run)?;
        if record.state.unfinished() {
            view.active_run = Some(run.clone());
        } else if force.ack.as_ref().is_none_or(|a| a.seq <= started.seq) {
            view.cooling = Some(format!(
                "run {run} ({}) has not been acknowledged: `lifeboat ack {}`",
                record.state, binding.name
            ));
        } else if let Some(until) = record
            .finished_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .and_then(|end| end.checked_add(binding.cooldown).ok())
            .filter(|&until| until > now)
        {
            view.cooling = Some(format!("cooldown after run {run} lasts until {until:.0}"));
        }
    }
    view.awaiting = force
        .approval
        .filter(|d| d.kind == DecisionKind::AwaitingApproval);
    view.maintenance = binding.in_maintenance(now);
    Ok(view)
}

/// What to do about a declared outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Start the runbook.
    Start,
    /// Notify and wait for `lifeboat approve`; why, when the policy alone
    /// would have started it.
    AwaitApproval(Option<String>),
    /// Notify only.
    Notify,
    /// Do nothing (but record and notify): the decision's kind and why.
    Blocked(DecisionKind, String),
}

impl Verdict {
    /// The decision's kind as journaled.
    pub fn kind(&self) -> DecisionKind {
        match self {
            Verdict::Start => DecisionKind::Started,
            Verdict::AwaitApproval(_) => DecisionKind::AwaitingApproval,
            Verdict::Notify => DecisionKind::Notified,
            Verdict::Blocked(kind, _) => *kind,
        }
    }
}

/// The health of the region a failover would recover into, as the daemon's
/// probes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No probe watches it: nothing to go by.
    Unwatched,
    /// Every probe of it passing.
    Healthy,
    /// Some of its probes failing, below its quorum (or coming back after an
    /// outage): what they show.
    Unsure(String),
    /// Declared down itself: what its probes show.
    Down(String),
}

/// Decide about a declared outage of `policy`'s binding in situation `view`,
/// the region it would fail into being `recovery`. `failback` says the bound
/// runbook is a failback, which never starts without a human. Nothing fails
/// into a region declared down; an automatic failover into one whose probes
/// are partly failing waits for a human.
pub fn on_outage(policy: Policy, failback: bool, view: &View, recovery: &Recovery) -> Verdict {
    if policy == Policy::Notify {
        return Verdict::Notify;
    }
    if let Some(run) = &view.active_run {
        return Verdict::Blocked(
            DecisionKind::BlockedActiveRun,
            format!("run {run} of this binding is still in progress"),
        );
    }
    if view.awaiting.is_some() {
        return Verdict::Blocked(
            DecisionKind::BlockedAwaitingApproval,
            "an earlier outage is still waiting for `lifeboat approve`".into(),
        );
    }
    if let Some(why) = &view.cooling {
        return Verdict::Blocked(DecisionKind::BlockedCooldown, why.clone());
    }
    if let Some(until) = view.maintenance {
        return Verdict::Blocked(
            DecisionKind::BlockedMaintenance,
            format!(
                "in a maintenance window until {until:.0}; detection goes on, and an outage still declared then is weighed again"
            ),
        );
    }
    if let Some(pause) = &view.paused {
        return Verdict::Blocked(
            DecisionKind::BlockedPaused,
            format!(
                "automatic triggering is paused (by {} at {}): `lifeboat resume`",
                pause.who, pause.at
            ),
        );
    }
    if let Recovery::Down(what) = recovery {
        return Verdict::Blocked(
            DecisionKind::BlockedRecoveryDown,
            format!("the region it would fail into is down too: {what}"),
        );
    }
    let unsure = match recovery {
        Recovery::Unsure(what) => Some(format!("the region it would fail into is unsure: {what}")),
        _ => None,
    };
    match policy {
        Policy::Auto if failback => Verdict::Blocked(
            DecisionKind::BlockedFailback,
            "a failback is never started automatically".into(),
        ),
        Policy::Auto if unsure.is_some() => Verdict::AwaitApproval(unsure),
        Policy::Auto => Verdict::Start,
        Policy::Approve | Policy::Notify => Verdict::AwaitApproval(unsure),
    }
}

/// A decision now, by `who`.
pub fn decision(
    binding: Option<&str>,
    kind: DecisionKind,
    run: Option<&str>,
    who: &str,
    detail: Option<serde_json::Value>,
) -> Decision {
    Decision {
        seq: 0,
        at: crate::engine::now(),
        binding: binding.map(str::to_string),
        kind,
        run: run.map(str::to_string),
        who: who.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Access, NewRun, RunState};
    use std::time::Duration;

    fn binding(cooldown: Duration) -> Binding {
        Binding {
            name: "app".into(),
            region: "us-east-1".into(),
            zone: None,
            runbook: "r.yaml".into(),
            params: Vec::new(),
            policy: Policy::Auto,
            cooldown,
            drill: None,
            max_data_loss: None,
            maintenance: Vec::new(),
            other_side: None,
            reprotected: false,
            protected: Vec::new(),
        }
    }

    fn started(journal: &Journal, run: &str) {
        let record = NewRun {
            id: run.into(),
            runbook: "r".into(),
            file: "r.yaml".into(),
            runbook_sha256: String::new(),
            runbook_text: String::new(),
            params: Vec::new(),
            secret_params: Vec::new(),
            mode: "failover".into(),
            started_by: DAEMON.into(),
            started_at: crate::engine::now(),
        };
        let d = decision(Some("app"), DecisionKind::Started, Some(run), DAEMON, None);
        journal.start_run(&record, &[], Some(&d)).unwrap();
    }

    fn decide(journal: &Journal, binding: Option<&str>, kind: DecisionKind) {
        journal
            .decide(&decision(binding, kind, None, "alice (uid 1000)", None))
            .unwrap();
    }

    #[test]
    fn a_ready_binding_follows_its_policy() {
        let view = View::default();
        assert_eq!(
            on_outage(Policy::Auto, false, &view, &Recovery::Healthy),
            Verdict::Start
        );
        assert_eq!(
            on_outage(Policy::Approve, false, &view, &Recovery::Healthy),
            Verdict::AwaitApproval(None)
        );
        assert_eq!(
            on_outage(Policy::Notify, false, &view, &Recovery::Healthy),
            Verdict::Notify
        );
        assert_eq!(
            on_outage(Policy::Auto, true, &view, &Recovery::Healthy).kind(),
            "blocked-failback"
        );
        assert_eq!(
            on_outage(Policy::Approve, true, &view, &Recovery::Healthy),
            Verdict::AwaitApproval(None)
        );
    }

    #[test]
    fn nothing_fails_into_a_region_down_and_auto_waits_for_a_human_when_it_is_unsure() {
        let view = View::default();
        let down = Recovery::Down("2 of 2 probes failing".into());
        for policy in [Policy::Auto, Policy::Approve] {
            let verdict = on_outage(policy, false, &view, &down);
            assert_eq!(verdict.kind(), "blocked-recovery-down");
            assert!(
                matches!(&verdict, Verdict::Blocked(_, why) if why.contains("2 of 2 probes failing")),
                "{verdict:?}"
            );
        }
        let unsure = Recovery::Unsure("1 of 2 probes failing".into());
        for policy in [Policy::Auto, Policy::Approve] {
            assert!(
                matches!(
                    on_outage(policy, false, &view, &unsure),
                    Verdict::AwaitApproval(Some(why)) if why.contains("1 of 2 probes failing")
                ),
                "{policy:?}"
            );
        }
        // A binding that only notifies still only notifies; an unwatched
        // region is no reason to hold back.
        assert_eq!(
            on_outage(Policy::Notify, false, &view, &down),
            Verdict::Notify
        );
        assert_eq!(
            on_outage(Policy::Auto, false, &view, &Recovery::Unwatched),
            Verdict::Start
        );
    }

    #[test]
    fn nothing_starts_automatically_in_a_maintenance_window() {
        let mut b = binding(Duration::from_secs(3600));
        // Sundays from 02:00 UTC, for two hours.
        b.maintenance = vec![crate::config::Maintenance {
            schedule: "0 2 * * SUN".into(),
            timezone: None,
            duration: Duration::from_secs(7200),
        }];
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        // 2026-12-06 is a Sunday.
        assert_eq!(b.in_maintenance(at("2026-12-06T01:59:59Z")), None);
        let closes = Some(at("2026-12-06T04:00:00Z"));
        assert_eq!(b.in_maintenance(at("2026-12-06T02:00:00Z")), closes);
        assert_eq!(b.in_maintenance(at("2026-12-06T03:59:59Z")), closes);
        assert_eq!(b.in_maintenance(at("2026-12-06T04:00:00Z")), None);
        assert_eq!(b.in_maintenance(at("2026-12-07T03:00:00Z")), None);

        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), Access::Executor).unwrap();
        let v = view(&journal, &b, at("2026-12-06T03:00:00Z")).unwrap();
        assert_eq!(v.maintenance, closes);
        for policy in [Policy::Auto, Policy::Approve] {
            let verdict = on_outage(policy, false, &v, &Recovery::Healthy);
            assert_eq!(verdict.kind(), "blocked-maintenance", "{policy:?}");
            assert!(
                matches!(&verdict, Verdict::Blocked(_, why) if why.contains("until 2026-12-06T04:00:00Z")),
                "{verdict:?}"
            );
        }
        assert_eq!(
            on_outage(Policy::Notify, false, &v, &Recovery::Healthy),
            Verdict::Notify,
            "notifications go on"
        );
        let v = view(&journal, &b, at("2026-12-06T04:00:00Z")).unwrap();
        assert_eq!(
            on_outage(Policy::Auto, false, &v, &Recovery::Healthy),
            Verdict::Start
        );
    }

    #[test]
    fn a_run_then_cooldown_until_ack_then_the_cooldown_period() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), Access::Executor).unwrap();
        let b = binding(Duration::from_secs(3600));
        let now = Timestamp::now();
        started(&journal, "run-1");
        let v = view(&journal, &b, now).unwrap();
        assert_eq!(v.active_run.as_deref(), Some("run-1"));
        assert_eq!(
            on_outage(Policy::Auto, false, &v, &Recovery::Healthy).kind(),
            "blocked-active-run"
        );

        journal
            .set_run_state(
                "run-1",
                RunState::Succeeded,
                Some(&crate::engine::now()),
                None,
            )
            .unwrap();
        let v = view(&journal, &b, now).unwrap();
        assert_eq!(v.active_run, None);
        assert!(v.cooling.as_deref().unwrap().contains("lifeboat ack app"));
        assert_eq!(
            on_outage(Policy::Auto, false, &v, &Recovery::Healthy).kind(),
            "blocked-cooldown"
        );

        decide(&journal, Some("app"), DecisionKind::Ack);
        let v = view(&journal, &b, now).unwrap();
        assert!(
            v.cooling.as_deref().unwrap().contains("lasts until"),
            "{v:?}"
        );
        let later = now.checked_add(Duration::from_secs(3601)).unwrap();
        let v = view(&journal, &b, later).unwrap();
        assert_eq!(v.cooling, None);
        assert_eq!(
            on_outage(Policy::Auto, false, &v, &Recovery::Healthy),
            Verdict::Start
        );
    }

    #[test]
    fn the_kill_switch_is_the_last_pause_or_resume_and_spares_notify() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), Access::Executor).unwrap();
        let b = binding(Duration::ZERO);
        let now = Timestamp::now();
        decide(&journal, None, DecisionKind::Pause);
        let v = view(&journal, &b, now).unwrap();
        assert_eq!(
            on_outage(Policy::Auto, false, &v, &Recovery::Healthy).kind(),
            "blocked-paused"
        );
        assert_eq!(
            on_outage(Policy::Notify, false, &v, &Recovery::Healthy),
            Verdict::Notify
        );
        // An ack of another binding is not a resume.
        decide(&journal, Some("other"), DecisionKind::Ack);
        assert!(paused(&journal).unwrap().is_some());
        decide(&journal, None, DecisionKind::Resume);
        let v = view(&journal, &b, now).unwrap();
        assert_eq!(
            on_outage(Policy::Auto, false, &v, &Recovery::Healthy),
            Verdict::Start
        );
    }

    #[test]
    fn an_approval_stands_until_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), Access::Executor).unwrap();
        let b = binding(Duration::ZERO);
        let now = Timestamp::now();
        decide(&journal, Some("app"), DecisionKind::AwaitingApproval);
        let v = view(&journal, &b, now).unwrap();
        assert!(v.awaiting.is_some());
        assert_eq!(
            on_outage(Policy::Approve, false, &v, &Recovery::Healthy).kind(),
            "blocked-awaiting-approval"
        );
        decide(&journal, Some("app"), DecisionKind::Withdrawn);
        assert_eq!(view(&journal, &b, now).unwrap().awaiting, None);
    }
}
