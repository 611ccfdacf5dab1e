//! ARC zonal shift: move managed resources' traffic away from an
//! Availability Zone until an expiry, and cancel what lifeboat started.
//!
//! ARC names zones by zone ID (`use1-az1`), the same physical zone in
//! every account, where a zone's name (`us-east-1a`) maps to a different
//! one in each account: a name is resolved in the step's account first.
//! ARC holds one customer shift per resource, so the shifts of a resource
//! are read before any is started: one away from the same zone is this
//! step's (or an earlier attempt's) work, one away from another zone is
//! refused with what it is. The shifts lifeboat starts carry its marker in
//! their comment, and only those are cancelled.

use aws_sdk_arczonalshift::types::{ShiftType, ZonalShiftStatus, ZonalShiftSummary};
use aws_smithy_types::date_time::Format;

use super::aws_error::{classify, found};
use super::region_of;
use crate::aws::AwsClients;
use crate::catalogue::arc::{CancelZonalShift, StartZonalShift};
use crate::engine::{ActionError, Outputs, StepContext};

/// A zone as the step gave it, resolved: its name and its zone ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Zone {
    /// `us-east-1a`.
    pub name: String,
    /// `use1-az1`.
    pub id: String,
}

/// Whether `zone` is written as a zone ID (`use1-az1`), not a name.
fn is_zone_id(zone: &str) -> bool {
    zone.rsplit_once("-az")
        .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Resolve a zone name or ID in the step's account and region.
pub(crate) async fn zone(aws: &AwsClients, region: &str, zone: &str) -> Result<Zone, ActionError> {
    let request = aws.ec2(region).describe_availability_zones();
    let request = if is_zone_id(zone) {
        request.zone_ids(zone)
    } else {
        request.zone_names(zone)
    };
    let what = format!("DescribeAvailabilityZones {zone} in {region}");
    let answer = found(&what, request.send().await, |e| {
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(e)
            == Some("InvalidParameterValue")
    })?;
    answer
        .and_then(|out| {
            out.availability_zones().first().map(|z| Zone {
                name: z.zone_name().unwrap_or(zone).to_string(),
                id: z.zone_id().unwrap_or(zone).to_string(),
            })
        })
        .ok_or_else(|| ActionError::permanent(format!("no Availability Zone {zone} in {region}")))
}

/// The step's region, the zone resolved there, and an ARC client there.
async fn arc_in<'a>(
    aws: &AwsClients,
    ctx: &'a StepContext,
    away_from: &str,
) -> Result<(&'a str, Zone, aws_sdk_arczonalshift::Client), ActionError> {
    let region = region_of(ctx)?;
    let away = zone(aws, region, away_from).await?;
    Ok((region, away, aws.arc_zonal_shift(region)))
}

/// The marker lifeboat's shifts carry at the start of their comment.
fn marker(run: &str) -> String {
    format!("lifeboat {run}")
}

fn is_lifeboats(s: &ZonalShiftSummary) -> bool {
    s.comment().starts_with("lifeboat ")
}

/// The comment of a shift this step starts: the marker, then the runbook's
/// comment or the step, within ARC's 128 characters.
fn comment(ctx: &StepContext, w: &StartZonalShift) -> String {
    let text = format!(
        "{}: {}",
        marker(&ctx.run_id),
        w.comment.as_deref().unwrap_or(&ctx.step_id)
    );
    text.chars().take(128).collect()
}

/// ARC's `expiresIn` for a duration the catalogue checked (whole minutes).
fn expires_in(w: &StartZonalShift) -> String {
    format!("{}m", w.expires_in.get().as_secs() / 60)
}

