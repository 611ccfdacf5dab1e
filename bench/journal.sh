#!/usr/bin/env bash
# What years of history cost the shared journal: for 10, 1,000 and 10,000
# past runs (each with its `started` decision and an `ack`), a fresh etcd
# member (Debian's etcd-server, installed by .ci/setup-apt when missing)
# and the emulator's S3 as the archive, on loopback. Prints the trigger
# evaluation's time and etcd's size before and after the retention pass,
# and each as a ratio to the 10-run figure (flat is 1.0).
#   bench/journal.sh [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup-apt etcd etcd-server
.ci/setup-moto >/dev/null
cargo build --quiet --example journal_size
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3=$(free)
.venv/bin/moto_server -H 127.0.0.1 -p "$s3" > "$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS -m 1 "http://127.0.0.1:$s3/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 1000 10000)
for n in "${sizes[@]}"; do
    client=$(free) peer=$(free)
    etcd --name m --data-dir "$work/etcd-$n" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "m=http://127.0.0.1:$peer" > "$work/etcd-$n.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do curl -fsS -m 2 "http://127.0.0.1:$client/health" 2>/dev/null | grep -q '"true"' && break; sleep 0.1; done
    target/debug/examples/journal_size --endpoint "http://127.0.0.1:$client" --s3 "http://127.0.0.1:$s3" --runs "$n" | tee -a "$work/results"
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
python3 - "$work/results" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1]):
    before, moved, after = line.split("|")
    f = lambda s, k: float(re.search(k + r"=([\d.]+)", s).group(1))
    rows.append((int(f(before, "runs")), f(before, "eval_ms"), f(before, "scan_ms"), f(before, "etcd_db"),
                 f(after, "eval_ms"), f(after, "etcd_bytes"), f(after, "etcd_db"), f(before, "etcd_bytes")))
base = rows[0]
print("\nruns   eval ms (x first)   full scan ms   etcd bytes before -> after   etcd db after (x first)")
for r in rows:
    print(f"{r[0]:>6} {r[4]:>8.3f} ({r[4]/base[4]:.2f}x)   {r[2]:>10.2f}   {int(r[7]):>10} -> {int(r[5]):>8}   {int(r[6]):>10} ({r[6]/base[6]:.2f}x)")
PY
