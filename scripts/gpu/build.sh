#!/usr/bin/env bash
# Builds the CUDA test and bench binaries and the `sonic` CLI (feature cuda) in release on a
# machine without a GPU or CUDA toolkit (cudarc loads every CUDA library at run time) and
# packs them, stripped, with run.sh and the PyTorch peer scripts into a folder (default
# .gpu-bundle/, git-ignored), and downloads wheels of diffusers, which the GPU host's Python
# lacks, into .whl/ (git-ignored). On the GPU host, from a checkout of this repository (the
# fixtures come from tests/fixtures), run `bash <bundle>/run.sh <out-dir> [phase…]`.
#
# The bundle is kept apart from the wheels so a host that takes a limited upload can get
# only what a phase needs: bin/sonic, bin/bench-cuda_unet, run.sh, peer/ and .whl/ for `unet`.
#
#     scripts/gpu/build.sh [bundle-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE="${1:-.gpu-bundle}"
LIMIT_MIB=64

rm -rf "$BUNDLE"
WHEELS=.whl
mkdir -p "$BUNDLE/bin" "$BUNDLE/peer" "$WHEELS"
ARTIFACTS="$(mktemp)"
trap 'rm -f "$ARTIFACTS"' EXIT
cargo test -p sonic-kernels --features cuda --release --no-run --message-format=json >"$ARTIFACTS"
cargo bench -p sonic-benches --features cuda --bench cuda_kernels --bench cuda_unet --no-run --message-format=json >>"$ARTIFACTS"
cargo build -p sonic-cli --features cuda --release --message-format=json >>"$ARTIFACTS"

# Every executable cargo reported: test-<target> for test binaries, bench-<target> for benches.
python3 - "$ARTIFACTS" "$BUNDLE/bin" <<'PY'
import json, shutil, sys, os
artifacts, dest = sys.argv[1], sys.argv[2]
for line in open(artifacts):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    exe = msg.get("executable") if msg.get("reason") == "compiler-artifact" else None
    if not exe or "example" in msg["target"]["kind"]:
        continue
    if "bin" in msg["target"]["kind"]:
        name = msg["target"]["name"]
    else:
        kind = "bench" if "bench" in msg["target"]["kind"] else "test"
        name = f"{kind}-{msg['target']['name'].replace('-', '_')}"
    shutil.copy2(exe, os.path.join(dest, name))
    print(f"bundled {name}")
PY
if command -v strip >/dev/null 2>&1; then
    strip "$BUNDLE"/bin/*
fi
cp scripts/gpu/run.sh "$BUNDLE/run.sh"
cp benches/peer/cuda_kernels.py benches/peer/svd_unet.py benches/peer/unet_svd_xt_cpu.py "$BUNDLE/peer/"
# The UNet comparison needs diffusers, which the GPU host's Python (3.12) does not have and
# cannot download. Without the wheels that phase says so and the others still run.
if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 -d "$WHEELS" \
    diffusers==0.42.1 importlib_metadata==10.2.0; then
    echo "warning: could not download the diffusers wheels; run.sh's unet phase will skip" >&2
fi
du -sh "$BUNDLE"/bin/* "$WHEELS"
size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "bundle $BUNDLE: $((size_kib / 1024)) MiB"
if [ "$size_kib" -ge $((LIMIT_MIB * 1024)) ]; then
    echo "bundle exceeds $LIMIT_MIB MiB" >&2
    exit 1
fi
