//! The command line: argument parsing, commands, printing, exit codes.
//!
//! Commands return `Ok(())` or a [`CliError`]; [`Exit`] maps each error to a
//! documented exit code, in one exhaustive match.
//!
//! - `args`: what clap parses; `error`: `CliError` and `Exit`;
//! - `shared`: what every command needs (journal location, who is asking,
//!   runbook and config loading, how a run is shown, printing);
//! - one file per group of commands: `run` (`run`, `drill`, `sweep`,
//!   `demo`), `history` (`runs`, `show`), `report` (`report`, `exposure`,
//!   `verify`), `check`, `control` (the daemon's commands), `audit`,
//!   `runbooks` (the offline ones);
//! - here: the dispatch, the only place that knows every command file.
//!
//! A command file uses `args`, `error` and `shared`, never another command
//! file (checked by the suite).

mod args;
mod audit;
mod check;
mod control;
mod error;
mod history;
mod report;
mod run;
mod runbooks;
mod shared;

use std::path::Path;

pub use args::{Cli, Command, DrillArgs, Output, RunArgs, RunMode, SchemaKind, parse_param};
pub use error::{CliError, Exit};
pub use shared::JournalAt;

use crate::control::Request;
use shared::eprint;

/// `lifeboat daemon`: check the config (refusing to start on any problem),
/// then run until stopped.
fn daemon(
    path: &Path,
    log_format: Option<crate::config::LogFormat>,
    insecure: bool,
) -> Result<(), CliError> {
    let config = crate::daemon::load_config(path).map_err(|(e, problems)| {
        for p in &problems {
            eprint(&p.to_string());
        }
        match e {
            crate::daemon::DaemonError::Invalid { count, .. } => CliError::Invalid { count },
            other => CliError::Daemon(other),
        }
    })?;
    crate::logging::init(
        log_format.unwrap_or(config.log_format),
        config.log_level.as_deref().unwrap_or("info"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(crate::daemon::serve(path, config, insecure))?;
    Ok(())
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let at = JournalAt::new(cli.state_dir, cli.config, cli.socket);
    match cli.command {
        Command::Run(args) => run::run(&at.executor_dir()?, args),
        Command::Drill(args) => run::drill(&at.executor_dir()?, args),
        Command::Sweep { regions } => run::sweep(&at.executor_dir()?, &regions),
        Command::Runs { output } => history::runs(&at, output),
        Command::Show { run, output } => history::show(&at, &run, output),
        Command::Report { run, format } => report::report(&at, &run, format),
        Command::Exposure { output } => report::exposure(&at, output),
        Command::Verify { job, output } => {
            report::verify(at.required_config()?, job.as_deref(), output)
        }
        Command::Daemon {
            insecure_permissions,
        } => daemon(
            at.config
                .as_deref()
                .unwrap_or(Path::new(crate::config::DEFAULT_CONFIG)),
            cli.log_format,
            insecure_permissions,
        ),
        Command::Approve { target, step } => control::send(&at, Request::Approve { target, step }),
        Command::Reject { target, step } => control::send(&at, Request::Reject { target, step }),
        Command::Skip { run, step } => control::send(&at, Request::Skip { run, step }),
        Command::Cancel { run } => control::send(&at, Request::Cancel { run }),
        Command::Ack { binding } => control::send(&at, Request::Ack { binding }),
        Command::Pause { reason } => control::send(&at, Request::Pause { reason }),
        Command::Resume => control::send(&at, Request::Resume),
        Command::Trigger { binding, mode } => {
            control::send(&at, Request::Trigger { binding, mode })
        }
        Command::Reprotect { binding } => control::send(
            &at,
            Request::Trigger {
                binding,
                mode: crate::runbook::Mode::Reprotect,
            },
        ),
        Command::Audit { since, output } => audit::audit(&at, since.as_deref(), output),
        Command::Status { output } => control::status(&at, output),
        Command::Validate { files, output } => runbooks::validate(&files, output),
        Command::Check {
            file,
            params,
            mode,
            output,
        } => check::check(&file, &params, mode.into(), output),
        Command::Plan {
            file,
            params,
            mode,
            output,
        } => runbooks::plan(&file, &params, mode, output),
        Command::Schema { kind } => runbooks::schema(kind),
        Command::Actions { output } => runbooks::actions(output),
        Command::IamPolicy {
            files,
            params,
            mode,
            role,
            resolve,
            caller,
        } => runbooks::iam_policy(&files, &params, mode, role.as_deref(), resolve, caller),
        Command::CheckConfig { file } => runbooks::check_config(&file),
        Command::Completions { shell } => runbooks::completions(shell),
        Command::Man { subcommand, dir } => runbooks::man(subcommand.as_deref(), dir.as_deref()),
        Command::Demo => run::demo(),
    }
}
