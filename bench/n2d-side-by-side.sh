#!/usr/bin/env bash
# The trainer's default command against N2D (bench/n2d_peer.py: PyTorch + umap-learn + scikit-learn, as a
# user would build it) on the same image sets, with no per-set flags (only K where a set has 5 classes):
# MNIST (data/mnist), scikit-learn's 8x8 digits and sets derived from MNIST (bench/derive_sets.py:
# inverted, rescaled to 16x16, digits 0-4 only, thickened; the first 20,000 training images each).
# Each method fits on a set's training images and is scored on its test images (the 8x8 digits: fitted
# and scored on all 1,797). Writes results/n2d-side-by-side.md (rewritten after every set, so a stopped
# run leaves the rows it finished), which trainer/README.md includes. Not part of the test suite.
#
#   bash bench/n2d-side-by-side.sh [SET ...]   # default: mnist digits8x8 inverted rescaled16 digits0to4 thickened
#   bash bench/n2d-side-by-side.sh --rerun SET ...
#
# --rerun measures the named sets again and replaces only their rows of the existing table, whose
# first line then says which rows were rerun and when (for a row a busy machine spoilt: say so
# where the figures are used).
#
# N2D's Python environment: $N2D_VENV (default $CARGO_TARGET/n2d-venv), made with
# `pip install torch umap-learn scikit-learn scipy` if it lacks them (torch from PyPI: a large download).
# Runs and sets go to $CARGO_TARGET/n2d-side-by-side/ (replaced each time).
set -euo pipefail
cd "$(dirname "$0")/.."
all_sets=(mnist digits8x8 inverted rescaled16 digits0to4 thickened)
rerun=
if [ "${1:-}" = --rerun ]; then
    rerun=1
    shift
    [ $# -gt 0 ] || { echo "--rerun needs the sets to measure again" >&2; exit 2; }
    [ -f results/n2d-side-by-side.md ] || { echo "--rerun: results/n2d-side-by-side.md is missing: run the whole bench first" >&2; exit 2; }
fi
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=("${all_sets[@]}")
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
venv=${N2D_VENV:-$CARGO_TARGET/n2d-venv}
if ! "$venv/bin/python" -c 'import torch, umap, sklearn, scipy' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch umap-learn scikit-learn scipy
fi
py=$venv/bin/python
trainer=$CARGO_TARGET/release/trainer
out=$CARGO_TARGET/n2d-side-by-side
[ -n "$rerun" ] || rm -rf "$out"
mkdir -p "$out" results
load_start=$(cut -d' ' -f1 /proc/loadavg)
date_start=$(date -u '+%Y-%m-%d %H:%M')
"$py" bench/derive_sets.py "$out/sets" --limit 20000 >"$out/sets.txt"

# A field of a JSON line.
field() { "$py" -c 'import json, sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print("–" if v is None else (f"{v:.4f}" if isinstance(v, float) else v))' "$2" "$1"; }

rows=()
# --rerun: the table's first line and its rows; a set measured again replaces its row.
declare -A kept=()
if [ -n "$rerun" ]; then
    header=$(head -n 1 results/n2d-side-by-side.md)
    table_head=$(sed -n '3,4p' results/n2d-side-by-side.md)
    for set in "${all_sets[@]}"; do
        kept[$set]=$(grep -F "| $set | " results/n2d-side-by-side.md || true)
    done
fi
write_table() {
    if [ -n "$rerun" ]; then
        local set
        {
            echo "$header Rows rerun by \`bash bench/n2d-side-by-side.sh --rerun ${sets[*]}\` from $date_start UTC (load average $load_start at the start, $1): ${sets[*]}."
            echo
            echo "$table_head"
            for set in "${all_sets[@]}"; do
                [ -z "${kept[$set]}" ] || echo "${kept[$set]}"
            done
        } >"$out/table.md"
        mv "$out/table.md" results/n2d-side-by-side.md
        return
    fi
    {
        echo "Measured by \`bash bench/n2d-side-by-side.sh\` from $date_start UTC: $MACHINE, no GPU (load average $load_start at the start, $1). Both methods as shipped, one seed each (the trainer's default seed 1, N2D's default seed 0), every run under \`nice -n 5\` as a whole process (wall and CPU time: \`/usr/bin/time\`); N2D with its default 2 threads, the trainer with all cores. The derived sets keep MNIST's first 20,000 training images (digits 0–4: the first 20,000 of those) and all their test images. Labels used only to score (ACC: Hungarian one-to-one)."
        echo
        echo '| set | images: fitted / scored | size | K | trainer `fit` ACC | NMI | wall | CPU | N2D ACC | NMI | wall | CPU | trainer: its start (partition, training images) ACC / NMI | after pretraining (test) ACC / NMI |'
        echo '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
        printf '%s\n' "${rows[@]}"
    } >results/n2d-side-by-side.md
}

for set in "${sets[@]}"; do
    k=10 flags=()
    case $set in
        mnist) dir=data/mnist ;;
        digits8x8 | inverted | rescaled16 | thickened) dir=$out/sets/$set ;;
        digits0to4) dir=$out/sets/$set k=5 flags=(--experts 5) ;;
        *) echo "unknown set $set" >&2; exit 2 ;;
    esac
    run=$out/run-$set
    rm -rf "$run"
    echo "$set: trainer fit --data $dir ${flags[*]}" >&2
    nice -n 5 /usr/bin/time -f '%e %U %S' -o "$out/time-trainer-$set.txt" \
        "$trainer" fit --quiet --data "$dir" "${flags[@]}" --out "$run" >"$out/fit-$set.log" 2>&1
    read -r t_wall t_user t_sys <"$out/time-trainer-$set.txt"
    tr=$("$py" bench/side_by_side_scores.py "$run" "$dir")
    echo "$set: python bench/n2d_peer.py $dir --k $k" >&2
    nice -n 5 /usr/bin/time -f '%e %U %S' -o "$out/time-n2d-$set.txt" \
        "$py" bench/n2d_peer.py "$dir" --k "$k" >"$out/n2d-$set.json" 2>"$out/n2d-$set.log"
    read -r n_wall n_user n_sys <"$out/time-n2d-$set.txt"
    n2d=$(tail -n 1 "$out/n2d-$set.json")
    size=$("$py" -c 'import gzip, struct, sys; r = gzip.open(sys.argv[1]).read(16); print("%dx%d" % struct.unpack(">II", r[8:16])[::-1])' "$dir/train-images-idx3-ubyte.gz")
    rows+=("| $set | $(field n_train "$n2d") / $(field n_scored "$n2d") | $size | $k | $(field acc "$tr") | $(field nmi "$tr") | $(min_sec "$t_wall") | $(min_sec "$(awk -v u="$t_user" -v s="$t_sys" 'BEGIN { print u + s }')") | $(field acc "$n2d") | $(field nmi "$n2d") | $(min_sec "$n_wall") | $(min_sec "$(awk -v u="$n_user" -v s="$n_sys" 'BEGIN { print u + s }')") | $(field partition_acc "$tr") / $(field partition_nmi "$tr") | $(field start_acc "$tr") / $(field start_nmi "$tr") |")
    kept[$set]=${rows[-1]}
    write_table "$(cut -d' ' -f1 /proc/loadavg) after $set"
done
write_table "$(cut -d' ' -f1 /proc/loadavg) at the end, $(date -u '+%H:%M') UTC"
cat results/n2d-side-by-side.md
