#!/usr/bin/env bash
# Training speed of `trainer fit --preset blog` against the same preset in PyTorch, measured in
# interleaved rounds on this machine (shared machines drift by tens of percent within minutes, so
# only figures taken side by side compare). Not part of the test suite.
#
#   bash bench/blog-vs-pytorch.sh [ROUNDS] [IMAGES]     # defaults: 3 rounds, 60000 images (one epoch)
#
# Each round runs, one after another, one epoch of:
#   - PyTorch as published: one module per expert, torch.optim.Adam (bench/blog_pytorch.py);
#   - PyTorch eager, the fastest way found: stacked experts with batched matmuls, fused Adam;
#   - the same under torch.compile (PyTorch's generated C++ kernels; its first steps, which compile,
#     are left out of its timing);
#   - this trainer, `trainer fit --preset blog`.
# and reports the samples/s of the training steps alone (both sides exclude loading and evaluation).
# PyTorch comes from PyPI into target/bench-venv (a few GB, once) unless PYTHON names an interpreter
# that has torch and numpy. Writes results/training-speed.md, which docs/measurements/training-speed.md
# includes (python3 .ci/readme-blocks.py --update).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
images=${2:-60000}

if [[ -z "${PYTHON:-}" ]]; then
    if [[ ! -x target/bench-venv/bin/python ]]; then
        echo "installing torch and numpy into target/bench-venv (once)" >&2
        python3 -m venv target/bench-venv
        target/bench-venv/bin/pip install --quiet torch numpy >&2
    fi
    PYTHON=target/bench-venv/bin/python
fi
cargo build --release -p trainer >&2
# shellcheck disable=SC1091
. .ci/target-dir.sh
# shellcheck disable=SC1091
. .ci/machine.sh
trainer=$CARGO_TARGET/release/trainer
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT

speed() { grep -o '"samples_per_s": *[0-9.]*' | grep -o '[0-9.]*$'; }
torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)')

mkdir -p results
table() {
    echo "Measured by \`bash bench/blog-vs-pytorch.sh $rounds $images\` on $(date -u +%F): $MACHINE, no GPU; load average $(cut -d' ' -f1 /proc/loadavg) at the start. Samples/s of the training steps of one epoch of $images images, each engine in turn, round after round."
    echo
    printf '| round | PyTorch %s as published | batched + fused Adam | the same, compiled | trainer | trainer / published | / batched | / compiled |\n' "$torch_version"
    printf '|---|---|---|---|---|---|---|---|\n'
    for r in $(seq "$rounds"); do
        published=$("$PYTHON" bench/blog_pytorch.py --limit "$images" | speed)
        batched=$("$PYTHON" bench/blog_pytorch.py --limit "$images" --experts batched --adam fused | speed)
        compiled=$("$PYTHON" bench/blog_pytorch.py --limit "$images" --experts batched --adam fused --compile | speed)
        rm -rf "$run_dir/run"
        "$trainer" fit --preset blog --epochs 1 --limit "$images" --out "$run_dir/run" >/dev/null
        ours=$(speed < "$run_dir/run/metrics.jsonl")
        awk -v r="$r" -v p="$published" -v b="$batched" -v c="$compiled" -v o="$ours" 'BEGIN {
            printf "| %d | %.0f | %.0f | %.0f | %.0f | %.2f× | %.2f× | %.2f× |\n", r, p, b, c, o, o / p, o / b, o / c }'
    done
}
table | tee "$run_dir/table.md"
cp "$run_dir/table.md" results/training-speed.md
