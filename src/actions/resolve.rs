//! `iam-policy --resolve`: the read-only lookups that let a policy name by
//! ARN what the runbooks name by name: the caller's account and identity,
//! hosted zones given by name, launch templates given by name.

use super::aws_error::classify;
use crate::aws::{AwsClients, ROUTE53_REGION};
use crate::catalogue::ActionInput;
use crate::iam::Resolved;
use crate::runbook::{Mode, Runbook};

/// What the caller's credentials see: the account, the caller's ARN, and
/// the ids of the zones and launch templates the caller's own steps name
/// (a step acting as another account's role is resolved by account only,
/// from the role's ARN).
pub async fn resolve(
    aws: &AwsClients,
    runbooks: &[Runbook],
    mode: Mode,
) -> Result<(Resolved, String), String> {
    let who = aws
        .sts(ROUTE53_REGION)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify("GetCallerIdentity", e).message)?;
    let mut resolved = Resolved {
        account: who.account().map(str::to_string),
        ..Resolved::default()
    };
    let route53 = aws.route53();
    for runbook in runbooks {
        let default = runbook.regions.as_ref().map(|r| r.to.clone());
        for step in runbook
            .steps
            .iter()
            .filter(|s| s.runs_in(mode) && s.assume_role.is_none())
        {
            let zone = match &step.input {
                ActionInput::Route53UpsertRecords(w) => Some(&w.zone),
                ActionInput::Route53SwitchFailover(w) => Some(&w.zone),
                ActionInput::Route53SetWeights(w) => Some(&w.zone),
                _ => None,
            };
            if let Some(zone) = zone.filter(|z| z.contains('.') && !z.contains("${")) {
                let id = super::route53::zone_id(&route53, zone)
                    .await
                    .map_err(|e| e.message)?;
                resolved.zones.insert(crate::iam::normalized(zone), id);
            }
            if let ActionInput::Ec2LaunchFromTemplate(w) = &step.input {
                let region = step.region.clone().or_else(|| default.clone());
                if let Some(region) = region.filter(|_| {
                    !w.launch_template.starts_with("lt-") && !w.launch_template.contains("${")
                }) {
                    let out = aws
                        .ec2(&region)
                        .describe_launch_templates()
                        .launch_template_names(&w.launch_template)
                        .send()
                        .await
                        .map_err(|e| {
                            let what = format!(
                                "DescribeLaunchTemplates {} in {region}",
                                w.launch_template
                            );
                            classify(&what, e).message
                        })?;
                    let id = out
                        .launch_templates()
                        .first()
                        .and_then(|t| t.launch_template_id())
                        .ok_or_else(|| {
                            format!("no launch template {} in {region}", w.launch_template)
                        })?;
                    resolved
                        .launch_templates
                        .insert((region, w.launch_template.clone()), id.to_string());
                }
            }
        }
    }
    Ok((resolved, who.arn().unwrap_or_default().to_string()))
}
