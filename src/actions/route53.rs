//! Route 53: upsert records, given or by a rewrite rule, in as few change
//! batches as possible; switch failover pairs; set the weights of weighted
//! sets; invert or disable health checks; then wait until the changes are
//! INSYNC.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, HealthCheck, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, ResourceRecordSetRegion, RrType,
};

use super::aws_error::{classify, found};
use super::{Poll, Readiness, poll_route53};
use crate::aws::AwsClients;
use crate::catalogue::ActionInput;
use crate::catalogue::route53::{
    Record, Rewrite, SetWeights, SwitchFailover, UpdateHealthCheck, UpsertRecords,
};
use crate::engine::{ActionError, Outputs, StepContext};

/// Most changes Route 53 accepts in one ChangeResourceRecordSets call.
pub const MAX_CHANGES_PER_BATCH: usize = 1000;
/// Most record values in one call; an UPSERT counts each value twice.
pub const MAX_VALUES_PER_BATCH: usize = 1000;
/// Most characters of record values in one call; an UPSERT counts them twice.
pub const MAX_VALUE_CHARS_PER_BATCH: usize = 32_000;

/// Split UPSERTs of `sets` into as few calls as Route 53's limits allow.
pub fn batches(sets: &[ResourceRecordSet]) -> Vec<&[ResourceRecordSet]> {
    let mut out = Vec::new();
    let mut start = 0;
    let (mut values, mut chars) = (0usize, 0usize);
    for (i, set) in sets.iter().enumerate() {
        let v = 2 * set.resource_records().len();
        let c = 2 * set
            .resource_records()
            .iter()
            .map(|r| r.value().len())
            .sum::<usize>();
        let full = i - start == MAX_CHANGES_PER_BATCH
            || values + v > MAX_VALUES_PER_BATCH
            || chars + c > MAX_VALUE_CHARS_PER_BATCH;
        if full && i > start {
            out.push(&sets[start..i]);
            start = i;
            values = 0;
            chars = 0;
        }
        values += v;
        chars += c;
    }
    if start < sets.len() {
        out.push(&sets[start..]);
    }
    out
}

fn fqdn(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// `*` matches any run of characters; names compare without case and
/// trailing dot.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern = fqdn(pattern);
    let name = fqdn(name);
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    true
}

pub(super) async fn zone_id(
    client: &aws_sdk_route53::Client,
    zone: &str,
) -> Result<String, ActionError> {
    if !zone.contains('.') {
        return Ok(zone.trim_start_matches("/hostedzone/").to_string());
    }
    let wanted = fqdn(zone);
    let out = client
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .send()
        .await
        .map_err(|e| classify(&format!("ListHostedZonesByName {wanted}"), e))?;
    out.hosted_zones()
        .iter()
        .find(|z| fqdn(z.name()) == wanted)
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .ok_or_else(|| ActionError::permanent(format!("no hosted zone {wanted}")))
}

pub(super) async fn record_sets(
    client: &aws_sdk_route53::Client,
    zone: &str,
) -> Result<Vec<ResourceRecordSet>, ActionError> {
    let mut all = Vec::new();
    // 300 a page, the API's maximum.
    let mut request = client
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .max_items(300);
    loop {
        let page = request
            .clone()
            .send()
            .await
            .map_err(|e| classify(&format!("ListResourceRecordSets {zone}"), e))?;
        all.extend(page.resource_record_sets().iter().cloned());
        if !page.is_truncated() {
            return Ok(all);
        }
        request = request
            .set_start_record_name(page.next_record_name().map(str::to_string))
            .set_start_record_type(page.next_record_type().cloned())
            .set_start_record_identifier(page.next_record_identifier().map(str::to_string));
    }
}

fn values(set: &ResourceRecordSet) -> Vec<&str> {
    set.resource_records()
        .iter()
        .map(ResourceRecord::value)
        .collect()
}

/// The routing policy of a record set, if it is routed.
fn routing_of(set: &ResourceRecordSet) -> Option<&'static str> {
    if set.weight().is_some() {
        Some("weighted")
    } else if set.region().is_some() {
        Some("latency")
    } else if set.failover().is_some() {
        Some("failover")
    } else if set.geo_location().is_some() {
        Some("geolocation")
    } else if set.geo_proximity_location().is_some() {
        Some("geoproximity")
    } else if set.multi_value_answer().is_some() {
        Some("multivalue")
    } else if set.cidr_routing_config().is_some() {
        Some("IP-based")
    } else {
        set.set_identifier().map(|_| "routed")
    }
}

