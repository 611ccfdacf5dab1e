#!/usr/bin/env bash
# Idle daemon footprint: `lifeboat daemon` watching one region with 100
# probes at a 1 s interval (50 HTTP, 50 TCP, against a local server that
# always answers), measured over a minute after a 10 s warm-up: peak RSS
# (with its private and file-backed parts) and CPU share from /proc.
# Target (issue): <= 25 MB RSS, <= 1% CPU.
# PROFILE=dev measures the dev build instead of release; SECONDS_MEASURED
# changes the minute.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
measured=${SECONDS_MEASURED:-60}
dir=debug; [ "$profile" = release ] && dir=release
cargo build --quiet --profile "$profile" --bin lifeboat
bin=$PWD/target/$dir/lifeboat

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
metrics=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
    echo "state_dir: $work/state"
    echo "listen: { metrics: \"127.0.0.1:$metrics\", control: $work/control.sock }"
    echo "log: { level: warn }"
    echo "regions:"
    echo "  us-east-1:"
    echo "    probes:"
    for i in $(seq 50); do
        echo "      - { name: http-$i, http: { url: \"http://127.0.0.1:$port/\" }, interval: 1s, timeout: 1s }"
        echo "      - { name: tcp-$i, tcp: \"127.0.0.1:$port\", interval: 1s, timeout: 1s }"
    done
} > "$work/lifeboat.yaml"
AWS_EC2_METADATA_DISABLED=true "$bin" daemon --config "$work/lifeboat.yaml" 2>"$work/daemon.log" &
daemon=$!
sleep 10
kill -0 "$daemon" || { cat "$work/daemon.log"; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
hz=$(getconf CLK_TCK)
start=$(ticks)
peak=0 anon=0 file=0
for _ in $(seq "$measured"); do
    read -r rss a f < <(awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {print r, a, f}' "/proc/$daemon/status")
    [ "$rss" -gt "$peak" ] && { peak=$rss; anon=$a; file=$f; }
    sleep 1
done
end=$(ticks)
health=$(curl -s "http://127.0.0.1:$metrics/metrics" 2>/dev/null | grep '^lifeboat_region_health' || true)
kill -TERM "$daemon"; wait "$daemon" || true
cpu=$(python3 -c "print(round(($end - $start) / $hz / $measured * 100, 2))")
echo "probes=100 interval=1s profile=$profile measured_s=$measured ${health:+($health)}"
# RSS counts the binary's own code pages the process has touched (file
# pages, shared and reclaimable) as well as its private memory: both shown.
echo "rss_peak_mb=$(python3 -c "print(round($peak / 1024, 1))") (private $(python3 -c "print(round($anon / 1024, 1))"), binary and other file pages $(python3 -c "print(round($file / 1024, 1))")) cpu_percent=$cpu"
