#!/usr/bin/env bash
# Runs a bundle made by scripts/gpu/build.sh on a GPU host that has the NVIDIA driver and
# Python with PyTorch (CUDA build) but no Rust toolchain:
#   - tier B and tier C tests (every kernel against the CPU reference, poisoned outputs),
#   - the criterion CUDA benches (JSON summary lines in bench.jsonl),
#   - the PyTorch peer script at the same shapes (peer.jsonl).
# NVRTC, cuBLAS and cuDNN come from the system loader path or, failing that, from the pip
# wheels PyTorch depends on (nvidia-cuda-nvrtc-cu12, nvidia-cublas-cu12, nvidia-cudnn-cu12).
#
#     bash <bundle>/run.sh <out-dir>
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:?usage: run.sh <out-dir>}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

WHEEL_LIBS="$("$PYTHON" - <<'PY'
import importlib, os
dirs = []
for name in ("nvidia.cuda_nvrtc", "nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cudnn"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    for root in module.__path__:
        lib = os.path.join(root, "lib")
        if os.path.isdir(lib):
            dirs.append(lib)
print(":".join(dirs))
PY
)"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$WHEEL_LIBS"
export SONIC_KERNEL_CACHE="$OUT/kernel-cache"
export CRITERION_HOME="$OUT/criterion"

{
    date -u
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    nvidia-smi
    nvidia-smi -q -d CLOCK
} >"$OUT/device.txt" 2>&1

status=0
for test in "$HERE"/bin/test-*; do
    name="$(basename "$test")"
    if "$test" --test-threads=1 --nocapture >"$OUT/$name.log" 2>&1; then
        echo "$name: $(grep '^test result' "$OUT/$name.log" | tail -1)"
    else
        echo "$name: FAILED (see $OUT/$name.log)"
        status=1
    fi
done
for bench in "$HERE"/bin/bench-*; do
    name="$(basename "$bench")"
    if "$bench" --bench >"$OUT/$name.jsonl" 2>"$OUT/$name.log"; then
        echo "$name: done ($(grep -c '^{' "$OUT/$name.jsonl") results)"
    else
        echo "$name: FAILED (see $OUT/$name.log)"
        status=1
    fi
done
if "$PYTHON" "$HERE/peer/cuda_kernels.py" >"$OUT/peer.jsonl" 2>"$OUT/peer.log"; then
    echo "peer: done ($(grep -c '^{' "$OUT/peer.jsonl") results)"
else
    echo "peer: FAILED (see $OUT/peer.log)"
    status=1
fi
exit "$status"
