//! `lifeboat daemon` as systemd runs it: READY over a real notify socket,
//! an interrupted run resumed to the end, `/metrics` and `/healthz`, RPO
//! exposure refreshed, SIGHUP with a broken config keeping the old one,
//! SIGTERM stopping cleanly.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::moto::Moto;
use crate::support::{eventually, eventually_async, free_port, get, lifeboat, signal, text};

/// The next message on the notify socket.
fn next_notice(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A run killed while its second step waits: unfinished in the journal.
fn interrupted_run(dir: &Path, state: &Path) -> String {
    let runbook = dir.join("slow.yaml");
    std::fs::write(
        &runbook,
        "name: slow
strategy: pilot-light
steps:
  - { id: first, action: wait, with: { duration: 10ms } }
  - { id: long, action: wait, needs: [first], with: { duration: 3s } }
  - { id: last, action: wait, needs: [long], with: { duration: 10ms }, restores_service: true }
",
    )
    .expect("write runbook");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["run", runbook.to_str().expect("utf-8"), "--yes"])
        .env("LIFEBOAT_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a run");
    let id = crate::support::started_run_id(state, &mut child);
    crate::support::wait_for(state, &id, "long", "running");
    child.kill().expect("SIGKILL the run");
    let _ = child.wait();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_resumes_serves_metrics_refreshes_exposure_and_obeys_signals() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    crate::support::seed::snapshot_copied_to_dr(&aws, "app-db").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let run = interrupted_run(dir.path(), &state);

    let port = free_port();
    let config = dir.path().join("lifeboat.yaml");
    let good = format!(
        "state_dir: {}
aws: {{ endpoint_url: \"{}\" }}
listen: {{ metrics: \"127.0.0.1:{port}\", control: {} }}
exposure_interval: 1s
protected:
  - {{ kind: rds, db_instance: app-db, region: us-west-2, rpo_target: 1h }}
",
        state.display(),
        moto.endpoint(),
        dir.path().join("control.sock").display()
    );
    std::fs::write(&config, &good).expect("write config");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");

    let mut daemon = moto
        .lifeboat(&state)
        .args(["daemon", "--config", config.to_str().expect("utf-8")])
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(crate::support::KillOnDrop)
        .expect("start the daemon");
    assert_eq!(next_notice(&notify), "READY=1");
    // Then its state line for `systemctl status`, and the watchdog pings
    // at half the period.
    let status = next_notice(&notify);
    assert!(
        status.starts_with("STATUS=single daemon; no region probed; armed; running "),
        "{status}"
    );
    let mut notices = Vec::new();
    while !notices.contains(&"WATCHDOG=1".to_string()) {
        notices.push(next_notice(&notify));
    }
    let health = get(port, "/healthz").expect("healthz");
    assert!(
        health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
        "{health}"
    );

    // The interrupted run finishes, once, and the exposure is exported.
    let metrics = eventually_async(
        Duration::from_secs(60),
        || format!("never resumed and refreshed:\n{:?}", get(port, "/metrics")),
        || async {
            get(port, "/metrics").filter(|body| {
                body.contains(
                    r#"lifeboat_runs_total{runbook="slow",mode="failover",outcome="succeeded"} 1"#,
                ) && body
                    .contains(r#"lifeboat_rpo_exposure_seconds{resource="rds:us-west-2:app-db"}"#)
            })
        },
    )
    .await;
    assert!(
        metrics.contains(
            r#"lifeboat_rpo_exposure_target_seconds{resource="rds:us-west-2:app-db"} 3600"#
        ),
        "{metrics}"
    );
    let show = lifeboat(&state, &["show", &run, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(show["state"], "succeeded", "{show}");
    let attempts: Vec<u64> = show["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["attempts"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        attempts,
        vec![1, 1, 1],
        "finished steps are not repeated: {show}"
    );

    // A broken config on SIGHUP keeps the running one.
    std::fs::write(&config, "protected: [ { kind: rds } ]\n").expect("break config");
    // Drain the watchdog pings queued meanwhile: systemd reads them as they
    // come, and a full queue makes the daemon drop notices, not wait.
    notify.set_nonblocking(true).expect("nonblocking");
    while notify.recv(&mut [0u8; 512]).is_ok() {}
    notify.set_nonblocking(false).expect("blocking");
    assert!(signal(daemon.0.id(), "HUP"));
    let mut notices = Vec::new();
    while !notices.contains(&"READY=1".to_string()) {
        notices.push(next_notice(&notify));
    }
    assert!(notices.contains(&"RELOADING=1".to_string()), "{notices:?}");
    assert!(get(port, "/healthz").is_some_and(|h| h.starts_with("HTTP/1.1 200")));

    assert!(signal(daemon.0.id(), "TERM"));
    let status = daemon.0.wait().expect("daemon exit");
    assert_eq!(status.code(), Some(0));
    // Draining said so, and asked systemd for time to drain.
    let mut notices = Vec::new();
    notify.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    while let Ok(n) = notify.recv(&mut buf) {
        notices.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(notices.contains(&"STOPPING=1".to_string()), "{notices:?}");
    assert!(
        notices.iter().any(|n| n.starts_with("STATUS=draining")),
        "{notices:?}"
    );
    assert!(
        notices.contains(&"EXTEND_TIMEOUT_USEC=15000000".to_string()),
        "{notices:?}"
    );
    let mut err = String::new();
    if let Some(mut e) = daemon.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(err.contains("keeping the running config"), "{err}");
    assert!(err.contains("resuming an interrupted run"), "{err}");
}

#[test]
fn an_invalid_config_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        "listen: { metrics: \"localhost\" }\nexposure_interval: 0s\n",
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["daemon", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("run lifeboat");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("lifeboat.yaml:1:20: error: `listen.metrics` must be HOST:PORT"),
        "{err}"
    );
    assert!(
        err.contains("lifeboat.yaml:2:20: error: `exposure_interval` must be more than zero"),
        "{err}"
    );
}

#[test]
fn the_systemd_unit_is_hardened_to_an_exposure_of_at_most_two() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "systemd/lifeboat.service"])
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed for this test");
    let report = text(&out.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for lifeboat.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}\n{}", text(&out.stderr)));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{report}");
}

async fn wait_for_metric(port: u16, line: &str) {
    eventually_async(
        Duration::from_secs(60),
        || format!("never saw `{line}`: {:?}", get(port, "/metrics")),
        || async {
            get(port, "/metrics")
                .is_some_and(|m| m.contains(line))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_declare_a_region_down_once_and_see_it_recover() {
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let url = crate::support::endpoints::endpoints(std::sync::Arc::clone(&mode)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let probe = |name: &str| {
        format!(
            "      - {{ name: {name}, http: {{ url: \"{url}\" }}, interval: 100ms, timeout: 1s, failure_threshold: 2, recovery_threshold: 2 }}\n"
        )
    };
    let config = dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\nlisten: {{ metrics: \"127.0.0.1:{port}\", control: {} }}\nregions:\n  us-east-1:\n    probes:\n{}{}{}",
            dir.path().join("state").display(),
            dir.path().join("control.sock").display(),
            probe("web-a"),
            probe("web-b"),
            probe("web-c")
        ),
    )
    .expect("write config");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["daemon", "--config", config.to_str().expect("utf-8")])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(crate::support::KillOnDrop)
        .expect("start the daemon");
    let healthy = r#"lifeboat_region_health{region="us-east-1"} 0"#;
    wait_for_metric(port, healthy).await;

    mode.store(false, std::sync::atomic::Ordering::SeqCst);
    wait_for_metric(port, r#"lifeboat_region_health{region="us-east-1"} 2"#).await;
    // Down stays down, declared once, however long it lasts.
    tokio::time::sleep(Duration::from_millis(600)).await;
    mode.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_for_metric(port, healthy).await;

    assert!(signal(daemon.0.id(), "TERM"));
    assert_eq!(daemon.0.wait().expect("exit").code(), Some(0));
    let mut err = String::new();
    if let Some(mut e) = daemon.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(err.matches("outage declared").count(), 1, "{err}");
    assert!(err.contains("answered 503, expected 200"), "{err}");
}

#[test]
fn sigterm_lets_a_running_step_finish_and_leaves_the_rest_to_the_next_start() {
    use lifeboat::journal::{Access, Journal};
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let run = interrupted_run(dir.path(), &state);
    let config = dir.path().join("lifeboat.yaml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\nlisten: {{ metrics: \"127.0.0.1:{port}\", control: {} }}\n",
            state.display(),
            dir.path().join("control.sock").display()
        ),
    )
    .expect("write config");
    let daemon = || {
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["daemon", "--config", config.to_str().expect("utf-8")])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(crate::support::KillOnDrop)
            .expect("start the daemon")
    };
    let journal = Journal::open(&state, Access::Client).expect("journal");
    let states = |step: &str| -> Vec<String> {
        journal
            .events(&run)
            .expect("events")
            .into_iter()
            .filter(|e| e.step == step && e.phase == "main")
            .map(|e| e.state.to_string())
            .collect()
    };

    let mut first = daemon();
    // The resumed `long` step is running again: stop the daemon then.
    eventually(
        Duration::from_secs(60),
        || format!("never resumed: {:?}", states("long")),
        || (states("long").iter().filter(|s| *s == "running").count() >= 2).then_some(()),
    );
    assert!(signal(first.0.id(), "TERM"));
    assert_eq!(first.0.wait().expect("exit").code(), Some(0));
    assert_eq!(
        states("long").last().map(String::as_str),
        Some("succeeded"),
        "the running step reached its end and was journaled"
    );
    assert!(states("last").is_empty(), "no step started after SIGTERM");
    assert_eq!(journal.run(&run).expect("run").state, "running");

    let mut second = daemon();
    eventually(
        Duration::from_secs(60),
        || "never finished".into(),
        || (journal.run(&run).expect("run").state == "succeeded").then_some(()),
    );
    assert_eq!(states("last"), vec!["running", "succeeded"]);
    assert_eq!(
        states("long").iter().filter(|s| *s == "succeeded").count(),
        1,
        "not repeated"
    );
    assert!(signal(second.0.id(), "TERM"));
    assert_eq!(second.0.wait().expect("exit").code(), Some(0));

    // A third start, with nothing to run: the last run's figures are
    // scraped at once, restored from the journal, not empty until the
    // next run.
    let mut third = daemon();
    let rto = r#"lifeboat_rto_achieved_seconds{runbook="slow",mode="failover"}"#;
    let metrics = eventually(
        Duration::from_secs(30),
        || format!("no restored RTO: {:?}", get(port, "/metrics")),
        || get(port, "/metrics").filter(|m| m.contains(rto)),
    );
    assert!(
        !metrics.contains("lifeboat_runs_total{"),
        "counters start again from zero:\n{metrics}"
    );
    assert!(signal(third.0.id(), "TERM"));
    assert_eq!(third.0.wait().expect("exit").code(), Some(0));
}

/// A one-step runbook (`rb.yaml`, its step `step` waiting `wait`) bound as
/// `app` (policy notify) to us-east-1 in a config written to `dir/name`:
/// the journal in `dir/STATE` and the socket at `dir/STATE.sock`, `extra`
/// added to the config's top level. The config's path.
fn one_binding(dir: &Path, name: &str, state: &str, step: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("rb.yaml"),
        format!("name: r\nstrategy: pilot-light\nregions: {{ from: us-east-1, to: us-west-2 }}\nsteps:\n  - {step}\n"),
    )
    .expect("write runbook");
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "state_dir: {}\n{extra}listen: {{ metrics: \"127.0.0.1:0\", control: {} }}\nregions:\n  us-east-1:\n    probes: [ {{ name: t, tcp: \"127.0.0.1:9\" }} ]\nbindings:\n  app: {{ region: us-east-1, runbook: rb.yaml, policy: notify }}\n",
            dir.join(state).display(),
            dir.join(format!("{state}.sock")).display()
        ),
    )
    .expect("write config");
    path
}

#[test]
fn files_others_could_change_are_refused_unless_overridden_loudly() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("rb.yaml");
    let config = one_binding(
        dir.path(),
        "lifeboat.yaml",
        "state",
        "{ id: a, action: wait, with: { duration: 1s } }",
        "",
    );
    std::fs::set_permissions(&runbook, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let daemon = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["daemon", "--config", config.to_str().expect("utf-8")])
            .args(extra)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon")
    };
    let refused = daemon(&[]).wait_with_output().expect("exit");
    assert_eq!(refused.status.code(), Some(2));
    let err = text(&refused.stderr);
    assert!(
        err.contains("lifeboat.yaml is writable by its group or by others (mode 0666)"),
        "{err}"
    );
    assert!(
        err.contains("rb.yaml is writable by its group or by others (mode 0664)"),
        "{err}"
    );
    assert!(
        !dir.path().join("state").join("journal.sqlite").exists(),
        "nothing started"
    );

    let mut accepted = crate::support::KillOnDrop(daemon(&["--insecure-permissions"]));
    eventually(
        Duration::from_secs(30),
        || "the daemon never started".into(),
        || dir.path().join("state.sock").exists().then_some(()),
    );
    assert!(signal(accepted.0.id(), "TERM"));
    assert_eq!(accepted.0.wait().expect("exit").code(), Some(0));
    let mut err = String::new();
    if let Some(mut e) = accepted.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(
        err.matches("INSECURE, accepted because of --insecure-permissions")
            .count(),
        2,
        "{err}"
    );
}

