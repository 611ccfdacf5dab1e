//! Region probes: HTTP(S), TCP connect, Route 53 health-check status and
//! AWS API reachability, each on
//! its own jittered schedule so that a slow probe never delays another.
//! Results go, with their time, to the daemon, which feeds them to the
//! region's detector (`detect`).

use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::aws::AwsClients;
use crate::duration::HumanDuration;

pub use crate::config::probe::{Check, HttpCheck, ProbeSpec};

/// One probe result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The region probed.
    pub region: String,
    /// The probe's index in the region's list.
    pub probe: usize,
    /// Whether it passed.
    pub ok: bool,
    /// When it ended (RFC 3339).
    pub at: String,
    /// How long the check took, in seconds.
    pub duration_s: f64,
    /// What was seen.
    pub detail: String,
}

/// Run one check now.
pub async fn check(aws: &AwsClients, spec: &ProbeSpec) -> (bool, String) {
    check_with(aws, spec, &HttpClients::default()).await
}

/// An HTTP client for probes, verifying certificates or not. Building one
/// loads the TLS trust roots, far more work and memory than a check: the
/// probes of a daemon share two (per-request timeouts differ). No idle
/// connection is kept: each check connects anew, as reachability needs.
fn http_client(insecure: bool) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(insecure)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The two shared probe clients, built on first use.
#[derive(Debug, Clone, Default)]
pub struct HttpClients {
    verifying: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    insecure: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
}

impl HttpClients {
    fn get(&self, insecure: bool) -> Result<reqwest::Client, String> {
        let cell = if insecure {
            &self.insecure
        } else {
            &self.verifying
        };
        cell.get_or_init(|| http_client(insecure)).clone()
    }
}

/// Run one check now, with the shared HTTP clients.
async fn check_with(aws: &AwsClients, spec: &ProbeSpec, clients: &HttpClients) -> (bool, String) {
    let timeout = spec.timeout.get();
    let http = match &spec.http {
        Some(h) => match clients.get(h.insecure_skip_verify) {
            Ok(c) => Some(c),
            Err(e) => return (false, e),
        },
        None => None,
    };
    let started = Instant::now();
    let run = async {
        match spec.check() {
            None => (
                false,
                "set exactly one of `http`, `tcp`, `aws_api`, `route53_health_check`".to_string(),
            ),
            Some(Check::Http(HttpCheck {
                url,
                status,
                max_latency,
                body_contains,
                ..
            })) => {
                let Some(client) = http else {
                    return (false, "no HTTP client".to_string());
                };
                match client.get(url).timeout(timeout).send().await {
                    Err(e) => (false, format!("no answer: {}", causes(&e.without_url()))),
                    Ok(response) => {
                        let got = response.status().as_u16();
                        let body = response.text().await.unwrap_or_default();
                        let latency = started.elapsed();
                        let limit = max_latency.map_or(timeout, HumanDuration::get);
                        if got != *status {
                            (false, format!("answered {got}, expected {status}"))
                        } else if latency > limit {
                            (false, format!("answered in {latency:?}, above {limit:?}"))
                        } else if body_contains
                            .as_ref()
                            .is_some_and(|t| !body.contains(t.as_str()))
                        {
                            (false, "answered without the expected text".to_string())
                        } else {
                            (true, format!("answered {got} in {latency:?}"))
                        }
                    }
                }
            }
            Some(Check::Tcp(address)) => match tokio::net::TcpStream::connect(address).await {
                Ok(_) => (true, format!("connected in {:?}", started.elapsed())),
                Err(e) => (false, format!("connect {address}: {e}")),
            },
            Some(Check::AwsApi(region)) => {
                match aws.ec2(region).describe_availability_zones().send().await {
                    Ok(_) => (true, format!("EC2 API in {region} answered")),
                    Err(e) => (
                        false,
                        format!(
                            "EC2 API in {region}: {}",
                            aws_smithy_types::error::display::DisplayErrorContext(e)
                        ),
                    ),
                }
            }
            Some(Check::Route53HealthCheck(id)) => {
                match aws
                    .route53()
                    .get_health_check_status()
                    .health_check_id(id)
                    .send()
                    .await
                {
                    Ok(out) => crate::actions::route53::judge_observations(
                        id,
                        out.health_check_observations()
                            .iter()
                            .map(|o| o.status_report().and_then(|r| r.status()).unwrap_or("")),
                    ),
                    Err(e) => (
                        false,
                        format!(
                            "Route 53 health check {id}: {}",
                            aws_smithy_types::error::display::DisplayErrorContext(e)
                        ),
                    ),
                }
            }
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => (false, format!("no result within {}", spec.timeout)),
    }
}

/// An error with its causes, `outer: inner: innermost`.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Start every probe of `region` on its own schedule; results go to `out`.
/// The tasks end when `out`'s receiver is dropped.
pub fn spawn(
    aws: &AwsClients,
    region: &str,
    probes: &[ProbeSpec],
    out: &mpsc::Sender<Outcome>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let clients = HttpClients::default();
    probes
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let (aws, region, spec, out, clients) = (
                aws.clone(),
                region.to_string(),
                spec.clone(),
                out.clone(),
                clients.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let checking = Instant::now();
                    let (ok, detail) = check_with(&aws, &spec, &clients).await;
                    let outcome = Outcome {
                        region: region.clone(),
                        probe: i,
                        ok,
                        at: crate::engine::now(),
                        duration_s: checking.elapsed().as_secs_f64(),
                        detail,
                    };
                    if out.send(outcome).await.is_err() {
                        return;
                    }
                    let base = spec.interval.get();
                    let jitter = base.mul_f64(fastrand::f64() * 0.1);
                    tokio::time::sleep(base + jitter).await;
                }
            })
        })
        .collect()
}

/// A probe's thresholds for the detector.
pub fn thresholds(spec: &ProbeSpec) -> crate::detect::Thresholds {
    crate::detect::Thresholds {
        failure: spec.failure_threshold,
        recovery: spec.recovery_threshold,
    }
}
