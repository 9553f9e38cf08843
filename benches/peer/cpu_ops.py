#!/usr/bin/env python3
"""PyTorch CPU peer of benches/benches/cpu_ops.rs: times the same ops at the same shapes
(benches/peer/shapes.json) and prints JSON to stdout.

Each op runs in PyTorch's natural layout: F.linear, F.conv2d (3x3, padding 1, bias),
F.scaled_dot_product_attention on [b, h, l, d], and F.group_norm followed by F.silu.
For every thread count, each case is warmed up and then timed run by run; the median is
reported in milliseconds.

    python benches/peer/cpu_ops.py --threads 1 2 [--warmup-s 1] [--measure-s 2] [--min-runs 10]
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load_shapes():
    with open(os.path.join(HERE, "shapes.json")) as f:
        return json.load(f)


def cases(shapes, gen):
    """Yields (group, id, thunk) with inputs created up front."""

    def randn(*dims):
        return torch.randn(*dims, generator=gen, dtype=torch.float32)

    for s in shapes["matmul"]:
        x, w, b = randn(s["rows"], s["in"]), randn(s["out"], s["in"]), randn(s["out"])
        yield "matmul", s["id"], (lambda x=x, w=w, b=b: F.linear(x, w, b))
    for s in shapes["conv2d_3x3"]:
        x = randn(s["n"], s["c"], s["h"], s["w"])
        w, b = randn(s["out"], s["c"], 3, 3), randn(s["out"])
        yield "conv2d_3x3", s["id"], (lambda x=x, w=w, b=b: F.conv2d(x, w, b, padding=1))
    for s in shapes["attention"]:
        dims = (s["batch"], s["heads"], s["tokens"], s["head_dim"])
        q, k, v = randn(*dims), randn(*dims), randn(*dims)
        scale = 1.0 / math.sqrt(s["head_dim"])
        yield "attention", s["id"], (
            lambda q=q, k=k, v=v, scale=scale: F.scaled_dot_product_attention(q, k, v, scale=scale)
        )
    for s in shapes["group_norm_silu"]:
        x = randn(s["n"], s["c"], s["h"], s["w"])
        w, b = randn(s["c"]), randn(s["c"])
        g = s["groups"]
        yield "group_norm_silu", s["id"], (
            lambda x=x, w=w, b=b, g=g: F.silu(F.group_norm(x, g, w, b, 1e-5))
        )


def time_case(fn, warmup_s, measure_s, min_runs):
    end = time.perf_counter() + warmup_s
    fn()
    while time.perf_counter() < end:
        fn()
    samples = []
    end = time.perf_counter() + measure_s
    while len(samples) < min_runs or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3, len(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count()])
    ap.add_argument("--warmup-s", type=float, default=1.0)
    ap.add_argument("--measure-s", type=float, default=2.0)
    ap.add_argument("--min-runs", type=int, default=10)
    args = ap.parse_args()

    shapes = load_shapes()
    results = []
    torch.set_grad_enabled(False)
    for t in args.threads:
        torch.set_num_threads(t)
        gen = torch.Generator().manual_seed(shapes["seed"])
        for group, case_id, fn in cases(shapes, gen):
            ms, runs = time_case(fn, args.warmup_s, args.measure_s, args.min_runs)
            results.append({"group": group, "id": case_id, "threads": t, "median_ms": ms, "runs": runs})
            print(f"torch {group}/{case_id} threads={t}: {ms:.3f} ms ({runs} runs)", file=sys.stderr)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "mkldnn": torch.backends.mkldnn.is_available(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "capability_override": os.environ.get("ATEN_CPU_CAPABILITY"),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
