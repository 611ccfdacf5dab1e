//! `with` blocks of the RDS actions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Tags, exactly_one};
use crate::duration::HumanDuration;

/// `rds.create_snapshot`: take a manual snapshot of an instance.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// The instance to snapshot.
    pub db_instance: String,
    /// Snapshot identifier; default `<db_instance>-lifeboat-<run id>`.
    pub snapshot_id: Option<String>,
    /// Tags to put on the snapshot.
    #[serde(default)]
    pub tags: Tags,
}

/// `rds.copy_snapshot`: copy a snapshot into the step's region, called from
/// that (destination) region with the source snapshot's ARN.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopySnapshot {
    /// Region the source snapshot lives in.
    pub source_region: String,
    /// Source snapshot, by identifier or ARN.
    pub source_snapshot: Option<String>,
    /// Or: the newest snapshot of this instance in the source region.
    pub source_db_instance: Option<String>,
    /// Identifier of the copy; default `<source>-copy-<run id>`.
    pub target_snapshot_id: Option<String>,
    /// KMS key in the destination region for encrypted snapshots.
    pub kms_key_id: Option<String>,
    /// Copy the source snapshot's tags.
    #[serde(default = "yes")]
    pub copy_tags: bool,
}

/// `rds.restore_from_snapshot`: restore a new instance from a snapshot.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreFromSnapshot {
    /// Identifier of the instance to create.
    pub db_instance: String,
    /// The snapshot, by identifier or ARN.
    pub snapshot: Option<String>,
    /// Or: the newest snapshot of this source instance.
    pub snapshot_of: Option<String>,
    /// Or: the newest snapshot carrying all these tags.
    pub snapshot_tags: Option<Tags>,
    /// Instance class of the new instance; default: the snapshot's.
    pub instance_class: Option<String>,
    /// DB subnet group to place it in.
    pub subnet_group: Option<String>,
    /// VPC security groups to attach.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// DB parameter group; default: the engine's default (RDS does not take the snapshot's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// Option group; default: the snapshot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    /// Multi-AZ deployment.
    pub multi_az: Option<bool>,
    /// Availability Zone to create it in; default: RDS chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Where else to create it, in order, when RDS has no capacity for the
    /// class in the zone (`InsufficientDBInstanceCapacity`): each names
    /// another class, another Availability Zone, or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<DbAlternative>,
    /// Tags to put on the new instance.
    #[serde(default)]
    pub tags: Tags,
}

/// `rds.restore_point_in_time`: restore an instance to a moment in time.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestorePointInTime {
    /// The instance whose backups are used (identifier or ARN).
    pub source_db_instance: String,
    /// The source's region when it is not the step's: the restore then
    /// uses the source's automated backups replicated into the step's
    /// region (`rds.replicate_automated_backups`), which needs nothing of
    /// the source's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_region: Option<String>,
    /// Identifier of the instance to create.
    pub target_db_instance: String,
    /// The moment to restore to (RFC 3339, UTC); default: latest restorable.
    pub restore_time: Option<String>,
    /// Instance class of the new instance.
    pub instance_class: Option<String>,
    /// DB subnet group to place it in; default: a same-region source's.
    pub subnet_group: Option<String>,
    /// VPC security groups to attach; default: a same-region source's, else the VPC's default group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// DB parameter group; default: a same-region source's, else the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// Option group; default: a same-region source's, else the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    /// Availability Zone to create it in; default: RDS chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Where else to create it, in order, when RDS has no capacity for the
    /// class in the zone (`InsufficientDBInstanceCapacity`): each names
    /// another class, another Availability Zone, or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<DbAlternative>,
    /// Tags to put on the new instance.
    #[serde(default)]
    pub tags: Tags,
}

/// `rds.create_read_replica`: create a (possibly cross-region) read replica
/// in the step's region.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReadReplica {
    /// The source instance, by identifier (same region) or ARN.
    pub source_db_instance: String,
    /// Region of the source when it is not the step's region.
    pub source_region: Option<String>,
    /// Identifier of the replica to create.
    pub db_instance: String,
    /// Instance class of the replica.
    pub instance_class: Option<String>,
    /// KMS key in the replica's region, for encrypted sources.
    pub kms_key_id: Option<String>,
    /// DB subnet group to place it in.
    pub subnet_group: Option<String>,
    /// VPC security groups to attach; default: the VPC's default group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// DB parameter group; default: a same-region source's, else the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// Option group; default: the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    /// Availability Zone to create it in; default: RDS chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Where else to create it, in order, when RDS has no capacity for the
    /// class in the zone (`InsufficientDBInstanceCapacity`): each names
    /// another class, another Availability Zone, or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<DbAlternative>,
    /// Tags to put on the replica.
    #[serde(default)]
    pub tags: Tags,
}

