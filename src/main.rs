//! The `lifeboat` binary: parses the command line, sets up logging, runs the
//! command, and maps the outcome to the documented exit code.

use std::process::ExitCode;

use clap::Parser;
use lifeboat::cli::{Cli, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon sets up logging once its config is read (it has a say);
    // commands report only what goes wrong.
    if !matches!(cli.command, lifeboat::cli::Command::Daemon { .. }) {
        lifeboat::logging::init(cli.log_format.unwrap_or_default(), "warn");
    }
    match lifeboat::cli::run(cli) {
        Ok(()) => ExitCode::from(Exit::Ok.code()),
        Err(error) => {
            let exit = error.exit();
            if !matches!(error, lifeboat::cli::CliError::Invalid { .. }) {
                eprintln!("lifeboat: {}", lifeboat::diag::causes(&error));
            }
            ExitCode::from(exit.code())
        }
    }
}