/// How the zone holds a record set, for messages.
fn held_as(set: &ResourceRecordSet) -> String {
    let what = match set.alias_target() {
        Some(a) => format!("an alias to {}", a.dns_name()),
        None => format!("values {}", values(set).join(",")),
    };
    match set.set_identifier() {
        Some(id) => format!(
            "{} set `{id}` ({what})",
            routing_of(set).unwrap_or("routed")
        ),
        None => format!("a simple record ({what})"),
    }
}

fn names_match(set: &ResourceRecordSet, name: &str, kind: &str) -> bool {
    fqdn(set.name()) == fqdn(name) && set.r#type().as_str() == kind
}

fn invalid(what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::permanent(format!("record {what}: {e}"))
}

/// The record set `r` asks for, built on the one the zone holds under the
/// same name, type and set identifier so that what `r` leaves out (TTL,
/// routing, health check) is kept; an error, naming the record, where
/// Route 53 would refuse it or where it would silently turn an alias into
/// fixed addresses.
fn record_wanted(
    existing: &[ResourceRecordSet],
    zone: &str,
    r: &Record,
) -> Result<(ResourceRecordSet, Option<ResourceRecordSet>), ActionError> {
    let at = format!("{} {} in {zone}", r.name, r.record_type);
    let siblings: Vec<&ResourceRecordSet> = existing
        .iter()
        .filter(|s| names_match(s, &r.name, &r.record_type))
        .collect();
    let now = siblings
        .iter()
        .find(|s| s.set_identifier() == r.set_identifier.as_deref())
        .map(|s| (*s).clone());
    let refuse = |why: String| Err(ActionError::permanent(format!("record {at}: {why}")));
    match &r.set_identifier {
        None => {
            let routed: Vec<String> = siblings
                .iter()
                .filter(|s| s.set_identifier().is_some())
                .map(|s| held_as(s))
                .collect();
            if !routed.is_empty() {
                return refuse(format!(
                    "the zone holds it as {}; a record without `set_identifier` cannot be written beside routed sets (name the set with `set_identifier`; for a failover pair use `route53.switch_failover`)",
                    routed.join(", ")
                ));
            }
        }
        Some(id) => {
            if let Some(simple) = siblings.iter().find(|s| s.set_identifier().is_none()) {
                return refuse(format!(
                    "the zone holds it as {}; Route 53 refuses routed set `{id}` beside it",
                    held_as(simple)
                ));
            }
            let Some(policy) = r.routing().or_else(|| now.as_ref().and_then(routing_of)) else {
                return refuse(format!(
                    "the zone has no set `{id}`; give its routing (`weight`, `region` or `failover`) to create it"
                ));
            };
            if let Some(other) = siblings.iter().find(|s| {
                s.set_identifier().is_some_and(|o| o != id) && routing_of(s) != Some(policy)
            }) {
                return refuse(format!(
                    "set `{id}` would be {policy} but the zone holds {}; Route 53 routes a name and type by one policy",
                    held_as(other)
                ));
            }
        }
    }
    if r.alias.is_none()
        && let Some(alias) = now.as_ref().and_then(|n| n.alias_target())
    {
        return refuse(format!(
            "the zone holds it as an alias to {}; writing `values` would replace the alias target with fixed addresses (give `alias` to move it)",
            alias.dns_name()
        ));
    }
    let mut set = match &now {
        Some(set) => set.clone(),
        None => ResourceRecordSet::builder()
            .name(fqdn(&r.name))
            .r#type(RrType::from(r.record_type.as_str()))
            .build()
            .map_err(|e| invalid(&at, e))?,
    };
    match &r.alias {
        Some(a) => {
            // Route 53 stores alias names with the trailing dot.
            let dns_name = match set.alias_target() {
                Some(held) if fqdn(held.dns_name()) == fqdn(&a.dns_name) => {
                    held.dns_name().to_string()
                }
                _ => a.dns_name.clone(),
            };
            set.alias_target = Some(
                AliasTarget::builder()
                    .dns_name(dns_name)
                    .hosted_zone_id(a.zone_id.trim_start_matches("/hostedzone/"))
                    .evaluate_target_health(a.evaluate_target_health)
                    .build()
                    .map_err(|e| invalid(&at, e))?,
            );
            set.resource_records = None;
            set.ttl = None;
        }
        None => {
            set.ttl = Some(r.ttl.map(i64::from).or(set.ttl).unwrap_or(60));
            set.resource_records = Some(
                r.values
                    .iter()
                    .map(|v| ResourceRecord::builder().value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(&at, e))?,
            );
        }
    }
    if r.routing().is_some() {
        set.weight = r.weight.map(i64::from);
        set.region = r.region.as_deref().map(ResourceRecordSetRegion::from);
        set.failover = r
            .failover
            .map(|f| ResourceRecordSetFailover::from(f.as_str()));
        set.geo_location = None;
        set.geo_proximity_location = None;
        set.multi_value_answer = None;
        set.cidr_routing_config = None;
    }
    set.set_identifier = r.set_identifier.clone();
    if let Some(check) = &r.health_check_id {
        set.health_check_id = Some(check.clone());
    }
    Ok((set, now))
}

