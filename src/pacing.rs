//! Client-side pacing of AWS requests along the request buckets AWS
//! documents, so that a mass failover sends no faster than AWS admits and
//! never storms it with retries.
//!
//! AWS throttles with token buckets: each request takes a token (some take
//! one per instance they name as well), a bucket refills at a set rate up
//! to its capacity, and a request that finds its bucket empty is refused
//! (`RequestLimitExceeded`, `Throttling`, `ThrottlingException`). The
//! defaults documented per account and region:
//!
//! - **EC2**, each API on its own: non-mutating actions (`Describe*`,
//!   `Get*`, `List*`, `Search*`) 100 tokens refilled at 20 a second; those
//!   sent with no filter, no id and no page size 50 at 10; mutating actions
//!   200 at 5; besides, `RunInstances` and `StartInstances` take a token per
//!   instance from buckets of 1,000 refilled at 2 a second, `StopInstances`
//!   and `TerminateInstances` from 1,000 at 20.
//! - **RDS**: a burst of 300 requests and 12 a second sustained.
//! - **Route 53**: five requests a second per account, every API together.
//!
//! [`Pacer`] keeps the same buckets on the client: before a request is
//! sent it reserves its tokens and waits until they would be there, so the
//! requests leave at the rate AWS refills. The client's buckets hold one
//! token less than AWS's, which absorbs a request's time in flight: a
//! burst that left together but arrived late cannot leave AWS's bucket
//! short of the next request. A throttle that comes back anyway (another
//! client of the same account spent the tokens) empties the client's
//! bucket, so what follows waits for the refill instead of retrying into
//! the same wall. Services not listed here are not paced.
//!
//! Accounts with raised limits can turn pacing off: `aws.pacing: off` in
//! the config, or `LIFEBOAT_AWS_PACING=off`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One of AWS's token buckets, as documented.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens it holds when full (the burst).
    pub capacity: f64,
    /// Tokens added each second.
    pub refill: f64,
}

/// What one request takes from one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The bucket, named within its account and region (`ec2 StartInstances`,
    /// `ec2 StartInstances instances`, `rds`, `route53`).
    pub bucket: String,
    /// Its documented size and refill.
    pub limits: Bucket,
    /// Tokens taken.
    pub cost: f64,
}

const EC2_NON_MUTATING: Bucket = Bucket {
    capacity: 100.0,
    refill: 20.0,
};
const EC2_UNFILTERED: Bucket = Bucket {
    capacity: 50.0,
    refill: 10.0,
};
const EC2_MUTATING: Bucket = Bucket {
    capacity: 200.0,
    refill: 5.0,
};
const EC2_LAUNCHES: Bucket = Bucket {
    capacity: 1000.0,
    refill: 2.0,
};
const EC2_STOPS: Bucket = Bucket {
    capacity: 1000.0,
    refill: 20.0,
};
const RDS: Bucket = Bucket {
    capacity: 300.0,
    refill: 12.0,
};
const ROUTE53: Bucket = Bucket {
    capacity: 5.0,
    refill: 5.0,
};

/// Whether an EC2 or RDS action changes nothing.
pub fn non_mutating(action: &str) -> bool {
    ["Describe", "Get", "List", "Search"]
        .iter()
        .any(|verb| action.starts_with(verb))
}

/// What a request to `service` (its signing name: `ec2`, `rds`,
/// `route53`) takes from AWS's buckets. `action` and `params` are the
/// query protocol's `Action` and form parameters (empty for REST
/// services).
pub fn charges(service: &str, action: &str, params: &[(String, String)]) -> Vec<Charge> {
    let named = |prefix: &str| params.iter().filter(|(k, _)| k.starts_with(prefix)).count();
    match service {
        "ec2" if !action.is_empty() => {
            let mut out = Vec::new();
            let request = if non_mutating(action) {
                let narrowed = ["Filter.", "MaxResults", "NextToken", "InstanceId."]
                    .iter()
                    .any(|p| named(p) > 0)
                    || params
                        .iter()
                        .any(|(k, _)| k.ends_with("Id") || k.contains("Id."));
                if narrowed {
                    EC2_NON_MUTATING
                } else {
                    EC2_UNFILTERED
                }
            } else {
                EC2_MUTATING
            };
            out.push(Charge {
                bucket: format!("ec2 {action}"),
                limits: request,
                cost: 1.0,
            });
            let instances = match action {
                "RunInstances" => params
                    .iter()
                    .find(|(k, _)| k == "MaxCount")
                    .and_then(|(_, v)| v.parse::<f64>().ok())
                    .map(|n| (n, EC2_LAUNCHES)),
                "StartInstances" => Some((named("InstanceId.") as f64, EC2_LAUNCHES)),
                "StopInstances" | "TerminateInstances" => {
                    Some((named("InstanceId.") as f64, EC2_STOPS))
                }
                _ => None,
            };
            if let Some((n, limits)) = instances
                && n > 0.0
            {
                out.push(Charge {
                    bucket: format!("ec2 {action} instances"),
                    limits,
                    cost: n,
                });
            }
            out
        }
        "rds" => vec![Charge {
            bucket: "rds".into(),
            limits: RDS,
            cost: 1.0,
        }],
        "route53" => vec![Charge {
            bucket: "route53".into(),
            limits: ROUTE53,
            cost: 1.0,
        }],
        _ => Vec::new(),
    }
}

