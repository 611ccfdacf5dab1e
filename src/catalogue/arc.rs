//! `with` blocks of the ARC zonal shift actions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// Longest comment a runbook may give: ARC keeps 128 characters, and
/// lifeboat's marker (`lifeboat <run>: `) comes first.
pub const MAX_COMMENT: usize = 64;

/// `arc.start_zonal_shift`: move the traffic of managed resources (load
/// balancers, Auto Scaling groups, EKS clusters) away from one
/// Availability Zone for a while.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartZonalShift {
    /// The resources' ARNs; none (a runbook's list parameter left empty)
    /// shifts nothing and says so.
    pub resources: Vec<String>,
    /// The zone to move traffic away from: its name (`us-east-1a`, which
    /// names a different zone in each account, so it is resolved to the
    /// account's zone ID) or its zone ID (`use1-az1`).
    pub away_from: String,
    /// How long the shift lasts unless it is cancelled: 1m to 72h, in
    /// whole minutes (ARC's own bounds).
    pub expires_in: HumanDuration,
    /// What the shift's comment adds to lifeboat's marker.
    pub comment: Option<String>,
}

/// `arc.cancel_zonal_shift`: end the zonal shifts lifeboat started away
/// from a zone (a shift someone else started is left, and said).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelZonalShift {
    /// The resources' ARNs.
    pub resources: Vec<String>,
    /// The zone (name or zone ID) the shifts move traffic away from.
    pub away_from: String,
}

fn check_resources(resources: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in resources {
        if !r.starts_with("arn:") {
            problems.push(format!(
                "resource `{r}` is not an ARN: ARC names a load balancer, Auto Scaling group or EKS cluster by its ARN"
            ));
        }
    }
    problems
}

impl StartZonalShift {
    pub(super) fn check(&self) -> Vec<String> {
        let mut problems = check_resources(&self.resources);
        let secs = self.expires_in.get().as_secs();
        let whole = self.expires_in.get().subsec_nanos() == 0 && secs.is_multiple_of(60);
        if !(60..=72 * 3600).contains(&secs) || !whole {
            problems.push(format!(
                "`expires_in` ({}) must be whole minutes from 1m to 72h, as ARC allows",
                self.expires_in
            ));
        }
        if let Some(c) = &self.comment
            && c.chars().count() > MAX_COMMENT
        {
            problems.push(format!(
                "`comment` is {} characters; at most {MAX_COMMENT} fit beside lifeboat's marker in ARC's 128",
                c.chars().count()
            ));
        }
        problems
    }
}

impl CancelZonalShift {
    pub(super) fn check(&self) -> Vec<String> {
        check_resources(&self.resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(expires: &str, resources: &[&str], comment: Option<&str>) -> Vec<String> {
        StartZonalShift {
            resources: resources.iter().map(|r| r.to_string()).collect(),
            away_from: "us-east-1a".into(),
            expires_in: expires.parse().expect("a duration"),
            comment: comment.map(str::to_string),
        }
        .check()
    }

    #[test]
    fn the_expiry_is_whole_minutes_within_arcs_bounds() {
        let arn = ["arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1"];
        assert!(start("1m", &arn, None).is_empty());
        assert!(start("72h", &arn, None).is_empty());
        assert!(start("3d", &arn, None).is_empty());
        for bad in ["30s", "90s", "73h", "4d"] {
            let problems = start(bad, &arn, None);
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert!(
                problems[0].contains("whole minutes from 1m to 72h"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn resources_are_arns_and_the_comment_fits() {
        let problems = start("1h", &["my-alb"], Some(&"x".repeat(MAX_COMMENT + 1)));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("resource `my-alb` is not an ARN"));
        assert!(problems[1].starts_with("`comment` is 65 characters"));
        assert!(
            start("1h", &[], None).is_empty(),
            "none is allowed: nothing to shift"
        );
    }
}
