//! What years of history cost the shared journal, against a fresh etcd
//! member and an S3 archive on the emulator (see `bench/journal.sh`, which
//! starts both): N past runs, each with its `started` decision and an
//! `ack`, written through the journal; then
//!
//! - a trigger evaluation (`trigger::view`: the decisions in force and the
//!   last run), timed, and a full read of the binding's decisions (what an
//!   evaluation read before), timed, for comparison;
//! - the bytes lifeboat holds in etcd, and the member's database in use
//!   after compaction and defragmentation, before and after the leader's
//!   retention pass moved what ended to the archive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use lifeboat::config::{ArchiveSettings, AwsSettings, Binding, EtcdSettings, Pacing, Policy};
use lifeboat::ha::etcd::Etcd;
use lifeboat::journal::{
    Decision, DecisionKind, Journal, NewRun, Phase, RunState, StepEvent, StepState,
};

/// Journal cost after N past runs and decisions.
#[derive(Debug, Parser)]
struct Args {
    /// The etcd member's URL.
    #[arg(long)]
    endpoint: String,
    /// The emulator's URL (the archive's S3).
    #[arg(long)]
    s3: String,
    /// Past runs (each with two decisions).
    #[arg(long)]
    runs: usize,
    /// Evaluations timed.
    #[arg(long, default_value_t = 200)]
    evaluations: u32,
}

const LONG_AGO: &str = "2026-01-02T00:00:00Z";

fn binding() -> Binding {
    Binding {
        name: "app".into(),
        region: "us-east-1".into(),
        zone: None,
        runbook: "failover.yaml".into(),
        params: Vec::new(),
        policy: Policy::Auto,
        cooldown: Duration::from_secs(3600),
        drill: None,
        max_data_loss: None,
        maintenance: Vec::new(),
        other_side: None,
        reprotected: false,
        protected: Vec::new(),
    }
}

fn write_run(journal: &Journal, i: usize) {
    let id = format!("run-{i:06}");
    let run = NewRun {
        id: id.clone(),
        runbook: "failover".into(),
        file: "failover.yaml".into(),
        runbook_sha256: String::new(),
        runbook_text: "name: failover\nstrategy: pilot-light\n".repeat(20),
        params: Vec::new(),
        secret_params: Vec::new(),
        mode: "failover".into(),
        started_by: "bench".into(),
        started_at: LONG_AGO.into(),
    };
    let decision = |kind| Decision {
        seq: 0,
        at: LONG_AGO.into(),
        binding: Some("app".into()),
        kind,
        run: Some(id.clone()),
        who: "bench".into(),
        detail: Some(serde_json::json!({ "evidence": "probes down in 2 places" })),
    };
    let expect = |r: Result<_, lifeboat::journal::JournalError>| {
        if let Err(e) = r {
            panic!("journal write: {e}");
        }
    };
    expect(journal.start_run(&run, &[], Some(&decision(DecisionKind::Started))));
    for state in [StepState::Running, StepState::Succeeded] {
        expect(
            journal
                .record(
                    &id,
                    &StepEvent {
                        seq: 0,
                        step: "promote".into(),
                        phase: Phase::Main,
                        attempt: 1,
                        state,
                        at: LONG_AGO.into(),
                        outputs: None,
                        message: None,
                    },
                )
                .map(|_| ()),
        );
    }
    expect(journal.set_run_state(&id, RunState::Succeeded, Some(LONG_AGO), None));
    expect(journal.decide(&decision(DecisionKind::Ack)).map(|_| ()));
}

