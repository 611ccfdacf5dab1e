//! Seeding the emulator with the resources runbooks act on.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use lifeboat::aws::AwsClients;

/// A postgres primary in us-east-1 and its read replica in us-west-2;
/// returns the primary's ARN.
pub async fn primary_and_replica(aws: &AwsClients, primary: &str, replica: &str) -> String {
    let out = postgres(aws, "us-east-1", primary)
        .backup_retention_period(1)
        .send()
        .await
        .expect("create the primary");
    let arn = out
        .db_instance()
        .and_then(|d| d.db_instance_arn())
        .expect("ARN")
        .to_string();
    aws.rds("us-west-2")
        .create_db_instance_read_replica()
        .db_instance_identifier(replica)
        .source_db_instance_identifier(&arn)
        .db_instance_class("db.t3.micro")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("dr-role")
                .value("replica")
                .build(),
        )
        .send()
        .await
        .expect("create the replica");
    arn
}

/// `count` instances with these tags in `region`, stopped; their ids.
pub async fn stopped_instances(
    aws: &AwsClients,
    region: &str,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let ids = running_instances(aws, region, count, tags).await;
    aws.ec2(region)
        .stop_instances()
        .set_instance_ids(Some(ids.clone()))
        .send()
        .await
        .expect("stop");
    ids
}

/// `count` instances with these tags in `region`, running; their ids.
pub async fn running_instances(
    aws: &AwsClients,
    region: &str,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let ec2 = aws.ec2(region);
    let images = ec2.describe_images().send().await.expect("describe images");
    let image = images.images()[0].image_id().expect("an AMI").to_string();
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = ec2
        .run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("run instances");
    let ids: Vec<String> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    ids
}

/// A public hosted zone with A records `name -> value`; returns its id.
pub async fn zone(aws: &AwsClients, zone: &str, records: &[(String, String)]) -> String {
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};
    let r53 = aws.route53();
    let created = r53
        .create_hosted_zone()
        .name(zone)
        .caller_reference(format!("seed-{zone}"))
        .send()
        .await
        .expect("create zone");
    let id = created
        .hosted_zone()
        .expect("zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let sets: Vec<ResourceRecordSet> = records
        .iter()
        .map(|(name, value)| {
            ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::A)
                .ttl(60)
                .resource_records(
                    ResourceRecord::builder()
                        .value(value)
                        .build()
                        .expect("record"),
                )
                .build()
                .expect("record set")
        })
        .collect();
    for chunk in sets.chunks(500) {
        create_sets(aws, &id, chunk).await;
    }
    id
}

/// The values of one A record.
pub async fn a_record(aws: &AwsClients, zone_id: &str, name: &str) -> Vec<String> {
    let out = aws
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(aws_sdk_route53::types::RrType::A)
        .max_items(1)
        .send()
        .await
        .expect("list records");
    out.resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == name.trim_end_matches('.'))
        .flat_map(|s| s.resource_records().iter().map(|r| r.value().to_string()))
        .collect()
}

/// A health check on the primary, and a failover pair `name` in `zone_id`:
/// set `primary` (PRIMARY, with the check) and `dr` (SECONDARY). Returns
/// the health check's id.
pub async fn failover_pair(aws: &AwsClients, zone_id: &str, name: &str) -> String {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::Https)
        .fully_qualified_domain_name(format!("primary.{name}"))
        .resource_path("/healthz")
        .port(443)
        .build()
        .expect("health check config");
    pair(aws, zone_id, name, config).await
}

/// The alarm the active-passive runbook's data-plane switch fires.
pub const SWITCH_ALARM: &str = "lifeboat-force-primary-unhealthy";

