//! Backup verification: jobs of the daemon config, each checking that the
//! recovery points of its resources exist, are fresh, encrypted and copied
//! to the DR region, with the posture checks the architecture recommends,
//! and (deep mode) that the newest DR snapshot really restores.
//!
//! Every check reads; deep mode's only changes are a scratch instance
//! named `lifeboat-verify-...`, tagged as lifeboat's own, which is always
//! deleted, and whose deletion is confirmed by a describe.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use crate::actions::Registry;
use crate::aws::AwsClients;
use crate::catalogue::ActionInput;
use crate::config::Protected;
use crate::duration::HumanDuration;
use crate::engine::{Actions, StepContext};
use crate::runbook::Mode;

pub use crate::config::verify::{Deep, JobSpec, Resource, Schedule};

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The resource.
    pub resource: String,
    /// What was checked.
    pub check: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// A job's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobResult {
    /// The job.
    pub job: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub duration_s: f64,
    /// Every check passed.
    pub ok: bool,
    /// Each check.
    pub checks: Vec<Check>,
    /// Deep restores: the seconds each took, by resource.
    pub restores: Vec<(String, f64)>,
}

/// An SDK error, as one line: its code and message, or what failed.
fn err<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match e.as_service_error() {
        Some(s) if s.code().is_some() => format!(
            "{}{}",
            s.code().unwrap_or_default(),
            s.message().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        _ => aws_smithy_types::error::display::DisplayErrorContext(e)
            .to_string()
            .chars()
            .take(300)
            .collect(),
    }
}

fn check(resource: &str, what: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        resource: resource.to_string(),
        check: what.to_string(),
        ok,
        detail: detail.into(),
    }
}

/// A check from an RPO exposure reading.
async fn fresh(aws: &AwsClients, p: &Protected, what: &str) -> Check {
    let e = crate::exposure::measure(aws, p, Timestamp::now()).await;
    let name = p.name();
    match e.verdict {
        "ok" => check(
            &name,
            what,
            true,
            format!(
                "{} taken {} ago",
                e.recovery_point.unwrap_or_default(),
                crate::report::seconds(e.seconds)
            ),
        ),
        "over target" => check(
            &name,
            what,
            false,
            format!(
                "the newest, {}, is {} old, older than the {} target",
                e.recovery_point.unwrap_or_default(),
                crate::report::seconds(e.seconds),
                crate::report::seconds(e.target_s)
            ),
        ),
        "no recovery point" => check(&name, what, false, "none found"),
        _ => check(&name, what, false, e.error.unwrap_or_default()),
    }
}

/// A step context for running an action outside a run.
fn context(job: &str, region: &str, timeout: Duration) -> StepContext {
    StepContext {
        run_id: format!("verify-{job}"),
        step_id: "verify".into(),
        mode: Mode::Failover,
        region: Some(region.to_string()),
        attempt: 1,
        resumed: false,
        deadline: tokio::time::Instant::now() + timeout,
        assume_role: None,
        placement: Default::default(),
        expected: None,
    }
}