/// `set` with `rule` applied to its values or alias target; every other
/// field as it is.
fn rewritten(set: &ResourceRecordSet, rule: &Rewrite) -> Result<ResourceRecordSet, ActionError> {
    let mut new = set.clone();
    match set.alias_target() {
        Some(alias) => {
            let dns_name = alias.dns_name().replace(&rule.replace, &rule.with);
            if dns_name != alias.dns_name() {
                new.alias_target = Some(
                    AliasTarget::builder()
                        .dns_name(dns_name)
                        .hosted_zone_id(
                            rule.alias_zone_id
                                .as_deref()
                                .unwrap_or(alias.hosted_zone_id())
                                .trim_start_matches("/hostedzone/"),
                        )
                        .evaluate_target_health(alias.evaluate_target_health())
                        .build()
                        .map_err(|e| invalid(set.name(), e))?,
                );
            }
        }
        None => {
            new.resource_records = Some(
                values(set)
                    .iter()
                    .map(|v| {
                        ResourceRecord::builder()
                            .value(v.replace(&rule.replace, &rule.with))
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(set.name(), e))?,
            );
        }
    }
    Ok(new)
}

/// The record sets to write: each differs from what the zone holds now.
fn wanted(
    existing: &[ResourceRecordSet],
    w: &UpsertRecords,
) -> Result<Vec<ResourceRecordSet>, ActionError> {
    let mut out = Vec::new();
    for r in w.records.iter().flatten() {
        let (set, now) = record_wanted(existing, &w.zone, r)?;
        if now.as_ref() != Some(&set) {
            out.push(set);
        }
    }
    if let Some(rule) = &w.rewrite {
        for set in existing.iter().filter(|s| {
            s.r#type().as_str() == rule.record_type && glob_matches(&rule.name_pattern, s.name())
        }) {
            let new = rewritten(set, rule)?;
            if &new != set {
                out.push(new);
            }
        }
    }
    Ok(out)
}

/// The zone's id, how many record sets it holds, and the sets an upsert
/// would write; an error when a rewrite rule matches no record.
async fn upsert_plan(
    client: &aws_sdk_route53::Client,
    w: &UpsertRecords,
) -> Result<(String, usize, Vec<ResourceRecordSet>), ActionError> {
    let zone = zone_id(client, &w.zone).await?;
    let existing = record_sets(client, &zone).await?;
    if let Some(rule) = &w.rewrite
        && !existing
            .iter()
            .any(|s| glob_matches(&rule.name_pattern, s.name()))
    {
        return Err(ActionError::permanent(format!(
            "no record in {} matches `{}`",
            w.zone, rule.name_pattern
        )));
    }
    let sets = wanted(&existing, w)?;
    Ok((zone, existing.len(), sets))
}

/// `route53.upsert_records`.
pub(super) async fn upsert(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &UpsertRecords,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let (zone, _, sets) = upsert_plan(&client, w).await?;
    let mut change_ids = Vec::new();
    for batch in batches(&sets) {
        change_ids.push(send_upserts(&client, ctx, &zone, &w.zone, batch).await?);
    }
    if w.wait_insync {
        wait_insync(&client, ctx, &w.zone, &change_ids).await?;
    }
    Ok(Outputs::from([
        ("zone_id".to_string(), serde_json::json!(zone)),
        ("changed".to_string(), serde_json::json!(sets.len())),
        ("change_ids".to_string(), serde_json::json!(change_ids)),
    ]))
}

/// UPSERT `sets` in one change batch; the change's id.
async fn send_upserts(
    client: &aws_sdk_route53::Client,
    ctx: &StepContext,
    zone_id: &str,
    zone: &str,
    sets: &[ResourceRecordSet],
) -> Result<String, ActionError> {
    let changes = sets
        .iter()
        .map(|set| {
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ActionError::permanent(format!("change batch: {e}")))?;
    let change_batch = ChangeBatch::builder()
        .comment(format!("lifeboat run {} step {}", ctx.run_id, ctx.step_id))
        .set_changes(Some(changes))
        .build()
        .map_err(|e| ActionError::permanent(format!("change batch: {e}")))?;
    let out = client
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(change_batch)
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!("ChangeResourceRecordSets {zone} ({} changes)", sets.len()),
                e,
            )
        })?;
    Ok(out
        .change_info()
        .map(|info| info.id().trim_start_matches("/change/").to_string())
        .unwrap_or_default())
}

