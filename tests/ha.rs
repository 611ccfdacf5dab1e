//! High availability on a real three-member etcd cluster (Debian's
//! `etcd-server`, installed by `.ci/setup-apt` when missing), on loopback
//! ports, with the AWS emulator behind one simulation proxy per daemon (so
//! every AWS call is attributed to the daemon that made it).
//!
//! - fencing, on the library: a deposed leader's journal write is refused
//!   by the cluster, and nothing of it lands;
//! - three daemons fail the pilot-light runbook over; the leader is
//!   SIGKILLed mid-run: another daemon finishes it, one run, each change
//!   once;
//! - the etcd member the leader talks to is SIGSTOPped: the leader steps
//!   down within its lease, makes no AWS change after, and another leads;
//! - the leader itself is SIGSTOPped until another took over and finished,
//!   then resumed: nothing it does lands, nothing is doubled;
//! - the journal reaches a member serving TLS with a private CA's
//!   certificate when given the CA, and is refused without it.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use lifeboat::config::EtcdSettings;
use lifeboat::ha::etcd::Etcd;
use lifeboat::ha::lease::{self, LeaseClock, Session};
use lifeboat::journal::etcd::{Fence, Store};
use lifeboat::journal::{
    Decision, DecisionKind, InForce, Journal, JournalError, Phase, RunState, StepEvent, StepState,
};

use support::endpoints::endpoints;
use support::moto::Moto;
use support::proxy::{Proxy, Rules};
use support::{KillOnDrop, eventually, eventually_async, free_port, signal};

/// The scenarios each start a cluster, an emulator and three daemons: one
/// at a time, so that a loaded machine does not stretch every lease.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The lease TTL of the daemons (probes: 2 s x 3 = 6 s to declare).
const TTL: Duration = Duration::from_secs(4);

/// A three-member etcd cluster on loopback, stopped when dropped.
struct EtcdCluster {
    members: Vec<Child>,
    clients: Vec<String>,
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = signal(m.id(), "CONT");
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

impl EtcdCluster {
    fn start(dir: &Path) -> EtcdCluster {
        let setup = Command::new(".ci/setup-apt")
            .args(["etcd", "etcd-server"])
            .status()
            .expect("run .ci/setup-apt");
        assert!(setup.success(), "etcd-server could not be installed");
        let peers: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let initial: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{i}=http://127.0.0.1:{p}"))
            .collect();
        let members = (0..3)
            .map(|i| {
                let log = std::fs::File::create(dir.join(format!("etcd-{i}.log"))).expect("log");
                Command::new("etcd")
                    .args([
                        "--name".to_string(),
                        format!("m{i}"),
                        "--data-dir".into(),
                        dir.join(format!("etcd-{i}")).display().to_string(),
                        "--listen-client-urls".into(),
                        format!("http://127.0.0.1:{}", clients[i]),
                        "--advertise-client-urls".into(),
                        format!("http://127.0.0.1:{}", clients[i]),
                        "--listen-peer-urls".into(),
                        format!("http://127.0.0.1:{}", peers[i]),
                        "--initial-advertise-peer-urls".into(),
                        format!("http://127.0.0.1:{}", peers[i]),
                        "--initial-cluster".into(),
                        initial.join(","),
                        "--initial-cluster-state".into(),
                        "new".into(),
                        "--initial-cluster-token".into(),
                        format!("lifeboat-test-{}", peers[0]),
                        "--heartbeat-interval".into(),
                        "100".into(),
                        "--election-timeout".into(),
                        "1000".into(),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("start etcd")
            })
            .collect();
        let cluster = EtcdCluster {
            members,
            clients: clients
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
        };
        // Healthy when each member answers a write through the cluster.
        for url in &cluster.clients {
            eventually(
                Duration::from_secs(60),
                || format!("etcd member {url} never healthy"),
                || {
                    Command::new("curl")
                        .args(["-fsS", "-m", "2", &format!("{url}/health")])
                        .output()
                        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"true\""))
                        .then_some(())
                },
            );
        }
        cluster
    }