/// Run `job` now.
pub async fn run(aws: &AwsClients, job: &JobSpec) -> JobResult {
    let started_at = crate::engine::now();
    let clock = Instant::now();
    let mut checks = Vec::new();
    let mut restores = Vec::new();
    for resource in &job.resources {
        match resource {
            Resource::Rds {
                db_instance,
                region,
                dr_region,
                rpo_target,
                encrypted,
                kms_key,
                deep,
                replicated_backups,
            } => {
                let name = format!("rds:{region}:{db_instance}");
                let protected = |region: &str| Protected::Rds {
                    db_instance: db_instance.clone(),
                    region: region.to_string(),
                    rpo_target: Some(*rpo_target),
                };
                checks.push(fresh(aws, &protected(region), "newest snapshot fresh").await);
                if *encrypted || kms_key.is_some() {
                    checks.push(
                        match crate::actions::rds::newest_snapshot_details(aws, region, db_instance)
                            .await
                        {
                            Ok(Some((id, true, key))) => match kms_key {
                                Some(want)
                                    if !key.as_deref().is_some_and(|k| {
                                        k == want || k.ends_with(&format!("/{want}"))
                                    }) =>
                                {
                                    check(
                                        &name,
                                        "encrypted",
                                        false,
                                        format!(
                                            "{id} is encrypted with {}, not {want}",
                                            key.unwrap_or_else(|| "an unknown key".into())
                                        ),
                                    )
                                }
                                _ => check(
                                    &name,
                                    "encrypted",
                                    true,
                                    format!(
                                        "{id} encrypted with {}",
                                        key.unwrap_or_else(|| "a KMS key".into())
                                    ),
                                ),
                            },
                            Ok(Some((id, false, _))) => {
                                check(&name, "encrypted", false, format!("{id} is not encrypted"))
                            }
                            Ok(None) => check(&name, "encrypted", false, "no snapshot to check"),
                            Err(e) => check(&name, "encrypted", false, e.message),
                        },
                    );
                }
                if let Some(dr) = dr_region {
                    let mut c = fresh(aws, &protected(dr), "copy in the DR region fresh").await;
                    if c.detail == "none found" {
                        c.detail = format!("no snapshot of {db_instance} in {dr}");
                    }
                    checks.push(c);
                }
                if let (true, Some(dr)) = (*replicated_backups, dr_region) {
                    checks.push(
                        backups_replicated(aws, &name, db_instance, region, dr, *rpo_target).await,
                    );
                }
                if job.posture {
                    checks.extend(rds_posture(aws, &name, region, db_instance).await);
                }
                if let Some(deep) = deep {
                    let (c, took) = deep_restore(
                        aws,
                        &job.name,
                        &name,
                        dr_region.as_deref().unwrap_or(region),
                        db_instance,
                        deep,
                    )
                    .await;
                    if let Some(took) = took {
                        restores.push((name.clone(), took));
                    }
                    checks.extend(c);
                }
            }
            Resource::S3 {
                bucket,
                prefix,
                region,
                rpo_target,
                source_bucket,
                source_region,
            } => {
                let p = Protected::S3 {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    region: region.clone(),
                    rpo_target: Some(*rpo_target),
                };
                let name = p.name();
                checks.push(fresh(aws, &p, "newest object fresh").await);
                checks.push(checksum(aws, &job.name, &name, region, bucket, prefix).await);
                if let Some(source) = source_bucket {
                    checks.push(
                        replication(
                            aws,
                            &name,
                            source_region.as_deref().unwrap_or(region),
                            source,
                            bucket,
                        )
                        .await,
                    );
                }
                if job.posture {
                    checks.extend(s3_posture(aws, &name, region, bucket, job.lifecycle_days).await);
                }
            }
            Resource::Ami {
                tags,
                region,
                rpo_target,
            } => {
                let p = Protected::Ami {
                    tags: tags.clone(),
                    region: region.clone(),
                    rpo_target: Some(*rpo_target),
                };
                checks.push(fresh(aws, &p, "newest image fresh").await);
            }
        }
    }
    JobResult {
        job: job.name.clone(),
        started_at,
        duration_s: clock.elapsed().as_secs_f64(),
        ok: checks.iter().all(|c| c.ok),
        checks,
        restores,
    }
}

/// Whether `db`'s automated backups replicate from `region` into `dr`,
/// restorable there to a moment within `rpo_target` of now.
async fn backups_replicated(
    aws: &AwsClients,
    name: &str,
    db: &str,
    region: &str,
    dr: &str,
    rpo_target: HumanDuration,
) -> Check {
    const WHAT: &str = "automated backups replicated to the DR region";
    let found = crate::actions::rds::replicated_backups(&aws.rds(dr), dr, db, region).await;
    let now = Timestamp::now().as_second();
    match found {
        Err(e) => check(name, WHAT, false, e.message),
        Ok(None) => check(
            name,
            WHAT,
            false,
            format!(
                "no automated backups of {db} replicate into {dr}: a point-in-time restore there is impossible (start them with `rds.replicate_automated_backups`)"
            ),
        ),
        Ok(Some(b)) => match b.latest {
            None => check(
                name,
                WHAT,
                false,
                format!("{} ({}): nothing restorable in {dr} yet", b.arn, b.status),
            ),
            Some(latest) => {
                let age = u64::try_from(now - latest.secs()).unwrap_or(0);
                let target = rpo_target.0.as_secs();
                check(
                    name,
                    WHAT,
                    age <= target,
                    format!(
                        "{} ({}) restores in {dr} to {} ago{}",
                        b.arn,
                        b.status,
                        crate::report::seconds(Some(age as f64)),
                        if age <= target {
                            String::new()
                        } else {
                            format!(
                                ", older than the {} target",
                                crate::report::seconds(Some(target as f64))
                            )
                        }
                    ),
                )
            }
        },
    }
}

