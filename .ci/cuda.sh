#!/usr/bin/env bash
# CI: compiles the trainer's `cuda` feature (candle's CUDA backend and its kernels) on a machine
# without a GPU. Nothing is linked or run: linking needs the driver library (libcuda.so), which
# `bench/gpu.sh` fetches when it builds the binary for a GPU machine.
#
#   bash .ci/cuda.sh
#
# The CUDA 13.0 compiler comes from PyPI (NVIDIA's wheels) into target/cuda-toolkit, once; the
# build goes to target/cuda (or $CUDA_TARGET_DIR) so it leaves the CPU build in target/ alone.
# Cold, most of the time goes to candle-kernels' build script, which compiles its quantized-matmul
# and MoE kernels with nvcc whether or not they are used; a CUDA_TARGET_DIR outside the clone
# (e.g. ~/.cache/moe-vae/cuda) keeps them from one run to the next on the same machine. Sourced (`. .ci/cuda.sh`),
# it only defines `cuda_toolkit`, which bench/gpu.sh uses too.
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

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    cd "$(dirname "$0")/.."
    start=$SECONDS
    cuda_toolkit
    nvcc --version | tail -n 2
    echo "toolkit ready after $((SECONDS - start)) s"
    # Only the trainer has a `cuda` feature (engine, harness and the firmware have none).
    CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-target/cuda}" cargo check --release -p trainer --features cuda
    echo "cuda check done in $((SECONDS - start)) s"
fi
