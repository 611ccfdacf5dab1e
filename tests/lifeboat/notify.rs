//! Webhooks as their receivers take them: a local receiver per format
//! checks each body as the service documents it (Slack's incoming
//! webhooks need `text`; PagerDuty's Events API v2 its routing key, an
//! action, a dedup key of at most 255 characters and, to trigger, a
//! summary of at most 1024, a source and one of four severities) and a
//! generic receiver checks the signature with an HMAC of its own
//! (Python's), not lifeboat's.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat::config::{Webhook, WebhookFormat};
use lifeboat::notify::{Event, Notifier};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::support::proxy::read_request;

/// One request a receiver got.
#[derive(Debug)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A receiver on loopback answering each path as its service does on
/// success; its base URL and what it got.
async fn receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(Some((head, body))) = read_request(&mut stream).await else {
                    return;
                };
                let body = String::from_utf8_lossy(&body).into_owned();
                let mut lines = head.lines();
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("/")
                    .to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let answer = if path == "/pagerduty/v2/enqueue" {
                    "HTTP/1.1 202 Accepted\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"status\":\"success\"}"
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                };
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = tx
                    .send(Received {
                        path,
                        headers,
                        body,
                    })
                    .await;
            });
        }
    });
    (url, rx)
}

/// The next `n` requests, each within 30 s.
async fn next(received: &mut mpsc::Receiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    while got.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(30), received.recv())
            .await
            .expect("every webhook within 30 s")
            .expect("a request");
        got.push(r);
    }
    got
}

fn event(kind: &str, summary: &str) -> Event {
    Event {
        event: kind.into(),
        at: "2026-12-02T10:00:00Z".into(),
        binding: None,
        region: Some("us-east-1".into()),
        run: None,
        summary: summary.into(),
        detail: Some(serde_json::json!({ "failing": ["web-a", "web-b"] })),
    }
}

/// Slack: a JSON object with a non-empty `text` (else it answers
/// `no_text`).
fn slack_accepts(body: &serde_json::Value) -> Result<(), String> {
    match body["text"].as_str() {
        Some(t) if !t.trim().is_empty() => Ok(()),
        _ => Err(format!("no_text: {body}")),
    }
}

/// PagerDuty Events API v2, as its reference describes an event.
fn pagerduty_accepts(body: &serde_json::Value, key: &str) -> Result<(), String> {
    if body["routing_key"] != key {
        return Err(format!("routing_key: {body}"));
    }
    let action = body["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Err(format!("event_action: {body}"));
    }
    let dedup = body["dedup_key"].as_str().unwrap_or("");
    if dedup.is_empty() || dedup.chars().count() > 255 {
        return Err(format!("dedup_key: {body}"));
    }
    if action == "trigger" {
        let p = &body["payload"];
        let summary = p["summary"].as_str().unwrap_or("");
        if summary.is_empty() || summary.chars().count() > 1024 {
            return Err(format!("payload.summary: {body}"));
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            return Err(format!("payload.source: {body}"));
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            return Err(format!("payload.severity: {body}"));
        }
        for optional in ["component", "group", "class"] {
            if p.get(optional).is_some_and(|v| !v.is_string()) {
                return Err(format!("payload.{optional} is not a string: {body}"));
            }
        }
    }
    Ok(())
}