async fn rds_posture(aws: &AwsClients, name: &str, region: &str, id: &str) -> Vec<Check> {
    let found = aws
        .rds(region)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await;
    let db = match found {
        Ok(out) => match out.db_instances().first() {
            Some(db) => db.clone(),
            None => return vec![check(name, "posture", false, format!("no instance {id}"))],
        },
        Err(e) => {
            return vec![check(
                name,
                "posture",
                false,
                format!("DescribeDBInstances {id}: {}", err(&e)),
            )];
        }
    };
    let retention = db.backup_retention_period().unwrap_or(0);
    vec![
        check(
            name,
            "multi-az",
            db.multi_az() == Some(true),
            if db.multi_az() == Some(true) {
                "Multi-AZ".to_string()
            } else {
                "single-AZ: one zone's failure takes the primary down".to_string()
            },
        ),
        check(
            name,
            "automated backups",
            retention > 0,
            format!("backup retention {retention} day(s)"),
        ),
        check(
            name,
            "encrypted at rest",
            db.storage_encrypted() == Some(true),
            match db.kms_key_id() {
                Some(k) if db.storage_encrypted() == Some(true) => {
                    format!("storage encrypted with {k}")
                }
                _ if db.storage_encrypted() == Some(true) => "storage encrypted".into(),
                _ => "storage not encrypted".into(),
            },
        ),
    ]
}

async fn checksum(
    aws: &AwsClients,
    job: &str,
    name: &str,
    region: &str,
    bucket: &str,
    prefix: &str,
) -> Check {
    let newest = match crate::actions::s3::newest_object(aws, region, bucket, prefix).await {
        Ok(Some((key, _))) => key,
        Ok(None) => return check(name, "checksum", false, "no object to read back"),
        Err(e) => return check(name, "checksum", false, e.message),
    };
    let input = ActionInput::S3VerifyChecksum(crate::catalogue::s3::VerifyChecksum {
        bucket: bucket.to_string(),
        key: newest.clone(),
        sha256: None,
    });
    let registry = Registry::with_aws(aws.clone());
    match registry
        .run(&context(job, region, Duration::from_secs(600)), &input)
        .await
    {
        Ok(_) => check(
            name,
            "checksum",
            true,
            format!("{newest} read back, SHA-256 verified"),
        ),
        Err(e) => check(name, "checksum", false, e.message),
    }
}

async fn replication(
    aws: &AwsClients,
    name: &str,
    region: &str,
    source: &str,
    dest: &str,
) -> Check {
    match aws
        .s3(region)
        .get_bucket_replication()
        .bucket(source)
        .send()
        .await
    {
        Ok(out) => {
            let target = format!("arn:aws:s3:::{dest}");
            let rules = out
                .replication_configuration()
                .map(|c| c.rules().to_vec())
                .unwrap_or_default();
            let enabled = rules.iter().any(|r| {
                r.status().as_str() == "Enabled"
                    && r.destination().is_some_and(|d| d.bucket() == target)
            });
            check(
                name,
                "replication configured",
                enabled,
                if enabled {
                    format!("{source} replicates into {dest}")
                } else {
                    format!("no enabled rule of {source} replicates into {dest}")
                },
            )
        }
        Err(e) => check(
            name,
            "replication configured",
            false,
            format!("{source}: {}", err(&e)),
        ),
    }
}

