#!/usr/bin/env bash
# Mass failover under AWS's rate limits. Each scenario runs on a fresh
# local moto behind the simulation proxy (bench/simproxy.rs) with
# --aws-throttling: EC2's, RDS's and Route 53's documented token buckets,
# a request that finds its bucket short refused with the service's own
# throttling error.
#
#   1. the standard scenario at scale SCALE (default 100: 100 DBs, 1,000
#      instances, 1,000 records; SCENARIO_DIR, default ../shared/bench),
#      lifeboat (bench/failover.yaml) and the sequential boto3 script
#      (bench/baseline_boto3.py), each checked with check.py;
#   2. a Route 53 scenario of RECORDS records (default 10,000; seeded and
#      checked by bench/seed_records.py), lifeboat running
#      bench/dns-10k.yaml.
#
# For each run it prints the wall time, the requests the proxy admitted
# and throttled, whether any change was made twice, and the time the
# needed requests take at their buckets' refill rate (per bucket: the
# tokens spent beyond its burst, over its refill rate; the run's bound is
# the slowest bucket). For the Route 53 scenario the needed requests are
# the minimum the change needs (the zone's lookup, its record pages of
# 300, its change batches of 500 UPSERTs, one GetChange each). On the
# emulator that scenario is bound by the emulator's own answers (a change
# batch over 10,000 records takes it seconds), so the ratio that counts is
# against an ideal client: the same requests one after another, each sent
# as soon as the one before was answered and its bucket holds a token,
# answered in the time the emulator took for it (measured at the proxy).
# The last line is `dns_ratio=<lifeboat / ideal>`. PROFILE=dev measures the
# dev build; LOGS=DIR keeps the proxy's logs there.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${SCENARIO_DIR:-../shared/bench}
profile=${PROFILE:-release}
scale=${SCALE:-100}
records=${RECORDS:-10000}

