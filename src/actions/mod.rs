//! The actions this build executes, behind the engine's [`Actions`] trait.
//!
//! One file per service, each action observing before it acts and waiting,
//! within the step's deadline, until its effect is visible. Generic actions
//! (no AWS service) live in `generic.rs`; `manual.approval` is handled by
//! the engine itself. AWS actions need clients: a registry built without
//! them supports only the generic actions.

mod arc;
mod autoscaling;
pub(crate) mod aws_error;
mod capacity;
pub(crate) mod cloudwatch;
pub mod drill;
pub(crate) mod ec2;
mod ecs;
mod generic;
mod lambda;
pub mod preflight;
mod presign;
pub(crate) mod rds;
pub mod resolve;
pub(crate) mod route53;
pub(crate) mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::aws::AwsClients;
use crate::catalogue::{ActionInput, ActionKind, Service};
use crate::engine::{
    ActionError, Actions, BoxFuture, FailureKind, Outputs, RecoveryReading, StepContext,
};
use crate::runbook::{Mode, RecoveryPoint, Runbook};

/// Every action implementation of this build.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    aws: Option<AwsClients>,
    /// Clients acting as an assumed role, by role, external id and session
    /// name, with the caller identity STS gave them.
    roles: Arc<tokio::sync::Mutex<BTreeMap<String, (AwsClients, Identity)>>>,
}

/// Who an assumed role's calls act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The AWS account.
    pub account: String,
    /// The principal's ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub arn: String,
}

impl Registry {
    /// Generic actions only.
    pub fn new() -> Registry {
        Registry {
            aws: None,
            roles: Default::default(),
        }
    }

    /// Generic and AWS actions, through these clients.
    pub fn with_aws(aws: AwsClients) -> Registry {
        Registry {
            aws: Some(aws),
            roles: Default::default(),
        }
    }

    /// The clients a step acts through: its role's when it names one
    /// (assumed once per role and session, and proven with
    /// `GetCallerIdentity`, so a role that cannot be assumed fails the step
    /// naming the role and why), else the caller's own.
    pub async fn clients_for(
        &self,
        ctx: &StepContext,
        action: ActionKind,
    ) -> Result<(AwsClients, Option<Identity>), ActionError> {
        let base = self.clients(action)?;
        let Some(role) = &ctx.assume_role else {
            return Ok((base.clone(), None));
        };
        let session = role
            .session_name
            .clone()
            .unwrap_or_else(|| session_name(&ctx.run_id));
        let key = format!(
            "{}\n{}\n{session}",
            role.role_arn,
            role.external_id.as_deref().unwrap_or_default()
        );
        let mut roles = self.roles.lock().await;
        if let Some((clients, who)) = roles.get(&key) {
            return Ok((clients.clone(), Some(who.clone())));
        }
        let clients = base
            .assuming(&role.role_arn, role.external_id.as_deref(), &session)
            .await;
        let who = clients
            .sts(crate::aws::ROUTE53_REGION)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                ActionError::permanent(format!(
                    "cannot assume role {} (session {session}): {}",
                    role.role_arn,
                    crate::actions::aws_error::causes(&e)
                ))
            })?;
        let who = Identity {
            account: who.account().unwrap_or_default().to_string(),
            arn: who.arn().unwrap_or_default().to_string(),
        };
        roles.insert(key, (clients.clone(), who.clone()));
        Ok((clients, Some(who)))
    }

    /// The AWS clients, if any.
    pub fn aws(&self) -> Option<&AwsClients> {
        self.aws.as_ref()
    }

    fn clients(&self, action: ActionKind) -> Result<&AwsClients, ActionError> {
        self.aws.as_ref().ok_or_else(|| {
            ActionError::permanent(format!(
                "`{action}` needs AWS clients, and none were configured"
            ))
        })
    }
}

