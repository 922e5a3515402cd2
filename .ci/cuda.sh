#!/usr/bin/env bash
# CI: compiles the trainer's `cuda` feature (candle's CUDA backend and its kernels) on a machine
# without a GPU. Nothing is linked or run: linking needs the driver library (libcuda.so), which
# `bench/gpu.sh` fetches when it builds the binary for a GPU machine.
#
#   bash .ci/cuda.sh                            # the check .ci/run runs (skips the kernels below)
#   CUDA_CHECK_ALL_KERNELS=1 bash .ci/cuda.sh   # every kernel through nvcc, as bench/gpu.sh builds
#
# The CUDA 13.0 compiler comes from PyPI (NVIDIA's wheels) into target/cuda-toolkit, once.
#
# Skipped kernels. candle-kernels' build script (through the cudaforge crate) runs nvcc once per
# kernel source: `--ptx` for the kernels candle-core loads at run time, `-c -o X.o` then
# `nvcc --lib` (into libmoe.a) for the quantized/MoE ones. Most of a cold check's time went to
# these, which the trainer cannot reach: it never builds a quantized tensor (candle's
# `quantized::QTensor`/`QMatMul`) nor calls `candle_nn::moe`, the only callers of
#   src/quantized.cu                  (PTX loaded only by candle-core's quantized/cuda.rs)
#   src/mmvq_gguf.cu                  (libmoe.a: GGUF mat-vec, candle-core's quantized/fast_mmvq.rs)
#   src/mmq_gguf/mmq_quantize.cu      (libmoe.a: GGUF mat-mul, candle-core's quantized/fast_mmq.rs)
#   src/mmq_gguf/mmq_instance_{q4_0,q4_1,q5_0,q5_1,q8_0,q2_k,q3_k,q4_k,q5_k,q6_k}.cu  (same)
#   src/moe/moe_gguf.cu, moe_wmma.cu, moe_wmma_gguf.cu, moe_align.cu
#                                     (libmoe.a: candle-nn's moe.rs; moe_align only with `cutile`)
# So the check puts an nvcc wrapper first on PATH which, run from candle-kernels' folder for one
# of those files, writes a stub instead (a PTX header that ptxas accepts, or an empty host object
# that the real `nvcc --lib` archives) and logs one line; every other call (the other ten kernels:
# affine, binary, cast, conv, fill, indexing, reduce, sort, ternary, unary; `--version`,
# `--list-gpu-code`, `--lib`) runs the real nvcc. The stubs would fail a GPU run only on those ops,
# but they never leave the check's own build folder, target/cuda-check (or
# $CUDA_CHECK_TARGET_DIR): bench/gpu.sh and CUDA_CHECK_ALL_KERNELS=1 build in target/cuda (or
# $CUDA_TARGET_DIR) with the real nvcc. The folder must stay separate: cudaforge keeps a per-kernel
# cache in the build script's OUT_DIR and would take the stubs as up to date. A CUDA_TARGET_DIR
# outside the clone (e.g. ~/.cache/moe-vae/cuda) keeps the full build from one run to the next.
#
# Sourced (`. .ci/cuda.sh`), it only defines `cuda_toolkit` (the real nvcc), which bench/gpu.sh
# uses too, and `nvcc_skip_wrapper`.
#
# Every wheel is pinned to 13.0: unpinned, pip takes nvvm/crt 13.x whose PTX the 13.0 ptxas
# rejects, and without cccl the kernels miss `nv/target`.
set -euo pipefail

# Installs the pinned toolkit (if target/cuda-toolkit lacks it) and exports PATH, CUDA_ROOT,
# CUDA_PATH and CUDA_COMPUTE_CAP (90: the H200; override by setting it) for candle's kernels.
cuda_toolkit() {
    local dir wheels=(nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl nvidia-nvvm nvidia-cuda-crt)
    dir="$(pwd)/target/cuda-toolkit"
    local stamp="${wheels[*]/%/==13.0.*}"
    local cu13="$dir/nvidia/cu13"
    if [[ ! -x "$cu13/bin/nvcc" || "$(cat "$dir/.pinned" 2>/dev/null)" != "$stamp" ]]; then
        echo "installing the CUDA 13.0 compiler from PyPI into $dir" >&2
        rm -rf "$dir"
        # shellcheck disable=SC2086
        python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" $stamp >&2
        # nvcc.profile expects the toolkit's layout: targets/x86_64-linux/{include,lib}.
        mkdir -p "$cu13/targets"
        ln -sfn .. "$cu13/targets/x86_64-linux"
        echo "$stamp" > "$dir/.pinned"
    fi
    export PATH="$cu13/bin:$PATH"
    export CUDA_ROOT="$cu13" CUDA_PATH="$cu13"
    export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
}