/// Poll each change until Route 53 reports it INSYNC.
async fn wait_insync(
    client: &aws_sdk_route53::Client,
    ctx: &StepContext,
    zone: &str,
    change_ids: &[String],
) -> Result<(), ActionError> {
    for id in change_ids.iter().filter(|id| !id.is_empty()) {
        poll_route53(
            ctx,
            &format!("change {id} in {zone} not INSYNC"),
            || async {
                let out = client
                    .get_change()
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| classify(&format!("GetChange {id}"), e))?;
                let status = out.change_info().map(|c| c.status().clone());
                Ok(match status {
                    Some(ChangeStatus::Insync) => Poll::Done(()),
                    other => Poll::NotYet(format!("{other:?}")),
                })
            },
        )
        .await?;
    }
    Ok(())
}

/// The two record sets of a failover pair, primary-to-be first.
fn failover_pair<'a>(
    existing: &'a [ResourceRecordSet],
    w: &SwitchFailover,
) -> Result<(&'a ResourceRecordSet, Option<&'a ResourceRecordSet>), ActionError> {
    let pair: Vec<&ResourceRecordSet> = existing
        .iter()
        .filter(|s| {
            fqdn(s.name()) == fqdn(&w.name)
                && s.r#type().as_str() == w.record_type
                && s.failover().is_some()
        })
        .collect();
    let Some(primary) = pair
        .iter()
        .find(|s| s.set_identifier() == Some(w.make_primary.as_str()))
    else {
        return Err(ActionError::permanent(format!(
            "no failover {} record {} with set identifier `{}` in {}",
            w.record_type, w.name, w.make_primary, w.zone
        )));
    };
    let other = pair
        .iter()
        .find(|s| s.set_identifier() != Some(w.make_primary.as_str()))
        .copied();
    Ok((primary, other))
}

/// `route53.switch_failover`: make the named record of a failover pair the
/// PRIMARY and the other the SECONDARY, in one atomic change batch, unless
/// it is the PRIMARY already; wait until INSYNC.
pub(super) async fn switch_failover(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SwitchFailover,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let (zone, existing) = zone_and_sets(&client, &w.zone).await?;
    let (primary, other) = failover_pair(&existing, w)?;
    let switched = primary.failover() != Some(&ResourceRecordSetFailover::Primary);
    let mut change_ids = Vec::new();
    if switched {
        let mut sets = vec![with_role(primary, ResourceRecordSetFailover::Primary)];
        sets.extend(other.map(|o| with_role(o, ResourceRecordSetFailover::Secondary)));
        change_ids.push(send_upserts(&client, ctx, &zone, &w.zone, &sets).await?);
    }
    if w.wait_insync {
        wait_insync(&client, ctx, &w.zone, &change_ids).await?;
    }
    Ok(Outputs::from([
        ("zone_id".to_string(), serde_json::json!(zone)),
        ("primary".to_string(), serde_json::json!(w.make_primary)),
        ("switched".to_string(), serde_json::json!(switched)),
        ("change_ids".to_string(), serde_json::json!(change_ids)),
    ]))
}

