//! S3: the age of the newest object under a prefix, replication configured
//! and done for sampled objects, copying objects between buckets, and
//! verifying an object's SHA-256 by reading it back.

use aws_sdk_s3::types::{ChecksumMode, Object, ReplicationStatus};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::aws_error::classify;
use super::{Poll, Readiness, poll_until, region_of};
use crate::aws::AwsClients;
use crate::catalogue::ActionInput;
use crate::catalogue::s3::{CheckReplication, CopyObjects, NewestObjectAge, VerifyChecksum};
use crate::engine::{ActionError, Outputs, StepContext};

/// Largest object a single CopyObject call copies (5 GiB).
const MAX_SINGLE_COPY: i64 = 5 * 1024 * 1024 * 1024;
/// Most CopyObject calls in flight at once within one step.
const PARALLEL_COPIES: usize = 16;

fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Every object under `prefix`.
async fn list(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Object>, ActionError> {
    let mut all = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let missing = e.as_service_error().is_some_and(|s| s.is_no_such_bucket());
            if missing {
                ActionError::permanent(format!("no bucket {bucket}"))
            } else {
                classify(&format!("ListObjectsV2 {}", url(bucket, prefix)), e)
            }
        })?;
        all.extend(page.contents().iter().cloned());
    }
    Ok(all)
}

fn modified(o: &Object) -> i128 {
    o.last_modified().map_or(0, |t| t.as_nanos())
}

fn age_of(o: &Object) -> std::time::Duration {
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now()).as_nanos();
    let nanos = u64::try_from((now - modified(o)).max(0)).unwrap_or(u64::MAX);
    std::time::Duration::from_nanos(nanos)
}

/// Why the newest object is too old, if it is.
fn stale(
    under: &str,
    key: &str,
    age: std::time::Duration,
    max: std::time::Duration,
) -> Option<String> {
    (age > max).then(|| {
        format!(
            "the newest object under {under} ({key}) is {} old, more than {}",
            crate::duration::HumanDuration::from_secs(age.as_secs()),
            crate::duration::HumanDuration(max)
        )
    })
}

/// `s3.newest_object_age`: the newest object under the prefix is at most
/// `max_age` old. A check: it changes nothing and fails if the data is stale.
pub(super) async fn newest_object_age(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &NewestObjectAge,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let objects = list(&aws.s3(region), &w.bucket, &w.prefix).await?;
    let newest = objects.iter().max_by_key(|o| modified(o)).ok_or_else(|| {
        ActionError::permanent(format!("no object under {}", url(&w.bucket, &w.prefix)))
    })?;
    let age = age_of(newest);
    let key = newest.key().unwrap_or_default();
    stale(&url(&w.bucket, &w.prefix), key, age, w.max_age.get())
        .map_or(Ok(()), |e| Err(ActionError::permanent(e)))?;
    Ok(Outputs::from([
        ("newest_key".to_string(), serde_json::json!(key)),
        (
            "newest_at".to_string(),
            serde_json::json!(
                newest
                    .last_modified()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
            ),
        ),
        ("age_seconds".to_string(), serde_json::json!(age.as_secs())),
        ("objects".to_string(), serde_json::json!(objects.len())),
    ]))
}

/// The newest object under `prefix` and when it was written; `None` when
/// there is none.
pub(crate) async fn newest_object(
    aws: &AwsClients,
    region: &str,
    bucket: &str,
    prefix: &str,
) -> Result<Option<(String, aws_smithy_types::DateTime)>, ActionError> {
    let objects = list(&aws.s3(region), bucket, prefix).await?;
    Ok(objects
        .iter()
        .max_by_key(|o| modified(o))
        .and_then(|o| Some((o.key()?.to_string(), *o.last_modified()?))))
}

/// The DR bucket's recovery point: when its newest object under `prefix`
/// was written, and how many source objects are newer.
pub(super) async fn newest_replicated(
    aws: &AwsClients,
    region: &str,
    source_bucket: &str,
    dr_bucket: &str,
    prefix: &str,
) -> crate::engine::RecoveryReading {
    use crate::engine::RecoveryReading;
    let client = aws.s3(region);
    let (dr, source) = match (
        list(&client, dr_bucket, prefix).await,
        list(&client, source_bucket, prefix).await,
    ) {
        (Ok(dr), Ok(source)) => (dr, source),
        (Err(e), _) => return RecoveryReading::unmeasurable(format!("listing the DR bucket: {e}")),
        // The source's region may be down: the DR side alone gives the point.
        (Ok(dr), Err(_)) => (dr, Vec::new()),
    };
    let Some(newest) = dr.iter().max_by_key(|o| modified(o)) else {
        return RecoveryReading::unmeasurable(format!(
            "no object under {} to recover from",
            url(dr_bucket, prefix)
        ));
    };
    let newer = source
        .iter()
        .filter(|o| modified(o) > modified(newest))
        .count();
    RecoveryReading {
        at: newest
            .last_modified()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        how: format!(
            "newest object under {} ({}); {newer} object(s) in {source_bucket} are newer",
            url(dr_bucket, prefix),
            newest.key().unwrap_or_default()
        ),
        not_measurable: None,
    }
}

