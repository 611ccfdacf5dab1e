//! A mass failover against AWS's rate limits: the simulation proxy keeps
//! EC2's, RDS's and Route 53's documented token buckets and refuses what
//! finds its bucket short, as AWS does. Three zones' records move at once
//! (Route 53 admits five requests a second per account), with a fleet of
//! instances started and replicas promoted beside them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::moto::Moto;
use crate::support::proxy::{Injection, Proxy, Request, Rules};
use crate::support::text;

const ZONES: [&str; 3] = ["a.example.com", "b.example.com", "c.example.com"];
const RECORDS: usize = 700;

/// What a mass failover did through the throttling proxy.
struct Outcome {
    status: Option<i32>,
    stderr: String,
    requests: Vec<Request>,
    injections: Vec<Injection>,
    moved: usize,
}

impl Outcome {
    fn throttled(&self) -> usize {
        self.injections
            .iter()
            .filter(|i| lifeboat::pacing::is_throttle(&i.what))
            .count()
    }

    /// How many times each record, instance and replica was changed.
    fn changes(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for r in self.requests.iter().filter(|r| r.changed()) {
            if ![
                "ChangeResourceRecordSets",
                "StartInstances",
                "PromoteReadReplica",
            ]
            .contains(&r.operation.as_str())
            {
                continue;
            }
            // A change batch names its records (and its change id, which
            // moto repeats from batch to batch).
            for res in r
                .resources
                .iter()
                .filter(|res| r.operation != "ChangeResourceRecordSets" || res.contains('.'))
            {
                *out.entry((r.operation.clone(), res.clone())).or_default() += 1;
            }
        }
        out
    }
}

async fn mass_failover(pacing: &str) -> Outcome {
    let moto = Moto::start();
    let aws = moto.clients().await;
    for (z, zone) in ZONES.iter().enumerate() {
        let records: Vec<(String, String)> = (0..RECORDS)
            .map(|i| {
                (
                    format!("svc-{i}.{zone}"),
                    format!("192.0.2.{}", (i + z) % 250 + 1),
                )
            })
            .collect();
        crate::support::seed::zone(&aws, zone, &records).await;
    }
    crate::support::seed::stopped_instances(&aws, "us-west-2", 60, &[("Role", "app")]).await;
    for i in 0..4 {
        crate::support::seed::primary_and_replica(
            &aws,
            &format!("db-{i}"),
            &format!("db-{i}-replica"),
        )
        .await;
    }
    let proxy = Proxy::start(
        &moto.endpoint(),
        Rules {
            aws_throttling: true,
            // Each change PENDING a while, so that the three waits poll
            // Route 53 together.
            transitions: BTreeMap::from([(
                "ChangeResourceRecordSets".to_string(),
                ("PENDING".to_string(), Duration::from_secs(2)),
            )]),
            ..Rules::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("mass.yaml");
    let mut steps = String::new();
    for (z, zone) in ZONES.iter().enumerate() {
        steps.push_str(&format!(
            "  - id: dns-{z}
    action: route53.upsert_records
    with:
      zone: {zone}
      rewrite: {{ name_pattern: \"svc-*.{zone}\", type: A, replace: \"192.0.2.\", with: \"198.51.100.\" }}
    timeout: 5m
"
        ));
    }
    std::fs::write(
        &runbook,
        format!(
            "name: mass
strategy: pilot-light
regions: {{ from: us-east-1, to: us-west-2 }}
steps:
  - id: promote
    action: rds.promote_read_replica
    with: {{ tags: {{ dr-role: replica }} }}
    timeout: 5m
  - id: start
    action: ec2.start_instances
    with: {{ tags: {{ Role: app }} }}
    timeout: 5m
{steps}"
        ),
    )
    .expect("runbook");
    let out = moto
        .lifeboat(&dir.path().join("state"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("LIFEBOAT_AWS_PACING", pacing)
        .args(["run"])
        .arg(&runbook)
        .arg("--yes")
        .output()
        .expect("run lifeboat");
    let mut moved = 0;
    for zone in ZONES {
        let r53 = aws.route53();
        let zones = r53
            .list_hosted_zones_by_name()
            .dns_name(zone)
            .send()
            .await
            .expect("zones");
        let id = zones.hosted_zones()[0].id().to_string();
        let mut sets = Vec::new();
        let mut request = r53.list_resource_record_sets().hosted_zone_id(&id);
        loop {
            let page = request.clone().send().await.expect("records");
            sets.extend(page.resource_record_sets().iter().cloned());
            if !page.is_truncated() {
                break;
            }
            request = request
                .set_start_record_name(page.next_record_name().map(str::to_string))
                .set_start_record_type(page.next_record_type().cloned());
        }
        moved += sets
            .iter()
            .filter(|s| {
                s.name().starts_with("svc-")
                    && s.resource_records()
                        .iter()
                        .all(|r| r.value().starts_with("198.51.100."))
            })
            .count();
    }
    Outcome {
        status: out.status.code(),
        stderr: text(&out.stderr),
        requests: proxy.requests(),
        injections: proxy.injections(),
        moved,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_failover_under_aws_s_rate_limits_completes_with_each_change_once() {
    let paced = mass_failover("documented").await;
    assert_eq!(paced.status, Some(0), "{}", paced.stderr);
    assert_eq!(paced.moved, ZONES.len() * RECORDS, "{}", paced.stderr);
    let changes = paced.changes();
    assert_eq!(
        changes.len(),
        ZONES.len() * RECORDS + 60 + 4,
        "every record, instance and replica changed"
    );
    let twice: Vec<_> = changes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "changed more than once: {twice:?}");
    // Paced along the same buckets, the run sent no faster than AWS
    // refills them; the proxy refused (next to) nothing.
    let throttled = paced.throttled();
    assert!(
        throttled <= 1,
        "{throttled} requests throttled:\n{}",
        paced.stderr
    );
    assert!(
        paced.stderr.contains("held back to AWS's request rates"),
        "{}",
        paced.stderr
    );

    // The same failover unpaced: AWS refuses a share of it (what the
    // pacing saved), and still nothing is changed twice.
    let unpaced = mass_failover("off").await;
    assert!(
        unpaced.throttled() > throttled + 3,
        "unpaced: {} throttled\n{}",
        unpaced.throttled(),
        unpaced.stderr
    );
    let twice: Vec<_> = unpaced
        .changes()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "changed more than once: {twice:?}");
}
