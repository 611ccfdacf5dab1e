//! The wiring to the real AWS protocol: clients from the crate's factory,
//! pointed at the emulator, create and read back real resources.

use crate::moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_clients_create_a_cross_region_replica_and_read_it_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    assert_eq!(aws.endpoint_url(), Some(moto.endpoint().as_str()));

    let primary = aws
        .rds("us-east-1")
        .create_db_instance()
        .db_instance_identifier("app-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .backup_retention_period(1)
        .send()
        .await
        .expect("create the primary in us-east-1");
    let primary_arn = primary
        .db_instance()
        .and_then(|db| db.db_instance_arn())
        .expect("the primary has an ARN")
        .to_string();
    assert!(primary_arn.contains(":us-east-1:"), "{primary_arn}");

    aws.rds("us-west-2")
        .create_db_instance_read_replica()
        .db_instance_identifier("app-db-replica")
        .source_db_instance_identifier(&primary_arn)
        .db_instance_class("db.t3.micro")
        .send()
        .await
        .expect("create the replica in us-west-2");

    let replicas = aws
        .rds("us-west-2")
        .describe_db_instances()
        .db_instance_identifier("app-db-replica")
        .send()
        .await
        .expect("describe the replica");
    let replica = &replicas.db_instances()[0];
    assert_eq!(
        replica.read_replica_source_db_instance_identifier(),
        Some(primary_arn.as_str())
    );
    assert!(
        replica
            .db_instance_arn()
            .is_some_and(|arn| arn.contains(":us-west-2:")),
        "{:?}",
        replica.db_instance_arn()
    );

    // The regions are separate: the replica is not in us-east-1.
    let east = aws
        .rds("us-east-1")
        .describe_db_instances()
        .send()
        .await
        .expect("describe us-east-1");
    let east_ids: Vec<&str> = east
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier())
        .collect();
    assert_eq!(east_ids, vec!["app-db"]);

    moto.reset();
    let after = aws
        .rds("us-west-2")
        .describe_db_instances()
        .send()
        .await
        .expect("describe after reset");
    assert!(after.db_instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_uses_path_style_against_an_overridden_endpoint() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    let s3 = aws.s3("us-east-1");
    s3.create_bucket()
        .bucket("lifeboat-backups")
        .send()
        .await
        .expect("create bucket");
    s3.put_object()
        .bucket("lifeboat-backups")
        .key("db/dump.sql")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"select 1;",
        ))
        .send()
        .await
        .expect("put object");
    let listed = s3
        .list_objects_v2()
        .bucket("lifeboat-backups")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["db/dump.sql"]);
}
