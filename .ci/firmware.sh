#!/usr/bin/env bash
# The emulated firmware tests (issue 5). Run .ci/emulators.sh first.
#
# Builds the host tool, the QEMU test firmware (micro:bit with the small
# model, mps2-an385 and riscv32 virt with the default model), the RP2040
# firmware and the ESP32-C3 firmware; runs the first four on their emulators;
# checks that every target's clusters, confidences and generated images
# equal the host's bit for bit; checks the RP2040 budgets; prints the cost
# table. `--update-readme` also writes the table into
# firmware-example/README.md.
#
# Environment: DEFAULT_MODEL (model for every target but the micro:bit),
# FW_TARGET_DIR (cargo target dir, default target/firmware/cargo),
# FW_OUT (logs and results, default target/firmware).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FW=$ROOT/firmware-example

# The model every full-size target embeds: swap in a trained model here.
DEFAULT_MODEL=${DEFAULT_MODEL:-$FW/models/default.bin}
SMALL_MODEL=$FW/models/small.bin
OUT=${FW_OUT:-$ROOT/target/firmware}
export CARGO_TARGET_DIR=${FW_TARGET_DIR:-$OUT/cargo}
UPDATE_README=0
[ "${1:-}" = "--update-readme" ] && UPDATE_README=1

# shellcheck disable=SC1091
. "${EMULATORS_DIR:-$ROOT/.emulators}/env.sh"
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.result "$OUT"/*.diff
DEFAULT_MODEL=$(realpath "$DEFAULT_MODEL")
SMALL_MODEL=$(realpath "$SMALL_MODEL")
QEMU_COMMON=(-nographic -monitor none -serial none -semihosting-config enable=on,target=native -icount shift=0,align=off)
failures=0
fail() { echo "firmware: FAIL: $*"; failures=$((failures + 1)); }
step() { echo "firmware: $*"; }

step "host tool and firmware-common tests"
if ! (cd "$FW/common" && cargo test --quiet --release >"$OUT/common-tests.log" 2>&1); then
  fail "firmware-common unit tests (see $OUT/common-tests.log)"
fi
(cd "$FW/host" && cargo build --quiet --release)
HOST=$CARGO_TARGET_DIR/release/fw-host
"$HOST" expect --model "$DEFAULT_MODEL" --digits "$FW/common/data/digits.bin" >"$OUT/host-default.log"
"$HOST" expect --model "$SMALL_MODEL" --digits "$FW/common/data/digits.bin" >"$OUT/host-small.log"

# Builds run one after another: the micro:bit build embeds another model,
# and all share one target dir.
build() { # dir model [cargo args...]
  local dir=$1 model=$2
  shift 2
  (cd "$FW/$dir" && MODEL_BIN=$model cargo build --quiet --release "$@")
}
step "building the micro:bit test firmware (small model)"
MB_DIR=$CARGO_TARGET_DIR/microbit
CARGO_TARGET_DIR=$MB_DIR build qemu "$SMALL_MODEL" --features microbit
MB_ELF=$MB_DIR/thumbv6m-none-eabi/release/fw-qemu
step "building the mps2-an385, riscv32 virt, RP2040 and ESP32-C3 firmware (default model)"
build qemu "$DEFAULT_MODEL" --target thumbv6m-none-eabi
build qemu "$DEFAULT_MODEL" --target riscv32imc-unknown-none-elf
build rp2040 "$DEFAULT_MODEL"
build esp32c3 "$DEFAULT_MODEL"
MPS2_ELF=$CARGO_TARGET_DIR/thumbv6m-none-eabi/release/fw-qemu
VIRT_ELF=$CARGO_TARGET_DIR/riscv32imc-unknown-none-elf/release/fw-qemu
RP_ELF=$CARGO_TARGET_DIR/thumbv6m-none-eabi/release/fw-rp2040
ESP_ELF=$CARGO_TARGET_DIR/riscv32imc-unknown-none-elf/release/fw-esp32c3

# Result lines: everything left of " | " on digit/sample lines, and the art.
results() { tr -d '\r' <"$1" | grep -E '^(digit|sample) |^    ' | sed 's/ | .*//'; }
cost() { tr -d '\r' <"$1" | sed -n "s/^cost $2 mean | \([0-9]*\) .*/\1/p"; }
stack() { tr -d '\r' <"$1" | sed -n 's/^stack high-water \([0-9]*\) bytes.*/\1/p'; }

check() { # name log host-log
  local name=$1 log=$2 host=$3
  if ! tr -d '\r' <"$log" | grep -qx done; then
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
  step "$name: $(results "$log" | grep -c '^digit') digits and $(results "$log" | grep -c '^sample') samples identical to the host, bit for bit"
}

record() { # name elf model target emulator model-label unit clock-hz log
  local name=$1 elf=$2 model=$3
  {
    echo "target=$4"
    echo "emulator=$5"
    echo "model=$6"
    "$HOST" size --elf "$elf" --model "$model"
    if [ -n "${9:-}" ]; then
      echo "unit=$7"
      echo "classify=$(cost "$9" classify)"
      echo "generate=$(cost "$9" generate)"
      echo "stack=$(stack "$9")"
    fi
    if [ -n "$8" ]; then echo "clock_hz=$8"; fi
  } >"$OUT/$name.result"
}

