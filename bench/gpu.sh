#!/usr/bin/env bash
# The trainer on a GPU: build here, measure there. Not part of the test suite.
#
#   bash bench/gpu.sh build        # here (no GPU): the linked `--features cuda` trainer, packed into
#                                  # target/gpu-pack/ (carry that folder to the GPU machine)
#   bash bench/gpu.sh run          # there, from the repository root: one command, ≈ 5–8 minutes
#   bash bench/gpu.sh run --device cpu --trainer target/release/trainer --limit 2000 --blog-images 2000
#                                  # the same script on the CPU, small: its dry run
#   bash bench/gpu.sh kvae         # there: `trainer experiment kvae-mnist --paper-schedule` (the authors'
#                                  # 15-VAE schedule: 10 pretraining epochs, 100 rounds of one epoch, their
#                                  # architecture), per-round train purity and FID into $OUT/kvae-summary.md;
#                                  # stopped by SIGINT at the budget with its checkpoint saved, and each
#                                  # further call continues it (--resume) until the experiment finishes
#   bash bench/gpu.sh kvae --device cpu --trainer target/release/trainer --quick --budget 300
#                                  # its dry run on the CPU (the quick settings)
#
# `run` prints nvidia-smi, trains the default preset with --device cuda and exports it (timed per
# phase: data, partition autoencoder, clustering, pretraining, mixture, export), scores model.bin
# through the engine (`trainer eval`: ACC, NMI, ARI), trains --preset blog for a few epochs and prints
# its samples/s beside PyTorch's (bench/blog_pytorch.py, same GPU) and writes everything to
# $OUT (or target/gpu-run): log.txt, summary.md, the run directories, model.bin. Each phase gets what
# is left of --budget seconds (default 540), so the whole stays under the GPU machine's 10 minutes
# per command; a phase cut short is marked so.
#
# `build` needs what linking needs, none of it a GPU: the CUDA 13.0 compiler wheels (.ci/cuda.sh),
# cuBLAS, cuRAND and NVRTC 13.0 wheels from PyPI and the driver library libcuda.so from Debian's
# non-free `libcuda1` (a private apt list under target/cuda-link: the machine's apt sources are left
# alone). The binary then needs, on the GPU machine, libcuda.so.1 (its driver), libcublas.so.13,
# libcublasLt.so.13, libcurand.so.10 and libnvrtc.so.13: `run` finds them in that machine's CUDA
# toolkit or PyTorch's wheels and sets LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

pack=target/gpu-pack

build() {
    # shellcheck source=../.ci/cuda.sh
    . .ci/cuda.sh
    cuda_toolkit
    local link
    link="$(pwd)/target/cuda-link"
    local wheels="nvidia-cublas==13.0.* nvidia-curand==10.4.0.* nvidia-cuda-nvrtc==13.0.*"
    if [[ "$(cat "$link/.pinned" 2>/dev/null)" != "$wheels" ]]; then
        echo "installing cuBLAS, cuRAND, NVRTC 13.0 from PyPI into $link" >&2
        rm -rf "$link"
        # shellcheck disable=SC2086
        python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$link" $wheels >&2
        echo "$wheels" > "$link/.pinned"
    fi
    local libcuda
    # (the folder does not exist before the first fetch: no error under pipefail)
    libcuda=$(find "$link/libcuda" -name libcuda.so.1 2>/dev/null | head -n 1 || true)
    if [[ -z "$libcuda" ]]; then
        echo "fetching libcuda1 (Debian non-free) into $link/libcuda" >&2
        local apt="$link/apt"
        mkdir -p "$apt/lists/partial" "$apt/archives/partial"
        # The machine's own Debian mirror and release, with the non-free component.
        local uri suite
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
        echo "deb ${uri:-http://deb.debian.org/debian} $suite non-free" > "$apt/sources.list"
        local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives")
        apt-get "${opts[@]}" -qq update >&2
        (cd "$apt" && apt-get "${opts[@]}" -qq download libcuda1 >&2)
        dpkg-deb -x "$apt"/libcuda1_*.deb "$link/libcuda"
        # Debian keeps it in usr/lib/x86_64-linux-gnu/nvidia/current.
        libcuda=$(find "$link/libcuda" -name libcuda.so.1 | head -n 1)
    fi
    # Unversioned names for the linker, in one folder cudarc's build script searches
    # (CUDA_TOOLKIT_ROOT_DIR/lib).
    mkdir -p "$link/lib"
    local lib
    # libcudart: candle-kernels' MoE library (libmoe.a) is linked against it; it comes with the
    # compiler's runtime wheel (.ci/cuda.sh, $CUDA_ROOT).
    for lib in "$libcuda" "$link"/nvidia/cu13/lib/lib{cublas,cublasLt,nvrtc}.so.13 \
        "$link"/nvidia/cu13/lib/libcurand.so.10 "$CUDA_ROOT"/lib/libcudart.so.13; do
        [[ -e "$lib" ]] || { echo "bench/gpu.sh: $lib missing after the install" >&2; exit 1; }
        local base
        base=$(basename "$lib")
        ln -sfn "$lib" "$link/lib/${base%%.so*}.so"
    done
    export CUDA_TOOLKIT_ROOT_DIR="$link"
    local start=$SECONDS
    local target=${CUDA_TARGET_DIR:-target/cuda}
    CARGO_TARGET_DIR="$target" cargo build --release -p trainer --features cuda
    echo "cuda build: $((SECONDS - start)) s" >&2
    rm -rf "$pack"
    mkdir -p "$pack"
    # Without debug information, gzipped: the GPU machine's tree travels in 64 MiB, and the binary
    # is 57 MB, 33 MB of it candle-kernels' MoE/quantized fatbin (sm_90), which gzip takes to 14 MB.
    # `run` unpacks it.
    objcopy --strip-debug "$target/release/trainer" "$pack/trainer"
    readelf -d "$pack/trainer" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}' > "$pack/needed.txt"
    gzip -6 "$pack/trainer"
    local size
    size=$(stat -c %s "$pack/trainer.gz")
    echo "packed $pack/trainer.gz: $size bytes; needs $(tr '\n' ' ' < "$pack/needed.txt")"
    if ((size > 40 * 1024 * 1024)); then
        echo "bench/gpu.sh: the packed binary is over 40 MiB; the carried tree is limited to 64 MiB" >&2
        exit 1
    fi
    echo "on the GPU machine, with $pack carried: bash bench/gpu.sh run"
}

