//! The daemon's judgement in process: probe results fed on tokio's paused
//! clock (so a minute of probing takes no time and absence is proven in
//! virtual time, not by waiting), the journal read back. What only a
//! process shows (signals, systemd's notify socket, SIGKILL, the binary's
//! permission checks) is tested on the binary, in `tests/lifeboat/`.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{DaemonError, Host, Probes, Signal, load_config, run};
use crate::aws::{AwsClients, AwsSettings, Credentials};
use crate::journal::{Access, DecisionKind, Journal, RunState};
use crate::probe::Outcome;

/// Two quick steps, so a run started on a declared outage ends in
/// seconds of virtual time.
const RUNBOOK: &str = "name: app
strategy: pilot-light
regions: { from: us-east-1, to: us-west-2 }
steps:
  - { id: first, action: wait, with: { duration: 2s } }
  - { id: last, action: wait, needs: [first], with: { duration: 1s }, restores_service: true }
";

/// A runbook as quick as [`RUNBOOK`]: `head` (strategy, params, regions),
/// two waits, the second restoring service, then the `extra` steps.
fn quick_runbook(name: &str, head: &str, extra: &str) -> String {
    format!(
        "name: {name}\n{head}\nsteps:\n  - {{ id: first, action: wait, with: {{ duration: 1s }} }}\n  - {{ id: last, action: wait, needs: [first], with: {{ duration: 1s }}, restores_service: true }}\n{extra}"
    )
}

/// The other runbooks `launch_watching` writes beside `rb.yaml`.
fn other_runbooks() -> Vec<(&'static str, String)> {
    let east_to_west = "strategy: pilot-light\nregions: { from: us-east-1, to: us-west-2 }";
    vec![
        // A zone's recovery: it names the zone it leaves.
        (
            "zonal.yaml",
            quick_runbook(
                "zonal",
                "strategy: multi-az\nparams:\n  zone: { description: The failed zone }\nregions: { from: us-east-1, to: us-east-1 }",
                "",
            ),
        ),
        // A recovery into two regions.
        (
            "three.yaml",
            quick_runbook(
                "three",
                "strategy: active-active\nregions: { from: us-east-1, to: us-west-2, also: [eu-west-1] }",
                "",
            ),
        ),
        // A failover that fences the old primary once its region is back.
        (
            "fenced.yaml",
            quick_runbook(
                "fenced",
                east_to_west,
                "  - { id: fence-app, action: wait, when: fence, with: { duration: 1s } }\n",
            ),
        ),
        // A failover that rebuilds the protection the other way.
        (
            "reprotect.yaml",
            quick_runbook(
                "east-to-west",
                east_to_west,
                "  - { id: replica-back, action: wait, when: reprotect, with: { duration: 1s } }\n",
            ),
        ),
        // The failover of the other topology, once reprotected.
        (
            "back.yaml",
            quick_runbook(
                "west-to-east",
                "strategy: pilot-light\nregions: { from: us-west-2, to: us-east-1 }",
                "",
            ),
        ),
    ]
}

/// Settings for clients that reach nothing.
fn nowhere() -> AwsSettings {
    AwsSettings {
        profile: None,
        endpoint_url: Some("http://127.0.0.1:9".into()),
        ..Default::default()
    }
}

/// A daemon running in this process on a temporary state directory, its
/// one probe (`web`, in us-east-1, failing after 3 results in a row) fed
/// by the test.
struct InProcess {
    _dir: tempfile::TempDir,
    state: PathBuf,
    metrics_addr: std::net::SocketAddr,
    feed: mpsc::Sender<Outcome>,
    signals: mpsc::Sender<Signal>,
    task: JoinHandle<Result<(), DaemonError>>,
}

impl InProcess {
    async fn start(policy: &str) -> InProcess {
        InProcess::start_with(policy, "", |_| {}).await
    }

