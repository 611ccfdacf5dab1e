//! The emulator harness: `moto_server` on a free loopback port, installed
//! into the project's virtualenv on first use, stopped when dropped or when
//! the test process exits.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lifeboat::aws::{AwsClients, AwsSettings, Credentials};

/// A running emulator.
pub struct Moto {
    child: Child,
    port: u16,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    std::env::var_os("LIFEBOAT_VENV").map_or_else(|| root().join(".venv"), PathBuf::from)
}

/// Installs moto into the virtualenv unless it is there; one process at a time.
fn ensure_installed() {
    let lock_path = root().join("target").join("moto-setup.lock");
    std::fs::create_dir_all(root().join("target")).expect("create target/");
    let lock = File::create(&lock_path).expect("create the setup lock");
    lock.lock().expect("take the setup lock");
    let status = Command::new(root().join(".ci").join("setup-moto"))
        .status()
        .expect("run .ci/setup-moto");
    assert!(status.success(), ".ci/setup-moto failed: {status}");
}

impl Moto {
    /// Start an emulator; panics (failing the test) if it cannot.
    pub fn start() -> Moto {
        ensure_installed();
        let python = venv().join("bin").join("python");
        let guard = root().join("tests").join("moto_guard.py");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("find a free port")
                .port();
            let mut child = Command::new(&python)
                .arg(&guard)
                .arg(port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto");
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.trim() == "ready" => return Moto { child, port },
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("moto_server did not start");
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
    pub fn reset(&self) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            stream,
            "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("send reset");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read reset response");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{response}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
