//! The catalogue of actions a step can take, as data.
//!
//! Each action has a name (`rds.promote_read_replica`), a typed `with` block
//! (one struct, unknown fields rejected), and facts the rest of lifeboat
//! relies on: which service and control plane it calls, whether it changes
//! anything, the IAM actions it needs, its default timeout and retries, and
//! what it does in a drill. Executing actions belongs to the engine and the
//! per-service implementations; this module only describes them.

pub mod arc;
pub mod autoscaling;
pub mod cloudwatch;
pub mod ec2;
pub mod ecs;
pub mod generic;
pub mod lambda;
pub mod rds;
pub mod route53;
pub mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The output key by which a drill step says it checked nothing (an
/// `http.wait_healthy` without a `drill_url`): such a drill measures no
/// RTO.
pub const DRILL_UNCHECKED: &str = "drill_unchecked";

use serde::{Deserialize, Deserializer, Serialize};

use crate::yaml::{self, Node, Problem};

/// Resource tags, as `Key: Value`.
pub type Tags = BTreeMap<String, String>;

/// The AWS service (or none) an action talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Amazon RDS.
    Rds,
    /// Amazon EC2.
    Ec2,
    /// EC2 Auto Scaling.
    Autoscaling,
    /// Amazon Route 53.
    Route53,
    /// Amazon S3.
    S3,
    /// Amazon CloudWatch.
    Cloudwatch,
    /// Amazon Application Recovery Controller's zonal shift.
    ArcZonalShift,
    /// Amazon ECS.
    Ecs,
    /// AWS Lambda.
    Lambda,
    /// No AWS service.
    None,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Rds => "RDS",
            Service::Ec2 => "EC2",
            Service::Autoscaling => "Auto Scaling",
            Service::Route53 => "Route 53",
            Service::S3 => "S3",
            Service::Cloudwatch => "CloudWatch",
            Service::ArcZonalShift => "ARC zonal shift",
            Service::Ecs => "ECS",
            Service::Lambda => "Lambda",
            Service::None => "no service",
        })
    }
}

/// Which control plane an action depends on, for static-stability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ControlPlane {
    /// None: a data-plane call or no AWS call at all.
    None,
    /// The control plane of the step's region.
    Regional,
    /// A global service whose control plane lives in one region.
    Global {
        /// Where that control plane lives.
        region: &'static str,
    },
}

/// How an action behaves in a drill, so that production is never changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillKind {
    /// Runs as in a failover: it only reads, or only touches lifeboat's own
    /// scratch resources.
    AsIs,
    /// Runs on isolated copies named `...-drill-<run>` and tagged
    /// `lifeboat:drill-run=<run>`.
    Isolated,
    /// A different operation with the same effect on an isolated copy.
    Substituted,
    /// Changes nothing; what it would have done is recorded.
    Simulated,
}

/// Facts about one action.
#[derive(Debug, Clone, Serialize)]
pub struct ActionInfo {
    /// Action name as written in runbooks.
    pub name: &'static str,
    /// The AWS service it calls.
    pub service: Service,
    /// The control plane it depends on.
    pub control_plane: ControlPlane,
    /// Whether it changes anything outside lifeboat.
    pub mutates: bool,
    /// Whether its effect can be observed afterwards, so an interrupted
    /// attempt can be re-entered safely (false for `exec` and `notify`).
    pub observable: bool,
    /// IAM actions it needs.
    pub iam: &'static [&'static str],
    /// Drill behaviour.
    pub drill: DrillKind,
    /// What the drill behaviour does, in words.
    pub drill_note: &'static str,
    /// Deadline of a step (all attempts) unless the step sets one.
    #[serde(serialize_with = "secs")]
    pub default_timeout: Duration,
    /// Attempts unless the step sets a retry policy.
    pub default_attempts: u32,
    /// One line saying what it does.
    pub summary: &'static str,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

