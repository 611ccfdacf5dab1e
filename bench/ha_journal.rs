//! High-availability figures, against a running etcd cluster (see
//! `bench/ha.sh`, which starts one):
//!
//! - the step boundary: how long one journal write (a step transition)
//!   takes, fenced, in etcd, against the embedded SQLite journal on the
//!   same machine;
//! - the takeover: from the moment a leader stops renewing its lease (a
//!   crash) until a waiting campaigner is elected, against the lease TTL,
//!   and how long before that election the crashed leader's own clock had
//!   already told it to stop (the safety margin).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use lifeboat::config::EtcdSettings;
use lifeboat::ha::etcd::Etcd;
use lifeboat::ha::lease::{self, Session};
use lifeboat::journal::etcd::{Fence, Store};
use lifeboat::journal::{Access, Journal, NewRun, Phase, StepEvent, StepState};

/// Journal write latency and takeover time on an etcd cluster.
#[derive(Debug, Parser)]
struct Args {
    /// Member URLs, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Step transitions written to each journal.
    #[arg(long, default_value_t = 1000)]
    writes: usize,
    /// Lease TTL of the takeover rounds, in seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u64,
    /// Takeover rounds (crashes at evenly spread phases of the renewals).
    #[arg(long, default_value_t = 12)]
    rounds: usize,
}

fn run(id: &str) -> NewRun {
    NewRun {
        id: id.into(),
        runbook: "bench".into(),
        file: "bench.yaml".into(),
        runbook_sha256: String::new(),
        runbook_text: "name: bench".into(),
        params: Vec::new(),
        secret_params: Vec::new(),
        mode: "failover".into(),
        started_by: "bench".into(),
        started_at: lifeboat::engine::now(),
    }
}

fn event(i: usize) -> StepEvent {
    StepEvent {
        seq: 0,
        step: format!("step-{}", i / 2),
        phase: Phase::Main,
        attempt: 1,
        state: if i.is_multiple_of(2) {
            StepState::Running
        } else {
            StepState::Succeeded
        },
        at: lifeboat::engine::now(),
        outputs: None,
        message: None,
    }
}

/// Time `n` step transitions; sorted, in milliseconds.
fn boundaries(journal: &Journal, id: &str, n: usize) -> Vec<f64> {
    journal.create_run(&run(id)).expect("create the run");
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let e = event(i);
            let t = Instant::now();
            journal.record(id, &e).expect("record");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let settings = EtcdSettings {
        endpoints: args.endpoints.clone(),
        prefix: format!("/lifeboat-bench-{}", std::process::id()),
        tls: None,
        lease_ttl: Duration::from_secs(args.ttl),
        request_timeout: Duration::from_secs(2),
        name: "bench".into(),
        place: "bench".into(),
        quorum_places: 2,
        history: lifeboat::config::DEFAULT_ETCD_HISTORY,
        archive: None,
    };
    let etcd = Arc::new(Etcd::connect(&settings).expect("connect"));
    let store = Store::new(Arc::clone(&etcd));
    let election = etcd.key("leader");

    // The step boundary.
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Journal::open(dir.path(), Access::Executor).expect("sqlite journal");
    let local = boundaries(&sqlite, "local", args.writes);
    let session = Session::start(&etcd, settings.lease_ttl)
        .await
        .expect("lease");
    let key = lease::campaign(&etcd, &election, "bench", &session)
        .await
        .expect("elected");
    let fenced = Journal::etcd(store.fenced(Fence {
        key: String::from_utf8_lossy(key.key()).into_owned(),
        epoch: key.rev(),
        holder: "bench".into(),
        lease: Arc::clone(&session.clock),
    }));
    let shared = boundaries(&fenced, "shared", args.writes);
    session.revoke(&etcd).await;
    println!("step boundary (one journal write), {} writes:", args.writes);
    for (name, ms) in [("sqlite (embedded)", &local), ("etcd, fenced", &shared)] {
        println!(
            "  {name:<18} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            pct(ms, 0.5),
            pct(ms, 0.99),
            pct(ms, 1.0)
        );
    }
    println!(
        "boundary_ratio_p50={:.2} boundary_ratio_p99={:.2}",
        pct(&shared, 0.5) / pct(&local, 0.5),
        pct(&shared, 0.99) / pct(&local, 0.99)
    );

    // The takeover.
    println!(
        "takeover (lease TTL {} s), {} rounds:",
        args.ttl, args.rounds
    );
    let mut takeovers = Vec::new();
    for round in 0..args.rounds {
        let old = Session::start(&etcd, settings.lease_ttl)
            .await
            .expect("lease");
        lease::campaign(&etcd, &election, "old", &old)
            .await
            .expect("elected");
        let new = Arc::new(
            Session::start(&etcd, settings.lease_ttl)
                .await
                .expect("lease"),
        );
        let (e, n) = (Arc::clone(&etcd), Arc::clone(&new));
        let waiting = tokio::spawn({
            let election = election.clone();
            async move {
                let key = lease::campaign(&e, &election, "new", &n).await;
                (Instant::now(), key)
            }
        });
        // Let the renewals settle into their rhythm, then crash at this
        // round's phase of it (the rounds spread evenly over one renewal
        // period): no more renewals, nothing given back.
        let period = lease::cluster_ttl(settings.lease_ttl) / 3;
        let phase = period.mul_f64(round as f64 / args.rounds as f64);
        tokio::time::sleep(Duration::from_millis(500) + period + phase).await;
        let crashed = Instant::now();
        let clock = Arc::clone(&old.clock);
        drop(old);
        let deadline = clock.deadline().expect("a valid lease before the crash");
        let (elected, key) = waiting.await.expect("campaign task");
        key.expect("elected after the crash");
        let took = elected - crashed;
        let margin = elected.saturating_duration_since(deadline);
        println!(
            "  round {round}: elected {:.2} s after the crash; the crashed leader's own clock ran out {:.2} s before that",
            took.as_secs_f64(),
            margin.as_secs_f64()
        );
        takeovers.push(took.as_secs_f64());
        new.revoke(&etcd).await;
    }
    takeovers.sort_by(f64::total_cmp);
    println!(
        "takeover_s_min={:.2} takeover_s_max={:.2} takeover_to_ttl_max={:.2}",
        takeovers[0],
        takeovers[takeovers.len() - 1],
        takeovers[takeovers.len() - 1] / args.ttl as f64
    );
}
