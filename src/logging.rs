//! Logging with `tracing`: text or JSON lines on stderr, or the system
//! journal's native protocol (each field its own journal field:
//! `journalctl -u lifeboat RUN_ID=...`), filtered by `LIFEBOAT_LOG`
//! (tracing's filter syntax) when set, else by the default the command or
//! the daemon's config gives.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// The journal's `SYSLOG_IDENTIFIER` for lifeboat's entries.
const IDENTIFIER: &str = "lifeboat";

/// Install the global subscriber. A second call does nothing.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
            .or_else(|_| tracing_subscriber::EnvFilter::try_new(default_filter))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let journal = match format {
        LogFormat::Journald => Some(tracing_journald::layer()),
        _ => None,
    };
    if let Some(Ok(layer)) = journal {
        // Field names as they are (RUN_ID, STEP_ID, ERROR), not F_RUN_ID;
        // levels as syslog's priorities (info is 6, not notice).
        use tracing_journald::{Priority, PriorityMappings};
        let layer = layer
            .with_field_prefix(None)
            .with_priority_mappings(PriorityMappings {
                error: Priority::Error,
                warn: Priority::Warning,
                info: Priority::Informational,
                debug: Priority::Debug,
                trace: Priority::Debug,
            })
            .with_syslog_identifier(IDENTIFIER.to_string());
        let _ = tracing_subscriber::registry()
            .with(filter())
            .with(layer)
            .try_init();
        return;
    }
    // Colours only for a terminal: a file or the system journal gets
    // plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text | LogFormat::Journald => builder.try_init(),
    };
    if let Some(Err(e)) = journal {
        tracing::warn!(error = %e, "cannot log to the system journal: logging text to stderr instead");
    }
}
