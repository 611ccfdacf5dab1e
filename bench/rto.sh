#!/usr/bin/env bash
# RTO against the critical-path bound. The standard scenario at scale 10
# (SCENARIO_DIR, default ../shared/bench) on local moto (EC2 in one
# process, the other services in another, as AWS's services answer
# independently), behind the simulation proxy (bench/simproxy.rs) which
# makes the changes take time:
# a promoted replica reads `modifying` for 6 s, a started instance
# `pending` for 3 s, a Route 53 change `PENDING` for 2 s (a scaled-down
# stand-in for minutes). The bound is the longest of promote and start,
# plus DNS: 8 s. lifeboat runs bench/failover.yaml; the hand-written
# sequential boto3 script (bench/baseline_boto3.py) does the phases one
# after another through the same proxy for comparison. Both end states are
# checked with the scenario's check.py. Also prints the waits' describe
# calls per waited resource, counted at the proxy. lifeboat runs twice:
# first on a fresh journal, then with the first run in it. The last line is
# `rto_ratio=<x> first_run_ratio=<y> sequential_ratio=<z>`. PROMOTE_S,
# START_S and DNS_S change the three durations; PROFILE=dev measures the dev build;
# LOGS=DIR keeps the proxy's logs (one JSON line per request) and the
# report there.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${SCENARIO_DIR:-../shared/bench}
profile=${PROFILE:-release}
scale=${SCALE:-10}
promote_s=${PROMOTE_S:-6} start_s=${START_S:-3} dns_s=${DNS_S:-2}

.ci/setup-moto
py=.venv/bin/python
dir=debug; [ "$profile" = release ] && dir=release
cargo build --quiet --profile "$profile" --bin lifeboat
# The proxy is built as the tests build it (an example takes the
# dev-dependencies' features, which a release build would otherwise have
# to compile everything again for); it only forwards and waits.
cargo build --quiet --example simproxy
bin=target/$dir/lifeboat
proxy_bin=target/debug/examples/simproxy

work=$(mktemp -d)
guards=() proxy_pid= router_pid=
# The `sleep`s feeding stdin are this shell's children: stop them too.
trap 'kill ${guards[*]} $proxy_pid $router_pid 2>/dev/null || true; pkill -P $$ -x sleep || true; rm -rf "$work"' EXIT
# emulator NAME: a fresh moto; sets $moto.
emulator() {
    local port
    port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    $py tests/moto_guard.py "$port" < <(sleep 86400 2>/dev/null) > "$work/$1.out" 2>&1 &
    guards+=($!)
    for _ in $(seq 100); do grep -q ready "$work/$1.out" 2>/dev/null && break; sleep 0.2; done
    moto=http://127.0.0.1:$port
}
# AWS's services answer independently: one slow tag-filtered EC2 describe
# does not hold up RDS's answer. One emulator process answers them with one
# Python interpreter, one request behind the other, so EC2 (with what the
# emulator builds on it) has its own; RDS, Route 53 and CloudWatch (where
# RDS's replica metrics are published) share the other.
emulator ec2; ec2=$moto
emulator rest
routes=(--route "ec2=$ec2" --route "autoscaling=$ec2" --route "elasticloadbalancing=$ec2")
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true

# serve OUT ARGS...: a simulation proxy to the emulators printing its
# endpoint to OUT; sets $pid and $endpoint.
serve() {
    local out=$1; shift
    "$proxy_bin" --upstream "$moto" "${routes[@]}" "$@" < <(sleep 86400 2>/dev/null) > "$out" &
    pid=$!
    for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
    endpoint=$(head -1 "$out")
}
# The scenario's check reaches both emulators through a plain one.
serve "$work/router.out"; router_pid=$pid router=$endpoint

# proxy LOG: a fresh proxy (nothing held) logging to LOG; sets $endpoint.
proxy() {
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
    serve "$work/proxy.out" --log "$1" \
        --transition "PromoteReadReplica=modifying:${promote_s}s" \
        --transition "StartInstances=pending:${start_s}s" \
        --transition "ChangeResourceRecordSets=PENDING:${dns_s}s"
    proxy_pid=$pid
}

# Both emulators hold the same seeded world (moto's random numbers seeded
# alike, so the ids agree, and an RDS subnet group finds its subnets); each
# is asked only about its own services.
seed() {
    local m
    for m in "$ec2" "$moto"; do
        $py -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/seed?a=1", method="POST"))' "$m"
        $py "$scenario/seed.py" --scale "$scale" --endpoint "$m" > /dev/null
    done
}

check() {
    $py "$scenario/check.py" --scale "$scale" --endpoint "$router" > "$work/check" \
        || { cat "$work/check" >&2; echo "bench: check.py failed after $1" >&2; exit 1; }
}

bound=$((promote_s > start_s ? promote_s : start_s))
bound=$((bound + dns_s))

