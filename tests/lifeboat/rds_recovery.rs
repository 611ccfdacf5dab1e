//! RDS snapshots, copies, restores, replicas, class changes and deletion
//! on the emulator: do, already done (no mutating call), missing resource.

use std::time::Duration;

use lifeboat::actions::{Readiness, Registry};
use lifeboat::aws::AwsClients;
use lifeboat::catalogue::rds::{
    CopySnapshot, CreateReadReplica, CreateSnapshot, DeleteInstance, ModifyInstanceClass,
    ReplicateAutomatedBackups, RestoreFromSnapshot, RestorePointInTime, WaitReplicaLag,
};
use lifeboat::catalogue::{ActionInput, ActionKind};
use lifeboat::engine::{ActionError, Actions, FailureKind, Outputs, StepContext};
use lifeboat::runbook::Mode;

use crate::support::moto::Moto;
use crate::support::step_context;

fn ctx(region: &str) -> StepContext {
    step_context("20261128T110000-ab12", "step", region)
}

/// Run `input` twice: the second run must make no mutating call and
/// return what the first did.
async fn twice(aws: &AwsClients, region: &str, input: &ActionInput) -> Outputs {
    let registry = Registry::with_aws(aws.clone());
    let first = registry.run(&ctx(region), input).await.expect("first run");
    let before = aws.calls().mutating();
    let second = registry.run(&ctx(region), input).await.expect("second run");
    assert_eq!(
        aws.calls().mutating(),
        before,
        "already done: no mutating call"
    );
    assert_eq!(first.get("db_instance"), second.get("db_instance"));
    first
}

async fn fails(aws: &AwsClients, region: &str, input: &ActionInput) -> ActionError {
    let before = aws.calls().mutating();
    let err = Registry::with_aws(aws.clone())
        .run(&ctx(region), input)
        .await
        .expect_err("must fail");
    assert_eq!(err.kind, FailureKind::Permanent, "{err}");
    assert_eq!(aws.calls().mutating(), before, "a failure changes nothing");
    err
}

async fn preflight(aws: &AwsClients, region: &str, input: &ActionInput) -> Readiness {
    Registry::with_aws(aws.clone())
        .preflight(&ctx(region), input, &[])
        .await
}

fn snapshot(db: &str) -> ActionInput {
    ActionInput::RdsCreateSnapshot(CreateSnapshot {
        db_instance: db.into(),
        snapshot_id: None,
        tags: [("purpose".to_string(), "dr".to_string())].into(),
    })
}

fn copy(source_db: &str) -> ActionInput {
    ActionInput::RdsCopySnapshot(CopySnapshot {
        source_region: "us-east-1".into(),
        source_snapshot: None,
        source_db_instance: Some(source_db.into()),
        target_snapshot_id: Some("app-db-dr-copy".into()),
        kms_key_id: None,
        copy_tags: true,
    })
}

fn restore(target: &str, snapshot_of: Option<&str>, snapshot: Option<&str>) -> ActionInput {
    ActionInput::RdsRestoreFromSnapshot(RestoreFromSnapshot {
        parameter_group: None,
        option_group: None,
        db_instance: target.into(),
        snapshot: snapshot.map(str::to_string),
        snapshot_of: snapshot_of.map(str::to_string),
        snapshot_tags: None,
        instance_class: Some("db.t3.small".into()),
        subnet_group: None,
        security_groups: Vec::new(),
        multi_az: None,
        tags: [("app".to_string(), "shop".to_string())].into(),
        availability_zone: None,
        alternatives: vec![],
    })
}