/// `rds.replicate_automated_backups`: replicate an instance's automated
/// backups (snapshots and transaction logs) into the step's region, so a
/// point-in-time restore works there when the source's region is down.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicateAutomatedBackups {
    /// The source instance, by identifier.
    pub source_db_instance: String,
    /// The source's region.
    pub source_region: String,
    /// How many days the replicated backups are kept; default: the
    /// source's retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_retention_days: Option<u32>,
    /// KMS key in the step's region, for an encrypted source (required
    /// then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// `rds.promote_read_replica`: promote replicas to standalone instances.
/// Select them by id, by tags, or as all replicas of a source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteReadReplica {
    /// One replica by identifier.
    pub db_instance: Option<String>,
    /// Several replicas by identifier.
    pub db_instances: Option<Vec<String>>,
    /// Every replica in the region carrying all these tags.
    pub tags: Option<Tags>,
    /// Every replica in the region of this source (identifier or ARN).
    pub replicas_of: Option<String>,
    /// Automated backup retention to set on the promoted instance, in days.
    pub backup_retention_days: Option<u32>,
}

impl PromoteReadReplica {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("db_instance", self.db_instance.is_some()),
            ("db_instances", self.db_instances.is_some()),
            ("tags", self.tags.is_some()),
            ("replicas_of", self.replicas_of.is_some()),
        ])
    }
}

/// `rds.modify_instance_class`: change an instance's class (warm-up).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifyInstanceClass {
    /// One instance by identifier.
    pub db_instance: Option<String>,
    /// Every instance in the region carrying all these tags.
    pub tags: Option<Tags>,
    /// The class to change to, e.g. `db.r6g.xlarge`.
    pub instance_class: String,
}

impl ModifyInstanceClass {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("db_instance", self.db_instance.is_some()),
            ("tags", self.tags.is_some()),
        ])
    }
}

/// `rds.delete_instance`: delete a scratch instance lifeboat created.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteInstance {
    /// The instance to delete.
    pub db_instance: String,
    /// Take a final snapshot with this identifier before deleting.
    pub final_snapshot_id: Option<String>,
}

/// `rds.wait_available`: wait until instances are `available`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitAvailable {
    /// One instance by identifier.
    pub db_instance: Option<String>,
    /// Several instances by identifier.
    pub db_instances: Option<Vec<String>>,
    /// Every instance in the region carrying all these tags.
    pub tags: Option<Tags>,
}

impl WaitAvailable {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("db_instance", self.db_instance.is_some()),
            ("db_instances", self.db_instances.is_some()),
            ("tags", self.tags.is_some()),
        ])
    }
}

/// `rds.wait_replica_lag`: wait until a read replica has caught up (used
/// in a switchover, after writes stopped, before promoting).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitReplicaLag {
    /// The replica.
    pub db_instance: String,
    /// Largest acceptable lag; default `0s`.
    #[serde(default)]
    pub max_lag: HumanDuration,
}

/// `rds.failover_instance`: fail a Multi-AZ DB instance over to its
/// standby in another Availability Zone (a reboot with failover).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverInstance {
    /// The Multi-AZ instance.
    pub db_instance: String,
    /// The zone the primary is to leave, e.g. `us-east-1a`. The step is
    /// done once the primary is available anywhere else, so a second run
    /// (or a resumed one) never fails it back into this zone.
    pub from_zone: String,
}

/// `rds.failover_cluster`: make another instance of an Aurora (or Multi-AZ)
/// DB cluster its writer (`FailoverDBCluster`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverCluster {
    /// The DB cluster.
    pub db_cluster: String,
    /// The reader to promote to writer: done once it is the writer.
    pub target_instance: Option<String>,
    /// Or the zone the writer is to leave: the reader outside it with the
    /// best promotion tier becomes writer; done once the writer is
    /// available outside this zone.
    pub from_zone: Option<String>,
}

impl FailoverCluster {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("target_instance", self.target_instance.is_some()),
            ("from_zone", self.from_zone.is_some()),
        ])
    }
}

/// `rds.switchover_global_cluster`: a planned move of an Aurora global
/// database's writer to a secondary cluster, with no data loss (both
/// regions up; RDS waits for the secondary to catch up).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverGlobalCluster {
    /// The global database.
    pub global_cluster: String,
    /// The secondary cluster (identifier in the step's region, or ARN)
    /// to make the primary.
    pub target_cluster: String,
}

/// `rds.failover_global_cluster`: an unplanned failover of an Aurora global
/// database to a secondary cluster, the primary region lost: what the
/// secondary had not received is lost.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverGlobalCluster {
    /// The global database.
    pub global_cluster: String,
    /// The secondary cluster (identifier in the step's region, or ARN)
    /// to make the primary.
    pub target_cluster: String,
    /// Must be `true`: the runbook says, in so many words, that writes not
    /// yet replicated are given up (without it RDS would attempt a
    /// switchover, which needs the primary region).
    pub allow_data_loss: bool,
}

impl FailoverGlobalCluster {
    pub(super) fn check(&self) -> Vec<String> {
        if self.allow_data_loss {
            Vec::new()
        } else {
            vec![
                "`allow_data_loss` must be `true`: a failover gives up what the secondary has not received; a move without data loss is `rds.switchover_global_cluster`"
                    .into(),
            ]
        }
    }
}