/// One attempt of an AWS action (no drill behaviour), through `aws`.
async fn run_aws(
    aws: &AwsClients,
    ctx: &StepContext,
    input: &ActionInput,
) -> Result<Outputs, ActionError> {
    match input {
        ActionInput::RdsCreateSnapshot(w) => rds::create_snapshot(aws, ctx, w).await,
        ActionInput::RdsCopySnapshot(w) => rds::copy_snapshot(aws, ctx, w).await,
        ActionInput::RdsRestoreFromSnapshot(w) => rds::restore_from_snapshot(aws, ctx, w).await,
        ActionInput::RdsRestorePointInTime(w) => rds::restore_point_in_time(aws, ctx, w).await,
        ActionInput::RdsCreateReadReplica(w) => rds::create_read_replica(aws, ctx, w).await,
        ActionInput::RdsPromoteReadReplica(w) => rds::promote(aws, ctx, w).await,
        ActionInput::RdsModifyInstanceClass(w) => rds::modify_instance_class(aws, ctx, w).await,
        ActionInput::RdsDeleteInstance(w) => rds::delete_instance(aws, ctx, w).await,
        ActionInput::RdsWaitAvailable(w) => rds::wait(aws, ctx, w).await,
        ActionInput::RdsWaitReplicaLag(w) => rds::wait_replica_lag(aws, ctx, w).await,
        ActionInput::RdsReplicateAutomatedBackups(w) => {
            rds::replicate_automated_backups(aws, ctx, w).await
        }
        ActionInput::RdsFailoverInstance(w) => rds::failover_instance(aws, ctx, w).await,
        ActionInput::RdsFailoverCluster(w) => rds::failover_cluster(aws, ctx, w).await,
        ActionInput::RdsIsolateInstance(w) => rds::isolate(aws, ctx, w).await,
        ActionInput::RdsSetServerlessCapacity(w) => rds::set_serverless_capacity(aws, ctx, w).await,
        ActionInput::RdsSwitchoverGlobalCluster(w) => {
            rds::move_primary(
                aws,
                ctx,
                &w.global_cluster,
                &w.target_cluster,
                rds::Move::Switchover,
            )
            .await
        }
        ActionInput::RdsFailoverGlobalCluster(w) => {
            rds::move_primary(
                aws,
                ctx,
                &w.global_cluster,
                &w.target_cluster,
                rds::Move::Failover,
            )
            .await
        }
        ActionInput::ArcStartZonalShift(w) => arc::start(aws, ctx, w).await,
        ActionInput::ArcCancelZonalShift(w) => arc::cancel(aws, ctx, w).await,
        ActionInput::Ec2StartInstances(w) => {
            ec2::transition(aws, ctx, w, ec2::Direction::Start).await
        }
        ActionInput::Ec2StopInstances(w) => {
            ec2::transition(aws, ctx, w, ec2::Direction::Stop).await
        }
        ActionInput::Ec2WaitRunning(w) => ec2::wait_running(aws, ctx, w).await,
        ActionInput::Ec2LaunchFromTemplate(w) => ec2::launch_from_template(aws, ctx, w).await,
        ActionInput::Ec2CopyImage(w) => ec2::copy_image(aws, ctx, w).await,
        ActionInput::AutoscalingSetCapacity(w) => autoscaling::set_capacity(aws, ctx, w).await,
        ActionInput::EcsScaleService(w) => ecs::scale_service(aws, ctx, w).await,
        ActionInput::LambdaInvoke(w) => lambda::invoke(aws, ctx, w).await,
        ActionInput::Route53UpsertRecords(w) => route53::upsert(aws, ctx, w).await,
        ActionInput::Route53SwitchFailover(w) => route53::switch_failover(aws, ctx, w).await,
        ActionInput::Route53SetWeights(w) => route53::set_weights(aws, ctx, w).await,
        ActionInput::Route53UpdateHealthCheck(w) => route53::update_health_check(aws, w).await,
        ActionInput::CloudwatchPutMetricData(w) => cloudwatch::put(aws, ctx, w).await,
        ActionInput::S3NewestObjectAge(w) => s3::newest_object_age(aws, ctx, w).await,
        ActionInput::S3CheckReplication(w) => s3::check_replication(aws, ctx, w).await,
        ActionInput::S3CopyObjects(w) => s3::copy_objects(aws, ctx, w).await,
        ActionInput::S3VerifyChecksum(w) => s3::verify_checksum(aws, ctx, w).await,
        // Not AWS actions: `Registry::run` runs them before it needs
        // clients, and the engine handles approvals itself.
        ActionInput::HttpWaitHealthy(_)
        | ActionInput::ManualApproval(_)
        | ActionInput::Notify(_)
        | ActionInput::Wait(_)
        | ActionInput::Exec(_) => Err(ActionError::permanent(format!(
            "`{}` is not an AWS action",
            input.kind()
        ))),
    }
}

