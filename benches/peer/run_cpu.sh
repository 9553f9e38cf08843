#!/usr/bin/env bash
# Runs the CPU op benches against PyTorch on this machine, in one go, and prints a markdown
# table of the ratios (sonic time / torch time) with pass/fail against the targets in
# shapes.json. Single-threaded first, then with all cores.
#
#   PYTHON=/path/to/venv/bin/python benches/peer/run_cpu.sh
#
# Environment: PYTHON (a python with torch; default python3), THREADS (the "all cores"
# count; default nproc), SONIC_BENCH_SAMPLES / SONIC_BENCH_WARMUP_S / SONIC_BENCH_MEASURE_S
# (criterion sampling; the peer script uses the same warm-up and measurement times),
# TORCH_CAPABILITIES (PyTorch kernel dispatches to time, each in its own process, the
# fastest counting; default "default avx2"), CARGO_TARGET_DIR (as cargo). Raw results are
# kept in $CARGO_TARGET_DIR/cpu-bench/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
all="${THREADS:-$(nproc)}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/cpu-bench"
warmup="${SONIC_BENCH_WARMUP_S:-1}"
measure="${SONIC_BENCH_MEASURE_S:-2}"
export SONIC_BENCH_WARMUP_S="$warmup" SONIC_BENCH_MEASURE_S="$measure"
export CRITERION_HOME="$out/criterion"
mkdir -p "$out"
rm -rf "$CRITERION_HOME"

"$python" -c 'import torch' || { echo "error: $python cannot import torch (set PYTHON)" >&2; exit 1; }

echo "building benches..." >&2
cargo bench -p sonic-benches --bench cpu_ops --no-run >&2

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for t in 1 "$all"; do
    echo "sonic: RAYON_NUM_THREADS=$t" >&2
    RAYON_NUM_THREADS=$t cargo bench -q -p sonic-benches --bench cpu_ops -- \
        --save-baseline "threads_$t" --noplot >&2
done
# PyTorch picks its vectorised kernels by CPU capability; each listed capability runs in
# its own process ("default" is PyTorch's own choice) and the report keeps the faster time.
torch_runs=()
for cap in ${TORCH_CAPABILITIES:-default avx2}; do
    echo "torch ($cap dispatch): threads 1 and $all" >&2
    if [ "$cap" = default ]; then
        "$python" "$here/cpu_ops.py" --threads 1 "$all" --warmup-s "$warmup" \
            --measure-s "$measure" > "$out/torch_$cap.json"
    else
        ATEN_CPU_CAPABILITY=$cap "$python" "$here/cpu_ops.py" --threads 1 "$all" \
            --warmup-s "$warmup" --measure-s "$measure" > "$out/torch_$cap.json"
    fi
    torch_runs+=("$out/torch_$cap.json")
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

"$python" "$here/report.py" --criterion "$CRITERION_HOME" --torch "${torch_runs[@]}" \
    --threads 1 "$all" --load "$load_before" "$load_after" | tee "$out/report.md"
