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
                eprintln!("lifeboat: {}", with_causes(&error));
            }
            ExitCode::from(exit.code())
        }
    }
}

/// The error and the causes under it that its own message does not
/// already say (most messages name their cause).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}
