//! What the daemon is to its host system: the config file it will load
//! (and whose permissions it checks), systemd's notify socket and
//! watchdog.

use std::path::Path;
use std::time::Duration;

use tracing::{error, warn};

use super::DaemonError;
use crate::config::{self, Config};
use crate::diag::Diagnostic;

/// The effective uid of this process (the owner of its `/proc/self`).
pub(super) fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// What is wrong with `path`'s ownership and mode, like sshd's StrictModes:
/// it must be owned by root or by the daemon's own user, and writable by
/// neither its group nor others.
pub(super) fn unsafe_file(path: &Path, own: Option<u32>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "{} is writable by its group or by others (mode {mode:04o}); `chmod go-w` it",
            path.display()
        ));
    }
    if meta.uid() != 0 && Some(meta.uid()) != own {
        return Some(format!(
            "{} is owned by uid {}, neither root nor the daemon's own user{}",
            path.display(),
            meta.uid(),
            own.map(|u| format!(" (uid {u})")).unwrap_or_default()
        ));
    }
    None
}

/// Check the config file and every bound runbook; with `insecure`, log
/// each problem loudly and go on.
pub fn check_permissions(
    config_path: &Path,
    config: &Config,
    insecure: bool,
) -> Result<(), DaemonError> {
    let own = own_uid();
    let problems: Vec<String> = std::iter::once(config_path)
        .chain(config.bindings.iter().map(|b| b.runbook.as_path()))
        .filter_map(|p| unsafe_file(p, own))
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    if insecure {
        for p in &problems {
            error!("INSECURE, accepted because of --insecure-permissions: {p}");
        }
        return Ok(());
    }
    Err(DaemonError::Insecure(problems))
}

/// Read and check the config file.
pub fn load_config(path: &Path) -> Result<Config, (DaemonError, Vec<Diagnostic>)> {
    let text = crate::input::read_text(path).map_err(|source| {
        (
            DaemonError::Read {
                path: path.to_path_buf(),
                source,
            },
            Vec::new(),
        )
    })?;
    config::load(&path.display().to_string(), &text).map_err(|problems| {
        (
            DaemonError::Invalid {
                path: path.to_path_buf(),
                count: problems.len(),
            },
            problems,
        )
    })
}

/// Tell systemd (`sd_notify`), when it started us with a notify socket.
pub fn notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    // Never block the daemon on a listener that does not read.
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr)),
        None => socket.send_to(state.as_bytes(), &path),
    };
    match sent {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            tracing::debug!("sd_notify {state}: the listener's queue is full");
        }
        Err(e) => warn!(state, error = %e, "sd_notify"),
        Ok(_) => {}
    }
}

/// The watchdog interval systemd asked for, halved (ping twice per period).
pub(super) fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
