//! The daemon's judgement, end to end: local HTTP servers stand in for the
//! primary region's endpoints, the emulator for AWS, and the shipped
//! pilot-light runbook is bound to the primary region.
//!
//! - endpoints down and staying down: the failover runs exactly once, the
//!   outage declared within interval × threshold + one interval, even with
//!   the daemon SIGKILLed mid-failover and restarted;
//! - (flapping probes never declaring an outage is the daemon's in-process
//!   test, on a paused clock: `src/daemon/tests.rs`);
//! - policy `approve`: nothing until `lifeboat approve`; after the run a
//!   second outage is held until `lifeboat ack`; `pause` holds a third.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use lifeboat::journal::{Access, Decision, Journal};

use crate::support::endpoints::endpoints;
use crate::support::moto::Moto;
use crate::support::proxy::read_request;
use crate::support::{KillOnDrop, eventually, text};

/// The DR application's health endpoint, healthy while `up`.
async fn dr_health(up: Arc<AtomicBool>) -> String {
    format!("{}/healthz", endpoints(up).await)
}

struct Scene {
    moto: Moto,
    dir: tempfile::TempDir,
}

impl Scene {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    /// Write the daemon's config: three probes of the primary, the
    /// pilot-light runbook bound to it.
    fn config(&self, primary: &str, health: &str, policy: &str, interval: &str) -> PathBuf {
        self.config_with(primary, health, policy, interval, "")
    }