/// `s3.check_replication`: the bucket has an enabled replication rule, and
/// each of the newest `sample` objects under the prefix reports COMPLETED
/// (waiting, within the deadline, while any is PENDING).
pub(super) async fn check_replication(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CheckReplication,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.s3(region);
    let destinations = replication_destinations(&client, &w.bucket).await?;
    let mut objects = list(&client, &w.bucket, &w.prefix).await?;
    objects.sort_by_key(|o| std::cmp::Reverse(modified(o)));
    objects.truncate(usize::try_from(w.sample).unwrap_or(usize::MAX));
    let keys: Vec<String> = objects
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    poll_until(ctx, "objects not replicated", || async {
        let mut pending = Vec::new();
        for key in &keys {
            let head = client
                .head_object()
                .bucket(&w.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| classify(&format!("HeadObject {}", url(&w.bucket, key)), e))?;
            match head.replication_status() {
                Some(ReplicationStatus::Completed) => {}
                Some(ReplicationStatus::Pending) => pending.push(key.clone()),
                Some(other) => {
                    return Err(ActionError::permanent(format!(
                        "{} has replication status {}",
                        url(&w.bucket, key),
                        other.as_str()
                    )));
                }
                None => {
                    return Err(ActionError::permanent(format!(
                        "{} has no replication status: no rule covers it, or it predates the rule",
                        url(&w.bucket, key)
                    )));
                }
            }
        }
        Ok(if pending.is_empty() {
            Poll::Done(())
        } else {
            Poll::NotYet(format!("PENDING: {}", pending.join(", ")))
        })
    })
    .await?;
    Ok(Outputs::from([
        ("destinations".to_string(), serde_json::json!(destinations)),
        ("sampled".to_string(), serde_json::json!(keys)),
    ]))
}

/// Destination buckets of the bucket's enabled replication rules; an error
/// when there are none.
async fn replication_destinations(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Vec<String>, ActionError> {
    let out = client
        .get_bucket_replication()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| {
            let code = e
                .as_service_error()
                .and_then(|s| s.code())
                .unwrap_or_default();
            match code {
                "ReplicationConfigurationNotFoundError" => ActionError::permanent(format!(
                    "bucket {bucket} has no replication configuration"
                )),
                "NoSuchBucket" => ActionError::permanent(format!("no bucket {bucket}")),
                _ => classify(&format!("GetBucketReplication {bucket}"), e),
            }
        })?;
    let destinations: Vec<String> = out
        .replication_configuration()
        .map(|c| c.rules())
        .unwrap_or_default()
        .iter()
        .filter(|r| r.status().as_str() == "Enabled")
        .filter_map(|r| r.destination().map(|d| d.bucket().to_string()))
        .collect();
    if destinations.is_empty() {
        return Err(ActionError::permanent(format!(
            "bucket {bucket} has no enabled replication rule"
        )));
    }
    Ok(destinations)
}

/// What the destination holds for a key: nothing, the same object, or
/// something else.
#[derive(Debug, PartialEq, Eq)]
enum AtDestination {
    Missing,
    Same,
    Different,
}