/// The STS session name of a run: `lifeboat-<run>`, in the characters and
/// length STS allows (`[\w+=,.@-]`, 2 to 64).
fn session_name(run_id: &str) -> String {
    let mut name: String = format!("lifeboat-{run_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// One principal a run acts as, and the steps acting as it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    /// The role assumed; `None`: the caller's own credentials.
    pub role: Option<String>,
    /// Who STS says that is, or why it could not tell (a role that cannot
    /// be assumed, credentials that do not work).
    pub identity: Result<Identity, String>,
    /// The steps, by id, in runbook order.
    pub steps: Vec<String>,
}

impl Acting {
    /// One line for a person: who, in which account, for which steps.
    pub fn describe(&self) -> String {
        let steps = self.steps.join(", ");
        match (&self.role, &self.identity) {
            (None, Ok(who)) => format!("{} (account {}): {steps}", who.arn, who.account),
            (Some(role), Ok(who)) => format!(
                "role {role} as {} (account {}): {steps}",
                who.arn, who.account
            ),
            (None, Err(e)) => format!("the caller's credentials ({e}): {steps}"),
            (Some(role), Err(e)) => format!("role {role} ({e}): {steps}"),
        }
    }
}

impl Registry {
    /// Who the AWS steps of `runbook` in `mode` act as: the caller's own
    /// credentials and each role the steps assume, each with the identity
    /// STS reports (`GetCallerIdentity`, after assuming the role as the
    /// run `run_id` would) and its steps.
    pub async fn principals(&self, runbook: &Runbook, mode: Mode, run_id: &str) -> Vec<Acting> {
        let mut groups: Vec<(Option<crate::runbook::AssumeRole>, Vec<String>)> = Vec::new();
        for step in runbook
            .steps
            .iter()
            .filter(|s| s.runs_in(mode) && s.action.info().service != Service::None)
        {
            match groups.iter_mut().find(|(r, _)| *r == step.assume_role) {
                Some((_, steps)) => steps.push(step.id.clone()),
                None => groups.push((step.assume_role.clone(), vec![step.id.clone()])),
            }
        }
        let mut out = Vec::new();
        for (role, steps) in groups {
            let identity = match &role {
                None => match self.aws.as_ref() {
                    None => Err("no AWS clients configured".to_string()),
                    Some(aws) => aws
                        .sts(crate::aws::ROUTE53_REGION)
                        .get_caller_identity()
                        .send()
                        .await
                        .map(|who| Identity {
                            account: who.account().unwrap_or_default().to_string(),
                            arn: who.arn().unwrap_or_default().to_string(),
                        })
                        .map_err(|e| {
                            format!(
                                "GetCallerIdentity: {}",
                                crate::actions::aws_error::causes(&e)
                            )
                        }),
                },
                Some(r) => {
                    let ctx = StepContext {
                        run_id: run_id.to_string(),
                        step_id: steps[0].clone(),
                        mode,
                        region: None,
                        attempt: 1,
                        resumed: false,
                        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
                        assume_role: Some(r.clone()),
                        placement: Default::default(),
                        expected: None,
                    };
                    self.clients_for(&ctx, ActionKind::RdsWaitAvailable)
                        .await
                        .map_err(|e| e.message)
                        .and_then(|(_, who)| who.ok_or_else(|| "no identity".to_string()))
                }
            };
            out.push(Acting {
                role: role.map(|r| r.role_arn),
                identity,
                steps,
            });
        }
        out
    }
}

/// Whether any action of `runbook` calls AWS.
pub fn uses_aws(runbook: &Runbook) -> bool {
    runbook.actions().any(|a| a.info().service != Service::None)
}

impl Actions for Registry {
    fn supports(&self, action: ActionKind) -> bool {
        // `manual.approval` is the engine's own; AWS actions need clients.
        action != ActionKind::ManualApproval
            && (action.info().service == Service::None || self.aws.is_some())
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
        input: &'a ActionInput,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            match input {
                ActionInput::Wait(w) => return generic::wait(w).await,
                ActionInput::Exec(e) => return generic::exec(ctx, e).await,
                ActionInput::HttpWaitHealthy(w) if ctx.mode == Mode::Drill => {
                    return drill::wait_healthy(ctx, w).await;
                }
                ActionInput::HttpWaitHealthy(w) => return generic::wait_healthy(ctx, w).await,
                ActionInput::Notify(n) => return generic::notify(ctx, n).await,
                _ => {}
            }
            let (clients, acting_as) = self.clients_for(ctx, input.kind()).await?;
            let aws = &clients;
            let outputs = if ctx.mode == Mode::Drill
                && let Some(done) = drill::run(aws, ctx, input).await
            {
                done
            } else {
                run_aws(aws, ctx, input).await
            };
            // Who acted is part of what the step did: the journal keeps it.
            outputs.map(|mut out| {
                if let Some(who) = acting_as {
                    out.insert("account".to_string(), serde_json::json!(who.account));
                    out.insert("acting_as".to_string(), serde_json::json!(who.arn));
                }
                out
            })
        })
    }

    fn read_recovery_point<'a>(
        &'a self,
        ctx: &'a StepContext,
        region: Option<&'a str>,
        source: &'a RecoveryPoint,
        incident_start: jiff::Timestamp,
    ) -> BoxFuture<'a, RecoveryReading> {
        Box::pin(async move {
            // In the account the step acts in: its replica, its bucket.
            let kind = match source {
                RecoveryPoint::S3NewestObject { .. } => ActionKind::S3NewestObjectAge,
                _ => ActionKind::RdsWaitReplicaLag,
            };
            let aws = match self.clients_for(ctx, kind).await {
                Ok((aws, _)) => aws,
                Err(e) => return RecoveryReading::unmeasurable(e.message),
            };
            let aws = &aws;
            match source {
                RecoveryPoint::RdsReplicaLag {
                    db_instance,
                    region: own,
                } => {
                    let Some(region) = own.as_deref().or(region) else {
                        return RecoveryReading::unmeasurable(
                            "the replica's region is not known (set `recovery_point.region` or `regions.to`)",
                        );
                    };
                    cloudwatch::replica_point(aws, region, db_instance, incident_start).await
                }
                RecoveryPoint::AuroraGlobalLag {
                    db_cluster,
                    region: own,
                } => {
                    let Some(region) = own.as_deref().or(region) else {
                        return RecoveryReading::unmeasurable(
                            "the secondary cluster's region is not known (set `recovery_point.region` or `regions.to`)",
                        );
                    };
                    cloudwatch::global_point(aws, region, db_cluster, incident_start).await
                }
                RecoveryPoint::S3NewestObject {
                    source_bucket,
                    dr_bucket,
                    prefix,
                } => {
                    let Some(region) = region else {
                        return RecoveryReading::unmeasurable(
                            "the DR region is not known (set `regions.to`)",
                        );
                    };
                    s3::newest_replicated(aws, region, source_bucket, dr_bucket, prefix).await
                }
                RecoveryPoint::RdsSnapshot { step } => RecoveryReading::unmeasurable(format!(
                    "read from step `{step}`'s outputs after it restores, not before"
                )),
            }
        })
    }

    fn describe(&self, ctx: &StepContext, input: &ActionInput) -> Vec<String> {
        match input {
            ActionInput::Wait(w) => generic::describe_wait(w),
            ActionInput::CloudwatchPutMetricData(w) => vec![format!(
                "cloudwatch:PutMetricData {}/{} = {} in {}",
                w.namespace,
                w.metric,
                w.value,
                ctx.region.as_deref().unwrap_or("?")
            )],
            ActionInput::Exec(e) => generic::describe_exec(ctx, e),
            ActionInput::HttpWaitHealthy(w) => vec![format!(
                "GET {} every {} until it answers {}",
                w.url, w.interval, w.status
            )],
            ActionInput::Notify(_) => vec!["POST the message to the webhook".to_string()],
            ActionInput::RdsPromoteReadReplica(_) => vec![
                "rds:DescribeDBInstances of the selected replicas".to_string(),
                "rds:PromoteReadReplica on those not promoted yet".to_string(),
                "rds:DescribeDBInstances until all are available".to_string(),
            ],
            ActionInput::RdsWaitAvailable(_) => {
                vec!["rds:DescribeDBInstances until available".to_string()]
            }
            ActionInput::EcsScaleService(w) => vec![
                format!(
                    "ecs:DescribeServices {} in cluster {}",
                    w.service, w.cluster
                ),
                format!(
                    "ecs:UpdateService desiredCount={} unless it is so already",
                    w.desired
                ),
                if w.wait_steady {
                    "ecs:DescribeServices until one deployment runs every desired task".to_string()
                } else {
                    "no wait".to_string()
                },
            ],
            ActionInput::LambdaInvoke(w) => vec![format!(
                "lambda:Invoke {}{} (RequestResponse, its log tail asked for), once: no SDK retry; its function error fails the step",
                w.function,
                w.qualifier
                    .as_deref()
                    .map(|q| format!(":{q}"))
                    .unwrap_or_default()
            )],
            ActionInput::ArcStartZonalShift(w) => vec![
                format!(
                    "ec2:DescribeAvailabilityZones {} in {} (ARC names zones by ID)",
                    w.away_from,
                    ctx.region.as_deref().unwrap_or("?")
                ),
                format!(
                    "arc-zonal-shift:ListZonalShifts (ACTIVE) of {}",
                    w.resources.join(", ")
                ),
                format!(
                    "arc-zonal-shift:StartZonalShift away from it for {} where none is active",
                    w.expires_in
                ),
            ],
            ActionInput::ArcCancelZonalShift(w) => vec![
                format!(
                    "ec2:DescribeAvailabilityZones {} and arc-zonal-shift:ListZonalShifts (ACTIVE) of {}",
                    w.away_from,
                    w.resources.join(", ")
                ),
                "arc-zonal-shift:CancelZonalShift of each shift of lifeboat's away from the zone"
                    .to_string(),
            ],
            ActionInput::RdsFailoverInstance(w) => vec![
                format!("rds:DescribeDBInstances {}", w.db_instance),
                format!(
                    "rds:RebootDBInstance {} with ForceFailover while its primary is in {}",
                    w.db_instance, w.from_zone
                ),
                format!(
                    "rds:DescribeDBInstances until available outside {}",
                    w.from_zone
                ),
            ],
            ActionInput::RdsFailoverCluster(w) => vec![
                format!(
                    "rds:DescribeDBClusters {} and DescribeDBInstances of its members",
                    w.db_cluster
                ),
                match (&w.target_instance, &w.from_zone) {
                    (Some(target), _) => {
                        format!("rds:FailoverDBCluster to {target} unless it is the writer already")
                    }
                    (None, zone) => format!(
                        "rds:FailoverDBCluster to the first reader outside {} while the writer is in it",
                        zone.as_deref().unwrap_or("?")
                    ),
                },
                "rds:DescribeDBClusters until available with the new writer".to_string(),
            ],
            ActionInput::Route53UpsertRecords(w) => route53::describe(w),
            ActionInput::Route53SetWeights(w) => vec![
                format!(
                    "route53:ListHostedZonesByName {} and ListResourceRecordSets",
                    w.zone
                ),
                format!(
                    "route53:ChangeResourceRecordSets UPSERT of the weighted {} {} sets whose weight differs from {}",
                    w.record_type,
                    w.name,
                    w.weights
                        .iter()
                        .map(|(id, weight)| format!("{id}={weight}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "route53:GetChange until INSYNC".to_string(),
            ],
            ActionInput::Ec2StartInstances(w) => ec2::describe(ec2::Direction::Start, ctx, w),
            ActionInput::Ec2StopInstances(w) => ec2::describe(ec2::Direction::Stop, ctx, w),
            ActionInput::Ec2WaitRunning(w) => vec![format!(
                "ec2:DescribeInstances{} until running",
                if w.status_ok {
                    " and ec2:DescribeInstanceStatus"
                } else {
                    ""
                }
            )],
            other => {
                let info = other.kind().info();
                vec![format!(
                    "{} in {}: {} (calls {})",
                    other.kind(),
                    ctx.region.as_deref().unwrap_or("?"),
                    info.summary,
                    info.iam.join(", ")
                )]
            }
        }
    }
}

/// What a read-only preflight found about one step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Readiness {
    /// It could run now; what was found.
    Ready(String),
    /// It would fail now, and why.
    WouldFail(String),
    /// Cannot be told before the run (it depends on an earlier step's
    /// outputs or effects), and why.
    Unchecked(String),
}

impl Readiness {
    /// What a read-only look found: ready with what it saw, or, when it
    /// failed for good (a missing resource, a refusal), would-fail with
    /// why. A retryable error (throttling, a timeout) is no verdict.
    fn judge(found: Result<String, ActionError>) -> Result<Readiness, ActionError> {
        match found {
            Ok(found) => Ok(Readiness::Ready(found)),
            Err(e) if e.kind == FailureKind::Permanent => Ok(Readiness::WouldFail(e.message)),
            Err(e) => Err(e),
        }
    }

    /// A resource the action needs is missing: it would fail, unless an
    /// earlier step of the run (one of `upstream`) is of a kind in
    /// `creators`, which may create it.
    pub fn missing(what: String, upstream: &[ActionKind], creators: &[ActionKind]) -> Readiness {
        match upstream.iter().find(|a| creators.contains(a)) {
            Some(creator) => Readiness::Unchecked(format!(
                "{what} now; an earlier `{creator}` step may create it"
            )),
            None => Readiness::WouldFail(what),
        }
    }
}

impl Registry {
    /// Whether `input` could run now, found with read-only calls only.
    /// `upstream` names the actions of the steps that run before this one.
    pub async fn preflight(
        &self,
        ctx: &StepContext,
        input: &ActionInput,
        upstream: &[ActionKind],
    ) -> Readiness {
        let kind = input.kind();
        let mut acting_as = None;
        let found = match kind.info().service {
            Service::None => return generic::preflight(ctx, input),
            _ => match self.clients_for(ctx, kind).await {
                Err(e) => Err(e),
                Ok((ref aws, ref who)) => {
                    acting_as = who.clone();
                    match kind.info().service {
                        Service::Rds => rds::preflight(aws, ctx, input, upstream).await,
                        Service::Ec2 => ec2::preflight(aws, ctx, input, upstream).await,
                        Service::Route53 => route53::preflight(aws, input).await,
                        Service::S3 => s3::preflight(aws, ctx, input).await,
                        Service::Cloudwatch => match input {
                            ActionInput::CloudwatchPutMetricData(w) => {
                                cloudwatch::preflight(aws, ctx, w).await
                            }
                            _ => Ok(Readiness::Unchecked(String::new())),
                        },
                        Service::Ecs => match input {
                            ActionInput::EcsScaleService(w) => {
                                Readiness::judge(ecs::would_scale(aws, ctx, w).await)
                            }
                            _ => Ok(Readiness::Unchecked(String::new())),
                        },
                        Service::ArcZonalShift => match input {
                            ActionInput::ArcStartZonalShift(w) => {
                                Readiness::judge(arc::would_start(aws, ctx, w).await)
                            }
                            ActionInput::ArcCancelZonalShift(w) => {
                                Readiness::judge(arc::would_cancel(aws, ctx, w).await)
                            }
                            _ => Ok(Readiness::Unchecked(String::new())),
                        },
                        Service::Autoscaling => match input {
                            ActionInput::AutoscalingSetCapacity(w) => {
                                autoscaling::preflight(aws, ctx, w).await
                            }
                            _ => Ok(Readiness::Unchecked(String::new())),
                        },
                        _ => Ok(Readiness::Unchecked(format!(
                            "`{kind}` has no preflight in this build"
                        ))),
                    }
                }
            },
        };
        let readiness = found.unwrap_or_else(|e| Readiness::WouldFail(e.message));
        // Who the step will act as, when it is not the caller.
        match acting_as {
            None => readiness,
            Some(who) => {
                let said = |m: String| format!("as {} (account {}): {m}", who.arn, who.account);
                match readiness {
                    Readiness::Ready(m) => Readiness::Ready(said(m)),
                    Readiness::WouldFail(m) => Readiness::WouldFail(said(m)),
                    Readiness::Unchecked(m) => Readiness::Unchecked(said(m)),
                }
            }
        }
    }
}

/// Tag on every resource lifeboat creates (instances, snapshots, copies),
/// with the id of the run that created it: how a later attempt or run
/// recognises its own work, and how lifeboat refuses to touch anything else.
pub const CREATED_TAG: &str = "lifeboat:created-by-run";

/// Most characters of a resource identifier lifeboat derives (RDS instance
/// identifiers allow 63).
const MAX_IDENTIFIER: usize = 63;

/// A valid AWS resource identifier from `parts` joined by hyphens: lower
/// case letters, digits and single hyphens, starting with a letter, at most
/// 63 characters. When too long, the first parts are cut, never the last
/// (the run id that keeps it unique).
fn identifier(parts: &[&str]) -> String {
    let clean = |text: &str| -> String {
        let mut out = String::new();
        for c in text.chars() {
            let c = if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            };
            if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
                out.push(c);
            }
        }
        out.trim_end_matches('-').to_string()
    };
    let parts: Vec<String> = parts
        .iter()
        .map(|p| clean(p))
        .filter(|p| !p.is_empty())
        .collect();
    let Some((last, first)) = parts.split_last() else {
        return "lifeboat".to_string();
    };
    let mut head = first.join("-");
    let room = MAX_IDENTIFIER.saturating_sub(last.len() + 1);
    head.truncate(room);
    let head = head.trim_end_matches('-');
    let mut id = if head.is_empty() {
        last.clone()
    } else {
        format!("{head}-{last}")
    };
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id.insert_str(0, "lb-");
    }
    id.truncate(MAX_IDENTIFIER);
    id.trim_end_matches('-').to_string()
}