/// The id of hosted zone `zone` (by name or id) and every record set in it.
async fn zone_and_sets(
    client: &aws_sdk_route53::Client,
    zone: &str,
) -> Result<(String, Vec<ResourceRecordSet>), ActionError> {
    let id = zone_id(client, zone).await?;
    let sets = record_sets(client, &id).await?;
    Ok((id, sets))
}

/// The weighted record sets of `w`'s name and type, by set identifier.
fn weighted_group<'a>(
    existing: &'a [ResourceRecordSet],
    w: &SetWeights,
) -> Vec<&'a ResourceRecordSet> {
    let mut group: Vec<&ResourceRecordSet> = existing
        .iter()
        .filter(|s| {
            fqdn(s.name()) == fqdn(&w.name)
                && s.r#type().as_str() == w.record_type
                && s.weight().is_some()
        })
        .collect();
    group.sort_by_key(|s| s.set_identifier());
    group
}

/// Each weighted set's identifier and weight.
type Weights = Vec<(String, i64)>;

/// The weighted record sets of `w`'s name and type, each with the weight
/// `w` gives it (its own when `w` does not name it), and the sets whose
/// weight changes. Refused: a set identifier the group does not have, and
/// weights that would all be 0, which Route 53 answers by routing to every
/// set alike (not to none).
fn weight_plan(
    existing: &[ResourceRecordSet],
    w: &SetWeights,
) -> Result<(Weights, Vec<ResourceRecordSet>), ActionError> {
    let group = weighted_group(existing, w);
    let ids: Vec<&str> = group.iter().filter_map(|s| s.set_identifier()).collect();
    for id in w.weights.keys() {
        if !ids.contains(&id.as_str()) {
            return Err(ActionError::permanent(format!(
                "no weighted {} record {} with set identifier `{id}` in {} (its weighted sets: {})",
                w.record_type,
                w.name,
                w.zone,
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            )));
        }
    }
    let mut after = Vec::new();
    let mut changes = Vec::new();
    for set in group {
        let id = set.set_identifier().unwrap_or_default();
        let now = set.weight().unwrap_or_default();
        let want = w.weights.get(id).map_or(now, |&v| i64::from(v));
        if want != now {
            let mut changed = set.clone();
            changed.weight = Some(want);
            changes.push(changed);
        }
        after.push((id.to_string(), want));
    }
    if after.iter().all(|(_, weight)| *weight == 0) {
        return Err(ActionError::permanent(format!(
            "every weighted {} record {} would weigh 0, which Route 53 answers by routing to all of them alike, not to none: keep one above 0",
            w.record_type, w.name
        )));
    }
    Ok((after, changes))
}

/// `route53.set_weights`: give the named weighted sets their weights, in
/// one atomic change batch of those that differ; wait until INSYNC.
pub(super) async fn set_weights(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetWeights,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let (zone, existing) = zone_and_sets(&client, &w.zone).await?;
    let (after, changes) = weight_plan(&existing, w)?;
    let mut change_ids = Vec::new();
    if !changes.is_empty() {
        change_ids.push(send_upserts(&client, ctx, &zone, &w.zone, &changes).await?);
    }
    if w.wait_insync {
        wait_insync(&client, ctx, &w.zone, &change_ids).await?;
    }
    Ok(weights_out(&zone, &after, &changes, &change_ids))
}

fn weights_out(
    zone: &str,
    after: &[(String, i64)],
    changes: &[ResourceRecordSet],
    change_ids: &[String],
) -> Outputs {
    let weights: serde_json::Map<String, serde_json::Value> = after
        .iter()
        .map(|(id, weight)| (id.clone(), serde_json::json!(weight)))
        .collect();
    let changed: Vec<&str> = changes.iter().filter_map(|s| s.set_identifier()).collect();
    Outputs::from([
        ("zone_id".to_string(), serde_json::json!(zone)),
        ("weights".to_string(), serde_json::Value::Object(weights)),
        ("changed".to_string(), serde_json::json!(changed)),
        ("change_ids".to_string(), serde_json::json!(change_ids)),
    ])
}

