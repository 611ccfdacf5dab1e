#!/usr/bin/env python3
"""The fewest AWS API calls the standard scenario's failover can take, from
the world as seeded (read through the emulator directly, so these reads
are not counted): every call the failover needs at the API's limits, and
one look per wait (no implementation can confirm a change with fewer).

- RDS: the DR region's DB instances described at 100 a page (tags are not
  a server-side filter), one PromoteReadReplica per replica, one look at
  the promoted replicas (100 a page).
- EC2: the tag-filtered instances at 1,000 a page, StartInstances of the
  stopped ones at 1,000 ids a call, one look at their states
  (DescribeInstanceStatus, 100 ids a call).
- Route 53: the zone found by name, its record sets at 300 a page, the
  UPSERTs at 500 a batch (an UPSERT counts twice against a batch's 1,000
  records), one GetChange per batch.

Prints `minimum=N` and the parts.
Usage: minimum_calls.py [--endpoint URL]
"""
import argparse
import math
import os

import boto3

PRIMARY, DR, ZONE = "us-east-1", "us-west-2", "example.com."


def pages(n, size):
    return max(1, math.ceil(n / size))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055"))
    a = ap.parse_args()
    kw = dict(endpoint_url=a.endpoint, aws_access_key_id="test", aws_secret_access_key="test")
    rds = boto3.client("rds", region_name=DR, **kw)
    ec2 = boto3.client("ec2", region_name=DR, **kw)
    r53 = boto3.client("route53", region_name=PRIMARY, **kw)

    dbs = [d for p in rds.get_paginator("describe_db_instances").paginate() for d in p["DBInstances"]]
    replicas = [d for d in dbs if any(t["Key"] == "dr-role" and t["Value"] == "replica" for t in d.get("TagList", []))]
    rds_calls = pages(len(dbs), 100) + len(replicas) + pages(len(replicas), 100)

    filters = [{"Name": "tag:Role", "Values": ["app"]}, {"Name": "tag:Env", "Values": ["dr"]}]
    app = [i for p in ec2.get_paginator("describe_instances").paginate(Filters=filters)
           for r in p["Reservations"] for i in r["Instances"]]
    stopped = [i for i in app if i["State"]["Name"] == "stopped"]
    ec2_calls = pages(len(app), 1000) + math.ceil(len(stopped) / 1000) + math.ceil(len(app) / 100)

    zone = next(z["Id"] for z in r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"] if z["Name"] == ZONE)
    sets = [s for p in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone)
            for s in p["ResourceRecordSets"]]
    changes = [s for s in sets if s["Type"] == "A" and s["Name"].startswith("svc-")
               and any(v["Value"].startswith("192.0.2.") for v in s.get("ResourceRecords", []))]
    batches = math.ceil(len(changes) / 500)
    r53_calls = 1 + pages(len(sets), 300) + batches + batches

    print(f"rds={rds_calls} ec2={ec2_calls} route53={r53_calls}")
    print(f"minimum={rds_calls + ec2_calls + r53_calls}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
