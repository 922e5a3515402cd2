#!/usr/bin/env bash
# The emulated firmware tests. Run .ci/emulators.sh first.
#
# For every (target, model) pair in PAIRS: builds the firmware with that
# model embedded, runs it on its emulator, checks that its clusters,
# confidences and generated images equal the host's (`fw-host expect` on
# the same model) bit for bit, and records its row of the cost table.
# Targets: the RP2040 firmware (rp2040js), the ESP32-C3 firmware (built
# only), and the QEMU engine test on riscv32 virt, mps2-an386 (Cortex-M4F,
# hardware f32), mps2-an385 and the micro:bit. The two-level (version 3)
# int8 model (HIER_INT8_MODEL) runs on every full-size target, with its
# budgets (file <= 1.5 MiB, engine RAM <= 8 KiB, RP2040 classification
# <= 1.5x the flat int8 model's cycles). The int8 model without its
# novelty section (fw-host strip-novelty) runs on the RP2040 too: the
# section's cost, at most 10% more cycles per classification and 10% more
# bytes. Also checks the RP2040
# budgets and prints the cost table; `--update-readme` also writes the table,
# the RP2040's boot log and its summary into results/ (firmware-cost.md,
# firmware-boot-log.md, rp2040.md) and the READMEs' blocks that show them.
#
# Environment: DEFAULT_MODEL (model for every target but the micro:bit),
# HIER_INT8_MODEL (the two-level int8 model, default
# firmware-example/models/hierarchical-int8.bin),
# FW_TARGET_DIR (cargo target dir, default target/firmware/cargo),
# FW_OUT (logs and results, default target/firmware).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck disable=SC1091
. "$ROOT/.ci/machine.sh"
FW=$ROOT/firmware-example

# The models, by name. To run another model on the full-size targets, add
# it here and to FULL_MODELS.
DEFAULT_MODEL=${DEFAULT_MODEL:-$FW/models/default.bin}
SMALL_MODEL=$FW/models/small.bin
INT8_MODEL=${INT8_MODEL:-$FW/models/default-int8.bin}
SMALL_INT8_MODEL=$FW/models/small-int8.bin
HIER_INT8_MODEL=${HIER_INT8_MODEL:-$FW/models/hierarchical-int8.bin}
HIER_F16_MODEL=$FW/models/hierarchical.bin
declare -A MODELS=([default]=$(realpath "$DEFAULT_MODEL") [int8]=$(realpath "$INT8_MODEL")
  [small]=$(realpath "$SMALL_MODEL") [small-int8]=$(realpath "$SMALL_INT8_MODEL")
  [hierarchical-int8]=$(realpath "$HIER_INT8_MODEL"))
# Every full-size target runs every model of FULL_MODELS; the micro:bit
# (256 KiB of flash) runs the small model only. The order is the table's.
FULL_TARGETS=(rp2040 esp32c3 riscv32-virt mps2-an386 mps2-an385)
# hierarchical-int8: the two-level model (clusters of styles), int8. Its
# f16 twin is not run (see the note the table ends with).
FULL_MODELS=(int8 default hierarchical-int8)
PAIRS=()
for t in "${FULL_TARGETS[@]}"; do
  for m in "${FULL_MODELS[@]}"; do PAIRS+=("$t:$m"); done
done
PAIRS+=(microbit:small-int8 microbit:small)
# A model of another image size on the two boards' instruction sets: the
# 8x8 model trained on scikit-learn's digits, with MNIST test digits framed
# into 8x8 (fw-host digits --model).
PAIRS+=(rp2040:digits8-int8 riscv32-virt:digits8-int8)
# The int8 model without its novelty section (fw-host strip-novelty: the
# same weights and data bytes, a version-2 file), on the RP2040 only: the
# section's cost in cycles, against the int8 row (at most 10%
# more cycles per classification and 10% more model bytes).
PAIRS+=(rp2040:int8-no-novelty)

OUT=${FW_OUT:-$ROOT/target/firmware}
export CARGO_TARGET_DIR=${FW_TARGET_DIR:-$OUT/cargo}
UPDATE_README=0
CHECK_README=0
[ "${1:-}" = "--update-readme" ] && UPDATE_README=1
# --check-readme (CI): fail if those results/ files differ from this run's
# (emulated cycles, instruction counts and sizes are deterministic: a figure
# in the docs is this script's, never typed).
[ "${1:-}" = "--check-readme" ] && CHECK_README=1

