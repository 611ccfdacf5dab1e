#!/usr/bin/env bash
# Times `lifeboat validate` and `lifeboat plan` on a generated 10,000-step
# runbook (a binary tree of `needs`), 5 runs each, and prints the median
# against the target of one second. PROFILE=release to measure an optimised
# build (slower to build; the default is the dev build the tests use).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-dev}
dir=debug
[ "$profile" = release ] && dir=release
cargo build --quiet --profile "$profile" --bin lifeboat
bin=target/$dir/lifeboat

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rb=$work/big.yaml
{
    printf 'name: big\nstrategy: pilot-light\nregions: { from: us-east-1, to: us-west-2 }\nsteps:\n'
    printf '  - { id: s0, action: wait, with: { duration: 1s } }\n'
    for ((i = 1; i < 10000; i++)); do
        printf '  - { id: s%d, action: wait, with: { duration: 1s }, needs: [s%d] }\n' "$i" $(((i - 1) / 2))
    done
} >"$rb"

median_ms() {
    local times=()
    for _ in 1 2 3 4 5; do
        local start end
        start=$(date +%s%N)
        "$@" >/dev/null
        end=$(date +%s%N)
        times+=($(((end - start) / 1000000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

validate=$(median_ms "$bin" validate "$rb")
plan=$(median_ms "$bin" plan "$rb" --output json)
echo "profile=$profile steps=10000 validate_ms=$validate plan_ms=$plan"
awk -v v="$validate" -v p="$plan" 'BEGIN { printf "validate_ratio_to_1s=%.3f plan_ratio_to_1s=%.3f\n", v / 1000, p / 1000 }'
