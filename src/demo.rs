//! The demo's two-region environment: what the shipped pilot-light runbook
//! recovers, seeded into the emulator through the SDK, and a local health
//! endpoint standing in for the application in the DR region.

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::aws::AwsClients;

/// Primary region of the demo.
pub const PRIMARY: &str = "us-east-1";
/// DR region of the demo.
pub const DR: &str = "us-west-2";

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The primary database's ARN.
    pub primary_arn: String,
    /// The stopped app-tier instances in the DR region.
    pub app_instances: Vec<String>,
    /// A stopped instance that must stay stopped.
    pub decoy_instance: String,
    /// The hosted zone's id.
    pub zone_id: String,
}

/// Seed: primary `app-db` in us-east-1 with replica `app-db-replica` in
/// us-west-2; two stopped app instances (`Role=app, Env=dr`) and a stopped
/// batch instance there; zone `example.com` with `app.example.com` and
/// `legacy.example.com` pointing at the primary region.
pub async fn seed(aws: &AwsClients) -> Result<Seeded, String> {
    use aws_smithy_types::error::display::DisplayErrorContext as Ctx;
    let primary = aws
        .rds(PRIMARY)
        .create_db_instance()
        .db_instance_identifier("app-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("app")
        .master_user_password("demo-password-not-secret")
        .backup_retention_period(1)
        .send()
        .await
        .map_err(|e| format!("create app-db: {}", Ctx(e)))?;
    let primary_arn = primary
        .db_instance()
        .and_then(|d| d.db_instance_arn())
        .ok_or("create app-db: no ARN in the answer")?
        .to_string();
    aws.rds(DR)
        .create_db_instance_read_replica()
        .db_instance_identifier("app-db-replica")
        .source_db_instance_identifier(&primary_arn)
        .db_instance_class("db.t3.micro")
        .send()
        .await
        .map_err(|e| format!("create app-db-replica: {}", Ctx(e)))?;

    let ec2 = aws.ec2(DR);
    let images = ec2
        .describe_images()
        .send()
        .await
        .map_err(|e| format!("describe images: {}", Ctx(e)))?;
    let image = images
        .images()
        .first()
        .and_then(|i| i.image_id())
        .ok_or("no AMI in the emulator")?
        .to_string();
    let launch = |count: i32, role: &str| {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Role").value(role).build())
            .tags(Tag::builder().key("Env").value("dr").build())
            .build();
        ec2.run_instances()
            .image_id(&image)
            .instance_type(InstanceType::T3Micro)
            .min_count(count)
            .max_count(count)
            .tag_specifications(spec)
            .send()
    };
    let app = launch(2, "app")
        .await
        .map_err(|e| format!("launch app instances: {}", Ctx(e)))?;
    let batch = launch(1, "batch")
        .await
        .map_err(|e| format!("launch batch instance: {}", Ctx(e)))?;
    let ids = |out: &aws_sdk_ec2::operation::run_instances::RunInstancesOutput| -> Vec<String> {
        out.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect()
    };
    let app_instances = ids(&app);
    let decoy_instance = ids(&batch).into_iter().next().ok_or("no batch instance")?;
    let mut all = app_instances.clone();
    all.push(decoy_instance.clone());
    ec2.stop_instances()
        .set_instance_ids(Some(all))
        .send()
        .await
        .map_err(|e| format!("stop instances: {}", Ctx(e)))?;

    let r53 = aws.route53();
    let zone = r53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("lifeboat-demo")
        .send()
        .await
        .map_err(|e| format!("create zone: {}", Ctx(e)))?;
    let zone_id = zone
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .ok_or("create zone: no id")?;
    let record = |name: &str, value: &str| -> Result<Change, String> {
        let rr = ResourceRecord::builder()
            .value(value)
            .build()
            .map_err(|e| e.to_string())?;
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .ttl(60)
            .resource_records(rr)
            .build()
            .map_err(|e| e.to_string())?;
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(set)
            .build()
            .map_err(|e| e.to_string())
    };
    let batch = ChangeBatch::builder()
        .changes(record("app.example.com", "192.0.2.10").map_err(|e| format!("record: {e}"))?)
        .changes(record("legacy.example.com", "192.0.2.254").map_err(|e| format!("record: {e}"))?)
        .build()
        .map_err(|e| format!("records: {e}"))?;
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| format!("create records: {}", Ctx(e)))?;
    Ok(Seeded {
        primary_arn,
        app_instances,
        decoy_instance,
        zone_id,
    })
}

/// A local HTTP endpoint answering 200 "ok" to anything, standing in for
/// the recovered application; returns its health URL. It serves until the
/// runtime ends.
pub async fn health_endpoint() -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("health endpoint: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("health endpoint: {e}"))?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/healthz"))
}
