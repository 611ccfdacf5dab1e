"""Seed the Route 53 scenario of bench/throttled.sh on the emulator: the
hosted zone example.com with COUNT A records svc-N.example.com pointing at
192.0.2.x (directly to the emulator, not through the throttling proxy).
With --check, verify instead that every one of them points at
198.51.100.x, and exit non-zero if any does not."""
import argparse
import sys

import boto3


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    r53 = boto3.client("route53", endpoint_url=args.endpoint, region_name="us-east-1")
    zones = [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "example.com."]
    if args.check:
        zone = zones[0]["Id"]
        moved = total = 0
        for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone):
            for rs in page["ResourceRecordSets"]:
                if rs["Name"].startswith("svc-") and rs["Type"] == "A":
                    total += 1
                    moved += all(r["Value"].startswith("198.51.100.") for r in rs["ResourceRecords"])
        print(f"records={total} moved={moved}")
        return 0 if total == args.count and moved == total else 1
    if zones:
        print("bench: example.com is already seeded; start from a fresh emulator", file=sys.stderr)
        return 1
    zone = r53.create_hosted_zone(Name="example.com", CallerReference=f"seed-{args.count}")["HostedZone"]["Id"]
    for start in range(0, args.count, 1000):
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": f"svc-{i}.example.com",
                    "Type": "A",
                    "TTL": 60,
                    "ResourceRecords": [{"Value": f"192.0.2.{i % 250 + 1}"}],
                },
            }
            for i in range(start, min(start + 1000, args.count))
        ]
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    print(f"zone={zone} records={args.count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
