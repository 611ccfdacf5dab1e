//! What the emulator holds, read with describe and list calls: every RDS
//! instance and snapshot, EC2 instance, Auto Scaling group, Route 53
//! record and S3 object, for tests that compare it before and after (the
//! drills, which must leave production as it was; the crash matrix, which
//! must end where an uninterrupted run ends).

use std::collections::BTreeMap;

use lifeboat::aws::AwsClients;
use lifeboat::iam::DRILL_TAG;

const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];

/// Whether a name is a drill's copy.
pub fn is_drill(name: &str) -> bool {
    name.contains("-drill-") || name.starts_with("drill-") || name.starts_with("lifeboat-drill-")
}

/// Everything in the emulator, as `kind id -> description`; `drill` says
/// whether to list a drill's resources (still alive) or production's.
pub async fn inventory(aws: &AwsClients, drill: bool) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for region in REGIONS {
        let rds = aws.rds(region);
        let dbs = rds.describe_db_instances().send().await.expect("instances");
        for db in dbs.db_instances() {
            let id = db.db_instance_identifier().unwrap_or_default();
            let tagged = db.tag_list().iter().any(|t| t.key() == Some(DRILL_TAG));
            if (is_drill(id) || tagged) != drill {
                continue;
            }
            all.insert(
                format!("rds {region} {id}"),
                format!(
                    "{:?} {:?} zone={:?} source={:?} retention={:?} tags={:?}",
                    db.db_instance_status(),
                    db.db_instance_class(),
                    db.availability_zone(),
                    db.read_replica_source_db_instance_identifier(),
                    db.backup_retention_period(),
                    db.tag_list()
                        .iter()
                        .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
                        .collect::<Vec<_>>()
                ),
            );
        }
        let snapshots = rds.describe_db_snapshots().send().await.expect("snapshots");
        for s in snapshots.db_snapshots() {
            let id = s.db_snapshot_identifier().unwrap_or_default();
            let of = s.db_instance_identifier().unwrap_or_default();
            let tagged = s.tag_list().iter().any(|t| t.key() == Some(DRILL_TAG));
            // The emulator keeps an automated snapshot of a deleted drill
            // instance; it is the drill's, not production's.
            if (is_drill(id) || is_drill(of) || tagged) != drill {
                continue;
            }
            all.insert(
                format!("snapshot {region} {id}"),
                format!("{:?} {:?} of {of}", s.status(), s.snapshot_type()),
            );
        }
        let instances = aws
            .ec2(region)
            .describe_instances()
            .send()
            .await
            .expect("ec2 instances");
        for i in instances.reservations().iter().flat_map(|r| r.instances()) {
            let tagged = i.tags().iter().any(|t| t.key() == Some(DRILL_TAG));
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string());
            if tagged != drill || (drill && state.as_deref() == Some("terminated")) {
                continue;
            }
            all.insert(
                format!("ec2 {region} {}", i.instance_id().unwrap_or_default()),
                format!("{state:?} {:?} {:?}", i.instance_type(), i.image_id()),
            );
        }
        {
            let groups = aws
                .autoscaling(region)
                .describe_auto_scaling_groups()
                .send()
                .await
                .expect("groups");
            for g in groups.auto_scaling_groups() {
                let tagged = g.tags().iter().any(|t| t.key() == Some(DRILL_TAG));
                if tagged != drill {
                    continue;
                }
                all.insert(
                    format!(
                        "asg {region} {}",
                        g.auto_scaling_group_name().unwrap_or_default()
                    ),
                    format!(
                        "{:?} {:?} {:?}",
                        g.min_size(),
                        g.desired_capacity(),
                        g.max_size()
                    ),
                );
            }
        }
    }
    let route53 = aws.route53();
    for zone in route53
        .list_hosted_zones()
        .send()
        .await
        .expect("zones")
        .hosted_zones()
    {
        let sets = route53
            .list_resource_record_sets()
            .hosted_zone_id(zone.id())
            .send()
            .await
            .expect("records");
        for set in sets.resource_record_sets() {
            if is_drill(set.name()) != drill {
                continue;
            }
            all.insert(
                format!(
                    "record {} {} {:?}",
                    set.name(),
                    set.r#type().as_str(),
                    set.set_identifier()
                ),
                format!(
                    "{:?} {:?} {:?}",
                    set.resource_records()
                        .iter()
                        .map(|r| r.value())
                        .collect::<Vec<_>>(),
                    set.failover(),
                    set.alias_target().map(|a| a.dns_name())
                ),
            );
        }
    }
    let s3 = aws.s3("us-west-2");
    for bucket in s3.list_buckets().send().await.expect("buckets").buckets() {
        let name = bucket.name().unwrap_or_default();
        let objects = s3
            .list_objects_v2()
            .bucket(name)
            .send()
            .await
            .expect("objects");
        for o in objects.contents() {
            let key = o.key().unwrap_or_default();
            if is_drill(key) != drill {
                continue;
            }
            all.insert(format!("s3 {name}/{key}"), format!("{:?}", o.e_tag()));
        }
    }
    all
}
