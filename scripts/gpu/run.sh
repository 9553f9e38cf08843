#!/usr/bin/env bash
# Runs a bundle made by scripts/gpu/build.sh on a GPU host that has the NVIDIA driver and
# Python with PyTorch (CUDA build) but no Rust toolchain, from a checkout of the repository
# with the bundle in it (fixtures from tests/fixtures, wheels from .whl/; SONIC_FIXTURES and
# SONIC_WHEELS point elsewhere). Phases, all by default:
#   tests   tier B and tier C tests (every kernel against the CPU reference, poisoned outputs)
#   verify  `sonic verify --device cuda` on every reference fixture in f32, f16 and bf16
#   bench   the criterion CUDA kernel benches (bench-cuda_kernels.jsonl) and the PyTorch peer
#           script at the same shapes (peer.jsonl)
#   unet    one forward of the SVD-xt UNet (random weights, 75 frames at 64×64, f16): diffusers
#           (unet-peer.jsonl) then ours on the same weights (unet-sonic.jsonl), and
#           `sonic verify` of that model against diffusers' f32 output
# Each phase fits in a few minutes; a host that limits one command's time can take them in
# separate calls with the same <out-dir>.
#
# NVRTC, cuBLAS and cuDNN come from the system loader path or, failing that, from the pip
# wheels PyTorch depends on (nvidia-cuda-nvrtc, nvidia-cublas, nvidia-cudnn).
#
#     bash <bundle>/run.sh <out-dir> [tests] [verify] [bench] [unet]
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:?usage: run.sh <out-dir> [tests] [verify] [bench] [unet]}"
shift
PHASES="${*:-tests verify bench unet}"
PYTHON="${PYTHON:-python3}"
FIXTURES="${SONIC_FIXTURES:-$HERE/../tests/fixtures}"
WHEELS="${SONIC_WHEELS:-$HERE/../.whl}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

WHEEL_LIBS="$("$PYTHON" - <<'PY'
import importlib, os
dirs = []
for name in ("nvidia.cuda_nvrtc", "nvidia.cublas", "nvidia.cudnn", "nvidia.cuda_runtime", "nvidia"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    for root in module.__path__:
        # Older wheels put each library under nvidia/<name>/lib, CUDA 13's under nvidia/cu13/lib.
        for lib in (os.path.join(root, "lib"), os.path.join(root, "cu13", "lib")):
            if os.path.isdir(lib) and lib not in dirs:
                dirs.append(lib)
print(":".join(dirs))
PY
)"
LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}${WHEEL_LIBS:+:$WHEEL_LIBS}"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH#:}"
# The CUDA 12 bindings look cuBLAS up as libcublas.so or libcublas.so.12. Where only CUDA
# 13's libcublas.so.13 is installed (PyTorch cu13x wheels), a libcublas.so link lets them
# load it: the few entry points the backend calls are the same in both.
LINKS="$(mktemp -d)"
trap 'rm -rf "$LINKS"' EXIT
IFS=: read -ra LIB_DIRS <<<"$LD_LIBRARY_PATH"
if ! ldconfig -p 2>/dev/null | grep -qE 'libcublas\.so(\.12)? '; then
    have="" newest=""
    for dir in "${LIB_DIRS[@]}"; do
        [ -e "$dir/libcublas.so" ] || [ -e "$dir/libcublas.so.12" ] && have=1
        for lib in "$dir"/libcublas.so.1[3-9]; do
            [ -e "$lib" ] && newest="$lib"
        done
    done
    if [ -z "$have" ] && [ -n "$newest" ]; then
        ln -s "$newest" "$LINKS/libcublas.so"
        export LD_LIBRARY_PATH="$LINKS:$LD_LIBRARY_PATH"
    fi
fi
export SONIC_KERNEL_CACHE="$OUT/kernel-cache"
export CRITERION_HOME="$OUT/criterion"

{
    date -u
    echo "phases: $PHASES"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ls -l "$LINKS"
    nvidia-smi
    nvidia-smi -q -d CLOCK
} >>"$OUT/device.txt" 2>&1

