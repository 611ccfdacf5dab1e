//! Deciding that a region is down, as a pure state machine: probe results
//! in, region states out. No clock, no I/O: every observation carries its
//! own time, so the same sequence always gives the same decisions, and the
//! golden tests below are the specification.
//!
//! Each probe crosses into *failing* after `failure_threshold` consecutive
//! failures and back after `recovery_threshold` consecutive successes. The
//! region is
//! - `Healthy` while no probe has failed since the last all-clear;
//! - `Degraded` from a probe's first failure until a quorum of probes are
//!   failing (then `Down`) or every probe is clear again (then `Healthy`);
//! - `Down` while a quorum of probes are failing: the outage is declared
//!   once, on entry, with the first failure of the episode as the incident
//!   start;
//! - `Recovering` once fewer than a quorum are failing, until every probe
//!   is clear (`Healthy`) or a quorum fails again (`Down`, the same outage:
//!   never declared twice).
//!
//! Probes may each watch an Availability Zone. A quorum failing that is
//! all in one zone is that zone's outage, not the region's: the region is
//! `Down` only while the failing probes include one of the region's own
//! (no zone) or span two zones. Each zone has a detector of its own over
//! its probes, which declares the zone's outage.

use serde::Serialize;

/// The state of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionState {
    /// No probe failing.
    Healthy,
    /// Some probe failing, below the quorum.
    Degraded,
    /// A quorum of probes failing: an outage.
    Down,
    /// After an outage, probes coming back.
    Recovering,
}

impl RegionState {
    /// The value exported as the `lifeboat_region_health` gauge.
    pub fn gauge(self) -> i64 {
        match self {
            RegionState::Healthy => 0,
            RegionState::Degraded => 1,
            RegionState::Down => 2,
            RegionState::Recovering => 3,
        }
    }
}

/// How many results flip a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures before the probe counts as failing.
    pub failure: u32,
    /// Consecutive successes before a failing probe counts as clear.
    pub recovery: u32,
}

#[derive(Debug, Clone, Default)]
struct Track {
    failures: u32,
    successes: u32,
    failing: bool,
}

impl Track {
    /// Clear: not failing and no failure pending.
    fn clear(&self) -> bool {
        !self.failing && self.failures == 0
    }
}

/// A change of the region's state, with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition<T> {
    /// The state left.
    pub from: RegionState,
    /// The state entered.
    pub to: RegionState,
    /// When (the time of the observation that caused it).
    pub at: T,
    /// On entering `Down` for a new outage: the outage is declared, and
    /// this is its incident start (the episode's first failure).
    pub declared: Option<T>,
    /// Probes failing at the time.
    pub failing: Vec<usize>,
}

/// One region's detector.
#[derive(Debug, Clone)]
pub struct Detector<T> {
    thresholds: Vec<Thresholds>,
    zones: Vec<Option<String>>,
    tracks: Vec<Track>,
    quorum: usize,
    state: RegionState,
    first_failure: Option<T>,
    declared: bool,
}

impl<T: Clone> Detector<T> {
    /// A detector for probes with these thresholds; `quorum` failing probes
    /// declare the region down (default: a majority).
    pub fn new(thresholds: Vec<Thresholds>, quorum: Option<usize>) -> Detector<T> {
        let n = thresholds.len();
        Detector {
            tracks: vec![Track::default(); n],
            zones: vec![None; n],
            thresholds,
            quorum: quorum.unwrap_or(n / 2 + 1).clamp(1, n.max(1)),
            state: RegionState::Healthy,
            first_failure: None,
            declared: false,
        }
    }

    /// The zone each probe watches (`None`: the region as a whole): a
    /// quorum failing within one zone then does not make the region down.
    pub fn with_zones(mut self, zones: Vec<Option<String>>) -> Detector<T> {
        if zones.len() == self.tracks.len() {
            self.zones = zones;
        }
        self
    }

    /// Whether the failing probes all watch one zone (so the trouble is
    /// that zone's).
    fn confined(&self) -> bool {
        let mut failing = (0..self.tracks.len()).filter(|&i| self.tracks[i].failing);
        let Some(first) = failing.next() else {
            return false;
        };
        let zone = &self.zones[first];
        zone.is_some() && failing.all(|i| self.zones[i] == *zone)
    }

    /// How many failing probes declare the region down.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// The region's state now.
    pub fn state(&self) -> RegionState {
        self.state
    }

    /// The probes failing now.
    pub fn failing(&self) -> Vec<usize> {
        (0..self.tracks.len())
            .filter(|&i| self.tracks[i].failing)
            .collect()
    }

