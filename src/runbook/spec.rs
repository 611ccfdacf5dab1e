//! What a runbook file says, as typed: the serde and JSON Schema shape of
//! the language. Nothing here is validated beyond its types; `load` turns a
//! [`RunbookSpec`] into a checked [`super::Runbook`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalogue::ActionKind;
use crate::duration::HumanDuration;
use crate::yaml::{Checked, Node, Spanned};

/// The fields every runbook has (required in the schema; `load` reports
/// each one missing).
pub const REQUIRED: [&str; 3] = ["name", "strategy", "steps"];

/// A recovery runbook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lifeboat runbook")]
pub struct RunbookSpec {
    /// Runbook name, used in reports and metrics.
    // Required, but a missing one is reported by `load` beside every
    // other problem rather than ending the decoding.
    #[serde(default)]
    pub name: Checked<String>,
    /// What the runbook does.
    pub description: Option<String>,
    /// The DR strategy the runbook implements.
    // Required, but a missing one is reported by `load` beside every
    // other problem rather than ending the decoding.
    #[serde(default)]
    pub strategy: Checked<Strategy>,
    /// Typed parameters, referenced as `${name}`.
    #[serde(default)]
    pub params: BTreeMap<String, Checked<Spanned<ParamSpec>>>,
    /// RTO and RPO targets.
    pub targets: Option<Checked<Targets>>,
    /// Where the recovery point used by this runbook comes from (for RPO).
    pub recovery_point: Option<Checked<RecoveryPoint>>,
    /// The region failed away from and the region recovered into.
    pub regions: Option<Checked<Regions>>,
    /// Role to assume for every step (a step may name its own).
    pub assume_role: Option<Checked<AssumeRole>>,
    /// Where a drill puts its copies.
    pub drill: Option<Checked<Spanned<DrillPlacement>>>,
    /// The steps, a DAG through `needs`.
    // Required, but a missing one is reported by `load` beside every
    // other problem rather than ending the decoding.
    #[serde(default)]
    pub steps: Checked<Vec<Checked<StepSpec>>>,
}

/// The classic AWS DR strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Restore from snapshots copied cross-region.
    BackupRestore,
    /// Replicated data, app tier off until recovery.
    PilotLight,
    /// A scaled-down running copy, scaled up on recovery.
    WarmStandby,
    /// A full idle copy; traffic is switched.
    ActivePassive,
    /// Every region serves; the failed one is drained, the others absorb it.
    ActiveActive,
    /// Within one region: away from a failed Availability Zone (database
    /// to its standby, traffic shifted, capacity moved).
    MultiAz,
    /// Back to the repaired primary; always started by a human.
    Failback,
}

impl Strategy {
    /// Every strategy, up the DR ladder (cost and recovery speed rising),
    /// failback last.
    pub const LADDER: [Strategy; 7] = [
        Strategy::BackupRestore,
        Strategy::MultiAz,
        Strategy::PilotLight,
        Strategy::WarmStandby,
        Strategy::ActivePassive,
        Strategy::ActiveActive,
        Strategy::Failback,
    ];

    /// The name as written in runbooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::BackupRestore => "backup-restore",
            Strategy::PilotLight => "pilot-light",
            Strategy::WarmStandby => "warm-standby",
            Strategy::ActivePassive => "active-passive",
            Strategy::ActiveActive => "active-active",
            Strategy::MultiAz => "multi-az",
            Strategy::Failback => "failback",
        }
    }
}

/// Type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Text.
    #[default]
    String,
    /// A whole number.
    Int,
    /// `true` or `false`.
    Bool,
    /// A duration such as `15m`.
    Duration,
    /// A list of strings (`--param k=a,b,c` on the command line).
    List,
}

/// A parameter declaration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The parameter's type; default `string`.
    #[serde(rename = "type", default)]
    pub ty: ParamType,
    /// Value used when none is given.
    pub default: Option<Node>,
    /// What the parameter is for.
    pub description: Option<String>,
    /// Never print the value (logs, plans, reports).
    #[serde(default)]
    pub secret: bool,
}