.ci/setup-moto
py=.venv/bin/python
dir=debug; [ "$profile" = release ] && dir=release
cargo build --quiet --profile "$profile" --bin lifeboat
cargo build --quiet --example simproxy
bin=target/$dir/lifeboat
proxy_bin=target/debug/examples/simproxy

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; pkill -P $$ -x sleep || true; [ -n "${LOGS:-}" ] && mkdir -p "$LOGS" && cp "$work"/*.log "$LOGS"/; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
free_port() { $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# fresh NAME: a fresh emulator and a throttling proxy in front of it
# logging to $work/NAME.log; sets $moto and $endpoint.
fresh() {
    [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
    pids=()
    local port
    port=$(free_port)
    $py tests/moto_guard.py "$port" < <(sleep 86400 2>/dev/null) > "$work/moto.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q ready "$work/moto.out" 2>/dev/null && break; sleep 0.2; done
    moto=http://127.0.0.1:$port
    : > "$work/proxy.out"
    "$proxy_bin" --upstream "$moto" --aws-throttling --log "$work/$1.log" \
        < <(sleep 86400 2>/dev/null) > "$work/proxy.out" &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/proxy.out" ] && break; sleep 0.05; done
    endpoint=$(head -1 "$work/proxy.out")
}

now() { date +%s.%N; }

# The proxy's log of a run: what was admitted, throttled, doubled, and
# the buckets' bound. analyse LOG WALL [MINIMUM_ROUTE53_REQUESTS]
analyse() {
    $py - "$@" <<'PY'
import collections, json, sys
path, wall = sys.argv[1], float(sys.argv[2])
minimum = int(sys.argv[3]) if len(sys.argv) > 3 else None
rows = [json.loads(line) for line in open(path)]
throttles = {"RequestLimitExceeded", "ThrottlingException", "Throttling"}
throttled = sum(1 for r in rows if r["injected"] in throttles)
admitted = [r for r in rows if r["forwarded"]]
spent = collections.defaultdict(float)
limits = {}
for r in admitted:
    for c in r["charges"]:
        spent[c["bucket"]] += c["cost"]
        limits[c["bucket"]] = (c["capacity"], c["refill"])
if minimum is not None:
    key = next((k for k in limits if k.endswith("route53")), None)
    if key:
        spent = {key: float(minimum)}
bound, slowest = 0.0, None
for b, total in spent.items():
    capacity, refill = limits[b]
    need = max(0.0, (total - capacity) / refill)
    if need > bound:
        bound, slowest = need, b
changed = collections.Counter()
for r in admitted:
    if 200 <= r["status"] < 300 and r["op"] in ("PromoteReadReplica", "StartInstances", "ChangeResourceRecordSets"):
        for res in r["resources"]:
            # A change batch names its records (and, from the answer, its
            # change id, which moto repeats from batch to batch).
            if r["op"] != "ChangeResourceRecordSets" or "." in res:
                changed[(r["op"], res)] += 1
doubled = sum(1 for n in changed.values() if n > 1)
print(f"  {len(rows)} requests, {len(admitted)} admitted, {throttled} throttled; changes made twice: {doubled}")
if slowest:
    print(f"  slowest bucket `{slowest}`: the needed requests take {bound:.2f} s at its refill rate; wall {wall:.2f} s, {wall / bound:.2f} x that")
else:
    print(f"  no bucket ran dry (every bucket's burst covered its requests); wall {wall:.2f} s")
ideal = None
if minimum is not None:
    # The sequential chain of the Route 53 step as an ideal client would
    # run it: each request sent as soon as the one before was answered and
    # its bucket has a token, answered after the emulator's own time for
    # it (as measured at the proxy); the emulator's time is no client's
    # to save, so the ratio that counts is wall over this.
    r53 = [r for r in admitted if r["charges"] and r["charges"][0]["bucket"].endswith("route53")]
    first = min(r["received"] for r in rows)
    capacity, refill = limits[r53[0]["charges"][0]["bucket"]]
    tokens, clock, at = capacity, 0.0, 0.0
    for r in r53:
        tokens = min(capacity, tokens + (clock - at) * refill)
        at = clock
        if tokens < 1:
            clock += (1 - tokens) / refill
            tokens, at = 1.0, clock
        tokens -= 1
        clock += r["t"] - r["received"]
    ideal = clock
    start = min(r["received"] for r in rows)
    spent = max(r["t"] for r in rows) - start
    print(f"  an ideal client: {ideal:.2f} s from the first request to the last answer (the emulator's answers {sum(r['t'] - r['received'] for r in r53):.2f} s of it); lifeboat took {spent:.2f} s, {spent / ideal:.3f} x")
ratio = (max(r["t"] for r in rows) - min(r["received"] for r in rows)) / ideal if ideal else (wall / bound if bound else 0)
print(f"ratio={ratio:.3f} throttled={throttled} doubled={doubled}")
sys.exit(1 if doubled else 0)
PY
}

echo "standard scenario, scale $scale, through AWS's buckets:"
fresh lifeboat
$py "$scenario/seed.py" --scale "$scale" --endpoint "$moto" > /dev/null
t0=$(now)
AWS_ENDPOINT_URL=$endpoint "$bin" run bench/failover.yaml --yes --state-dir "$work/state-std" > /dev/null 2> "$work/err" \
    || { cat "$work/err" >&2; exit 1; }
wall=$(echo "$(now) - $t0" | bc -l)
$py "$scenario/check.py" --scale "$scale" --endpoint "$moto" > "$work/check" \
    || { cat "$work/check" >&2; echo "bench: check.py failed after lifeboat" >&2; exit 1; }
echo "lifeboat: $(grep -m1 '^AWS API calls' "$work/err" || true)"
analyse "$work/lifeboat.log" "$wall" | tee "$work/lifeboat.result"

fresh boto3
$py "$scenario/seed.py" --scale "$scale" --endpoint "$moto" > /dev/null
t0=$(now)
$py bench/baseline_boto3.py --endpoint "$endpoint" > "$work/boto3.out" 2> "$work/boto3.err" \
    || { echo "sequential boto3 script: failed through the throttling proxy:"; tail -3 "$work/boto3.err"; }
wall=$(echo "$(now) - $t0" | bc -l)
if $py "$scenario/check.py" --scale "$scale" --endpoint "$moto" > "$work/check"; then
    echo "sequential boto3 script (check.py passed):"
else
    echo "sequential boto3 script (check.py FAILED: the failover did not complete):"
fi
analyse "$work/boto3.log" "$wall" || true

echo "Route 53 scenario, $records records, through AWS's buckets:"
fresh dns
$py bench/seed_records.py --endpoint "$moto" --count "$records" > /dev/null
t0=$(now)
AWS_ENDPOINT_URL=$endpoint "$bin" run bench/dns-10k.yaml --yes --state-dir "$work/state-dns" > /dev/null 2> "$work/err" \
    || { cat "$work/err" >&2; exit 1; }
wall=$(echo "$(now) - $t0" | bc -l)
$py bench/seed_records.py --endpoint "$moto" --count "$records" --check > "$work/check" \
    || { cat "$work/check" >&2; echo "bench: records not moved" >&2; exit 1; }
pages=$(( (records + 299) / 300 ))
batches=$(( (records + 499) / 500 ))
minimum=$(( 1 + pages + 2 * batches ))
echo "lifeboat: $(grep -m1 '^AWS API calls' "$work/err" || true); minimum $minimum Route 53 requests (1 zone lookup, $pages pages, $batches batches and as many GetChange)"
analyse "$work/dns.log" "$wall" "$minimum" | tee "$work/dns.result"
printf 'dns_ratio=%s\n' "$(sed -n 's/^ratio=\([0-9.]*\).*/\1/p' "$work/dns.result")"