/// `s3.copy_objects`: copy every object under the prefix that the
/// destination lacks. Objects the destination holds with different content
/// are overwritten only when `overwrite` is set; otherwise the step fails
/// before copying anything.
pub(super) async fn copy_objects(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CopyObjects,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.s3(region);
    let plan = copy_plan(&client, w).await?;
    let conflicts: Vec<&str> = plan
        .iter()
        .filter(|(_, _, at)| *at == AtDestination::Different)
        .map(|(key, _, _)| key.as_str())
        .collect();
    if !conflicts.is_empty() && !w.overwrite {
        return Err(ActionError::permanent(format!(
            "{} object(s) exist in {} with different content ({}{}); set `overwrite: true` to replace them",
            conflicts.len(),
            w.dest_bucket,
            conflicts
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
            if conflicts.len() > 5 { ", ..." } else { "" }
        )));
    }
    let to_copy: Vec<(String, i64)> = plan
        .into_iter()
        .filter(|(_, _, at)| *at != AtDestination::Same)
        .map(|(key, size, _)| (key, size))
        .collect();
    if let Some((key, _)) = to_copy.iter().find(|(_, size)| *size > MAX_SINGLE_COPY) {
        return Err(ActionError::permanent(format!(
            "{} is larger than 5 GiB, which one CopyObject call cannot copy",
            url(&w.source_bucket, key)
        )));
    }
    let mut copied = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = to_copy.into_iter();
    loop {
        while tasks.len() < PARALLEL_COPIES {
            let Some((key, _)) = queue.next() else { break };
            let client = client.clone();
            let (source, dest) = (w.source_bucket.clone(), w.dest_bucket.clone());
            tasks.spawn(crate::engine::calls::same_call_log(async move {
                client
                    .copy_object()
                    .copy_source(format!("{source}/{}", encode_key(&key)))
                    .bucket(&dest)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| {
                        classify(&format!("CopyObject {} to {dest}", url(&source, &key)), e)
                    })
                    .map(|_| key)
            }));
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        copied.push(joined.map_err(|e| ActionError::permanent(format!("copy task: {e}")))??);
    }
    copied.sort();
    Ok(Outputs::from([
        ("copied".to_string(), serde_json::json!(copied.len())),
        ("copied_keys".to_string(), serde_json::json!(copied)),
    ]))
}

/// Each source object's key, size, and what the destination holds for it.
async fn copy_plan(
    client: &aws_sdk_s3::Client,
    w: &CopyObjects,
) -> Result<Vec<(String, i64, AtDestination)>, ActionError> {
    let source = list(client, &w.source_bucket, &w.prefix).await?;
    let dest = list(client, &w.dest_bucket, &w.prefix).await?;
    let held: std::collections::HashMap<&str, &Object> = dest
        .iter()
        .filter_map(|o| o.key().map(|k| (k, o)))
        .collect();
    Ok(source
        .iter()
        .filter_map(|o| {
            let key = o.key()?;
            let at = match held.get(key) {
                None => AtDestination::Missing,
                Some(d) if d.size() == o.size() && d.e_tag() == o.e_tag() => AtDestination::Same,
                Some(_) => AtDestination::Different,
            };
            Some((key.to_string(), o.size().unwrap_or(0), at))
        })
        .collect())
}

/// `s3.copy_objects` in a drill: the objects are copied under
/// `lifeboat-drill-<run>/` in the destination bucket, which teardown
/// removes; nothing outside that prefix is written.
pub(super) async fn drill_copy_objects(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CopyObjects,
) -> Result<Outputs, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.s3(region);
    let prefix = super::drill::s3_prefix(&ctx.run_id);
    let mut copied = 0usize;
    for object in list(&client, &w.source_bucket, &w.prefix).await? {
        let Some(key) = object.key() else { continue };
        client
            .copy_object()
            .copy_source(format!("{}/{}", w.source_bucket, encode_key(key)))
            .bucket(&w.dest_bucket)
            .key(format!("{prefix}{key}"))
            .send()
            .await
            .map_err(|e| {
                classify(
                    &format!(
                        "CopyObject {} to the drill prefix",
                        url(&w.source_bucket, key)
                    ),
                    e,
                )
            })?;
        copied += 1;
    }
    Ok(Outputs::from([
        ("copied".to_string(), serde_json::json!(copied)),
        (
            "drill".to_string(),
            serde_json::json!(format!(
                "copied {copied} object(s) under {} instead of the live keys",
                url(&w.dest_bucket, &prefix)
            )),
        ),
    ]))
}

/// A key as the `x-amz-copy-source` header wants it: percent-encoded,
/// slashes kept.
fn encode_key(key: &str) -> String {
    key.bytes()
        .fold(String::with_capacity(key.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
            out
        })
}

