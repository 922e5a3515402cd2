#!/usr/bin/env bash
# The README's first command, measured: `trainer fit --export model.bin` on the bundled MNIST (or
# `trainer fit --preset long ...` with `--preset long`), per seed, as a whole process (wall and CPU
# time, peak memory: /usr/bin/time; the build excluded),
# then the run's own report: test ACC/NMI/ARI of the f32 model and of the engine on model.bin,
# the files' sizes. Writes results/default-fit.md (results/long-fit.md with `--preset long`), which
# the READMEs include (`python3 .ci/readme-blocks.py --update`). Not part of the test suite.
#
#   bash bench/default-fit.sh [SEED ...]                  # default: 1 (the seed of firmware-example/models/)
#   bash bench/default-fit.sh --preset long [SEED ...]    # about 13 minutes a seed
#
# Runs go to target/default-fit/seed-S/ (target/long-fit/ with `--preset long`; replaced each time).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=default
if [ "${1:-}" = --preset ]; then
    [ $# -ge 2 ] || { echo "--preset needs a name: default or long" >&2; exit 2; }
    preset=$2
    shift 2
fi
case $preset in
default | long) ;;
*) echo "--preset $preset: this bench measures default or long" >&2; exit 2 ;;
esac
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1)
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
out=$CARGO_TARGET/$preset-fit
mkdir -p "$out" results
load_start=$(cut -d' ' -f1 /proc/loadavg)

# A report line's figures: "ACC 0.9661, NMI 0.9150, ARI 0.9270" -> "0.9661 | 0.9150 | 0.9270".
scores() { grep -m1 -F -- "$1" "$2" | grep -oE '(ACC|NMI|ARI) [0-9.]+' | awk '{ printf "%s%s", (NR > 1 ? " | " : ""), $2 }'; }

rows=()
for seed in "${seeds[@]}"; do
    run=$out/seed-$seed
    rm -rf "$run"
    echo "seed $seed: trainer fit --preset $preset --seed $seed --export $run.bin" >&2
    /usr/bin/time -f '%e %M %U %S' -o "$out/time.txt" \
        "$CARGO_TARGET/release/trainer" fit --quiet --preset "$preset" --seed "$seed" --out "$run" --export "$run.bin" >/dev/null
    read -r wall peak_kb user sys <"$out/time.txt"
    report=$run/report.md
    f32=$(scores 'test set, f32 model' "$report")
    f16=$(scores 'test set, engine on model.bin' "$report")
    [ -n "$f32" ] && [ -n "$f16" ] || { echo "no scores in $report" >&2; exit 1; }
    agree=$(grep -m1 -oE 'agree on [0-9.]+%' "$report" | grep -oE '[0-9.]+%')
    rows+=("| $seed | $f32 | $f16 | $agree | $(stat -c %s "$run/model.bin") | $(stat -c %s "$run/model-int8.bin") | $(min_sec "$wall") | $(min_sec "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')") | $(awk -v k="$peak_kb" 'BEGIN { printf "%.0f", k / 1024 }') |")
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

{
    flag=""
    [ "$preset" = default ] || flag="--preset $preset "
    echo "Measured by \`bash bench/default-fit.sh $flag${seeds[*]}\` (\`trainer fit --preset $preset --seed S\`) on $(date -u +%Y-%m-%d): $MACHINE, no GPU; load average $load_start at the start, $load_end at the end. Test set: MNIST's 10,000 t10k images; labels used only to score."
    echo
    echo '| seed | f32 ACC | NMI | ARI | engine on model.bin (f16) ACC | NMI | ARI | agree with f32 | model.bin bytes | model-int8.bin bytes | wall time (training, scoring, export) | CPU time (user + system) | peak MB |'
    echo '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
    printf '%s\n' "${rows[@]}"
    echo
    echo "f32, f16 and int8 weights, seed ${seeds[0]} (the run's report.md: test set; argmax agreement with the f32 model; 32 generated digits per expert against the f32 decoders', intensities in [0, 1]; int8 calibrated on the first 10,000 training images, no labels):"
    echo
    awk '/^## Weights/ { on = 1; next } on && /^\|/ { print; seen = 1; next } seen { exit }' "$out/seed-${seeds[0]}/report.md"
} >"results/$preset-fit.md"
cat "results/$preset-fit.md"
