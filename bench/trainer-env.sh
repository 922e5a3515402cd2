# Sourced (from the repository's root) by the bench scripts that run the trainer: builds it
# (release, locked; its output hidden), sets $CARGO_TARGET (.ci/target-dir.sh) and $MACHINE
# (.ci/machine.sh, the line that says where a figure was measured), and defines min_sec.
cargo build --release --locked -p trainer >/dev/null 2>&1
# shellcheck disable=SC1091
. .ci/target-dir.sh
# shellcheck disable=SC1091
. .ci/machine.sh

# "M min SS s" of a number of seconds (a table's time cell).
min_sec() { awk -v s="$1" 'BEGIN { printf "%d min %02d s", s / 60, s % 60 }'; }