macro_rules! catalogue {
    ($($variant:ident($with:ty) = $name:literal;)*) => {
        /// Every action a step can name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ActionKind {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        /// A step's `with` block, typed for its action.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum ActionInput {
            $(
                #[doc = concat!("`with` of `", $name, "`")]
                $variant($with),
            )*
        }

        impl ActionKind {
            /// Every action, in catalogue order.
            pub const ALL: &'static [ActionKind] = &[$(ActionKind::$variant),*];

            /// The name written in runbooks.
            pub fn name(self) -> &'static str {
                match self {
                    $(ActionKind::$variant => $name,)*
                }
            }

            /// Decode and check a `with` block for this action.
            pub fn decode_with(self, node: &Node) -> (Option<ActionInput>, Vec<Problem>) {
                match self {
                    $(ActionKind::$variant => {
                        let (value, mut problems) = yaml::decode::<$with>(node);
                        let input = value.map(ActionInput::$variant);
                        if let Some(input) = &input {
                            problems.extend(input.check().into_iter().map(|message| Problem {
                                loc: node.loc,
                                message,
                            }));
                        }
                        (input, problems)
                    })*
                }
            }

            /// JSON Schema of this action's `with` block.
            pub fn with_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match self {
                    $(ActionKind::$variant => generator.subschema_for::<$with>(),)*
                }
            }
        }

        impl ActionInput {
            /// The action this input belongs to.
            pub fn kind(&self) -> ActionKind {
                match self {
                    $(ActionInput::$variant(_) => ActionKind::$variant,)*
                }
            }
        }
    };
}

catalogue! {
    RdsCreateSnapshot(rds::CreateSnapshot) = "rds.create_snapshot";
    RdsCopySnapshot(rds::CopySnapshot) = "rds.copy_snapshot";
    RdsRestoreFromSnapshot(rds::RestoreFromSnapshot) = "rds.restore_from_snapshot";
    RdsRestorePointInTime(rds::RestorePointInTime) = "rds.restore_point_in_time";
    RdsCreateReadReplica(rds::CreateReadReplica) = "rds.create_read_replica";
    RdsPromoteReadReplica(rds::PromoteReadReplica) = "rds.promote_read_replica";
    RdsModifyInstanceClass(rds::ModifyInstanceClass) = "rds.modify_instance_class";
    RdsDeleteInstance(rds::DeleteInstance) = "rds.delete_instance";
    RdsWaitAvailable(rds::WaitAvailable) = "rds.wait_available";
    RdsWaitReplicaLag(rds::WaitReplicaLag) = "rds.wait_replica_lag";
    RdsReplicateAutomatedBackups(rds::ReplicateAutomatedBackups) = "rds.replicate_automated_backups";
    RdsFailoverInstance(rds::FailoverInstance) = "rds.failover_instance";
    RdsFailoverCluster(rds::FailoverCluster) = "rds.failover_cluster";
    RdsSwitchoverGlobalCluster(rds::SwitchoverGlobalCluster) = "rds.switchover_global_cluster";
    RdsFailoverGlobalCluster(rds::FailoverGlobalCluster) = "rds.failover_global_cluster";
    RdsSetServerlessCapacity(rds::SetServerlessCapacity) = "rds.set_serverless_capacity";
    RdsIsolateInstance(rds::IsolateInstance) = "rds.isolate_instance";
    ArcStartZonalShift(arc::StartZonalShift) = "arc.start_zonal_shift";
    ArcCancelZonalShift(arc::CancelZonalShift) = "arc.cancel_zonal_shift";
    Ec2StartInstances(ec2::Instances) = "ec2.start_instances";
    Ec2StopInstances(ec2::Instances) = "ec2.stop_instances";
    Ec2LaunchFromTemplate(ec2::LaunchFromTemplate) = "ec2.launch_from_template";
    Ec2CopyImage(ec2::CopyImage) = "ec2.copy_image";
    Ec2WaitRunning(ec2::WaitRunning) = "ec2.wait_running";
    AutoscalingSetCapacity(autoscaling::SetCapacity) = "autoscaling.set_capacity";
    EcsScaleService(ecs::ScaleService) = "ecs.scale_service";
    LambdaInvoke(lambda::Invoke) = "lambda.invoke";
    Route53UpsertRecords(route53::UpsertRecords) = "route53.upsert_records";
    Route53SwitchFailover(route53::SwitchFailover) = "route53.switch_failover";
    Route53SetWeights(route53::SetWeights) = "route53.set_weights";
    Route53UpdateHealthCheck(route53::UpdateHealthCheck) = "route53.update_health_check";
    S3CheckReplication(s3::CheckReplication) = "s3.check_replication";
    S3NewestObjectAge(s3::NewestObjectAge) = "s3.newest_object_age";
    S3CopyObjects(s3::CopyObjects) = "s3.copy_objects";
    S3VerifyChecksum(s3::VerifyChecksum) = "s3.verify_checksum";
    CloudwatchPutMetricData(cloudwatch::PutMetricData) = "cloudwatch.put_metric_data";
    HttpWaitHealthy(generic::WaitHealthy) = "http.wait_healthy";
    ManualApproval(generic::Approval) = "manual.approval";
    Notify(generic::Notify) = "notify";
    Wait(generic::Wait) = "wait";
    Exec(generic::Exec) = "exec";
}