    /// Started with `extra` appended to the config, after `before` saw
    /// the state directory.
    async fn start_with(
        policy: &str,
        extra: &str,
        before: impl FnOnce(&std::path::Path),
    ) -> InProcess {
        // Nothing here calls AWS; the clients point nowhere, to be sure.
        let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
        let bindings = format!(
            "bindings:\n  app: {{ region: us-east-1, runbook: rb.yaml, policy: {policy} }}\n"
        );
        InProcess::launch(&format!("{bindings}{extra}"), aws, before).await
    }

    /// Started on these clients with `rest` after the config's regions.
    async fn launch(
        rest: &str,
        aws: AwsClients,
        before: impl FnOnce(&std::path::Path),
    ) -> InProcess {
        let regions =
            "  us-east-1:\n    probes: [ { name: web, tcp: \"127.0.0.1:9\", interval: 1s } ]\n";
        InProcess::launch_watching(regions, rest, aws, before).await
    }

    /// Started with these `regions` (the block's body) and `rest`; beside
    /// `rb.yaml` the directory holds the runbooks of `other_runbooks`.
    async fn launch_watching(
        regions: &str,
        rest: &str,
        aws: AwsClients,
        before: impl FnOnce(&std::path::Path),
    ) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rb.yaml"), RUNBOOK).unwrap();
        for (file, text) in other_runbooks() {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        let state = dir.path().join("state");
        let config_path = dir.path().join("lifeboat.yaml");
        std::fs::write(
            &config_path,
            format!(
                "state_dir: {}\nlisten: {{ metrics: \"127.0.0.1:0\", control: {} }}\nregions:\n{regions}{rest}",
                state.display(),
                dir.path().join("control.sock").display()
            ),
        )
        .unwrap();
        before(&state);
        let config = load_config(&config_path).map_err(|(e, _)| e).unwrap();
        let host_metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_addr = host_metrics.local_addr().unwrap();
        let control = crate::control::bind(&config.control_socket).unwrap();
        let (feed, fed) = mpsc::channel(64);
        let (signals, signals_rx) = mpsc::channel(4);
        let host = Host {
            metrics: host_metrics,
            control,
            signals: signals_rx,
            aws,
            probes: Probes::Fed(fed),
        };
        let task = tokio::spawn(async move { run(&config_path, config, false, host).await });
        InProcess {
            _dir: dir,
            state,
            metrics_addr,
            feed,
            signals,
            task,
        }
    }

    /// One result of the `web` probe, then a probe interval.
    async fn probe(&self, ok: bool) {
        self.tick(&[("us-east-1", 0, ok)]).await;
    }

    /// One result of probe `probe` of `region`, at once.
    async fn feed(&self, region: &str, probe: usize, ok: bool) {
        self.feed
            .send(Outcome {
                region: region.into(),
                probe,
                ok,
                at: jiff::Timestamp::now().to_string(),
                duration_s: 0.25,
                detail: if ok { "connected" } else { "refused" }.into(),
            })
            .await
            .unwrap();
    }