/// Lifeboat's bytes in etcd (keys and values under the prefix), and the
/// member's database in use once compacted and defragmented.
fn sizes(etcd: &Etcd) -> (usize, i64) {
    let mut client = etcd.client();
    let prefix = etcd.key("");
    etcd.block(async move {
        // In pages: the whole prefix is over gRPC's message limit.
        let end = format!("{}0", prefix.trim_end_matches('/'));
        let (mut from, mut bytes, mut revision) = (prefix.into_bytes(), 0usize, 0);
        loop {
            let got = client
                .get(
                    from.clone(),
                    Some(
                        etcd_client::GetOptions::new()
                            .with_range(end.clone())
                            .with_limit(500),
                    ),
                )
                .await?;
            revision = revision.max(
                got.header()
                    .map_or(0, etcd_client::ResponseHeader::revision),
            );
            bytes += got
                .kvs()
                .iter()
                .map(|kv| kv.key().len() + kv.value().len())
                .sum::<usize>();
            match got.kvs().last() {
                Some(kv) if got.more() => {
                    from = kv.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        client
            .compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await?;
        client.defragment().await?;
        let status = client.status().await?;
        Ok((bytes, status.db_size()))
    })
    .unwrap_or_else(|e| panic!("etcd: {e}"))
}

fn timed(n: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

fn main() {
    let args = Args::parse();
    let archive = ArchiveSettings {
        bucket: "bench-journal".into(),
        prefix: "lifeboat/journal/".into(),
        region: "us-east-1".into(),
    };
    let settings = EtcdSettings {
        endpoints: vec![args.endpoint.clone()],
        prefix: "/lifeboat".into(),
        tls: None,
        lease_ttl: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        name: "bench".into(),
        place: "bench".into(),
        quorum_places: 1,
        history: lifeboat::config::DEFAULT_ETCD_HISTORY,
        archive: Some(archive),
    };
    let aws = AwsSettings {
        profile: None,
        endpoint_url: Some(args.s3.clone()),
        pacing: Pacing::Off,
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let clients =
            lifeboat::aws::AwsClients::load(&aws, lifeboat::aws::Credentials::Emulator).await;
        // Already there from an earlier size: fine.
        let _ = clients
            .s3("us-east-1")
            .create_bucket()
            .bucket("bench-journal")
            .send()
            .await;
    });
    let etcd = Arc::new(Etcd::connect(&settings).expect("connect"));
    let store = lifeboat::archive::store(
        Arc::clone(&etcd),
        &settings,
        &aws,
        lifeboat::aws::Credentials::Emulator,
    )
    .expect("store");
    let journal = Arc::new(Journal::etcd(store));

    let writing = Instant::now();
    let workers = 8;
    std::thread::scope(|s| {
        for w in 0..workers {
            let journal = Arc::clone(&journal);
            s.spawn(move || {
                for i in (w..args.runs).step_by(workers) {
                    write_run(&journal, i);
                }
            });
        }
    });
    let wrote = writing.elapsed();
    let b = binding();
    let now = jiff::Timestamp::now();
    let evaluate = || {
        lifeboat::trigger::view(&journal, &b, now).expect("view");
    };
    let before_eval = timed(args.evaluations, evaluate);
    let scans = (args.evaluations / 20).max(3);
    let before_scan = timed(scans, || {
        let all = journal.decisions(Some("app")).expect("decisions");
        lifeboat::journal::InForce::scan(&all, "app");
    });
    let (before_bytes, before_db) = sizes(&etcd);

    let moving = Instant::now();
    let cutoff: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().expect("cutoff");
    let moved = journal.retire(cutoff).expect("retire");
    let moved_in = moving.elapsed();
    let after_eval = timed(args.evaluations, evaluate);
    let (after_bytes, after_db) = sizes(&etcd);
    let history = Instant::now();
    let listed = journal.runs().expect("runs").len();
    let history_in = history.elapsed();
    assert_eq!(
        listed, args.runs,
        "every run still listed, from the archive"
    );
    // All but the binding's last (and the one its last ack names, when
    // the writers interleaved), which its decisions in force name.
    assert!(moved.runs + 2 >= args.runs && moved.runs < args.runs);

    println!(
        "runs={} decisions={} wrote_s={:.1} eval_ms={:.3} scan_ms={:.2} etcd_bytes={} etcd_db={} | moved runs={} decisions={} in {:.1}s | eval_ms={:.3} etcd_bytes={} etcd_db={} history_ms={:.0}",
        args.runs,
        args.runs * 2,
        wrote.as_secs_f64(),
        before_eval.as_secs_f64() * 1000.0,
        before_scan.as_secs_f64() * 1000.0,
        before_bytes,
        before_db,
        moved.runs,
        moved.decisions,
        moved_in.as_secs_f64(),
        after_eval.as_secs_f64() * 1000.0,
        after_bytes,
        after_db,
        history_in.as_secs_f64() * 1000.0,
    );
}