/// `rds.set_serverless_capacity`: an Aurora Serverless v2 cluster's
/// capacity range, in ACUs (warm-up: a higher minimum before traffic
/// arrives; back down afterwards).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetServerlessCapacity {
    /// The DB cluster.
    pub db_cluster: String,
    /// Fewest ACUs: 0 (scales to zero, where the engine allows it) or 0.5
    /// to 256, in steps of 0.5.
    pub min_acu: f64,
    /// Most ACUs: 1 to 256, in steps of 0.5, at least `min_acu`.
    pub max_acu: f64,
}

impl SetServerlessCapacity {
    pub(super) fn check(&self) -> Vec<String> {
        let half_steps = |v: f64| (v * 2.0).fract() == 0.0;
        let mut problems = Vec::new();
        if !(self.min_acu == 0.0 || (0.5..=256.0).contains(&self.min_acu))
            || !half_steps(self.min_acu)
        {
            problems.push(format!(
                "`min_acu` {} must be 0, or 0.5 to 256 in steps of 0.5",
                self.min_acu
            ));
        }
        if !(1.0..=256.0).contains(&self.max_acu) || !half_steps(self.max_acu) {
            problems.push(format!(
                "`max_acu` {} must be 1 to 256 in steps of 0.5",
                self.max_acu
            ));
        }
        if self.min_acu > self.max_acu {
            problems.push(format!(
                "`min_acu` {} is above `max_acu` {}",
                self.min_acu, self.max_acu
            ));
        }
        problems
    }
}

/// `rds.isolate_instance`: put a DB instance behind these VPC security
/// groups only (a quarantine group that lets no application in): fencing
/// an old primary so that it takes no more writes, its data kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IsolateInstance {
    /// The instance.
    pub db_instance: String,
    /// The security groups it is to have, and no other.
    pub security_groups: Vec<String>,
}

impl IsolateInstance {
    pub(super) fn check(&self) -> Vec<String> {
        if self.security_groups.is_empty() {
            vec![
                "`security_groups` names none: give the quarantine group (RDS needs at least one)"
                    .into(),
            ]
        } else {
            Vec::new()
        }
    }
}

impl CopySnapshot {
    pub(super) fn check(&self) -> Vec<String> {
        exactly_one(&[
            ("source_snapshot", self.source_snapshot.is_some()),
            ("source_db_instance", self.source_db_instance.is_some()),
        ])
    }
}

impl RestoreFromSnapshot {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = exactly_one(&[
            ("snapshot", self.snapshot.is_some()),
            ("snapshot_of", self.snapshot_of.is_some()),
            ("snapshot_tags", self.snapshot_tags.is_some()),
        ]);
        problems.extend(check_placement(
            &self.alternatives,
            self.availability_zone.as_deref(),
            self.multi_az == Some(true),
        ));
        problems
    }
}

/// One more place to find RDS capacity: what it changes of the request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbAlternative {
    /// Instance class instead, e.g. `db.r6i.large` for `db.r6g.large`.
    pub instance_class: Option<String>,
    /// Availability Zone instead.
    pub availability_zone: Option<String>,
}

/// The rules of `alternatives` and `availability_zone`: each alternative
/// names something, and a Multi-AZ instance is placed by RDS.
pub(super) fn check_placement(
    alternatives: &[DbAlternative],
    availability_zone: Option<&str>,
    multi_az: bool,
) -> Vec<String> {
    let mut problems: Vec<String> = alternatives
        .iter()
        .enumerate()
        .filter(|(_, a)| a.instance_class.is_none() && a.availability_zone.is_none())
        .map(|(i, _)| {
            format!(
                "alternative {}: give `instance_class`, `availability_zone` or both",
                i + 1
            )
        })
        .collect();
    let zoned =
        availability_zone.is_some() || alternatives.iter().any(|a| a.availability_zone.is_some());
    if multi_az && zoned {
        problems.push(
            "a Multi-AZ instance is placed by RDS in two zones: drop `availability_zone` (or `multi_az`)"
                .into(),
        );
    }
    problems
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(min_acu: f64, max_acu: f64) -> Vec<String> {
        SetServerlessCapacity {
            db_cluster: "c".into(),
            min_acu,
            max_acu,
        }
        .check()
    }

    #[test]
    fn a_serverless_range_is_in_half_acus_within_auroras_bounds() {
        assert!(capacity(0.0, 1.0).is_empty());
        assert!(capacity(0.5, 256.0).is_empty());
        assert_eq!(capacity(0.25, 4.0).len(), 1, "{:?}", capacity(0.25, 4.0));
        assert_eq!(capacity(2.0, 300.0).len(), 1);
        assert_eq!(
            capacity(8.0, 4.0),
            ["`min_acu` 8 is above `max_acu` 4".to_string()]
        );
    }
}