/// The step's region; every AWS step has one after validation.
fn region_of(ctx: &StepContext) -> Result<&str, ActionError> {
    ctx.region
        .as_deref()
        .ok_or_else(|| ActionError::permanent(format!("step `{}` has no region", ctx.step_id)))
}

/// Time before the next describe call of a wait that has waited so far
/// `waited`: a twenty-fifth of it, at least 250 ms, at most 15 s. A change
/// is then seen at most 4% of its own duration (or 250 ms) after it
/// happened, which keeps a run's RTO within a few percent of its critical
/// path, while the interval grows with the wait: a six-minute promotion
/// costs about 130 describes, and no wait polls more than four times a
/// second (Route 53 allows five requests a second per account).
fn wait_interval(waited: Duration) -> Duration {
    (waited / 25).clamp(Duration::from_millis(250), Duration::from_secs(15))
}

/// How often a wait looks, at most, around when its step's change was done
/// last time ([`next_look`]): every 100 ms, or Route 53's 250 ms, whose five
/// requests a second per account every change of a failover shares.
const NEAR: Duration = Duration::from_millis(100);
const NEAR_ROUTE53: Duration = Duration::from_millis(250);

/// Time before the next look of a wait, at `now`, that has waited `waited`
/// so far: [`wait_interval`], except around when the step's change was done
/// the last time it went through cleanly (`expected`: a fifth of that
/// duration either side). The first look in that window is at its start,
/// and within it the wait looks every hundredth of the duration (at least
/// `near` apart). A six-minute promotion done as it was last time is then
/// seen within 3.6 s, not 14 s; the window costs at most 40 more looks, and
/// a change that keeps other times only keeps the usual cadence.
fn next_look(
    now: tokio::time::Instant,
    waited: Duration,
    expected: Option<crate::engine::Expected>,
    near: Duration,
) -> Duration {
    let usual = wait_interval(waited);
    let Some(e) = expected else {
        return usual;
    };
    let half = e.took / 5;
    let (from, to) = (e.at.checked_sub(half).unwrap_or(now), e.at + half);
    if now < from {
        usual.min(from - now)
    } else if now < to {
        usual.min((e.took / 100).max(near))
    } else {
        usual
    }
}