# Adds to LD_LIBRARY_PATH the folders holding the CUDA libraries the binary needs and lacks.
find_cuda_libs() {
    local trainer=$1 lib dir missing
    missing=$(ldd "$trainer" | awk '/not found/ {print $1}')
    for lib in $missing; do
        dir=$(find /usr/local/cuda* /usr/lib/x86_64-linux-gnu /usr/lib64 /opt /usr/local/lib \
            /usr/lib/python3* /root /home -name "$lib" -print -quit 2>/dev/null | head -n 1)
        if [[ -z "$dir" ]]; then
            local py
            for py in python3 python; do
                dir=$("$py" - "$lib" <<'EOF' 2>/dev/null || true
import pathlib, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for root in roots:
    for p in pathlib.Path(root).glob("nvidia/**/" + sys.argv[1]):
        print(p)
        raise SystemExit
EOF
                )
                [[ -n "$dir" ]] && break
            done
        fi
        if [[ -n "$dir" ]]; then
            export LD_LIBRARY_PATH="$(dirname "$dir")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        fi
    done
    missing=$(ldd "$trainer" | awk '/not found/ {print $1}')
    if [[ -n "$missing" ]]; then
        echo "bench/gpu.sh: cannot find $(echo "$missing" | tr '\n' ' ')on this machine" >&2
        return 1
    fi
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
}

# Runs "$@" with its output time-stamped (seconds since the phase began) into the log and on
# stdout, cut at what is left of the budget (by $PHASE_SIGNAL, default TERM); returns its status
# (124: out of time).
phase() {
    local name=$1 left
    shift
    left=$((deadline - SECONDS))
    if ((left < 10)); then
        echo "== $name: skipped, out of time" | tee -a "$log"
        return 124
    fi
    echo "== $name ($left s left)" | tee -a "$log"
    local codes start=${EPOCHREALTIME/./}
    timeout -s "${PHASE_SIGNAL:-TERM}" -k 60 "$left" "$@" 2>&1 | while IFS= read -r line; do
        local t=$((${EPOCHREALTIME/./} - start))
        printf '%5d.%02d %s\n' $((t / 1000000)) $((t % 1000000 / 10000)) "$line"
    done | tee -a "$log" && codes=("${PIPESTATUS[@]}") || codes=("${PIPESTATUS[@]}")
    return "${codes[0]}"
}

