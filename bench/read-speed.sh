#!/usr/bin/env bash
# Reading speed of the trainer's data readers (trainer/src/data), against what a user would write
# in Python, in interleaved rounds on this machine (shared machines drift; only side-by-side runs
# compare). Not part of the test suite.
#
#   bash bench/read-speed.sh [ROUNDS]     # default 3 rounds
#
# Writes its fixtures once into target/bench-read/ (MNIST's 60,000 training images as PNGs in
# sub-folders per digit, and its first 42,000 as Kaggle's train.csv; needs numpy, pillow, pandas
# from PyPI), then per round times `trainer data` (read and describe the set, as `trainer fit
# --data` reads it) and the Python yardstick (Pillow decoding every PNG into one array;
# pandas.read_csv), each as a whole process with /usr/bin/time: wall seconds and peak resident
# memory. The decoded images are 47 MB (60,000 x 784 bytes) and 33 MB (42,000 x 784). Writes
# results/read-speed.md, which docs/own-images.md includes (python3 .ci/readme-blocks.py --update).
set -euo pipefail
rounds=${1:-3}
cd "$(dirname "$0")/.."
fix=target/bench-read
python3 -c 'import numpy, PIL, pandas' 2>/dev/null || pip install -q numpy pillow pandas
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
if [ ! -f "$fix/train.csv" ]; then
    python3 bench/read_fixtures.py write "$fix"
fi
mkdir -p results
# One untimed read of each set first, so that every timed round finds the files in the page cache.
for path in "$fix/png" "$fix/train.csv"; do
    "$CARGO_TARGET/release/trainer" data "$path" >/dev/null
done
table() {
    echo "Measured by \`bash bench/read-speed.sh $rounds\` on $(date -u +%F): $MACHINE; load average $(cut -d' ' -f1 /proc/loadavg) at the start; files in the page cache, whole processes, the first of each pair alternating."
    echo

    # "WALL_S PEAK_MB" of one command, its output discarded.
    measure() {
        /usr/bin/time -f '%e %M' "$@" >/dev/null 2>"$fix/time.txt" || { cat "$fix/time.txt"; exit 1; }
        awk '{ printf "%s %.0f", $1, $2 / 1024 }' <(tail -n 1 "$fix/time.txt")
}

printf '| round | set | trainer data: s | MB peak | Python yardstick: s | MB peak | Python / trainer |\n'
printf '|---|---|---:|---:|---:|---:|---:|\n'
for r in $(seq "$rounds"); do
    for set in png csv; do
        path=$fix/png
        [ "$set" = csv ] && path=$fix/train.csv
        # Alternate which goes first, so a drift in load favours neither.
        if ((r % 2)); then
            a=$(measure "$CARGO_TARGET/release/trainer" data "$path")
            b=$(measure python3 bench/read_fixtures.py "$set" "$path")
        else
            b=$(measure python3 bench/read_fixtures.py "$set" "$path")
            a=$(measure "$CARGO_TARGET/release/trainer" data "$path")
        fi
        read -r as am <<<"$a"
        read -r bs bm <<<"$b"
        printf '| %d | %s | %s | %s | %s | %s | %.2f |\n' "$r" "$set" "$as" "$am" "$bs" "$bm" \
            "$(awk -v a="$as" -v b="$bs" 'BEGIN { print b / a }')"
    done
done
}
table | tee "$fix/read-speed.md"
cp "$fix/read-speed.md" results/read-speed.md
