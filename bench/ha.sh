#!/usr/bin/env bash
# High-availability figures: the step boundary (one journal write) in etcd
# against SQLite, and the takeover time against the lease TTL, on a
# three-member etcd cluster started here on loopback (Debian's
# etcd-server, installed by .ci/setup-apt when missing; data on this
# machine's disk, so every write is fsynced by a quorum of members).
#   bench/ha.sh [--writes N] [--ttl S] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup-apt etcd etcd-server
cargo build --quiet --example ha_journal
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
peers=() clients=()
for i in 0 1 2; do peers+=("$(free)"); clients+=("$(free)"); done
cluster="m0=http://127.0.0.1:${peers[0]},m1=http://127.0.0.1:${peers[1]},m2=http://127.0.0.1:${peers[2]}"
for i in 0 1 2; do
    etcd --name "m$i" --data-dir "$work/m$i" \
        --listen-client-urls "http://127.0.0.1:${clients[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${clients[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${peers[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${peers[$i]}" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        > "$work/m$i.log" 2>&1 &
    pids+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 300); do
        curl -fsS -m 2 "http://127.0.0.1:${clients[$i]}/health" 2>/dev/null | grep -q '"true"' && break
        sleep 0.1
    done
done
endpoints="http://127.0.0.1:${clients[0]},http://127.0.0.1:${clients[1]},http://127.0.0.1:${clients[2]}"
target/debug/examples/ha_journal --endpoints "$endpoints" "$@"