run() {
    local device=cuda trainer=$pack/trainer limit="" blog_images=60000 blog_epochs=3 budget=540
    while (($#)); do
        case $1 in
            --device) device=$2; shift 2 ;;
            --trainer) trainer=$2; shift 2 ;;
            --limit) limit=$2; shift 2 ;;
            --blog-images) blog_images=$2; shift 2 ;;
            --blog-epochs) blog_epochs=$2; shift 2 ;;
            --budget) budget=$2; shift 2 ;;
            *) echo "bench/gpu.sh run: unknown option $1" >&2; exit 2 ;;
        esac
    done
    deadline=$((SECONDS + budget))
    local out=${OUT:-target/gpu-run}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    log=$out/log.txt
    : > "$log"
    local summary=$out/summary.md
    {
        echo "# bench/gpu.sh run, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo
        echo "device $device, trainer $trainer, $(nproc) cores, $(uname -srm)"
    } > "$summary"
    if [[ ! -x "$trainer" && -f "$trainer.gz" ]]; then
        # What `build` packed: unpack it once, next to the archive.
        gunzip -k "$trainer.gz" && chmod +x "$trainer"
    fi
    [[ -x "$trainer" ]] || { echo "bench/gpu.sh: no trainer at $trainer (bash bench/gpu.sh build, or --trainer)" >&2; exit 1; }
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi | tee -a "$log"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$summary"
    else
        echo "nvidia-smi: not found" | tee -a "$log"
    fi
    if [[ $device == cuda ]]; then
        find_cuda_libs "$trainer" | tee -a "$log"
    fi
    local limit_args=()
    [[ -n "$limit" ]] && limit_args=(--limit "$limit")

    # 1. The default preset, end to end, with its export.
    rm -rf "$out/default" "$out/model.bin"
    local fit_status=0
    phase "default preset" "$trainer" fit --device "$device" --out "$out/default" --export "$out/model.bin" \
        "${limit_args[@]}" || fit_status=$?
    local fit_log
    fit_log=$(sed -n '/^== default preset/,/^== /p' "$log")
    {
        echo
        echo "## default preset (\`trainer fit --device $device${limit:+ --limit $limit}\`)"
        echo
        if ((fit_status != 0)); then echo "**exit status $fit_status** (124: out of time)"; echo; fi
        echo "| phase | seconds |"
        echo "|---|---:|"
        awk '
            / run directory / { data = $1 }
            /autoencoder epoch/ { ae = $1 }
            /initial partition:/ { part = $1 }
            / parameters$/ { params = $1 }
            / pretrain +loss/ { pre = $1 }
            / mixture +loss/ { mix = $1 }
            { end = $1 }
            END {
                printf "| start-up, data | %.1f |\n", data
                if (ae) printf "| partition autoencoder | %.1f |\n", ae - data
                if (part) printf "| clustering (UMAP, k-means tries) | %.1f |\n", part - ae
                if (pre) printf "| pretraining epochs | %.1f |\n", pre - params
                if (mix) printf "| mixture epochs | %.1f |\n", mix - (pre ? pre : params)
                if (mix) printf "| export, report | %.1f |\n", end - mix
                printf "| **total** | **%.1f** |\n", end
            }' <<< "$fit_log"
        echo
        echo '```'
        cut -c10- <<< "$fit_log" | grep -E '^(epoch +[0-9]+/|initial partition|test \(engine)' || true
        echo '```'
    } >> "$summary"

    # 2. Its model.bin through the engine.
    if [[ -f "$out/model.bin" ]]; then
            phase "engine score" "$trainer" eval --model "$out/model.bin" || true
        {
            echo
            echo "## model.bin through the engine (\`trainer eval\`)"
            echo
            echo '```'
            sed -n '/^== engine score/,$p' "$log" | tail -n +2 | cut -c10- | grep -iE 'acc|nmi|test images|bytes' || true
            echo '```'
        } >> "$summary"
    fi

    # 3. The blog preset's speed, and PyTorch's on the same device.
    rm -rf "$out/blog"
    phase "blog preset" "$trainer" fit --preset blog --epochs "$blog_epochs" --limit "$blog_images" \
        --device "$device" --out "$out/blog" || true
    {
        echo
        echo "## --preset blog, $blog_epochs epoch(s) of $blog_images images: samples/s of the training steps"
        echo
        echo "| what | samples/s |"
        echo "|---|---:|"
        if [[ -f "$out/blog/metrics.jsonl" ]]; then
            grep -o '"samples_per_s": *[0-9.]*' "$out/blog/metrics.jsonl" | grep -o '[0-9.]*$' |
                awk '{ printf "| trainer, epoch %d | %.0f |\n", NR, $1 }'
        fi
    } >> "$summary"
    local py=${PYTHON:-python3}
    if "$py" -c 'import torch, numpy' 2>/dev/null; then
        local variant
        for variant in "--experts loop --adam default" "--experts batched --adam fused" \
            "--experts batched --adam fused --compile"; do
                    # shellcheck disable=SC2086
            phase "PyTorch $variant" "$py" bench/blog_pytorch.py --device "$device" --limit "$blog_images" $variant || true
            local speed
            speed=$(sed -n "/^== PyTorch $variant/,\$p" "$log" | grep -o '"samples_per_s": *[0-9.]*' | grep -o '[0-9.]*$' || true)
            echo "| PyTorch $("$py" -c 'import torch; print(torch.__version__)'), $variant | ${speed:-(none: see log.txt)} |" >> "$summary"
        done
    else
        echo "| PyTorch | not importable by $py: not run |" >> "$summary"
    fi
    echo
    cat "$summary"
    echo
    echo "log: $log; summary: $summary; $((SECONDS - deadline + budget)) s in all"
}