# shellcheck disable=SC1091
. "${EMULATORS_DIR:-$ROOT/.emulators}/env.sh"
mkdir -p "$OUT" "$OUT/elf"
rm -f "$OUT"/*.log "$OUT"/*.stderr "$OUT"/*.result "$OUT"/*.diff "$OUT"/elf/*
QEMU_COMMON=(-nographic -monitor none -serial none -semihosting-config enable=on,target=native -icount shift=0,align=off)
failures=0
fail() { echo "firmware: FAIL: $*"; failures=$((failures + 1)); }
step() { echo "firmware: $*"; }

step "host tool and firmware-common tests"
if ! (cd "$FW/common" && cargo test --locked --quiet --release >"$OUT/common-tests.log" 2>&1); then
  fail "firmware-common unit tests (see $OUT/common-tests.log)"
fi
if ! (cd "$FW/host" && cargo test --locked --quiet --release >"$OUT/host-tests.log" 2>&1); then
  fail "fw-host unit tests (see $OUT/host-tests.log)"
fi
(cd "$FW/host" && cargo build --locked --quiet --release)
HOST=$CARGO_TARGET_DIR/release/fw-host
MODELS[digits8-int8]=$(realpath "$FW/models/digits8x8-int8.bin")
MODELS[int8-no-novelty]=$OUT/default-int8-no-novelty.bin
"$HOST" strip-novelty --model "${MODELS[int8]}" --out "${MODELS[int8-no-novelty]}" >"$OUT/strip-novelty.txt"
declare -A DIGITS=()
for m in "${!MODELS[@]}"; do DIGITS[$m]=$FW/common/data/digits.bin; done
DIGITS[digits8-int8]=$OUT/digits8x8.bin
"$HOST" digits --mnist "$ROOT/data/mnist" --count 8 --model "${MODELS[digits8-int8]}" --out "${DIGITS[digits8-int8]}" >/dev/null
for m in "${!MODELS[@]}"; do
  "$HOST" expect --model "${MODELS[$m]}" --digits "${DIGITS[$m]}" >"$OUT/host-$m.log"
done

# target_spec TARGET: how to build and run it, and its row labels.
target_spec() {
  cargo_args=()
  run=()
  unit=instructions
  hz=""
  case $1 in
    rp2040)
      dir=rp2040 triple=thumbv6m-none-eabi bin=fw-rp2040 unit=cycles hz=125000000
      run=(rp2040js)
      label="RP2040 firmware (Pico)" emulator="rp2040js 1.4.1" ;;
    esp32c3)
      dir=esp32c3 triple=riscv32imc-unknown-none-elf bin=fw-esp32c3
      label="ESP32-C3 firmware" emulator="built only (costs: the rv32imc row)" ;;
    riscv32-virt)
      dir=qemu triple=riscv32imc-unknown-none-elf bin=fw-qemu hz=160000000
      run=(qemu-system-riscv32 -M virt -m 16M -bios none)
      label="engine test, rv32imc" emulator="QEMU riscv32 virt" ;;
    mps2-an386)
      dir=qemu triple=thumbv7em-none-eabihf bin=fw-qemu
      run=(qemu-system-arm -M mps2-an386 -cpu cortex-m4)
      label="engine test, thumbv7em-none-eabihf" emulator="QEMU mps2-an386 (M4F core, f32 in hardware)" ;;
    mps2-an385)
      dir=qemu triple=thumbv6m-none-eabi bin=fw-qemu
      run=(qemu-system-arm -M mps2-an385 -cpu cortex-m3)
      label="engine test, thumbv6m" emulator="QEMU mps2-an385 (M3 core)" ;;
    microbit)
      dir=qemu triple=thumbv6m-none-eabi bin=fw-qemu cargo_args=(--features microbit)
      run=(qemu-system-arm -M microbit)
      label="engine test, thumbv6m" emulator="QEMU microbit (M0 core)" ;;
    *)
      echo "firmware: unknown target $1" >&2
      exit 2 ;;
  esac
}

# Result lines: everything left of " | " on digit/frame/sample lines, and the art.
results() { tr -d '\r' <"$1" | grep -E '^(digit|frame|sample) |^    ' | sed 's/ | .*//'; }
cost() { tr -d '\r' <"$1" | sed -n "s/^cost $2 mean | \([0-9]*\) .*/\1/p"; }
parse_cost() { tr -d '\r' <"$1" | sed -n "s/^cost parse | \([0-9]*\) .*/\1/p"; }
stack() { tr -d '\r' <"$1" | sed -n 's/^stack high-water \([0-9]*\) bytes.*/\1/p'; }