/// Recovery objectives.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Recovery time objective.
    pub rto: Option<HumanDuration>,
    /// Recovery point objective.
    pub rpo: Option<HumanDuration>,
}

/// The region a failover leaves and the one it recovers into.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Regions {
    /// The region being failed away from: its control plane may be down.
    pub from: String,
    /// The region recovered into; the default region of every step.
    pub to: String,
    /// More regions the recovery moves into besides `to`, in the order
    /// they are preferred after it (steps name them as their `region`):
    /// each is checked before an automatic failover, as `to` is.
    #[serde(default)]
    pub also: Vec<String>,
}

impl Regions {
    /// Every region the recovery moves into: `to`, then `also`.
    pub fn recovery(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.to.as_str()).chain(self.also.iter().map(String::as_str))
    }
}

/// An IAM role to assume.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumeRole {
    /// The role's ARN.
    pub role_arn: String,
    /// External id the role's trust policy requires.
    pub external_id: Option<String>,
    /// Session name; default `lifeboat-<run id>`.
    pub session_name: Option<String>,
}

/// Where a drill puts the copies it makes in the region it recovers into.
/// Each field left out keeps the source's own placement, and the drill's
/// report says that the drill shares production's network.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillPlacement {
    /// Subnets for drill instances and drill Auto Scaling groups: an
    /// instance's copy goes to the one in its source's availability zone
    /// (else the first); a drill group spans them all.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Security groups for drill instances; default: each source's own
    /// (which must then be in the drill subnets' VPC).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// DB subnet group for drill databases.
    pub db_subnet_group: Option<String>,
    /// VPC security groups for drill databases.
    #[serde(default)]
    pub db_security_groups: Vec<String>,
    /// IAM roles (by name, with its path if it has one) the drill may pass
    /// to EC2: a drill instance copy keeps its source's instance profile,
    /// and a drill group launches with its template's, only when their
    /// role is named here, since the drill's policy grants `iam:PassRole`
    /// on these roles alone. Empty: copies launch without a profile.
    #[serde(default)]
    pub instance_roles: Vec<String>,
}

/// Where the recovery point of a run is read from, for RPO.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "from", deny_unknown_fields)]
pub enum RecoveryPoint {
    /// The lag of an RDS read replica just before it is promoted.
    #[serde(rename = "rds.replica_lag")]
    RdsReplicaLag {
        /// The replica.
        db_instance: String,
        /// Its region; default: the runbook's `regions.to`.
        region: Option<String>,
    },
    /// How far an Aurora global database's secondary cluster was behind
    /// (its `AuroraGlobalDBRPOLag`) just before it is made the primary.
    #[serde(rename = "aurora.global_lag")]
    AuroraGlobalLag {
        /// The secondary cluster.
        db_cluster: String,
        /// Its region; default: the runbook's `regions.to`.
        region: Option<String>,
    },
    /// The creation time of the snapshot a step restored.
    #[serde(rename = "rds.snapshot")]
    RdsSnapshot {
        /// The restoring step.
        step: String,
    },
    /// The newest object in the DR bucket against the newest in the source.
    #[serde(rename = "s3.newest_object")]
    S3NewestObject {
        /// The source bucket.
        source_bucket: String,
        /// The DR bucket.
        dr_bucket: String,
        /// Key prefix to compare.
        #[serde(default)]
        prefix: String,
    },
}

