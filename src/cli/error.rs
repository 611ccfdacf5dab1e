//! What a command can fail with, and the exit code of each.

use std::io;
use std::path::PathBuf;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok,
    /// 1: a run (or a check) ran and failed.
    RunFailed,
    /// 2: invalid input (runbook, config, arguments); nothing was changed.
    InvalidInput,
    /// 3: an internal error.
    Internal,
    /// 4: a run ran to its end, but steps allowed to fail
    /// (`on_failure: continue`) failed.
    SucceededWithFailures,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::RunFailed => 1,
            Exit::InvalidInput => 2,
            Exit::Internal => 3,
            Exit::SucceededWithFailures => 4,
        }
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Input files had problems; they were printed already.
    #[error("{count} invalid file(s)")]
    Invalid {
        /// How many files were refused.
        count: usize,
    },
    /// An input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A command-line argument is wrong in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// The daemon (or the journal, without one) refused the request.
    #[error("{0}")]
    Refused(String),
    /// Backup verification found failing checks.
    #[error("{0} verification check(s) failed")]
    VerifyFailed(usize),
    /// A drill's teardown could not remove everything.
    #[error("the drill teardown met {0} error(s) (listed above); `lifeboat sweep` retries")]
    Teardown(usize),
    /// The command needs the daemon, and it cannot be reached.
    #[error("cannot reach the daemon at {socket}: {reason}")]
    NoDaemon {
        /// The control socket tried.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
    /// No daemon answers and there is no journal to leave a request in.
    #[error(
        "no daemon answers on {} ({why}), and {} holds no journal: nothing was recorded. A daemon's journal and socket are found from its config: give --config FILE (or set LIFEBOAT_CONFIG)",
        socket.display(),
        dir.display()
    )]
    NoJournal {
        /// The control socket tried.
        socket: PathBuf,
        /// Why no daemon answered.
        why: String,
        /// Where a journal was looked for.
        dir: PathBuf,
    },
    /// The daemon's journal cannot be read by this user, and no daemon
    /// answers to read it for them.
    #[error(
        "cannot read the daemon's journal in {} (it is the service user's alone), and {why}: start the daemon, whose socket members of the `lifeboat` group may use, or run this as the `lifeboat` user",
        dir.display()
    )]
    Unreadable {
        /// The state directory.
        dir: PathBuf,
        /// Why the daemon could not read it for us.
        why: String,
    },
    /// The journal could not be written during a run: it stopped.
    #[error(
        "the journal could not be written ({cause}): run {run} stopped at its last journaled step boundary and nothing more was started; once its state directory can be written again (disk space, permissions), `lifeboat run --resume {run}` continues it"
    )]
    RunStopped {
        /// The run.
        run: String,
        /// The journal's error (in the message, so not repeated as a source).
        cause: crate::journal::JournalError,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// Serializing output failed.
    #[error("cannot serialize output: {0}")]
    Serialize(#[from] serde_json::Error),

    /// The journal could not be used.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The engine stopped before the run ended.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The daemon stopped on an error.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The demo could not set up its environment.
    #[error("demo: {0}")]
    Demo(String),
    /// The run ended without succeeding, or succeeded with failures (its
    /// summary was printed).
    #[error("run {}", .0.headline())]
    RunFailed(crate::engine::RunOutcome),
    /// Protected resources are over their RPO target, without a recovery
    /// point, or unreadable.
    #[error(
        "{0} protected resource(s) are over their RPO target, have no recovery point, or could not be read"
    )]
    ExposureOverTarget(usize),
    /// Preflight checks found steps that would fail.
    #[error("{0} preflight check(s) would fail: the runbook could not run to the end now")]
    CheckFailed(usize),
    /// A read-only lookup in AWS failed (`iam-policy --resolve`).
    #[error("{0}")]
    Lookup(String),
}

impl CliError {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        use crate::engine::EngineError;
        use crate::journal::JournalError;
        match self {
            CliError::Invalid { .. }
            | CliError::Read { .. }
            | CliError::Usage(_)
            | CliError::Refused(_)
            | CliError::NoJournal { .. }
            | CliError::Unreadable { .. }
            | CliError::Engine(EngineError::Unsupported(_))
            | CliError::Journal(
                JournalError::Locked { .. }
                | JournalError::UnknownRun(_)
                | JournalError::TooNew { .. },
            )
            | CliError::Daemon(
                crate::daemon::DaemonError::Read { .. }
                | crate::daemon::DaemonError::Invalid { .. }
                | crate::daemon::DaemonError::Listen { .. }
                | crate::daemon::DaemonError::Control(_)
                | crate::daemon::DaemonError::Insecure(_)
                | crate::daemon::DaemonError::Journal(JournalError::Locked { .. }),
            ) => Exit::InvalidInput,
            CliError::RunFailed(crate::engine::RunOutcome::SucceededWithFailures(_)) => {
                Exit::SucceededWithFailures
            }
            CliError::RunFailed(_)
            | CliError::CheckFailed(_)
            | CliError::ExposureOverTarget(_)
            | CliError::Teardown(_)
            | CliError::VerifyFailed(_)
            | CliError::Lookup(_) => Exit::RunFailed,
            CliError::Journal(_)
            | CliError::Engine(EngineError::Journal(_))
            | CliError::RunStopped { .. }
            | CliError::Output(_)
            | CliError::Serialize(_)
            | CliError::Runtime(_)
            | CliError::Daemon(_)
            | CliError::NoDaemon { .. }
            | CliError::Demo(_) => Exit::Internal,
        }
    }
}
