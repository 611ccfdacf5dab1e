//! The closed vocabularies of the journal's records: run and step states,
//! phases, marks, requests and decisions. Each is an enum written as the
//! same text it always was (in SQLite, in etcd's JSON, in `--output json`),
//! so old journals read as before and a word the code does not know is a
//! read error, never a silently different state.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A word that is not one of a vocabulary's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{word}` is not a {what} (one of: {known})")]
pub struct UnknownWord {
    /// The word read.
    pub word: String,
    /// The vocabulary.
    pub what: &'static str,
    /// Its words.
    pub known: String,
}

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Its word, as journaled.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(word: &str) -> Result<$name, UnknownWord> {
                match word {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownWord {
                        word: word.to_string(),
                        what: $what,
                        known: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<$name> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownWord| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

vocabulary! {
    /// Where a run is.
    RunState ("run state") {
        /// Executing (or interrupted while executing: resumable).
        Running = "running",
        /// Every step in this mode succeeded or was skipped as planned.
        Succeeded = "succeeded",
        /// It ran to its end, but steps marked `on_failure: continue`
        /// failed (the run's error names them).
        SucceededWithFailures = "succeeded-with-failures",
        /// A step failed and the run stopped.
        Failed = "failed",
        /// A human cancelled it.
        Cancelled = "cancelled",
        /// Waiting for a human's decision on a step it cannot safely
        /// re-enter (`approve` re-runs it, `skip` marks it done).
        Paused = "paused",
    }
}

impl RunState {
    /// Whether it has not ended: it resumes when its executor restarts.
    pub fn unfinished(self) -> bool {
        matches!(self, RunState::Running | RunState::Paused)
    }

    /// Whether it ran to its end: succeeded, with or without steps that
    /// were allowed to fail.
    pub fn completed(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::SucceededWithFailures)
    }
}

vocabulary! {
    /// The state a step's transition enters.
    StepState ("step state") {
        /// An attempt started (durable before the action is called).
        Running = "running",
        /// An attempt failed retryably; the next one waits its backoff.
        Retrying = "retrying",
        /// Set going again by a retry of its ended run (`lifeboat run
        /// --retry`): no attempt is in flight; the next starts afresh.
        Queued = "queued",
        /// Waiting for a human (an approval step).
        Waiting = "waiting",
        /// Interrupted where its action cannot observe its own effect:
        /// waits for `approve` (re-run) or `skip` (mark done).
        NeedsDecision = "needs-decision",
        /// Its action failed for good; its fallback is starting.
        FallingBack = "falling-back",
        /// Done.
        Succeeded = "succeeded",
        /// Failed for good.
        Failed = "failed",
        /// Not run: left out of this mode, a dependency failed, skipped by
        /// a human, or the run was cancelled.
        Skipped = "skipped",
    }
}

vocabulary! {
    /// Which part of a step a transition or a call belongs to.
    Phase ("phase") {
        /// The step's action.
        Main = "main",
        /// Its fallback, after the action failed.
        Fallback = "fallback",
        /// Its rollback, undoing it after a later failure.
        Rollback = "rollback",
        /// The recovery-point reading the engine takes before the step
        /// (calls only).
        RecoveryPoint = "recovery_point",
    }
}

vocabulary! {
    /// What a mark of a run's timeline marks.
    MarkKind ("mark") {
        /// When the incident began (the first failed probe).
        IncidentStart = "incident_start",
        /// When the outage was declared.
        OutageDeclared = "outage_declared",
        /// The recovery point read for RPO.
        RecoveryPoint = "recovery_point",
        /// A drill's teardown.
        Teardown = "teardown",
        /// The most data the run may lose without a human (a binding's
        /// `max_data_loss`): a promotion past it waits for approval.
        DataLossLimit = "data_loss_limit",
        /// A human let a promotion past the data-loss limit go on.
        DataLossAccepted = "data_loss_accepted",
    }
}

vocabulary! {
    /// What a request left for the executor asks.
    RequestKind ("request") {
        /// Let an approval step (or a step needing a decision) go on.
        Approve = "approve",
        /// Refuse an approval step.
        Reject = "reject",
        /// Mark a step done without running it.
        Skip = "skip",
        /// Stop the run.
        Cancel = "cancel",
    }
}

impl DecisionKind {
    /// Whether it records an outage not acted upon: blocked, or a start
    /// that failed.
    pub fn held_back(self) -> bool {
        matches!(
            self,
            DecisionKind::BlockedPaused
                | DecisionKind::BlockedCooldown
                | DecisionKind::BlockedActiveRun
                | DecisionKind::BlockedAwaitingApproval
                | DecisionKind::BlockedFailback
                | DecisionKind::BlockedRecoveryDown
                | DecisionKind::BlockedMaintenance
                | DecisionKind::StartFailed
        )
    }
}

vocabulary! {
    /// What the daemon decided, or what a human asked of it.
    DecisionKind ("decision") {
        /// A run was started for a declared outage (or by hand).
        Started = "started",
        /// A drill was started (on its schedule, or by hand).
        StartedDrill = "started-drill",
        /// A run waits for `lifeboat approve`.
        AwaitingApproval = "awaiting-approval",
        /// The binding only notifies.
        Notified = "notified",
        /// Not started: the kill switch is on.
        BlockedPaused = "blocked-paused",
        /// Not started: the binding is cooling down after a run.
        BlockedCooldown = "blocked-cooldown",
        /// Not started: a run of the binding is in progress.
        BlockedActiveRun = "blocked-active-run",
        /// Not started: an earlier outage still waits for approval.
        BlockedAwaitingApproval = "blocked-awaiting-approval",
        /// Not started: a failback never starts automatically.
        BlockedFailback = "blocked-failback",
        /// Not started: the region it would fail into is down too.
        BlockedRecoveryDown = "blocked-recovery-down",
        /// Not started: the binding is in a maintenance window.
        BlockedMaintenance = "blocked-maintenance",
        /// Starting failed.
        StartFailed = "start-failed",
        /// A human approved a pending run.
        Approved = "approved",
        /// A human rejected a pending run.
        Rejected = "rejected",
        /// A pending run was withdrawn: the region recovered first.
        Withdrawn = "withdrawn",
        /// A human acknowledged a finished run, re-arming the binding.
        Ack = "ack",
        /// The kill switch was turned on.
        Pause = "pause",
        /// The kill switch was turned off.
        Resume = "resume",
        /// A human triggered a binding's runbook.
        Trigger = "trigger",
        /// A reprotect run succeeded: the binding now watches its other side.
        Reprotected = "reprotected",
        /// This daemon was elected leader.
        Elected = "elected",
        /// A daemon started (with its config).
        DaemonStart = "daemon-start",
        /// A config was reloaded.
        ConfigReload = "config-reload",
        /// A reload was refused: the config had problems.
        ConfigReloadRefused = "config-reload-refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself_and_an_unknown_one_is_refused() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>(), Ok(*s));
        }
        for s in StepState::ALL {
            assert_eq!(s.as_str().parse::<StepState>(), Ok(*s));
        }
        for d in DecisionKind::ALL {
            assert_eq!(d.as_str().parse::<DecisionKind>(), Ok(*d));
        }
        let e = "done".parse::<StepState>().unwrap_err();
        assert!(e.to_string().contains("`done` is not a step state"), "{e}");
        assert_eq!(
            serde_json::to_string(&StepState::FallingBack).unwrap(),
            "\"falling-back\""
        );
        assert_eq!(
            serde_json::from_str::<Phase>("\"rollback\"").unwrap(),
            Phase::Rollback
        );
        assert!(serde_json::from_str::<Phase>("\"sideways\"").is_err());
    }
}