# lifeboat: run LOG: a fresh world, a fresh proxy logging to LOG, one run
# in the state directory (which keeps the runs before it); sets $run, $rto.
lifeboat_run() {
    seed
    proxy "$1"
    AWS_ENDPOINT_URL=$endpoint "$bin" run bench/failover.yaml --yes --state-dir "$work/state" > /dev/null 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
    check lifeboat
    run=$(LIFEBOAT_STATE_DIR=$work/state "$bin" runs --output json | $py -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
    rto=$(LIFEBOAT_STATE_DIR=$work/state "$bin" report "$run" --format json | $py -c 'import json, sys; print(json.load(sys.stdin)["rto"]["seconds"])')
}
# First a runbook never run before; then the same again, its journal holding
# the first run's step times (as a runbook's drills and runs leave them),
# which its waits use to look often around when each change was done last
# time. The breakdown below is the second run's.
lifeboat_run "$work/first.log"
first=$rto
lifeboat_run "$work/lifeboat.log"

# The sequential script.
seed
proxy "$work/boto3.log"
$py bench/baseline_boto3.py --endpoint "$endpoint" > "$work/boto3.out"
check "the sequential script"
sequential=$(sed -n 's/^elapsed_s=//p' "$work/boto3.out")

# Waiter efficiency: describe calls per waited resource, counted at the
# proxy; and where lifeboat's RTO went, from the run's start (the report's
# incident start) through the proxy's log of answers.
report=$(LIFEBOAT_STATE_DIR=$work/state "$bin" report "$run" --format json)
$py - "$work/lifeboat.log" "$work/boto3.log" "$report" "$promote_s" "$dns_s" <<'PY'
import datetime, json, sys
logs = {"lifeboat": sys.argv[1], "sequential boto3": sys.argv[2]}
report = json.loads(sys.argv[3])
promote_s, dns_s = float(sys.argv[4]), float(sys.argv[5])
for who, path in logs.items():
    rows = [json.loads(line) for line in open(path)]
    def changed(op):
        return {r for row in rows if row["op"] == op and 200 <= row["status"] < 300 for r in row["resources"]}
    waited = {
        "DB instances (promote)": (len(changed("PromoteReadReplica")), ["DescribeDBInstances"]),
        "EC2 instances (start)": (len(changed("StartInstances")), ["DescribeInstanceStatus", "DescribeInstances"]),
        "Route 53 changes (DNS)": (sum(1 for row in rows if row["op"] == "ChangeResourceRecordSets"), ["GetChange"]),
    }
    print(f"{who}: {len(rows)} requests")
    for what, (count, ops) in waited.items():
        calls = sum(1 for row in rows if row["op"] in ops)
        per = calls / count if count else 0.0
        print(f"  {what}: {count} waited, {calls} {'/'.join(ops)} calls, {per:.2f} per resource")
rows = [json.loads(line) for line in open(logs["lifeboat"])]
start = datetime.datetime.fromisoformat(report["incident_start"].replace("Z", "+00:00")).timestamp()
def at(op, last=True):
    times = [row["unix"] - start for row in rows if row["op"] == op and row["forwarded"]]
    return (max if last else min)(times)
promoted, changed_dns = at("PromoteReadReplica"), at("ChangeResourceRecordSets")
seen = min(row["unix"] - start for row in rows if row["op"] == "ListHostedZonesByName")
print("lifeboat's critical path, seconds from the run's start:")
print(f"  {at('DescribeInstances', last=False):.2f} first answer (discovery by tags)")
print(f"  {promoted:.2f} last promotion answered; its replica available from {promoted + promote_s:.2f}")
print(f"  {seen:.2f} DNS step's first call (promotion seen {seen - promoted - promote_s:.2f} s after it finished)")
print(f"  {changed_dns:.2f} Route 53 change answered; INSYNC from {changed_dns + dns_s:.2f}")
print(f"  {report['rto']['seconds']:.2f} service restored (the RTO)")
PY
if [ -n "${LOGS:-}" ]; then
    mkdir -p "$LOGS"
    cp "$work/first.log" "$work/lifeboat.log" "$work/boto3.log" "$LOGS/"
    printf '%s\n' "$report" > "$LOGS/report.json"
fi
printf 'bound %ss (longest of promote %ss and start %ss, plus DNS %ss)\n' "$bound" "$promote_s" "$start_s" "$dns_s"
printf 'lifeboat RTO %.2fs (its first run %.2fs); sequential script %.2fs\n' "$rto" "$first" "$sequential"
printf 'rto_ratio=%.3f first_run_ratio=%.3f sequential_ratio=%.3f\n' \
    "$(echo "$rto / $bound" | bc -l)" "$(echo "$first / $bound" | bc -l)" "$(echo "$sequential / $bound" | bc -l)"
