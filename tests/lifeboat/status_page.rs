//! The daemon's status page in headless Chromium: a seeded state renders
//! (a region and its probes, a binding, a successful drill, an RPO
//! exposure), a run's progress appears while it runs, the page fits a
//! phone's width, and the console stays clean.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::support::moto::Moto;
use crate::support::webdriver::Browser;
use crate::support::{eventually, free_port, get, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_daemon_s_state_and_a_run_as_it_progresses() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    crate::support::seed::snapshot_copied_to_dr(&aws, "app-db").await;
    let url = crate::support::endpoints::endpoints(Arc::new(AtomicBool::new(true))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rb.yaml"),
        "name: page-check
strategy: pilot-light
targets: { rto: 1m }
steps:
  - { id: prepare, action: wait, with: { duration: 100ms } }
  - { id: promote, action: wait, needs: [prepare], with: { duration: 4s } }
  - { id: switch, action: wait, needs: [promote], with: { duration: 100ms }, restores_service: true }
",
    )
    .expect("write runbook");
    let port = free_port();
    let config = dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {state}
aws: {{ endpoint_url: \"{aws}\" }}
listen: {{ metrics: \"127.0.0.1:{port}\", control: {socket} }}
exposure_interval: 1s
regions:
  us-east-1:
    probes:
      - {{ name: web, http: {{ url: \"{url}\" }}, interval: 200ms }}
      - {{ name: api, http: {{ url: \"{url}/api\" }}, interval: 200ms }}
bindings:
  primary: {{ region: us-east-1, runbook: rb.yaml, policy: approve }}
protected:
  - {{ kind: rds, db_instance: app-db, region: us-west-2, rpo_target: 1h }}
",
            state = dir.path().join("state").display(),
            aws = moto.endpoint(),
            socket = dir.path().join("control.sock").display(),
        ),
    )
    .expect("write config");
    let daemon = moto.daemon(&dir.path().join("state"), &config);
    let config = config.to_str().expect("utf-8").to_string();
    eventually(
        Duration::from_secs(60),
        || "the daemon serves /healthz".into(),
        || get(port, "/healthz").filter(|r| r.starts_with("HTTP/1.1 200")),
    );
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("run lifeboat");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    // A drill that succeeded: the binding's proof.
    cli(&["trigger", "primary", "--mode", "drill"]);
    let status = |check: &dyn Fn(&serde_json::Value) -> bool| {
        eventually(
            Duration::from_secs(60),
            || format!("/status: {:?}", get(port, "/status")),
            || {
                let response = get(port, "/status")?;
                let json: serde_json::Value =
                    serde_json::from_str(response.split("\r\n\r\n").nth(1)?).ok()?;
                check(&json).then_some(json)
            },
        )
    };
    let seeded = status(&|s| {
        s["bindings"][0]["last_drill"]["run"].is_string()
            && s["exposure"][0]["verdict"] == "ok"
            && s["bindings"][0]["ready"] == true
    });
    let drill = seeded["bindings"][0]["last_drill"]["run"]
        .as_str()
        .expect("a drill")
        .to_string();
    assert_eq!(seeded["bindings"][0]["runbook_changed_since_drill"], false);

    let browser = Browser::start(dir.path(), 390, 844);
    browser.open(&format!("http://127.0.0.1:{port}/"));
    browser.until(
        Duration::from_secs(30),
        "the page loads the status",
        "return document.body.dataset.loaded === 'yes'",
    );
    let page = browser.eval("return document.body.innerText");
    let page = page.as_str().expect("text");
    for seen in [
        "us-east-1",
        "healthy",
        "web",
        "api",
        "primary",
        "armed",
        "ready",
        drill.as_str(),
        "rds:us-west-2:app-db",
        "No run in progress.",
    ] {
        assert!(page.contains(seen), "the page shows `{seen}`:\n{page}");
    }
    assert_eq!(
        browser.eval(
            "return document.querySelectorAll('[data-region=\"us-east-1\"] .dots i').length > 0"
        ),
        true,
        "each probe's recent results"
    );
    assert_eq!(
        browser.eval("return document.documentElement.scrollWidth <= window.innerWidth"),
        true,
        "fits a phone's width"
    );

    // A failover by hand: its steps and timeline appear while it runs,
    // without reloading the page.
    cli(&["trigger", "primary"]);
    let run = browser.until(
        Duration::from_secs(30),
        "the run's long step shows as running",
        "const s = document.querySelector('[data-run] [data-step=\"promote\"]');
         return s && s.dataset.state === 'running' && document.querySelector('#timeline rect.step.running') ? s.closest('[data-run]').dataset.run : null",
    );
    let run = run.as_str().expect("a run id").to_string();
    assert_eq!(
        browser.eval(
            "return document.querySelector('[data-run] [data-step=\"switch\"]').dataset.state"
        ),
        "pending",
        "the steps still to come are listed"
    );
    assert_eq!(
        browser
            .eval("return document.querySelector('[data-binding=\"primary\"] .badge').textContent"),
        "running"
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    browser.screenshot(&shot);
    browser.until(
        Duration::from_secs(30),
        "the run ends and leaves the page",
        "return document.getElementById('runs').innerText.includes('No run in progress.')",
    );
    browser.until(
        Duration::from_secs(30),
        "the binding shows the failover",
        &format!(
            "return document.querySelector('[data-binding=\"primary\"]').innerText.includes('last successful failover: {run}')"
        ),
    );
    let console = browser.console();
    assert!(console.is_empty(), "console messages: {console:#?}");

    // The same facts as metrics; then the runbook changes after its
    // drill, and the page, /status and the metrics say so after a reload.
    let metrics = get(port, "/metrics").expect("metrics");
    for line in [
        r#"lifeboat_runbook_changed_since_drill{binding="primary"} 0"#,
        r#"lifeboat_binding_state{binding="primary",state="cooling-down"} 1"#,
        r#"lifeboat_binding_state{binding="primary",state="armed"} 0"#,
        r#"lifeboat_drill_last_success_timestamp_seconds{binding="primary"} "#,
        r#"lifeboat_failover_last_success_timestamp_seconds{binding="primary"} "#,
        r#"lifeboat_region_state{region="us-east-1",state="healthy"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line}:\n{metrics}");
    }
    let runbook = dir.path().join("rb.yaml");
    let mut text = std::fs::read_to_string(&runbook).expect("runbook");
    text.push_str("# a changed runbook\n");
    std::fs::write(&runbook, text).expect("change the runbook");
    assert!(crate::support::signal(daemon.0.id(), "HUP"));
    status(&|s| s["bindings"][0]["runbook_changed_since_drill"] == true);
    browser.until(
        Duration::from_secs(30),
        "the page says the runbook changed since its drill",
        "return document.querySelector('[data-binding=\"primary\"] .drill').innerText.includes('runbook changed since')",
    );
    let metrics = get(port, "/metrics").expect("metrics");
    assert!(
        metrics.contains(r#"lifeboat_runbook_changed_since_drill{binding="primary"} 1"#),
        "{metrics}"
    );
}