impl ActionInput {
    /// Cross-field rules the types cannot say (exactly one selector, ...).
    fn check(&self) -> Vec<String> {
        match self {
            ActionInput::RdsCopySnapshot(w) => w.check(),
            ActionInput::RdsRestoreFromSnapshot(w) => w.check(),
            ActionInput::RdsPromoteReadReplica(w) => w.check(),
            ActionInput::RdsModifyInstanceClass(w) => w.check(),
            ActionInput::RdsWaitAvailable(w) => w.check(),
            ActionInput::RdsFailoverCluster(w) => w.check(),
            ActionInput::RdsFailoverGlobalCluster(w) => w.check(),
            ActionInput::RdsSetServerlessCapacity(w) => w.check(),
            ActionInput::RdsIsolateInstance(w) => w.check(),
            ActionInput::ArcStartZonalShift(w) => w.check(),
            ActionInput::ArcCancelZonalShift(w) => w.check(),
            ActionInput::LambdaInvoke(w) => w.check(),
            ActionInput::Ec2StartInstances(w) => w.check(),
            ActionInput::Ec2StopInstances(w) => w.check_stop(),
            ActionInput::Ec2LaunchFromTemplate(w) => w.check(),
            ActionInput::RdsRestorePointInTime(w) => {
                rds::check_placement(&w.alternatives, w.availability_zone.as_deref(), false)
            }
            ActionInput::RdsCreateReadReplica(w) => {
                rds::check_placement(&w.alternatives, w.availability_zone.as_deref(), false)
            }
            ActionInput::Ec2CopyImage(w) => w.check(),
            ActionInput::Ec2WaitRunning(w) => w.check(),
            ActionInput::AutoscalingSetCapacity(w) => w.check(),
            ActionInput::Route53UpsertRecords(w) => w.check(),
            ActionInput::Route53UpdateHealthCheck(w) => w.check(),
            ActionInput::Route53SetWeights(w) => w.check(),
            ActionInput::HttpWaitHealthy(w) => w.check(),
            ActionInput::Exec(w) => w.check(),
            ActionInput::RdsCreateSnapshot(_)
            | ActionInput::RdsDeleteInstance(_)
            | ActionInput::RdsWaitReplicaLag(_)
            | ActionInput::RdsReplicateAutomatedBackups(_)
            | ActionInput::RdsFailoverInstance(_)
            | ActionInput::RdsSwitchoverGlobalCluster(_)
            | ActionInput::EcsScaleService(_)
            | ActionInput::Route53SwitchFailover(_)
            | ActionInput::S3CheckReplication(_)
            | ActionInput::S3NewestObjectAge(_)
            | ActionInput::S3CopyObjects(_)
            | ActionInput::S3VerifyChecksum(_)
            | ActionInput::CloudwatchPutMetricData(_)
            | ActionInput::ManualApproval(_)
            | ActionInput::Notify(_)
            | ActionInput::Wait(_) => Vec::new(),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// What the Route 53 actions that change record sets call.
const ROUTE53_CHANGE: &[&str] = &[
    "route53:ListHostedZonesByName",
    "route53:ListResourceRecordSets",
    "route53:ChangeResourceRecordSets",
    "route53:GetChange",
];

impl ActionKind {
    /// Look an action up by the name written in runbooks.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// The facts about this action.
    pub fn info(self) -> ActionInfo {
        use ControlPlane::{Global, None as NoPlane, Regional};
        use DrillKind::{AsIs, Isolated, Simulated, Substituted};
        let route53 = Global {
            region: "us-east-1",
        };
        // (service, plane, mutates, observable, iam, drill, note, timeout, attempts, summary)
        let (
            service,
            control_plane,
            mutates,
            observable,
            iam,
            drill,
            drill_note,
            timeout,
            attempts,
            summary,
        ): (
            Service,
            ControlPlane,
            bool,
            bool,
            &'static [&'static str],
            DrillKind,
            &'static str,
            Duration,
            u32,
            &'static str,
        ) = match self {
            ActionKind::RdsCreateSnapshot => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBInstances",
                    "rds:DescribeDBSnapshots",
                    "rds:CreateDBSnapshot",
                    "rds:AddTagsToResource",
                ],
                Isolated,
                "the snapshot is named and tagged for the drill and deleted at teardown",
                60 * MINUTE,
                3,
                "Take a manual snapshot of an instance.",
            ),
            ActionKind::RdsCopySnapshot => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBSnapshots",
                    "rds:CopyDBSnapshot",
                    "rds:AddTagsToResource",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
                Isolated,
                "the copy is named and tagged for the drill and deleted at teardown",
                120 * MINUTE,
                3,
                "Copy a snapshot into the step's region from another region.",
            ),
            ActionKind::RdsRestoreFromSnapshot => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBSnapshots",
                    "rds:DescribeDBInstances",
                    "rds:RestoreDBInstanceFromDBSnapshot",
                    "rds:AddTagsToResource",
                ],
                Isolated,
                "restores into an instance named `<id>-drill-<run>` instead",
                60 * MINUTE,
                3,
                "Restore a new instance from a snapshot.",
            ),
            ActionKind::RdsRestorePointInTime => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBInstances",
                    "rds:DescribeDBInstanceAutomatedBackups",
                    "rds:RestoreDBInstanceToPointInTime",
                    "rds:AddTagsToResource",
                ],
                Isolated,
                "restores into an instance named `<id>-drill-<run>` instead",
                60 * MINUTE,
                3,
                "Restore an instance to a point in time.",
            ),
            ActionKind::RdsCreateReadReplica => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBInstances",
                    "rds:CreateDBInstanceReadReplica",
                    "rds:AddTagsToResource",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
                Isolated,
                "creates a replica named `<id>-drill-<run>` instead",
                60 * MINUTE,
                3,
                "Create a (cross-region) read replica.",
            ),
            ActionKind::RdsPromoteReadReplica => (
                Service::Rds,
                Regional,
                true,
                true,
                &["rds:DescribeDBInstances", "rds:PromoteReadReplica"],
                Substituted,
                "restores the replica's newest snapshot (or a fresh one) into `<id>-drill-<run>` and leaves the replica replicating",
                30 * MINUTE,
                3,
                "Promote read replicas to standalone instances.",
            ),
            ActionKind::RdsModifyInstanceClass => (
                Service::Rds,
                Regional,
                true,
                true,
                &["rds:DescribeDBInstances", "rds:ModifyDBInstance"],
                Isolated,
                "modifies the drill copy made by an earlier step; simulated when there is none",
                30 * MINUTE,
                3,
                "Change instances' class (warm-up).",
            ),
            ActionKind::RdsDeleteInstance => (
                Service::Rds,
                Regional,
                true,
                true,
                &["rds:DescribeDBInstances", "rds:DeleteDBInstance"],
                Isolated,
                "deletes only instances tagged for this drill",
                30 * MINUTE,
                3,
                "Delete a scratch instance.",
            ),
            ActionKind::RdsWaitAvailable => (
                Service::Rds,
                Regional,
                false,
                true,
                &["rds:DescribeDBInstances"],
                AsIs,
                "waits for the drill copies of the named instances",
                60 * MINUTE,
                1,
                "Wait until instances are available.",
            ),
            ActionKind::RdsWaitReplicaLag => (
                Service::Rds,
                Regional,
                false,
                true,
                &["rds:DescribeDBInstances", "cloudwatch:GetMetricStatistics"],
                AsIs,
                "read-only",
                60 * MINUTE,
                1,
                "Wait until a replica's lag (CloudWatch ReplicaLag) is at most `max_lag`.",
            ),
            ActionKind::RdsReplicateAutomatedBackups => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBInstances",
                    "rds:DescribeDBInstanceAutomatedBackups",
                    "rds:StartDBInstanceAutomatedBackupsReplication",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
                Simulated,
                "checks that the source keeps automated backups that could replicate and says whether they do; starts no replication",
                15 * MINUTE,
                3,
                "Replicate an instance's automated backups into the step's region (point-in-time restore there).",
            ),
            ActionKind::RdsFailoverInstance => (
                Service::Rds,
                Regional,
                true,
                true,
                &["rds:DescribeDBInstances", "rds:RebootDBInstance"],
                Simulated,
                "checks that the instance is Multi-AZ and available with its standby outside the zone, and says where the primary would go; reboots nothing",
                30 * MINUTE,
                3,
                "Fail a Multi-AZ instance over to its standby, out of a zone (reboot with failover).",
            ),
            ActionKind::RdsFailoverCluster => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeDBClusters",
                    "rds:DescribeDBInstances",
                    "rds:FailoverDBCluster",
                ],
                Simulated,
                "checks that the reader that would become writer is available, and says which; fails nothing over",
                30 * MINUTE,
                3,
                "Make a chosen reader (or the best one outside a zone) a DB cluster's writer.",
            ),
            ActionKind::RdsSwitchoverGlobalCluster => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeGlobalClusters",
                    "rds:DescribeDBClusters",
                    "rds:SwitchoverGlobalCluster",
                ],
                Simulated,
                "checks that the target is a secondary of the global database and says which cluster would become the primary; switches nothing",
                60 * MINUTE,
                3,
                "Move an Aurora global database's primary to a secondary cluster, without data loss (planned).",
            ),
            ActionKind::RdsFailoverGlobalCluster => (
                Service::Rds,
                Regional,
                true,
                true,
                &[
                    "rds:DescribeGlobalClusters",
                    "rds:DescribeDBClusters",
                    "rds:FailoverGlobalCluster",
                ],
                Simulated,
                "checks that the target is a secondary of the global database and says which cluster would become the primary; fails nothing over",
                60 * MINUTE,
                3,
                "Fail an Aurora global database over to a secondary cluster, allowing data loss (the primary region lost).",
            ),
            ActionKind::RdsSetServerlessCapacity => (
                Service::Rds,
                Regional,
                true,
                true,
                &["rds:DescribeDBClusters", "rds:ModifyDBCluster"],
                Simulated,
                "says the cluster's capacity range now and what it would be set to; changes nothing",
                30 * MINUTE,
                3,
                "Set an Aurora Serverless v2 cluster's capacity range (warm-up).",
            ),
            ActionKind::RdsIsolateInstance => (
                Service::Rds,
                Regional,
                true,
                true,
                &["rds:DescribeDBInstances", "rds:ModifyDBInstance"],
                Simulated,
                "says which security groups the instance has now and which it would be given; changes nothing",
                30 * MINUTE,
                3,
                "Put a DB instance behind quarantine security groups only (fencing an old primary).",
            ),
            ActionKind::ArcStartZonalShift => (
                Service::ArcZonalShift,
                Regional,
                true,
                true,
                &[
                    "ec2:DescribeAvailabilityZones",
                    "arc-zonal-shift:GetManagedResource",
                    "arc-zonal-shift:ListZonalShifts",
                    "arc-zonal-shift:StartZonalShift",
                ],
                Simulated,
                "resolves the zone, checks that ARC manages each resource and that no other shift holds it, and says what it would start; shifts nothing",
                10 * MINUTE,
                3,
                "Move managed resources' traffic away from an Availability Zone until an expiry (ARC zonal shift).",
            ),
            ActionKind::ArcCancelZonalShift => (
                Service::ArcZonalShift,
                Regional,
                true,
                true,
                &[
                    "ec2:DescribeAvailabilityZones",
                    "arc-zonal-shift:ListZonalShifts",
                    "arc-zonal-shift:CancelZonalShift",
                ],
                Simulated,
                "says which of lifeboat's active shifts it would cancel; cancels nothing",
                10 * MINUTE,
                3,
                "Cancel the zonal shifts lifeboat started away from a zone.",
            ),
            ActionKind::EcsScaleService => (
                Service::Ecs,
                Regional,
                true,
                true,
                &["ecs:DescribeServices", "ecs:UpdateService"],
                Substituted,
                "scales the runbook's `drill_service` instead; without one, checks that the service exists and says what it would set",
                20 * MINUTE,
                3,
                "Set an ECS service's desired count and wait until it is steady.",
            ),
            ActionKind::LambdaInvoke => (
                Service::Lambda,
                Regional,
                true,
                false,
                &["lambda:InvokeFunction"],
                Substituted,
                "invokes the runbook's `drill_function` instead; without one, invokes nothing and says so",
                15 * MINUTE,
                1,
                "Invoke a Lambda function with a payload and wait for its result (its function error fails the step).",
            ),
            ActionKind::Ec2StartInstances => (
                Service::Ec2,
                Regional,
                true,
                true,
                &[
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:StartInstances",
                ],
                Substituted,
                "launches a drill copy of each standby instance (its AMI, type, security groups, instance profile when `drill.instance_roles` names its role, user data, key pair, volumes and tags; in `drill.subnets` when given), named and tagged for the drill, instead of starting the standby ones",
                15 * MINUTE,
                3,
                "Start instances by id or tag.",
            ),
            ActionKind::Ec2StopInstances => (
                Service::Ec2,
                Regional,
                true,
                true,
                &[
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:StopInstances",
                ],
                Simulated,
                "stops only drill instances; production instances are left running and the stop is recorded",
                15 * MINUTE,
                3,
                "Stop instances by id or tag.",
            ),
            ActionKind::Ec2LaunchFromTemplate => (
                Service::Ec2,
                Regional,
                true,
                true,
                &[
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:RunInstances",
                    "ec2:CreateTags",
                ],
                Isolated,
                "launches instances named and tagged for the drill",
                15 * MINUTE,
                3,
                "Launch instances from a launch template.",
            ),
            ActionKind::Ec2CopyImage => (
                Service::Ec2,
                Regional,
                true,
                true,
                &["ec2:DescribeImages", "ec2:CopyImage", "ec2:CreateTags"],
                Isolated,
                "the copy is named and tagged for the drill and deregistered at teardown",
                60 * MINUTE,
                3,
                "Copy an AMI into the step's region.",
            ),
            ActionKind::Ec2WaitRunning => (
                Service::Ec2,
                Regional,
                false,
                true,
                &["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"],
                AsIs,
                "waits for the drill instances",
                15 * MINUTE,
                1,
                "Wait until instances run (and pass status checks).",
            ),
            ActionKind::AutoscalingSetCapacity => (
                Service::Autoscaling,
                Regional,
                true,
                true,
                &[
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:UpdateAutoScalingGroup",
                ],
                Substituted,
                "creates a drill group from the group's launch template at the target capacity (in `drill.subnets` when given) and waits for it as the failover would; the group is not resized, and the drill group is deleted at teardown",
                20 * MINUTE,
                3,
                "Set an Auto Scaling group's capacity and wait for InService instances.",
            ),
            ActionKind::Route53UpsertRecords => (
                Service::Route53,
                route53,
                true,
                true,
                ROUTE53_CHANGE,
                Isolated,
                "writes the records under `drill-<run>.<zone>` instead of the live names",
                10 * MINUTE,
                3,
                "Upsert records, given or by rewrite rule, then wait until INSYNC.",
            ),
            ActionKind::Route53SwitchFailover => (
                Service::Route53,
                route53,
                true,
                true,
                ROUTE53_CHANGE,
                Isolated,
                "writes a copy of the failover pair under `drill-<run>.<zone>` and switches that",
                10 * MINUTE,
                3,
                "Make one record of a failover pair the PRIMARY.",
            ),
            ActionKind::Route53SetWeights => (
                Service::Route53,
                route53,
                true,
                true,
                ROUTE53_CHANGE,
                Isolated,
                "writes a copy of the weighted sets under `drill-<run>.<zone>` with the new weights; the live sets keep theirs",
                10 * MINUTE,
                3,
                "Set the weights of a name's weighted record sets, then wait until INSYNC.",
            ),
            ActionKind::Route53UpdateHealthCheck => (
                Service::Route53,
                route53,
                true,
                true,
                &["route53:GetHealthCheck", "route53:UpdateHealthCheck"],
                Simulated,
                "reads the health check and records the change it would make",
                5 * MINUTE,
                3,
                "Invert or disable a health check.",
            ),
            ActionKind::S3CheckReplication => (
                Service::S3,
                Regional,
                false,
                true,
                &[
                    "s3:GetReplicationConfiguration",
                    "s3:ListBucket",
                    "s3:GetObject",
                ],
                AsIs,
                "read-only",
                5 * MINUTE,
                3,
                "Check replication is configured and sampled objects replicated.",
            ),
            ActionKind::S3NewestObjectAge => (
                Service::S3,
                Regional,
                false,
                true,
                &["s3:ListBucket"],
                AsIs,
                "read-only",
                5 * MINUTE,
                3,
                "Check the newest object under a prefix is young enough.",
            ),
            ActionKind::S3CopyObjects => (
                Service::S3,
                Regional,
                true,
                true,
                &["s3:ListBucket", "s3:GetObject", "s3:PutObject"],
                Isolated,
                "copies under the prefix `lifeboat-drill-<run>/` of the destination, removed at teardown",
                60 * MINUTE,
                3,
                "Copy objects between buckets.",
            ),
            ActionKind::S3VerifyChecksum => (
                Service::S3,
                Regional,
                false,
                true,
                &["s3:GetObject"],
                AsIs,
                "read-only",
                10 * MINUTE,
                3,
                "Read an object back and verify its checksum.",
            ),
            ActionKind::CloudwatchPutMetricData => (
                Service::Cloudwatch,
                NoPlane,
                true,
                true,
                &[
                    "cloudwatch:PutMetricData",
                    "cloudwatch:GetMetricStatistics",
                    "cloudwatch:DescribeAlarms",
                    "route53:GetHealthCheck",
                    "route53:ListHealthChecks",
                    "route53:GetHealthCheckStatus",
                ],
                Isolated,
                "publishes with an extra dimension `DrillRun=<run>`, which no production alarm watches (so `confirm` is not waited for)",
                10 * MINUTE,
                3,
                "Publish a metric datum (data-plane traffic switch).",
            ),
            ActionKind::HttpWaitHealthy => (
                Service::None,
                NoPlane,
                false,
                true,
                &[],
                AsIs,
                "polls `drill_url` (the drill stack) instead of `url`; without one it polls nothing and the drill measures no RTO",
                10 * MINUTE,
                1,
                "Poll a URL until it answers as expected.",
            ),
            ActionKind::ManualApproval => (
                Service::None,
                NoPlane,
                false,
                true,
                &[],
                AsIs,
                "asks for approval as in a failover",
                60 * MINUTE,
                1,
                "Pause until a human approves.",
            ),
            ActionKind::Notify => (
                Service::None,
                NoPlane,
                true,
                false,
                &[],
                AsIs,
                "sends the message prefixed with `[DRILL]`",
                MINUTE,
                3,
                "POST a message to a webhook.",
            ),
            ActionKind::Wait => (
                Service::None,
                NoPlane,
                false,
                true,
                &[],
                AsIs,
                "waits as in a failover",
                24 * 60 * MINUTE,
                1,
                "Wait for a while.",
            ),
            ActionKind::Exec => (
                Service::None,
                NoPlane,
                true,
                false,
                &[],
                AsIs,
                "runs the command with `LIFEBOAT_MODE=drill` in its environment; the command must honour it",
                15 * MINUTE,
                1,
                "Run a command (no shell).",
            ),
        };
        ActionInfo {
            name: self.name(),
            service,
            control_plane,
            mutates,
            observable,
            iam,
            drill,
            drill_note,
            default_timeout: timeout,
            default_attempts: attempts,
            summary,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ActionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ActionKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ActionKind::from_name(&name).ok_or_else(|| {
            let mut message = format!("unknown action `{name}`");
            match crate::suggest::closest(&name, ActionKind::ALL.iter().map(|a| a.name())) {
                Some(best) => message.push_str(&format!(", did you mean `{best}`?")),
                None => message.push_str("; `lifeboat actions` lists them"),
            }
            serde::de::Error::custom(message)
        })
    }
}

