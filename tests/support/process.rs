//! Running the `lifeboat` binary and the processes tests start.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::eventually;

/// `lifeboat` with `state` as its state directory and no stdin.
pub fn command(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    command
        .env("LIFEBOAT_STATE_DIR", state)
        .stdin(Stdio::null());
    command
}

/// Run `lifeboat ARGS` on `state` to its end.
pub fn lifeboat(state: &Path, args: &[&str]) -> Output {
    command(state).args(args).output().expect("run lifeboat")
}

/// Start `lifeboat ARGS` on `state`, its output piped.
pub fn spawn(state: &Path, args: &[&str]) -> Child {
    command(state)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lifeboat")
}

/// A child process killed (and reaped) if the test ends, or fails, without
/// waiting for it; resumed first, in case a test stopped it.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = signal(self.0.id(), "CONT");
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Send `SIG<name>` to `pid`; whether it was delivered.
pub fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Bytes as text, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The id of the run `child` started, once it is in the journal; fails
/// with the child's output if it ends first or takes over 30 s.
pub fn started_run_id(state: &Path, child: &mut Child) -> String {
    eventually(
        Duration::from_secs(30),
        || "the run was never journaled".to_string(),
        || {
            let out = lifeboat(state, &["runs", "--output", "json"]);
            if let Ok(runs) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                && let Some(id) = runs[0]["id"].as_str()
            {
                return Some(id.to_string());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("the run ended ({status}) before it was journaled: {err}");
            }
            None
        },
    )
}

/// Polls `show` until `step` is in `state` (the run is in another process).
pub fn wait_for(state_dir: &Path, run: &str, step: &str, state: &str) {
    eventually(
        Duration::from_secs(30),
        || {
            format!(
                "step {step} never reached {state}; the run is now:\n{}",
                text(&lifeboat(state_dir, &["show", run]).stdout)
            )
        },
        || {
            let out = lifeboat(state_dir, &["show", run, "--output", "json"]);
            let show = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()?;
            show["steps"]
                .as_array()?
                .iter()
                .any(|r| r["step"] == step && r["state"] == state)
                .then_some(())
        },
    )
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` on a loopback port: the whole response, head and body.
pub fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}
