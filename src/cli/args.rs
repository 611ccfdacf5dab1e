//! The command line as clap parses it: every command, its arguments and
//! their documentation (which is also the man pages' and completions').

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::runbook::Mode;

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
    /// After a failover, the failed region back: fence its old primary
    /// (only the runbook's `when: fence` steps).
    Fence,
    /// After a failover, both regions up: rebuild the protection the other
    /// way (only the runbook's `when: reprotect` steps).
    Reprotect,
}

impl From<RunMode> for Mode {
    fn from(mode: RunMode) -> Mode {
        match mode {
            RunMode::Failover => Mode::Failover,
            RunMode::Switchover => Mode::Switchover,
            RunMode::Fence => Mode::Fence,
            RunMode::Reprotect => Mode::Reprotect,
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
    after_help = "Exit codes: 0 ok, 1 run failed, 2 invalid input (nothing changed), 3 internal error, 4 run succeeded with failures (steps with on_failure: continue failed)."
)]
pub struct Cli {
    /// Log format on stderr (default text; the daemon's default is its config's `log.format`).
    #[arg(long, global = true, value_enum, env = "LIFEBOAT_LOG_FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,

    /// Directory of the journal, for runs of your own: overrides the
    /// config's `state_dir`. Without it or a config,
    /// `$XDG_STATE_HOME/lifeboat` (or `~/.local/state/lifeboat`).
    #[arg(long, global = true, env = "LIFEBOAT_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// The daemon's config: where its journal (`state_dir` or `storage`)
    /// and control socket are, and what `daemon`, `exposure` and `verify`
    /// run with. Default /etc/lifeboat/lifeboat.yaml when it exists and no
    /// --state-dir is given.
    #[arg(
        long,
        global = true,
        env = "LIFEBOAT_CONFIG",
        value_name = "FILE",
        alias = "journal-config"
    )]
    pub config: Option<PathBuf>,

    /// The daemon's control socket (default: the config's, else
    /// /run/lifeboat/control.sock). When a daemon answers there, `status`,
    /// `approve`, `reject`, `skip`, `cancel`, `ack`, `pause`, `resume` and
    /// `trigger` go to it; otherwise those that are journal records are left
    /// in the daemon's journal, which it reads when it starts.
    #[arg(long, global = true, env = "LIFEBOAT_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

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
    Drill(DrillArgs),
    /// Remove drill resources whose drill is over or whose process died (tagged lifeboat:drill-run).
    Sweep {
        /// A region to sweep (repeatable); the regions of the journal's drills are always swept.
        #[arg(long = "region")]
        regions: Vec<String>,
    },
    /// Run a runbook (asks for confirmation on a terminal); resumable with --resume RUN.
    Run(RunArgs),
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
        format: ReportFormat,
    },
    /// Each protected resource's RPO exposure now (now minus its newest recovery point in the DR region); exit 1 if any is over target.
    Exposure {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Run backup verification jobs of a config now (exit 1 if a check fails).
    Verify {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The always-on daemon: resumes interrupted runs, serves /metrics and /healthz, refreshes RPO exposure; SIGHUP reloads, SIGTERM stops.
    Daemon {
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
    /// After a failover, both regions up: run the binding's `when: reprotect` steps (the protection rebuilt the other way); once they succeed the binding watches its `reprotected` side (needs the daemon).
    Reprotect {
        /// The binding.
        binding: String,
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

/// Arguments of `lifeboat run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Runbook file.
    #[arg(required_unless_present_any = ["resume", "retry"])]
    pub file: Option<PathBuf>,
    /// Resume an interrupted run from the journal (completed steps are not repeated).
    #[arg(long, value_name = "RUN", conflicts_with = "retry")]
    pub resume: Option<String>,
    /// Re-run a failed or cancelled run (or one that succeeded with
    /// failures) from the journal: the steps that did not succeed (or were
    /// rolled back) go again, observing first; those that succeeded are kept.
    #[arg(long, value_name = "RUN")]
    pub retry: Option<String>,
    /// Parameter value, NAME=VALUE (repeatable); with --resume, the secret ones again.
    #[arg(long = "param", short = 'p', value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Mode.
    #[arg(long, value_enum, default_value_t)]
    pub mode: RunMode,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Print each call the run would make, and make none.
    #[arg(long)]
    pub dry_run: bool,
    /// Most steps running at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How often a step still running says so, with what it awaits and
    /// for how long (default 10s on a terminal, 1m otherwise).
    #[arg(long, value_name = "DURATION")]
    pub progress_every: Option<crate::duration::HumanDuration>,
}

/// Arguments of `lifeboat drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Runbook file.
    pub file: PathBuf,
    /// Parameter value, NAME=VALUE (repeatable).
    #[arg(long = "param", short = 'p', value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Leave the drill's resources for inspection (`lifeboat sweep` removes them later).
    #[arg(long)]
    pub keep: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Most steps running at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How often a step still running says so, with what it awaits and
    /// for how long (default 10s on a terminal, 1m otherwise).
    #[arg(long, value_name = "DURATION")]
    pub progress_every: Option<crate::duration::HumanDuration>,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for tickets and post-mortems.
    #[default]
    Md,
    /// JSON, for programs.
    Json,
    /// One self-contained HTML page with a timeline chart.
    Html,
}
