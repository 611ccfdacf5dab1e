//! Region probes: HTTP(S), TCP connect, and AWS API reachability, each on
//! its own jittered schedule so that a slow probe never delays another.
//! Results go, with their time, to the daemon, which feeds them to the
//! region's detector (`detect`).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::aws::AwsClients;
use crate::duration::HumanDuration;

/// An HTTP(S) GET answering `status` within `max_latency`, with
/// `body_contains` in its body if set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL.
    pub url: String,
    /// Expected status; default 200.
    #[serde(default = "ok_status")]
    pub status: u16,
    /// Slowest acceptable answer; default: the probe's timeout.
    pub max_latency: Option<HumanDuration>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
}

fn ok_status() -> u16 {
    200
}

/// What a probe checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check<'a> {
    /// An HTTP(S) GET.
    Http(&'a HttpCheck),
    /// A TCP connection to `HOST:PORT`.
    Tcp(&'a str),
    /// A cheap regional AWS call (EC2 `DescribeAvailabilityZones`): the
    /// region's control plane answers.
    AwsApi(&'a str),
}

/// A probe as configured: exactly one of `http`, `tcp`, `aws_api`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Its name, for logs and evidence.
    pub name: String,
    /// Check an HTTP(S) endpoint.
    pub http: Option<HttpCheck>,
    /// Connect to `HOST:PORT`.
    pub tcp: Option<String>,
    /// Call the EC2 API of this region.
    pub aws_api: Option<String>,
    /// Time between checks; default `10s` (each jittered by up to 10%).
    #[serde(default = "ten_seconds")]
    pub interval: HumanDuration,
    /// Time a check may take; default `5s`.
    #[serde(default = "five_seconds")]
    pub timeout: HumanDuration,
    /// Consecutive failures before the probe counts as failing; default 3.
    #[serde(default = "three")]
    pub failure_threshold: u32,
    /// Consecutive successes before it counts as clear again; default 2.
    #[serde(default = "two")]
    pub recovery_threshold: u32,
}

impl ProbeSpec {
    /// What it checks; `None` unless exactly one check is set.
    pub fn check(&self) -> Option<Check<'_>> {
        match (&self.http, &self.tcp, &self.aws_api) {
            (Some(h), None, None) => Some(Check::Http(h)),
            (None, Some(t), None) => Some(Check::Tcp(t)),
            (None, None, Some(r)) => Some(Check::AwsApi(r)),
            _ => None,
        }
    }
}

fn ten_seconds() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn five_seconds() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn three() -> u32 {
    3
}
fn two() -> u32 {
    2
}

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
    /// What was seen.
    pub detail: String,
}

/// Run one check now.
pub async fn check(aws: &AwsClients, spec: &ProbeSpec) -> (bool, String) {
    let timeout = spec.timeout.get();
    let started = Instant::now();
    let run = async {
        match spec.check() {
            None => (
                false,
                "set exactly one of `http`, `tcp`, `aws_api`".to_string(),
            ),
            Some(Check::Http(HttpCheck {
                url,
                status,
                max_latency,
                body_contains,
            })) => {
                let client = match reqwest::Client::builder().timeout(timeout).build() {
                    Ok(c) => c,
                    Err(e) => return (false, format!("HTTP client: {e}")),
                };
                match client.get(url).send().await {
                    Err(e) => (false, format!("no answer: {}", e.without_url())),
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
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => (false, format!("no result within {}", spec.timeout)),
    }
}

/// Start every probe of `region` on its own schedule; results go to `out`.
/// The tasks end when `out`'s receiver is dropped.
pub fn spawn(
    aws: &AwsClients,
    region: &str,
    probes: &[ProbeSpec],
    out: &mpsc::Sender<Outcome>,
) -> Vec<tokio::task::JoinHandle<()>> {
    probes
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let (aws, region, spec, out) =
                (aws.clone(), region.to_string(), spec.clone(), out.clone());
            tokio::spawn(async move {
                loop {
                    let (ok, detail) = check(&aws, &spec).await;
                    let outcome = Outcome {
                        region: region.clone(),
                        probe: i,
                        ok,
                        at: crate::engine::now(),
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