# The kVAE experiment on the authors' schedule, resumable across calls.
kvae() {
    local device=cuda trainer=$pack/trainer budget=540 schedule=--paper-schedule rounds=()
    while (($#)); do
        case $1 in
            --device) device=$2; shift 2 ;;
            --trainer) trainer=$2; shift 2 ;;
            --budget) budget=$2; shift 2 ;;
            --rounds) rounds=(--rounds "$2"); shift 2 ;;
            --quick) schedule=--quick; shift ;;
            *) echo "bench/gpu.sh kvae: unknown option $1" >&2; exit 2 ;;
        esac
    done
    deadline=$((SECONDS + budget))
    local out=${OUT:-target/gpu-run}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    log=$out/kvae-log.txt
    local summary=$out/kvae-summary.md
    if [[ ! -x "$trainer" && -f "$trainer.gz" ]]; then
        gunzip -k "$trainer.gz" && chmod +x "$trainer"
    fi
    [[ -x "$trainer" ]] || { echo "bench/gpu.sh: no trainer at $trainer (bash bench/gpu.sh build, or --trainer)" >&2; exit 1; }
    if command -v nvidia-smi >/dev/null; then nvidia-smi | tee -a "$log"; fi
    if [[ $device == cuda ]]; then
        find_cuda_libs "$trainer" | tee -a "$log"
    fi
    local status=0
    # SIGINT: the loop saves a checkpoint mid-epoch, and the next call resumes there.
    PHASE_SIGNAL=INT phase "kvae-mnist $schedule" "$trainer" experiment kvae-mnist "$schedule" \
        "${rounds[@]}" --resume --device "$device" --out "$out/kvae-mnist" || status=$?
    local run_dir=$out/kvae-mnist/run-kvae
    {
        echo "# bench/gpu.sh kvae, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo
        echo "device $device, \`trainer experiment kvae-mnist $schedule ${rounds[*]} --resume\`, exit status $status (124: stopped at the budget, checkpoint saved: run again to continue)"
        echo
        echo "kVAE with 15 VAEs, one row an epoch of VAE training (0: the pretraining): FID of the mixture after it, train purity after the reassignment that follows"
        echo
        echo "| round | FID | train purity |"
        echo "|---:|---:|---:|"
        if [[ -f "$run_dir/metrics.jsonl" ]]; then
            "${PYTHON:-python3}" - "$run_dir/metrics.jsonl" "$run_dir/round_fid.jsonl" <<'EOF'
import json, sys
fid = {}
try:
    for line in open(sys.argv[2]):
        r = json.loads(line)
        fid[r["epoch"]] = r["fid"]
except FileNotFoundError:
    pass
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["phase"] == "gate":
        continue
    purity = r.get("notes", {}).get("train_purity")
    f = fid.get(r["epoch"])
    print("| %d | %s | %s |" % (r["epoch"] - 1, "%.2f" % f if f is not None else "–",
                                "%.4f" % purity if purity is not None else "–"))
EOF
        fi
        if [[ -f "$out/kvae-mnist/kvae-mnist.md" ]]; then
            echo
            echo "The experiment finished: $out/kvae-mnist/kvae-mnist.md"
        fi
    } > "$summary"
    cat "$summary"
    echo "log: $log; summary: $summary"
}

case ${1:-} in
    build) build ;;
    run) shift; run "$@" ;;
    kvae) shift; kvae "$@" ;;
    *) echo "usage: bash bench/gpu.sh build | run [--device cuda|cpu] [--trainer PATH] [--limit N] [--blog-images N] [--blog-epochs N] [--budget S] | kvae [--device cuda|cpu] [--trainer PATH] [--budget S] [--rounds N] [--quick]" >&2; exit 2 ;;
esac