/// The throttling error codes of the paced services (and S3's).
pub fn is_throttle(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "PriorRequestNotComplete"
            | "SlowDown"
    )
}

/// A signed request's account scope, region and service, from its SigV4
/// `Authorization` header's credential scope.
pub fn signed_scope(authorization: &str) -> Option<(&str, &str)> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    let mut parts = scope.split('/');
    let (_key, _date) = (parts.next()?, parts.next()?);
    Some((parts.next()?, parts.next()?))
}

/// Decode a form body (`a=1&b=x%20y`) into its pairs.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(b)) => {
                    out.push(b);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A bucket's level on the client: tokens left at `at` (negative: tokens
/// already promised to requests waiting for the refill).
#[derive(Debug, Clone, Copy)]
struct Level {
    tokens: f64,
    at: Instant,
}

/// The client's copies of AWS's buckets, per account scope, region and
/// bucket; and how much pacing has cost so far.
#[derive(Debug, Default)]
pub struct Pacer {
    levels: Mutex<HashMap<String, Level>>,
    paced: AtomicU64,
    waited_us: AtomicU64,
    throttled: AtomicU64,
}

/// The client keeps one token less than AWS: see the module's notes.
const MARGIN: f64 = 1.0;

impl Pacer {
    /// Reserve `cost` tokens of `limits` in bucket `key` now; how long to
    /// wait before sending so that they are there.
    pub fn reserve(&self, key: &str, limits: Bucket, cost: f64, now: Instant) -> Duration {
        let capacity = (limits.capacity - MARGIN).max(1.0);
        let cost = cost.min(capacity);
        let mut levels = self
            .levels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let level = levels.entry(key.to_string()).or_insert(Level {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(level.at).as_secs_f64();
        level.tokens = (level.tokens + elapsed * limits.refill).min(capacity);
        level.at = now;
        level.tokens -= cost;
        if level.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-level.tokens / limits.refill)
        }
    }

