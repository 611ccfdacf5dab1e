//! Headless Chromium driven through ChromeDriver's WebDriver HTTP API
//! (W3C WebDriver, plus ChromeDriver's browser log), on loopback, with a
//! fresh profile and the flags a closed network needs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{KillOnDrop, free_port};

/// Chromium's flags for a headless run on a closed network: no sandbox
/// (root in CI), no GPU, none of its own connections out.
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Chromium started headless with `FLAGS` and a fresh profile in `profile`,
/// logging the page's console to stderr.
pub fn headless(profile: &Path) -> Command {
    installed();
    let mut command = Command::new("chromium");
    command
        .args(FLAGS)
        .args(["--enable-logging=stderr", "--v=0"]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Chromium and ChromeDriver, installed by `.ci/setup-chromium` on first use.
fn installed() {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/setup-chromium"))
            .status()
            .expect("run .ci/setup-chromium");
        assert!(status.success(), ".ci/setup-chromium failed: {status}");
    });
}

/// One request to ChromeDriver: the answer's `value`.
fn call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    // Read the head, then exactly the body its length names (ChromeDriver
    // may keep the connection open).
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let (head, body_at) = loop {
        let n = stream.read(&mut buf).expect("read the answer");
        assert!(
            n > 0,
            "{method} {path}: connection closed before the answer"
        );
        answer.extend_from_slice(&buf[..n]);
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&answer[..at]).into_owned(), at + 4);
        }
    };
    let length = super::proxy::content_length(&head)
        .unwrap_or_else(|| panic!("{method} {path}: no Content-Length in {head}"));
    while answer.len() < body_at + length {
        let n = stream.read(&mut buf).expect("read the body");
        assert!(n > 0, "{method} {path}: connection closed in the body");
        answer.extend_from_slice(&buf[..n]);
    }
    let json = String::from_utf8_lossy(&answer[body_at..body_at + length]).into_owned();
    let answer = format!("{head}\n\n{json}");
    let json: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{method} {path}: {e}: {answer}"));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{method} {path}: {head}\n{json}"
    );
    json["value"].clone()
}

/// Decode standard base64 (padding and whitespace ignored).
fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("not base64: {c:?}"));
        bits = (bits << 6) | v as u32;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}

/// A browser session; the browser and its driver end when it is dropped.
pub struct Browser {
    port: u16,
    session: String,
    _driver: KillOnDrop,
}

impl Browser {
    /// Start ChromeDriver and a headless Chromium with a profile in `dir`,
    /// its window `width` × `height` CSS pixels.
    pub fn start(dir: &Path, width: u32, height: u32) -> Browser {
        installed();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(KillOnDrop)
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = dir.join("chromium-profile");
        let capabilities = serde_json::json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": { "browser": "ALL" },
                "goog:chromeOptions": {
                    "args": FLAGS
                        .iter()
                        .map(|f| f.to_string())
                        .chain([
                            "--disable-dev-shm-usage".to_string(),
                            format!("--window-size={width},{height}"),
                            format!("--user-data-dir={}", profile.display()),
                        ])
                        .collect::<Vec<_>>()
                }
            }}
        });
        let session = call(port, "POST", "/session", Some(&capabilities));
        let session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        Browser {
            port,
            session,
            _driver: driver,
        }
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}/{rest}", self.session)
    }

    /// Open `url`.
    pub fn open(&self, url: &str) {
        call(
            self.port,
            "POST",
            &self.at("url"),
            Some(&serde_json::json!({ "url": url })),
        );
    }

    /// The value of the JavaScript function body `script` in the page.
    pub fn eval(&self, script: &str) -> serde_json::Value {
        call(
            self.port,
            "POST",
            &self.at("execute/sync"),
            Some(&serde_json::json!({ "script": script, "args": [] })),
        )
    }

    /// Wait until `script` returns a truthy value; that value.
    pub fn until(&self, within: Duration, what: &str, script: &str) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(script);
            if !matches!(
                value,
                serde_json::Value::Null | serde_json::Value::Bool(false)
            ) && value != serde_json::json!("")
            {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; the page reads:\n{}",
                self.eval("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = call(self.port, "GET", &self.at("screenshot"), None);
        let png = base64(png.as_str().expect("base64"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// What the page logged to its console since the last call (and the
    /// browser's own errors about it: failed loads, CSP refusals).
    pub fn console(&self) -> Vec<serde_json::Value> {
        call(
            self.port,
            "POST",
            &self.at("se/log"),
            Some(&serde_json::json!({ "type": "browser" })),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut sink = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.read(&mut sink);
        }
    }
}
