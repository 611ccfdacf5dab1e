//! The daemon's HTTP listener (`listen_metrics`, loopback by default): a
//! minimal HTTP/1.1 responder, one request per connection, serving
//!
//! - `GET /metrics`: the OpenMetrics text exposition;
//! - `GET /healthz`: `ok` while the process serves;
//! - `GET /leader`: 200 only while this daemon leads (for load balancers
//!   and health checks in front of a cluster, as Patroni's `/leader`);
//! - `GET /status`: what `lifeboat status` shows, as JSON;
//! - `GET /`: the status page, one self-contained HTML document that
//!   reads `/status` every few seconds and redraws itself.
//!
//! The status comes from the daemon through the same channel as control
//! socket requests, so the page, `/status` and `lifeboat status` agree.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::control::{Incoming, Request};
use crate::metrics::{CONTENT_TYPE, Metrics};

/// The status page.
const PAGE: &str = include_str!("web/status.html");

/// Who the daemon's log and status name as asking for the status.
const ASKER: &str = "status page (HTTP)";

/// How long `/status` waits for the daemon to answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve on `listener` until the task is dropped, asking `daemon` for
/// the status.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    daemon: mpsc::Sender<Incoming>,
) -> std::io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = Arc::clone(&metrics);
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let mut read = 0;
            // Read the request head (bounded; the body, if any, is ignored).
            while read < request.len() {
                match stream.read(&mut request[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if request[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&request[..read]);
            let line = head.lines().next().unwrap_or_default();
            let answer = route(line, &metrics, &daemon).await;
            let response = format!(
                "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{}Connection: close\r\n\r\n",
                answer.status,
                answer.kind,
                answer.body.len(),
                answer.headers,
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.write_all(answer.body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

struct Answer {
    status: &'static str,
    kind: &'static str,
    headers: &'static str,
    body: String,
}

fn plain(status: &'static str, body: &str) -> Answer {
    Answer {
        status,
        kind: "text/plain; charset=utf-8",
        headers: "",
        body: body.to_string(),
    }
}

async fn route(line: &str, metrics: &Metrics, daemon: &mpsc::Sender<Incoming>) -> Answer {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (method, target) = match parts[..] {
        [method, target, _] => (method, target),
        _ => return plain("400 Bad Request", "bad request\n"),
    };
    if method != "GET" {
        return plain(
            "405 Method Not Allowed",
            "GET /, /status, /metrics, /healthz or /leader\n",
        );
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    match path {
        "/metrics" => Answer {
            status: "200 OK",
            kind: CONTENT_TYPE,
            headers: "",
            body: metrics.render(),
        },
        "/healthz" => plain("200 OK", "ok\n"),
        "/leader" if metrics.leads() => plain("200 OK", "leader\n"),
        "/leader" => plain("503 Service Unavailable", "not the leader\n"),
        "/status" => match status(daemon).await {
            Ok(json) => Answer {
                status: "200 OK",
                kind: "application/json",
                headers: "",
                body: json,
            },
            Err(why) => plain("503 Service Unavailable", &format!("{why}\n")),
        },
        "/" => Answer {
            status: "200 OK",
            kind: "text/html; charset=utf-8",
            // Nothing but the page itself and its own requests.
            headers: "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n",
            body: PAGE.to_string(),
        },
        _ => plain("404 Not Found", "not found\n"),
    }
}

/// Ask the daemon for its status, as JSON text.
async fn status(daemon: &mpsc::Sender<Incoming>) -> Result<String, String> {
    let (reply, answer) = oneshot::channel();
    let incoming = Incoming {
        request: Request::Status,
        who: ASKER.to_string(),
        reply,
    };
    daemon
        .send(incoming)
        .await
        .map_err(|_| "the daemon is stopping".to_string())?;
    let response = tokio::time::timeout(STATUS_TIMEOUT, answer)
        .await
        .map_err(|_| format!("the daemon did not answer within {STATUS_TIMEOUT:?}"))?
        .map_err(|_| "the daemon is stopping".to_string())?;
    match response.status {
        Some(status) if response.ok => serde_json::to_string(&status).map_err(|e| e.to_string()),
        _ => Err(response.message),
    }
}