    /// One round of results, `(region, probe, ok)` in this order, then a
    /// probe interval.
    async fn tick(&self, results: &[(&str, usize, bool)]) {
        for &(region, probe, ok) in results {
            self.feed(region, probe, ok).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// The detail of the binding's first decision of `kind`.
    fn detail_of(&self, kind: DecisionKind) -> serde_json::Value {
        self.journal()
            .decisions(Some("app"))
            .unwrap()
            .into_iter()
            .find(|d| d.kind == kind)
            .and_then(|d| d.detail)
            .unwrap_or_else(|| panic!("no {kind} decision: {:?}", self.decisions()))
    }

    /// Whether a run in `mode` has succeeded.
    fn succeeded(&self, mode: &str) -> bool {
        self.journal()
            .runs()
            .unwrap()
            .iter()
            .any(|r| r.run.mode == mode && r.state == RunState::Succeeded)
    }

    fn journal(&self) -> Journal {
        Journal::open(&self.state, Access::Client).unwrap()
    }

    fn decisions(&self) -> Vec<DecisionKind> {
        self.journal()
            .decisions(Some("app"))
            .unwrap()
            .into_iter()
            .map(|d| d.kind)
            .collect()
    }

    /// Virtual time passes (a second at a time) until `done`, for at most
    /// `within`.
    async fn until(&self, within: Duration, done: impl Fn(&InProcess) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if done(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        done(self)
    }

    /// `GET /metrics`, the whole response.
    async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).await.unwrap();
        body
    }

    /// A request over the control socket, as `lifeboat` sends it.
    async fn ask(&self, request: &crate::control::Request) -> crate::control::Response {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let socket = self._dir.path().join("control.sock");
        let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        let mut line = serde_json::to_string(request).unwrap();
        line.push('\n');
        stream.write_all(line.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::io::BufReader::new(stream)
            .read_line(&mut answer)
            .await
            .unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    /// The daemon's status, as `lifeboat status --output json` shows it.
    async fn status(&self) -> serde_json::Value {
        let answer = self.ask(&crate::control::Request::Status).await;
        assert!(answer.ok, "{}", answer.message);
        answer.status.unwrap()
    }

    async fn stop(self) {
        self.signals.send(Signal::Stop).await.unwrap();
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_sustained_failure_is_declared_and_fails_over_once() {
    let d = InProcess::start("auto").await;
    for _ in 0..2 {
        d.probe(false).await;
    }
    assert!(
        d.decisions().is_empty(),
        "two failures are under the threshold of three: {:?}",
        d.decisions()
    );
    // It stays down for a minute: one declaration, one run.
    for _ in 0..60 {
        d.probe(false).await;
    }
    let ran = d
        .until(Duration::from_secs(60), |d| {
            d.journal()
                .runs()
                .unwrap()
                .first()
                .is_some_and(|r| r.state == RunState::Succeeded)
        })
        .await;
    assert!(ran, "the failover never succeeded: {:?}", d.decisions());
    assert_eq!(d.journal().runs().unwrap().len(), 1);
    assert_eq!(
        d.decisions()
            .iter()
            .filter(|k| **k == DecisionKind::Started)
            .count(),
        1,
        "{:?}",
        d.decisions()
    );
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_flapping_probe_is_never_declared_in_ten_minutes() {
    let d = InProcess::start("auto").await;
    for i in 0..600 {
        d.probe(i % 2 == 0).await;
    }
    assert!(d.decisions().is_empty(), "{:?}", d.decisions());
    assert!(d.journal().runs().unwrap().is_empty());
    // Each probe's last check is a series of its own.
    let body = d.scrape().await;
    assert!(
        body.contains(r#"lifeboat_probe_success{region="us-east-1",probe="web"} 0"#),
        "{body}"
    );
    assert!(
        body.contains(r#"lifeboat_probe_duration_seconds{region="us-east-1",probe="web"} 0.25"#),
        "{body}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn under_the_approve_policy_a_declared_outage_waits_for_a_human() {
    let d = InProcess::start("approve").await;
    for _ in 0..5 {
        d.probe(false).await;
    }
    let asked = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::AwaitingApproval)
        })
        .await;
    assert!(asked, "{:?}", d.decisions());
    // An hour later, still nothing ran.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(d.journal().runs().unwrap().is_empty());
    // The region recovering withdraws the request.
    for _ in 0..3 {
        d.probe(true).await;
    }
    let withdrawn = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::Withdrawn)
        })
        .await;
    assert!(withdrawn, "{:?}", d.decisions());
    d.stop().await;
}

/// A daemon whose binding `app` (policy `policy`) fails us-east-1 over into
/// us-west-2, which two probes watch.
async fn watching_the_recovery_region(policy: &str) -> InProcess {
    let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
    let rest = format!(
        "  us-west-2:\n    probes:\n      - {{ name: dr-web, tcp: \"127.0.0.1:9\", interval: 1s }}\n      - {{ name: dr-api, tcp: \"127.0.0.1:9\", interval: 1s }}\n    quorum: 2\nbindings:\n  app: {{ region: us-east-1, runbook: rb.yaml, policy: {policy} }}\n"
    );
    InProcess::launch(&rest, aws, |_| {}).await
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn nothing_fails_into_a_recovery_region_that_is_down_too() {
    let d = watching_the_recovery_region("auto").await;
    // us-west-2 goes down first, then us-east-1.
    for _ in 0..5 {
        d.tick(&[("us-west-2", 0, false), ("us-west-2", 1, false)])
            .await;
    }
    for _ in 0..5 {
        d.probe(false).await;
    }
    let refused = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::BlockedRecoveryDown)
        })
        .await;
    assert!(refused, "{:?}", d.decisions());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(d.journal().runs().unwrap().is_empty(), "nothing ran");
    // With the evidence: what the recovery region's probes showed.
    let detail = d.detail_of(DecisionKind::BlockedRecoveryDown);
    assert!(
        detail["reason"]
            .as_str()
            .unwrap()
            .contains("us-west-2 is down with 2 of 2 probes failing"),
        "{detail}"
    );
    let probes = &detail["recovery_region"]["probes"];
    assert_eq!(probes[0]["probe"], "dr-web", "{detail}");
    assert_eq!(probes[0]["failing"], true, "{detail}");
    assert_eq!(probes[1]["last_detail"], "refused", "{detail}");
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_automatic_failover_into_a_region_partly_failing_waits_for_a_human() {
    let d = watching_the_recovery_region("auto").await;
    // One of us-west-2's two probes failing: under its quorum of two.
    for _ in 0..5 {
        d.tick(&[("us-west-2", 0, false), ("us-west-2", 1, true)])
            .await;
    }
    for _ in 0..5 {
        d.probe(false).await;
    }
    let asked = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::AwaitingApproval)
        })
        .await;
    assert!(asked, "{:?}", d.decisions());
    assert!(d.journal().runs().unwrap().is_empty(), "nothing ran");
    let detail = d.detail_of(DecisionKind::AwaitingApproval);
    assert!(
        detail["reason"].as_str().unwrap().contains(
            "us-west-2 is degraded with 1 of 2 probes failing (1 failed their last check)"
        ),
        "{detail}"
    );
    // A human who looked approves it, and it runs.
    let answer = d
        .ask(&crate::control::Request::Approve {
            target: "app".into(),
            step: None,
        })
        .await;
    assert!(answer.ok, "{}", answer.message);
    let ran = d
        .until(Duration::from_secs(60), |d| {
            d.journal()
                .runs()
                .unwrap()
                .first()
                .is_some_and(|r| r.state == RunState::Succeeded)
        })
        .await;
    assert!(ran, "{:?}", d.decisions());
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn regions_failing_together_fail_over_into_neither_without_a_human() {
    let d = watching_the_recovery_region("auto").await;
    // Every probe fails from the same moment (this host cut off, say):
    // us-east-1's results arrive first each time, so it is declared while
    // us-west-2's own threshold is one result short.
    for _ in 0..5 {
        d.tick(&[
            ("us-east-1", 0, false),
            ("us-west-2", 0, false),
            ("us-west-2", 1, false),
        ])
        .await;
    }
    let asked = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::AwaitingApproval)
        })
        .await;
    assert!(asked, "{:?}", d.decisions());
    assert!(!d.decisions().contains(&DecisionKind::Started));
    assert!(d.journal().runs().unwrap().is_empty(), "nothing ran");
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_outage_in_a_maintenance_window_is_weighed_again_when_it_closes() {
    // A window that opened a second ago (by the wall clock, which the
    // windows follow) and lasts ten seconds.
    let opened = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let utc = opened.as_second();
    let schedule = format!("{} {} {} * * *", utc % 60, utc / 60 % 60, utc / 3600 % 24);
    let rest = format!(
        "bindings:\n  app:\n    region: us-east-1\n    runbook: rb.yaml\n    policy: auto\n    maintenance: [ {{ schedule: \"{schedule}\", duration: 10s }} ]\n"
    );
    let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
    let d = InProcess::launch(&rest, aws, |_| {}).await;
    for _ in 0..5 {
        d.probe(false).await;
    }
    let held = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::BlockedMaintenance)
        })
        .await;
    assert!(held, "{:?}", d.decisions());
    assert!(d.journal().runs().unwrap().is_empty(), "nothing ran");
    let status = d.status().await;
    assert_eq!(status["bindings"][0]["state"], "in-maintenance", "{status}");
    assert!(
        status["bindings"][0]["maintenance_until"].is_string(),
        "{status}"
    );
    assert!(
        d.scrape()
            .await
            .contains(r#"lifeboat_binding_state{binding="app",state="in-maintenance"} 1"#)
    );
    // The window closes with the region still down: the failover starts.
    let closes = opened + jiff::SignedDuration::from_secs(10);
    while jiff::Timestamp::now() < closes {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ran = d
        .until(Duration::from_secs(60), |d| {
            d.journal()
                .runs()
                .unwrap()
                .first()
                .is_some_and(|r| r.state == RunState::Succeeded)
        })
        .await;
    assert!(ran, "{:?}", d.decisions());
    assert_eq!(d.journal().runs().unwrap().len(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_restarted_daemon_exports_the_last_verification_at_once() {
    let job = "verify:\n  - name: nightly\n    resources:\n      - { kind: s3, bucket: backups, region: us-west-2, rpo_target: 1d }\n";
    let d = InProcess::start_with("notify", job, |state| {
        let journal = Journal::open(state, Access::Executor).unwrap();
        for (started_at, ok) in [
            ("2026-12-01T03:00:00Z", true),
            ("2026-12-02T03:00:00Z", false),
        ] {
            let result = serde_json::json!({
                "job": "nightly", "started_at": started_at, "duration_s": 12.5,
                "ok": ok, "checks": [], "restores": [],
            });
            journal
                .record_verification("nightly", started_at, ok, &result)
                .unwrap();
        }
    })
    .await;
    // Before any job runs, the scrape has the last result (failed) and
    // the last success (the day before, when it ended).
    let body = d.scrape().await;
    assert!(
        body.contains("lifeboat_verify_last_status{verification=\"nightly\"} 0"),
        "{body}"
    );
    let last_success = jiff::Timestamp::from_second(1_796_094_012).unwrap();
    assert_eq!(last_success.to_string(), "2026-12-01T03:00:12Z");
    assert!(
        body.contains(
            "lifeboat_verify_last_success_timestamp_seconds{verification=\"nightly\"} 1796094012.5"
        ),
        "{body}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_binding_never_drilled_is_warned_about_until_a_drill_succeeds_and_one_runs_at_a_time() {
    let d = InProcess::start("notify").await;
    // Readiness has read the runbook; the binding was never drilled.
    assert!(
        d.until(Duration::from_secs(30), |_| true).await,
        "virtual time"
    );
    let status = d.status().await;
    let warnings = status["bindings"][0]["drill_warnings"].clone();
    assert_eq!(
        warnings,
        serde_json::json!(["never drilled successfully (drills are due every 90 days)"]),
        "{status}"
    );
    let drill = crate::control::Request::Trigger {
        binding: "app".into(),
        mode: crate::runbook::Mode::Drill,
    };
    let started = d.ask(&drill).await;
    assert!(started.ok, "{}", started.message);
    // The same binding's drill is still running: a second is refused.
    let second = d.ask(&drill).await;
    assert!(!second.ok, "{}", second.message);
    assert!(
        second.message.contains("still in progress"),
        "{}",
        second.message
    );
    let drilled = d
        .until(Duration::from_secs(60), |d| {
            d.journal()
                .runs()
                .unwrap()
                .iter()
                .any(|r| r.state == RunState::Succeeded)
        })
        .await;
    assert!(drilled, "the drill never succeeded");
    let status = d.status().await;
    assert_eq!(
        status["bindings"][0]["drill_warnings"],
        serde_json::json!([]),
        "{status}"
    );
    assert_eq!(status["bindings"][0]["runbook_changed_since_drill"], false);
    let metrics = d.scrape().await;
    assert!(
        metrics.contains("lifeboat_drill_max_age_seconds{binding=\"app\"} 7776000"),
        "{metrics}"
    );
    assert!(metrics.contains("lifeboat_drill_last_success_timestamp_seconds{binding=\"app\"}"));
    d.stop().await;
}

#[test]
fn drills_are_overdue_after_their_interval_and_stale_when_the_runbook_changed() {
    use super::status::drill_warnings;
    let now: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
    let ninety = Duration::from_secs(90 * 86_400);
    assert!(drill_warnings(Some("2026-10-01T12:00:00Z"), Some(false), ninety, now).is_empty());
    assert_eq!(
        drill_warnings(Some("2026-08-01T12:00:00Z"), Some(false), ninety, now),
        ["no successful drill for 123 days (drills are due every 90 days)"]
    );
    assert_eq!(
        drill_warnings(Some("2026-12-01T12:00:00Z"), Some(true), ninety, now),
        ["the runbook changed since its last successful drill"]
    );
    assert_eq!(
        drill_warnings(None, None, Duration::from_secs(600), now),
        ["never drilled successfully (drills are due every 10m00s)"]
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_binding_removed_by_a_reload_leaves_the_metrics() {
    let d = InProcess::start("notify").await;
    assert!(d.until(Duration::from_secs(30), |_| true).await);
    let before = d.scrape().await;
    for series in [
        "lifeboat_runbook_ready{binding=\"app\"",
        "lifeboat_binding_state{binding=\"app\"",
        "lifeboat_drill_max_age_seconds{binding=\"app\"}",
    ] {
        assert!(before.contains(series), "{series}: {before}");
    }
    let config = d._dir.path().join("lifeboat.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let without = text.split("bindings:").next().unwrap().to_string();
    std::fs::write(&config, without).unwrap();
    d.signals.send(Signal::Reload).await.unwrap();
    assert!(d.until(Duration::from_secs(5), |_| true).await);
    let after = d.scrape().await;
    assert!(!after.contains("binding=\"app\""), "{after}");
    d.stop().await;
}

/// A daemon that only probes (no binding, no job, no drill in its journal)
/// never loads the AWS SDK: its deferred clients stay unloaded. One with a
/// binding loads them for the start sweep of the runbook's regions.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_daemon_that_only_probes_loads_nothing_of_the_aws_sdk() {
    let aws = AwsClients::deferred(&nowhere(), Credentials::Emulator);
    let d = InProcess::launch("", aws.clone(), |_| {}).await;
    for _ in 0..30 {
        d.probe(true).await;
    }
    assert!(!aws.is_loaded(), "the SDK was loaded");
    assert!(aws.calls().snapshot().is_empty());
    d.stop().await;

    let aws = AwsClients::deferred(&nowhere(), Credentials::Emulator);
    let bound = "bindings:\n  app: { region: us-east-1, runbook: rb.yaml, policy: notify }\n";
    let d = InProcess::launch(bound, aws.clone(), |_| {}).await;
    assert!(d.until(Duration::from_secs(30), |_| aws.is_loaded()).await);
    d.stop().await;
}

/// Probes 0 and 1 watch us-east-1a, probe 2 us-east-1b, probe 3 the
/// region itself.
const ZONED: &str = "  us-east-1:
    probes:
      - { name: web-a, tcp: \"127.0.0.1:9\", interval: 1s, zone: us-east-1a }
      - { name: lb-a, tcp: \"127.0.0.1:9\", interval: 1s, zone: us-east-1a }
      - { name: web-b, tcp: \"127.0.0.1:9\", interval: 1s, zone: us-east-1b }
      - { name: api, tcp: \"127.0.0.1:9\", interval: 1s }
";

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_zones_failure_runs_the_zonal_binding_and_a_wider_one_the_regional() {
    let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
    let bindings = "bindings:
  app: { region: us-east-1, runbook: rb.yaml, policy: auto }
  zone-a: { region: us-east-1, zone: us-east-1a, runbook: zonal.yaml, policy: auto }
";
    let d = InProcess::launch_watching(ZONED, bindings, aws, |_| {}).await;
    let started = |binding: &str| {
        d.journal()
            .decisions(Some(binding))
            .unwrap()
            .iter()
            .filter(|k| k.kind == DecisionKind::Started)
            .count()
    };
    // us-east-1a's two probes fail, a majority of the region's four; the
    // rest of the region answers.
    for _ in 0..5 {
        d.tick(&[
            ("us-east-1", 0, false),
            ("us-east-1", 1, false),
            ("us-east-1", 2, true),
            ("us-east-1", 3, true),
        ])
        .await;
    }
    let ran = d
        .until(Duration::from_secs(60), |d| {
            d.journal()
                .runs()
                .unwrap()
                .first()
                .is_some_and(|r| r.state == RunState::Succeeded)
        })
        .await;
    assert!(
        ran,
        "the zonal failover never ran: {:?}",
        d.journal().decisions(Some("zone-a")).unwrap()
    );
    assert_eq!(started("zone-a"), 1);
    assert_eq!(
        started("app"),
        0,
        "the region is not down: its binding waits"
    );
    let runs = d.journal().runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run.runbook, "zonal");
    assert!(
        runs[0]
            .run
            .params
            .contains(&("zone".to_string(), "us-east-1a".to_string())),
        "the binding gave the runbook its zone: {:?}",
        runs[0].run.params
    );
    let status = d.status().await;
    let state_of = |name: &str| {
        status["regions"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|e| e["zone"] == name || (e["zone"].is_null() && e["region"] == name))
            })
            .map(|e| e["state"].clone())
    };
    assert_eq!(
        state_of("us-east-1"),
        Some(serde_json::json!("degraded")),
        "{status}"
    );
    assert_eq!(
        state_of("us-east-1a"),
        Some(serde_json::json!("down")),
        "{status}"
    );
    assert_eq!(
        state_of("us-east-1b"),
        Some(serde_json::json!("healthy")),
        "{status}"
    );
    let metrics = d.scrape().await;
    assert!(
        metrics.contains("lifeboat_zone_health{region=\"us-east-1\",zone=\"us-east-1a\"} 2"),
        "{metrics}"
    );

    // The failure spreads to the other zone: now the region is down.
    for _ in 0..5 {
        d.tick(&[
            ("us-east-1", 0, false),
            ("us-east-1", 1, false),
            ("us-east-1", 2, false),
            ("us-east-1", 3, true),
        ])
        .await;
    }
    let regional = d
        .until(Duration::from_secs(60), |_| started("app") == 1)
        .await;
    assert!(regional, "the regional binding never ran");
    assert_eq!(started("zone-a"), 1, "the zone's outage was declared once");
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn nothing_fails_into_two_regions_when_one_of_them_is_down() {
    let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
    let rest = "  us-west-2:\n    probes: [ { name: west, tcp: \"127.0.0.1:9\", interval: 1s } ]\n  eu-west-1:\n    probes: [ { name: eu, tcp: \"127.0.0.1:9\", interval: 1s } ]\nbindings:\n  app: { region: us-east-1, runbook: three.yaml, policy: auto }\n";
    let d = InProcess::launch(rest, aws, |_| {}).await;
    // eu-west-1, the second recovery region, goes down first; us-west-2
    // stays healthy; then us-east-1 goes down.
    for _ in 0..5 {
        d.tick(&[("eu-west-1", 0, false), ("us-west-2", 0, true)])
            .await;
    }
    for _ in 0..5 {
        d.tick(&[("us-east-1", 0, false), ("us-west-2", 0, true)])
            .await;
    }
    let refused = d
        .until(Duration::from_secs(10), |d| {
            d.decisions().contains(&DecisionKind::BlockedRecoveryDown)
        })
        .await;
    assert!(refused, "{:?}", d.decisions());
    assert!(d.journal().runs().unwrap().is_empty(), "nothing ran");
    let detail = d.detail_of(DecisionKind::BlockedRecoveryDown);
    assert!(
        detail["reason"]
            .as_str()
            .unwrap()
            .contains("eu-west-1 is down with 1 of 1 probes failing"),
        "{detail}"
    );
    let each = detail["recovery_region"]
        .as_array()
        .expect("one per region");
    assert_eq!(each[0]["region"], "us-west-2", "{detail}");
    assert_eq!(each[1]["region"], "eu-west-1", "{detail}");
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_old_primary_is_fenced_when_its_region_comes_back_after_a_failover() {
    let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
    let rest = "bindings:\n  app: { region: us-east-1, runbook: fenced.yaml, policy: auto }\n";
    let d = InProcess::launch(rest, aws, |_| {}).await;
    for _ in 0..5 {
        d.probe(false).await;
    }
    let failed_over = d
        .until(Duration::from_secs(60), |d| d.succeeded("failover"))
        .await;
    assert!(failed_over, "{:?}", d.decisions());
    let modes = |d: &InProcess| -> Vec<String> {
        d.journal()
            .runs()
            .unwrap()
            .iter()
            .map(|r| r.run.mode.clone())
            .collect()
    };
    assert_eq!(
        modes(&d),
        ["failover"],
        "nothing fenced while the region is down"
    );
    // us-east-1 answers again: the old primary is fenced, once.
    for _ in 0..5 {
        d.probe(true).await;
    }
    let fenced = d
        .until(Duration::from_secs(60), |d| d.succeeded("fence"))
        .await;
    assert!(fenced, "{:?} {:?}", modes(&d), d.decisions());
    let fence = d
        .journal()
        .runs()
        .unwrap()
        .into_iter()
        .find(|r| r.run.mode == "fence")
        .expect("the fence run");
    let steps: Vec<String> = d
        .journal()
        .events(&fence.run.id)
        .unwrap()
        .into_iter()
        .map(|e| e.step)
        .collect();
    assert!(
        steps.iter().all(|s| s == "fence-app"),
        "only the fence steps ran: {steps:?}"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(modes(&d).len(), 2, "fenced once: {:?}", modes(&d));
    d.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_reprotected_binding_watches_the_new_primary_and_fails_over_back() {
    let aws = AwsClients::load(&nowhere(), Credentials::Emulator).await;
    let rest = "  us-west-2:\n    probes: [ { name: west, tcp: \"127.0.0.1:9\", interval: 1s } ]\nbindings:\n  app:\n    region: us-east-1\n    runbook: reprotect.yaml\n    policy: auto\n    cooldown: 0s\n    reprotected: { region: us-west-2, runbook: back.yaml }\n";
    let d = InProcess::launch(rest, aws, |_| {}).await;
    for _ in 0..5 {
        d.tick(&[("us-east-1", 0, false), ("us-west-2", 0, true)])
            .await;
    }
    assert!(
        d.until(Duration::from_secs(60), |d| d.succeeded("failover"))
            .await,
        "{:?}",
        d.decisions()
    );
    // Both regions up again: reprotect by hand.
    for _ in 0..5 {
        d.tick(&[("us-east-1", 0, true), ("us-west-2", 0, true)])
            .await;
    }
    let answer = d
        .ask(&crate::control::Request::Trigger {
            binding: "app".into(),
            mode: crate::runbook::Mode::Reprotect,
        })
        .await;
    assert!(answer.ok, "{}", answer.message);
    assert!(
        d.until(Duration::from_secs(60), |d| d
            .decisions()
            .contains(&DecisionKind::Reprotected))
            .await,
        "{:?}",
        d.decisions()
    );
    let status = d.status().await;
    assert_eq!(status["bindings"][0]["region"], "us-west-2", "{status}");
    let answer = d
        .ask(&crate::control::Request::Ack {
            binding: "app".into(),
        })
        .await;
    assert!(answer.ok, "{}", answer.message);
    // The new primary's region fails: the binding fails over back.
    for _ in 0..5 {
        d.tick(&[("us-east-1", 0, true), ("us-west-2", 0, false)])
            .await;
    }
    let back = d
        .until(Duration::from_secs(60), |d| {
            d.journal()
                .runs()
                .unwrap()
                .iter()
                .any(|r| r.run.runbook == "west-to-east" && r.state == RunState::Succeeded)
        })
        .await;
    assert!(back, "{:?}", d.decisions());
    d.stop().await;
}
