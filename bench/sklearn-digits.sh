#!/usr/bin/env bash
# The worked example of docs/own-images.md, measured: scikit-learn's 1,797 real 8x8 handwritten
# digits as PNG folders (examples/sklearn_digits.py), the default command unchanged on them for
# seeds 0, 1 and 2 (and on the unlabelled folder for seed 1), each model scored by `trainer eval`
# on all 1,797 images and by its run's report on the 180 held-out ones, beside the k-means
# yardstick on the same pixels. Writes results/sklearn-digits.md. Not part of the test suite.
#
#   bash bench/sklearn-digits.sh          # needs scikit-learn and pillow (installed if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import sklearn, PIL' 2>/dev/null || pip install -q scikit-learn pillow
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
trainer=$CARGO_TARGET/release/trainer
out=$CARGO_TARGET/sklearn-digits
rm -rf "$out"
mkdir -p "$out" results
load_start=$(cut -d' ' -f1 /proc/loadavg)
python3 examples/sklearn_digits.py "$out/digits" --kmeans | grep '^|' >"$out/kmeans.md"

# "ACC | NMI" of the first line of FILE that holds TEXT.
scores() { grep -m1 -F -- "$1" "$2" | grep -oE '(ACC|NMI) [0-9.]+' | awk '{ printf "%s%s", (NR > 1 ? " | " : ""), $2 }'; }

rows=()
for case in labelled:0 labelled:1 labelled:2 flat:1; do
    set=${case%%:*} seed=${case#*:}
    run=$out/run-$set-$seed
    echo "trainer fit --data digits/$set --seed $seed" >&2
    /usr/bin/time -f '%e' -o "$out/time.txt" "$trainer" fit --quiet --data "$out/digits/$set" --seed "$seed" \
        --out "$run" --export "$run.bin" >"$out/fit-$set-$seed.log"
    "$trainer" eval --model "$run.bin" --data "$out/digits/labelled" >"$out/eval-$set-$seed.txt"
    all=$(scores 'ACC' "$out/eval-$set-$seed.txt")
    held="– | –"
    [ "$set" = labelled ] && held=$(scores 'test set, engine on model.bin' "$run/report.md")
    [ -n "$all" ] && [ -n "$held" ] || { echo "no scores for $set seed $seed (see $out)" >&2; exit 1; }
    rows+=("| \`trainer fit --data digits/$set\` | $seed | $all | $held | $(awk '{ printf "%.1f s", $1 }' "$out/time.txt") |")
done
bytes_f16=$(stat -c %s "$out/run-labelled-1/model.bin")
bytes_int8=$(stat -c %s "$out/run-labelled-1/model-int8.bin")

{
    echo "Measured by \`bash bench/sklearn-digits.sh\` on $(date -u +%Y-%m-%d): $MACHINE, no GPU; load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end. Labels used only to score."
    echo
    echo "The model: $bytes_f16 bytes f16, $bytes_int8 int8."
    echo
    echo '| model | seed | ACC (all 1,797) | NMI | held-out ACC (180) | NMI | wall time of `fit` |'
    echo '|---|---:|---:|---:|---:|---:|---:|'
    # k-means rows: "| all 1,797 images | seed | ACC | NMI |"
    awk -F'|' 'NR > 2 { gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $5); printf "| k-means on the pixels, K = 10, 10 inits | %s | %s | %s | – | – | – |\n", $3, $4, $5 }' "$out/kmeans.md"
    printf '%s\n' "${rows[@]}"
} >results/sklearn-digits.md
cat results/sklearn-digits.md