/// The active-passive data-plane switch: in us-west-2 an alarm on
/// `Lifeboat/ForcePrimaryUnhealthy{Service=app}` (>= 1, missing data
/// ignored), a Route 53 health check tracking it, and the failover pair
/// `name` whose PRIMARY carries that check. Returns the check's id.
pub async fn switched_failover_pair(aws: &AwsClients, zone_id: &str, name: &str) -> String {
    use aws_sdk_route53::types::{
        AlarmIdentifier, CloudWatchRegion, HealthCheckConfig, HealthCheckType,
        InsufficientDataHealthStatus,
    };
    switch_alarm(aws, "ignore").await;
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::CloudwatchMetric)
        .alarm_identifier(
            AlarmIdentifier::builder()
                .region(CloudWatchRegion::UsWest2)
                .name(SWITCH_ALARM)
                .build()
                .expect("alarm identifier"),
        )
        .insufficient_data_health_status(InsufficientDataHealthStatus::LastKnownStatus)
        .build()
        .expect("health check config");
    pair(aws, zone_id, name, config).await
}

/// Create (or replace) the switch alarm in us-west-2: Maximum of
/// `Lifeboat/ForcePrimaryUnhealthy{Service=app}` >= 1 over one minute,
/// missing data treated as `treat_missing_data`.
pub async fn switch_alarm(aws: &AwsClients, treat_missing_data: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
    aws.cloudwatch("us-west-2")
        .put_metric_alarm()
        .alarm_name(SWITCH_ALARM)
        .namespace("Lifeboat")
        .metric_name("ForcePrimaryUnhealthy")
        .dimensions(Dimension::builder().name("Service").value("app").build())
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data(treat_missing_data)
        .send()
        .await
        .expect("create the switch alarm");
}

/// A health check of `config`, and the failover pair `name` whose PRIMARY
/// carries it; the check's id.
async fn pair(
    aws: &AwsClients,
    zone_id: &str,
    name: &str,
    config: aws_sdk_route53::types::HealthCheckConfig,
) -> String {
    use aws_sdk_route53::types::{
        ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
    };
    let check = aws
        .route53()
        .create_health_check()
        .caller_reference(format!("seed-{name}"))
        .health_check_config(config)
        .send()
        .await
        .expect("create health check");
    let check_id = check.health_check().expect("health check").id().to_string();
    let set = |id: &str, role: ResourceRecordSetFailover, value: &str, check: Option<&str>| {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .ttl(60)
            .set_identifier(id)
            .failover(role)
            .set_health_check_id(check.map(str::to_string))
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .expect("record"),
            )
            .build()
            .expect("record set")
    };
    let sets = [
        set(
            "primary",
            ResourceRecordSetFailover::Primary,
            "192.0.2.10",
            Some(&check_id),
        ),
        set(
            "dr",
            ResourceRecordSetFailover::Secondary,
            "198.51.100.10",
            None,
        ),
    ];
    create_sets(aws, zone_id, &sets).await;
    check_id
}

/// The weighted A sets of `name`: each `(set identifier, weight, address)`.
pub async fn weighted(aws: &AwsClients, zone_id: &str, name: &str, sets: &[(&str, i64, &str)]) {
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};
    let sets: Vec<ResourceRecordSet> = sets
        .iter()
        .map(|(id, weight, value)| {
            ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::A)
                .ttl(60)
                .set_identifier(*id)
                .weight(*weight)
                .resource_records(
                    ResourceRecord::builder()
                        .value(*value)
                        .build()
                        .expect("record"),
                )
                .build()
                .expect("record set")
        })
        .collect();
    create_sets(aws, zone_id, &sets).await;
}

/// Each weighted set of `name` in the zone, with its weight, by set
/// identifier.
pub async fn weights(aws: &AwsClients, zone_id: &str, name: &str) -> Vec<(String, i64)> {
    let out = aws
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .expect("list records");
    let mut weights: Vec<(String, i64)> = out
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == name)
        .filter_map(|s| Some((s.set_identifier()?.to_string(), s.weight()?)))
        .collect();
    weights.sort();
    weights
}

/// CREATE `sets` in the zone, in one change batch.
async fn create_sets(
    aws: &AwsClients,
    zone_id: &str,
    sets: &[aws_sdk_route53::types::ResourceRecordSet],
) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
    let changes = sets
        .iter()
        .map(|s| {
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(s.clone())
                .build()
                .expect("change")
        })
        .collect();
    aws.route53()
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .expect("batch"),
        )
        .send()
        .await
        .expect("create record sets");
}