/// The generic body's signature, checked with Python's hmac.
fn signature_checks(received: &Received, secret: &str) -> bool {
    let ts = received
        .headers
        .get("x-lifeboat-timestamp")
        .cloned()
        .unwrap_or_default();
    let sig = received
        .headers
        .get("x-lifeboat-signature")
        .cloned()
        .unwrap_or_default();
    let check = "import hmac,hashlib,sys\nk,ts,sig=sys.argv[1:4]\nbody=sys.stdin.buffer.read()\nmac=hmac.new(k.encode(),ts.encode()+b'.'+body,hashlib.sha256).hexdigest()\nsys.exit(0 if hmac.compare_digest('v1='+mac,sig) else 1)";
    let mut child = std::process::Command::new("python3")
        .args(["-c", check, secret, &ts, &sig])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(received.body.as_bytes())
        .expect("body");
    child.wait().expect("python3 exit").success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_format_is_accepted_by_a_receiver_checking_it_as_the_service_does() {
    let (base, mut received) = receiver().await;
    let routing_key = "0123456789abcdef0123456789abcdef";
    let notifier = Notifier::new(vec![
        Webhook {
            url: format!("{base}/slack/services/T0/B0/token"),
            format: WebhookFormat::Slack,
            secret: None,
        },
        Webhook {
            url: format!("{base}/pagerduty/v2/enqueue"),
            format: WebhookFormat::Pagerduty,
            secret: Some(routing_key.into()),
        },
        Webhook {
            url: format!("{base}/generic"),
            format: WebhookFormat::Generic,
            secret: Some("s3cret".into()),
        },
    ]);
    let long = "x".repeat(2000);
    notifier.send(event(
        "outage-declared",
        &format!("us-east-1 declared down {long}"),
    ));
    let mut got = next(&mut received, 3).await;
    notifier.send(event("region-recovered", "us-east-1 recovered"));
    got.extend(next(&mut received, 3).await);
    let mut pagerduty = Vec::new();
    for r in &got {
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON body");
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        if r.path.starts_with("/slack") {
            slack_accepts(&body).expect("Slack takes it");
        } else if r.path.starts_with("/pagerduty") {
            pagerduty_accepts(&body, routing_key).expect("PagerDuty takes it");
            pagerduty.push(body);
        } else {
            assert!(signature_checks(r, "s3cret"), "bad signature: {r:?}");
            assert!(!signature_checks(r, "other"), "any key would do: {r:?}");
            assert!(
                body["event"].is_string() && body["summary"].is_string(),
                "{body}"
            );
        }
    }
    // The outage triggers an incident its recovery resolves.
    let action = |b: &serde_json::Value| b["event_action"].as_str().unwrap_or("").to_string();
    let trigger = pagerduty
        .iter()
        .find(|b| action(b) == "trigger")
        .expect("a trigger");
    let resolve = pagerduty
        .iter()
        .find(|b| action(b) == "resolve")
        .expect("a resolve");
    assert_eq!(trigger["dedup_key"], resolve["dedup_key"]);
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(
        trigger["payload"]["summary"]
            .as_str()
            .map(|s| s.chars().count()),
        Some(1024),
        "the summary is cut to PagerDuty's limit"
    );
}

#[test]
fn a_tampered_body_or_an_old_timestamp_does_not_verify() {
    let hook = Webhook {
        url: "https://example.com/hook".into(),
        format: WebhookFormat::Generic,
        secret: Some("s3cret".into()),
    };
    let (body, headers) = lifeboat::notify::request(&hook, &event("started", "go"), 1_700_000_000);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let good = Received {
        path: "/".into(),
        headers: BTreeMap::from([
            (
                "x-lifeboat-timestamp".into(),
                header("x-lifeboat-timestamp"),
            ),
            (
                "x-lifeboat-signature".into(),
                header("x-lifeboat-signature"),
            ),
        ]),
        body: String::from_utf8(body).expect("utf-8"),
    };
    assert!(signature_checks(&good, "s3cret"));
    let tampered = Received {
        body: good.body.replace("go", "no"),
        ..good
    };
    assert!(!signature_checks(&tampered, "s3cret"));
    let replayed = Received {
        headers: BTreeMap::from([
            ("x-lifeboat-timestamp".into(), "1700000999".into()),
            (
                "x-lifeboat-signature".into(),
                header("x-lifeboat-signature"),
            ),
        ]),
        body: tampered.body.replace("no", "go"),
        path: "/".into(),
    };
    assert!(!signature_checks(&replayed, "s3cret"));
}