# The candle-kernels sources (paths as its build script passes them) the check does not compile;
# the header says why.
skipped_kernels=(
    src/quantized.cu
    src/mmvq_gguf.cu
    src/mmq_gguf/mmq_quantize.cu
    src/mmq_gguf/mmq_instance_q4_0.cu src/mmq_gguf/mmq_instance_q4_1.cu
    src/mmq_gguf/mmq_instance_q5_0.cu src/mmq_gguf/mmq_instance_q5_1.cu
    src/mmq_gguf/mmq_instance_q8_0.cu src/mmq_gguf/mmq_instance_q2_k.cu
    src/mmq_gguf/mmq_instance_q3_k.cu src/mmq_gguf/mmq_instance_q4_k.cu
    src/mmq_gguf/mmq_instance_q5_k.cu src/mmq_gguf/mmq_instance_q6_k.cu
    src/moe/moe_gguf.cu src/moe/moe_wmma.cu src/moe/moe_wmma_gguf.cu src/moe/moe_align.cu
)

# Writes the skipping nvcc into $1/nvcc-skip/bin (after cuda_toolkit), puts it first on PATH and
# logs what it skips to $1/nvcc-skipped.log (emptied here). Only for the check's own target dir.
nvcc_skip_wrapper() {
    local target=$1 real="$CUDA_ROOT/bin/nvcc" wrapper log
    wrapper="$(cd "$target" && pwd)/nvcc-skip"
    log="$(cd "$target" && pwd)/nvcc-skipped.log"
    mkdir -p "$wrapper/bin"
    # cudaforge takes the toolkit's include folder from nvcc's location.
    ln -sfn "$CUDA_ROOT/include" "$wrapper/include"
    : > "$log"
    local pattern
    pattern=$(IFS='|'; echo "${skipped_kernels[*]}")
    cat > "$wrapper/bin/nvcc" <<EOF
#!/usr/bin/env bash
# Written by .ci/cuda.sh (see its header): skips candle-kernels' quantized/MoE kernels.
set -euo pipefail
real='$real'
log='$log'
case "\$PWD" in */candle-kernels-*) ;; *) exec "\$real" "\$@" ;; esac
src='' out='' outdir='' ptx='' arch='' prev=''
for a in "\$@"; do
    case "\$prev" in -o) out=\$a ;; --output-directory) outdir=\$a ;; esac
    case "\$a" in
        --ptx) ptx=1 ;;
        -gencode=*) arch=\${a##*code=} ;;
        *.cu) src=\${a#./} ;;
    esac
    prev=\$a
done
case "\$src" in
    $pattern) ;;
    *) exec "\$real" "\$@" ;;
esac
if [[ -n \$ptx ]]; then
    out="\${outdir:-.}/\$(basename "\$src" .cu).ptx"
    printf '//\n// Not compiled: stub written by .ci/cuda.sh (quantized/MoE kernel).\n//\n\n.version 9.0\n.target %s\n.address_size 64\n' "\${arch:-sm_90a}" > "\$out"
else
    [[ -n \$out ]] || { echo "nvcc-skip: no -o for \$src: \$*" >&2; exit 1; }
    cc -c -x c /dev/null -o "\$out"
fi
echo "nvcc-skip: skipped \$src (stub \$(basename "\$out"))" | tee -a "\$log" >&2
EOF
    chmod +x "$wrapper/bin/nvcc"
    export PATH="$wrapper/bin:$PATH"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    cd "$(dirname "$0")/.."
    start=$SECONDS
    cuda_toolkit
    nvcc --version | tail -n 2
    echo "toolkit ready after $((SECONDS - start)) s"
    if [[ "${CUDA_CHECK_ALL_KERNELS:-0}" == 1 ]]; then
        target=${CUDA_TARGET_DIR:-target/cuda}
        echo "all kernels through nvcc (target dir $target)"
    else
        target=${CUDA_CHECK_TARGET_DIR:-target/cuda-check}
        mkdir -p "$target"
        nvcc_skip_wrapper "$target"
    fi
    # Only the trainer has a `cuda` feature (engine, harness and the firmware have none).
    CARGO_TARGET_DIR="$target" cargo check --release --locked -p trainer --features cuda
    if [[ "${CUDA_CHECK_ALL_KERNELS:-0}" != 1 ]]; then
        skipped=$(wc -l < "$target/nvcc-skipped.log")
        if ((skipped > 0)); then
            cat "$target/nvcc-skipped.log"
        else
            echo "nvcc-skip: no kernel compiled this run (candle-kernels' build was current)"
        fi
    fi
    echo "cuda check done in $((SECONDS - start)) s"
fi
