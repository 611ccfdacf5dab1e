//! The timing rule a shared journal's settings must satisfy.

use std::time::Duration;

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
/// - etcd does not grant leases under about 2 s, and the lease asked of
///   it is a second shorter than `lease_ttl` (so that its expiry sweep
///   still revokes a dead leader's lease within `lease_ttl`):
///   `lease_ttl` >= 3s.
pub fn timing_problems(
    lease_ttl: Duration,
    request_timeout: Duration,
    fastest_detection: Option<(String, Duration)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if lease_ttl < Duration::from_secs(3) {
        problems.push(format!(
            "`lease_ttl` {lease_ttl:?} is under 3s: the lease asked of etcd is a second shorter (so that a dead leader is replaced within `lease_ttl`), and etcd grants no lease under 2s"
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
            .contains("under 3s")
        );
        assert!(timing_problems(s(2), Duration::from_millis(500), None)[0].contains("under 3s"));
    }
}
