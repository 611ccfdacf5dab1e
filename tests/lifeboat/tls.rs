//! TLS where a network is crossed: an HTTPS probe verifies the server's
//! certificate unless the probe says `insecure_skip_verify`. The server is
//! `openssl s_server` with a self-signed certificate (Debian's openssl,
//! installed by `.ci/setup-apt` on first use).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::KillOnDrop;

fn probe(url: &str, insecure: bool) -> lifeboat::probe::ProbeSpec {
    let config = lifeboat::config::load(
        "c.yaml",
        &format!(
            "regions:\n  us-east-1:\n    probes:\n      - {{ name: web, http: {{ url: \"{url}\", insecure_skip_verify: {insecure} }}, timeout: 5s }}\n"
        ),
    )
    .expect("config");
    config.regions["us-east-1"].probes[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_probes_verify_certificates_unless_told_not_to() {
    let setup = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/setup-apt"))
        .args(["openssl", "openssl"])
        .status()
        .expect("run .ci/setup-apt");
    assert!(setup.success(), ".ci/setup-apt openssl failed");
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl req");
    assert!(made.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .expect("openssl s_server");
    crate::support::eventually(
        Duration::from_secs(20),
        || "the TLS server never listened".into(),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
    );
    let aws = lifeboat::aws::AwsClients::load(
        &lifeboat::aws::AwsSettings::default(),
        lifeboat::aws::Credentials::Chain,
    )
    .await;
    let url = format!("https://127.0.0.1:{port}/");
    let (ok, detail) = lifeboat::probe::check(&aws, &probe(&url, false)).await;
    assert!(!ok, "a self-signed certificate is refused: {detail}");
    assert!(
        detail.contains("certificate"),
        "refused for its certificate: {detail}"
    );
    let (ok, detail) = lifeboat::probe::check(&aws, &probe(&url, true)).await;
    assert!(ok, "accepted when told: {detail}");
}
