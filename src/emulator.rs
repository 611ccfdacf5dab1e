//! The local AWS emulator, moto in server mode, for the demo and the tests.
//!
//! moto is installed by `.ci/setup-moto` (embedded) into a virtualenv and
//! run by a small guard script that exits when its standard input closes,
//! which happens when the process that started it ends, however it ends;
//! so no emulator outlives the demo or the tests, even after SIGKILL.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::aws::{AwsClients, AwsSettings, Credentials};

/// The guard that runs moto's server and exits with its parent.
const GUARD: &str = include_str!("../tests/moto_guard.py");

/// Why the emulator could not be had.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Installing moto failed.
    #[error("installing the AWS emulator (moto) with {script}: {message}")]
    Setup {
        /// The setup script.
        script: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The server did not start.
    #[error("the AWS emulator did not start: {0}")]
    Start(String),
}

/// The script that installs moto into a virtualenv (`LIFEBOAT_VENV`),
/// embedded so that an installed binary needs nothing of its source tree.
const SETUP: &str = include_str!("../.ci/setup-moto");

/// The virtualenv holding moto: `LIFEBOAT_VENV`; else, for a binary run
/// from its build tree (`target/`: the tests, `cargo run`), `.venv` in that
/// tree, shared with `.ci/setup-moto`; else (an installed binary)
/// `$XDG_DATA_HOME/lifeboat/emulator` (default `~/.local/share/...`).
pub fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("LIFEBOAT_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let exe = std::env::current_exe().ok();
    default_venv(
        exe.as_deref(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// [`venv`]'s choice, from the running executable, the tree it was built
/// in, `XDG_DATA_HOME` and `HOME`.
fn default_venv(
    exe: Option<&Path>,
    built_in: &Path,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> PathBuf {
    if exe.is_some_and(|e| e.starts_with(built_in.join("target"))) {
        return built_in.join(".venv");
    }
    let data = xdg_data_home
        .filter(|d| d.is_absolute())
        .or_else(|| home.map(|h| h.join(".local").join("share")))
        .unwrap_or_else(std::env::temp_dir);
    data.join("lifeboat").join("emulator")
}

/// Install moto into the virtualenv unless it is there (one process at a
/// time, under a lock beside it); returns the virtualenv's Python.
pub fn install() -> Result<PathBuf, EmulatorError> {
    let venv = venv();
    let fail = |message: String| EmulatorError::Setup {
        script: PathBuf::from("the embedded setup-moto"),
        message: format!("{message} (virtualenv {})", venv.display()),
    };
    let parent = venv.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    let name = venv
        .file_name()
        .map_or_else(|| "venv".to_string(), |n| n.to_string_lossy().into_owned());
    let lock =
        File::create(parent.join(format!(".{name}.lock"))).map_err(|e| fail(e.to_string()))?;
    lock.lock().map_err(|e| fail(e.to_string()))?;
    let status = Command::new("bash")
        .arg("-c")
        .arg(SETUP)
        .arg("setup-moto")
        .env("LIFEBOAT_VENV", &venv)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| fail(format!("bash: {e}")))?;
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    Ok(venv.join("bin").join("python"))
}

/// A running emulator on a free loopback port.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
    /// Where moto writes the requests it receives once recording is on.
    recording: PathBuf,
}

impl Emulator {
    /// Start moto with `python` (a Python that has `moto[server]`).
    pub fn start(python: &Path) -> Result<Emulator, EmulatorError> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| EmulatorError::Start(format!("no free port: {e}")))?
                .port();
            let recording = std::env::temp_dir()
                .join(format!("lifeboat-moto-{}-{port}.jsonl", std::process::id()));
            let mut child = Command::new(python)
                .arg("-c")
                .arg(GUARD)
                .arg(port.to_string())
                .env("MOTO_RECORDER_FILEPATH", &recording)
                .env_remove("MOTO_ENABLE_RECORDING")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| EmulatorError::Start(format!("{}: {e}", python.display())))?;
            let Some(stdout) = child.stdout.take() else {
                return Err(EmulatorError::Start("no stdout".into()));
            };
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.trim() == "ready" => {
                    return Ok(Emulator {
                        child,
                        port,
                        recording,
                    });
                }
                Ok(line) => last = format!("it said {line:?}"),
                Err(_) => last = "no answer within 60 s".into(),
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(EmulatorError::Start(last))
    }

    /// Install moto if needed and start it.
    pub fn install_and_start() -> Result<Emulator, EmulatorError> {
        Emulator::start(&install()?)
    }

    /// The endpoint URL to point the SDK at.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// AWS clients bound to this emulator through the client factory.
    pub async fn clients(&self) -> AwsClients {
        let settings = AwsSettings {
            profile: None,
            endpoint_url: Some(self.endpoint()),
            ..Default::default()
        };
        AwsClients::load(&settings, Credentials::Emulator).await
    }

    /// Forget every resource (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<(), EmulatorError> {
        self.post("/moto-api/reset")
    }

    /// Record every request from now on (moto's recorder), forgetting
    /// earlier ones: how tests count the calls that reached the emulator,
    /// whichever process made them.
    pub fn start_recording(&self) -> Result<(), EmulatorError> {
        self.post("/moto-api/recorder/reset-recording")?;
        self.post("/moto-api/recorder/start-recording")
    }

    /// The requests recorded so far, one JSON object per line (method,
    /// url, headers, body, body_encoded).
    pub fn recorded(&self) -> Result<String, EmulatorError> {
        std::fs::read_to_string(&self.recording)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(String::new()),
                _ => Err(e),
            })
            .map_err(|e| EmulatorError::Start(format!("{}: {e}", self.recording.display())))
    }

    /// Set the `ReplicaLag` the emulator publishes for a read replica, as
    /// RDS would (0 s unless set); `None` stops its datapoints. `account`
    /// limits it to one account's replica of that name (default: every
    /// account's).
    pub fn set_replica_lag(
        &self,
        account: Option<&str>,
        region: &str,
        db_instance: &str,
        lag_seconds: Option<f64>,
    ) -> Result<(), EmulatorError> {
        let body = serde_json::json!({
            "account": account,
            "region": region,
            "db_instance": db_instance,
            "lag_seconds": lag_seconds,
        });
        self.post_body("/lifeboat-sim/replica-lag", &body.to_string())
    }

    /// What a Lambda function's code does from now on (the emulator runs
    /// none): its invocations return `result`; with `function_error`
    /// (`Unhandled`) the function raised and `result` is its error
    /// payload; `log` is its log. Without this a function echoes its event.
    pub fn play_function(
        &self,
        region: &str,
        function: &str,
        result: &serde_json::Value,
        function_error: Option<&str>,
        log: &str,
    ) -> Result<(), EmulatorError> {
        let body = serde_json::json!({
            "region": region,
            "function": function,
            "result": result,
            "function_error": function_error,
            "log": log,
        });
        self.post_body("/lifeboat-sim/lambda", &body.to_string())
    }

    /// The Lambda invocations the emulator saw, oldest first: `[{function,
    /// qualifier, event, client_context}]`.
    pub fn invocations(&self) -> Result<serde_json::Value, EmulatorError> {
        let body = self.exchange("GET", "/lifeboat-sim/lambda", "")?;
        serde_json::from_str(&body)
            .map_err(|e| EmulatorError::Start(format!("GET /lifeboat-sim/lambda: {e}")))
    }

    /// Authorize, as IAM would, every request signed with `access_key`
    /// (the caller) or with credentials it assumes from now on, against
    /// `policies` (`{"caller": DOC, ROLE_ARN: DOC}`), and each role's
    /// assumption against its policy in `trust` (`{ROLE_ARN: DOC}`; empty:
    /// not checked); the log of decisions starts anew. Other keys are not
    /// checked.
    pub fn enforce_iam(
        &self,
        access_key: &str,
        policies: &serde_json::Value,
        trust: &serde_json::Value,
    ) -> Result<(), EmulatorError> {
        let body = serde_json::json!({
            "access_key": access_key,
            "policies": policies,
            "trust": trust,
        });
        self.post_body("/lifeboat-sim/iam", &body.to_string())
    }

    /// The authorization log since [`Emulator::enforce_iam`]:
    /// `{"checked": N, "denied": [{principal, action, resource, reason}]}`.
    pub fn iam_decisions(&self) -> Result<serde_json::Value, EmulatorError> {
        let body = self.exchange("GET", "/lifeboat-sim/iam", "")?;
        serde_json::from_str(&body)
            .map_err(|e| EmulatorError::Start(format!("GET /lifeboat-sim/iam: {e}")))
    }

    fn post(&self, path: &str) -> Result<(), EmulatorError> {
        self.post_body(path, "")
    }

    fn post_body(&self, path: &str, body: &str) -> Result<(), EmulatorError> {
        self.exchange("POST", path, body).map(|_| ())
    }

    /// One request to the emulator's own endpoints; the body of its 200.
    fn exchange(&self, method: &str, path: &str, body: &str) -> Result<String, EmulatorError> {
        let fail = |e: std::io::Error| EmulatorError::Start(format!("{method} {path}: {e}"));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(fail)?;
        stream
            .write_all(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .map_err(fail)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(fail)?;
        if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
            Ok(response
                .split_once("\r\n\r\n")
                .map(|(_, body)| body.to_string())
                .unwrap_or_default())
        } else {
            Err(EmulatorError::Start(format!(
                "{method} {path} answered {}",
                response.lines().next().unwrap_or("")
            )))
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

#[cfg(test)]
mod venv_tests {
    use std::path::{Path, PathBuf};

    use super::default_venv;

    #[test]
    fn a_built_binary_uses_its_tree_and_an_installed_one_the_user_s_data() {
        let tree = Path::new("/src/lifeboat");
        let home = Some(PathBuf::from("/home/ops"));
        assert_eq!(
            default_venv(
                Some(Path::new("/src/lifeboat/target/debug/lifeboat")),
                tree,
                None,
                home.clone()
            ),
            PathBuf::from("/src/lifeboat/.venv")
        );
        assert_eq!(
            default_venv(
                Some(Path::new("/usr/bin/lifeboat")),
                tree,
                None,
                home.clone()
            ),
            PathBuf::from("/home/ops/.local/share/lifeboat/emulator")
        );
        assert_eq!(
            default_venv(
                Some(Path::new("/home/ops/.cargo/bin/lifeboat")),
                tree,
                Some(PathBuf::from("/data")),
                home.clone()
            ),
            PathBuf::from("/data/lifeboat/emulator")
        );
        assert_eq!(
            default_venv(None, tree, Some(PathBuf::from("relative")), home),
            PathBuf::from("/home/ops/.local/share/lifeboat/emulator"),
            "a relative XDG_DATA_HOME is ignored, as the spec says"
        );
    }
}
