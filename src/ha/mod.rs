//! High availability: several daemons (one per region plus a witness)
//! sharing one journal in etcd, of which one, elected through an etcd
//! lease, executes.
//!
//! - [`etcd`]: the connection, usable from the journal's blocking calls.
//! - [`side`]: the runtime thread such synchronous clients run on.
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
pub mod side;

use std::collections::BTreeSet;

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
}