    /// `config`, with `extra` (lines indented as the binding's keys) added
    /// to the binding.
    fn config_with(
        &self,
        primary: &str,
        health: &str,
        policy: &str,
        interval: &str,
        extra: &str,
    ) -> PathBuf {
        let runbook = std::env::current_dir()
            .expect("cwd")
            .join("runbooks/pilot-light.yaml");
        let probe = |name: &str| {
            format!(
                "      - {{ name: {name}, http: {{ url: \"{primary}/{name}\" }}, interval: {interval}, timeout: 2s, failure_threshold: 3, recovery_threshold: 2 }}\n"
            )
        };
        let config = self.dir.path().join("lifeboat.yaml");
        std::fs::write(
            &config,
            format!(
                "state_dir: {state}
listen: {{ metrics: \"127.0.0.1:0\", control: {socket} }}
cooldown: 0s
regions:
  us-east-1:
    probes:
{a}{b}{c}bindings:
  app:
    region: us-east-1
    runbook: {runbook}
    params: {{ health_url: \"{health}\" }}
    policy: {policy}
{extra}",
                state = self.state().display(),
                socket = self.socket().display(),
                a = probe("web-a"),
                b = probe("web-b"),
                c = probe("web-c"),
                runbook = runbook.display(),
            ),
        )
        .expect("write config");
        config
    }

    /// Start the daemon; its log goes to `daemon-N.log`.
    fn daemon(&self, config: &Path, n: u32) -> KillOnDrop {
        let log = std::fs::File::create(self.dir.path().join(format!("daemon-{n}.log")))
            .expect("log file");
        let daemon = self
            .moto
            .lifeboat(&self.state())
            .args(["daemon", "--config", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(KillOnDrop)
            .expect("start the daemon");
        eventually(
            Duration::from_secs(60),
            || format!("no control socket:\n{}", self.log(n)),
            || self.socket().exists().then_some(()),
        );
        daemon
    }

    /// Wait (up to 60 s) until the daemon reports the region healthy.
    fn wait_healthy(&self) {
        eventually(
            Duration::from_secs(60),
            || "never healthy again".into(),
            || (self.status()["regions"][0]["state"] == "healthy").then_some(()),
        );
    }

    fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("daemon-{n}.log"))).unwrap_or_default()
    }

    /// `lifeboat ARGS` as an operator runs it next to the daemon.
    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("LIFEBOAT_STATE_DIR", self.state())
            .env("LIFEBOAT_SOCKET", self.socket())
            .stdin(Stdio::null())
            .output()
            .expect("run lifeboat")
    }

    fn journal(&self) -> Journal {
        Journal::open(&self.state(), Access::Client).expect("journal")
    }

    /// The decisions about triggering (not the audit trail's config loads).
    fn decisions(&self) -> Vec<Decision> {
        self.journal()
            .decisions(None)
            .expect("decisions")
            .into_iter()
            .filter(|d| d.binding.is_some() || d.kind == "pause" || d.kind == "resume")
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.decisions()
            .into_iter()
            .map(|d| d.kind.to_string())
            .collect()
    }

    /// Wait (up to 90 s) until `done` holds of the journal's decisions.
    fn wait_for_decisions(&self, n: u32, what: &str, done: impl Fn(&[Decision]) -> bool) {
        eventually(
            Duration::from_secs(90),
            || format!("never {what}: {:?}\n{}", self.kinds(), self.log(n)),
            || done(&self.decisions()).then_some(()),
        );
    }

    /// Wait (up to 90 s) until run `id` is in `state`.
    fn wait_for_run(&self, n: u32, id: &str, state: &str) {
        eventually(
            Duration::from_secs(90),
            || {
                let record = self.journal().run(id).expect("run");
                format!(
                    "run {id} is {} (error {:?}), never {state}:\n{}",
                    record.state,
                    record.error,
                    self.log(n)
                )
            },
            || (self.journal().run(id).expect("run").state == state).then_some(()),
        );
    }

    fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["status", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

async fn scene() -> Scene {
    let moto = Moto::start();
    let aws = moto.clients().await;
    lifeboat::demo::seed(&aws).await.expect("seed");
    moto.start_recording();
    Scene {
        moto,
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

fn seconds(rfc3339: &str) -> f64 {
    let t: jiff::Timestamp = rfc3339.parse().expect("timestamp");
    t.as_millisecond() as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_outage_fails_over_exactly_once_even_across_a_sigkill() {
    let scene = scene().await;
    let mode = Arc::new(AtomicBool::new(true));
    let primary = endpoints(Arc::clone(&mode)).await;
    // The DR application answers only once the test says so: the run waits
    // in its last step, where the daemon is killed.
    let dr_up = Arc::new(AtomicBool::new(false));
    let health = dr_health(Arc::clone(&dr_up)).await;
    let config = scene.config(&primary, &health, "auto", "2s");
    let mut daemon = scene.daemon(&config, 1);
    let status = scene.status();
    assert_eq!(status["bindings"][0]["state"], "armed", "{status}");

    let down_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    mode.store(false, Ordering::SeqCst);
    scene.wait_for_decisions(1, "started a run", |d| {
        d.iter().any(|d| d.kind == "started")
    });
    let started = scene
        .decisions()
        .into_iter()
        .find(|d| d.kind == "started")
        .expect("started");
    assert_eq!(started.who, "lifeboat daemon");
    let evidence = &started.detail.as_ref().expect("detail")["evidence"];
    assert_eq!(evidence["region"], "us-east-1", "{evidence}");
    let failing = evidence["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .filter(|p| p["failing"] == true)
        .count();
    assert!(failing >= 2, "a quorum of probes: {evidence}");
    assert!(
        evidence["probes"][0]["last_detail"]
            .as_str()
            .is_some_and(|d| d.contains("503")),
        "{evidence}"
    );
    let run = started.run.clone().expect("run id");
    let marks = scene.journal().marks(&run).expect("marks");
    let declared = marks
        .iter()
        .find(|m| m.kind == "outage_declared")
        .expect("outage_declared mark");
    let incident = marks
        .iter()
        .find(|m| m.kind == "incident_start")
        .expect("incident_start mark");
    // interval × failure_threshold + one interval.
    let bound = 2.0 * 3.0 + 2.0;
    let detection = seconds(&declared.at) - down_at;
    assert!(
        detection > 0.0 && detection <= bound,
        "declared {detection:.2} s after the endpoints went down (bound {bound} s)"
    );
    assert!(seconds(&incident.at) >= down_at && seconds(&incident.at) <= seconds(&declared.at));

    // Killed while the run waits for the DR application; restarted.
    crate::support::wait_for(&scene.state(), &run, "verify", "running");
    daemon.0.kill().expect("SIGKILL the daemon");
    let _ = daemon.0.wait();
    dr_up.store(true, Ordering::SeqCst);
    let _daemon = scene.daemon(&config, 2);
    scene.wait_for_run(2, &run, "succeeded");
    // The restarted daemon sees the region still down, and holds.
    scene.wait_for_decisions(2, "decided on the re-declared outage", |d| d.len() >= 2);
    let kinds = scene.kinds();
    assert_eq!(count(&kinds, "started"), 1, "{kinds:?}");
    assert!(
        kinds[1] == "blocked-active-run" || kinds[1] == "blocked-cooldown",
        "{kinds:?}"
    );
    assert_eq!(scene.journal().runs().expect("runs").len(), 1);
    let log = scene.log(2);
    assert!(log.contains("resuming an interrupted run"), "{log}");
    // Each step transition is logged, inside the run's and the step's
    // spans, the error as a field.
    let verified = log
        .lines()
        .find(|l| l.contains("step succeeded") && l.contains("step_id=verify"))
        .unwrap_or_else(|| panic!("no transition of the resumed step logged:\n{log}"));
    assert!(verified.contains(&format!("run_id={run}")), "{verified}");
    assert!(verified.contains("action=http.wait_healthy"), "{verified}");
    let promoted = scene
        .log(1)
        .lines()
        .find(|l| l.contains("step running") && l.contains("step_id=promote-db"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no transition of promote-db logged:\n{}", scene.log(1)));
    assert!(
        promoted.contains("action=rds.promote_read_replica"),
        "{promoted}"
    );

    // Every change reached AWS once.
    let changes = scene.moto.changes();
    assert_eq!(
        changes,
        BTreeMap::from([
            ("ChangeResourceRecordSets".to_string(), 1),
            ("PromoteReadReplica".to_string(), 1),
            ("StartInstances".to_string(), 1),
        ]),
        "{:?}",
        scene.moto.changes_in_order()
    );
    let figures = scene.ctl(&["report", &run, "--format", "json"]);
    let figures: serde_json::Value = serde_json::from_slice(&figures.stdout).expect("JSON");
    assert_eq!(
        figures["incident_source"], "first failed probe of the declared outage",
        "{figures}"
    );
    assert!(
        figures["breakdown"]["detection_s"]
            .as_f64()
            .is_some_and(|d| d > 0.0 && d <= bound),
        "{figures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_failover_losing_more_than_max_data_loss_waits_before_promoting() {
    let scene = scene().await;
    // The replica is ten minutes behind.
    scene
        .moto
        .set_replica_lag("us-west-2", "app-db-replica", Some(600.0));
    let aws = scene.moto.clients().await;
    crate::support::seed::wait_for_replica_lag(&aws, "us-west-2", "app-db-replica", 600.0).await;
    let mode = Arc::new(AtomicBool::new(true));
    let primary = endpoints(Arc::clone(&mode)).await;
    let health = dr_health(Arc::new(AtomicBool::new(true))).await;
    let config = scene.config_with(
        &primary,
        &health,
        "auto",
        "300ms",
        "    max_data_loss: 1m\n",
    );
    let _daemon = scene.daemon(&config, 1);
    mode.store(false, Ordering::SeqCst);
    scene.wait_for_decisions(1, "started a run", |d| {
        d.iter().any(|d| d.kind == "started")
    });
    let run = scene.journal().runs().expect("runs")[0].run.id.clone();
    let held = || {
        scene
            .journal()
            .events(&run)
            .expect("events")
            .into_iter()
            .find(|e| e.step == "promote-db" && e.state == "waiting")
            .and_then(|e| e.message)
    };
    let why = eventually(
        Duration::from_secs(90),
        || format!("the promotion was never held:\n{}", scene.log(1)),
        held,
    );
    assert!(
        why.contains("promoting would lose 9m") || why.contains("promoting would lose 10m"),
        "{why}"
    );
    assert!(why.contains("over the limit of 1m"), "{why}");
    // Held, it changes nothing; the steps beside it went on.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        scene.moto.changes().get("PromoteReadReplica"),
        None,
        "{:?}",
        scene.moto.changes()
    );
    // The operator refuses the loss: the step fails, and with it the run.
    let reject = scene.ctl(&["reject", &run, "promote-db"]);
    assert_eq!(reject.status.code(), Some(0), "{}", text(&reject.stderr));
    scene.wait_for_run(1, &run, "failed");
    assert_eq!(scene.moto.changes().get("PromoteReadReplica"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_then_ack_then_pause_each_hold_the_next_run() {
    let scene = scene().await;
    let mode = Arc::new(AtomicBool::new(true));
    let primary = endpoints(Arc::clone(&mode)).await;
    let health = dr_health(Arc::new(AtomicBool::new(true))).await;
    let config = scene.config(&primary, &health, "approve", "300ms");
    let daemon = scene.daemon(&config, 1);
    let outage = |n: usize| {
        mode.store(false, Ordering::SeqCst);
        scene.wait_for_decisions(1, "decided on the outage", |d| d.len() >= n);
        // Declared once, decided once: the decision is the last word.
        std::thread::sleep(Duration::from_secs(1));
        mode.store(true, Ordering::SeqCst);
        scene.wait_healthy();
    };

    // The first outage waits for a human.
    mode.store(false, Ordering::SeqCst);
    scene.wait_for_decisions(1, "asked for approval", |d| {
        d.iter().any(|d| d.kind == "awaiting-approval")
    });
    let status = scene.status();
    assert_eq!(
        status["bindings"][0]["state"], "awaiting-approval",
        "{status}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        scene.journal().runs().expect("runs").is_empty(),
        "nothing runs unapproved"
    );
    let approve = scene.ctl(&["approve", "app"]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve.stderr));
    assert!(
        text(&approve.stdout).contains("approved: run "),
        "{}",
        text(&approve.stdout)
    );
    let runs = scene.journal().runs().expect("runs");
    assert_eq!(runs.len(), 1);
    let run = runs[0].run.id.clone();
    scene.wait_for_run(1, &run, "succeeded");
    let approved = scene
        .decisions()
        .into_iter()
        .find(|d| d.kind == "approved")
        .expect("approved");
    assert!(
        approved.who.contains("(uid "),
        "SO_PEERCRED: {}",
        approved.who
    );
    assert!(
        approved.who.contains("pid "),
        "SO_PEERCRED: {}",
        approved.who
    );
    assert!(
        scene
            .journal()
            .marks(&run)
            .expect("marks")
            .iter()
            .any(|m| m.kind == "outage_declared"),
        "the approved run measures from the outage"
    );
    mode.store(true, Ordering::SeqCst);
    scene.wait_healthy();
    let again = scene.ctl(&["approve", "app"]);
    assert_eq!(again.status.code(), Some(2), "nothing is waiting now");
    assert!(
        text(&again.stderr).contains("not waiting for approval"),
        "{}",
        text(&again.stderr)
    );

    // A second outage is held until a human acknowledges the run.
    let n = scene.decisions().len();
    outage(n + 1);
    assert_eq!(
        scene.kinds().last().map(String::as_str),
        Some("blocked-cooldown")
    );
    let status = scene.status();
    assert_eq!(status["bindings"][0]["state"], "cooling-down", "{status}");
    assert_eq!(
        status["bindings"][0]["last_run"]["run"],
        run.as_str(),
        "{status}"
    );
    let ack = scene.ctl(&["ack", "app"]);
    assert_eq!(ack.status.code(), Some(0), "{}", text(&ack.stderr));
    assert_eq!(scene.status()["bindings"][0]["state"], "armed");

    // The kill switch holds the next one; it persists in the journal.
    let pause = scene.ctl(&["pause", "--reason", "network maintenance"]);
    assert_eq!(pause.status.code(), Some(0), "{}", text(&pause.stderr));
    let n = scene.decisions().len();
    outage(n + 1);
    assert_eq!(
        scene.kinds().last().map(String::as_str),
        Some("blocked-paused")
    );
    assert_eq!(
        scene.journal().runs().expect("runs").len(),
        1,
        "still one run"
    );
    let status = scene.status();
    assert_eq!(
        status["paused"]["reason"], "network maintenance",
        "{status}"
    );
    let resume = scene.ctl(&["resume"]);
    assert_eq!(resume.status.code(), Some(0), "{}", text(&resume.stderr));
    assert_eq!(scene.status()["paused"], serde_json::Value::Null);
    let kinds = scene.kinds();
    assert_eq!(
        kinds,
        [
            "awaiting-approval",
            "approved",
            "started",
            "blocked-cooldown",
            "ack",
            "pause",
            "blocked-paused",
            "resume"
        ],
        "every decision, in order"
    );

    // The audit trail: who did each of it, config loads included.
    let status = Command::new("kill")
        .args(["-HUP", &daemon.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let audit_now = || {
        let out = scene.ctl(&["audit", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")
    };
    let audit = eventually(
        Duration::from_secs(30),
        || format!("no config reload in {}", audit_now()),
        || {
            Some(audit_now()).filter(|audit| {
                audit
                    .as_array()
                    .is_some_and(|a| a.iter().any(|e| e["what"] == "config-reload"))
            })
        },
    );
    let entries = audit.as_array().expect("entries");
    let by = |what: &str| -> String {
        entries
            .iter()
            .find(|e| e["what"] == what)
            .and_then(|e| e["who"].as_str())
            .unwrap_or_else(|| panic!("no `{what}` in {audit}"))
            .to_string()
    };
    for what in [
        "approved",
        "ack",
        "pause",
        "resume",
        "run-started (failover)",
    ] {
        assert!(
            by(what).contains("(uid ") && by(what).contains("pid "),
            "{what}: {}",
            by(what)
        );
    }
    assert!(by("daemon-start").starts_with("lifeboat daemon (pid "));
    assert_eq!(by("config-reload"), "SIGHUP");
    assert_eq!(by("blocked-cooldown"), "lifeboat daemon");
    let run_entry = entries
        .iter()
        .find(|e| e["what"] == "run-started (failover)")
        .expect("run entry");
    assert_eq!(run_entry["detail"]["runbook"], "pilot-light-failover");
    assert!(
        run_entry["detail"]["sha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    let pause = entries
        .iter()
        .find(|e| e["what"] == "pause")
        .expect("pause");
    assert_eq!(pause["detail"]["reason"], "network maintenance");
    let since = scene.ctl(&["audit", "--since", "1h", "--output", "json"]);
    let since: serde_json::Value = serde_json::from_slice(&since.stdout).expect("JSON");
    assert_eq!(since.as_array().map(Vec::len), Some(entries.len()));
    let future = scene.ctl(&[
        "audit",
        "--since",
        "2999-01-01T00:00:00Z",
        "--output",
        "json",
    ]);
    assert_eq!(text(&future.stdout).trim(), "[]");
}

/// A webhook receiver; the JSON bodies it was sent.
async fn webhook() -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let Ok(Some((_, body))) = read_request(&mut stream).await else {
                    return;
                };
                if let Ok(event) = serde_json::from_slice(&body) {
                    sink.lock().expect("events").push(event);
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}/hooks/secret-token"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_route53_probes_and_webhooks() {
    let scene = scene().await;
    let aws = scene.moto.clients().await;
    let check = aws
        .route53()
        .create_health_check()
        .caller_reference("lifeboat-test")
        .health_check_config(
            aws_sdk_route53::types::HealthCheckConfig::builder()
                .r#type(aws_sdk_route53::types::HealthCheckType::Https)
                .fully_qualified_domain_name("app.example.com")
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("create health check");
    let id = check.health_check().expect("health check").id().to_string();
    let (hook, events) = webhook().await;
    let runbook = std::env::current_dir()
        .expect("cwd")
        .join("runbooks/pilot-light.yaml");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = scene.dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {state}
listen: {{ metrics: \"127.0.0.1:{metrics_port}\", control: {socket} }}
notify:
  - {{ url: \"{hook}\", allow_http: true }}
regions:
  us-east-1:
    quorum: 2
    probes:
      - {{ name: dns-check, route53_health_check: \"{id}\", interval: 200ms }}
      - {{ name: gone-check, route53_health_check: no-such-check, interval: 200ms }}
bindings:
  ghost:
    region: us-east-1
    runbook: {runbook}
    params: {{ db_replica: no-such-replica }}
    policy: notify
",
            state = scene.state().display(),
            socket = scene.socket().display(),
            runbook = runbook.display(),
        ),
    )
    .expect("write config");
    let _daemon = scene.daemon(&config, 1);

    let status = eventually(
        Duration::from_secs(60),
        || format!("{}\n{}", scene.status(), scene.log(1)),
        || {
            Some(scene.status()).filter(|status| {
                let probes = &status["regions"][0]["probes"];
                !status["bindings"][0]["ready"].is_null()
                    && !probes[0]["last_ok"].is_null()
                    && !probes[1]["last_ok"].is_null()
            })
        },
    );
    let probes = &status["regions"][0]["probes"];
    assert_eq!(probes[0]["last_ok"], true, "{status}");
    assert!(
        probes[0]["last_detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 of 1 checkers report success")),
        "{status}"
    );
    assert_eq!(probes[1]["last_ok"], false, "{status}");
    assert!(
        probes[1]["last_detail"]
            .as_str()
            .is_some_and(|d| d.contains("NoSuchHealthCheck")),
        "{status}"
    );
    let ghost = &status["bindings"][0];
    assert_eq!(ghost["ready"], false, "{status}");
    assert!(
        ghost["not_ready"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains("no-such-replica")))),
        "{status}"
    );
    let text_status = scene.ctl(&["status"]);
    assert!(
        text(&text_status.stdout).contains("binding ghost (us-east-1 ->"),
        "{}",
        text(&text_status.stdout)
    );
    assert!(text(&text_status.stdout).contains("NOT READY"));

    let metrics = crate::support::get(metrics_port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains(
            r#"lifeboat_runbook_ready{binding="ghost",runbook="pilot-light-failover"} 0"#
        ),
        "{metrics}"
    );

    let e = eventually(
        Duration::from_secs(30),
        || {
            format!(
                "no webhook: {:?}\n{}",
                events.lock().expect("events"),
                scene.log(1)
            )
        },
        || {
            let got = events.lock().expect("events");
            got.iter()
                .find(|e| e["event"] == "runbook-not-ready")
                .cloned()
        },
    );
    assert_eq!(e["binding"], "ghost", "{e}");
    assert!(
        e["summary"]
            .as_str()
            .is_some_and(|s| s.contains("would fail now")),
        "{e}"
    );
    assert!(
        !scene.log(1).contains("secret-token"),
        "webhook URLs are not logged whole"
    );
}

/// After a failover by pilot-light, `lifeboat reprotect app` builds a
/// replica of the new primary back in the old primary's region (the
/// runbook's `when: reprotect` step), and the binding then watches its
/// reprotected side: us-west-2, failing over into us-east-1. Its RPO
/// exposure follows: the new replica's is measured, the promoted one's
/// withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprotect_rebuilds_the_replica_the_other_way_and_the_binding_watches_the_new_primary() {
    let scene = scene().await;
    let aws = scene.moto.clients().await;
    let health = lifeboat::demo::health_endpoint().await.expect("health");
    let runbook = std::env::current_dir()
        .expect("cwd")
        .join("runbooks/pilot-light.yaml");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = scene.dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {state}
listen: {{ metrics: \"127.0.0.1:{metrics_port}\", control: {socket} }}
cooldown: 0s
exposure_interval: 1s
regions:
  us-east-1:
    probes: [ {{ name: east, http: {{ url: \"{health}\" }}, interval: 1s }} ]
  us-west-2:
    probes: [ {{ name: west, http: {{ url: \"{health}\" }}, interval: 1s }} ]
bindings:
  app:
    region: us-east-1
    runbook: {runbook}
    params: {{ health_url: \"{health}\" }}
    policy: approve
    protected: [ {{ kind: rds_replica, db_instance: app-db-replica, region: us-west-2, rpo_target: 5m }} ]
    reprotected:
      region: us-west-2
      runbook: {runbook}
      params: {{ primary_region: us-west-2, dr_region: us-east-1, db_replica: app-db-reprotected, health_url: \"{health}\" }}
      protected: [ {{ kind: rds_replica, db_instance: app-db-reprotected, region: us-east-1, rpo_target: 5m }} ]
",
            state = scene.state().display(),
            socket = scene.socket().display(),
            runbook = runbook.display(),
        ),
    )
    .expect("write config");
    let daemon = scene.daemon(&config, 1);
    // What the daemon measures exposure of, by its status and its metrics.
    let exposed = |n: u32, wanted: &str, gone: &str| {
        eventually(
            Duration::from_secs(60),
            || {
                format!(
                    "exposure never of {wanted} alone: {}\n{}",
                    scene.status()["exposure"],
                    scene.log(n)
                )
            },
            || {
                let status = scene.status();
                let names: Vec<String> = status["exposure"]
                    .as_array()?
                    .iter()
                    .map(|e| e["resource"].as_str().unwrap_or_default().to_string())
                    .collect();
                let metrics = crate::support::get(metrics_port, "/metrics")?;
                (names == [wanted.to_string()]
                    && status["exposure"][0]["binding"] == "app"
                    && !metrics.contains(gone))
                .then_some(())
            },
        );
    };
    exposed(
        1,
        "rds-replica:us-west-2:app-db-replica",
        "app-db-reprotected",
    );
    let out = scene.ctl(&["trigger", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let failover = scene.journal().runs().expect("runs")[0].run.id.clone();
    scene.wait_for_run(1, &failover, "succeeded");

    let out = scene.ctl(&["reprotect", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    scene.wait_for_decisions(1, "reprotected", |d| {
        d.iter().any(|d| d.kind == "reprotected")
    });
    let replica = crate::support::seed::db(&aws, "us-east-1", "app-db-reprotected")
        .await
        .expect("the replica built back in us-east-1");
    assert!(
        replica
            .read_replica_source_db_instance_identifier()
            .is_some_and(|s| s.contains("app-db-replica")),
        "a replica of the new primary: {replica:?}"
    );
    let status = scene.status();
    assert_eq!(status["bindings"][0]["region"], "us-west-2", "{status}");
    // Exposure follows the new topology, in the daemon and on the
    // command line (which reads the side from the journal).
    exposed(
        1,
        "rds-replica:us-east-1:app-db-reprotected",
        "app-db-replica\"",
    );
    let out = scene.ctl(&["exposure", "--config", config.to_str().expect("utf-8")]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rds-replica:us-east-1:app-db-reprotected")
            && stdout.contains("[binding app]")
            && !stdout.contains("us-west-2:app-db-replica"),
        "{stdout}{}",
        text(&out.stderr)
    );
    // The reprotect ran only its own step.
    let runs = scene.journal().runs().expect("runs");
    let reprotect = runs
        .iter()
        .find(|r| r.run.mode == "reprotect")
        .expect("the reprotect run");
    let steps: std::collections::BTreeSet<String> = scene
        .journal()
        .events(&reprotect.run.id)
        .expect("events")
        .into_iter()
        .map(|e| e.step)
        .collect();
    assert_eq!(steps, ["replica-back".to_string()].into());

    // A restarted daemon reads the journal: still the reprotected side.
    drop(daemon);
    let _ = std::fs::remove_file(scene.socket());
    let _daemon = scene.daemon(&config, 2);
    let status = scene.status();
    assert_eq!(
        status["bindings"][0]["region"], "us-west-2",
        "after a restart: {status}"
    );
}