/// `lifeboat ARGS` as an operator runs it: none of the test suite's
/// LIFEBOAT_* variables, a home of its own.
fn operator(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env_remove("LIFEBOAT_STATE_DIR")
        .env_remove("LIFEBOAT_SOCKET")
        .env_remove("LIFEBOAT_CONFIG")
        .env_remove("XDG_STATE_HOME")
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run lifeboat")
}

#[test]
fn a_request_no_daemon_answers_reaches_the_daemons_journal_or_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let write_config = |name: &str, state: &str| {
        one_binding(
            dir.path(),
            name,
            state,
            "{ id: a, action: wait, with: { duration: 1s } }",
            "",
        )
        .to_str()
        .expect("utf-8")
        .to_string()
    };
    let config = write_config("lifeboat.yaml", "state");
    let start = || {
        let daemon = crate::support::KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_lifeboat"))
                .args(["daemon", "--config", &config])
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the daemon"),
        );
        eventually(
            Duration::from_secs(30),
            || "the daemon never opened its socket".into(),
            || dir.path().join("state.sock").exists().then_some(()),
        );
        daemon
    };
    // The daemon ran once (its journal exists) and is stopped: systemd
    // removed its socket.
    let mut daemon = start();
    assert!(signal(daemon.0.id(), "TERM"));
    assert_eq!(daemon.0.wait().expect("exit").code(), Some(0));
    assert!(!dir.path().join("state.sock").exists());

    // The operator's pause, by the config alone, lands in the daemon's
    // journal and says so; no journal of the operator's own appears.
    let out = operator(
        &home,
        &["--config", &config, "pause", "--reason", "change freeze"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("no daemon answers on"), "{err}");
    assert!(
        err.contains(&format!(
            "recorded in the journal in {}",
            dir.path().join("state").display()
        )),
        "{err}"
    );
    assert!(!home.join(".local").exists(), "no personal journal");

    // Restarted, the daemon honours it.
    let mut daemon = start();
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["status", "--output", "json"])
        .env_remove("LIFEBOAT_STATE_DIR")
        .env_remove("LIFEBOAT_SOCKET")
        .env("LIFEBOAT_CONFIG", &config)
        .env("HOME", &home)
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["paused"]["reason"], "change freeze", "{status}");
    assert!(
        status["paused"]["by"]
            .as_str()
            .is_some_and(|by| by.contains("(uid ")),
        "{status}"
    );
    assert!(signal(daemon.0.id(), "TERM"));
    assert_eq!(daemon.0.wait().expect("exit").code(), Some(0));

    // A config whose daemon never ran: nothing to leave the request in,
    // so it is refused with the reason, and nothing is created.
    let fresh = write_config("fresh.yaml", "fresh");
    let out = operator(&home, &["--config", &fresh, "pause"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("holds no journal: nothing was recorded"),
        "{err}"
    );
    assert!(!dir.path().join("fresh").exists(), "no journal created");
    assert!(!home.join(".local").exists(), "no personal journal");
}