async fn s3_posture(
    aws: &AwsClients,
    name: &str,
    region: &str,
    bucket: &str,
    lifecycle_days: u32,
) -> Vec<Check> {
    let s3 = aws.s3(region);
    let mut out = Vec::new();
    out.push(
        match s3.get_bucket_encryption().bucket(bucket).send().await {
            Ok(enc) => {
                let kms = enc
                    .server_side_encryption_configuration()
                    .map(|c| c.rules().to_vec())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r.apply_server_side_encryption_by_default())
                    .any(|d| d.sse_algorithm().as_str().starts_with("aws:kms"));
                check(
                    name,
                    "encrypted with KMS",
                    kms,
                    if kms {
                        "default encryption SSE-KMS"
                    } else {
                        "default encryption is not SSE-KMS"
                    },
                )
            }
            Err(e) => check(name, "encrypted with KMS", false, err(&e)),
        },
    );
    out.push(match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(p) => {
            let denies = p
                .policy()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                .is_some_and(|doc| {
                    let statements = match &doc["Statement"] {
                        serde_json::Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    statements.iter().any(|s| {
                        s["Effect"] == "Deny"
                            && s["Condition"]["Bool"]["aws:SecureTransport"]
                                .as_str()
                                .or_else(|| {
                                    s["Condition"]["Bool"]["aws:SecureTransport"]
                                        .as_bool()
                                        .map(|b| if b { "true" } else { "false" })
                                })
                                == Some("false")
                    })
                });
            check(
                name,
                "TLS only",
                denies,
                if denies {
                    "the bucket policy denies requests without TLS"
                } else {
                    "no Deny on aws:SecureTransport=false in the bucket policy"
                },
            )
        }
        Err(e) => check(
            name,
            "TLS only",
            false,
            format!("no bucket policy: {}", err(&e)),
        ),
    });
    out.push(
        match s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(l) => {
                let archives = l.rules().iter().any(|r| {
                    r.status().as_str() == "Enabled"
                        && r.transitions().iter().any(|t| {
                            t.storage_class().is_some_and(|c| c.as_str().contains("GLACIER") || c.as_str() == "DEEP_ARCHIVE")
                                && t.days().is_some_and(|d| d <= lifecycle_days as i32)
                        })
                });
                check(
                    name,
                    "archived to Glacier",
                    archives,
                    if archives {
                        format!("a lifecycle rule archives objects within {lifecycle_days} days")
                    } else {
                        format!("no enabled lifecycle rule archives objects to Glacier within {lifecycle_days} days")
                    },
                )
            }
            Err(e) => check(name, "archived to Glacier", false, format!("no lifecycle rule: {}", err(&e))),
        },
    );
    let versioned = match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok(v.status().is_some_and(|s| s.as_str() == "Enabled")),
        Err(e) => Err(err(&e)),
    };
    let locked = match s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(l) => l
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| e.as_str() == "Enabled"),
        Err(_) => false,
    };
    out.push(match (versioned, locked) {
        (_, true) => check(
            name,
            "versioning or object lock",
            true,
            "object lock enabled",
        ),
        (Ok(true), false) => check(
            name,
            "versioning or object lock",
            true,
            "versioning enabled",
        ),
        (Ok(false), false) => check(
            name,
            "versioning or object lock",
            false,
            "neither versioning nor object lock: a delete or overwrite loses the backup",
        ),
        (Err(e), false) => check(
            name,
            "versioning or object lock",
            false,
            format!("no object lock, and versioning cannot be read: {e}"),
        ),
    });
    out
}

