//! The wiring to the real AWS protocol: clients from the crate's factory,
//! pointed at the emulator, create and read back real resources.

use crate::support::moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_clients_create_a_cross_region_replica_and_read_it_back() {
    let moto = Moto::start();
    let aws = moto.clients().await;
    assert_eq!(aws.endpoint_url(), Some(moto.endpoint().as_str()));

    let primary_arn =
        crate::support::seed::primary_and_replica(&aws, "app-db", "app-db-replica").await;
    assert!(primary_arn.contains(":us-east-1:"), "{primary_arn}");

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
