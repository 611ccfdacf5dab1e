//! The command line: argument parsing, commands, printing, exit codes.
//!
//! Commands return `Ok(())` or a [`CliError`]; [`Exit`] maps each error to a
//! documented exit code, in one exhaustive match.

mod audit;
mod check;
pub(crate) mod commands;
mod control;
mod report;
mod run;

pub use run::RunArgs;

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::runbook::Mode;

pub use commands::run;

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
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::RunFailed => 1,
            Exit::InvalidInput => 2,
            Exit::Internal => 3,
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
    /// The journal could not be written during a run: it stopped.
    #[error(
        "the journal could not be written ({cause}): run {run} stopped at its last journaled step boundary and nothing more was started; once its state directory can be written again (disk space, permissions), `lifeboat run --resume {run}` continues it"
    )]
    RunStopped {
        /// The run.
        run: String,
        /// The journal's error (in the message, so not repeated as a source).
        cause: crate::engine::journal::JournalError,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// Serializing output failed.
    #[error("cannot serialize output: {0}")]
    Serialize(#[from] serde_json::Error),

    /// The journal could not be used.
    #[error(transparent)]
    Journal(#[from] crate::engine::journal::JournalError),
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
    /// The run ended without succeeding (its summary was printed).
    #[error("run {}", .0.state())]
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
        use crate::engine::journal::JournalError;
        match self {
            CliError::Invalid { .. }
            | CliError::Read { .. }
            | CliError::Usage(_)
            | CliError::Refused(_)
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

/// Output format of commands that print tables or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// For humans.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// Modes `lifeboat run` accepts (drills have their own command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum RunMode {
    /// Unplanned: the primary region is failing.
    #[default]
    Failover,
    /// Planned: the primary is still up.
    Switchover,
}

impl From<RunMode> for Mode {
    fn from(mode: RunMode) -> Mode {
        match mode {
            RunMode::Failover => Mode::Failover,
            RunMode::Switchover => Mode::Switchover,
        }
    }
}

/// Which schema to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SchemaKind {
    /// Runbook files.
    #[default]
    Runbook,
    /// The daemon config file.
    Config,
}

/// Disaster recovery for AWS: failover runbooks, drills, backup verification, measured RTO and RPO.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 run failed, 2 invalid input (nothing changed), 3 internal error."
)]
pub struct Cli {
    /// Log format on stderr (default text; the daemon's default is its config's `log.format`).
    #[arg(long, global = true, value_enum, env = "LIFEBOAT_LOG_FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,

    /// Directory of the journal; default `$XDG_STATE_HOME/lifeboat` (or `~/.local/state/lifeboat`).
    #[arg(long, global = true, env = "LIFEBOAT_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A daemon config whose `storage` is `etcd`: `runs`, `show`, `report`,
    /// `audit` and the journal-only requests (when no daemon answers on the
    /// socket) use the journal the daemons share there.
    #[arg(
        long = "journal-config",
        global = true,
        env = "LIFEBOAT_JOURNAL_CONFIG",
        value_name = "FILE"
    )]
    pub journal_config: Option<PathBuf>,

    /// The daemon's control socket. When a daemon listens there, `status`,
    /// `approve`, `reject`, `skip`, `cancel`, `ack`, `pause`, `resume` and
    /// `trigger` go to it; otherwise they act on the journal directly.
    #[arg(long, global = true, env = "LIFEBOAT_SOCKET", value_name = "PATH", default_value = crate::config::DEFAULT_CONTROL_SOCKET)]
    pub socket: PathBuf,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A `--param NAME=VALUE` argument.
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, found `{text}`")),
    }
}

