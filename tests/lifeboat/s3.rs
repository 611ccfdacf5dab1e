//! S3 actions on the emulator.

use std::time::Duration;

use lifeboat::actions::{Readiness, Registry};
use lifeboat::catalogue::ActionInput;
use lifeboat::catalogue::s3::{CheckReplication, CopyObjects, NewestObjectAge, VerifyChecksum};
use lifeboat::duration::HumanDuration;
use lifeboat::engine::{Actions, FailureKind, StepContext};

use crate::support::moto::Moto;
use crate::support::seed::{bucket, put_object};
use crate::support::step_context;

const REGION: &str = "us-west-2";

fn ctx() -> StepContext {
    StepContext {
        deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        ..step_context("run-1", "data", REGION)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_what_is_missing_once_and_never_overwrites_unasked() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    bucket(
        &aws,
        "backups",
        &[
            ("db/1.sql", "one"),
            ("db/2.sql", "two"),
            ("db/3 x.sql", "three"),
            ("other/x", "x"),
        ],
    )
    .await;
    bucket(&aws, "backups-dr", &[]).await;
    let registry = Registry::with_aws(aws.clone());
    let copy = |overwrite: bool| {
        ActionInput::S3CopyObjects(CopyObjects {
            source_bucket: "backups".into(),
            dest_bucket: "backups-dr".into(),
            prefix: "db/".into(),
            overwrite,
        })
    };
    assert!(matches!(
        registry.preflight(&ctx(), &copy(false), &[]).await,
        Readiness::Ready(m) if m.contains("3 to copy")
    ));
    let out = registry.run(&ctx(), &copy(false)).await.expect("copy");
    assert_eq!(out["copied"], 3);
    assert_eq!(aws.calls().mutating().get("S3.CopyObject"), Some(&3));

    let before = aws.calls().mutating();
    let again = registry.run(&ctx(), &copy(false)).await.expect("again");
    assert_eq!(again["copied"], 0);
    assert_eq!(
        aws.calls().mutating(),
        before,
        "copied already: no mutating call"
    );

    put_object(&aws, "backups-dr", "db/2.sql", "changed").await;
    let before = aws.calls().mutating();
    let err = registry
        .run(&ctx(), &copy(false))
        .await
        .expect_err("conflict");
    assert_eq!(err.kind, FailureKind::Permanent);
    assert!(
        err.message
            .contains("1 object(s) exist in backups-dr with different content (db/2.sql)"),
        "{err}"
    );
    assert_eq!(aws.calls().mutating(), before, "a conflict copies nothing");
    let out = registry.run(&ctx(), &copy(true)).await.expect("overwrite");
    assert_eq!(out["copied_keys"], serde_json::json!(["db/2.sql"]));

    let err = registry
        .run(
            &ctx(),
            &ActionInput::S3CopyObjects(CopyObjects {
                source_bucket: "ghost".into(),
                dest_bucket: "backups-dr".into(),
                prefix: String::new(),
                overwrite: false,
            }),
        )
        .await
        .expect_err("no bucket");
    assert_eq!(err.message, "no bucket ghost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_are_verified_by_reading_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    bucket(&aws, "backups", &[("db/dump.sql", "hello")]).await;
    let registry = Registry::with_aws(aws.clone());
    let verify = |key: &str, sha256: Option<&str>| {
        ActionInput::S3VerifyChecksum(VerifyChecksum {
            bucket: "backups".into(),
            key: key.into(),
            sha256: sha256.map(str::to_string),
        })
    };
    let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let out = registry
        .run(&ctx(), &verify("db/dump.sql", Some(hello)))
        .await
        .expect("verify");
    assert_eq!(out["sha256"], hello);
    assert_eq!(out["bytes"], 5);
    let stored = registry
        .run(&ctx(), &verify("db/dump.sql", None))
        .await
        .expect("stored checksum");
    assert_eq!(stored["sha256"], hello);

    let wrong = "0".repeat(64);
    let err = registry
        .run(&ctx(), &verify("db/dump.sql", Some(&wrong)))
        .await
        .expect_err("mismatch");
    assert_eq!(
        err.message,
        format!("s3://backups/db/dump.sql read back with SHA-256 {hello}, expected {wrong}")
    );
    let err = registry
        .run(&ctx(), &verify("db/none.sql", None))
        .await
        .expect_err("missing");
    assert_eq!(err.message, "no object s3://backups/db/none.sql");
    assert!(matches!(
        registry
            .preflight(&ctx(), &verify("db/none.sql", None), &[])
            .await,
        Readiness::WouldFail(_)
    ));
    assert!(
        aws.calls()
            .mutating()
            .get("S3.PutObject")
            .is_some_and(|n| *n == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_and_replication_checks_read_and_judge() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    bucket(&aws, "backups", &[("db/1.sql", "one"), ("db/2.sql", "two")]).await;
    let registry = Registry::with_aws(aws.clone());
    let age = |prefix: &str| {
        ActionInput::S3NewestObjectAge(NewestObjectAge {
            bucket: "backups".into(),
            prefix: prefix.into(),
            max_age: HumanDuration::from_secs(3600),
        })
    };
    let out = registry.run(&ctx(), &age("db/")).await.expect("fresh");
    assert_eq!(out["newest_key"], "db/2.sql");
    assert_eq!(out["objects"], 2);
    let err = registry
        .run(&ctx(), &age("logs/"))
        .await
        .expect_err("empty");
    assert_eq!(err.message, "no object under s3://backups/logs/");

    let replication = ActionInput::S3CheckReplication(CheckReplication {
        bucket: "backups".into(),
        prefix: "db/".into(),
        sample: 5,
    });
    let err = registry
        .run(&ctx(), &replication)
        .await
        .expect_err("no replication");
    assert_eq!(
        err.message,
        "bucket backups has no replication configuration"
    );
    assert_eq!(
        registry.preflight(&ctx(), &replication, &[]).await,
        Readiness::WouldFail("bucket backups has no replication configuration".into())
    );

    let s3 = aws.s3(REGION);
    bucket(&aws, "backups-dr", &[]).await;
    for b in ["backups", "backups-dr"] {
        s3.put_bucket_versioning()
            .bucket(b)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    }
    s3.put_bucket_replication()
        .bucket("backups")
        .replication_configuration(
            aws_sdk_s3::types::ReplicationConfiguration::builder()
                .role("arn:aws:iam::123456789012:role/replication")
                .rules(
                    aws_sdk_s3::types::ReplicationRule::builder()
                        .id("to-dr")
                        .status(aws_sdk_s3::types::ReplicationRuleStatus::Enabled)
                        .priority(1)
                        .filter(
                            aws_sdk_s3::types::ReplicationRuleFilter::builder()
                                .prefix("db/")
                                .build(),
                        )
                        .delete_marker_replication(
                            aws_sdk_s3::types::DeleteMarkerReplication::builder()
                                .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Disabled)
                                .build(),
                        )
                        .destination(
                            aws_sdk_s3::types::Destination::builder()
                                .bucket("arn:aws:s3:::backups-dr")
                                .build()
                                .expect("destination"),
                        )
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("replication");
    assert_eq!(
        registry.preflight(&ctx(), &replication, &[]).await,
        Readiness::Ready("backups replicates to arn:aws:s3:::backups-dr".into())
    );
}
