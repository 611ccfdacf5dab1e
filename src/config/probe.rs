//! Region probes as configured: what each checks and its thresholds.

use serde::{Deserialize, Serialize};

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
    /// Accept any TLS certificate (self-signed, expired, another name).
    /// Certificates are verified unless this is set; the daemon logs each
    /// probe that sets it.
    #[serde(default)]
    pub insecure_skip_verify: bool,
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
    /// A Route 53 health check, by id: healthy when more than 18% of
    /// Route 53's checkers report success, as Route 53 itself decides.
    Route53HealthCheck(&'a str),
}

/// A probe as configured: exactly one of `http`, `tcp`, `aws_api`,
/// `route53_health_check`.
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
    /// Read the status of this Route 53 health check (its id).
    pub route53_health_check: Option<String>,
    /// The Availability Zone this probe watches (by name, e.g.
    /// `us-east-1a`: an endpoint of that zone's instances, a zonal load
    /// balancer address). A zone's probes failing while the rest of the
    /// region answers is that zone's outage, which runs the bindings
    /// naming the zone, not the region's.
    pub zone: Option<String>,
    /// Time between checks; default `10s` (each tick jittered by up to 10%).
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
        match (
            &self.http,
            &self.tcp,
            &self.aws_api,
            &self.route53_health_check,
        ) {
            (Some(h), None, None, None) => Some(Check::Http(h)),
            (None, Some(t), None, None) => Some(Check::Tcp(t)),
            (None, None, Some(r), None) => Some(Check::AwsApi(r)),
            (None, None, None, Some(id)) => Some(Check::Route53HealthCheck(id)),
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
