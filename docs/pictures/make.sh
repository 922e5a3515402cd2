#!/usr/bin/env bash
# Draws the docs' pictures again, each from the command that makes it for a user:
#   default-samples.png   `trainer sample` on the bundled int8 default model
#                         (firmware-example/models/default-int8.bin), 6 samples per expert;
#   loss.png, samples.png, confusion.png
#                         the run directory of the default command, seed 1, as
#                         `bash bench/default-fit.sh 1` runs it (target/default-fit/seed-1/; the
#                         run is made here when it is missing: 5-10 minutes on 2 cores).
# web/screenshot.png is the browser test's (`bash .ci/web.sh --update-readme`).
#
#   bash docs/pictures/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p trainer
# shellcheck disable=SC1091
. .ci/target-dir.sh
trainer=$CARGO_TARGET/release/trainer
"$trainer" sample --model firmware-example/models/default-int8.bin --per-expert 6 --out docs/pictures/default-samples.png
run=$CARGO_TARGET/default-fit/seed-1
[ -f "$run/confusion.png" ] || bash bench/default-fit.sh 1
cp "$run/loss.png" "$run/samples.png" "$run/confusion.png" docs/pictures/
echo "docs/pictures: default-samples.png, loss.png, samples.png, confusion.png written"