/// The DB instance as it is now, if it exists.
pub async fn db(
    aws: &AwsClients,
    region: &str,
    id: &str,
) -> Option<aws_sdk_rds::types::DbInstance> {
    aws.rds(region)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.db_instances().first().cloned())
}

/// The failover role of each set of the pair `name`, by set identifier.
pub async fn failover_roles(aws: &AwsClients, zone_id: &str, name: &str) -> Vec<(String, String)> {
    let out = aws
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .expect("list records");
    let mut roles: Vec<(String, String)> = out
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == name && s.failover().is_some())
        .map(|s| {
            (
                s.set_identifier().unwrap_or_default().to_string(),
                s.failover()
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    roles.sort();
    roles
}

/// A VPC with two subnets in `region` and a DB subnet group over them.
pub async fn db_subnet_group(aws: &AwsClients, region: &str, name: &str) {
    let ec2 = aws.ec2(region);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create VPC");
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("VPC id")
        .to_string();
    let mut subnets = Vec::new();
    for (i, zone) in ["a", "b"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.0.{i}.0/24"))
            .availability_zone(format!("{region}{zone}"))
            .send()
            .await
            .expect("create subnet");
        subnets.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .expect("subnet id")
                .to_string(),
        );
    }
    aws.rds(region)
        .create_db_subnet_group()
        .db_subnet_group_name(name)
        .db_subnet_group_description("DR subnets")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .expect("create DB subnet group");
}

/// A manual snapshot of `db` in us-east-1, copied into us-west-2 (as
/// nightly cross-region backups leave it); the copy's identifier.
pub async fn snapshot_copied_to_dr(aws: &AwsClients, db: &str) -> String {
    let taken = aws
        .rds("us-east-1")
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(format!("{db}-nightly"))
        .send()
        .await
        .expect("create snapshot");
    let arn = taken
        .db_snapshot()
        .and_then(|s| s.db_snapshot_arn())
        .expect("snapshot ARN")
        .to_string();
    let copy = format!("{db}-nightly-dr");
    aws.rds("us-west-2")
        .copy_db_snapshot()
        .source_db_snapshot_identifier(arn)
        .target_db_snapshot_identifier(&copy)
        .send()
        .await
        .expect("copy snapshot");
    copy
}

/// What the shipped runbook `runbook` (a file name under `runbooks/`,
/// other than pilot-light) needs in the emulator: a primary DB and its DR
/// replica, and for backup-restore a DR snapshot copy, a subnet group, a
/// launch template and a zone; for warm-standby an Auto Scaling group and
/// a zone; for active-passive a failover record pair; for failback the
/// state a failover leaves (the replica promoted and serving, DNS on the
/// DR address, the primary app tier stopped); for the test parent of
/// child runbooks `tests/runbooks/regional.yaml`, pilot-light's scene.
/// Returns the zone's id.
pub async fn strategy(aws: &AwsClients, runbook: &str) -> String {
    // The pilot-light recovery split into child runbooks: the demo's scene.
    if runbook == "tests/runbooks/regional.yaml" {
        return lifeboat::demo::seed(aws).await.expect("seed").zone_id;
    }
    // Every region serves, its weight of the traffic, three instances each.
    let serving: &[(&str, i64, &str)] = match runbook {
        "active-active.yaml" => &[
            ("us-east-1", 50, "192.0.2.10"),
            ("us-west-2", 50, "198.51.100.10"),
        ],
        "active-active-three-regions.yaml" => &[
            ("us-east-1", 34, "192.0.2.10"),
            ("us-west-2", 33, "198.51.100.10"),
            ("eu-west-1", 33, "203.0.113.10"),
        ],
        _ => &[],
    };
    if !serving.is_empty() {
        let zone = zone(aws, "example.com", &[]).await;
        weighted(aws, &zone, "app.example.com", serving).await;
        for (region, _, _) in serving {
            group_in(aws, region, "app-asg", 3).await;
        }
        return zone;
    }
    if runbook == "multi-az.yaml" || runbook == "failback-multi-az.yaml" {
        // One region: a Multi-AZ database, its primary in us-east-1a, and
        // the app tier's group.
        multi_az_db(aws, "us-east-1", "app-db").await;
        if runbook == "multi-az.yaml" {
            group_in(aws, "us-east-1", "app-asg", 4).await;
        } else {
            // As the failover left it: the primary in us-east-1b, six instances.
            aws.rds("us-east-1")
                .reboot_db_instance()
                .db_instance_identifier("app-db")
                .force_failover(true)
                .send()
                .await
                .expect("fail over");
            group_in(aws, "us-east-1", "app-asg", 6).await;
        }
        return String::new();
    }
    primary_and_replica(aws, "app-db", "app-db-replica").await;
    // Where `app.example.com` points before the run (none: a failover pair).
    let app_address = match runbook {
        "failback.yaml" => {
            aws.rds("us-west-2")
                .promote_read_replica()
                .db_instance_identifier("app-db-replica")
                .send()
                .await
                .expect("promote");
            db_subnet_group(aws, "us-east-1", "app-db-subnets").await;
            // The emulator looks a cross-region replica's subnet group up
            // in the source's region too.
            db_subnet_group(aws, "us-west-2", "app-db-subnets").await;
            stopped_instances(aws, "us-east-1", 2, &[("Role", "app"), ("Env", "primary")]).await;
            // The DR app tier the failover started, which failback stops.
            running_instances(aws, "us-west-2", 2, &[("Role", "app"), ("Env", "dr")]).await;
            Some("198.51.100.10")
        }
        "backup-restore.yaml" => {
            snapshot_copied_to_dr(aws, "app-db").await;
            db_subnet_group(aws, "us-west-2", "app-db-subnets").await;
            launch_template(aws, "us-west-2", "app-server").await;
            Some("192.0.2.10")
        }
        "warm-standby.yaml" => {
            group(aws, "app-asg", 1).await;
            Some("192.0.2.10")
        }
        _ => None,
    };
    match app_address {
        Some(address) => {
            zone(
                aws,
                "example.com",
                &[("app.example.com".into(), address.into())],
            )
            .await
        }
        None => {
            let zone = zone(aws, "example.com", &[]).await;
            switched_failover_pair(aws, &zone, "app.example.com").await;
            zone
        }
    }
}

/// The dimension names of each series of the active-passive runbook's
/// traffic-switch metric (`Lifeboat/ForcePrimaryUnhealthy` in us-west-2),
/// each sorted.
pub async fn switch_metric_dimensions(aws: &AwsClients) -> Vec<Vec<String>> {
    let metrics = aws
        .cloudwatch("us-west-2")
        .list_metrics()
        .namespace("Lifeboat")
        .metric_name("ForcePrimaryUnhealthy")
        .send()
        .await
        .expect("list metrics");
    metrics
        .metrics()
        .iter()
        .map(|m| {
            let mut names: Vec<String> = m
                .dimensions()
                .iter()
                .filter_map(|d| d.name().map(str::to_string))
                .collect();
            names.sort();
            names
        })
        .collect()
}

/// Wait (polling, at most 10 s) until CloudWatch holds a `ReplicaLag`
/// datapoint of `lag` for the replica: the emulator's guard publishes once
/// a second.
pub async fn wait_for_replica_lag(aws: &AwsClients, region: &str, db_instance: &str, lag: f64) {
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    for _ in 0..100 {
        let now = jiff::Timestamp::now().as_second();
        let points = aws
            .cloudwatch(region)
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name("ReplicaLag")
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value(db_instance)
                    .build(),
            )
            .start_time(aws_smithy_types::DateTime::from_secs(now - 600))
            .end_time(aws_smithy_types::DateTime::from_secs(now + 60))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await
            .expect("ReplicaLag");
        if points.datapoints().iter().any(|p| p.maximum() == Some(lag)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no ReplicaLag datapoint of {lag} s for {db_instance} in {region} within 10 s");
}

/// A launch template for the app tier in `region`, on one of the
/// emulator's AMIs.
pub async fn launch_template(aws: &AwsClients, region: &str, name: &str) {
    let ec2 = aws.ec2(region);
    let images = ec2.describe_images().send().await.expect("describe images");
    let image = images.images()[0].image_id().expect("an AMI").to_string();
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("create launch template");
}

/// A group of `desired` instances (at most 10) from a launch template.
pub async fn group(aws: &AwsClients, name: &str, desired: i32) {
    group_in(aws, "us-west-2", name, desired).await;
}

/// [`group`], in `region`.
pub async fn group_in(aws: &AwsClients, region: &str, name: &str, desired: i32) {
    launch_template(aws, region, &format!("{name}-template")).await;
    aws.autoscaling(region)
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(format!("{name}-template"))
                .build(),
        )
        .min_size(0)
        .max_size(10)
        .desired_capacity(desired)
        .availability_zones(format!("{region}a"))
        .send()
        .await
        .expect("create group");
}

/// A bucket in the DR region holding `objects` (key, body).
pub async fn bucket(aws: &AwsClients, name: &str, objects: &[(&str, &str)]) {
    let s3 = aws.s3("us-west-2");
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    for (key, body) in objects {
        put_object(aws, name, key, body).await;
    }
}

/// An object `key` holding `body` in `bucket` (in the DR region).
pub async fn put_object(aws: &AwsClients, bucket: &str, key: &str, body: &str) {
    aws.s3("us-west-2")
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("put object");
}

/// The benchmark scenario's seeding script: `SCENARIO_DIR`, or the
/// scenario beside the project.
pub fn scenario_seed() -> std::path::PathBuf {
    let dir = std::env::var_os("SCENARIO_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"),
        std::path::PathBuf::from,
    );
    let seed = dir.join("seed.py");
    assert!(
        seed.exists(),
        "{} is missing: set SCENARIO_DIR to the standard scenario's directory",
        seed.display()
    );
    seed
}