/// The active customer shifts of `resource` (practice runs and autoshifts
/// yield to a customer's shift, so they do not stand in its way).
async fn active_shifts(
    client: &aws_sdk_arczonalshift::Client,
    region: &str,
    resource: &str,
) -> Result<Vec<ZonalShiftSummary>, ActionError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_zonal_shifts()
            .resource_identifier(resource)
            .status(ZonalShiftStatus::Active)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify(&format!("ListZonalShifts {resource} in {region}"), e))?;
        out.extend(customer_shifts(page.items()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Of listed shifts, the active ones a customer started.
fn customer_shifts(items: &[ZonalShiftSummary]) -> Vec<ZonalShiftSummary> {
    items
        .iter()
        .filter(|s| *s.status() == ZonalShiftStatus::Active)
        .filter(|s| matches!(s.shift_type(), None | Some(ShiftType::ZonalShift)))
        .cloned()
        .collect()
}

/// What to do about one resource, given its active customer shifts: an
/// existing shift away from `zone_id` is the step's (returned), none means
/// start one, and one away from another zone is refused.
fn judge(
    resource: &str,
    zone_id: &str,
    active: &[ZonalShiftSummary],
) -> Result<Option<ZonalShiftSummary>, ActionError> {
    if let Some(s) = active.iter().find(|s| s.away_from() == zone_id) {
        return Ok(Some(s.clone()));
    }
    match active.first() {
        None => Ok(None),
        Some(other) => Err(ActionError::permanent(format!(
            "{resource} already has an active zonal shift {} away from {} (\"{}\"); ARC holds one shift per resource: cancel it before shifting away from {zone_id}",
            other.zonal_shift_id(),
            other.away_from(),
            other.comment()
        ))),
    }
}

/// The outputs of a step whose `resources` is empty: nothing to shift.
fn nothing_named() -> Outputs {
    Outputs::from([
        ("zonal_shifts".to_string(), serde_json::json!({})),
        ("started".to_string(), serde_json::json!([])),
        ("cancelled".to_string(), serde_json::json!([])),
        (
            "note".to_string(),
            serde_json::json!("no resources named: no zonal shift"),
        ),
    ])
}

fn rfc3339(t: &aws_smithy_types::DateTime) -> String {
    t.fmt(Format::DateTime).unwrap_or_default()
}

/// `arc.start_zonal_shift`: for each resource without a shift away from
/// the zone, start one with the step's expiry; every resource ends with an
/// active shift away from it.
pub(super) async fn start(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &StartZonalShift,
) -> Result<Outputs, ActionError> {
    if w.resources.is_empty() {
        return Ok(nothing_named());
    }
    let (region, away, client) = arc_in(aws, ctx, &w.away_from).await?;
    let mut shifts = serde_json::Map::new();
    let mut started = Vec::new();
    let mut expiry = Vec::new();
    for resource in &w.resources {
        let active = active_shifts(&client, region, resource).await?;
        let (id, until) = match judge(resource, &away.id, &active)? {
            Some(existing) => (
                existing.zonal_shift_id().to_string(),
                rfc3339(existing.expiry_time()),
            ),
            None => {
                let what = format!(
                    "StartZonalShift {resource} away from {} in {region}",
                    away.id
                );
                match client
                    .start_zonal_shift()
                    .resource_identifier(resource)
                    .away_from(&away.id)
                    .expires_in(expires_in(w))
                    .comment(comment(ctx, w))
                    .send()
                    .await
                {
                    Ok(out) => {
                        started.push(resource.clone());
                        (out.zonal_shift_id().to_string(), rfc3339(out.expiry_time()))
                    }
                    // A shift appeared since the read: an earlier attempt's
                    // whose answer was lost, if it is away from this zone.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_conflict_exception()) =>
                    {
                        let e = classify(&what, e);
                        let now = active_shifts(&client, region, resource).await?;
                        match judge(resource, &away.id, &now)? {
                            Some(s) => (s.zonal_shift_id().to_string(), rfc3339(s.expiry_time())),
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(classify(&what, e)),
                }
            }
        };
        shifts.insert(resource.clone(), serde_json::json!(id));
        expiry.push(until);
    }
    expiry.sort();
    Ok(Outputs::from([
        (
            "zonal_shifts".to_string(),
            serde_json::Value::Object(shifts),
        ),
        ("started".to_string(), serde_json::json!(started)),
        ("away_from".to_string(), serde_json::json!(away.id)),
        ("zone_name".to_string(), serde_json::json!(away.name)),
        ("expires_at".to_string(), serde_json::json!(expiry.first())),
    ]))
}

/// `arc.cancel_zonal_shift`: cancel each active shift lifeboat started
/// away from the zone; a shift someone else started is left and listed.
pub(super) async fn cancel(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CancelZonalShift,
) -> Result<Outputs, ActionError> {
    if w.resources.is_empty() {
        return Ok(nothing_named());
    }
    let (region, away, client) = arc_in(aws, ctx, &w.away_from).await?;
    let mut cancelled = Vec::new();
    let mut left = Vec::new();
    for resource in &w.resources {
        for shift in active_shifts(&client, region, resource)
            .await?
            .into_iter()
            .filter(|s| s.away_from() == away.id)
        {
            let id = shift.zonal_shift_id().to_string();
            if !is_lifeboats(&shift) {
                left.push(format!("{id} on {resource} (\"{}\")", shift.comment()));
                continue;
            }
            let answer = client.cancel_zonal_shift().zonal_shift_id(&id).send().await;
            // Ended meanwhile (expired, or an earlier attempt cancelled it).
            let ended = |e: &aws_sdk_arczonalshift::operation::cancel_zonal_shift::CancelZonalShiftError| {
                e.is_conflict_exception() || e.is_resource_not_found_exception()
            };
            found(&format!("CancelZonalShift {id} in {region}"), answer, ended)?;
            cancelled.push(id);
        }
    }
    Ok(Outputs::from([
        ("cancelled".to_string(), serde_json::json!(cancelled)),
        ("left".to_string(), serde_json::json!(left)),
        ("away_from".to_string(), serde_json::json!(away.id)),
    ]))
}

/// A drill's stand-in for `arc.start_zonal_shift` (and its preflight): the
/// zone resolved, each resource managed by ARC and free of another shift,
/// and what would be started.
pub(super) async fn would_start(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &StartZonalShift,
) -> Result<String, ActionError> {
    if w.resources.is_empty() {
        return Ok("no resources named: no zonal shift".to_string());
    }
    let (region, away, client) = arc_in(aws, ctx, &w.away_from).await?;
    let mut would = Vec::new();
    let mut already = Vec::new();
    for resource in &w.resources {
        let managed = client
            .get_managed_resource()
            .resource_identifier(resource)
            .send()
            .await;
        let what = format!("GetManagedResource {resource} in {region}");
        if found(&what, managed, |e| e.is_resource_not_found_exception())?.is_none() {
            return Err(ActionError::permanent(format!(
                "ARC does not manage {resource} in {region}: zonal shift applies to load balancers, Auto Scaling groups and EKS clusters registered with it"
            )));
        }
        match judge(
            resource,
            &away.id,
            &active_shifts(&client, region, resource).await?,
        )? {
            Some(s) => already.push(format!("{resource} ({})", s.zonal_shift_id())),
            None => would.push(resource.clone()),
        }
    }
    let mut note = format!(
        "would shift traffic away from {} ({}) for {}",
        away.name, away.id, w.expires_in
    );
    if !would.is_empty() {
        note.push_str(&format!(": {}", would.join(", ")));
    }
    if !already.is_empty() {
        note.push_str(&format!("; already shifted: {}", already.join(", ")));
    }
    Ok(note)
}

/// A drill's stand-in for `arc.cancel_zonal_shift`: which shifts it would
/// cancel.
pub(super) async fn would_cancel(
    aws: &AwsClients,
    ctx: &StepContext,
    w: &CancelZonalShift,
) -> Result<String, ActionError> {
    if w.resources.is_empty() {
        return Ok("no resources named: no zonal shift to cancel".to_string());
    }
    let (region, away, client) = arc_in(aws, ctx, &w.away_from).await?;
    let mut ours = Vec::new();
    for resource in &w.resources {
        for s in active_shifts(&client, region, resource).await? {
            if s.away_from() == away.id && is_lifeboats(&s) {
                ours.push(format!("{} on {resource}", s.zonal_shift_id()));
            }
        }
    }
    Ok(if ours.is_empty() {
        format!(
            "no shift of lifeboat's is active away from {}: nothing to cancel",
            away.id
        )
    } else {
        format!("would cancel {}", ours.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;

    fn shift(id: &str, away: &str, comment: &str, kind: Option<ShiftType>) -> ZonalShiftSummary {
        ZonalShiftSummary::builder()
            .zonal_shift_id(id)
            .resource_identifier(
                "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/app/web/1",
            )
            .away_from(away)
            .expiry_time(DateTime::from_secs(1_800_000_000))
            .start_time(DateTime::from_secs(1_799_990_000))
            .status(ZonalShiftStatus::Active)
            .comment(comment)
            .set_shift_type(kind)
            .build()
            .expect("a summary")
    }

    #[test]
    fn zone_ids_are_told_from_names() {
        assert!(is_zone_id("use1-az1"));
        assert!(is_zone_id("usw2-az12"));
        assert!(!is_zone_id("us-east-1a"));
        assert!(!is_zone_id("use1-az"));
    }

    #[test]
    fn a_shift_away_from_the_zone_is_the_steps_another_is_refused() {
        let ours = shift(
            "s-1",
            "use1-az1",
            "lifeboat run-1: zonal",
            Some(ShiftType::ZonalShift),
        );
        assert_eq!(
            judge("lb", "use1-az1", std::slice::from_ref(&ours))
                .expect("judged")
                .map(|s| s.zonal_shift_id().to_string()),
            Some("s-1".to_string())
        );
        assert_eq!(judge("lb", "use1-az1", &[]).expect("judged"), None);
        let other = shift("s-2", "use1-az2", "maintenance", None);
        let err = judge("lb", "use1-az1", &[other]).expect_err("refused");
        assert!(
            err.message
                .contains("s-2 away from use1-az2 (\"maintenance\")")
                && err
                    .message
                    .contains("cancel it before shifting away from use1-az1"),
            "{}",
            err.message
        );
    }

    #[test]
    fn practice_runs_and_autoshifts_do_not_count_as_a_customers_shift() {
        let items = [
            shift("p", "use1-az2", "practice", Some(ShiftType::PracticeRun)),
            shift(
                "a",
                "use1-az2",
                "autoshift",
                Some(ShiftType::ZonalAutoshift),
            ),
            shift(
                "c",
                "use1-az1",
                "lifeboat r: s",
                Some(ShiftType::ZonalShift),
            ),
        ];
        let kept: Vec<String> = customer_shifts(&items)
            .iter()
            .map(|s| s.zonal_shift_id().to_string())
            .collect();
        assert_eq!(kept, ["c"]);
    }

    #[test]
    fn the_comment_carries_the_marker_within_arcs_length() {
        let ctx = StepContext {
            run_id: "run-9".into(),
            step_id: "zonal-shift".into(),
            mode: crate::runbook::Mode::Failover,
            region: Some("us-east-1".into()),
            attempt: 1,
            resumed: false,
            deadline: tokio::time::Instant::now(),
            assume_role: None,
            placement: Default::default(),
            expected: None,
        };
        let w = StartZonalShift {
            resources: vec!["arn:x".into()],
            away_from: "us-east-1a".into(),
            expires_in: crate::duration::HumanDuration::from_secs(2 * 3600),
            comment: None,
        };
        assert_eq!(comment(&ctx, &w), "lifeboat run-9: zonal-shift");
        assert_eq!(expires_in(&w), "120m");
        let long = StartZonalShift {
            comment: Some("x".repeat(200)),
            ..w
        };
        assert_eq!(comment(&ctx, &long).chars().count(), 128);
        assert!(is_lifeboats(&shift("s", "z", &comment(&ctx, &long), None)));
    }
}
