//! The local AWS emulator, moto in server mode, for the demo and the tests.
//!
//! moto is installed by `.ci/setup-moto` into the project's virtualenv and
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

/// The source tree lifeboat was built from (where `.ci/setup-moto` is).
fn source_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv holding moto: `LIFEBOAT_VENV`, or `.venv` in the source tree.
pub fn venv() -> PathBuf {
    std::env::var_os("LIFEBOAT_VENV").map_or_else(|| source_dir().join(".venv"), PathBuf::from)
}

/// Install moto into the virtualenv unless it is there (one process at a
/// time); returns the virtualenv's Python.
pub fn install() -> Result<PathBuf, EmulatorError> {
    let script = source_dir().join(".ci").join("setup-moto");
    let fail = |message: String| EmulatorError::Setup {
        script: script.clone(),
        message,
    };
    let target = source_dir().join("target");
    std::fs::create_dir_all(&target).map_err(|e| fail(e.to_string()))?;
    let lock = File::create(target.join("moto-setup.lock")).map_err(|e| fail(e.to_string()))?;
    lock.lock().map_err(|e| fail(e.to_string()))?;
    let status = Command::new(&script)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    Ok(venv().join("bin").join("python"))
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

    fn post(&self, path: &str) -> Result<(), EmulatorError> {
        self.post_body(path, "")
    }

    fn post_body(&self, path: &str, body: &str) -> Result<(), EmulatorError> {
        let fail = |e: std::io::Error| EmulatorError::Start(format!("POST {path}: {e}"));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(fail)?;
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .map_err(fail)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(fail)?;
        if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(EmulatorError::Start(format!(
                "POST {path} answered {}",
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