/// `lifeboat ARGS` as an operator who is not the service user: uid and
/// gid `nobody`, in the socket's group (here root's, the daemon's) as
/// members of `lifeboat` are under systemd.
fn group_operator(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--groups=0", "--"])
        .arg(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env_remove("LIFEBOAT_STATE_DIR")
        .env_remove("LIFEBOAT_SOCKET")
        .env_remove("LIFEBOAT_CONFIG")
        .env_remove("XDG_STATE_HOME")
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run lifeboat as nobody")
}

#[test]
fn operators_read_runs_reports_and_audit_through_the_daemon() {
    if !nix::unistd::geteuid().is_root() {
        // Another user's state directory needs another user: CI runs as root.
        eprintln!("skipped: needs root to act as a second user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let state = dir.path().join("state");
    let socket = dir.path().join("state.sock");
    let config = one_binding(
        dir.path(),
        "lifeboat.yaml",
        "state",
        "{ id: a, action: wait, with: { duration: 10ms }, restores_service: true }",
        "",
    );
    let config = config.to_str().expect("utf-8");
    // A run recorded in the daemon's journal, whose directory is then the
    // service user's alone (systemd's StateDirectoryMode=0700).
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["--config", config, "run"])
        .arg(dir.path().join("rb.yaml"))
        .arg("--yes")
        .env_remove("LIFEBOAT_STATE_DIR")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let runs: serde_json::Value = serde_json::from_slice(
        &Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["--config", config, "runs", "--output", "json"])
            .output()
            .expect("runs")
            .stdout,
    )
    .expect("JSON");
    let run = runs[0]["id"].as_str().expect("a run").to_string();

    // No daemon: the operator is told why they cannot read, and what to do.
    let out = group_operator(&home, &["--config", config, "runs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("cannot read the daemon's journal in"), "{err}");
    assert!(err.contains("no daemon answers on"), "{err}");
    assert!(err.contains("`lifeboat` group"), "{err}");

    // With the daemon up, the same commands read through its socket.
    let _daemon = crate::support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["daemon", "--config", config])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the daemon"),
    );
    eventually(
        Duration::from_secs(30),
        || "the daemon never opened its socket".into(),
        || std::os::unix::net::UnixStream::connect(&socket).ok(),
    );
    let read = |args: &[&str]| {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        let out = group_operator(&home, &all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    assert!(read(&["runs"]).contains(&run));
    let shown = read(&["show", &run, "--output", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["steps"][0]["step"], "a", "{shown}");
    let report = read(&["report", &run]);
    assert!(report.contains("| RTO | "), "{report}");
    let audit = read(&["audit", "--output", "json"]);
    assert!(audit.contains("run-started"), "{audit}");
    assert!(audit.contains("daemon-start"), "{audit}");
    // An unknown run is refused as it is without the daemon.
    let out = group_operator(&home, &["--config", config, "show", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    assert!(!home.join(".local").exists(), "no personal journal");
}

/// One entry of the journal's native protocol: `KEY=value` lines, or a
/// key, a newline, a little-endian 64-bit length and that many bytes.
fn journal_fields(mut datagram: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !datagram.is_empty() {
        let end = datagram
            .iter()
            .position(|&b| b == b'\n')
            .expect("a field ends in a newline");
        let line = &datagram[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            datagram = &datagram[end + 1..];
        } else {
            let rest = &datagram[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().expect("a length")) as usize;
            fields.push((
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            ));
            datagram = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn under_systemd_each_log_field_is_a_journal_field() {
    let socket_path = Path::new("/run/systemd/journal/socket");
    if socket_path.exists() {
        // A real journal is listening; its entries are not ours to read here.
        eprintln!(
            "skipped: this machine's journal owns {}",
            socket_path.display()
        );
        return;
    }
    if std::fs::create_dir_all(socket_path.parent().expect("a parent")).is_err() {
        eprintln!("skipped: cannot stand in for the journal (not root)");
        return;
    }
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let journal = UnixDatagram::bind(socket_path).expect("stand in for the journal");
    let _cleanup = Remove(socket_path);
    // Read from the start, as journald does: the socket queues ten
    // datagrams, after which the daemon's next line waits for a reader.
    let (entries, entry) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = journal.recv(&mut buf) {
            if entries.send(journal_fields(&buf[..n])).is_err() {
                return;
            }
        }
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let config = one_binding(
        dir.path(),
        "lifeboat.yaml",
        "state",
        "{ id: only, action: wait, with: { duration: 10ms }, restores_service: true }",
        "log: { format: journald, level: info }\n",
    );
    let config = config.to_str().expect("utf-8");
    let daemon = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["daemon", "--config", config])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("LIFEBOAT_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(crate::support::KillOnDrop)
        .expect("start the daemon");
    eventually(
        Duration::from_secs(30),
        || "the daemon never opened its socket".into(),
        || dir.path().join("state.sock").exists().then_some(()),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["--config", config, "trigger", "app"])
        .output()
        .expect("trigger");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let step = loop {
        let fields = entry
            .recv_timeout(Duration::from_secs(30))
            .expect("an entry within the timeout");
        let has = |k: &str, v: &str| fields.iter().any(|(fk, fv)| fk == k && fv == v);
        if has("MESSAGE", "step succeeded") && has("STEP_ID", "only") {
            break fields;
        }
    };
    let get = |k: &str| {
        step.iter()
            .find(|(fk, _)| fk == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {k} in {step:?}"))
    };
    assert_eq!(get("SYSLOG_IDENTIFIER"), "lifeboat");
    assert_eq!(get("PRIORITY"), "6", "info");
    assert_eq!(get("ACTION"), "wait");
    assert_eq!(get("STATE"), "succeeded");
    assert!(get("RUN_ID").len() > 10, "{step:?}");
    assert!(
        step.iter().any(|(k, v)| k == "SPAN_NAME" && v == "run"),
        "{step:?}"
    );
    // Nothing went to stderr as text: the journal had it all.
    let mut daemon = daemon;
    assert!(signal(daemon.0.id(), "TERM"));
    assert_eq!(daemon.0.wait().expect("exit").code(), Some(0));
    let mut err = String::new();
    if let Some(mut e) = daemon.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(!err.contains("step succeeded"), "{err}");
}