status=0
fail() {
    echo "$1: FAILED (see $2)"
    status=1
}

phase_tests() {
    for test in "$HERE"/bin/test-*; do
        local name
        name="$(basename "$test")"
        if "$test" --test-threads=1 --nocapture >"$OUT/$name.log" 2>&1; then
            echo "$name: $(grep '^test result' "$OUT/$name.log" | tail -1)"
        else
            fail "$name" "$OUT/$name.log"
        fi
    done
}

phase_verify() {
    local fixtures=()
    for meta in "$FIXTURES"/*/meta.json; do
        fixtures+=("$(dirname "$meta")")
    done
    if [ "${#fixtures[@]}" -eq 0 ]; then
        fail verify "no fixtures under $FIXTURES"
        return
    fi
    for dtype in f32 f16 bf16; do
        if "$HERE/bin/sonic" verify "${fixtures[@]}" --device cuda --dtype "$dtype" \
            >"$OUT/verify-$dtype.txt" 2>&1; then
            echo "verify $dtype: $(grep -c '^  ok' "$OUT/verify-$dtype.txt") outputs ok"
        else
            fail "verify $dtype" "$OUT/verify-$dtype.txt"
        fi
    done
}

phase_bench() {
    if "$HERE/bin/bench-cuda_kernels" --bench >"$OUT/bench-cuda_kernels.jsonl" 2>"$OUT/bench-cuda_kernels.log"; then
        echo "bench-cuda_kernels: done ($(grep -c '^{' "$OUT/bench-cuda_kernels.jsonl") results)"
    else
        fail bench-cuda_kernels "$OUT/bench-cuda_kernels.log"
    fi
    if "$PYTHON" "$HERE/peer/cuda_kernels.py" >"$OUT/peer.jsonl" 2>"$OUT/peer.log"; then
        echo "peer: done ($(grep -c '^{' "$OUT/peer.jsonl") results)"
    else
        fail peer "$OUT/peer.log"
    fi
}

phase_unet() {
    if ! "$PYTHON" -c "import diffusers" 2>/dev/null; then
        if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
            echo "unet: skipped (no diffusers here and no wheels in $WHEELS)"
            return
        fi
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/sonic-site \
            "$WHEELS"/*.whl >"$OUT/unet-wheels.log" 2>&1 || {
            fail "unet wheels" "$OUT/unet-wheels.log"
            return
        }
        export PYTHONPATH="/tmp/sonic-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    local model=/tmp/sonic-svd-unet
    if ! "$PYTHON" "$HERE/peer/svd_unet.py" "$model" >"$OUT/unet-peer.jsonl" 2>"$OUT/unet-peer.log"; then
        fail "unet peer" "$OUT/unet-peer.log"
        return
    fi
    echo "unet peer: $(cat "$OUT/unet-peer.jsonl")"
    if SONIC_SVD_UNET_DIR="$model" "$HERE/bin/bench-cuda_unet" >"$OUT/unet-sonic.jsonl" 2>"$OUT/unet-sonic.log"; then
        echo "unet sonic: $(cat "$OUT/unet-sonic.jsonl")"
    else
        fail "unet sonic" "$OUT/unet-sonic.log"
    fi
    for dtype in f16 f32; do
        if "$HERE/bin/sonic" verify "$model" --device cuda --dtype "$dtype" \
            >"$OUT/verify-svdxt-$dtype.txt" 2>&1; then
            echo "verify svd-xt $dtype: $(grep 'svdxt.out' "$OUT/verify-svdxt-$dtype.txt")"
        else
            fail "verify svd-xt $dtype" "$OUT/verify-svdxt-$dtype.txt"
        fi
    done
}

for phase in $PHASES; do
    case "$phase" in
        tests | verify | bench | unet) "phase_$phase" ;;
        *)
            echo "unknown phase '$phase' (tests, verify, bench, unet)" >&2
            exit 2
            ;;
    esac
done
exit "$status"