/// The request for a small postgres instance `id` in `region`.
fn postgres(
    aws: &AwsClients,
    region: &str,
    id: &str,
) -> aws_sdk_rds::operation::create_db_instance::builders::CreateDBInstanceFluentBuilder {
    aws.rds(region)
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-real-password")
}

/// A Multi-AZ postgres instance in `region`: RDS places its primary and
/// its standby (the emulator: zones a and b).
pub async fn multi_az_db(aws: &AwsClients, region: &str, id: &str) {
    postgres(aws, region, id)
        .multi_az(true)
        .send()
        .await
        .expect("create the Multi-AZ instance");
}

/// A single-AZ postgres instance in `region`, in `zone`.
pub async fn single_az_db(aws: &AwsClients, region: &str, id: &str, zone: &str) {
    postgres(aws, region, id)
        .availability_zone(zone)
        .send()
        .await
        .expect("create the instance");
}

/// An Aurora PostgreSQL cluster in `region` with these instances (id,
/// zone, promotion tier), the first its writer.
pub async fn aurora_cluster(
    aws: &AwsClients,
    region: &str,
    cluster: &str,
    instances: &[(&str, &str, i32)],
) {
    let rds = aws.rds(region);
    rds.create_db_cluster()
        .db_cluster_identifier(cluster)
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .expect("create the cluster");
    for (id, zone, tier) in instances {
        rds.create_db_instance()
            .db_instance_identifier(*id)
            .db_cluster_identifier(cluster)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .availability_zone(*zone)
            .promotion_tier(*tier)
            .send()
            .await
            .expect("create a cluster instance");
    }
}

/// A DB cluster's writer, as RDS reports it now.
pub async fn cluster_writer(aws: &AwsClients, region: &str, cluster: &str) -> Option<String> {
    let out = aws
        .rds(region)
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .expect("describe the cluster");
    out.db_clusters()
        .first()?
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
        .map(str::to_string)
}

/// The states of these instances of `region`, in the order EC2 lists them.
pub async fn instance_states(
    aws: &AwsClients,
    region: &str,
    ids: &[String],
) -> Vec<aws_sdk_ec2::types::InstanceStateName> {
    aws.ec2(region)
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .expect("describe instances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.state().and_then(|s| s.name()).cloned())
        .collect()
}
