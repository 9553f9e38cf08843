#!/usr/bin/env python3
"""Joins criterion medians (one saved baseline per thread count, `threads_<t>`) with the
PyTorch peer's JSON and prints a markdown report: machine, versions, and per case
sonic ms, torch ms, ratio (sonic/torch) and pass/fail against the targets in shapes.json."""

import argparse
import datetime
import json
import os
import platform

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def criterion_median_ms(root, group, case_id, baseline):
    path = os.path.join(root, group, case_id, baseline, "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--criterion", required=True, help="criterion output directory")
    ap.add_argument(
        "--torch",
        required=True,
        nargs="+",
        help="JSON written by cpu_ops.py, one per PyTorch dispatch; the fastest time counts",
    )
    ap.add_argument("--threads", type=int, nargs="+", required=True)
    ap.add_argument("--load", nargs=2, default=None, help="load averages before and after")
    args = ap.parse_args()

    with open(os.path.join(HERE, "shapes.json")) as f:
        shapes = json.load(f)
    runs = []
    for path in args.torch:
        with open(path) as f:
            runs.append(json.load(f))
    peer = runs[0]
    # Per case the fastest run, and the dispatch that gave it.
    torch_ms, torch_cap = {}, {}
    for run in runs:
        cap = run.get("capability_override") or "default"
        for r in run["results"]:
            key = (r["group"], r["id"], r["threads"])
            if key not in torch_ms or r["median_ms"] < torch_ms[key]:
                torch_ms[key], torch_cap[key] = r["median_ms"], cap

    print(f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    caps = ", ".join(
        f"{r.get('capability_override') or 'default'} ({r['cpu_capability']})" for r in runs
    )
    print(f"- torch {peer['torch']}, Python {peer['python']}; kernel dispatches timed: {caps}")
    if args.load:
        print(f"- load average (1/5/15 min) before: {args.load[0]}, after: {args.load[1]}")
    print()
    print("| op | shape | threads | sonic ms | torch ms | ratio | target | result |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    passed = total = 0
    groups = ["matmul", "conv2d_3x3", "attention", "group_norm_silu"]
    for t in args.threads:
        for group in groups:
            target = shapes["targets"][group]
            for case in shapes[group]:
                cid = case["id"]
                sonic = criterion_median_ms(args.criterion, group, cid, f"threads_{t}")
                torch = torch_ms[(group, cid, t)]
                cap = torch_cap[(group, cid, t)]
                mark = "" if cap == "default" else f" ({cap})"
                ratio = sonic / torch
                ok = ratio <= target
                passed += ok
                total += 1
                print(
                    f"| {group} | {cid} | {t} | {sonic:.3f} | {torch:.3f}{mark} | {ratio:.2f} | "
                    f"≤ {target:.2f} | {'pass' if ok else 'FAIL'} |"
                )
    print()
    print(f"{passed}/{total} within target.")
    if len(runs) > 1:
        print()
        print(
            "torch ms is the faster of the timed dispatches; a dispatch in parentheses marks "
            "cases where PyTorch's own choice was slower."
        )


if __name__ == "__main__":
    main()
