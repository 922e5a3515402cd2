#!/usr/bin/env bash
# The hierarchical mixture against the flat one, on the bundled MNIST, seed 1 (the default), each run a
# whole process (wall and CPU time: /usr/bin/time; the build excluded):
#   flat               trainer fit                              (the flat default: 10 experts)
#   hierarchical       trainer fit --method hierarchical        (10 digit experts, --styles auto of at most 2)
#   hierarchical-8x2   trainer fit --method hierarchical --experts 8 --styles 2
#   flat-16            trainer fit --experts 16 --encoder-hidden 64 --gate-hidden 379
#                      (a flat mixture of K·S = 16 VAEs beside the 8 × 2 run: the same encoders and
#                      decoders, the gate widened by the style gates' parameters, so that both train
#                      1.548 M parameters, on the same 60,000 images for the same optimiser steps; 8 × 2
#                      because the engine runs at most 16 experts, so a flat 10 × 2 = 20 cannot be exported)
# then each run's report: the gate's test ACC/NMI/ARI, the importance-sampled test log-likelihood
# (the same estimator for all), the expected negative ELBO, the parameters and the files.
# Writes results/hierarchical.md, which the READMEs include (`python3 .ci/readme-blocks.py
# --update`). Not part of the test suite: about 50 minutes of 2 cores.
#
#   bash bench/hierarchical.sh [--keep]
#
# Runs go to target/hierarchical/<name>/; --keep reuses a run whose report.md and time.txt exist.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = --keep ] && keep=1
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
out=$CARGO_TARGET/hierarchical
mkdir -p "$out" results
load_start=$(cut -d' ' -f1 /proc/loadavg)
trainer=$CARGO_TARGET/release/trainer

names=(flat hierarchical hierarchical-8x2 flat-16)
declare -A args=(
    [flat]="fit"
    [hierarchical]="fit --method hierarchical"
    [hierarchical-8x2]="fit --method hierarchical --experts 8 --styles 2"
    [flat-16]="fit --experts 16 --encoder-hidden 64 --gate-hidden 379"
)
for name in "${names[@]}"; do
    run=$out/$name
    if [ $keep = 1 ] && [ -f "$run/report.md" ] && [ -f "$run/time.txt" ]; then
        echo "$name: kept $run" >&2
        continue
    fi
    rm -rf "$run"
    echo "$name: trainer ${args[$name]}" >&2
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %M %U %S' -o "$out/$name.time" \
        "$trainer" ${args[$name]} --quiet --out "$run" >/dev/null
    mv "$out/$name.time" "$run/time.txt"
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

# A report line's figures: "ACC 0.9661, NMI 0.9150, ARI 0.9270" -> "0.9661 | 0.9150 | 0.9270".
scores() { grep -m1 -F -- "$1" "$2" | grep -oE '(ACC|NMI|ARI) [0-9.]+' | awk '{ printf "%s%s", (NR > 1 ? " | " : ""), $2 }'; }

rows=()
for name in "${names[@]}"; do
    run=$out/$name
    report=$run/report.md
    read -r wall _ user sys <"$run/time.txt"
    acc=$(scores 'test set, f32 model (classifier argmax)' "$report")
    ll=$(grep -m1 -F 'importance-sampled' "$report" | grep -oE '(-|−)[0-9.]+ nats/image' | grep -oE '[0-9.]+')
    elbo=$(grep -m1 -F 'expected negative ELBO under the routing' "$report" | grep -oE 'routing [0-9.]+' | grep -oE '[0-9.]+')
    [ -n "$acc" ] && [ -n "$ll" ] && [ -n "$elbo" ] || { echo "missing figures in $report" >&2; exit 1; }
    vaes=$(grep -m1 -oE 'over the [0-9]+ experts' "$report" | grep -oE '[0-9]+')
    params=$(grep -m1 -oE '^- parameters: [0-9]+|^- parameters trained: [0-9]+' "$report" | grep -oE '[0-9]+$' || true)
    rows+=("| $name | \`trainer ${args[$name]}\` | $vaes | ${params:-see its log} | $acc | −$ll | $elbo | $(stat -c %s "$run/model.bin") | $(stat -c %s "$run/model-int8.bin") | $(min_sec "$wall") | $(min_sec "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')") |")
done

{
    echo "Measured by \`bash bench/hierarchical.sh\` on $(date -u +%Y-%m-%d): $MACHINE, no GPU; load average $load_start at the start, $load_end at the end. Seed 1; test set: MNIST's 10,000 t10k images (the log-likelihood: the first 2,000, 16 importance samples per image and VAE, prior = the routing's mean over the training images); labels used only to score."
    echo
    echo '| run | command | VAEs | parameters trained | test ACC | NMI | ARI | test log-likelihood (nats/image) | expected negative ELBO under the routing (nats/image) | model.bin bytes (f16) | model-int8.bin bytes | wall time | CPU time (user + system) |'
    echo '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
    printf '%s\n' "${rows[@]}"
    echo
    echo "The hierarchical run's parameters (its report.md):"
    echo
    grep -m1 -E '^- parameters: ' "$out/hierarchical/report.md"
    echo
    echo "Its styles: \`--styles auto\` on the held-out training images (its report.md):"
    echo
    awk '/^`--styles auto`/ { on = 1 } on && /^\|/ { print; seen = 1; next } seen { exit }' "$out/hierarchical/report.md"
    echo
    echo "Its f32, f16 and int8 weights (test set; agreement with the f32 model on the cluster and on (cluster, style); 32 generated digits per (cluster, style) against the f32 decoders'):"
    echo
    awk '/^## Weights/ { on = 1; next } on && /^\|/ { print; seen = 1; next } seen { exit }' "$out/hierarchical/report.md"
} >results/hierarchical.md
cat results/hierarchical.md
