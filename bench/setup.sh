#!/usr/bin/env bash
# The README's set-up as a new user meets it: a fresh clone of this repository's HEAD, a cargo
# target directory of its own (crates from the local cargo cache, so the download is not timed),
# then its two commands timed as whole processes: the first build of the trainer, the default
# `trainer fit --export model.bin`, and `cargo test --workspace --release` (its own build
# included). Writes results/setup.md, which the README includes
# (`python3 .ci/readme-blocks.py --update`). Not part of the test suite: about 20 minutes on 2 cores.
#
#   bash bench/setup.sh            # --no-fit: leave out the training (bench/default-fit.sh times it)
set -euo pipefail
cd "$(dirname "$0")/.."
fit=1
[ "${1:-}" = "--no-fit" ] && fit=0
repo=$PWD
# shellcheck disable=SC1091
. .ci/machine.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export CARGO_TARGET_DIR=$work/target CARGO_TERM_COLOR=never
load_start=$(cut -d' ' -f1 /proc/loadavg)

# Wall seconds of one command, its output in $work/NAME.log.
timed() {
    local name=$1
    shift
    echo "$*" >&2
    /usr/bin/time -f '%e' -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 || {
        tail -20 "$work/$name.log"
        exit 1
    }
    awk '{ s = $1; printf "%d min %02d s", s / 60, s % 60 }' "$work/$name.time"
}
build=$(timed build cargo build --release --locked -p trainer)
train="timed by \`bash bench/default-fit.sh\` (results/default-fit.md)"
[ $fit = 1 ] && train=$(timed fit cargo run --release --locked -p trainer -- fit --quiet --export model.bin)
tests=$(timed test cargo test --workspace --release --locked)
passed=$(grep -oE '^test result: ok\. [0-9]+ passed' "$work/test.log" | awk '{ n += $4 } END { print n }')

{
    echo "Measured by \`bash bench/setup.sh\` on $(date -u +%F): a fresh clone, an empty target directory, crates already in cargo's download cache; $MACHINE, no GPU; load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end; $(rustc --version)."
    echo
    echo '| step | command | wall time |'
    echo '|---|---|---:|'
    echo "| first build of the trainer | \`cargo build --release -p trainer\` | $build |"
    echo "| train and export the default model | \`cargo run --release -p trainer -- fit --export model.bin\` | $train |"
    echo "| the test suite ($passed tests), its build included | \`cargo test --workspace --release\` | $tests |"
} >"$repo/results/setup.md"
cat "$repo/results/setup.md"