    fn settings(&self, member: Option<usize>, name: &str) -> EtcdSettings {
        EtcdSettings {
            endpoints: match member {
                Some(i) => vec![self.clients[i].clone()],
                None => self.clients.clone(),
            },
            prefix: "/lifeboat-test".into(),
            tls: None,
            lease_ttl: TTL,
            request_timeout: Duration::from_secs(1),
            name: name.into(),
            place: "test".into(),
            quorum_places: 2,
            history: lifeboat::config::DEFAULT_ETCD_HISTORY,
            archive: None,
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn seconds(rfc3339: &str) -> f64 {
    let t: jiff::Timestamp = rfc3339.parse().expect("timestamp");
    t.as_millisecond() as f64 / 1000.0
}

/// A run of runbook `rb` named `id`, started at `at`.
fn new_run(id: &str, at: &str) -> lifeboat::journal::NewRun {
    lifeboat::journal::NewRun {
        id: id.into(),
        runbook: "rb".into(),
        file: "rb.yaml".into(),
        runbook_sha256: String::new(),
        runbook_text: format!("name: rb # {id}"),
        params: Vec::new(),
        secret_params: Vec::new(),
        mode: "failover".into(),
        started_by: "test".into(),
        started_at: at.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_leaders_write_is_refused_by_the_cluster_and_lands_nowhere() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = EtcdCluster::start(dir.path());
    let etcd = Arc::new(Etcd::connect(&cluster.settings(None, "t")).expect("connect"));
    let store = Store::new(Arc::clone(&etcd));
    let election = etcd.key("leader");

    let old = Session::start(&etcd, TTL).await.expect("lease");
    // The cluster holds the lease a second under `lease_ttl`, so its
    // expiry sweep (every 0.5 s) revokes a dead leader's within `lease_ttl`;
    // the leader's own clock runs out before the cluster's.
    let mut client = etcd.client();
    let id = old.lease;
    let granted = etcd
        .call(
            async move { client.lease_time_to_live(id, None).await },
            None,
        )
        .await
        .expect("time to live")
        .granted_ttl();
    assert_eq!(granted, i64::try_from(TTL.as_secs()).expect("secs") - 1);
    let local = old.clock.deadline().expect("valid") - std::time::Instant::now();
    assert!(local < Duration::from_secs(u64::try_from(granted).expect("secs")));
    let old_key = lease::campaign(&etcd, &election, "old", &old)
        .await
        .expect("elected");
    let fence = |key: &etcd_client::LeaderKey, holder: &str| Fence {
        key: String::from_utf8_lossy(key.key()).into_owned(),
        epoch: key.rev(),
        holder: holder.into(),
        // Valid by the local clock for a minute: only the cluster can
        // refuse the write, as for a leader paused past its lease.
        lease: Arc::new(LeaseClock::valid_for(Duration::from_secs(60))),
    };
    let old_journal = Journal::etcd(store.fenced(fence(&old_key, "old")));
    let run = new_run("r1", &lifeboat::engine::now());
    old_journal.create_run(&run).expect("the leader writes");
    let event = |state: StepState| StepEvent {
        seq: 0,
        step: "promote".into(),
        phase: Phase::Main,
        attempt: 1,
        state,
        at: lifeboat::engine::now(),
        outputs: None,
        message: None,
    };
    old_journal
        .record("r1", &event(StepState::Running))
        .expect("the leader writes");
    // A second writer of the same run is refused too: the run exists.
    assert!(matches!(
        old_journal.create_run(&run),
        Err(JournalError::Conflict(_))
    ));

    // Its lease ends in the cluster (as when it expires); another wins.
    let mut client = etcd.client();
    let id = old.lease;
    etcd.call(async move { client.lease_revoke(id).await }, None)
        .await
        .expect("revoke");
    let new = Session::start(&etcd, TTL).await.expect("lease");
    let new_key = lease::campaign(&etcd, &election, "new", &new)
        .await
        .expect("elected");
    assert!(new_key.rev() > old_key.rev(), "epochs grow");
    let new_journal = Journal::etcd(store.fenced(fence(&new_key, "new")));

    let late = old_journal.record("r1", &event(StepState::Succeeded));
    match late {
        Err(JournalError::Fenced { holder, why }) => {
            assert_eq!(holder, "old");
            assert!(why.contains("another daemon leads"), "{why}");
        }
        other => panic!("the deposed leader's write was not refused: {other:?}"),
    }
    assert!(matches!(
        old_journal.set_run_state("r1", RunState::Failed, None, Some("late")),
        Err(JournalError::Fenced { .. })
    ));
    new_journal
        .record("r1", &event(StepState::Succeeded))
        .expect("the new leader writes");
    let seen: Vec<(String, Option<i64>, Option<String>)> = store
        .stamped_events("r1")
        .expect("events")
        .into_iter()
        .map(|s| (s.event.state.to_string(), s.epoch, s.leader))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("running".into(), Some(old_key.rev()), Some("old".into())),
            ("succeeded".into(), Some(new_key.rev()), Some("new".into())),
        ]
    );
    assert_eq!(new_journal.run("r1").expect("run").state, "running");

    // A leader whose lease ran out by its own clock does not even ask.
    let expired = Fence {
        lease: Arc::new(LeaseClock::default()),
        ..fence(&new_key, "new")
    };
    let refused = Journal::etcd(store.fenced(expired)).record("r1", &event(StepState::Failed));
    assert!(
        matches!(&refused, Err(JournalError::Fenced { why, .. }) if why.contains("local clock")),
        "{refused:?}"
    );
    assert_eq!(store.events("r1").expect("events").len(), 2);
    // Each refusal counted, for lifeboat_ha_fenced_writes_total.
    assert_eq!(etcd.counts().fenced.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_journal_reads_what_is_in_force_in_five_keys_and_pages_past_grpcs_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = EtcdCluster::start(dir.path());
    let etcd = Arc::new(Etcd::connect(&cluster.settings(None, "t")).expect("connect"));
    let journal = Journal::etcd(Store::new(Arc::clone(&etcd)));

    // More decisions than one page of a read holds.
    fastrand::seed(11);
    for i in 0..300 {
        let binding = match fastrand::u8(..3) {
            0 => None,
            1 => Some("a".to_string()),
            _ => Some("b".to_string()),
        };
        journal
            .decide(&Decision {
                seq: 0,
                at: lifeboat::engine::now(),
                binding,
                kind: DecisionKind::ALL[fastrand::usize(..DecisionKind::ALL.len())],
                run: Some(format!("r{i}")),
                who: "test".into(),
                detail: None,
            })
            .expect("decide");
    }
    let all = journal.decisions(None).expect("decisions");
    assert_eq!(all.len(), 300, "every page read");
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "in commit order"
    );
    for b in ["a", "b", "c"] {
        assert_eq!(
            journal.in_force(b).expect("in force"),
            InForce::scan(&all, b),
            "{b}"
        );
    }

    // A journal written before the slots existed: they are built once,
    // from every decision, by the first read that misses them.
    let mut client = etcd.client();
    let force = etcd.key("force/");
    etcd.call(
        async move {
            client
                .delete(force, Some(etcd_client::DeleteOptions::new().with_prefix()))
                .await
        },
        None,
    )
    .await
    .expect("delete the slots");
    assert_eq!(
        journal.in_force("b").expect("built"),
        InForce::scan(&all, "b")
    );
    let mut client = etcd.client();
    let built = etcd.key("force/built");
    let marker = etcd
        .call(async move { client.get(built, None).await }, None)
        .await
        .expect("get");
    assert_eq!(marker.kvs().len(), 1, "the slots are marked built");
    assert_eq!(
        journal.in_force("a").expect("in force"),
        InForce::scan(&all, "a")
    );
    let ack = journal
        .decide(&Decision {
            seq: 0,
            at: lifeboat::engine::now(),
            binding: Some("a".into()),
            kind: DecisionKind::Ack,
            run: None,
            who: "test".into(),
            detail: None,
        })
        .expect("ack");
    assert_eq!(
        journal.in_force("a").expect("in force").ack.map(|d| d.seq),
        Some(ack)
    );

    // Six events of a megabyte each: more than gRPC's 4 MiB in one answer.
    let run = new_run("big", &lifeboat::engine::now());
    journal.create_run(&run).expect("run");
    for i in 0..6 {
        journal
            .record(
                "big",
                &StepEvent {
                    seq: 0,
                    step: format!("s{i}"),
                    phase: Phase::Main,
                    attempt: 1,
                    state: StepState::Succeeded,
                    at: lifeboat::engine::now(),
                    outputs: Some(serde_json::json!({ "blob": "x".repeat(1_000_000) })),
                    message: None,
                },
            )
            .expect("a megabyte event");
    }
    let events = journal.events("big").expect("paged under the limit");
    let steps: Vec<&str> = events.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(steps, ["s0", "s1", "s2", "s3", "s4", "s5"]);

    // What a step took the last time its runbook went through: the newest
    // ended run in etcd (`big` has not ended).
    for (id, hour, took) in [("t1", 0, 4), ("t2", 1, 2)] {
        let at = format!("2026-01-01T0{hour}:00:00Z");
        journal.create_run(&new_run(id, &at)).expect("run");
        for (state, second) in [(StepState::Running, 0), (StepState::Succeeded, took)] {
            let event = StepEvent {
                seq: 0,
                step: "s".into(),
                phase: Phase::Main,
                attempt: 1,
                state,
                at: format!("2026-01-01T0{hour}:00:0{second}Z"),
                outputs: None,
                message: None,
            };
            journal.record(id, &event).expect("event");
        }
        journal
            .set_run_state(id, RunState::Succeeded, Some(&at), None)
            .expect("ended");
    }
    assert_eq!(
        journal.step_times("rb").expect("step times"),
        std::collections::BTreeMap::from([("s".to_string(), Duration::from_secs(2))])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_moves_from_etcd_to_the_s3_archive_and_reads_as_before() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = EtcdCluster::start(dir.path());
    let moto = Moto::start();
    let aws = moto.clients().await;
    aws.s3("us-east-1")
        .create_bucket()
        .bucket("journal-archive")
        .send()
        .await
        .expect("bucket");
    let mut settings = cluster.settings(None, "t");
    settings.archive = Some(lifeboat::config::ArchiveSettings {
        bucket: "journal-archive".into(),
        prefix: "lifeboat/journal/".into(),
        region: "us-east-1".into(),
    });
    let aws_settings = lifeboat::config::AwsSettings {
        profile: None,
        endpoint_url: Some(moto.endpoint()),
        pacing: lifeboat::config::Pacing::Off,
    };
    let etcd = Arc::new(Etcd::connect(&settings).expect("connect"));
    let archive = lifeboat::archive::S3Archive::open(
        settings.archive.as_ref().expect("archive"),
        &aws_settings,
        lifeboat::aws::Credentials::Emulator,
    )
    .expect("archive");
    let store = Store::new(Arc::clone(&etcd)).with_archive(Arc::new(archive));
    let journal = Journal::etcd(store.clone());

    // Three runs: two ended long ago, one still running.
    let long_ago = "2026-01-02T00:00:00Z";
    for id in ["old-1", "old-2", "live"] {
        let started = Decision {
            seq: 0,
            at: long_ago.into(),
            binding: Some("app".into()),
            kind: DecisionKind::Started,
            run: Some(id.into()),
            who: "test".into(),
            detail: None,
        };
        let mark = lifeboat::journal::Mark {
            kind: lifeboat::journal::MarkKind::IncidentStart,
            at: long_ago.into(),
            detail: None,
        };
        journal
            .start_run(
                &new_run(id, "2026-01-01T00:00:00Z"),
                &[mark],
                Some(&started),
            )
            .expect("run");
        for state in [StepState::Running, StepState::Succeeded] {
            journal
                .record(
                    id,
                    &StepEvent {
                        seq: 0,
                        step: "promote".into(),
                        phase: Phase::Main,
                        attempt: 1,
                        state,
                        at: long_ago.into(),
                        outputs: None,
                        message: None,
                    },
                )
                .expect("event");
        }
        journal
            .record_calls(
                id,
                &lifeboat::journal::StepCalls {
                    step: "promote".into(),
                    phase: Phase::Main,
                    attempt: 1,
                    calls: BTreeMap::from([("RDS.PromoteReadReplica".to_string(), 1)]),
                },
            )
            .expect("calls");
        journal
            .request(
                id,
                Some("promote"),
                lifeboat::journal::RequestKind::Approve,
                "op",
                long_ago,
            )
            .expect("request");
        if id != "live" {
            journal
                .set_run_state(id, RunState::Succeeded, Some(long_ago), None)
                .expect("ended");
        }
    }
    journal
        .record_verification("nightly", long_ago, true, &serde_json::json!({ "ok": 1 }))
        .expect("verification");
    let ack = Decision {
        seq: 0,
        at: lifeboat::engine::now(),
        binding: Some("app".into()),
        kind: DecisionKind::Ack,
        run: Some("old-2".into()),
        who: "test".into(),
        detail: None,
    };
    journal.decide(&ack).expect("recent ack");

    let read = |j: &Journal| {
        let runs: Vec<(String, String)> = j
            .runs()
            .expect("runs")
            .into_iter()
            .map(|r| (r.run.id, r.state.to_string()))
            .collect();
        let per_run: Vec<String> = ["old-1", "old-2", "live"]
            .iter()
            .map(|id| {
                format!(
                    "{:?} {:?} {:?} {:?} {}",
                    j.events(id).expect("events"),
                    j.marks(id).expect("marks"),
                    j.calls(id).expect("calls"),
                    store.stamped_events(id).expect("stamped").len(),
                    j.run(id).expect("run").run.runbook_text,
                )
            })
            .collect();
        (
            runs,
            per_run,
            j.decisions(None).expect("decisions"),
            j.all_requests().expect("requests"),
            j.verifications("nightly").expect("verifications"),
            j.in_force("app").expect("in force"),
        )
    };
    let before = read(&journal);
    let keys = |etcd: &Arc<Etcd>| {
        let etcd = Arc::clone(etcd);
        let prefix = etcd.key("");
        move || {
            let mut client = etcd.client();
            let prefix = prefix.clone();
            etcd.block(async move {
                client
                    .get(
                        prefix,
                        Some(
                            etcd_client::GetOptions::new()
                                .with_prefix()
                                .with_keys_only(),
                        ),
                    )
                    .await
            })
            .expect("keys")
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect::<Vec<String>>()
        }
    };
    let all_keys = keys(&etcd);
    let count_before = all_keys().len();

    let cutoff: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().expect("cutoff");
    let moved = journal.retire(cutoff).expect("moved");
    assert_eq!(
        (
            moved.runs,
            moved.decisions,
            moved.requests,
            moved.verifications
        ),
        (1, 1, 1, 1),
        "old-1 with its decision and request, and the old result; not the live run, nor old-2, which the ack in force names"
    );
    let left = all_keys();
    assert!(
        !left.iter().any(|k| k.contains("old-1")),
        "nothing of the moved run left in etcd: {left:?}"
    );
    assert!(left.iter().any(|k| k.ends_with("/runs/live")), "{left:?}");
    assert!(left.iter().any(|k| k.ends_with("/runs/old-2")), "{left:?}");
    assert!(left.len() < count_before, "{left:?}");
    // Reads answer as before: etcd's recent part, the archive's past.
    let after = read(&journal);
    assert_eq!(after, before);
    // Another reader (a command) sees the same through the archive.
    let fresh = Journal::etcd(
        lifeboat::archive::store(
            Arc::clone(&etcd),
            &settings,
            &aws_settings,
            lifeboat::aws::Credentials::Emulator,
        )
        .expect("store"),
    );
    assert_eq!(
        fresh.run("old-1").expect("archived run").state,
        RunState::Succeeded
    );
    // The next pass finds nothing more to move.
    assert!(journal.retire(cutoff).expect("again").nothing());
    // Without an archive, nothing leaves etcd.
    let bare = Journal::etcd(Store::new(Arc::clone(&etcd)));
    assert!(bare.retire(jiff::Timestamp::now()).expect("bare").nothing());
}

/// Three daemons (in us-east-1, us-west-2 and a witness site), each
/// talking to its own etcd member and through its own proxy to the
/// emulator, the pilot-light runbook bound to us-east-1.
struct Scene {
    dir: tempfile::TempDir,
    cluster: EtcdCluster,
    moto: Moto,
    proxies: Vec<Proxy>,
    primary_up: Arc<AtomicBool>,
    daemons: Vec<Option<KillOnDrop>>,
    journal: Journal,
}

const PLACES: [&str; 3] = ["us-east-1", "us-west-2", "witness"];

impl Scene {
    async fn start() -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        let cluster = EtcdCluster::start(dir.path());
        let moto = Moto::start();
        let aws = moto.clients().await;
        lifeboat::demo::seed(&aws).await.expect("seed");
        moto.start_recording();
        let mut proxies = Vec::new();
        for i in 0..3 {
            // The promotion stays in progress for a while, so the run is
            // caught in the middle.
            let rules = Rules {
                transitions: BTreeMap::from([(
                    "PromoteReadReplica".to_string(),
                    ("modifying".to_string(), Duration::from_secs(10)),
                )]),
                log: Some(dir.path().join(format!("aws-{i}.jsonl"))),
                ..Rules::default()
            };
            proxies.push(Proxy::start(&moto.endpoint(), rules).await);
        }
        let primary_up = Arc::new(AtomicBool::new(true));
        let primary = endpoints(Arc::clone(&primary_up)).await;
        let dr = endpoints(Arc::new(AtomicBool::new(true))).await;
        let runbook = std::env::current_dir()
            .expect("cwd")
            .join("runbooks/pilot-light.yaml");
        let probes: String = ["web-a", "web-b", "web-c"]
            .iter()
            .map(|name| {
                format!(
                    "      - {{ name: {name}, http: {{ url: \"{primary}/{name}\" }}, interval: 2s, timeout: 1s, failure_threshold: 3, recovery_threshold: 2 }}\n"
                )
            })
            .collect();
        for (i, place) in PLACES.iter().enumerate() {
            std::fs::write(
                dir.path().join(format!("d{i}.yaml")),
                format!(
                    "state_dir: {state}
listen: {{ metrics: \"127.0.0.1:0\", control: {socket} }}
cooldown: 0s
storage:
  backend: etcd
  etcd:
    endpoints: [\"{endpoint}\"]
    prefix: /lifeboat-test
    lease_ttl: {ttl}s
    request_timeout: 1s
    name: d{i}
    place: {place}
    quorum_places: 2
regions:
  us-east-1:
    probes:
{probes}bindings:
  app:
    region: us-east-1
    runbook: {runbook}
    params: {{ health_url: \"{dr}/healthz\" }}
    policy: auto
",
                    state = dir.path().join(format!("state-{i}")).display(),
                    socket = dir.path().join(format!("d{i}.sock")).display(),
                    endpoint = cluster.clients[i],
                    ttl = TTL.as_secs(),
                    runbook = runbook.display(),
                ),
            )
            .expect("write config");
        }
        let etcd = Etcd::connect(&cluster.settings(None, "test")).expect("connect");
        let journal = Journal::etcd(Store::new(Arc::new(etcd)));
        let mut scene = Scene {
            dir,
            cluster,
            moto,
            proxies,
            primary_up,
            daemons: Vec::new(),
            journal,
        };
        for i in 0..3 {
            let daemon = scene.daemon(i);
            scene.daemons.push(Some(daemon));
        }
        scene
    }

    /// The scene, its primary down, the failover started by the leader and
    /// caught waiting for the promotion to finish (sent): the scene, the
    /// leader, the run.
    async fn mid_failover() -> (Scene, usize, String) {
        let scene = Scene::start().await;
        let leader = scene.leader(&[0, 1, 2]).await;
        scene.primary_up.store(false, Ordering::SeqCst);
        let run = scene.the_run().await;
        scene.wait_change(leader, "PromoteReadReplica").await;
        (scene, leader, run)
    }

    fn socket(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("d{i}.sock"))
    }

    fn daemon(&self, i: usize) -> KillOnDrop {
        let log = std::fs::File::create(self.dir.path().join(format!("d{i}.log"))).expect("log");
        let config = self.dir.path().join(format!("d{i}.yaml"));
        let daemon = self
            .moto
            .lifeboat(&self.dir.path().join(format!("state-{i}")))
            .env("AWS_ENDPOINT_URL", &self.proxies[i].endpoint)
            .args(["daemon", "--config", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(KillOnDrop)
            .expect("start a daemon");
        eventually(
            Duration::from_secs(60),
            || format!("no control socket:\n{}", self.log(i)),
            || self.socket(i).exists().then_some(()),
        );
        daemon
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("d{i}.log"))).unwrap_or_default()
    }

    /// Daemon `i`'s `/metrics`, from the address its log says it serves on.
    fn metrics(&self, i: usize) -> String {
        let log = self.log(i);
        let port: u16 = log
            .lines()
            .find(|l| l.contains("serving the status page"))
            .and_then(|l| l.split("address=").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no listener address in the log:\n{log}"));
        support::get(port, "/metrics").expect("a scrape")
    }

    fn logs(&self) -> String {
        (0..3)
            .map(|i| format!("--- d{i} ---\n{}", self.log(i)))
            .collect()
    }

    fn pid(&self, i: usize) -> u32 {
        self.daemons[i].as_ref().expect("running").0.id()
    }

    /// `lifeboat ARGS` next to daemon `i`, as an operator runs it.
    fn ctl(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("LIFEBOAT_SOCKET", self.socket(i))
            .env(
                "LIFEBOAT_STATE_DIR",
                self.dir.path().join(format!("state-{i}")),
            )
            .stdin(Stdio::null())
            .output()
            .expect("run lifeboat")
    }

    /// `lifeboat status` of daemon `i`, if it answers.
    fn status(&self, i: usize) -> Option<serde_json::Value> {
        let out = self.ctl(i, &["status", "--output", "json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Wait until one of `among` says it leads; which.
    async fn leader(&self, among: &[usize]) -> usize {
        eventually_async(
            Duration::from_secs(60),
            || format!("no leader:\n{}", self.logs()),
            || async {
                among.iter().copied().find(|&i| {
                    self.status(i)
                        .is_some_and(|s| s["cluster"]["role"] == "leader")
                })
            },
        )
        .await
    }

    /// Wait until `done` holds of the shared journal.
    async fn wait(&self, what: &str, done: impl Fn(&Journal) -> bool) {
        eventually_async(
            Duration::from_secs(120),
            || format!("never {what}:\n{}", self.logs()),
            || async { done(&self.journal).then_some(()) },
        )
        .await;
    }

    /// The one run, once started.
    async fn the_run(&self) -> String {
        self.wait("started a run", |j| j.runs().is_ok_and(|r| !r.is_empty()))
            .await;
        let runs = self.journal.runs().expect("runs");
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0].run.id.clone()
    }

    async fn wait_state(&self, run: &str, state: &str) {
        self.wait(&format!("run {state}"), |j| {
            j.run(run).is_ok_and(|r| r.state == state)
        })
        .await;
    }

    /// Wait until daemon `i`'s `operation` was answered.
    async fn wait_change(&self, i: usize, operation: &str) {
        eventually_async(
            Duration::from_secs(120),
            || format!("never {operation}:\n{}", self.logs()),
            || async {
                self.changes_by(i)
                    .iter()
                    .any(|(_, op)| op == operation)
                    .then_some(())
            },
        )
        .await;
    }

    /// The changes that reached the emulator through daemon `i`'s proxy,
    /// with when they were answered (Unix seconds).
    fn changes_by(&self, i: usize) -> Vec<(f64, String)> {
        let text = std::fs::read_to_string(self.dir.path().join(format!("aws-{i}.jsonl")))
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| {
                let op = r["op"].as_str().unwrap_or("");
                let read = ["Describe", "Get", "List"]
                    .iter()
                    .any(|p| op.starts_with(p));
                r["forwarded"] == true
                    && !read
                    && r["status"]
                        .as_u64()
                        .is_some_and(|s| (200..300).contains(&s))
            })
            .map(|r| {
                (
                    r["unix"].as_f64().unwrap_or(0.0),
                    r["op"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// After the run: one run, one `started`, each change once (at the
    /// emulator), each resource changed once (across the proxies).
    fn assert_once(&self) {
        let runs = self.journal.runs().expect("runs");
        assert_eq!(runs.len(), 1, "exactly one run: {runs:?}");
        let decisions = self.journal.decisions(Some("app")).expect("decisions");
        let started = decisions.iter().filter(|d| d.kind == "started").count();
        assert_eq!(started, 1, "{decisions:?}");
        assert_eq!(
            self.moto.changes(),
            BTreeMap::from([
                ("ChangeResourceRecordSets".to_string(), 1),
                ("PromoteReadReplica".to_string(), 1),
                ("StartInstances".to_string(), 1),
            ]),
            "{:?}\n{}",
            self.moto.changes_in_order(),
            self.logs()
        );
        let mut per_resource: BTreeMap<(String, String), u64> = BTreeMap::new();
        for p in &self.proxies {
            for (k, n) in p.changes() {
                *per_resource.entry(k).or_default() += n;
            }
        }
        for (k, n) in &per_resource {
            assert_eq!(*n, 1, "{k:?} changed {n} times: {per_resource:?}");
        }
    }

    /// The epochs that wrote the run's step events, in order, deduplicated.
    fn epochs(&self, run: &str) -> Vec<(i64, String)> {
        let store = self.journal.store().expect("shared");
        let mut epochs: Vec<(i64, String)> = Vec::new();
        for s in store.stamped_events(run).expect("events") {
            let e = (s.epoch.expect("stamped"), s.leader.expect("stamped"));
            if epochs.last() != Some(&e) {
                epochs.push(e);
            }
        }
        epochs
    }

    /// When daemon `i` logged `needle` first (Unix seconds).
    fn logged_at(&self, i: usize, needle: &str) -> Option<f64> {
        self.log(i)
            .lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond() as f64 / 1000.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_killed_mid_failover_another_daemon_finishes_it_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut scene, leader, run) = Scene::mid_failover().await;
    signal(scene.pid(leader), "KILL");
    scene.daemons[leader] = None;
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let next = scene.leader(&others).await;
    scene.wait_state(&run, "succeeded").await;

    scene.assert_once();
    let epochs = scene.epochs(&run);
    assert_eq!(epochs.len(), 2, "two leaders wrote the run: {epochs:?}");
    assert_eq!(epochs[0].1, format!("d{leader}"));
    assert_eq!(epochs[1].1, format!("d{next}"));
    assert!(epochs[1].0 > epochs[0].0);
    assert!(
        scene.log(next).contains("resuming an interrupted run"),
        "{}",
        scene.log(next)
    );
    // The promotion was observed done, not sent again.
    assert_eq!(
        scene
            .changes_by(next)
            .iter()
            .filter(|(_, op)| op == "PromoteReadReplica")
            .count(),
        0
    );
    // The region was declared by daemons in more than one place.
    let started = scene
        .journal
        .decisions(Some("app"))
        .expect("decisions")
        .into_iter()
        .find(|d| d.kind == "started")
        .expect("started");
    let places = &started.detail.as_ref().expect("detail")["evidence"]["places"];
    assert!(places.as_array().is_some_and(|p| p.len() >= 2), "{places}");

    // As an operator sees it: the follower names the leader and refuses to
    // start runs; the shared journal reads from any daemon's config; only
    // the elected daemon executes.
    let follower = others.into_iter().find(|&i| i != next).expect("a follower");
    // (Followers read the leader's name every tick.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = scene.status(follower).expect("status");
        if status["cluster"]["leader"] == format!("d{next}") || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["cluster"]["role"], "follower", "{status}");
    assert_eq!(status["cluster"]["leader"], format!("d{next}"), "{status}");
    let refused = scene.ctl(follower, &["trigger", "app"]);
    assert_ne!(refused.status.code(), Some(0), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("the leader (d{next})")),
        "{refused:?}"
    );
    let config = scene.dir.path().join(format!("d{follower}.yaml"));
    let config = config.to_str().expect("utf-8");
    let runs = scene.ctl(
        follower,
        &["runs", "--journal-config", config, "--output", "json"],
    );
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(runs[0]["id"], run.as_str(), "{runs}");
    let show = scene.ctl(follower, &["show", &run, "--journal-config", config]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("succeeded"));
    let by_hand = scene.ctl(
        follower,
        &[
            "run",
            "runbooks/pilot-light.yaml",
            "--yes",
            "--journal-config",
            config,
        ],
    );
    assert_eq!(by_hand.status.code(), Some(2), "{by_hand:?}");
    assert!(String::from_utf8_lossy(&by_hand.stderr).contains("only the elected daemon executes"));
    assert_eq!(scene.journal.runs().expect("runs").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leaders_etcd_member_stopped_it_steps_down_within_its_lease() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (scene, leader, run) = Scene::mid_failover().await;

    let member = scene.cluster.members[leader].id();
    let stopped_at = unix_now();
    signal(member, "STOP");
    // The journal is read through the other members meanwhile.
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let next = scene.leader(&others).await;
    scene.wait_state(&run, "succeeded").await;
    // It stops when its lease is lost, or earlier when its run can no
    // longer read or write the journal.
    let down = ["lease lost", "run stopped", "stepping down"]
        .iter()
        .filter_map(|n| scene.logged_at(leader, n))
        .reduce(f64::min)
        .unwrap_or_else(|| panic!("the old leader never stepped down:\n{}", scene.log(leader)));
    // Its lease was last renewed before the member stopped: it gave up
    // within the TTL of that (with one renewal period of slack).
    assert!(
        down - stopped_at <= (TTL + TTL / 3).as_secs_f64() + 0.5,
        "stepped down {:.2} s after its etcd member stopped at {stopped_at} (TTL {TTL:?}):\n{}",
        down - stopped_at,
        scene.log(leader)
    );
    // No AWS change by the old leader after it stepped down, and the new
    // leader was elected only after.
    let late: Vec<(f64, String)> = scene
        .changes_by(leader)
        .into_iter()
        .filter(|(t, _)| *t > down)
        .collect();
    assert!(late.is_empty(), "changes after stepping down: {late:?}");
    let elected = scene
        .journal
        .decisions(None)
        .expect("decisions")
        .into_iter()
        .filter(|d| d.kind == "elected" && d.who == format!("d{next}"))
        .map(|d| seconds(&d.at))
        .next_back()
        .expect("the new leader's election");
    assert!(
        elected > down,
        "elected at {elected}, old leader down at {down}:\n{}",
        scene.logs()
    );
    signal(member, "CONT");
    scene.assert_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_old_leader_resumed_after_a_takeover_changes_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (scene, leader, run) = Scene::mid_failover().await;

    // Split brain attempt: the leader freezes with steps in flight.
    signal(scene.pid(leader), "STOP");
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let next = scene.leader(&others).await;
    scene.wait_state(&run, "succeeded").await;
    let events_before = scene.journal.events(&run).expect("events").len();
    let resumed_at = unix_now();
    signal(scene.pid(leader), "CONT");
    // It finds its lease gone and steps down; give it time to try.
    eventually_async(
        Duration::from_secs(30),
        || format!("the old leader never stepped down:\n{}", scene.log(leader)),
        || async { scene.logged_at(leader, "stepping down") },
    )
    .await;
    tokio::time::sleep(TTL).await;

    let late: Vec<(f64, String)> = scene
        .changes_by(leader)
        .into_iter()
        .filter(|(t, _)| *t >= resumed_at)
        .collect();
    assert!(
        late.is_empty(),
        "changes by the resumed old leader: {late:?}"
    );
    assert_eq!(
        scene.journal.events(&run).expect("events").len(),
        events_before,
        "the old leader's late writes landed"
    );
    assert_eq!(scene.journal.run(&run).expect("run").state, "succeeded");
    let epochs = scene.epochs(&run);
    assert_eq!(
        epochs.last().map(|e| e.1.clone()),
        Some(format!("d{next}")),
        "{epochs:?}"
    );
    assert_eq!(
        scene.status(leader).expect("status")["cluster"]["role"],
        "follower"
    );
    // Its metrics tell the story: elected once, lost it once, and renewed
    // its lease before (refused writes are counted in the test above).
    let metrics = scene.metrics(leader);
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{line}`:\n{metrics}"))
    };
    assert_eq!(
        value(r#"lifeboat_ha_leadership_changes_total{change="elected"}"#),
        1.0
    );
    assert_eq!(
        value(r#"lifeboat_ha_leadership_changes_total{change="lost"}"#),
        1.0
    );
    assert!(value(r#"lifeboat_ha_lease_renewals_total{outcome="ok"}"#) >= 1.0);
    scene.assert_once();
}

/// Run `openssl ARGS` in `dir`, failing the test if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_journal_reaches_etcd_over_tls_checked_against_a_private_ca() {
    let _one = ONE_AT_A_TIME.lock().await;
    for (command, package) in [("etcd", "etcd-server"), ("openssl", "openssl")] {
        let setup = Command::new(".ci/setup-apt")
            .args([command, package])
            .status()
            .expect("run .ci/setup-apt");
        assert!(setup.success(), "{package} could not be installed");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=lifeboat test CA",
        ],
    );
    openssl(
        d,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "etcd.key", "-out", "etcd.csr",
            "-subj", "/CN=etcd",
        ],
    );
    std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "etcd.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "etcd.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    let (client, peer) = (free_port(), free_port());
    let url = format!("https://127.0.0.1:{client}");
    let log = std::fs::File::create(d.join("etcd.log")).expect("log");
    let mut etcd = KillOnDrop(
        Command::new("etcd")
            .args([
                "--name",
                "tls",
                "--data-dir",
                &d.join("data").display().to_string(),
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("tls=http://127.0.0.1:{peer}"),
                "--cert-file",
                &d.join("etcd.pem").display().to_string(),
                "--key-file",
                &d.join("etcd.key").display().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd"),
    );
    let settings = |ca: Option<PathBuf>| EtcdSettings {
        endpoints: vec![url.clone()],
        prefix: "/lifeboat-tls".into(),
        tls: Some(lifeboat::config::EtcdTls {
            ca_file: ca,
            ..Default::default()
        }),
        lease_ttl: TTL,
        request_timeout: Duration::from_secs(2),
        name: "tls".into(),
        place: "test".into(),
        quorum_places: 1,
        history: lifeboat::config::DEFAULT_ETCD_HISTORY,
        archive: None,
    };
    let trusted = Journal::etcd(Store::new(Arc::new(
        Etcd::connect(&settings(Some(d.join("ca.pem")))).expect("connect"),
    )));
    let runs = eventually(
        Duration::from_secs(60),
        || {
            format!(
                "never reached etcd over TLS: {:?}\n{}",
                trusted.runs().err(),
                std::fs::read_to_string(d.join("etcd.log")).unwrap_or_default()
            )
        },
        || trusted.runs().ok(),
    );
    assert!(runs.is_empty());
    let decision = lifeboat::trigger::decision(None, DecisionKind::Pause, None, "test", None);
    trusted.decide(&decision).expect("write over TLS");
    assert_eq!(trusted.decisions(None).expect("read").len(), 1);

    // Without `ca_file` the system's roots apply, which do not know the
    // private CA: refused.
    let untrusted = Journal::etcd(Store::new(Arc::new(
        Etcd::connect(&settings(None)).expect("connect"),
    )));
    let refused = untrusted.decisions(None);
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("UnknownIssuer")),
        "{refused:?}"
    );
    let _ = etcd.0.kill();
}