/// Every wait of every action: call `check` (one round of describe calls)
/// until it answers `Done`, sleeping [`next_look`] between rounds; at the
/// step's deadline, fail with `what` and the last reason it gave.
async fn poll_until<T, F, Fut>(ctx: &StepContext, what: &str, check: F) -> Result<T, ActionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Poll<T>, ActionError>>,
{
    poll_near(ctx, what, NEAR, check).await
}

/// [`poll_until`] for a wait on Route 53.
async fn poll_route53<T, F, Fut>(ctx: &StepContext, what: &str, check: F) -> Result<T, ActionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Poll<T>, ActionError>>,
{
    poll_near(ctx, what, NEAR_ROUTE53, check).await
}

async fn poll_near<T, F, Fut>(
    ctx: &StepContext,
    what: &str,
    near: Duration,
    mut check: F,
) -> Result<T, ActionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Poll<T>, ActionError>>,
{
    let started = tokio::time::Instant::now();
    let mut reason = "no answer yet".to_string();
    loop {
        // A look still unanswered at the deadline ends the wait here, with
        // the last reason, before the engine's own deadline (which polls
        // this first) can only say the step timed out.
        reason = match tokio::time::timeout_at(ctx.deadline, check()).await {
            Ok(look) => match look? {
                Poll::Done(value) => return Ok(value),
                Poll::NotYet(now) => now,
            },
            Err(_) => {
                return Err(ActionError::permanent(format!(
                    "{what} by the step's deadline: {reason}"
                )));
            }
        };
        let now = tokio::time::Instant::now();
        let wait = next_look(now, now - started, ctx.expected, near);
        if now + wait >= ctx.deadline {
            return Err(ActionError::permanent(format!(
                "{what} by the step's deadline: {reason}"
            )));
        }
        tokio::time::sleep(wait).await;
    }
}

