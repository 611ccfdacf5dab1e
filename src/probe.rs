//! Region probes: HTTP(S), TCP connect, Route 53 health-check status and
//! AWS API reachability, on jittered ticks shared by the probes of one
//! interval, each check concurrent so that a slow probe never delays
//! another.
//! Results go, with their time, to the daemon, which feeds them to the
//! region's detector (`detect`).

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

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
                    Err(e) => (
                        false,
                        format!("no answer: {}", crate::diag::causes(&e.without_url())),
                    ),
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

/// Start every probe of `region`; results go to `out`. One task for the
/// region: probes with the same interval share one timer and are checked
/// together at each of its ticks, concurrently (a slow probe delays no
/// other), so the runtime wakes once per tick, not once per probe. Each
/// tick comes an interval after the last, plus up to a tenth of the
/// interval of jitter, so that daemons started together do not probe in
/// step. A probe whose check is still running when its tick comes sits
/// that tick out. The task ends when `out`'s receiver is dropped; none is
/// started for a region without probes.
pub fn spawn(
    aws: &AwsClients,
    region: &str,
    probes: &[ProbeSpec],
    out: &mpsc::Sender<Outcome>,
) -> Option<tokio::task::JoinHandle<()>> {
    if probes.is_empty() {
        return None;
    }
    let (aws, region, probes, out) = (
        aws.clone(),
        region.to_string(),
        probes.to_vec(),
        out.clone(),
    );
    Some(tokio::spawn(async move {
        let clients = HttpClients::default();
        let (aws, region, specs, clients) = (&aws, region.as_str(), &probes, &clients);
        schedule(
            &probes,
            |i| check_one(aws, region, i, &specs[i], clients),
            &out,
        )
        .await;
    }))
}

/// The probes that share an interval, and when they are checked next.
struct Tick {
    every: Duration,
    probes: Vec<usize>,
    next: tokio::time::Instant,
}

/// The ticks of `probes`, one per distinct interval, all due now.
fn ticks(probes: &[ProbeSpec]) -> Vec<Tick> {
    let now = tokio::time::Instant::now();
    let mut ticks: Vec<Tick> = Vec::new();
    for (i, spec) in probes.iter().enumerate() {
        let every = spec.interval.get();
        match ticks.iter_mut().find(|t| t.every == every) {
            Some(t) => t.probes.push(i),
            None => ticks.push(Tick {
                every,
                probes: vec![i],
                next: now,
            }),
        }
    }
    ticks
}

/// Check `probes` on their ticks with `check` until `out` is closed.
async fn schedule<F, C>(probes: &[ProbeSpec], mut check: C, out: &mpsc::Sender<Outcome>)
where
    C: FnMut(usize) -> F,
    F: std::future::Future<Output = Outcome>,
{
    let mut ticks = ticks(probes);
    let mut checking = vec![false; probes.len()];
    let mut checks: FuturesUnordered<F> = FuturesUnordered::new();
    loop {
        let due = ticks
            .iter()
            .map(|t| t.next)
            .min()
            .unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            Some(outcome) = checks.next() => {
                checking[outcome.probe] = false;
                if out.send(outcome).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(due) => {
                let now = tokio::time::Instant::now();
                for tick in ticks.iter_mut().filter(|t| t.next <= now) {
                    for &i in &tick.probes {
                        if !std::mem::replace(&mut checking[i], true) {
                            checks.push(check(i));
                        }
                    }
                    let jitter = tick.every.mul_f64(fastrand::f64() * 0.1);
                    tick.next = now + tick.every + jitter;
                }
            }
        }
    }
}

/// Check probe `i` of `region` once.
async fn check_one(
    aws: &AwsClients,
    region: &str,
    i: usize,
    spec: &ProbeSpec,
    clients: &HttpClients,
) -> Outcome {
    let started = Instant::now();
    let (ok, detail) = check_with(aws, spec, clients).await;
    Outcome {
        region: region.to_string(),
        probe: i,
        ok,
        at: crate::engine::now(),
        duration_s: started.elapsed().as_secs_f64(),
        detail,
    }
}