/// `route53.set_weights` in a drill: the weighted sets are copied under
/// `drill-<run>.<name>` with the new weights (the torn-down copy shows the
/// change); the live sets keep theirs.
pub(super) async fn drill_set_weights(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SetWeights,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let (zone, existing) = zone_and_sets(&client, &w.zone).await?;
    let (after, _) = weight_plan(&existing, w)?;
    let copies: Vec<ResourceRecordSet> = weighted_group(&existing, w)
        .into_iter()
        .map(|s| {
            let mut copy = s.clone();
            copy.name = super::drill::record_name(&copy.name, &ctx.run_id);
            let id = s.set_identifier().unwrap_or_default();
            copy.weight = after.iter().find(|(i, _)| i == id).map(|(_, w)| *w);
            copy
        })
        .collect();
    let change = send_upserts(&client, ctx, &zone, &w.zone, &copies).await?;
    if w.wait_insync {
        wait_insync(&client, ctx, &w.zone, std::slice::from_ref(&change)).await?;
    }
    let mut out = weights_out(&zone, &after, &copies, std::slice::from_ref(&change));
    out.insert(
        "drill".to_string(),
        serde_json::json!(format!(
            "wrote the weighted sets as {} with the new weights; the live sets kept theirs",
            copies.first().map_or("", |c| c.name())
        )),
    );
    Ok(out)
}

/// `route53.upsert_records` in a drill: the same records, under
/// `drill-<run>.<name>` instead of the live names.
pub(super) async fn drill_upsert(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &UpsertRecords,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let (zone, _, sets) = upsert_plan(&client, w).await?;
    let renamed: Vec<ResourceRecordSet> = sets
        .into_iter()
        .map(|mut set| {
            set.name = super::drill::record_name(&set.name, &ctx.run_id);
            set
        })
        .collect();
    let mut change_ids = Vec::new();
    for batch in batches(&renamed) {
        change_ids.push(send_upserts(&client, ctx, &zone, &w.zone, batch).await?);
    }
    if w.wait_insync {
        wait_insync(&client, ctx, &w.zone, &change_ids).await?;
    }
    let names: Vec<&str> = renamed.iter().map(|s| s.name()).collect();
    Ok(Outputs::from([
        ("zone_id".to_string(), serde_json::json!(zone)),
        ("changed".to_string(), serde_json::json!(renamed.len())),
        ("change_ids".to_string(), serde_json::json!(change_ids)),
        (
            "drill".to_string(),
            serde_json::json!(format!(
                "wrote {} instead of the live records",
                names.join(", ")
            )),
        ),
    ]))
}

/// `route53.switch_failover` in a drill: the record that would become the
/// PRIMARY is written as a simple record under `drill-<run>.<name>`; the
/// live pair is not touched.
pub(super) async fn drill_switch(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &SwitchFailover,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let (zone, existing) = zone_and_sets(&client, &w.zone).await?;
    let (primary, _) = failover_pair(&existing, w)?;
    let mut copy = primary.clone();
    copy.name = super::drill::record_name(&copy.name, &ctx.run_id);
    copy.failover = None;
    copy.set_identifier = None;
    copy.health_check_id = None;
    let change = send_upserts(&client, ctx, &zone, &w.zone, std::slice::from_ref(&copy)).await?;
    if w.wait_insync {
        wait_insync(&client, ctx, &w.zone, std::slice::from_ref(&change)).await?;
    }
    Ok(Outputs::from([
        ("zone_id".to_string(), serde_json::json!(zone)),
        ("primary".to_string(), serde_json::json!(w.make_primary)),
        ("switched".to_string(), serde_json::json!(false)),
        ("change_ids".to_string(), serde_json::json!([change])),
        (
            "drill".to_string(),
            serde_json::json!(format!(
                "wrote `{}`'s target as {}; the live failover pair was not switched",
                w.make_primary,
                copy.name()
            )),
        ),
    ]))
}

fn with_role(set: &ResourceRecordSet, role: ResourceRecordSetFailover) -> ResourceRecordSet {
    let mut set = set.clone();
    set.failover = Some(role);
    set
}

