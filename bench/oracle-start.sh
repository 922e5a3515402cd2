#!/usr/bin/env bash
# How far the default model goes from a perfect start: an upper bound, not a result. The training
# labels themselves are written as the run's partition.json (the file a resumed run reads instead
# of computing the label-free partition), so the default recipe - 10 epochs of pretraining on the
# partition, 8 of the mixture objective - starts from the true digits; a second run trains the
# gate on them for 20 epochs and skips the mixture (`--pretrain-epochs 20 --epochs 0`): the
# gate's supervised ceiling under this recipe. The label-free default is results/default-fit.md.
# Labels train here ON PURPOSE; the product never does this. Writes results/oracle-start.md.
# Not part of the test suite.
#
#   bash bench/oracle-start.sh [SEED ...]     # default: 1
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1)
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
out=$CARGO_TARGET/oracle-start
mkdir -p "$out" results

# The last "test ACC" of a run's log for a phase ("pretrain", "mixture"), or "-".
last_acc() { awk -v p="$1" '$1 == "epoch" && $3 == p { for (i = 1; i < NF; i++) if ($i == "ACC") a = $(i + 1) } END { print (a == "" ? "-" : a) }' "$2"; }
# The engine's test ACC from the report.
final_acc() { grep -m1 -F 'test set, engine on model.bin' "$1" | grep -oE 'ACC [0-9.]+' | cut -d' ' -f2; }

# The training labels in partition.json's form, written once.
python3 - "$out/labels-partition.json" <<'EOF'
import gzip, json, sys
labels = gzip.open("data/mnist/train-labels-idx1-ubyte.gz").read()[8:]
json.dump({"k": 10, "assignment": list(labels)}, open(sys.argv[1], "w"))
EOF

rows=()
for seed in "${seeds[@]}"; do
    for run in oracle oracle-gate; do
        dir=$out/seed-$seed-$run
        rm -rf "$dir"
        mkdir -p "$dir"
        flags=()
        cp "$out/labels-partition.json" "$dir/partition.json"
        [ "$run" = oracle-gate ] && flags=(--pretrain-epochs 20 --epochs 0)
        echo "seed $seed, $run: trainer fit --seed $seed ${flags[*]}" >&2
        /usr/bin/time -f '%e' -o "$out/time.txt" \
            "$CARGO_TARGET/release/trainer" fit --seed "$seed" --out "$dir" "${flags[@]}" >"$dir/log.txt" 2>&1
        wall=$(cat "$out/time.txt")
        case $run in
        oracle) what="the training labels as the partition, default recipe" ;;
        oracle-gate) what="the training labels, gate only: 20 pretraining epochs, no mixture" ;;
        esac
        rows+=("| $seed | $what | $(last_acc pretrain "$dir/log.txt") | $(last_acc mixture "$dir/log.txt") | $(final_acc "$dir/report.md") | $(min_sec "$wall") |")
    done
done

{
    echo "Measured by \`bash bench/oracle-start.sh ${seeds[*]}\` on $(date -u +%F): $MACHINE, no GPU. The training labels"
    echo "are these runs' partition ON PURPOSE: an upper bound on what a better label-free start could give the"
    echo "default recipe, not a result of the product. Test set: MNIST's 10,000 t10k images (ACC: Hungarian one-to-one)."
    echo
    echo "| seed | start | test ACC after pretraining | after the mixture epochs | final (engine, f16) | wall |"
    echo "|---:|---|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >results/oracle-start.md
cat results/oracle-start.md