/// A probe's thresholds for the detector.
pub fn thresholds(spec: &ProbeSpec) -> crate::detect::Thresholds {
    crate::detect::Thresholds {
        failure: spec.failure_threshold,
        recovery: spec.recovery_threshold,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn probe(name: &str, every: &str) -> ProbeSpec {
        ProbeSpec {
            name: name.into(),
            http: None,
            tcp: Some("127.0.0.1:9".into()),
            aws_api: None,
            route53_health_check: None,
            zone: None,
            interval: every.parse().expect("interval"),
            timeout: HumanDuration::from_secs(5),
            failure_threshold: 3,
            recovery_threshold: 2,
        }
    }

    /// On tokio's paused clock: three probes at 1 s (one of them takes
    /// 3.5 s to answer) and one at 5 s, for 10.5 s.
    #[tokio::test(start_paused = true)]
    async fn probes_of_one_interval_share_each_tick_and_a_slow_one_sits_ticks_out() {
        let probes = [
            probe("a", "1s"),
            probe("b", "1s"),
            probe("slow", "1s"),
            probe("c", "5s"),
        ];
        let begun = tokio::time::Instant::now();
        let started: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
        let (out, mut results) = mpsc::channel(16);
        let log = Arc::clone(&started);
        let scheduler = tokio::spawn(async move {
            schedule(
                &probes,
                |i| {
                    log.lock().expect("log").push((i, begun.elapsed()));
                    async move {
                        if i == 2 {
                            tokio::time::sleep(Duration::from_millis(3500)).await;
                        }
                        Outcome {
                            region: "r".into(),
                            probe: i,
                            ok: true,
                            at: String::new(),
                            duration_s: 0.0,
                            detail: String::new(),
                        }
                    }
                },
                &out,
            )
            .await;
        });
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while results.recv().await.is_some() {
                n += 1;
            }
            n
        });
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        scheduler.abort();
        let _ = scheduler.await;
        let reported = reader.await.expect("reader");
        let started = started.lock().expect("log").clone();
        let at = |probe: usize| -> Vec<Duration> {
            started
                .iter()
                .filter(|(i, _)| *i == probe)
                .map(|(_, t)| *t)
                .collect()
        };
        let (a, b, slow, c) = (at(0), at(1), at(2), at(3));
        // One tick for the probes of an interval: they start together.
        assert_eq!(a, b);
        assert_eq!(a[0], Duration::ZERO);
        assert_eq!(c[0], Duration::ZERO);
        // Each tick an interval after the last, plus at most a tenth.
        for pair in a.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_secs(1), "{gap:?}");
            assert!(gap <= Duration::from_millis(1100), "{gap:?}");
        }
        assert!(a.len() >= 9, "{a:?}");
        // The 5 s probe has its own tick (a third one within 10.5 s when
        // both jitters were small).
        assert!((2..=3).contains(&c.len()), "{c:?}");
        for pair in c.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_secs(5), "{c:?}");
            assert!(gap <= Duration::from_millis(5500), "{c:?}");
        }
        // The slow probe never runs twice at once: it sits out the ticks
        // while it is checking and rejoins the first tick after.
        for pair in slow.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(3500), "{slow:?}");
            assert!(a.contains(&pair[1]), "{slow:?} off the ticks {a:?}");
        }
        assert!(slow.len() >= 2, "{slow:?}");
        // Every check that ended was reported.
        assert!(
            reported >= a.len() * 2 + c.len() + slow.len() - 2,
            "{reported}"
        );
    }

    #[test]
    fn probes_are_grouped_by_interval() {
        let probes = [probe("a", "1s"), probe("b", "10s"), probe("c", "1s")];
        let ticks = ticks(&probes);
        let groups: Vec<(Duration, Vec<usize>)> =
            ticks.iter().map(|t| (t.every, t.probes.clone())).collect();
        assert_eq!(
            groups,
            vec![
                (Duration::from_secs(1), vec![0, 2]),
                (Duration::from_secs(10), vec![1])
            ]
        );
    }
}
