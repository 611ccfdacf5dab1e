//! `lifeboat report`: figures against a stopwatch and a seeded snapshot on
//! the emulator, and the HTML page rendered in headless Chromium.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::moto::Moto;
use crate::support::webdriver::headless;
use crate::support::{lifeboat, text};

fn run_id(state: &Path) -> String {
    let out = lifeboat(state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    runs[0]["id"].as_str().expect("a run").to_string()
}

#[test]
fn the_html_report_renders_its_timeline_in_chromium_without_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let runbook = dir.path().join("rb.yaml");
    std::fs::write(
        &runbook,
        "name: report-check
strategy: pilot-light
targets: { rto: 1m }
steps:
  - { id: a, action: wait, with: { duration: 200ms } }
  - { id: b, action: wait, needs: [a], with: { duration: 500ms } }
  - { id: c, action: wait, needs: [a], with: { duration: 100ms } }
  - { id: d, action: wait, needs: [b, c], with: { duration: 100ms }, restores_service: true }
",
    )
    .expect("write runbook");
    let out = lifeboat(&state, &["run", runbook.to_str().expect("utf-8"), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = run_id(&state);
    let html = lifeboat(&state, &["report", &id, "--format", "html"]);
    assert_eq!(html.status.code(), Some(0), "{}", text(&html.stderr));
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html.stdout).expect("write page");
    let source = text(&html.stdout);
    for external in ["<script", "<link", "src=", "url(http", "@import"] {
        assert!(
            !source.contains(external),
            "self-contained: found {external}"
        );
    }

    let out = headless(&dir.path().join("profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dom = text(&out.stdout);
    assert!(
        dom.contains(r#"<svg xmlns="http://www.w3.org/2000/svg" id="timeline""#),
        "{dom}"
    );
    assert_eq!(
        dom.matches(r#"class="step critical""#).count(),
        3,
        "a → b → d: {dom}"
    );
    assert_eq!(
        dom.matches(r#"class="step""#).count(),
        1,
        "c is off the critical path"
    );
    let stderr = text(&out.stderr);
    let console: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");

    let md = lifeboat(&state, &["report", &id]);
    assert!(
        text(&md.stdout).contains("| RTO | "),
        "{}",
        text(&md.stdout)
    );
    assert!(
        text(&md.stdout).contains("Critical path: a → b → d"),
        "{}",
        text(&md.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_reports_the_rpo_of_the_restored_snapshot_and_the_rto_of_the_run() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    crate::support::seed::snapshot_copied_to_dr(&aws, "app-db").await;
    crate::support::seed::db_subnet_group(&aws, "us-west-2", "app-db-subnets").await;
    crate::support::seed::launch_template(&aws, "us-west-2", "app-server").await;
    crate::support::seed::zone(
        &aws,
        "example.com",
        &[("app.example.com".into(), "192.0.2.10".into())],
    )
    .await;
    let taken = aws
        .rds("us-east-1")
        .describe_db_snapshots()
        .db_snapshot_identifier("app-db-nightly")
        .send()
        .await
        .expect("describe snapshot");
    let taken = taken.db_snapshots()[0]
        .snapshot_create_time()
        .expect("creation time")
        .as_secs_f64();
    let health = lifeboat::demo::health_endpoint()
        .await
        .expect("health endpoint");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let stopwatch = Instant::now();
    let out = moto
        .lifeboat(&state)
        .args(["run", "runbooks/backup-restore.yaml", "--yes", "-p"])
        .arg(format!("health_url={health}"))
        .output()
        .expect("run lifeboat");
    let elapsed = stopwatch.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let id = run_id(&state);
    let report = lifeboat(&state, &["report", &id, "--format", "json"]);
    let figures: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    // Every bound below is an ordering, never a speed: the run's own clock
    // readings must sit inside the harness's, however slow the machine.
    let at = |field: &str| -> f64 {
        let stamp: jiff::Timestamp = figures[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {figures}"))
            .parse()
            .unwrap_or_else(|e| panic!("{field}: {e}"));
        stamp.as_millisecond() as f64 / 1000.0
    };
    let incident = at("incident_start");
    assert!(
        incident >= started - 0.001 && incident <= started + elapsed,
        "a manual run's incident starts when the run does: {figures}"
    );
    let rpo = figures["rpo"]["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("an RPO figure: {figures}"));
    assert!(
        (rpo - (incident - taken)).abs() < 0.002,
        "RPO {rpo} s is the incident start minus the seeded snapshot's creation: {figures}"
    );
    assert_eq!(figures["rpo"]["verdict"], "met", "24h target");
    let rto = figures["rto"]["seconds"].as_f64().expect("an RTO figure");
    assert!(
        (rto - (at("service_restored") - incident)).abs() < 0.002 && rto <= elapsed,
        "RTO {rto} s runs from the incident to service restored, inside the {elapsed:.2} s the process lived: {figures}"
    );
    // The critical path runs through whichever branch finished last before
    // the DNS switch (ties go to the later name, as the report breaks them),
    // which on an instant emulator can be either.
    let end_of = |step: &str| {
        figures["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["step"] == step))
            .and_then(|s| s["end"].as_str())
            .and_then(|end| end.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(|| panic!("end of {step}: {figures}"))
    };
    let expected = if end_of("db-available") >= end_of("app-running") {
        ["restore-db", "db-available", "switch-dns", "verify"]
    } else {
        ["launch-app", "app-running", "switch-dns", "verify"]
    };
    assert_eq!(
        figures["critical_path"],
        serde_json::json!(expected),
        "{figures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposure_is_now_minus_the_newest_recovery_point_in_the_dr_region() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let before_seeding = std::time::SystemTime::now();
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    crate::support::seed::snapshot_copied_to_dr(&aws, "app-db").await;
    crate::support::seed::bucket(&aws, "backups-dr", &[("db/dump.sql", "data")]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "aws: {{ endpoint_url: \"{}\" }}
protected:
  - {{ kind: rds, db_instance: app-db, region: us-west-2, rpo_target: 1h }}
  - {{ kind: s3, bucket: backups-dr, prefix: db/, region: us-west-2, rpo_target: 1s }}
  - {{ kind: rds, db_instance: orders-db, region: us-west-2, rpo_target: 1h }}
",
            moto.endpoint()
        ),
    )
    .expect("write config");
    let out = moto
        .lifeboat(&dir.path().join("state"))
        .args([
            "exposure",
            "--config",
            config.to_str().expect("utf-8"),
            "--output",
            "json",
        ])
        .output()
        .expect("run lifeboat");
    assert_eq!(
        out.status.code(),
        Some(1),
        "one over target, one without a point: {}",
        text(&out.stderr)
    );
    let exposures: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rds = &exposures[0];
    assert_eq!(rds["resource"], "rds:us-west-2:app-db");
    assert_eq!(rds["verdict"], "ok", "{rds}");
    let seconds = rds["seconds"].as_f64().expect("seconds");
    let since_seeding = before_seeding.elapsed().expect("clock").as_secs_f64();
    assert!(
        seconds >= 2.0 && seconds <= since_seeding,
        "between the 2 s slept and the {since_seeding:.1} s since seeding began: {rds}"
    );
    assert_eq!(exposures[1]["verdict"], "over target", "{}", exposures[1]);
    assert!(
        exposures[1]["recovery_point"]
            .as_str()
            .is_some_and(|p| p.contains("db/dump.sql"))
    );
    assert_eq!(
        exposures[2]["verdict"], "no recovery point",
        "{}",
        exposures[2]
    );
    assert_eq!(exposures[2]["seconds"], serde_json::Value::Null);
}

#[test]
fn a_drill_s_report_compares_it_with_the_last_failover_and_the_last_drills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let runbook = dir.path().join("rb.yaml");
    let source = "name: trend
strategy: pilot-light
targets: { rto: 1m }
steps:
  - { id: a, action: wait, with: { duration: 50ms } }
  - { id: b, action: wait, needs: [a], with: { duration: 100ms }, restores_service: true }
";
    std::fs::write(&runbook, source).expect("write runbook");
    let file = runbook.to_str().expect("utf-8");
    let ran = |command: &str| {
        let out = lifeboat(&state, &[command, file, "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        run_id(&state)
    };
    let first_drill = ran("drill");
    let failover = ran("run");
    let second_drill = ran("drill");
    // The runbook changes; the next drill runs the new text.
    std::fs::write(&runbook, format!("{source}# tuned\n")).expect("change runbook");
    let latest = ran("drill");
    assert_ne!(latest, second_drill);

    let out = lifeboat(&state, &["report", &latest, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let compared = &report["compared"];
    assert_eq!(
        compared["last_failover"]["run"],
        failover.as_str(),
        "{compared}"
    );
    let drills: Vec<&str> = compared["drills"]
        .as_array()
        .expect("drills")
        .iter()
        .map(|d| d["run"].as_str().expect("id"))
        .collect();
    assert_eq!(
        drills,
        [second_drill.as_str(), first_drill.as_str()],
        "newest first"
    );
    assert_eq!(
        compared["drills"][0]["same_runbook"], false,
        "changed since"
    );
    let b = &compared["steps"][1];
    assert_eq!(b["step"], "b");
    assert!(b["this_s"].as_f64().expect("this run") >= 0.1, "{b}");
    assert!(
        b["last_failover_s"].as_f64().expect("the failover") >= 0.1,
        "{b}"
    );
    assert_eq!(b["drills_s"].as_array().map(Vec::len), Some(2));

    let md = text(&lifeboat(&state, &["report", &latest]).stdout);
    assert!(md.contains("## Compared with earlier runs"), "{md}");
    assert!(md.contains(&format!("| {failover} | failover |")), "{md}");
    assert!(md.contains("changed since"), "{md}");
    let page = text(&lifeboat(&state, &["report", &latest, "--format", "html"]).stdout);
    assert!(
        page.contains("<h2>Compared with earlier runs</h2>"),
        "{page}"
    );
    assert!(
        page.contains(&format!("<td>{failover}</td><td>failover</td>")),
        "{page}"
    );
    // The first run of all has nothing to compare with.
    let md = text(&lifeboat(&state, &["report", &first_drill]).stdout);
    assert!(!md.contains("Compared with"), "{md}");
}