run_qemu() { # name log qemu-args...
  local name=$1 log=$2
  shift 2
  local start=$SECONDS
  timeout 300 "$@" "${QEMU_COMMON[@]}" >"$log" 2>&1 || true
  step "$name ran in $((SECONDS - start)) s"
}

run_qemu microbit "$OUT/microbit.log" qemu-system-arm -M microbit -kernel "$MB_ELF"
check microbit "$OUT/microbit.log" "$OUT/host-small.log"
run_qemu mps2-an385 "$OUT/mps2-an385.log" qemu-system-arm -M mps2-an385 -cpu cortex-m3 -kernel "$MPS2_ELF"
check mps2-an385 "$OUT/mps2-an385.log" "$OUT/host-default.log"
run_qemu riscv32-virt "$OUT/riscv32-virt.log" qemu-system-riscv32 -M virt -m 16M -bios none -kernel "$VIRT_ELF"
check riscv32-virt "$OUT/riscv32-virt.log" "$OUT/host-default.log"
start=$SECONDS
timeout 600 node "$FW/scripts/rp2040js-run.cjs" "$RP_ELF" "$RP2040_BOOTROM" 4000 >"$OUT/rp2040.log" 2>"$OUT/rp2040.stderr" || true
step "rp2040 ran in $((SECONDS - start)) s ($(tail -1 "$OUT/rp2040.stderr"))"
check rp2040 "$OUT/rp2040.log" "$OUT/host-default.log"

DEF_LABEL="default ($(($(stat -c %s "$DEFAULT_MODEL") / 1024)) KiB)"
SMALL_LABEL="small ($(($(stat -c %s "$SMALL_MODEL") / 1024)) KiB)"
record 1-rp2040 "$RP_ELF" "$DEFAULT_MODEL" "RP2040 firmware (Pico)" "rp2040js 1.4.1" "$DEF_LABEL" cycles 125000000 "$OUT/rp2040.log"
record 2-esp32c3 "$ESP_ELF" "$DEFAULT_MODEL" "ESP32-C3 firmware" "built only (costs: next row)" "$DEF_LABEL" "" ""
record 3-riscv32-virt "$VIRT_ELF" "$DEFAULT_MODEL" "engine test, rv32imc" "QEMU riscv32 virt" "$DEF_LABEL" instructions 160000000 "$OUT/riscv32-virt.log"
record 4-mps2-an385 "$MPS2_ELF" "$DEFAULT_MODEL" "engine test, thumbv6m" "QEMU mps2-an385 (M3 core)" "$DEF_LABEL" instructions "" "$OUT/mps2-an385.log"
record 5-microbit "$MB_ELF" "$SMALL_MODEL" "engine test, thumbv6m" "QEMU microbit (M0 core)" "$SMALL_LABEL" instructions "" "$OUT/microbit.log"

# RP2040 budgets: image <= 1.5 MiB of the Pico's 2 MiB, RAM <= 64 KiB.
# shellcheck disable=SC1090
rp_flash=$(sed -n 's/^flash=//p' "$OUT/1-rp2040.result")
rp_ram=$(sed -n 's/^static_ram=//p' "$OUT/1-rp2040.result")
rp_stack=$(sed -n 's/^stack=//p' "$OUT/1-rp2040.result")
if [ "$rp_flash" -gt $((1536 * 1024)) ]; then fail "RP2040 image is $rp_flash bytes, over 1.5 MiB"; fi
if [ -z "$rp_stack" ] || [ $((rp_ram + rp_stack)) -gt $((64 * 1024)) ]; then
  fail "RP2040 RAM (static $rp_ram + stack ${rp_stack:-?}) over 64 KiB"
else
  step "RP2040 budgets: image $rp_flash bytes (<= 1.5 MiB), RAM $((rp_ram + rp_stack)) bytes (<= 64 KiB)"
fi

"$HOST" table "$OUT"/*.result >"$OUT/table.md"
{
  echo
  echo "RP2040 budgets: image $rp_flash bytes of at most $((1536 * 1024)) (1.5 MiB);" \
    "RAM $rp_ram static + ${rp_stack:-?} stack = $((rp_ram + ${rp_stack:-0})) bytes of at most $((64 * 1024)) (64 KiB)."
} >>"$OUT/table.md"
echo
cat "$OUT/table.md"
echo
if [ "$UPDATE_README" = 1 ]; then
  python3 - "$FW/README.md" "$OUT/table.md" <<'PY'
import sys
readme, table = sys.argv[1], open(sys.argv[2]).read()
text = open(readme).read()
start, end = "<!-- cost-table:start -->", "<!-- cost-table:end -->"
a, b = text.index(start) + len(start), text.index(end)
open(readme, "w").write(text[:a] + "\n" + table + text[b:])
PY
  step "cost table written to firmware-example/README.md"
fi
if [ "$failures" -gt 0 ]; then
  echo "firmware: $failures failure(s)"
  exit 1
fi
step "all emulated firmware tests passed in $SECONDS s"
