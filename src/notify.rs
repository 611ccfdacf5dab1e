//! Notification webhooks: each event is POSTed as one JSON object to every
//! configured URL, in the background, with a few retries; a receiver that
//! is down never holds up a decision or a run.

use std::time::Duration;

use serde::Serialize;
use tracing::warn;

/// Something a human should hear about.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What happened: `outage-declared`, `region-recovered`, a decision's
    /// kind (`started`, `awaiting-approval`, `blocked-cooldown`, ...),
    /// `run-ended`, `runbook-not-ready`, `runbook-ready`.
    pub event: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The binding concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// The region concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The run concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// One line for people.
    pub summary: String,
    /// Evidence and figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// The configured webhooks.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    urls: Vec<String>,
    client: Option<reqwest::Client>,
}

/// A URL as it may appear in logs: scheme and host only, since webhook
/// paths and queries often carry tokens.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

impl Notifier {
    /// Notify `urls`.
    pub fn new(urls: Vec<String>) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| warn!(error = %e, "webhook client"))
            .ok();
        Notifier { urls, client }
    }

    /// Send `event` to every webhook, in the background.
    pub fn send(&self, event: Event) {
        let Some(client) = &self.client else { return };
        for url in &self.urls {
            let Ok(body) = serde_json::to_vec(&event) else {
                return;
            };
            let (client, url, event) = (client.clone(), url.clone(), event.clone());
            tokio::spawn(async move {
                for attempt in 1..=3u32 {
                    let request = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone());
                    match request.send().await {
                        Ok(r) if r.status().is_success() => return,
                        Ok(r) => warn!(
                            webhook = %redact_url(&url),
                            event = %event.event,
                            attempt,
                            "webhook answered {}",
                            r.status()
                        ),
                        Err(e) => warn!(
                            webhook = %redact_url(&url),
                            event = %event.event,
                            attempt,
                            "webhook unreachable: {}",
                            e.without_url()
                        ),
                    }
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2)).await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_keep_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://hooks.example.com/services/T0/B0/secret?x=1"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com"),
            "https://hooks.example.com/…"
        );
    }
}
