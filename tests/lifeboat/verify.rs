//! Backup verification on the emulator, through `lifeboat verify` as a
//! user runs it, and on a schedule in the daemon: fresh, stale, unencrypted
//! and uncopied snapshots; a deep restore that runs its check and deletes
//! its scratch instance; each posture check passing and failing.

use std::process::Output;
use std::time::Duration;

use lifeboat::aws::AwsClients;

use crate::support::moto::Moto;
use crate::support::text;

struct Env {
    moto: Moto,
    aws: AwsClients,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        let moto = Moto::start();
        let aws = moto.clients().await;
        Env {
            moto,
            aws,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn config(&self, jobs: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("lifeboat.yaml");
        std::fs::write(
            &path,
            format!(
                "state_dir: {}\nlisten: {{ metrics: \"127.0.0.1:0\", control: {} }}\nverify:\n{jobs}",
                self.dir.path().join("state").display(),
                self.dir.path().join("control.sock").display()
            ),
        )
        .expect("write config");
        path
    }

    /// `lifeboat verify --job JOB --output json`: exit code and results.
    fn verify(&self, config: &std::path::Path, job: &str) -> (Option<i32>, serde_json::Value) {
        let out: Output = self
            .moto
            .lifeboat(&self.dir.path().join("state"))
            .args(["verify", "--config", config.to_str().expect("utf-8")])
            .args(["--job", job, "--output", "json"])
            .output()
            .expect("run lifeboat verify");
        let results = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
        (out.status.code(), results)
    }
}

/// The check named `name` of the first job's results.
fn check<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results[0]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no `{name}` check in {results}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_fresh_encrypted_copied_and_restorable_or_the_job_says_why() {
    let env = Env::new().await;
    crate::support::seed::primary_and_replica(&env.aws, "app-db", "app-db-replica").await;
    crate::support::seed::snapshot_copied_to_dr(&env.aws, "app-db").await;
    crate::support::seed::db_subnet_group(&env.aws, "us-west-2", "app-db-subnets").await;
    env.aws
        .rds("us-east-1")
        .create_db_instance()
        .db_instance_identifier("orders-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .backup_retention_period(7)
        .multi_az(true)
        .storage_encrypted(true)
        .send()
        .await
        .expect("create orders-db");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let config = env.config(
        "  - name: fresh
    posture: false
    resources: [ { kind: rds, db_instance: app-db, region: us-east-1, dr_region: us-west-2, rpo_target: 1h } ]
  - name: stale
    posture: false
    resources: [ { kind: rds, db_instance: app-db, region: us-east-1, rpo_target: 1s } ]
  - name: encryption
    posture: false
    resources: [ { kind: rds, db_instance: app-db, region: us-east-1, rpo_target: 1h, encrypted: true } ]
  - name: uncopied
    posture: false
    resources: [ { kind: rds, db_instance: orders-db, region: us-east-1, dr_region: us-west-2, rpo_target: 1h } ]
  - name: deep
    posture: false
    resources:
      - kind: rds
        db_instance: app-db
        region: us-east-1
        dr_region: us-west-2
        rpo_target: 1h
        deep: { subnet_group: app-db-subnets, check: [sh, -c, 'test -n \"$LIFEBOAT_VERIFY_ENDPOINT\" && test \"$LIFEBOAT_VERIFY_INSTANCE\" != \"\"'] }
  - name: posture-good
    resources: [ { kind: rds, db_instance: orders-db, region: us-east-1, rpo_target: 1h } ]
  - name: posture-bad
    resources: [ { kind: rds, db_instance: app-db, region: us-east-1, rpo_target: 1h } ]
",
    );

    let (code, r) = env.verify(&config, "fresh");
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(check(&r, "newest snapshot fresh")["ok"], true, "{r}");
    assert_eq!(check(&r, "copy in the DR region fresh")["ok"], true, "{r}");

    let (code, r) = env.verify(&config, "stale");
    assert_eq!(code, Some(1), "{r}");
    let stale = check(&r, "newest snapshot fresh");
    assert_eq!(stale["ok"], false);
    assert!(
        stale["detail"]
            .as_str()
            .is_some_and(|d| d.contains("older than the 1.0 s target")),
        "{stale}"
    );

    let (code, r) = env.verify(&config, "encryption");
    assert_eq!(code, Some(1), "{r}");
    assert!(
        check(&r, "encrypted")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("is not encrypted")),
        "{r}"
    );

    let (code, r) = env.verify(&config, "uncopied");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(
        check(&r, "copy in the DR region fresh")["detail"],
        "no snapshot of orders-db in us-west-2"
    );

    let (code, r) = env.verify(&config, "deep");
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(check(&r, "restores")["ok"], true, "{r}");
    assert_eq!(check(&r, "restored data checks out")["ok"], true, "{r}");
    assert_eq!(check(&r, "scratch instance deleted")["ok"], true, "{r}");
    assert!(
        r[0]["restores"][0][1].as_f64().is_some_and(|s| s > 0.0),
        "restore duration: {r}"
    );
    let left = env
        .aws
        .rds("us-west-2")
        .describe_db_instances()
        .send()
        .await
        .expect("describe");
    assert!(
        !left.db_instances().iter().any(|d| d
            .db_instance_identifier()
            .is_some_and(|i| i.starts_with("lifeboat-verify-"))),
        "the scratch instance is gone"
    );

    let (code, r) = env.verify(&config, "posture-good");
    assert_eq!(code, Some(0), "{r}");
    for name in ["multi-az", "automated backups", "encrypted at rest"] {
        assert_eq!(check(&r, name)["ok"], true, "{name}: {r}");
    }
    let (code, r) = env.verify(&config, "posture-bad");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(check(&r, "multi-az")["ok"], false, "{r}");
    assert_eq!(check(&r, "encrypted at rest")["ok"], false, "{r}");
    assert_eq!(
        check(&r, "automated backups")["ok"],
        true,
        "retention 1 day: {r}"
    );

    // Each run is journaled.
    let journal = lifeboat::journal::Journal::open(
        &env.dir.path().join("state"),
        lifeboat::journal::Access::Client,
    )
    .expect("journal");
    assert_eq!(journal.verifications("stale").expect("results").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_buckets_pass_or_fail_each_posture_check() {
    use aws_sdk_s3::types::*;
    let env = Env::new().await;
    // Object lock is the good bucket's protection: the emulator's answer
    // to GetBucketVersioning does not parse in the SDK (README, emulator gaps).
    env.aws
        .s3("us-west-2")
        .create_bucket()
        .bucket("backups-good")
        .object_lock_enabled_for_bucket(true)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .expect("create a bucket with object lock");
    env.aws
        .s3("us-west-2")
        .put_object()
        .bucket("backups-good")
        .key("db/dump.sql")
        .body(b"rows".to_vec().into())
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("put");
    crate::support::seed::bucket(&env.aws, "backups-bad", &[("db/dump.sql", "rows")]).await;
    crate::support::seed::bucket(&env.aws, "primary-data", &[]).await;
    let s3 = env.aws.s3("us-west-2");
    s3.put_bucket_encryption()
        .bucket("backups-good")
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .build()
                                .expect("sse"),
                        )
                        .build(),
                )
                .build()
                .expect("encryption"),
        )
        .send()
        .await
        .expect("encryption");
    s3.put_bucket_lifecycle_configuration()
        .bucket("backups-good")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("archive")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .transitions(
                            Transition::builder()
                                .days(90)
                                .storage_class(TransitionStorageClass::Glacier)
                                .build(),
                        )
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("lifecycle"),
        )
        .send()
        .await
        .expect("lifecycle");
    for bucket in ["primary-data"] {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    }
    s3.put_bucket_replication()
        .bucket("primary-data")
        .replication_configuration(
            ReplicationConfiguration::builder()
                .role("arn:aws:iam::123456789012:role/replication")
                .rules(
                    ReplicationRule::builder()
                        .id("to-dr")
                        .status(ReplicationRuleStatus::Enabled)
                        .priority(1)
                        .filter(ReplicationRuleFilter::builder().prefix("").build())
                        .delete_marker_replication(
                            DeleteMarkerReplication::builder()
                                .status(DeleteMarkerReplicationStatus::Disabled)
                                .build(),
                        )
                        .destination(
                            Destination::builder()
                                .bucket("arn:aws:s3:::backups-good")
                                .build()
                                .expect("destination"),
                        )
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("replication"),
        )
        .send()
        .await
        .expect("replication");
    let config = env.config(
        "  - name: good
    lifecycle_days: 180
    resources: [ { kind: s3, bucket: backups-good, prefix: db/, region: us-west-2, rpo_target: 1h, source_bucket: primary-data } ]
  - name: bad
    resources: [ { kind: s3, bucket: backups-bad, prefix: db/, region: us-west-2, rpo_target: 1h, source_bucket: backups-bad } ]
",
    );
    let (code, r) = env.verify(&config, "good");
    assert_eq!(code, Some(1), "no TLS-only policy yet: {r}");
    for name in [
        "newest object fresh",
        "checksum",
        "replication configured",
        "encrypted with KMS",
        "archived to Glacier",
        "versioning or object lock",
    ] {
        assert_eq!(check(&r, name)["ok"], true, "{name}: {r}");
    }
    assert_eq!(check(&r, "TLS only")["ok"], false, "{r}");
    s3.put_bucket_policy()
        .bucket("backups-good")
        .policy(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": ["arn:aws:s3:::backups-good", "arn:aws:s3:::backups-good/*"],
                    "Condition": { "Bool": { "aws:SecureTransport": "false" } }
                }]
            })
            .to_string(),
        )
        .send()
        .await
        .expect("policy");
    let (_, r) = env.verify(&config, "good");
    assert_eq!(check(&r, "TLS only")["ok"], true, "{r}");
    // The emulator enforces the policy, and is reached over plain HTTP: the
    // read-back is now refused, as it would be for any client without TLS.
    assert!(
        check(&r, "checksum")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("403")),
        "{r}"
    );
    let (code, r) = env.verify(&config, "bad");
    assert_eq!(code, Some(1), "{r}");
    for name in [
        "replication configured",
        "encrypted with KMS",
        "TLS only",
        "archived to Glacier",
        "versioning or object lock",
    ] {
        assert_eq!(check(&r, name)["ok"], false, "{name}: {r}");
    }
    assert_eq!(check(&r, "checksum")["ok"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_fires_in_the_daemon() {
    let env = Env::new().await;
    crate::support::seed::primary_and_replica(&env.aws, "app-db", "app-db-replica").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = env.dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\nlisten: {{ metrics: \"127.0.0.1:{port}\", control: {} }}\nverify:\n  - name: every-2s\n    schedule: \"*/2 * * * * *\"\n    posture: false\n    resources: [ {{ kind: rds, db_instance: app-db, region: us-east-1, rpo_target: 1h }} ]\n",
            env.dir.path().join("state").display(),
            env.dir.path().join("control.sock").display()
        ),
    )
    .expect("write config");
    let _daemon = env.moto.daemon(&env.dir.path().join("state"), &config);
    crate::support::eventually_async(
        Duration::from_secs(60),
        || "the job never ran twice".into(),
        || async {
            let runs = lifeboat::journal::Journal::open(
                &env.dir.path().join("state"),
                lifeboat::journal::Access::Client,
            )
            .ok()
            .and_then(|j| j.verifications("every-2s").ok())
            .map_or(0, |v| v.len());
            (runs >= 2).then_some(())
        },
    )
    .await;
    let metrics = crate::support::get(port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains(r#"lifeboat_verify_last_status{verification="every-2s"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"lifeboat_verify_expected_interval_seconds{verification="every-2s"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("lifeboat_verify_last_success_timestamp_seconds{verification=\"every-2s\"}")
    );
}