impl RecoveryPoint {
    /// Whether the point must be read just before a step taking `action`
    /// starts (once per run): a replica's lag before its promotion, a
    /// bucket's newest objects before the first step. A restored
    /// snapshot's point is read from that step's outputs instead.
    pub fn read_before(&self, action: ActionKind) -> bool {
        match self {
            RecoveryPoint::RdsReplicaLag { .. } => action == ActionKind::RdsPromoteReadReplica,
            RecoveryPoint::AuroraGlobalLag { .. } => matches!(
                action,
                ActionKind::RdsFailoverGlobalCluster | ActionKind::RdsSwitchoverGlobalCluster
            ),
            RecoveryPoint::S3NewestObject { .. } => true,
            RecoveryPoint::RdsSnapshot { .. } => false,
        }
    }
}

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// In every mode.
    Always,
    /// Only in an unplanned failover.
    Failover,
    /// Only in a planned switchover (the primary still up).
    Switchover,
    /// Only in a drill.
    Drill,
    /// Only when fencing the old primary, its region back after a
    /// failover (never in the other modes, `always` included).
    Fence,
    /// Only when reprotecting: the protection rebuilt the other way after
    /// a failover (never in the other modes, `always` included).
    Reprotect,
}

/// One `when` value or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WhenSpec {
    /// A single phase.
    One(When),
    /// Several phases.
    Many(Vec<When>),
}

/// What to do when a step fails (after its retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop scheduling, let running steps finish, fail the run.
    #[default]
    Abort,
    /// Carry on; steps that need this one are skipped.
    Continue,
    /// As abort, then run the `rollback` of completed steps in reverse order.
    Rollback,
}

/// Retry policy of a step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time, with jitter.
    pub backoff: Option<HumanDuration>,
    /// Longest wait between attempts.
    pub max_backoff: Option<HumanDuration>,
}

/// One step of a runbook.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique id: lowercase letters, digits, `-` and `_`.
    pub id: Spanned<String>,
    /// The action to take (a step takes an `action` or a `runbook`).
    pub action: Option<Spanned<ActionKind>>,
    /// A child runbook to run as this step, one level deep: its steps
    /// become this step's (ids `<this id>.<its id>`), its first steps
    /// wait for this step's `needs`, and the steps that need this one
    /// wait for all of it. Its path is relative to this runbook's file.
    pub runbook: Option<Spanned<String>>,
    /// Values of the child runbook's parameters (with `runbook`).
    pub params: Option<Node>,
    /// What the step is for.
    pub description: Option<String>,
    /// AWS region; default: the runbook's `regions.to`.
    pub region: Option<Spanned<String>>,
    /// The action's inputs.
    pub with: Option<Node>,
    /// Steps that must succeed before this one starts.
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    /// Deadline of the whole step, every attempt included; default: the action's.
    pub timeout: Option<HumanDuration>,
    /// Retry policy; default: the action's.
    pub retry: Option<RetrySpec>,
    /// What a failure does to the run.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Modes the step runs in; default `always`.
    pub when: Option<Spanned<WhenSpec>>,
    /// This step's success is the moment service is restored (for RTO).
    #[serde(default)]
    pub restores_service: bool,
    /// Compensation run when the run rolls back after this step completed.
    pub rollback: Option<Spanned<ActionCall>>,
    /// Taken when the step's action fails after its retries; the step
    /// succeeds if the fallback does (e.g. a Route 53 record edit behind a
    /// data-plane traffic switch).
    pub fallback: Option<Spanned<ActionCall>>,
    /// Safe to run again after an interrupted attempt even though its effect
    /// cannot be observed (`exec`, `notify`).
    #[serde(default)]
    pub repeatable: bool,
    /// Role to assume for this step.
    pub assume_role: Option<AssumeRole>,
}

/// An action taken on a step's behalf: its rollback or its fallback.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionCall {
    /// The action to take.
    pub action: Spanned<ActionKind>,
    /// AWS region; default: the step's.
    pub region: Option<Spanned<String>>,
    /// The action's inputs.
    pub with: Option<Node>,
    /// Deadline, every attempt included; default: the action's.
    pub timeout: Option<HumanDuration>,
    /// Retry policy; default: the action's.
    pub retry: Option<RetrySpec>,
}