check() { # name log host-log
  local name=$1 log=$2 host=$3
  # awk reads the whole file: a reader that stops early (grep -q, awk's
  # exit) would break the pipe behind it, a 141 under pipefail.
  if ! awk '{ sub(/\r$/, "") } $0 == "done" { found = 1 } END { exit !found }' "$log"; then
    fail "$name did not finish (see $log)"
    tr -d '\r' <"$log" | grep -E '^FAIL|fatal' | head -5 || true
    return
  fi
  if [ "$(results "$host" | grep -c '^digit')" -eq 0 ] || [ "$(results "$host" | grep -c '^sample')" -eq 0 ]; then
    fail "the host reference $host has no digits or no samples"
    return
  fi
  if ! diff <(results "$host") <(results "$log") >"$OUT/$name.diff"; then
    fail "$name differs from the host (see $OUT/$name.diff)"
    head -5 "$OUT/$name.diff"
    return
  fi
  step "$name: $(results "$log" | grep -c '^digit') digits, $(results "$log" | grep -c '^frame') MNIST framings ($(results "$log" | grep -c '^frame .* unchanged$') unchanged) and $(results "$log" | grep -c '^sample') samples identical to the host, bit for bit"
}

# RP2040 budgets: image <= 1.5 MiB of the Pico's 2 MiB, RAM <= 64 KiB.
rp2040_budgets() { # name result-file
  local name="RP2040 ($1)" flash ram stack
  flash=$(sed -n 's/^flash=//p' "$2")
  ram=$(sed -n 's/^static_ram=//p' "$2")
  stack=$(sed -n 's/^stack=//p' "$2")
  if [ "$flash" -gt $((1536 * 1024)) ]; then fail "$name: image is $flash bytes, over 1.5 MiB"; fi
  if [ -z "$stack" ] || [ $((ram + stack)) -gt $((64 * 1024)) ]; then
    fail "$name: RAM (static $ram + stack ${stack:-?}) over 64 KiB"
  else
    step "$name budgets: image $flash bytes (<= 1.5 MiB), RAM $((ram + stack)) bytes (<= 64 KiB)"
  fi
  echo "$name budgets: image $flash bytes of at most $((1536 * 1024)) (1.5 MiB);" \
    "RAM $ram static + ${stack:-?} stack = $((ram + ${stack:-0})) bytes of at most $((64 * 1024)) (64 KiB)." \
    >>"$OUT/budgets.txt"
}

# pair ROW TARGET MODEL: builds the target with the model embedded, runs it,
# compares it with the host and writes its row of the cost table. Builds run
# one after another and share one target dir (each ELF is copied out).
pair() {
  local row=$1 target=$2 model=$3 name=$2-$3 log="" start
  local file=${MODELS[$model]}
  target_spec "$target"
  start=$SECONDS
  (cd "$FW/$dir" && MODEL_BIN=$file DIGITS_BIN=${DIGITS[$model]} cargo build --locked --quiet --release --target "$triple" "${cargo_args[@]}")
  local elf=$OUT/elf/$name
  cp "$CARGO_TARGET_DIR/$triple/release/$bin" "$elf"
  step "$name built in $((SECONDS - start)) s"
  start=$SECONDS
  if [ "${run[0]:-}" = rp2040js ]; then
    log=$OUT/$name.log
    timeout 600 node "$FW/scripts/rp2040js-run.cjs" "$elf" "$RP2040_BOOTROM" 4000 >"$log" 2>"$OUT/$name.stderr" || true
    step "$name ran in $((SECONDS - start)) s ($(tail -1 "$OUT/$name.stderr"))"
  elif [ "${#run[@]}" -gt 0 ]; then
    log=$OUT/$name.log
    timeout 300 "${run[@]}" -kernel "$elf" "${QEMU_COMMON[@]}" >"$log" 2>&1 || true
    step "$name ran in $((SECONDS - start)) s"
  fi
  if [ -n "$log" ]; then check "$name" "$log" "$OUT/host-$model.log"; fi
  local result=$OUT/$(printf %02d "$row")-$name.result
  {
    echo "target=$label"
    echo "emulator=$emulator"
    echo "model=$model ($(($(stat -c %s "$file") / 1024)) KiB)"
    "$HOST" size --elf "$elf" --model "$file"
    if [ -n "$log" ]; then
      echo "unit=$unit"
      echo "parse=$(parse_cost "$log")"
      echo "classify=$(cost "$log" classify)"
      echo "generate=$(cost "$log" generate)"
      echo "stack=$(stack "$log")"
      if [ -n "$hz" ]; then echo "clock_hz=$hz"; fi
    fi
  } >"$result"
  if [ "$target" = rp2040 ]; then rp2040_budgets "$model model" "$result"; fi
  if [ -n "$log" ]; then int8_targets "$target" "$model" "$log" "$result"; fi
  if [ "$model" = hierarchical-int8 ]; then hierarchical_budgets "$target" "$result"; fi
}

