#!/usr/bin/env bash
# Builds the CUDA test and bench binaries in release on a machine without a GPU or CUDA
# toolkit (cudarc loads every CUDA library at run time) and packs them, stripped, with
# run.sh and the PyTorch peer script into a self-contained folder (default .gpu-bundle/,
# git-ignored). Copy that folder to a GPU host and run `bash <bundle>/run.sh <out-dir>`.
#
#     scripts/gpu/build.sh [bundle-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE="${1:-.gpu-bundle}"
LIMIT_MIB=64

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/peer"
ARTIFACTS="$(mktemp)"
trap 'rm -f "$ARTIFACTS"' EXIT
cargo test -p sonic-kernels --features cuda --release --no-run --message-format=json >"$ARTIFACTS"
cargo bench -p sonic-benches --features cuda --bench cuda_kernels --no-run --message-format=json >>"$ARTIFACTS"

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
    kind = "bench" if "bench" in msg["target"]["kind"] else "test"
    name = f"{kind}-{msg['target']['name'].replace('-', '_')}"
    shutil.copy2(exe, os.path.join(dest, name))
    print(f"bundled {name}")
PY
if command -v strip >/dev/null 2>&1; then
    strip "$BUNDLE"/bin/*
fi
cp scripts/gpu/run.sh "$BUNDLE/run.sh"
cp benches/peer/cuda_kernels.py "$BUNDLE/peer/"
size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "bundle $BUNDLE: $((size_kib / 1024)) MiB"
if [ "$size_kib" -ge $((LIMIT_MIB * 1024)) ]; then
    echo "bundle exceeds $LIMIT_MIB MiB" >&2
    exit 1
fi
