//! Notification webhooks: each event is POSTed to every configured
//! receiver, in the body its format asks for, in the background with a
//! few retries; a receiver that is down never holds up a decision or a
//! run.
//!
//! - `generic`: the [`Event`] as JSON; with a secret, signed: the
//!   `X-Lifeboat-Timestamp` header (Unix seconds) and
//!   `X-Lifeboat-Signature: v1=HEX`, the HMAC-SHA256 of
//!   `TIMESTAMP.BODY` under the secret, so a receiver can check both who
//!   sent it and that it is not a replay.
//! - `slack`: an incoming-webhook message, `{"text": ...}` (Slack answers
//!   `no_text` without it), which Mattermost and Rocket.Chat accept too.
//! - `pagerduty`: an Events API v2 event; a declared outage triggers an
//!   incident keyed by its region, which the region's recovery resolves; a
//!   runbook no longer ready triggers one its readiness resolves.

use std::time::Duration;

use serde::Serialize;
use tracing::warn;

use crate::config::{Webhook, WebhookFormat};
use crate::redact;

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
    hooks: Vec<Webhook>,
    client: Option<reqwest::Client>,
}

/// HMAC-SHA256 of `message` under `key` (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(Sha256::digest(key).as_slice());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    let mut out = [0u8; 32];
    out.copy_from_slice(outer.as_slice());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// PagerDuty's `severity` for an event.
fn severity(event: &str) -> &'static str {
    match event {
        "outage-declared" => "critical",
        "start-failed" | "runbook-not-ready" => "error",
        e if e.starts_with("blocked-") => "error",
        "awaiting-approval" => "warning",
        _ => "info",
    }
}

/// PagerDuty's `event_action` and `dedup_key` for an event: one incident
/// per region's outage and per binding's readiness, the rest one each.
fn pagerduty_key(event: &Event) -> (&'static str, String) {
    let region = event.region.as_deref().unwrap_or("");
    let binding = event.binding.as_deref().unwrap_or("");
    match event.event.as_str() {
        "outage-declared" => ("trigger", format!("lifeboat/outage/{region}")),
        "region-recovered" => ("resolve", format!("lifeboat/outage/{region}")),
        "runbook-not-ready" => ("trigger", format!("lifeboat/readiness/{binding}")),
        "runbook-ready" => ("resolve", format!("lifeboat/readiness/{binding}")),
        other => (
            "trigger",
            format!(
                "lifeboat/{other}/{}/{}",
                event.run.as_deref().unwrap_or(binding),
                event.at
            ),
        ),
    }
}

/// The body and headers of `event` for `hook`, sent at `now` (Unix
/// seconds).
pub fn request(hook: &Webhook, event: &Event, now: u64) -> (Vec<u8>, Vec<(String, String)>) {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    let body = match hook.format {
        WebhookFormat::Generic => serde_json::to_vec(event).unwrap_or_default(),
        WebhookFormat::Slack => {
            let mut text = format!("*lifeboat* `{}`: {}", event.event, event.summary);
            if let Some(run) = &event.run {
                text.push_str(&format!(" (run `{run}`)"));
            }
            serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap_or_default()
        }
        WebhookFormat::Pagerduty => {
            let (action, dedup_key) = pagerduty_key(event);
            // PagerDuty keeps the first 1024 characters of a summary.
            let summary: String = event.summary.chars().take(1024).collect();
            let source = event
                .region
                .clone()
                .or_else(|| event.binding.clone())
                .unwrap_or_else(|| "lifeboat".into());
            let mut body = serde_json::json!({
                "routing_key": hook.secret.clone().unwrap_or_default(),
                "event_action": action,
                "dedup_key": dedup_key.chars().take(255).collect::<String>(),
            });
            if action == "trigger" {
                let mut payload = serde_json::json!({
                    "summary": summary,
                    "source": source,
                    "severity": severity(&event.event),
                    "timestamp": event.at,
                    "class": event.event,
                    "custom_details": event,
                });
                // Optional strings: left out rather than null.
                if let Some(binding) = &event.binding {
                    payload["component"] = binding.clone().into();
                }
                if let Some(region) = &event.region {
                    payload["group"] = region.clone().into();
                }
                body["payload"] = payload;
            }
            serde_json::to_vec(&body).unwrap_or_default()
        }
    };
    if hook.format == WebhookFormat::Generic
        && let Some(secret) = &hook.secret
    {
        let mut signed = format!("{now}.").into_bytes();
        signed.extend_from_slice(&body);
        headers.push(("x-lifeboat-timestamp".into(), now.to_string()));
        headers.push((
            "x-lifeboat-signature".into(),
            format!("v1={}", hex(&hmac_sha256(secret.as_bytes(), &signed))),
        ));
    }
    (body, headers)
}

impl Notifier {
    /// Notify `hooks`.
    pub fn new(hooks: Vec<Webhook>) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| warn!(error = %e, "webhook client"))
            .ok();
        Notifier { hooks, client }
    }

    /// Send `event` to every webhook, in the background.
    pub fn send(&self, event: Event) {
        let Some(client) = &self.client else { return };
        for hook in &self.hooks {
            let (client, hook, event) = (client.clone(), hook.clone(), event.clone());
            tokio::spawn(async move {
                for attempt in 1..=3u32 {
                    // Signed anew each attempt: the timestamp is the send's.
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let (body, headers) = request(&hook, &event, now);
                    let mut post = client.post(&hook.url).body(body);
                    for (name, value) in headers {
                        post = post.header(name, value);
                    }
                    match post.send().await {
                        Ok(r) if r.status().is_success() => return,
                        Ok(r) => warn!(
                            webhook = %redact::url(&hook.url),
                            event = %event.event,
                            attempt,
                            status = %r.status(),
                            "webhook refused the event"
                        ),
                        Err(e) => warn!(
                            webhook = %redact::url(&hook.url),
                            event = %event.event,
                            attempt,
                            error = %e.without_url(),
                            "webhook unreachable"
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
            redact::url("https://hooks.example.com/services/T0/B0/secret?x=1"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            redact::url("https://user:pw@hooks.example.com"),
            "https://hooks.example.com/…"
        );
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test cases 1, 2 and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