# The two-level int8 model's budgets: the file at most 1.5 MiB
# (beside the firmware in a Pico's 2 MiB of flash: the image budget above),
# engine RAM (static + stack high-water, workspace included) at most 8 KiB
# on every target that runs, and on the RP2040 a classification in at most
# 1.5 times the flat int8 model's cycles (its row ran before: FULL_MODELS's
# order).
hierarchical_budgets() { # target result
  local file=${MODELS[hierarchical-int8]} bytes ram st c flat
  bytes=$(stat -c %s "$file")
  [ "$bytes" -le $((1536 * 1024)) ] || fail "two-level int8 model: $bytes bytes, over 1.5 MiB"
  st=$(sed -n 's/^stack=//p' "$2")
  [ -n "$st" ] || return 0
  ram=$(sed -n 's/^static_ram=//p' "$2")
  [ $((ram + st)) -le 8192 ] || fail "$1 two-level int8: RAM $ram + $st bytes, over 8 KiB"
  if [ "$1" = rp2040 ]; then
    c=$(sed -n 's/^classify=//p' "$2")
    flat=$(sed -n 's/^classify=//p' "$OUT"/*-rp2040-int8.result)
    if [ -z "$c" ] || [ -z "$flat" ] || [ $((2 * c)) -gt $((3 * flat)) ]; then
      fail "RP2040 two-level int8: classification ${c:-?} cycles, over 1.5 x the flat int8 model's ${flat:-?}"
    fi
    step "RP2040 two-level int8 budgets: file $bytes bytes (<= 1.5 MiB), RAM $((ram + st)) bytes (<= 8 KiB), classification $c cycles (<= 1.5 x $flat)"
    echo "RP2040 two-level int8 model: file $bytes bytes of at most $((1536 * 1024)) (1.5 MiB);" \
      "engine RAM $ram static + $st stack = $((ram + st)) bytes of at most 8192 (8 KiB);" \
      "classification $c cycles, $(awk -v c="$c" -v f="$flat" 'BEGIN { printf "%.2f", c / f }') x the flat int8 model's $flat (at most 1.5 x)." \
      >>"$OUT/budgets.txt"
  else
    step "$1 two-level int8 budgets: file $bytes bytes (<= 1.5 MiB), RAM $((ram + st)) bytes (<= 8 KiB)"
  fi
}

# The integer path's targets: on the RP2040 at 125 MHz a
# classification in at most 1.25 M cycles (10 ms), a generated digit in at
# most 625 k (5 ms), the model's check in at most 6.25 M (50 ms), RAM
# (static + stack, workspace included) at most 8 KiB; on rv32imc a
# classification in at most 1.6 M instructions.
int8_targets() { # target model log result
  [ "$2" = int8 ] || return 0
  local c g p ram st
  c=$(cost "$3" classify) g=$(cost "$3" generate) p=$(parse_cost "$3")
  if [ "$1" = rp2040 ]; then
    ram=$(sed -n 's/^static_ram=//p' "$4") st=$(sed -n 's/^stack=//p' "$4")
    [ "${c:-99999999}" -le 1250000 ] || fail "RP2040 int8: classification $c cycles, over 1.25 M"
    [ "${g:-99999999}" -le 625000 ] || fail "RP2040 int8: generated digit $g cycles, over 625 k"
    [ "${p:-99999999}" -le 6250000 ] || fail "RP2040 int8: model check $p cycles, over 6.25 M (50 ms)"
    [ $((${ram:-0} + ${st:-99999})) -le 8192 ] || fail "RP2040 int8: RAM $ram + $st bytes, over 8 KiB"
    step "RP2040 int8 targets: classification $c cycles (<= 1.25 M), generated digit $g (<= 625 k), model check $p (<= 6.25 M), RAM $((ram + st)) bytes (<= 8 KiB)"
  elif [ "$1" = riscv32-virt ]; then
    [ "${c:-99999999}" -le 1600000 ] || fail "rv32imc int8: classification $c instructions, over 1.6 M"
    step "rv32imc int8 target: classification $c instructions (<= 1.6 M)"
  fi
}

# The novelty score's cost on the RP2040: the int8 model's
# classification with its section against the same file without it
# (fw-host strip-novelty), at most 10% more cycles; the section's tensors
# at most 10% of the file.
novelty_cost() {
  local with without file tensors
  with=$(sed -n 's/^classify=//p' "$OUT"/*-rp2040-int8.result)
  without=$(sed -n 's/^classify=//p' "$OUT"/*-rp2040-int8-no-novelty.result)
  file=$(stat -c %s "${MODELS[int8]}")
  tensors=$(sed -n 's/^novelty_tensors=//p' "$OUT/strip-novelty.txt")
  if [ -z "$with" ] || [ -z "$without" ] || [ "${tensors:-0}" = 0 ]; then
    fail "novelty cost: no int8 classification with and without the section (${with:-?}, ${without:-?}) or no section (${tensors:-?} bytes)"
    return
  fi
  [ $((10 * with)) -le $((11 * without)) ] || fail "RP2040 int8 novelty score: $with cycles with the section, over 1.1 x $without without"
  [ $((10 * tensors)) -le "$file" ] || fail "int8 novelty section: $tensors bytes, over 10% of the file's $file"
  local cycles_pct bytes_pct
  cycles_pct=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%+.1f", 100 * (a - b) / b }')
  bytes_pct=$(awk -v t="$tensors" -v f="$file" 'BEGIN { printf "%.1f", 100 * t / (f - t) }')
  step "RP2040 int8 novelty score: classification $with cycles with the section, $without without ($cycles_pct%); its tensors $tensors bytes (+$bytes_pct% over the file without them)"
  echo "RP2040 int8 novelty score: classification $with cycles with the section, $without without it" \
    "($cycles_pct%, at most +10%: the same file through fw-host strip-novelty); the section's tensors $tensors bytes," \
    "+$bytes_pct% over the file's other $((file - tensors)) bytes (at most +10%)." >>"$OUT/budgets.txt"
}

rm -f "$OUT/budgets.txt"
"$HOST" traffic --model "${MODELS[int8]}" --digits "$FW/common/data/digits.bin" >"$OUT/traffic-int8.txt"
"$HOST" traffic --model "${MODELS[default]}" --digits "$FW/common/data/digits.bin" >"$OUT/traffic-default.txt"
row=0
for p in "${PAIRS[@]}"; do
  row=$((row + 1))
  pair "$row" "${p%%:*}" "${p#*:}"
done
novelty_cost

"$HOST" table "$OUT"/*.result >"$OUT/table.md"
{
  echo
  cat "$OUT/budgets.txt"
  echo
  echo "Model bytes one classification reads from flash (fw-host traffic, mean over the embedded digits):"
  echo "int8: $(tail -1 "$OUT/traffic-int8.txt");"
  echo "f16: $(tail -1 "$OUT/traffic-default.txt")."
  echo
  # The two-level f16 model is not run. Whether it would fit a Pico's image
  # budget is computed from this run's f16 RP2040 row (its code) and the
  # file's size, never typed (the code's size, which depends on the
  # checkout's path, is left out of the sentence: --check-readme).
  f16_code=$(sed -n 's/^flash_code=//p' "$OUT"/*-rp2040-default.result)
  hier_f16=$(stat -c %s "$HIER_F16_MODEL")
  echo "The two-level f16 model ($(basename "$HIER_F16_MODEL"), $hier_f16 bytes) is not run:" \
    "with the f16 RP2040 firmware's code it is $([ $((f16_code + hier_f16)) -gt $((1536 * 1024)) ] && echo "over" || echo "within")" \
    "the Pico's 1.5 MiB image budget; the QEMU targets' 4 MiB would hold it, but it is left out to keep CI's emulator time down."
} >>"$OUT/table.md"
echo
cat "$OUT/table.md"
echo
# The boot log shown at the top of the README: the int8 RP2040 run's own
# lines (the digits, the framings, the first sample, the costs).
{
  echo '```text'
  awk '{ sub(/\r$/, "") } /^sample 1 / { exit } { print }' "$OUT/rp2040-int8.log"
  echo '...'
  tr -d '\r' <"$OUT/rp2040-int8.log" | sed -n '/^cost classify mean/,$p'
  echo '```'
} >"$OUT/boot-log.md"
# The RP2040 rows in brief, for the root README's first screen (derived from
# this run's table, never typed).
python3 - "$OUT/table.md" >"$OUT/rp2040.md" <<'PY'
import re
import sys
text = open(sys.argv[1]).read()
ram = dict(re.findall(r"RP2040 \((\S+) model\) budgets: .*RAM (\d+ static \+ \d+ stack = \d+) bytes", text))
names = {"int8": "int8", "default": "f16", "digits8-int8": "digits8-int8 (8×8 digits)",
         "hierarchical-int8": "two-level int8 (clusters of styles)",
         "int8-no-novelty": "int8 without its novelty section"}
print("| model | per classification | per generated digit | model check at boot | RAM (static + stack high-water) | model in flash |")
print("|---|---:|---:|---:|---:|---:|")
for line in text.splitlines():
    if not line.startswith("| RP2040 firmware"):
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    model = cells[2].split(" (")[0]
    cost = lambda cell: re.sub(r"(\d+) cycles = (\S+ ms) at 125 MHz", lambda m: f"{m[2]} ({int(m[1]):,} cycles)", cell)
    print(f"| {names.get(model, model)} | {cost(cells[8])} | {cost(cells[9])} | {cost(cells[7])} | {ram.get(model, '?')} B | {cells[4]} |")
PY
# results/NAME.md: this run's files, each under a line that says what
# measured it; the READMEs include them (.ci/readme-blocks.py). Cycle and
# instruction counts are deterministic, so CI's --check-readme compares a
# fresh run with them, the date line aside.
header() {
  echo "Measured by \`bash .ci/firmware.sh --update-readme\` on $(date -u +%F) (rp2040js and QEMU, on $MACHINE; cycle and instruction counts are deterministic, and every CI run checks them against this file)."
  echo
}
RESULTS=(firmware-cost:table.md firmware-boot-log:boot-log.md rp2040:rp2040.md)
for pair in "${RESULTS[@]}"; do
  { header; cat "$OUT/${pair#*:}"; } >"$OUT/results-${pair%%:*}.md"
done

# The code's size depends on the checkout's path (panic messages carry
# source paths: 28 bytes between two clones), so the check leaves out the
# table's "flash: code" column and the budgets' image sizes; cycles,
# instruction counts, RAM and the model's bytes must match.
comparable() {
  python3 - "$1" <<'PY'
import re
import sys
for line in open(sys.argv[1]).read().splitlines()[2:]:
    cells = line.split("|")
    if sys.argv[1].endswith("firmware-cost.md") and len(cells) > 5 and not set(cells[4].strip()) <= set("-"):
        cells[4] = " (code) "
    print(re.sub(r"image \d+ bytes", "image (size) bytes", "|".join(cells)))
PY
}
if [ "$UPDATE_README" = 1 ]; then
  for pair in "${RESULTS[@]}"; do cp "$OUT/results-${pair%%:*}.md" "results/${pair%%:*}.md"; done
  python3 .ci/readme-blocks.py --update
  step "results/firmware-cost.md, firmware-boot-log.md and rp2040.md written, and the READMEs' blocks"
elif [ "$CHECK_README" = 1 ]; then
  for pair in "${RESULTS[@]}"; do
    name=${pair%%:*}
    if diff <(comparable "results/$name.md") <(comparable "$OUT/results-$name.md") >"$OUT/$name.diff"; then
      step "results/$name.md is this run's"
    else
      fail "results/$name.md is not this run's (bash .ci/firmware.sh --update-readme writes it)"
      head -10 "$OUT/$name.diff"
    fi
  done
fi
if [ "$failures" -gt 0 ]; then
  echo "firmware: $failures failure(s)"
  exit 1
fi
step "all emulated firmware tests passed in $SECONDS s"