/// Restore `db`'s newest snapshot in `region` into a scratch instance, run
/// the check, always delete it; the checks, and the restore's duration.
async fn deep_restore(
    aws: &AwsClients,
    job: &str,
    name: &str,
    region: &str,
    db: &str,
    deep: &Deep,
) -> (Vec<Check>, Option<f64>) {
    let timeout = deep
        .timeout
        .map_or(Duration::from_secs(7200), HumanDuration::get);
    let snapshot = match crate::actions::rds::newest_snapshot(aws, region, db).await {
        Ok(Some((id, _))) => id,
        Ok(None) => {
            return (
                vec![check(
                    name,
                    "restores",
                    false,
                    format!("no snapshot of {db} in {region}"),
                )],
                None,
            );
        }
        Err(e) => return (vec![check(name, "restores", false, e.message)], None),
    };
    let stamp: String = crate::engine::now()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let scratch = format!("lifeboat-verify-{db}-{stamp}")
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    let registry = Registry::with_aws(aws.clone());
    let ctx = context(job, region, timeout);
    let mut checks = Vec::new();
    let clock = Instant::now();
    let restore = ActionInput::RdsRestoreFromSnapshot(crate::catalogue::rds::RestoreFromSnapshot {
        db_instance: scratch.clone(),
        snapshot: Some(snapshot.clone()),
        snapshot_of: None,
        snapshot_tags: None,
        instance_class: deep.instance_class.clone(),
        subnet_group: deep.subnet_group.clone(),
        security_groups: Vec::new(),
        parameter_group: None,
        option_group: None,
        multi_az: Some(false),
        tags: std::collections::BTreeMap::from([(
            "lifeboat:verify-job".to_string(),
            job.to_string(),
        )]),
        availability_zone: None,
        alternatives: vec![],
    });
    let restored = registry.run(&ctx, &restore).await;
    let took = clock.elapsed().as_secs_f64();
    let mut duration = None;
    match &restored {
        Ok(outputs) => {
            duration = Some(took);
            checks.push(check(
                name,
                "restores",
                true,
                format!(
                    "{snapshot} restored into {scratch} in {}",
                    crate::report::seconds(Some(took))
                ),
            ));
            if let Some(argv) = &deep.check {
                let endpoint = outputs
                    .get("endpoint")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                let port = outputs
                    .get("port")
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let ran = tokio::time::timeout(
                    ctx.deadline
                        .saturating_duration_since(tokio::time::Instant::now()),
                    tokio::process::Command::new(
                        argv.first().map(String::as_str).unwrap_or("true"),
                    )
                    .args(argv.iter().skip(1))
                    .env("LIFEBOAT_VERIFY_ENDPOINT", endpoint)
                    .env("LIFEBOAT_VERIFY_PORT", port)
                    .env("LIFEBOAT_VERIFY_INSTANCE", &scratch)
                    .stdin(std::process::Stdio::null())
                    .output(),
                )
                .await;
                checks.push(match ran {
                    Ok(Ok(out)) if out.status.success() => check(
                        name,
                        "restored data checks out",
                        true,
                        format!("`{}` exited 0", argv.join(" ")),
                    ),
                    Ok(Ok(out)) => check(
                        name,
                        "restored data checks out",
                        false,
                        format!(
                            "`{}` exited {}: {}",
                            argv.join(" "),
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    ),
                    Ok(Err(e)) => check(
                        name,
                        "restored data checks out",
                        false,
                        format!("`{}`: {e}", argv.join(" ")),
                    ),
                    Err(_) => check(name, "restored data checks out", false, "timed out"),
                });
            }
        }
        Err(e) => checks.push(check(name, "restores", false, e.message.clone())),
    }
    // Always delete, and confirm with a describe.
    let delete = ActionInput::RdsDeleteInstance(crate::catalogue::rds::DeleteInstance {
        db_instance: scratch.clone(),
        final_snapshot_id: None,
    });
    let cleanup_ctx = context(job, region, Duration::from_secs(3600));
    let deleted = registry.run(&cleanup_ctx, &delete).await;
    let gone = aws
        .rds(region)
        .describe_db_instances()
        .db_instance_identifier(&scratch)
        .send()
        .await
        .map(|o| {
            o.db_instances()
                .iter()
                .all(|d| d.db_instance_status() == Some("deleting"))
        })
        .unwrap_or(true);
    checks.push(match (deleted, gone) {
        (Ok(_), true) => check(
            name,
            "scratch instance deleted",
            true,
            format!("{scratch} deleted (confirmed by a describe)"),
        ),
        (Err(e), _) => check(
            name,
            "scratch instance deleted",
            false,
            format!("{scratch}: {}", e.message),
        ),
        (Ok(_), false) => check(
            name,
            "scratch instance deleted",
            false,
            format!("{scratch} still exists"),
        ),
    });
    (checks, duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_fire_in_their_time_zone() {
        let t: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let utc = Schedule::parse("0 2 * * *", None).unwrap();
        assert_eq!(
            utc.next_after(t).unwrap().to_string(),
            "2026-11-29T02:00:00Z"
        );
        let paris = Schedule::parse("0 2 * * *", Some("Europe/Paris")).unwrap();
        assert_eq!(
            paris.next_after(t).unwrap().to_string(),
            "2026-11-29T01:00:00Z"
        );
        let every = Schedule::parse("*/5 * * * * *", None).unwrap();
        assert_eq!(every.interval(t), Some(Duration::from_secs(5)));
        assert!(Schedule::parse("every tuesday", None).is_err());
        assert!(Schedule::parse("0 2 * * *", Some("Mars/Olympus")).is_err());
    }
}
