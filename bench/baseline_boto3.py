#!/usr/bin/env python3
"""The baseline the failover benchmark compares lifeboat with: the
standard scenario's failover as a hand-written, sequential boto3 script,
the way a team would write it without a tool. Prints the number of API
calls it made on its last line (`api_calls=N`).

Usage: baseline_boto3.py [--endpoint URL]
"""
import argparse
import os
import time

import boto3

PRIMARY, DR, ZONE = "us-east-1", "us-west-2", "example.com."

calls = 0


def counted(client):
    def count(**_):
        global calls
        calls += 1

    client.meta.events.register("before-send", count)
    return client


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055"))
    a = ap.parse_args()
    kw = dict(endpoint_url=a.endpoint, aws_access_key_id="test", aws_secret_access_key="test")
    rds = counted(boto3.client("rds", region_name=DR, **kw))
    ec2 = counted(boto3.client("ec2", region_name=DR, **kw))
    r53 = counted(boto3.client("route53", region_name=PRIMARY, **kw))
    started = time.monotonic()

    # 1. Promote every replica, then wait until available.
    replicas = [
        d["DBInstanceIdentifier"]
        for page in rds.get_paginator("describe_db_instances").paginate()
        for d in page["DBInstances"]
        if d.get("ReadReplicaSourceDBInstanceIdentifier")
    ]
    for name in replicas:
        rds.promote_read_replica(DBInstanceIdentifier=name, BackupRetentionPeriod=7)
    for name in replicas:
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=name, WaiterConfig={"Delay": 1})

    # 2. Start the stopped app tier, wait until running.
    ids = [
        i["InstanceId"]
        for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag:Role", "Values": ["app"]},
                {"Name": "tag:Env", "Values": ["dr"]},
                {"Name": "instance-state-name", "Values": ["stopped"]},
            ]
        )
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    if ids:
        ec2.start_instances(InstanceIds=ids)
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1})

    # 3. Move the service records, in batches of 500 UPSERTs, wait INSYNC.
    zone = next(z["Id"] for z in r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"] if z["Name"] == ZONE)
    changes = []
    for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone):
        for s in page["ResourceRecordSets"]:
            if s["Type"] == "A" and s["Name"].startswith("svc-"):
                values = [{"Value": v["Value"].replace("192.0.2.", "198.51.100.")} for v in s["ResourceRecords"]]
                changes.append({"Action": "UPSERT", "ResourceRecordSet": {**s, "ResourceRecords": values}})
    for start in range(0, len(changes), 500):
        change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes[start:start + 500]})
        r53.get_waiter("resource_record_sets_changed").wait(Id=change["ChangeInfo"]["Id"], WaiterConfig={"Delay": 1})
    print(f"elapsed_s={time.monotonic() - started:.3f}")
    print(f"api_calls={calls}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