    /// Feed one probe result; the transition it causes, if any.
    pub fn observe(&mut self, probe: usize, ok: bool, at: T) -> Option<Transition<T>> {
        let (Some(track), Some(limits)) = (self.tracks.get_mut(probe), self.thresholds.get(probe))
        else {
            return None;
        };
        if ok {
            track.failures = 0;
            track.successes += 1;
            if track.failing && track.successes >= limits.recovery.max(1) {
                track.failing = false;
            }
        } else {
            track.successes = 0;
            track.failures += 1;
            if track.failures >= limits.failure.max(1) {
                track.failing = true;
            }
            if self.first_failure.is_none() {
                self.first_failure = Some(at.clone());
            }
        }
        let failing = self.tracks.iter().filter(|t| t.failing).count();
        let all_clear = self.tracks.iter().all(Track::clear);
        let down = failing >= self.quorum && !self.confined();
        let next = match self.state {
            RegionState::Healthy | RegionState::Degraded if down => RegionState::Down,
            RegionState::Healthy if !all_clear => RegionState::Degraded,
            RegionState::Degraded if all_clear => RegionState::Healthy,
            RegionState::Down if !down => RegionState::Recovering,
            RegionState::Recovering if down => RegionState::Down,
            RegionState::Recovering if all_clear => RegionState::Healthy,
            same => same,
        };
        if next == self.state {
            return None;
        }
        let from = std::mem::replace(&mut self.state, next);
        let declared = if next == RegionState::Down && !self.declared {
            self.declared = true;
            self.first_failure.clone()
        } else {
            None
        };
        if next == RegionState::Healthy {
            // An all-clear ends the episode.
            self.first_failure = None;
            self.declared = false;
        }
        Some(Transition {
            from,
            to: next,
            at,
            declared,
            failing: self.failing(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden cases in the manner of orchestrator's analysis tests: probe
    /// results in (`t probe ok|fail`), decisions out (`t from->to`, with
    /// `declared@t0` when an outage is declared).
    fn golden(probes: &[(u32, u32)], quorum: Option<usize>, script: &str) -> Vec<String> {
        let thresholds = probes
            .iter()
            .map(|&(failure, recovery)| Thresholds { failure, recovery })
            .collect();
        let mut d = Detector::new(thresholds, quorum);
        let mut out = Vec::new();
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (t, probe, result) = (
                parts[0].parse::<u32>().unwrap(),
                parts[1].parse::<usize>().unwrap(),
                parts[2],
            );
            if let Some(tr) = d.observe(probe, result == "ok", t) {
                let mut s = format!("{} {:?}->{:?}", tr.at, tr.from, tr.to);
                if let Some(start) = tr.declared {
                    s.push_str(&format!(" declared@{start}"));
                }
                out.push(s);
            }
        }
        out
    }

    const THREE: &[(u32, u32)] = &[(3, 2), (3, 2), (3, 2)];

    /// [`golden`] with each probe watching a zone (`-`: none).
    fn golden_zoned(zones: &[&str], script: &str) -> Vec<String> {
        let thresholds = zones
            .iter()
            .map(|_| Thresholds {
                failure: 1,
                recovery: 1,
            })
            .collect();
        let zones = zones
            .iter()
            .map(|z| (*z != "-").then(|| z.to_string()))
            .collect();
        let mut d = Detector::new(thresholds, None).with_zones(zones);
        script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .filter_map(|line| {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let t = parts[0].parse::<u32>().unwrap();
                let probe = parts[1].parse::<usize>().unwrap();
                d.observe(probe, parts[2] == "ok", t)
                    .map(|tr| format!("{} {:?}->{:?}", tr.at, tr.from, tr.to))
            })
            .collect()
    }

    #[test]
    fn a_quorum_failing_within_one_zone_leaves_the_region_degraded() {
        // Three of five probes watch us-east-1a: all three failing is a
        // quorum, but the zone's trouble, not the region's.
        let zones = ["us-east-1a", "us-east-1a", "us-east-1a", "us-east-1b", "-"];
        let script = "
            1 0 fail
            1 1 fail
            1 2 fail
            2 0 fail
        ";
        assert_eq!(golden_zoned(&zones, script), ["1 Healthy->Degraded"]);
        // Spreading to another zone makes it the region's.
        let spread = format!(
            "{script}
3 3 fail"
        );
        assert_eq!(
            golden_zoned(&zones, &spread),
            ["1 Healthy->Degraded", "3 Degraded->Down"]
        );
        // As does the region's own probe failing with them.
        let own = format!(
            "{script}
3 4 fail"
        );
        assert_eq!(
            golden_zoned(&zones, &own),
            ["1 Healthy->Degraded", "3 Degraded->Down"]
        );
        // And once the other zone's probe clears, the region is no longer down.
        let back = format!(
            "{spread}
4 3 ok"
        );
        assert_eq!(
            golden_zoned(&zones, &back),
            [
                "1 Healthy->Degraded",
                "3 Degraded->Down",
                "4 Down->Recovering"
            ]
        );
    }

    #[test]
    fn unzoned_probes_decide_as_before() {
        let script = "
            1 0 fail
            1 1 fail
        ";
        assert_eq!(
            golden_zoned(&["-", "-", "-"], script),
            ["1 Healthy->Degraded", "1 Degraded->Down"]
        );
    }

    #[test]
    fn a_sustained_outage_is_declared_once_with_its_first_failure() {
        let script = "
            10 0 fail
            10 1 fail
            10 2 ok
            20 0 fail
            20 1 fail
            30 0 fail
            30 1 fail
            40 0 fail
            40 1 fail
            40 2 fail
        ";
        assert_eq!(
            golden(THREE, None, script),
            ["10 Healthy->Degraded", "30 Degraded->Down declared@10"]
        );
    }

    #[test]
    fn flapping_faster_than_the_threshold_never_declares() {
        let mut script = String::new();
        for t in 0..60 {
            let result = if t % 2 == 0 { "fail" } else { "ok" };
            for p in 0..3 {
                script.push_str(&format!("{t} {p} {result}\n"));
            }
        }
        let decisions = golden(THREE, None, &script);
        assert!(
            decisions.iter().all(|d| !d.contains("Down")),
            "{decisions:?}"
        );
        assert_eq!(
            decisions.len(),
            60,
            "degraded and healthy alternate: {decisions:?}"
        );
    }

    #[test]
    fn one_probe_failing_is_not_a_quorum() {
        let script = "
            1 0 fail
            2 0 fail
            3 0 fail
            4 0 fail
            4 1 ok
            4 2 ok
            5 0 ok
        ";
        assert_eq!(golden(THREE, None, script), ["1 Healthy->Degraded"]);
        // With a quorum of one, the same failures declare.
        assert_eq!(
            golden(THREE, Some(1), script),
            ["1 Healthy->Degraded", "3 Degraded->Down declared@1"]
        );
    }

    #[test]
    fn recovery_needs_its_own_threshold_and_a_relapse_is_the_same_outage() {
        let script = "
            1 0 fail
            1 1 fail
            2 0 fail
            2 1 fail
            3 0 fail
            3 1 fail
            4 0 ok
            5 0 ok
            6 0 fail
            7 0 fail
            8 0 fail
            9 0 ok
            9 1 ok
            10 0 ok
            10 1 ok
        ";
        assert_eq!(
            golden(THREE, None, script),
            [
                "1 Healthy->Degraded",
                "3 Degraded->Down declared@1",
                // Probe 0 clear after 2 successes: below quorum.
                "5 Down->Recovering",
                // It fails again: down, but not declared a second time.
                "8 Recovering->Down",
                "10 Down->Recovering",
                "10 Recovering->Healthy",
            ]
        );
    }

    #[test]
    fn after_an_all_clear_a_new_outage_is_declared_again() {
        let script = "
            1 0 fail
            1 1 fail
            2 0 fail
            2 1 fail
            3 0 fail
            3 1 fail
            4 0 ok
            4 1 ok
            5 0 ok
            5 1 ok
            6 0 fail
            6 1 fail
            7 0 fail
            7 1 fail
            8 0 fail
            8 1 fail
        ";
        assert_eq!(
            golden(THREE, None, script),
            [
                "1 Healthy->Degraded",
                "3 Degraded->Down declared@1",
                "5 Down->Recovering",
                "5 Recovering->Healthy",
                "6 Healthy->Degraded",
                "8 Degraded->Down declared@6",
            ]
        );
    }

    proptest::proptest! {
        /// Whatever the results: an outage is declared only on entering
        /// `Down`, at most once between all-clears, with an incident start
        /// no later than the declaration.
        #[test]
        fn declarations_are_once_per_episode(
            results in proptest::collection::vec((0usize..3, proptest::bool::ANY), 0..400)
        ) {
            let mut d = Detector::new(vec![Thresholds { failure: 2, recovery: 2 }; 3], None);
            let mut declared_in_episode = false;
            for (t, (probe, ok)) in results.into_iter().enumerate() {
                if let Some(tr) = d.observe(probe, ok, t) {
                    if let Some(start) = tr.declared {
                        proptest::prop_assert_eq!(tr.to, RegionState::Down);
                        proptest::prop_assert!(!declared_in_episode);
                        proptest::prop_assert!(start <= t);
                        declared_in_episode = true;
                    }
                    if tr.to == RegionState::Healthy {
                        declared_in_episode = false;
                    }
                }
            }
        }
    }
}
