#!/usr/bin/env bash
# The boards answer, on emulators. Run after .ci/firmware.sh,
# whose ELFs (target/firmware/elf/TARGET-MODEL) are the firmware served here:
# the same images a user flashes, which serve the host protocol
# (firmware-example/PROTOCOL.md) after their boot self-test.
#
# For every (link, model) pair of LINKS: `harness device --spawn` talks to
# the emulated firmware through COMMAND's stdin and stdout (the emulator
# bridges them to the board's port: USB CDC, a UART; QEMU's -serial stdio
# is the machine's first UART). Checks, on each:
#   - info names the model;
#   - 100 MNIST test digits classified on the device, CSV identical to
#     `harness classify --bits` on the host (the f32 bits of every
#     probability, each digit's style: protocol revision 2, and its
#     novelty: revision 3, the last three columns of both, for a model
#     with a novelty section): a flat model's all style
#     0 with probability 1, the two-level model's identical to `fw-host
#     serve`'s (the `fw-host` link, run first; cargo test's
#     tests/tests/device.rs checks fw-host's against the engine);
#   - generated samples identical to `harness generate` (PNG bytes);
#   - soak: random bytes, cut and corrupted frames interleaved with valid
#     requests, every valid one answered bit-identical to its clean answer;
#   - bench: round trips and the device's own cost of each request, the
#     protocol's overhead beside the work (saved for the cost table).
# Closes with `device: N links passed, N failed`.
#
# Links: the emulated boards, and `fw-host` (`fw-host serve`, the same
# device code on the host, through a pipe).
#
# Environment: FW_OUT (default target/firmware, where the ELFs are and
# fw-host, FW_OUT/cargo/release/fw-host),
# DEVICE_OUT (logs, default target/device), HARNESS (default
# target/release/harness, built if missing), DEVICE_LINKS (the LINK:MODEL
# pairs to run, space-separated; default all of LINKS below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FW=$ROOT/firmware-example
FW_OUT=${FW_OUT:-$ROOT/target/firmware}
OUT=${DEVICE_OUT:-$ROOT/target/device}
# shellcheck disable=SC1091
. "$ROOT/.ci/target-dir.sh"
# shellcheck disable=SC1091
. "$ROOT/.ci/machine.sh"
HARNESS=${HARNESS:-$CARGO_TARGET/release/harness}
# shellcheck disable=SC1091
. "${EMULATORS_DIR:-$ROOT/.emulators}/env.sh"
mkdir -p "$OUT"
rm -f "$OUT"/*
[ -x "$HARNESS" ] || cargo build --release --locked --quiet -p harness

FW_HOST=${FW_HOST:-$FW_OUT/cargo/release/fw-host}
declare -A MODELS=([int8]=$FW/models/default-int8.bin [default]=$FW/models/default.bin
  [small]=$FW/models/small.bin [small-int8]=$FW/models/small-int8.bin
  [hierarchical-int8]=${HIER_INT8_MODEL:-$FW/models/hierarchical-int8.bin})
MNIST=$ROOT/data/mnist
IMAGES=100

# LINK:MODEL pairs (DEVICE_LINKS, space-separated, runs a subset), and how
# many bytes of damage each soaks up: the UARTs of rp2040js run at their
# baud rate in emulated time, QEMU's UARTs have no baud-rate delay but pace
# the host one byte per read of the guest (about 20 KB/s): a megabyte on the
# Pico's USB and on rv32imc (the ESP32-C3's instruction set), less on the
# others (CI time: a megabyte through a QEMU UART takes 45-60 s).
# (The f16 model on the RP2040 classifies in 0.58 s: its 100 digits are
# the boot test's job, .ci/firmware.sh, not this one's.)
# The two-level model: on fw-host (the style reference) and the Pico's USB
# (100 digits in about 65 M emulated cycles, a few seconds).
LINKS=(rp2040-usb:int8 rp2040-uart0:int8
  riscv32-virt:int8 riscv32-virt:default mps2-an386:int8 mps2-an385:int8
  microbit:small-int8 microbit:small
  fw-host:hierarchical-int8 rp2040-usb:hierarchical-int8)
if [ -n "${DEVICE_LINKS:-}" ]; then read -ra LINKS <<<"$DEVICE_LINKS"; fi
declare -A SOAK=([rp2040-usb:int8]=1048576 [rp2040-uart0:int8]=4096
  [riscv32-virt:int8]=1048576 [riscv32-virt:default]=65536 [mps2-an386:int8]=65536
  [mps2-an385:int8]=262144 [microbit:small-int8]=65536 [microbit:small]=16384
  [fw-host:hierarchical-int8]=65536 [rp2040-usb:hierarchical-int8]=65536)

# The QEMU firmware serves its UART (QEMU's stdin/stdout) when the
# semihosting command line says `serve`; its boot report goes to semihosting
# stderr, which each command appends to $OUT/LINK-MODEL.qemu.
QEMU_SERVE="-nographic -monitor none -serial stdio -semihosting-config enable=on,target=native,arg=fw-qemu,arg=serve -icount shift=0,align=off"
UPDATE_README=0
[ "${1:-}" = "--update-readme" ] && UPDATE_README=1

# serve_command LINK MODEL: the command whose stdin/stdout is the board's port.
serve_command() {
  local elf=$FW_OUT/elf/$1-$2 qemu
  case $1 in
    fw-host)
      echo "$FW_HOST serve --model ${MODELS[$2]}"
      return ;;
    rp2040-usb | rp2040-uart0)
      elf=$FW_OUT/elf/rp2040-$2
      echo "node $FW/scripts/rp2040js-run.cjs $elf $RP2040_BOOTROM --serve ${1#rp2040-}"
      return ;;
    riscv32-virt) qemu="qemu-system-riscv32 -M virt -m 16M -bios none" ;;
    mps2-an386) qemu="qemu-system-arm -M mps2-an386 -cpu cortex-m4" ;;
    mps2-an385) qemu="qemu-system-arm -M mps2-an385 -cpu cortex-m3" ;;
    microbit) qemu="qemu-system-arm -M microbit" ;;
    *)
      echo "device: unknown link $1" >&2
      return 2 ;;
  esac
  echo "$qemu -kernel $elf $QEMU_SERVE 2>>$OUT/$1-$2.qemu"
}

# The last three columns of `harness classify --bits` and of `harness device
# classify --bits` (the same CSV): style, its confidence and its bits.
# Columns of `classify --bits` (probability_bits holds no comma): 6-8 the
# style, 9-11 the novelty (protocol revision 3; empty cells for a model
# without a novelty section).
styles() { cut -d, -f6-8 "$1"; }
novelty() { cut -d, -f9-11 "$1"; }

passed=0
failed=0
fail() { echo "device: FAIL: $*"; failed=$((failed + 1)); }
step() { echo "device: $*"; }

# One host reference per model.
for m in "${!MODELS[@]}"; do
  "$HARNESS" classify --model "${MODELS[$m]}" --images "$MNIST" --first $IMAGES --bits >"$OUT/host-$m.csv" 2>/dev/null
  "$HARNESS" generate --model "${MODELS[$m]}" --expert 3 --count 4 --seed 5 --out "$OUT/host-$m.png" 2>/dev/null
done

for pair in "${LINKS[@]}"; do
  link=${pair%%:*} model=${pair#*:} name=${pair/:/-}
  if ! cmd=$(serve_command "$link" "$model"); then fail "$pair: no command"; continue; fi
  dev=("$HARNESS" device --timeout-ms 120000 --spawn "$cmd")
  start=$SECONDS
  ok=1
  if ! "${dev[@]}" info >"$OUT/$name.info" 2>"$OUT/$name.stderr"; then
    fail "$pair: info ($(tail -1 "$OUT/$name.stderr"))"; continue
  fi
  if ! "${dev[@]}" classify --images "$MNIST" --first $IMAGES --bits >"$OUT/$name.csv" 2>>"$OUT/$name.stderr"; then
    fail "$pair: classify ($(tail -1 "$OUT/$name.stderr"))"; ok=0
  elif ! cmp -s "$OUT/$name.csv" "$OUT/host-$model.csv"; then
    fail "$pair: classify differs from harness classify --bits"; ok=0
  elif [ "$(styles "$OUT/$name.csv" | head -1)" != style,style_confidence,style_confidence_bits ]; then
    fail "$pair: classify has no style columns (a revision-2 device answers the style)"; ok=0
  elif [ "$(novelty "$OUT/$name.csv" | head -1)" != novelty,known,novelty_bits ]; then
    fail "$pair: classify has no novelty columns"; ok=0
  elif [[ $("$HARNESS" inspect --model "${MODELS[$model]}") == *"novelty score: per cluster"* ]] &&
    [ "$(novelty "$OUT/$name.csv" | tail -n +2 | grep -c '^,,$' || true)" != 0 ]; then
    fail "$pair: the model has a novelty score, the device answered none (a revision-3 device answers it)"; ok=0
  elif [ "${model#hierarchical}" = "$model" ] && [ "$(styles "$OUT/$name.csv" | tail -n +2 | sort -u)" != 0,1.000000,3f800000 ]; then
    fail "$pair: a flat model's styles are not all 0 with probability 1"; ok=0
  elif [ "${model#hierarchical}" != "$model" ] && [ "$link" != fw-host ] &&
    ! cmp -s <(styles "$OUT/$name.csv") <(styles "$OUT/fw-host-$model.csv"); then
    fail "$pair: the styles differ from fw-host serve's"; ok=0
  fi
  if ! "${dev[@]}" generate --expert 3 --count 4 --seed 5 --out "$OUT/$name.png" 2>>"$OUT/$name.stderr"; then
    fail "$pair: generate ($(tail -1 "$OUT/$name.stderr"))"; ok=0
  elif ! cmp -s "$OUT/$name.png" "$OUT/host-$model.png"; then
    fail "$pair: generated samples differ from harness generate"; ok=0
  fi
  if ! "${dev[@]}" soak --images "$MNIST" --first 10 --bytes "${SOAK[$pair]:-1048576}" >"$OUT/$name.soak" 2>>"$OUT/$name.stderr"; then
    fail "$pair: soak ($(tail -1 "$OUT/$name.stderr"))"; ok=0
  fi
  if ! "${dev[@]}" bench --count 10 --images "$MNIST" >"$OUT/$name.bench.md" 2>>"$OUT/$name.stderr"; then
    fail "$pair: bench ($(tail -1 "$OUT/$name.stderr"))"; ok=0
  fi
  # The RP2040's RAM budget while serving: static RAM and the
  # stack's high-water mark after the soak's work (the soak's last `stats`,
  # in the same session), at most 16 KiB.
  if [ "${link%%-*}" = rp2040 ] && [ "$model" = int8 ]; then
    used=$(sed -n 's/.*stack high-water \([0-9]*\) bytes.*/\1/p' "$OUT/$name.soak")
    static=$(sed -n 's/^static_ram=//p;T;q' "$FW_OUT"/*-rp2040-int8.result 2>/dev/null || true)
    if [ -z "$used" ] || [ $((used + ${static:-0})) -gt 16384 ]; then
      fail "$pair: RAM ${static:-?} static + ${used:-?} stack, over 16 KiB"; ok=0
    fi
  fi
  # A QEMU link: no boot report (one a harness run) says FAIL, and no
  # emulator outlived its harness (QEMU ignores its stdin closing; the
  # harness kills it a second later).
  if [ -f "$OUT/$name.qemu" ] && grep -q '^FAIL' "$OUT/$name.qemu"; then
    fail "$pair: the boot report says $(grep -m1 '^FAIL' "$OUT/$name.qemu")"; ok=0
  fi
  if pgrep -f -- "-kernel $FW_OUT/elf/$name " >/dev/null; then
    fail "$pair: an emulator is still running after its harness ended"; ok=0
  fi
  if [ $ok = 1 ]; then
    passed=$((passed + 1))
    step "$pair: $IMAGES digits ($(styles "$OUT/$name.csv" | tail -n +2 | cut -d, -f1 | sort -n | uniq -c | awk '{print $1 " in style " $2}' | paste -sd, - | sed 's/,/, /g'); novelty: $(novelty "$OUT/$name.csv" | tail -n +2 | cut -d, -f2 | sort | uniq -c | awk '{print $1 " " ($2 == "" ? "none" : $2 == "true" ? "known" : "not known")}' | paste -sd, - | sed 's/,/, /g')) and 4 samples identical to the host; $(sed 's/ interleaved.*//' "$OUT/$name.soak") survived; $(sed -n 's/.*; \(stack high-water .*\)/\1/p' "$OUT/$name.soak") ($((SECONDS - start)) s)"
    grep '^| classify' "$OUT/$name.bench.md" || true
  fi
done
# The README's Python client (examples/board_client.py, pyserial) through a
# pseudo-terminal to the emulated Pico's USB: MNIST's first test digit as a
# PNG of dark ink on white paper, answered as `harness classify` answers.
if ! python3 -c 'import serial, PIL' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-serial python3-pil >/dev/null
fi
# A python3 that is not Debian's (pyenv, a venv) does not see those packages.
if ! python3 -c 'import serial, PIL' 2>/dev/null; then
  python3 -m pip install -q pyserial pillow
fi
python3 - "$MNIST/t10k-images-idx3-ubyte.gz" "$OUT/seven.png" <<'PY'
import gzip, sys
from PIL import Image
pixels = gzip.open(sys.argv[1]).read()[16:16 + 784]
Image.frombytes("L", (28, 28), bytes(255 - p for p in pixels)).save(sys.argv[2])
PY
host=$("$HARNESS" classify --model "${MODELS[int8]}" --images "$OUT/seven.png" 2>/dev/null | sed -n 2p)
client=$(timeout 300 python3 - "node $FW/scripts/rp2040js-run.cjs $FW_OUT/elf/rp2040-int8 $RP2040_BOOTROM --serve usb" \
  "$ROOT/examples/board_client.py" "$OUT/seven.png" 2>"$OUT/python.stderr" <<'PY'
import os, pty, subprocess, sys, tty
# The device program on a pty's master side, the client on its slave.
master, slave = pty.openpty()
tty.setraw(master); tty.setraw(slave)
device = subprocess.Popen(sys.argv[1].split(), stdin=master, stdout=master)
client = subprocess.run([sys.executable, sys.argv[2], os.ttyname(slave), sys.argv[3]])
device.kill()
sys.exit(client.returncode)
PY
) || true
# harness: index,cluster,label,confidence,style,style_confidence,novelty,known;
# the client: "cluster C, digit L, confidence X[, novelty S (known|not a digit)], ..."
want=$(echo "$host" | awk -F, '{printf "cluster %s, digit %s, confidence %.3f", $2, $3, $4;
  if ($7 != "") printf ", novelty %.3f (%s)", $7, ($8 == "true" ? "known" : "not a digit")}')
if [ -n "$host" ] && [ "${client%%, [0-9]* cycles}" = "$want" ]; then
  step "python client (examples/board_client.py) through a pty to rp2040-usb: $client, as harness classify"
else
  fail "python client: got '$client', harness classify says '$want' (see $OUT/python.stderr)"
fi

# The table: each link's classify of MNIST digits, the device's own cost.
table=$OUT/table.md
{
  echo "| link | model | classify work | whole request | protocol overhead | round trip (emulated) | stack high-water | damage survived |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for pair in "${LINKS[@]}"; do
    name=${pair/:/-}
    [ -s "$OUT/$name.bench.md" ] || continue
    IFS='|' read -r _ _ _ trip _ _ work whole overhead _ < <(grep '^| classify' "$OUT/$name.bench.md")
    stack=$(sed -n 's/.*stack high-water \([0-9]*\) bytes.*/\1 B/p' "$OUT/$name.soak")
    soak=$(sed -n 's/^soak: \([0-9]*\) bytes.*/\1 B/p' "$OUT/$name.soak")
    echo "| ${pair%%:*} | ${pair#*:} |$work|$whole|$overhead|$trip| $stack | $soak |"
  done
} >"$table"
cat "$table"
if [ $UPDATE_README = 1 ]; then
  {
    echo "Measured by \`bash .ci/device.sh --update-readme\` on $(date -u +%F) (emulated links, on $MACHINE; cycles are the device's own counter, round trips emulated time)."
    echo
    cat "$table"
  } >results/device-links.md
  python3 .ci/readme-blocks.py --update
  echo "device: results/device-links.md written, and the READMEs' blocks"
fi
echo "device: $passed links passed, $failed failed"
[ "$failed" = 0 ]
