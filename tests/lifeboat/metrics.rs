//! `/metrics`: the pilot-light failover run on the emulator, its figures
//! and AWS calls recorded, served, scraped over HTTP and read back with a
//! Prometheus text-format parser.

use std::sync::Arc;

use lifeboat::actions::Registry;
use lifeboat::engine::{Engine, EngineOptions, now};
use lifeboat::journal::{Access, Journal, NewRun};
use lifeboat::measure::Figures;
use lifeboat::metrics::Metrics;
use lifeboat::runbook::{MissingParams, Mode, load};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::moto::Moto;

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_s_figures_and_calls_are_scraped_from_metrics() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    lifeboat::demo::seed(&aws).await.expect("seed");
    let seeding: u64 = aws.calls().snapshot().values().sum();
    let health = lifeboat::demo::health_endpoint().await.expect("health");
    let params = vec![("health_url".to_string(), health)];
    let text = std::fs::read_to_string("runbooks/pilot-light.yaml").expect("runbook");
    let runbook = Arc::new(
        load("pilot-light.yaml", &text, &params, MissingParams::Refuse)
            .expect("runbook")
            .runbook,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Arc::new(Journal::open(dir.path(), Access::Executor).expect("journal"));
    journal
        .create_run(&NewRun {
            id: "m1".into(),
            runbook: runbook.name.clone(),
            file: "runbooks/pilot-light.yaml".into(),
            runbook_sha256: String::new(),
            runbook_text: text.clone(),
            params,
            secret_params: Vec::new(),
            mode: "failover".into(),
            started_by: "metrics test".into(),
            started_at: now(),
        })
        .expect("create run");
    let metrics = Arc::new(Metrics::new());
    // What seeding sent is counted too: the counter is the client's.
    metrics.record_api_calls(aws.calls());
    // From here on each attempt is timed as well.
    metrics.follow_api_calls(aws.shared_calls());
    let engine = Engine::new(
        Arc::clone(&journal),
        Arc::new(Registry::with_aws(aws.clone())),
        EngineOptions::default(),
    );
    engine
        .execute("m1", Arc::clone(&runbook), Mode::Failover)
        .await
        .expect("run");
    let figures = Figures::compute(
        &journal.run("m1").expect("run"),
        &runbook,
        &journal.events("m1").expect("events"),
        &journal.marks("m1").expect("marks"),
    );
    metrics.record_run(&figures);
    metrics.record_api_calls(aws.calls());
    metrics.set_exposure("rds:us-west-2:app-db-replica", 42.0, Some(300.0));
    metrics.set_region_health("us-east-1", 2);
    metrics.set_binding_state("primary", "cooling-down");
    metrics.set_binding_history("primary", Some(1_700_000_000.0), None, true);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    // The daemon's side of `/status`: whatever it answers is served.
    let (daemon, mut asked) = tokio::sync::mpsc::channel::<lifeboat::control::Incoming>(1);
    let answering = tokio::spawn(async move {
        while let Some(incoming) = asked.recv().await {
            assert_eq!(incoming.request, lifeboat::control::Request::Status);
            let _ = incoming.reply.send(lifeboat::control::Response {
                ok: true,
                message: String::new(),
                status: Some(serde_json::json!({ "regions": [], "asked_by": incoming.who })),
                data: None,
            });
        }
    });
    let server = tokio::spawn(lifeboat::web::serve(listener, Arc::clone(&metrics), daemon));
    let response = get(addr, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response
            .contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{response}"
    );
    assert!(get(addr, "/other").await.starts_with("HTTP/1.1 404"));
    metrics.set_leader(false);
    assert!(get(addr, "/leader").await.starts_with("HTTP/1.1 503"));
    metrics.set_leader(true);
    assert!(get(addr, "/leader").await.starts_with("HTTP/1.1 200"));
    let status = get(addr, "/status?pretty").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        status.contains("Content-Type: application/json"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(status.split("\r\n\r\n").nth(1).expect("a body")).expect("JSON");
    assert_eq!(json["asked_by"], "status page (HTTP)");
    let page = get(addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Security-Policy: default-src 'none'"));
    assert!(page.contains("<title>lifeboat</title>"), "{page}");
    assert!(
        get(addr, "/metrics")
            .await
            .contains("Cache-Control: no-store")
    );
    assert!(
        get(addr, "/status").await.starts_with("HTTP/1.1 200"),
        "asked again"
    );
    answering.abort();
    let _ = answering.await;
    let gone = get(addr, "/status").await;
    assert!(gone.starts_with("HTTP/1.1 503"), "no daemon to ask: {gone}");
    server.abort();

    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text format");
    let value = |name: &str, wanted: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && wanted.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name}: {other:?}"),
            })
    };
    let run = [("runbook", "pilot-light-failover"), ("mode", "failover")];
    assert!(
        body.contains(&format!(
            "lifeboat_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "OpenMetrics: {body}");
    let rto = value("lifeboat_rto_achieved_seconds", &run).expect("RTO gauge");
    assert!((rto - figures.rto.seconds.expect("RTO")).abs() < 1e-6);
    assert_eq!(value("lifeboat_rto_target_seconds", &run[..1]), Some(900.0));
    assert_eq!(value("lifeboat_rpo_target_seconds", &run[..1]), Some(300.0));
    // The replica's ReplicaLag (published as RDS would, by the emulator's
    // guard) gives an RPO figure, read without a failed CloudWatch call.
    let rpo = value("lifeboat_rpo_achieved_seconds", &run).expect("RPO gauge");
    assert!((rpo - figures.rpo.seconds.expect("RPO")).abs() < 1e-6);
    assert!((0.0..=300.0).contains(&rpo), "{rpo}");
    assert!(
        !scrape.samples.iter().any(|s| {
            s.metric == "lifeboat_aws_api_errors_total"
                && s.labels.get("service") == Some("CloudWatch")
        }),
        "no failed CloudWatch call"
    );
    assert_eq!(
        value(
            "lifeboat_runs_total",
            &[
                ("runbook", "pilot-light-failover"),
                ("outcome", "succeeded")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "lifeboat_aws_api_calls_total",
            &[("service", "RDS"), ("operation", "PromoteReadReplica")]
        ),
        Some(1.0)
    );
    let total: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "lifeboat_aws_api_calls_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(total as u64, aws.calls().snapshot().values().sum::<u64>());
    assert!(total as u64 > seeding);
    let starts = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "lifeboat_step_duration_seconds"
                && s.labels.get("action") == Some("ec2.start_instances")
        })
        .expect("step duration histogram");
    assert!(matches!(&starts.value, prometheus_parse::Value::Histogram(b) if !b.is_empty()));
    assert_eq!(
        value(
            "lifeboat_rpo_exposure_seconds",
            &[("resource", "rds:us-west-2:app-db-replica")]
        ),
        Some(42.0)
    );
    // Each attempt timed, by service and operation.
    let promote = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "lifeboat_aws_api_request_duration_seconds"
                && s.labels.get("service") == Some("RDS")
                && s.labels.get("operation") == Some("PromoteReadReplica")
        })
        .expect("request duration histogram");
    match &promote.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().map(|b| b.count), Some(1.0), "{buckets:?}")
        }
        other => panic!("a histogram: {other:?}"),
    }
    // Enums as a state label: one state 1, the others 0.
    let region = |state| {
        value(
            "lifeboat_region_state",
            &[("region", "us-east-1"), ("state", state)],
        )
    };
    assert_eq!(region("down"), Some(1.0));
    assert_eq!(region("healthy"), Some(0.0));
    assert_eq!(region("recovering"), Some(0.0));
    let binding = |state| {
        value(
            "lifeboat_binding_state",
            &[("binding", "primary"), ("state", state)],
        )
    };
    assert_eq!(binding("cooling-down"), Some(1.0));
    assert_eq!(binding("armed"), Some(0.0));
    assert_eq!(
        value(
            "lifeboat_drill_last_success_timestamp_seconds",
            &[("binding", "primary")]
        ),
        Some(1_700_000_000.0)
    );
    assert_eq!(
        value(
            "lifeboat_failover_last_success_timestamp_seconds",
            &[("binding", "primary")]
        ),
        None,
        "never failed over: no made-up time"
    );
    assert_eq!(
        value(
            "lifeboat_runbook_changed_since_drill",
            &[("binding", "primary")]
        ),
        Some(1.0)
    );
}