async fn tags_of(aws: &AwsClients, region: &str, db: &str) -> Vec<(String, String)> {
    crate::support::seed::db(aws, region, db)
        .await
        .expect("the instance")
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_copy_across_regions_and_restore_each_happen_once() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;

    // Before anything exists, the preflights say what would fail.
    let before = preflight(&aws, "us-west-2", &copy("ghost-db")).await;
    assert_eq!(
        before,
        Readiness::WouldFail("no available snapshot of ghost-db in us-east-1".into())
    );

    let snap = twice(&aws, "us-east-1", &snapshot("app-db")).await;
    assert_eq!(snap["snapshot_id"], "app-db-lifeboat-20261128t110000-ab12");
    assert!(
        snap["created_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    assert_eq!(aws.calls().mutating().get("RDS.CreateDBSnapshot"), Some(&1));

    assert!(matches!(
        preflight(&aws, "us-west-2", &copy("app-db")).await,
        Readiness::Ready(_)
    ));
    let copied = twice(&aws, "us-west-2", &copy("app-db")).await;
    assert_eq!(copied["snapshot_id"], "app-db-dr-copy");
    assert!(
        copied["source_snapshot_arn"].as_str().is_some_and(
            |a| a.contains("us-east-1") && a.ends_with(":app-db-lifeboat-20261128t110000-ab12")
        ),
        "{copied:?}"
    );
    // The recovery point is when the source snapshot was taken.
    assert_eq!(copied["created_at"], snap["created_at"]);
    assert_eq!(aws.calls().mutating().get("RDS.CopyDBSnapshot"), Some(&1));

    let input = restore("app-db-restored", None, Some("app-db-dr-copy"));
    assert!(matches!(
        preflight(&aws, "us-west-2", &input).await,
        Readiness::Ready(_)
    ));
    let restored = twice(&aws, "us-west-2", &input).await;
    assert_eq!(restored["db_instance"], "app-db-restored");
    assert!(restored["endpoint"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(
        restored["snapshot_arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":app-db-dr-copy"))
    );
    assert_eq!(
        aws.calls()
            .mutating()
            .get("RDS.RestoreDBInstanceFromDBSnapshot"),
        Some(&1)
    );
    let tags = tags_of(&aws, "us-west-2", "app-db-restored").await;
    assert!(tags.contains(&("app".into(), "shop".into())), "{tags:?}");
    assert!(tags.contains(&(
        "lifeboat:created-by-run".into(),
        "20261128T110000-ab12".into()
    )));

    // Now it exists, lifeboat's own: a preflight says there is nothing to do.
    assert!(matches!(
        preflight(&aws, "us-west-2", &input).await,
        Readiness::Ready(m) if m.contains("nothing to do")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_picks_the_newest_snapshot_and_never_takes_over_a_foreign_instance() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let rds = aws.rds("us-east-1");
    for id in ["app-db-old", "app-db-new"] {
        rds.create_db_snapshot()
            .db_instance_identifier("app-db")
            .db_snapshot_identifier(id)
            .send()
            .await
            .expect("snapshot");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let out = twice(
        &aws,
        "us-east-1",
        &restore("app-db-scratch", Some("app-db"), None),
    )
    .await;
    assert!(
        out["snapshot_arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":app-db-new")),
        "{out:?}"
    );

    // The primary itself is not lifeboat's: never "restored over", never deleted.
    let err = fails(&aws, "us-east-1", &restore("app-db", Some("app-db"), None)).await;
    assert!(
        err.message
            .contains("app-db already exists in us-east-1 and was not created by lifeboat"),
        "{err}"
    );
    let delete = |db: &str| {
        ActionInput::RdsDeleteInstance(DeleteInstance {
            db_instance: db.into(),
            final_snapshot_id: None,
        })
    };
    let err = fails(&aws, "us-east-1", &delete("app-db")).await;
    assert!(err.message.contains("refusing to delete"), "{err}");
    assert!(matches!(
        preflight(&aws, "us-east-1", &delete("app-db")).await,
        Readiness::WouldFail(_)
    ));

    // The scratch instance is lifeboat's: deleted once, then nothing to do.
    let out = twice(&aws, "us-east-1", &delete("app-db-scratch")).await;
    assert_eq!(out["deleted"], true);
    assert_eq!(aws.calls().mutating().get("RDS.DeleteDBInstance"), Some(&1));

    let err = fails(
        &aws,
        "us-east-1",
        &restore("x", None, Some("no-such-snapshot")),
    )
    .await;
    assert_eq!(err.message, "no DB snapshot no-such-snapshot in us-east-1");
    let err = fails(&aws, "us-east-1", &snapshot("ghost-db")).await;
    assert_eq!(err.message, "no DB instance ghost-db in us-east-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_restore_replica_creation_and_class_change() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;

    let pitr = |source: &str| {
        ActionInput::RdsRestorePointInTime(RestorePointInTime {
            security_groups: Vec::new(),
            parameter_group: None,
            option_group: None,
            source_db_instance: source.into(),
            source_region: None,
            target_db_instance: "app-db-pitr".into(),
            restore_time: None,
            instance_class: None,
            subnet_group: None,
            tags: Default::default(),
            availability_zone: None,
            alternatives: vec![],
        })
    };
    assert!(matches!(
        preflight(&aws, "us-east-1", &pitr("app-db")).await,
        Readiness::Ready(_)
    ));
    let out = twice(&aws, "us-east-1", &pitr("app-db")).await;
    assert_eq!(out["db_instance"], "app-db-pitr");
    assert_eq!(
        aws.calls()
            .mutating()
            .get("RDS.RestoreDBInstanceToPointInTime"),
        Some(&1)
    );
    let err = fails(
        &aws,
        "us-east-1",
        &ActionInput::RdsRestorePointInTime(RestorePointInTime {
            security_groups: Vec::new(),
            parameter_group: None,
            option_group: None,
            target_db_instance: "other".into(),
            ..match pitr("ghost") {
                ActionInput::RdsRestorePointInTime(w) => w,
                _ => unreachable!(),
            }
        }),
    )
    .await;
    assert_eq!(err.message, "no DB instance ghost in us-east-1");

    let replica = |source: &str| {
        ActionInput::RdsCreateReadReplica(CreateReadReplica {
            security_groups: Vec::new(),
            parameter_group: None,
            option_group: None,
            source_db_instance: source.into(),
            source_region: Some("us-east-1".into()),
            db_instance: "app-db-replica-2".into(),
            instance_class: Some("db.t3.micro".into()),
            kms_key_id: None,
            subnet_group: None,
            tags: Default::default(),
            availability_zone: None,
            alternatives: vec![],
        })
    };
    // The seeding made one replica already.
    let out = twice(&aws, "us-west-2", &replica("app-db")).await;
    assert_eq!(out["db_instance"], "app-db-replica-2");
    assert_eq!(
        aws.calls()
            .mutating()
            .get("RDS.CreateDBInstanceReadReplica"),
        Some(&2)
    );
    // The replica seeded outside lifeboat already replicates app-db: done.
    let seeded = ActionInput::RdsCreateReadReplica(CreateReadReplica {
        security_groups: Vec::new(),
        parameter_group: None,
        option_group: None,
        db_instance: "app-db-replica".into(),
        ..match replica("app-db") {
            ActionInput::RdsCreateReadReplica(w) => w,
            _ => unreachable!(),
        }
    });
    twice(&aws, "us-west-2", &seeded).await;
    assert_eq!(
        aws.calls()
            .mutating()
            .get("RDS.CreateDBInstanceReadReplica"),
        Some(&2)
    );
    let err = fails(
        &aws,
        "us-west-2",
        &ActionInput::RdsCreateReadReplica(CreateReadReplica {
            security_groups: Vec::new(),
            parameter_group: None,
            option_group: None,
            db_instance: "app-db-replica-3".into(),
            ..match replica("ghost") {
                ActionInput::RdsCreateReadReplica(w) => w,
                _ => unreachable!(),
            }
        }),
    )
    .await;
    assert_eq!(err.message, "no DB instance ghost in us-east-1");

    let resize = |db: &str| {
        ActionInput::RdsModifyInstanceClass(ModifyInstanceClass {
            db_instance: Some(db.into()),
            tags: None,
            instance_class: "db.r6g.large".into(),
        })
    };
    let out = twice(&aws, "us-west-2", &resize("app-db-replica")).await;
    assert_eq!(out["modified"], serde_json::json!(["app-db-replica"]));
    assert_eq!(aws.calls().mutating().get("RDS.ModifyDBInstance"), Some(&1));
    let db = crate::support::seed::db(&aws, "us-west-2", "app-db-replica").await;
    assert_eq!(
        db.as_ref().and_then(|d| d.db_instance_class()),
        Some("db.r6g.large")
    );
    let err = fails(&aws, "us-west-2", &resize("ghost")).await;
    assert_eq!(err.message, "no DB instance ghost in us-west-2");

    // The lag itself comes from CloudWatch (published as RDS would, by the
    // emulator's guard); below, what is decided before it is read.
    let lag = |db: &str| {
        ActionInput::RdsWaitReplicaLag(WaitReplicaLag {
            db_instance: db.into(),
            max_lag: Default::default(),
        })
    };
    let err = fails(&aws, "us-east-1", &lag("app-db")).await;
    assert_eq!(
        err.message,
        "DB instance app-db in us-east-1 is not a read replica"
    );
    let err = fails(&aws, "us-west-2", &lag("ghost")).await;
    assert_eq!(err.message, "no DB instance ghost in us-west-2");
    assert!(matches!(
        preflight(&aws, "us-west-2", &lag("app-db-replica-2")).await,
        Readiness::Ready(m) if m.contains("read replica")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_tell_a_missing_resource_from_one_an_earlier_step_creates() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let registry = Registry::with_aws(aws.clone());
    let input = restore("app-db-restored", Some("app-db"), None);
    let alone = registry.preflight(&ctx("us-west-2"), &input, &[]).await;
    assert!(
        matches!(alone, Readiness::WouldFail(ref m) if m.contains("snapshot of app-db")),
        "{alone:?}"
    );
    let after_copy = registry
        .preflight(&ctx("us-west-2"), &input, &[ActionKind::RdsCopySnapshot])
        .await;
    assert!(
        matches!(after_copy, Readiness::Unchecked(ref m) if m.contains("rds.copy_snapshot")),
        "{after_copy:?}"
    );
    assert!(aws.calls().mutating().is_empty(), "preflights only read");
}

/// The lag gate passes on a fresh datapoint within its bound and waits,
/// naming the lag, while the replica is behind; the recovery point is the
/// datapoint's time less its lag, not the present less it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_gate_and_the_recovery_point_read_replica_lag_datapoints() {
    use lifeboat::runbook::RecoveryPoint;
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let lag = |max_lag: &str| {
        ActionInput::RdsWaitReplicaLag(WaitReplicaLag {
            db_instance: "app-db-replica".into(),
            max_lag: max_lag.parse().expect("duration"),
        })
    };
    let registry = Registry::with_aws(aws.clone());
    let out = registry
        .run(&ctx("us-west-2"), &lag("0s"))
        .await
        .expect("caught up");
    assert_eq!(out["lag_seconds"], serde_json::json!(0.0));

    moto.set_replica_lag("us-west-2", "app-db-replica", Some(30.0));
    let short = StepContext {
        deadline: tokio::time::Instant::now() + Duration::from_secs(4),
        ..ctx("us-west-2")
    };
    // Once CloudWatch has the new lag, the gate waits past its deadline.
    crate::support::seed::wait_for_replica_lag(&aws, "us-west-2", "app-db-replica", 30.0).await;
    let err = registry
        .run(&short, &lag("5s"))
        .await
        .expect_err("still lagging");
    assert!(
        err.message.contains("ReplicaLag 30 s, want at most 5 s"),
        "{err}"
    );
    // The recovery point for an incident starting now.
    let incident = jiff::Timestamp::now();
    let source = RecoveryPoint::RdsReplicaLag {
        db_instance: "app-db-replica".into(),
        region: None,
    };
    let reading = registry
        .read_recovery_point(&ctx("us-west-2"), Some("us-west-2"), &source, incident)
        .await;
    let at: jiff::Timestamp = reading
        .at
        .as_deref()
        .expect("a recovery point")
        .parse()
        .expect("RFC 3339");
    let behind = incident.duration_since(at).as_secs_f64();
    assert!(
        (30.0..=30.0 + 60.0 + 5.0).contains(&behind),
        "30 s of lag, at a datapoint of the last period: {behind} s, {reading:?}"
    );
    assert!(reading.how.contains("30 s at"), "{}", reading.how);
    // The replica's RPO exposure is read the same way, now.
    let replica = lifeboat::config::Protected::RdsReplica {
        db_instance: "app-db-replica".into(),
        region: "us-west-2".into(),
        rpo_target: Some("20s".parse().expect("duration")),
    };
    let exposure = lifeboat::exposure::measure(&aws, &replica, jiff::Timestamp::now()).await;
    assert_eq!(exposure.resource, "rds-replica:us-west-2:app-db-replica");
    assert_eq!(exposure.verdict, "over target", "{exposure:?}");
    assert!(exposure.seconds.is_some_and(|s| s >= 30.0), "{exposure:?}");

    moto.set_replica_lag("us-west-2", "app-db-replica", None);
    let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let reading = registry
        .read_recovery_point(&ctx("us-west-2"), Some("us-west-2"), &source, before)
        .await;
    assert_eq!(reading.at, None);
    assert!(
        reading
            .not_measurable
            .as_deref()
            .is_some_and(|w| w.contains("no ReplicaLag datapoint")),
        "{reading:?}"
    );
}

/// A point-in-time restore in the DR region reads the source's automated
/// backups replicated there. moto implements neither the replication nor
/// a restore from replicated backups (README, emulator gaps), so what the
/// emulator shows is what AWS says when none replicate: refused before and
/// during the run, naming the source, regions and the action that starts
/// them, creating nothing. The replication action checks its source (no
/// automated backups; encrypted without a key for the DR region), and its
/// request reaches the emulator, which says it lacks the operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_across_regions_reads_replicated_backups_and_says_when_there_are_none() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    let pitr = ActionInput::RdsRestorePointInTime(RestorePointInTime {
        security_groups: Vec::new(),
        parameter_group: None,
        option_group: None,
        source_db_instance: "app-db".into(),
        source_region: Some("us-east-1".into()),
        target_db_instance: "app-db-pitr".into(),
        restore_time: None,
        instance_class: None,
        subnet_group: None,
        availability_zone: None,
        alternatives: vec![],
        tags: Default::default(),
    });
    let none = "no automated backups of app-db replicated from us-east-1 into us-west-2; start the replication beforehand with `rds.replicate_automated_backups`";
    assert_eq!(
        preflight(&aws, "us-west-2", &pitr).await,
        Readiness::WouldFail(none.into())
    );
    let err = fails(&aws, "us-west-2", &pitr).await;
    assert_eq!(err.message, none);
    assert!(
        crate::support::seed::db(&aws, "us-west-2", "app-db-pitr")
            .await
            .is_none()
    );

    let replicate = |db: &str, key: Option<&str>| {
        ActionInput::RdsReplicateAutomatedBackups(ReplicateAutomatedBackups {
            source_db_instance: db.into(),
            source_region: "us-east-1".into(),
            backup_retention_days: Some(7),
            kms_key_id: key.map(str::to_string),
        })
    };
    let rds = aws.rds("us-east-1");
    for (id, retention, encrypted) in [("no-backups-db", 0, false), ("sealed-db", 1, true)] {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("not-a-real-password")
            .backup_retention_period(retention)
            .storage_encrypted(encrypted)
            .send()
            .await
            .expect("create source");
    }
    assert!(matches!(
        preflight(&aws, "us-west-2", &replicate("no-backups-db", None)).await,
        Readiness::WouldFail(m) if m.contains("keeps no automated backups")
    ));
    let sealed = preflight(&aws, "us-west-2", &replicate("sealed-db", None)).await;
    assert!(
        matches!(&sealed, Readiness::WouldFail(m) if m.contains("need `kms_key_id`")),
        "{sealed:?}"
    );
    assert!(matches!(
        preflight(&aws, "us-west-2", &replicate("app-db", None)).await,
        Readiness::Ready(m) if m == "would start replicating the automated backups of app-db from us-east-1 into us-west-2"
    ));

    let mut drill = ctx("us-west-2");
    drill.mode = Mode::Drill;
    let before = aws.calls().mutating();
    let simulated = Registry::with_aws(aws.clone())
        .run(&drill, &replicate("app-db", None))
        .await
        .expect("a drill starts nothing");
    assert_eq!(simulated["simulated"], true);
    assert_eq!(aws.calls().mutating(), before, "a drill starts nothing");

    let err = Registry::with_aws(aws.clone())
        .run(&ctx("us-west-2"), &replicate("app-db", None))
        .await
        .expect_err("the emulator lacks the operation");
    assert_eq!(err.kind, FailureKind::Permanent, "{err}");
    assert!(
        err.message
            .starts_with("StartDBInstanceAutomatedBackupsReplication of arn:aws:rds:us-east-1:")
            && err.message.contains(":db:app-db into us-west-2: ")
            && err.message.contains("does not implement"),
        "{err}"
    );

    let job = lifeboat::verify::JobSpec {
        name: "pitr".into(),
        schedule: None,
        timezone: None,
        resources: vec![lifeboat::verify::Resource::Rds {
            db_instance: "app-db".into(),
            region: "us-east-1".into(),
            dr_region: Some("us-west-2".into()),
            rpo_target: lifeboat::duration::HumanDuration(Duration::from_secs(3600)),
            encrypted: false,
            kms_key: None,
            deep: None,
            replicated_backups: true,
        }],
        posture: false,
        lifecycle_days: 180,
    };
    let result = lifeboat::verify::run(&aws, &job).await;
    let replicated = result
        .checks
        .iter()
        .find(|c| c.check == "automated backups replicated to the DR region")
        .expect("the check ran");
    assert!(!replicated.ok);
    assert!(
        replicated
            .detail
            .starts_with("no automated backups of app-db replicate into us-west-2"),
        "{}",
        replicated.detail
    );
}
