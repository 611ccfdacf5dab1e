//! High availability: several daemons (one per region plus a witness)
//! sharing one journal in etcd, of which one, elected through an etcd
//! lease, executes.
//!
//! - [`etcd`]: the connection, usable from the journal's blocking calls.
//! - [`store`]: the journal's records in etcd, every leader write fenced
//!   by its election key's revision.
//! - [`lease`]: the session lease kept alive, its local validity clock,
//!   the campaign.
//! - here: the health reports daemons publish, the cross-daemon quorum
//!   the leader's outage decision needs, and the timing rule a config
//!   must satisfy.
//!
//! Every daemon probes and publishes its view of each region (attached to
//! its lease, so a dead daemon's view disappears with it). Only the leader
//! decides and executes; a region is down for it only when daemons in at
//! least `quorum_places` different places report it down. A leader that
//! loses its lease (by its local clock, which runs out before the
//! cluster's) stops every step at once; the daemon elected next resumes
//! interrupted runs from the shared journal, observing before it acts.

pub mod etcd;
pub mod lease;
pub mod store;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One daemon's view of one region, as it publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The daemon's name.
    pub daemon: String,
    /// Where it runs (a region, or a witness site).
    pub place: String,
    /// The region it reports on.
    pub region: String,
    /// `healthy`, `degraded` or `down`.
    pub state: String,
    /// When its probes first failed in the failure it declared.
    pub incident_start: Option<String>,
    /// When it wrote this.
    pub at: String,
    /// Its failing probes.
    pub failing: Vec<String>,
}

/// Daemons in enough places agree that a region is down.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// The places whose daemons report it down.
    pub places: BTreeSet<String>,
    /// The earliest first failure among them.
    pub incident_start: Option<String>,
}

/// Whether daemons in at least `quorum_places` distinct places report
/// `region` down.
pub fn agreement(reports: &[Report], region: &str, quorum_places: usize) -> Option<Agreement> {
    let down: Vec<&Report> = reports
        .iter()
        .filter(|r| r.region == region && r.state == "down")
        .collect();
    let places: BTreeSet<String> = down.iter().map(|r| r.place.clone()).collect();
    if places.len() < quorum_places.max(1) {
        return None;
    }
    let incident_start = down.iter().filter_map(|r| r.incident_start.clone()).min();
    Some(Agreement {
        places,
        incident_start,
    })
}

/// The timing rule, checked when the config is loaded: what is wrong, if
/// anything, with these settings against the fastest detection any
/// probe can make (`interval` x `failure_threshold`).
///
/// - a step boundary (one journal write) must fit three times in the
///   lease: `request_timeout` x 3 <= `lease_ttl`. The lease is renewed
///   every third of its TTL, so one slow round trip never loses it, and a
///   write that may not come back before the lease could run out is never
///   started;
/// - a dead leader must be replaced before an outage could be declared
///   without it: `lease_ttl` <= the fastest detection. Takeover then costs
///   no more than the detection already does, and a health report is
///   renewed (every third of the TTL) several times per detection;
/// - etcd does not grant leases under about 2 s: `lease_ttl` >= 2s.
pub fn timing_problems(
    lease_ttl: Duration,
    request_timeout: Duration,
    fastest_detection: Option<(String, Duration)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if lease_ttl < Duration::from_secs(2) {
        problems.push(format!(
            "`lease_ttl` {lease_ttl:?} is under 2s, the shortest lease etcd grants"
        ));
    }
    if request_timeout * 3 > lease_ttl {
        problems.push(format!(
            "`request_timeout` {request_timeout:?} x 3 exceeds `lease_ttl` {lease_ttl:?}: a step boundary (one journal write) must fit three times in the lease, so that a slow write or keep-alive cannot outlive it"
        ));
    }
    if let Some((probe, detection)) = fastest_detection
        && lease_ttl > detection
    {
        problems.push(format!(
            "`lease_ttl` {lease_ttl:?} exceeds the {detection:?} probe `{probe}` needs to declare a failure (interval x failure_threshold): a dead leader must be replaced before an outage can be declared without it"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(daemon: &str, place: &str, state: &str, incident: Option<&str>) -> Report {
        Report {
            daemon: daemon.into(),
            place: place.into(),
            region: "us-east-1".into(),
            state: state.into(),
            incident_start: incident.map(str::to_string),
            at: "2026-12-01T00:00:00Z".into(),
            failing: Vec::new(),
        }
    }

    #[test]
    fn a_region_is_down_only_when_daemons_in_enough_places_agree() {
        let one_place = [
            report("a", "us-east-1", "down", Some("2026-12-01T00:00:02Z")),
            report("a2", "us-east-1", "down", Some("2026-12-01T00:00:01Z")),
            report("b", "us-west-2", "healthy", None),
        ];
        assert_eq!(agreement(&one_place, "us-east-1", 2), None);
        let two_places = [
            report("a", "us-east-1", "down", Some("2026-12-01T00:00:02Z")),
            report("b", "us-west-2", "down", Some("2026-12-01T00:00:01Z")),
            report("w", "witness", "degraded", None),
        ];
        let agreed = agreement(&two_places, "us-east-1", 2).expect("two places agree");
        assert_eq!(agreed.places.len(), 2);
        assert_eq!(
            agreed.incident_start.as_deref(),
            Some("2026-12-01T00:00:01Z")
        );
        assert_eq!(agreement(&two_places, "us-east-1", 3), None);
        assert_eq!(agreement(&two_places, "eu-west-1", 1), None);
    }

    #[test]
    fn the_timing_rule_names_each_broken_relation() {
        let s = Duration::from_secs;
        assert!(timing_problems(s(6), s(2), Some(("http".into(), s(6)))).is_empty());
        let p = timing_problems(s(6), s(3), Some(("http".into(), s(4))));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("request_timeout"));
        assert!(p[1].contains("probe `http`"));
        assert!(
            timing_problems(
                Duration::from_millis(1500),
                Duration::from_millis(100),
                None
            )[0]
            .contains("under 2s")
        );
    }
}
