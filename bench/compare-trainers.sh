#!/usr/bin/env bash
# Training speed of two trainer binaries (e.g. before and after a refactor), measured in interleaved
# rounds on this machine: shared machines drift by tens of percent within minutes, so only runs taken
# side by side compare. Not part of the test suite.
#
#   bash bench/compare-trainers.sh OLD_TRAINER NEW_TRAINER [ROUNDS] [IMAGES] [PRESET]
#                                  # defaults: 3 rounds, 30000 images, --preset blog, one epoch each
#
# Prints, per round, the samples/s of the training steps alone (metrics.jsonl: loading, partition and
# evaluation excluded) and the ratio new / old, then the median ratio.
set -euo pipefail
old=${1:?old trainer binary}
new=${2:?new trainer binary}
rounds=${3:-3}
images=${4:-30000}
preset=${5:-blog}
cd "$(dirname "$0")/.."
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT

speed() {
    rm -rf "$run_dir/run"
    "$1" fit --preset "$preset" --epochs 1 --pretrain-epochs 0 --limit "$images" --quiet \
        --data data/mnist --out "$run_dir/run" >/dev/null
    grep -o '"samples_per_s": *[0-9.]*' "$run_dir/run/metrics.jsonl" | tail -n 1 | grep -o '[0-9.]*$'
}

printf '| round | old samples/s | new samples/s | new / old |\n|---|---:|---:|---:|\n'
ratios=()
for r in $(seq "$rounds"); do
    # Alternate which goes first, so a drift in load does not favour one side.
    if ((r % 2)); then a=$(speed "$old"); b=$(speed "$new"); else b=$(speed "$new"); a=$(speed "$old"); fi
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
    ratios+=("$ratio")
    printf '| %d | %.0f | %.0f | %s |\n' "$r" "$a" "$b" "$ratio"
done
printf 'median new / old: %s\n' "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
