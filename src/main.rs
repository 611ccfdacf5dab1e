//! The `lifeboat` binary: parses the command line, sets up logging, runs the
//! command, and maps the outcome to the documented exit code.

use std::process::ExitCode;

use clap::Parser;
use lifeboat::cli::{Cli, Exit};
use lifeboat::config::LogFormat;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon reports what it does; commands only what goes wrong.
    let default_level = match cli.command {
        lifeboat::cli::Command::Daemon { .. } => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    match lifeboat::cli::run(cli) {
        Ok(()) => ExitCode::from(Exit::Ok.code()),
        Err(error) => {
            let exit = error.exit();
            if !matches!(error, lifeboat::cli::CliError::Invalid { .. }) {
                let report = anyhow::Error::new(error);
                eprintln!("lifeboat: {report:#}");
            }
            ExitCode::from(exit.code())
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