/// `s3.verify_checksum`: read the whole object back, hash it, and compare
/// with the expected SHA-256 (given, or the checksum S3 stored with it).
pub(super) async fn verify_checksum(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &VerifyChecksum,
) -> Result<Outputs, ActionError> {
    use sha2::Digest;
    let region = region_of(ctx)?;
    let what = url(&w.bucket, &w.key);
    let mut out = aws
        .s3(region)
        .get_object()
        .bucket(&w.bucket)
        .key(&w.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                ActionError::permanent(format!("no object {what}"))
            } else {
                classify(&format!("GetObject {what}"), e)
            }
        })?;
    let expected = match (&w.sha256, out.checksum_sha256()) {
        (Some(hex), _) => hex.to_ascii_lowercase(),
        (None, Some(stored)) => base64_to_hex(stored).ok_or_else(|| {
            ActionError::permanent(format!("{what}: unreadable stored checksum `{stored}`"))
        })?,
        (None, None) => {
            return Err(ActionError::permanent(format!(
                "{what} has no stored SHA-256 checksum; give the expected one as `sha256`"
            )));
        }
    };
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = out.body.next().await {
        let chunk = chunk.map_err(|e| ActionError::retryable(format!("reading {what}: {e}")))?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let actual = hex(&hasher.finalize());
    if actual != expected {
        return Err(ActionError::permanent(format!(
            "{what} read back with SHA-256 {actual}, expected {expected}"
        )));
    }
    Ok(Outputs::from([
        ("sha256".to_string(), serde_json::json!(actual)),
        ("bytes".to_string(), serde_json::json!(size)),
    ]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    })
}

/// Standard base64 (as S3 reports checksums) to lower-case hex.
fn base64_to_hex(text: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        bits = (bits << 6) | u32::try_from(value).ok()?;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push(u8::try_from((bits >> count) & 0xff).ok()?);
        }
    }
    Some(hex(&bytes))
}

/// Whether the S3 action `input` could run now.
pub(super) async fn preflight(
    aws: &AwsClients,
    ctx: &StepContext,
    input: &ActionInput,
) -> Result<Readiness, ActionError> {
    let region = region_of(ctx)?;
    let client = aws.s3(region);
    let found: Result<String, ActionError> = match input {
        // The checks only read: the preflight is the check itself.
        ActionInput::S3NewestObjectAge(w) => newest_object_age(aws, ctx, w).await.map(|o| {
            format!(
                "the newest object under {} is {} s old",
                url(&w.bucket, &w.prefix),
                o["age_seconds"]
            )
        }),
        ActionInput::S3CheckReplication(w) => replication_destinations(&client, &w.bucket)
            .await
            .map(|d| format!("{} replicates to {}", w.bucket, d.join(", "))),
        ActionInput::S3CopyObjects(w) => copy_plan(&client, w).await.and_then(|plan| {
            let conflicts = plan
                .iter()
                .filter(|(_, _, at)| *at == AtDestination::Different)
                .count();
            let missing = plan
                .iter()
                .filter(|(_, _, at)| *at == AtDestination::Missing)
                .count();
            if conflicts > 0 && !w.overwrite {
                Err(ActionError::permanent(format!(
                    "{conflicts} object(s) exist in {} with different content",
                    w.dest_bucket
                )))
            } else {
                Ok(format!(
                    "{} object(s) under the prefix; {missing} to copy, {conflicts} to overwrite",
                    plan.len()
                ))
            }
        }),
        ActionInput::S3VerifyChecksum(w) => client
            .head_object()
            .bucket(&w.bucket)
            .key(&w.key)
            .send()
            .await
            .map(|h| {
                format!(
                    "{} exists ({} bytes)",
                    url(&w.bucket, &w.key),
                    h.content_length().unwrap_or(0)
                )
            })
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                    ActionError::permanent(format!("no object {}", url(&w.bucket, &w.key)))
                } else {
                    classify(&format!("HeadObject {}", url(&w.bucket, &w.key)), e)
                }
            }),
        other => {
            return Ok(Readiness::Unchecked(format!(
                "{} is not an S3 action",
                other.kind()
            )));
        }
    };
    Readiness::judge(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_checksums_decode_to_hex() {
        // SHA-256 of "hello".
        assert_eq!(
            base64_to_hex("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=").as_deref(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(base64_to_hex("not base64!"), None);
    }

    #[test]
    fn data_older_than_the_limit_is_stale() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(stale("s3://b/p", "k", secs(3599), secs(3600)), None);
        assert_eq!(
            stale("s3://b/p", "k", secs(7300), secs(3600)).as_deref(),
            Some("the newest object under s3://b/p (k) is 2h1m40s old, more than 1h")
        );
    }

    #[test]
    fn copy_sources_keep_slashes_and_encode_the_rest() {
        assert_eq!(
            encode_key("db/2026 11/dump+1.sql"),
            "db/2026%2011/dump%2B1.sql"
        );
    }
}