/// One round of a wait.
enum Poll<T> {
    /// The effect is visible.
    Done(T),
    /// Not yet, and why.
    NotYet(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(deadline_secs: u64) -> StepContext {
        StepContext {
            run_id: "r".into(),
            step_id: "s".into(),
            mode: Mode::Failover,
            region: Some("us-west-2".into()),
            attempt: 1,
            resumed: false,
            deadline: tokio::time::Instant::now() + Duration::from_secs(deadline_secs),
            assume_role: None,
            placement: Default::default(),
            expected: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_backs_off_and_fails_at_the_deadline_with_the_last_reason() {
        let polls = std::sync::Mutex::new(Vec::new());
        let start = tokio::time::Instant::now();
        let result: Result<(), ActionError> =
            poll_until(&ctx(3600), "db not available", || async {
                polls.lock().unwrap().push(start.elapsed());
                Ok(Poll::NotYet("app-db (modifying)".to_string()))
            })
            .await;
        let err = result.unwrap_err();
        assert_eq!(
            err.message,
            "db not available by the step's deadline: app-db (modifying)"
        );
        let polls = polls.lock().unwrap().clone();
        // Every 250 ms at first; after that never more than a
        // twenty-fifth of the time waited late (to the timer's 1 ms), and
        // never over 15 s apart.
        assert_eq!(polls[1] - polls[0], Duration::from_millis(250));
        let tick = Duration::from_millis(1);
        for pair in polls.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap <= (pair[0] / 25).max(Duration::from_millis(250)) + tick,
                "{pair:?}"
            );
            assert!(gap <= Duration::from_secs(15), "{pair:?}");
        }
        assert_eq!(
            polls[polls.len() - 1] - polls[polls.len() - 2],
            Duration::from_secs(15)
        );
        // Describe calls stay few: a hundred in the first minute, then
        // one each 15 s.
        let first_minute = polls
            .iter()
            .filter(|t| **t <= Duration::from_secs(60))
            .count();
        assert!(
            (80..=90).contains(&first_minute),
            "{first_minute} polls in the first minute"
        );
        assert!(polls.len() < 400, "{} polls in an hour", polls.len());
    }

    /// The looks of a wait whose change is done `done` after it starts,
    /// the step having taken `took` last time (if given), until it sees it.
    async fn looks(done: Duration, took: Option<Duration>, near: Duration) -> Vec<Duration> {
        let start = tokio::time::Instant::now();
        let mut ctx = ctx(3600);
        ctx.expected = took.map(|took| crate::engine::Expected {
            at: start + took,
            took,
        });
        let looks = std::sync::Mutex::new(Vec::new());
        poll_near(&ctx, "db not available", near, || async {
            looks.lock().unwrap().push(start.elapsed());
            Ok(if start.elapsed() >= done {
                Poll::Done(())
            } else {
                Poll::NotYet("modifying".to_string())
            })
        })
        .await
        .unwrap();
        looks.into_inner().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_looks_often_around_when_its_step_was_done_last_time() {
        let ms = Duration::from_millis;
        let (done, took) = (ms(6030), Duration::from_secs(6));
        let usual = looks(done, None, NEAR).await;
        let near = looks(done, Some(took), NEAR).await;
        // The window is a fifth of the last duration either side: its
        // first look is at its start, then every 100 ms (a hundredth of
        // 6 s is less).
        assert!(near.contains(&ms(4800)), "{near:?}");
        for pair in near.windows(2).filter(|p| p[0] >= ms(4800)) {
            assert!(pair[1] - pair[0] <= ms(100), "{pair:?}");
        }
        let seen = |looks: &[Duration]| *looks.last().unwrap();
        assert!(seen(&near) - done <= ms(100), "{near:?}");
        // The usual cadence, a twenty-fifth of the time waited, saw it
        // later; before the window both looked alike.
        assert!(seen(&usual) - done > ms(100), "{usual:?}");
        let before = |looks: &[Duration]| looks.iter().filter(|t| **t < ms(4800)).count();
        assert_eq!(before(&near), before(&usual));
        // The window costs few looks: at most 2 × 20 of a hundredth.
        assert!(near.len() - before(&near) <= 41, "{near:?}");

        // Route 53's waits look at most every 250 ms, in the window too.
        let route53 = looks(done, Some(took), NEAR_ROUTE53).await;
        for pair in route53.windows(2) {
            assert!(
                pair[1] - pair[0] >= ms(250) || pair[1] == ms(4800),
                "{pair:?}"
            );
        }

        // A change slower than last time: past the window, the usual
        // cadence again.
        let slow = looks(Duration::from_secs(20), Some(took), NEAR).await;
        let after: Vec<_> = slow.windows(2).filter(|p| p[0] >= ms(7200)).collect();
        assert!(!after.is_empty());
        for pair in after {
            // To the timer's 1 ms.
            let (gap, usual) = (pair[1] - pair[0], wait_interval(pair[0]));
            assert!(gap.abs_diff(usual) <= ms(1), "{pair:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_look_unanswered_at_the_deadline_fails_with_the_last_reason() {
        let looks = std::sync::atomic::AtomicU32::new(0);
        let ctx = ctx(2);
        let wait = poll_until(&ctx, "db not available", || async {
            if looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                Ok(Poll::NotYet("app-db (modifying)".to_string()))
            } else {
                // The API stops answering.
                std::future::pending().await
            }
        });
        // Past the deadline the wait has ended by itself.
        let result: Result<(), ActionError> = tokio::time::timeout(Duration::from_secs(3), wait)
            .await
            .expect("the wait ends at its deadline");
        assert_eq!(
            result.unwrap_err().message,
            "db not available by the step's deadline: app-db (modifying)"
        );
    }

    #[test]
    fn identifiers_are_valid_and_keep_the_run_id() {
        assert_eq!(
            identifier(&["app-db", "lifeboat", "20261128T091627-3fa2"]),
            "app-db-lifeboat-20261128t091627-3fa2"
        );
        assert_eq!(
            identifier(&["rds:app-db-2026", "copy", "r1"]),
            "rds-app-db-2026-copy-r1"
        );
        assert_eq!(identifier(&["9lives", "x"]), "lb-9lives-x");
        let long = "a".repeat(100);
        let id = identifier(&[&long, "copy", "20261128T091627-3fa2"]);
        assert_eq!(id.len(), 63);
        assert!(id.ends_with("-20261128t091627-3fa2"), "{id}");
        assert!(!identifier(&["a--b-", "-c"]).contains("--"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_as_soon_as_the_effect_is_visible() {
        let mut rounds = 0;
        let value = poll_until(&ctx(60), "x", || {
            rounds += 1;
            let done = rounds == 3;
            async move {
                Ok(if done {
                    Poll::Done(7)
                } else {
                    Poll::NotYet("not yet".into())
                })
            }
        })
        .await
        .unwrap();
        assert_eq!((value, rounds), (7, 3));
    }
}