/// `route53.update_health_check`: set `inverted` / `disabled` unless they
/// are set so already.
pub(super) async fn update_health_check(
    aws: &AwsClients,
    w: &UpdateHealthCheck,
) -> Result<Outputs, ActionError> {
    let client = aws.route53();
    let id = w.health_check_id.as_str();
    let check = health_check(&client, id).await?;
    let config = check.health_check_config();
    let inverted_now = config.and_then(|c| c.inverted()).unwrap_or(false);
    let disabled_now = config.and_then(|c| c.disabled()).unwrap_or(false);
    let changed = w.inverted.is_some_and(|v| v != inverted_now)
        || w.disabled.is_some_and(|v| v != disabled_now);
    if changed {
        client
            .update_health_check()
            .health_check_id(id)
            .health_check_version(check.health_check_version())
            .set_inverted(w.inverted)
            .set_disabled(w.disabled)
            .send()
            .await
            .map_err(|e| classify(&format!("UpdateHealthCheck {id}"), e))?;
    }
    Ok(Outputs::from([
        ("health_check_id".to_string(), serde_json::json!(id)),
        ("changed".to_string(), serde_json::json!(changed)),
        (
            "inverted".to_string(),
            serde_json::json!(w.inverted.unwrap_or(inverted_now)),
        ),
        (
            "disabled".to_string(),
            serde_json::json!(w.disabled.unwrap_or(disabled_now)),
        ),
    ]))
}

async fn health_check(
    client: &aws_sdk_route53::Client,
    id: &str,
) -> Result<HealthCheck, ActionError> {
    let answer = client.get_health_check().health_check_id(id).send().await;
    found(&format!("GetHealthCheck {id}"), answer, |e| {
        e.is_no_such_health_check()
    })?
    .and_then(|out| out.health_check().cloned())
    .ok_or_else(|| ActionError::permanent(format!("no health check {id}")))
}

