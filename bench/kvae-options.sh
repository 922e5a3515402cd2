#!/usr/bin/env bash
# What each of the authors' architecture options does in `trainer experiment kvae-mnist`: the
# experiment with all of them (its default: batch norm in the VAEs, the authors' convolutional
# discriminators, σ(2·logit) as generated images), then once with each turned off
# (--no-batch-norm, --dense-disc, --plain-fakes). Per run: kVAE's FID (15 VAEs), the test
# clustering of its distilled gate (K = 15 and K = 10), kVAE's training time and the whole
# experiment's wall time (/usr/bin/time; the build excluded). Writes results/kvae-options.md,
# which trainer/README.md includes (`python3 .ci/readme-blocks.py --update`). Not part of the
# test suite.
#
#   bash bench/kvae-options.sh            # the experiment's default setting: ≈ 6 h a run on 2 cores
#                                         # (2026-12-06, all options on, a shared machine: the pretraining
#                                         # epoch 33 min, 19 of them VAE steps; a round ≈ 9 min, 2.2 of
#                                         # them VAE steps, the rest scoring 60,000 images with 15
#                                         # convolutional discriminators), so resume it across sessions
#                                         # or run it on a GPU (bench/gpu.sh kvae)
#   bash bench/kvae-options.sh --quick    # its --quick setting (the test suite's; minutes a run)
#   bash bench/kvae-options.sh --resume   # goes on where a stopped run left off (Ctrl-C saves a
#                                         # checkpoint): finished options are kept, not rerun
#
# Runs go to target/kvae-options/<option>/ (replaced each time unless --resume; the checkpoints of
# finished runs deleted).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
setting="default"
command="bash bench/kvae-options.sh"
resume=false
resumed=""
for arg in "$@"; do
    case $arg in
        --quick) quick=(--quick) setting="--quick" command+=" --quick" ;;
        --resume) resume=true ;;
        *) echo "bench/kvae-options.sh: unknown option $arg (--quick, --resume)" >&2; exit 2 ;;
    esac
done
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
out=$CARGO_TARGET/kvae-options
mkdir -p "$out" results
load_start=$(cut -d' ' -f1 /proc/loadavg)

# A cell of the first table row of $2 whose first cell starts with $1 (cells counted from 1).
cell() { awk -F'|' -v key="$1" -v n="$3" 'index($2, " " key) == 1 { gsub(/^ +| +$/, "", $(n + 1)); print $(n + 1); exit }' "$2"; }

rows=()
for option in none --no-batch-norm --dense-disc --plain-fakes; do
    name=${option#--}
    run=$out/$name
    md=$run/mnist.md
    flags=("${quick[@]}")
    [ "$option" = none ] || flags+=("$option")
    if $resume && [ -f "$md" ] && [ -f "$out/time-$name.txt" ]; then
        echo "kvae-options: $name finished before, kept" >&2
    else
        if $resume; then flags+=(--resume) resumed=" Runs resumed from a checkpoint (--resume): their times are their last part's."; else rm -rf "$run"; fi
        echo "kvae-options: trainer experiment kvae-mnist ${flags[*]}" >&2
        /usr/bin/time -f '%e' -o "$out/time-$name.txt" \
            "$CARGO_TARGET/release/trainer" experiment kvae-mnist "${flags[@]}" --out "$run" >>"$out/$name.log" 2>&1
    fi
    wall=$(cat "$out/time-$name.txt")
    fid=$(cell "(a) kVAE" "$md" 5)
    seconds=$(cell "(a) kVAE" "$md" 7)
    purity15=$(cell "kVAE, 15 " "$md" 3)
    nmi15=$(cell "kVAE, 15 " "$md" 4)
    purity10=$(cell "kVAE, 10 " "$md" 3)
    acc10=$(cell "kVAE, 10 " "$md" 6)
    [ -n "$fid" ] && [ -n "$purity15" ] && [ -n "$purity10" ] || { echo "no figures in $md" >&2; exit 1; }
    # The table needs none of the run's checkpoints (≈ 330 MB a run with the convolutional
    # discriminators' optimizer state): gone, so that four runs fit a small disk.
    find "$run" -name '*.safetensors' -delete
    if [ "$option" = none ]; then label="all three (the experiment's default)"; else label="\`$option\`"; fi
    rows+=("| $label | $fid | $purity15 | $nmi15 | $purity10 | $acc10 | $(min_sec "${seconds%.*}") | $(min_sec "${wall%.*}") |")
done
load_end=$(cut -d' ' -f1 /proc/loadavg)
real=$(grep -m1 -oE 'real training images score [0-9]+\.[0-9]+' "$out/none/mnist.md" | grep -oE '[0-9]+\.[0-9]+$')

{
    echo "Measured by \`$command\` on $(date -u +%Y-%m-%d): $MACHINE, no GPU; load average $load_start at the start, $load_end at the end (a machine shared with other jobs: times are comparable only roughly). Setting: \`trainer experiment kvae-mnist\` at its $setting setting, seed 1; one run per row, each option turned off alone. FID of kVAE's 15 VAEs (the experiment's FID; real training images score $real); clustering of the test images by kVAE's distilled gate; kVAE's training time (15 VAEs) and the wall time of the whole experiment (k-means, both kVAE runs, the three baselines, the scoring).$resumed"
    echo
    echo '| architecture options on | kVAE FID (K = 15) | purity (K = 15) | NMI (K = 15) | purity (K = 10) | ACC (K = 10) | kVAE training (K = 15) | whole experiment |'
    echo '|---|---:|---:|---:|---:|---:|---:|---:|'
    printf '%s\n' "${rows[@]}"
} >results/kvae-options.md
cat results/kvae-options.md