    /// AWS throttled a request of bucket `key` anyway: its tokens went
    /// elsewhere, so the client's bucket is empty too.
    pub fn throttled(&self, key: &str, now: Instant) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut levels = self
            .levels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(level) = levels.get_mut(key)
            && level.tokens > 0.0
        {
            level.tokens = 0.0;
            level.at = now;
        }
    }

    /// Requests held back so far, the time they waited in all, and the
    /// throttles AWS answered all the same.
    pub fn cost(&self) -> (u64, Duration, u64) {
        (
            self.paced.load(Ordering::Relaxed),
            Duration::from_micros(self.waited_us.load(Ordering::Relaxed)),
            self.throttled.load(Ordering::Relaxed),
        )
    }

    /// Reserve every charge of a request; the longest wait.
    pub fn admit(&self, scope: &str, region: &str, charges: &[Charge], now: Instant) -> Duration {
        let wait = charges
            .iter()
            .map(|c| self.reserve(&key(scope, region, &c.bucket), c.limits, c.cost, now))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            self.paced.fetch_add(1, Ordering::Relaxed);
            self.waited_us.fetch_add(
                u64::try_from(wait.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        wait
    }
}

/// A bucket's key: Route 53's buckets are global, the others regional.
pub fn key(scope: &str, region: &str, bucket: &str) -> String {
    if bucket == "route53" {
        format!("{scope} {bucket}")
    } else {
        format!("{scope} {region} {bucket}")
    }
}

/// What an HTTP request to AWS is charged: its region and its charges.
pub fn request_charges(
    request: &aws_smithy_runtime_api::http::Request,
) -> Option<(String, Vec<Charge>)> {
    let authorization = request.headers().get("authorization")?;
    signed_charges(authorization, request.body().bytes().unwrap_or_default())
}

/// What a signed request is charged, from its `Authorization` header and
/// its body: its region and its charges (the query protocol's action and
/// parameters read from the body of EC2's requests).
pub fn signed_charges(authorization: &str, body: &[u8]) -> Option<(String, Vec<Charge>)> {
    let (region, service) = signed_scope(authorization)?;
    let params = match service {
        "ec2" => form_pairs(body),
        _ => Vec::new(),
    };
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Some((region.to_string(), charges(service, &action, &params)))
}

/// Whether pacing is on: as configured, unless `LIFEBOAT_AWS_PACING=off`.
pub fn enabled(configured: crate::config::Pacing) -> bool {
    configured == crate::config::Pacing::Documented
        && !std::env::var("LIFEBOAT_AWS_PACING").is_ok_and(|v| v.eq_ignore_ascii_case("off"))
}

/// An HTTP client that paces every request through a [`Pacer`] before
/// handing it to the real one.
#[derive(Debug, Clone)]
pub struct PacedClient {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    pacer: std::sync::Arc<Pacer>,
    scope: String,
}

impl PacedClient {
    /// Pace `inner`'s requests through `pacer`, as account `scope`.
    pub fn new(
        inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
        pacer: std::sync::Arc<Pacer>,
        scope: &str,
    ) -> PacedClient {
        PacedClient {
            inner,
            pacer,
            scope: scope.to_string(),
        }
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    pacer: std::sync::Arc<Pacer>,
    scope: String,
}

impl aws_smithy_runtime_api::client::http::HttpClient for PacedClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: std::sync::Arc::clone(&self.pacer),
            scope: self.scope.clone(),
        })
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for PacedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let wait = request_charges(&request).map_or(Duration::ZERO, |(region, charges)| {
            self.pacer
                .admit(&self.scope, &region, &charges, Instant::now())
        });
        let inner = self.inner.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requests_are_charged_as_aws_documents_its_buckets() {
        let start = charges(
            "ec2",
            "StartInstances",
            &pairs(&[("InstanceId.1", "i-1"), ("InstanceId.2", "i-2")]),
        );
        assert_eq!(start.len(), 2);
        assert_eq!((start[0].limits, start[0].cost), (EC2_MUTATING, 1.0));
        assert_eq!(start[1].bucket, "ec2 StartInstances instances");
        assert_eq!((start[1].limits, start[1].cost), (EC2_LAUNCHES, 2.0));
        let run = charges("ec2", "RunInstances", &pairs(&[("MaxCount", "7")]));
        assert_eq!(run[1].cost, 7.0);
        let stop = charges("ec2", "StopInstances", &pairs(&[("InstanceId.1", "i-1")]));
        assert_eq!(stop[1].limits, EC2_STOPS);
        let paged = charges(
            "ec2",
            "DescribeInstances",
            &pairs(&[("MaxResults", "1000")]),
        );
        assert_eq!(
            paged,
            vec![Charge {
                bucket: "ec2 DescribeInstances".into(),
                limits: EC2_NON_MUTATING,
                cost: 1.0
            }]
        );
        let bare = charges("ec2", "DescribeInstances", &[]);
        assert_eq!(bare[0].limits, EC2_UNFILTERED);
        assert_eq!(charges("rds", "", &[])[0].limits, RDS);
        assert_eq!(charges("route53", "", &[])[0].limits, ROUTE53);
        assert!(charges("autoscaling", "", &[]).is_empty());
    }

    #[test]
    fn the_signed_scope_names_the_region_and_the_service() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-west-2/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(signed_scope(auth), Some(("us-west-2", "ec2")));
        assert_eq!(signed_scope("Bearer x"), None);
        assert_eq!(
            form_pairs(b"Action=DescribeInstances&Filter.1.Name=tag%3ARole&X=a+b"),
            pairs(&[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "tag:Role"),
                ("X", "a b")
            ])
        );
        assert_eq!(key("caller", "us-east-1", "route53"), "caller route53");
    }

    #[test]
    fn a_burst_past_the_bucket_leaves_at_the_refill_rate() {
        let pacer = Pacer::default();
        let now = Instant::now();
        // Route 53: 5 a second; the client keeps 4 of the 5 for the burst.
        let waits: Vec<Duration> = (0..8)
            .map(|_| pacer.reserve("r", ROUTE53, 1.0, now))
            .collect();
        assert!(waits[..4].iter().all(Duration::is_zero), "{waits:?}");
        for (i, w) in waits[4..].iter().enumerate() {
            let expected = 0.2 * (i + 1) as f64;
            assert!((w.as_secs_f64() - expected).abs() < 1e-9, "{waits:?}");
        }
        // A second later five tokens came back, four of them promised.
        let later = pacer.reserve("r", ROUTE53, 1.0, now + Duration::from_secs(1));
        assert!((later.as_secs_f64() - 0.0).abs() < 1e-9, "{later:?}");
        // A cost beyond the bucket is held to it, never waits forever.
        let huge = pacer.reserve("big", EC2_LAUNCHES, 5000.0, now);
        assert!(huge.is_zero());
        let next = pacer.reserve("big", EC2_LAUNCHES, 2.0, now);
        assert!((next.as_secs_f64() - 1.0).abs() < 1e-9, "{next:?}");
    }

    #[test]
    fn a_throttle_empties_the_clients_bucket() {
        let pacer = Pacer::default();
        let now = Instant::now();
        assert!(pacer.reserve("r", RDS, 1.0, now).is_zero());
        pacer.throttled("r", now);
        let wait = pacer.reserve("r", RDS, 1.0, now);
        assert!((wait.as_secs_f64() - 1.0 / 12.0).abs() < 1e-9, "{wait:?}");
        assert_eq!(pacer.cost().2, 1);
        assert!(is_throttle("RequestLimitExceeded") && !is_throttle("InvalidParameter"));
    }
}