/// Whether the Route 53 action `input` could run now.
pub(super) async fn preflight(
    aws: &AwsClients,
    input: &ActionInput,
) -> Result<Readiness, ActionError> {
    let client = aws.route53();
    let verdict = Readiness::judge;
    match input {
        ActionInput::Route53UpsertRecords(w) => {
            verdict(upsert_plan(&client, w).await.map(|(zone, existing, sets)| {
                format!(
                    "zone {} ({zone}) holds {existing} record sets; {} would change",
                    w.zone,
                    sets.len()
                )
            }))
        }
        ActionInput::Route53SwitchFailover(w) => verdict(
            async {
                let (_, existing) = zone_and_sets(&client, &w.zone).await?;
                let (primary, other) = failover_pair(&existing, w)?;
                Ok(format!(
                    "failover pair {} found; `{}` is {} now{}",
                    w.name,
                    w.make_primary,
                    primary.failover().map_or("?", |f| f.as_str()),
                    if other.is_none() {
                        " (it has no partner)"
                    } else {
                        ""
                    }
                ))
            }
            .await,
        ),
        ActionInput::Route53SetWeights(w) => verdict(
            async {
                let (_, existing) = zone_and_sets(&client, &w.zone).await?;
                let (after, changes) = weight_plan(&existing, w)?;
                Ok(format!(
                    "weighted sets of {} weigh {} after; {} would change",
                    w.name,
                    after
                        .iter()
                        .map(|(id, weight)| format!("{id}={weight}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    changes.len()
                ))
            }
            .await,
        ),
        ActionInput::Route53UpdateHealthCheck(w) => verdict(
            health_check(&client, &w.health_check_id)
                .await
                .map(|_| format!("health check {} exists", w.health_check_id)),
        ),
        other => Ok(Readiness::Unchecked(format!(
            "{} is not a Route 53 action",
            other.kind()
        ))),
    }
}

/// What `upsert` would do, for dry runs.
pub(super) fn describe(w: &UpsertRecords) -> Vec<String> {
    let what = match (&w.records, &w.rewrite) {
        (Some(records), _) => records
            .iter()
            .map(|r| {
                let target = match &r.alias {
                    Some(a) => format!("alias {} (zone {})", a.dns_name, a.zone_id),
                    None => r.values.join(","),
                };
                match &r.set_identifier {
                    Some(id) => format!("{} {} set `{id}` -> {target}", r.name, r.record_type),
                    None => format!("{} {} -> {target}", r.name, r.record_type),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        (_, Some(rule)) => format!(
            "{} records matching {}: `{}` -> `{}`",
            rule.record_type, rule.name_pattern, rule.replace, rule.with
        ),
        _ => String::new(),
    };
    vec![
        format!(
            "route53:ListHostedZonesByName {} and ListResourceRecordSets",
            w.zone
        ),
        format!(
            "route53:ChangeResourceRecordSets UPSERT of those that differ ({what}), as few batches as Route 53's limits allow"
        ),
        "route53:GetChange until INSYNC".to_string(),
    ]
}

/// A Route 53 health check's verdict from its checkers' reports: healthy
/// when more than 18% report success, as Route 53 itself decides ("How
/// Amazon Route 53 determines whether a health check is healthy"), so
/// lifeboat never calls a region down while DNS still sends users there.
pub fn judge_observations<'a>(id: &str, reports: impl Iterator<Item = &'a str>) -> (bool, String) {
    let (mut ok, mut total, mut failure) = (0usize, 0usize, None);
    for report in reports {
        total += 1;
        if report.starts_with("Success") {
            ok += 1;
        } else if failure.is_none() {
            failure = Some(report.to_string());
        }
    }
    if total == 0 {
        return (false, format!("health check {id}: no checker has reported"));
    }
    // ok / total > 18 / 100, in integers.
    let healthy = ok * 100 > total * 18;
    let mut detail = format!("health check {id}: {ok} of {total} checkers report success");
    if let Some(f) = failure.filter(|_| !healthy) {
        detail.push_str(&format!("; e.g. {f}"));
    }
    (healthy, detail)
}

#[cfg(test)]
mod tests {
    use super::{glob_matches, judge_observations};

    #[test]
    fn a_health_check_is_healthy_when_more_than_18_percent_of_checkers_say_so() {
        let ok = "Success: HTTP Status Code: 200. OK";
        let bad = "Failure: Connection timed out.";
        let reports = |ok_count: usize, total: usize| {
            (0..total).map(move |i| if i < ok_count { ok } else { bad })
        };
        // Route 53's rule: healthy when more than 18% of checkers report
        // success. A minority of successes still routes users there.
        assert!(judge_observations("hc", reports(1, 3)).0, "1 of 3 is 33%");
        assert!(judge_observations("hc", reports(2, 10)).0, "2 of 10 is 20%");
        let (healthy, detail) = judge_observations("hc", reports(3, 16));
        assert!(healthy, "3 of 16 is 18.75%: {detail}");
        let (healthy, detail) = judge_observations("hc", reports(9, 50));
        assert!(!healthy, "9 of 50 is exactly 18%, not more");
        assert!(
            detail.contains("9 of 50") && detail.contains("Connection timed out"),
            "{detail}"
        );
        assert!(!judge_observations("hc", reports(0, 16)).0);
        assert!(!judge_observations("hc", std::iter::empty()).0);
    }

    #[test]
    fn batches_respect_the_weighted_limits() {
        let set = |values: usize| {
            let records = (0..values)
                .map(|i| {
                    super::ResourceRecord::builder()
                        .value(format!("10.0.0.{i}"))
                        .build()
                        .unwrap()
                })
                .collect();
            super::ResourceRecordSet::builder()
                .name("a.example.com.")
                .r#type(super::RrType::A)
                .set_resource_records(Some(records))
                .build()
                .unwrap()
        };
        let singles: Vec<_> = (0..1200).map(|_| set(1)).collect();
        let sizes: Vec<usize> = super::batches(&singles).iter().map(|b| b.len()).collect();
        assert_eq!(
            sizes,
            vec![500, 500, 200],
            "an UPSERT counts each value twice"
        );
        let wide: Vec<_> = (0..3).map(|_| set(200)).collect();
        let sizes: Vec<usize> = super::batches(&wide).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![2, 1]);
        assert!(super::batches(&[]).is_empty());
    }

    #[test]
    fn glob_matches_record_names() {
        assert!(glob_matches("svc-*.example.com", "svc-12.example.com."));
        assert!(glob_matches("*.example.com.", "a.b.example.com"));
        assert!(!glob_matches("svc-*.example.com", "legacy.example.com."));
        assert!(glob_matches("APP.example.com", "app.example.com."));
        assert!(!glob_matches("svc-*-x.example.com", "svc-1.example.com"));
    }
}
