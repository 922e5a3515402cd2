#!/usr/bin/env bash
# The model in a web page (web/): installs Debian's Chromium if missing, builds
# the page's wasm, its server, the harness and the native timing example, then
# drives the page in headless Chromium (web/test/browser.mjs: Node's standard
# library only, DevTools protocol over a pipe). Prints the checks, the
# browser and native timings, and closes with `N passed, N failed` (the
# script's last line, so that it can end .ci/run's log). "Connect a board" is
# tested against `fw-host serve` (firmware-example/host: the boards' own
# protocol handler on stdin/stdout) behind a fake Web Serial port.
#
#   bash .ci/web.sh [--update-readme]   # --update-readme: also writes results/web.md
#                                       # (bits, wasm size, timings), web/screenshot.png
#                                       # and the READMEs' blocks
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_README=0
[ "${1:-}" = "--update-readme" ] && UPDATE_README=1
export CARGO_TERM_COLOR=never
start=$SECONDS

step() { printf '\n==> %s\n' "$*"; }

step "web: Chromium and Node.js"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
if [ ${#missing[@]} -gt 0 ]; then
    t=$SECONDS
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "installed ${missing[*]} in $((SECONDS - t)) s"
fi
chromium --version 2>/dev/null
echo "node $(node --version)"

step "web: wasm, server, harness, native timing"
rustup target add wasm32-unknown-unknown
cargo build --release --locked -p web-serve -p harness
# shellcheck disable=SC1091
. .ci/target-dir.sh
"$CARGO_TARGET/release/web-serve" --build-only
CARGO_TARGET_DIR=target/web cargo build --release --locked -p web --example host_timing
CARGO_TARGET_DIR=target/web/simd cargo build --release --locked -p web --example host_timing --features host-simd
# The device side of "Connect a board": fw-host is a workspace of its own;
# built where .ci/firmware.sh builds it (its default FW_TARGET_DIR).
fw_target=$PWD/target/firmware/cargo
(cd firmware-example/host && CARGO_TARGET_DIR=$fw_target cargo build --release --locked)
fw_host=$fw_target/release/fw-host

model=firmware-example/models/default.bin
other=firmware-example/models/small.bin
# Boards behind the fake Web Serial port: one serving the page's model (with
# a banner before its first frame, as a board's boot text), one another model.
boards=(--board "'$fw_host' serve --banner --model $model" --board "'$fw_host' serve --model $other")
# And the emulated Pico itself on its USB port (rp2040js, the firmware
# .ci/firmware.sh built with the page's model: the f16 default, 0.58 s of
# emulated time per digit), when .ci/firmware.sh has run (in CI it has).
pico=$PWD/target/firmware/elf/rp2040-default
if [ -f "$pico" ] && [ -f .emulators/env.sh ]; then
    # shellcheck disable=SC1091
    . .emulators/env.sh
    boards+=(--board "node firmware-example/scripts/rp2040js-run.cjs $pico $RP2040_BOOTROM --serve usb")
elif [ -n "${CI:-}" ]; then
    echo "web: CI: no emulated Pico ($pico): run .ci/emulators.sh and .ci/firmware.sh first" >&2
    exit 1
else
    echo "web: no emulated Pico ($pico; run .ci/firmware.sh): the page's board code is tested against fw-host only"
fi
# A model without a label map (random weights, 28x28, K = 4): the page names
# its gate's bars by cluster alone.
nolabels=target/web/random-small-nolabels.bin
"$fw_host" model --shape small --out "$nolabels" >/dev/null
# The bundled int8 model goes through the same checks.
also=(--also firmware-example/models/default-int8.bin)
# Two-level models (format version 3: styles within each cluster): the
# answer's style and its bits as the harness's, a row of samples per style.
twolevel=(--twolevel firmware-example/models/hierarchical-int8.bin --twolevel firmware-example/models/hierarchical.bin)
# Models of 8x8 images: the page takes its shape from the model. The
# trained ones (scikit-learn's digits, README "Your own images") and the
# random-weight ones (fw-host model --shape digits8).
eight=(--eight firmware-example/models/digits8x8.bin --eight firmware-example/models/digits8x8-int8.bin
    --eight firmware-example/models/tiny8x8.bin)

step "web: the page in headless Chromium (set-up took $((SECONDS - start)) s)"
node web/test/browser.mjs \
    --server "$CARGO_TARGET/release/web-serve" \
    --harness "$CARGO_TARGET/release/harness" \
    --model "$model" --other "$other" --nolabels "$nolabels" "${also[@]}" "${twolevel[@]}" "${eight[@]}" "${boards[@]}" \
    --host target/web/release/examples/host_timing \
    --host target/web/simd/release/examples/host_timing \
    --screenshot target/web/screenshot.png | tee target/web/browser.log
if [ $UPDATE_README = 1 ]; then
    python3 - target/web/browser.log >results/web.md <<'PY'
import datetime
import os
import re
import sys
log = open(sys.argv[1]).read()
bits = re.search(r"^ok +(\S+): (\d+) MNIST images: cluster and every probability's f32 bits as harness classify \((\d+)/(\d+)\)", log, re.M)
wasm = re.search(r"browser: (Chromium [^,]+), wasm (\d+) bytes", log)
passed = re.search(r"^(\d+) passed, (\d+) failed", log, re.M)
if not (bits and wasm and passed):
    sys.exit("results/web.md: the browser test's log lacks its bits, wasm or summary line")
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
print(f"Measured by `bash .ci/web.sh --update-readme` on {datetime.date.today()} ({wasm[1]}, headless, {os.cpu_count()} cores of {cpu}).")
print()
print(f"- {bits[3]} of {bits[4]} MNIST test digits drawn on the page get the harness's cluster and every probability's f32 bits ({bits[1]}), "
      f"in a {int(wasm[2]) / 1024:.0f} KiB wasm; {passed[1]} checks passed, {passed[2]} failed")
styles = re.findall(r"^ok +(\S+): (\d+) MNIST images: style and the style confidence's f32 bits as harness classify \(styles seen: ([^)]*)\) \((\d+)/(\d+)[;)]", log, re.M)
versions3 = set(re.findall(r"^ok +(\S+): header says format version 3", log, re.M))
two = [s for s in styles if s[0] in versions3]
if two:
    print("- two-level models (format version 3): " + "; ".join(
        f"{s[3]} of {s[4]} digits get the harness's style and the style confidence's f32 bits ({s[0]}, styles seen: {s[2]})" for s in two)
        + "; the chosen expert's styles each get a row of samples")
print()
print("Microseconds per call (the browser test's timing section: best of 5 rounds; the machine was shared):")
print()
print("```text")
lines = log.splitlines()
first = next((k for k, l in enumerate(lines) if "µs per call" in l), None)
last = next((k for k, l in enumerate(lines) if re.match(r"\(\d+ cores; browser", l)), None)
if first is None or last is None:
    sys.exit("results/web.md: the browser test's log lacks its timing section")
print("\n".join(lines[first:last]).strip("\n"))
print("```")
PY
    cp target/web/screenshot.png web/screenshot.png
    python3 .ci/readme-blocks.py --update
fi