impl schemars::JsonSchema for ActionKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Action".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = ActionKind::ALL.iter().map(|a| a.name()).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "The action the step takes.",
            "enum": names,
        })
    }
}

/// Problems when not exactly one of the named selectors is set.
pub(crate) fn exactly_one(options: &[(&str, bool)]) -> Vec<String> {
    let set: Vec<&str> = options
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    let names = options
        .iter()
        .map(|(n, _)| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match set.len() {
        1 => Vec::new(),
        0 => vec![format!("set one of {names}")],
        _ => vec![format!(
            "set only one of {names}, found {}",
            set.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_name_is_unique_and_round_trips() {
        let mut names: Vec<&str> = ActionKind::ALL.iter().map(|a| a.name()).collect();
        for a in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(a.name()), Some(*a));
            assert_eq!(a.info().name, a.name());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ActionKind::ALL.len());
    }

    #[test]
    fn aws_actions_declare_iam_and_generic_ones_none() {
        for a in ActionKind::ALL {
            let info = a.info();
            assert_eq!(
                info.service == Service::None,
                info.iam.is_empty(),
                "{}",
                a.name()
            );
            assert!(info.default_attempts >= 1);
        }
    }

    #[test]
    fn with_block_checks_cross_field_rules() {
        let node = crate::yaml::parse("tags: {Role: app}\ninstance_ids: [i-1]\n").unwrap();
        let (_, problems) = ActionKind::Ec2StartInstances.decode_with(&node);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("set only one of"),
            "{problems:?}"
        );
    }
}
