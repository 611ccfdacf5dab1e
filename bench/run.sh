#!/usr/bin/env bash
# The failover benchmark: the standard scenario at scale 1, 10 and 100 on a
# local moto, lifeboat (bench/failover.yaml) against a hand-written
# sequential boto3 script (bench/baseline_boto3.py), 3 runs each, median.
# Each run is seeded with the scenario's seed.py and checked with its
# check.py. Prints wall time, peak RSS and AWS API calls, and the ratios;
# lifeboat's calls also against the fewest the scenario can take
# (bench/minimum_calls.py, read from the seeded world).
# SCENARIO_DIR points at the scenario's seed.py/check.py (default
# ../shared/bench); PROFILE=dev measures the dev build instead of release.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${SCENARIO_DIR:-../shared/bench}
profile=${PROFILE:-release}
scales=${SCALES:-1 10 100}
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time (Debian package 'time') is needed for peak RSS" >&2; exit 1; }

.ci/setup-moto
py=.venv/bin/python
dir=debug; [ "$profile" = release ] && dir=release
cargo build --quiet --profile "$profile" --bin lifeboat
bin=target/$dir/lifeboat

work=$(mktemp -d)
port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$py tests/moto_guard.py "$port" < <(sleep 86400 2>/dev/null) > "$work/moto.out" 2>&1 &
guard=$!
# The `sleep` feeding the guard's stdin is this shell's child: stop it too.
trap 'kill $guard 2>/dev/null || true; pkill -P $$ -x sleep || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q ready "$work/moto.out" 2>/dev/null && break; sleep 0.2; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true

# run IMPL SCALE -> prints "wall_s rss_kb api_calls"
run() {
    local impl=$1 scale=$2
    $py "$scenario/seed.py" --scale "$scale" > /dev/null
    [ -s "$work/minimum-$scale" ] || $py bench/minimum_calls.py | sed -n 's/^minimum=//p' > "$work/minimum-$scale"
    if [ "$impl" = lifeboat ]; then
        /usr/bin/time -f '%e %M' -o "$work/time" "$bin" run bench/failover.yaml --yes --state-dir "$work/state-$scale-$RANDOM" > /dev/null 2> "$work/err"
        calls=$(sed -n 's/^AWS API calls: \([0-9]*\).*/\1/p' "$work/err")
    else
        /usr/bin/time -f '%e %M' -o "$work/time" $py bench/baseline_boto3.py > "$work/out"
        calls=$(sed -n 's/^api_calls=//p' "$work/out")
    fi
    $py "$scenario/check.py" --scale "$scale" > "$work/check" || { cat "$work/check" >&2; echo "bench: check.py failed for $impl at scale $scale" >&2; exit 1; }
    echo "$(cat "$work/time") $calls"
}

median() { sort -n | sed -n 2p; }

echo "scale impl wall_s rss_mb api_calls (median of 3; check.py passed every run)"
for scale in $scales; do
    for impl in lifeboat boto3; do
        : > "$work/runs"
        for _ in 1 2 3; do run "$impl" "$scale" >> "$work/runs"; done
        wall=$(cut -d' ' -f1 "$work/runs" | median)
        rss=$(cut -d' ' -f2 "$work/runs" | median)
        calls=$(cut -d' ' -f3 "$work/runs" | median)
        printf '%s %s %s %.1f %s\n' "$scale" "$impl" "$wall" "$(echo "$rss / 1024" | bc -l)" "$calls" | tee -a "$work/results"
    done
    awk -v s="$scale" -v m="$(cat "$work/minimum-$scale")" '$1 == s && $2 == "lifeboat" { l = $3; lc = $5 } $1 == s && $2 == "boto3" { b = $3; bc = $5 }
        END { printf "scale %s: lifeboat/boto3 wall ratio %.2f, api call ratio %.2f; minimum %d calls, lifeboat/minimum %.2f\n", s, l / b, lc / bc, m, lc / m }' "$work/results"
done
