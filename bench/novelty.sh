#!/usr/bin/env bash
# The novelty score, measured: four candidate novelty scores of the default flat run
# (seed 1; trained with `trainer fit` when missing) on out-of-distribution sets made in code and on
# scikit-learn's 8x8 digits framed to 28x28 (examples/sklearn_digits.py), each against the MNIST
# test set, with thresholds calibrated on the training images only (`trainer experiment novelty`);
# then the score as built: the run's model.bin and model-int8.bin (their novelty section, fitted by
# the export) through the engine on the same sets, and the bytes the section adds.
# Writes results/novelty-candidates.md (docs/measurements/novelty.md includes it) and
# results/novelty.md (trainer/README.md includes it; `python3 .ci/readme-blocks.py --update`).
# Not part of the test suite.
#
#   bash bench/novelty.sh          # needs scikit-learn and pillow for the last set (skipped without)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/trainer-env.sh
. bench/trainer-env.sh
trainer=$CARGO_TARGET/release/trainer
run=$(realpath -m --relative-to=. "$CARGO_TARGET/hierarchical/flat")
out=$CARGO_TARGET/novelty
mkdir -p "$out" results
if [ ! -f "$run/checkpoint.safetensors" ]; then
    echo "training $run (trainer fit --out $run)" >&2
    "$trainer" fit --quiet --out "$run" >/dev/null
fi
sklearn=()
if python3 -c 'import sklearn, PIL' 2>/dev/null; then
    rm -rf "$out/digits"
    python3 examples/sklearn_digits.py "$out/digits" >/dev/null
    sklearn=(--sklearn "$out/digits/flat")
fi
load_start=$(cut -d' ' -f1 /proc/loadavg)
"$trainer" experiment novelty --run "$run" --out "$out" "${sklearn[@]}" >/dev/null
load_end=$(cut -d' ' -f1 /proc/loadavg)
stamp="Measured by \`bash bench/novelty.sh\` on $(date -u +%Y-%m-%d): $MACHINE, no GPU; load average $load_start at the start, $load_end at the end. Labels used only to score."
# The experiment's markdown holds both parts; the second starts at its heading.
python3 - "$out/novelty.md" "$stamp" <<'PY'
import sys
text = open(sys.argv[1]).read()
head = "### The score as built\n"
candidates, built = text.split(head) if head in text else (text, "")
open("results/novelty-candidates.md", "w").write(sys.argv[2] + "\n\n" + candidates.strip() + "\n")
if built:
    open("results/novelty.md", "w").write(sys.argv[2] + "\n\n" + built.strip() + "\n")
PY
cat results/novelty-candidates.md results/novelty.md
