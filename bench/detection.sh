#!/usr/bin/env bash
# Detection latency: how long after a region's endpoints start failing the
# daemon declares it down, against interval x threshold. `lifeboat daemon`
# watches one region with 3 HTTP probes (interval 1 s, failure threshold 3,
# recovery threshold 2, quorum 2) of a local server; the script makes the
# server fail at a random moment, takes the time until `/metrics` shows the
# region down (lifeboat_region_health 2, polled every 20 ms), brings the
# server back, waits for healthy, and repeats (OUTAGES, default 20).
# Prints the distribution; the last line is
# `detection_p50_s=<x> detection_max_s=<y> bound_s=<interval x threshold>`.
# PROFILE=dev measures the dev build.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
outages=${OUTAGES:-20}
dir=debug; [ "$profile" = release ] && dir=release
cargo build --quiet --profile "$profile" --bin lifeboat
bin=$PWD/target/$dir/lifeboat

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free)
metrics=$(free)
# The region's endpoint: 200, or 503 while the file `down` exists.
python3 - "$port" "$work/down" <<'PY' &
import http.server, os, sys
port, flag = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 503 if os.path.exists(flag) else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
PY
{
    echo "state_dir: $work/state"
    echo "listen: { metrics: \"127.0.0.1:$metrics\", control: $work/control.sock }"
    echo "log: { level: warn }"
    echo "regions:"
    echo "  us-east-1:"
    echo "    quorum: 2"
    echo "    probes:"
    for i in 1 2 3; do
        echo "      - { name: web-$i, http: { url: \"http://127.0.0.1:$port/$i\" }, interval: 1s, timeout: 1s, failure_threshold: 3, recovery_threshold: 2 }"
    done
} > "$work/lifeboat.yaml"
AWS_EC2_METADATA_DISABLED=true "$bin" daemon --config "$work/lifeboat.yaml" 2>"$work/daemon.log" &
daemon=$!
python3 - "$metrics" "$work/down" "$outages" <<'PY'
import random, statistics, sys, time, urllib.request
port, flag, outages = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
bound = 1.0 * 3
def health():
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith('lifeboat_region_health{region="us-east-1"}'):
            return int(float(line.split()[-1]))
    return None
def until(state, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if health() == state:
            return time.monotonic()
        time.sleep(0.02)
    sys.exit(f"bench: the region never reached health {state}")
until(0)
random.seed(1)
seen = []
for n in range(outages):
    time.sleep(1 + random.random())
    open(flag, "w").close()
    start = time.monotonic()
    seen.append(until(2) - start)
    import os; os.remove(flag)
    until(0)
seen.sort()
q = statistics.quantiles(seen, n=10, method="inclusive")
print(f"{outages} outages, declared down after (s): " + " ".join(f"{s:.2f}" for s in seen))
print(f"min {seen[0]:.2f}  p50 {statistics.median(seen):.2f}  p90 {q[8]:.2f}  max {seen[-1]:.2f}  (interval x threshold {bound:.1f}; polling adds up to 0.02)")
print(f"detection_p50_s={statistics.median(seen):.2f} detection_max_s={seen[-1]:.2f} bound_s={bound:.1f}")
PY
kill -TERM "$daemon"; wait "$daemon" || true