/// lifeboat's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks; every problem is printed as file:line:col (exit 2 if any file is invalid).
    Validate {
        /// Runbook files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show how a runbook would run: waves of parallel steps, the critical path, its budget against the RTO target.
    Plan {
        /// Runbook file.
        file: PathBuf,
        /// Parameter value, NAME=VALUE (repeatable).
        #[arg(long = "param", short = 'p', value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Mode to plan for.
        #[arg(long, value_enum, default_value_t = Mode::Failover)]
        mode: Mode,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Run every step's read-only preflight: would the runbook run now? (exit 1 if any would fail)
    Check {
        /// Runbook file.
        file: PathBuf,
        /// Parameter value, NAME=VALUE (repeatable).
        #[arg(long = "param", short = 'p', value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Mode to check for.
        #[arg(long, value_enum, default_value_t)]
        mode: RunMode,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Print the least IAM policy (JSON) that runs of these runbooks need.
    IamPolicy {
        /// Runbook files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Parameter value, NAME=VALUE (repeatable; applies to every file).
        #[arg(long = "param", short = 'p', value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Mode: `drill` grants what drills need instead of production changes.
        #[arg(long, value_enum, default_value_t = Mode::Failover)]
        mode: Mode,
        /// Print only the policy of this principal: `caller` (the
        /// credentials lifeboat runs with) or the ARN of a role the steps
        /// assume. Without it, runbooks whose steps assume roles get every
        /// principal's policy, grouped.
        #[arg(long, value_name = "caller|ROLE_ARN")]
        role: Option<String>,
        /// Look up, read-only, the account and what the runbooks name by
        /// name (hosted zones, launch templates), and write their ARNs.
        #[arg(long)]
        resolve: bool,
        /// The ARN lifeboat runs as, for the trust policy of each role the
        /// steps assume (with --resolve: the caller's own identity).
        #[arg(long, value_name = "ARN")]
        caller: Option<String>,
    },
    /// Rehearse a runbook without changing production: each action in its drill behaviour, then a teardown of everything the drill made.
    Drill(run::DrillArgs),
    /// Remove drill resources whose drill is over or whose process died (tagged lifeboat:drill-run).
    Sweep {
        /// A region to sweep (repeatable); the regions of the journal's drills are always swept.
        #[arg(long = "region")]
        regions: Vec<String>,
    },
    /// Run a runbook (asks for confirmation on a terminal); resumable with --resume RUN.
    Run(run::RunArgs),
    /// List runs in the journal.
    Runs {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a run: each step's state, attempts, duration, outputs and errors.
    Show {
        /// Run id.
        run: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The run's RTO and RPO against its targets, how each was found, and its timeline.
    Report {
        /// Run id.
        run: String,
        /// Report format.
        #[arg(long, value_enum, default_value_t)]
        format: report::ReportFormat,
    },
    /// Each protected resource's RPO exposure now (now minus its newest recovery point in the DR region); exit 1 if any is over target.
    Exposure {
        /// Config file listing the `protected` resources.
        #[arg(long)]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Run backup verification jobs of a config now (exit 1 if a check fails).
    Verify {
        /// Config file listing the `verify` jobs.
        #[arg(long)]
        config: PathBuf,
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The always-on daemon: resumes interrupted runs, serves /metrics and /healthz, refreshes RPO exposure; SIGHUP reloads, SIGTERM stops.
    Daemon {
        /// Config file.
        #[arg(long, default_value = "/etc/lifeboat/lifeboat.yaml")]
        config: PathBuf,
        /// Accept a config or runbook that others could have changed (group- or
        /// world-writable, or owned by another user); each is logged as an error.
        #[arg(long)]
        insecure_permissions: bool,
    },
    /// Approve the run a binding waits for (BINDING), or a run's waiting approval step or interrupted step (RUN STEP).
    Approve {
        /// A binding waiting for approval, or a run id.
        target: String,
        /// The run's step.
        step: Option<String>,
    },
    /// Decline the run a binding waits for (BINDING), or reject a run's waiting approval step (RUN STEP).
    Reject {
        /// A binding waiting for approval, or a run id.
        target: String,
        /// The run's step.
        step: Option<String>,
    },
    /// The daemon's view: regions and probes, bindings (armed, waiting, cooling down, ready), active runs, the kill switch.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Who did what, when and from what input: runs, approvals, rejections, acks, pause/resume, cancels, config loads.
    Audit {
        /// Only what happened since this RFC 3339 time, or this long ago (`24h`).
        #[arg(long)]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Acknowledge a binding's last run, so automatic runs may follow again after its cooldown.
    Ack {
        /// The binding.
        binding: String,
    },
    /// Stop all automatic triggering (the kill switch; detection goes on). Persisted.
    Pause {
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Allow automatic triggering again.
    Resume,
    /// Start a binding's runbook now, by hand, or a drill of it (needs the daemon).
    Trigger {
        /// The binding.
        binding: String,
        /// Mode.
        #[arg(long, value_enum, default_value_t = Mode::Failover)]
        mode: Mode,
    },
    /// Mark an interrupted step whose effect cannot be observed as done, without re-running it.
    Skip {
        /// Run id.
        run: String,
        /// Step id.
        step: String,
    },
    /// Cancel a run: no new step starts; running steps finish.
    Cancel {
        /// Run id.
        run: String,
    },
    /// Print the JSON Schema (draft-07) of runbooks or of the config file, for editors.
    Schema {
        /// Which schema.
        #[arg(value_enum, default_value_t)]
        kind: SchemaKind,
    },
    /// List the actions a step can take.
    Actions {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Check a daemon config file (exit 2 if invalid).
    CheckConfig {
        /// Config file.
        file: PathBuf,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): lifeboat(1), or a subcommand's
    /// (`lifeboat man run` is lifeboat-run(1)); with `--dir`, write them all.
    Man {
        /// The subcommand whose page to print.
        subcommand: Option<String>,
        /// Write lifeboat.1 and every lifeboat-SUBCOMMAND.1 into this
        /// directory instead (e.g. /usr/share/man/man1).
        #[arg(long, conflicts_with = "subcommand")]
        dir: Option<PathBuf>,
    },
    /// The demo: start a local AWS emulator, seed two regions, run the pilot-light failover, show the result.
    Demo,
}

/// Writes to stdout, treating a closed pipe (`lifeboat schema | head`) as done.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}

/// Writes a line to stderr (diagnostics, warnings).
pub(crate) fn eprint(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Where the journal is: the state directory, or the etcd cluster a daemon
/// config (`--journal-config`) shares it in.
#[derive(Debug, Clone)]
pub struct JournalAt {
    /// The state directory.
    pub dir: PathBuf,
    /// A daemon config naming a shared journal.
    pub config: Option<PathBuf>,
}

impl JournalAt {
    /// The shared journal's settings, when the config names one.
    fn shared(&self) -> Result<Option<crate::config::EtcdSettings>, CliError> {
        let Some(file) = &self.config else {
            return Ok(None);
        };
        match report::load_config(file)?.storage {
            crate::config::Storage::Etcd(settings) => Ok(Some(*settings)),
            crate::config::Storage::Embedded => Ok(None),
        }
    }

    /// Open it to read, or to leave requests.
    pub fn open_client(&self) -> Result<crate::engine::journal::Journal, CliError> {
        use crate::engine::journal::{Access, Journal, JournalError};
        match self.shared()? {
            Some(settings) => {
                let etcd = crate::ha::etcd::Etcd::connect(&settings).map_err(JournalError::from)?;
                Ok(Journal::etcd(crate::ha::store::Store::new(
                    std::sync::Arc::new(etcd),
                )))
            }
            None => Ok(Journal::open(&self.dir, Access::Client)?),
        }
    }

    /// The state directory for a command that executes runs itself, which
    /// a shared journal does not allow (only the elected daemon executes).
    pub fn executor_dir(&self) -> Result<&std::path::Path, CliError> {
        if self.shared()?.is_some() {
            return Err(CliError::Usage(
                "the journal is shared in etcd, where only the elected daemon executes: start runs with `lifeboat trigger BINDING` (or drop --journal-config to run against a local state directory)".into(),
            ));
        }
        Ok(&self.dir)
    }
}
