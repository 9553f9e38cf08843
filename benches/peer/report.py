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
    ap.add_argument("--torch", required=True, help="JSON written by cpu_ops.py")
    ap.add_argument("--threads", type=int, nargs="+", required=True)
    ap.add_argument("--load", nargs=2, default=None, help="load averages before and after")
    args = ap.parse_args()

    with open(os.path.join(HERE, "shapes.json")) as f:
        shapes = json.load(f)
    with open(args.torch) as f:
        peer = json.load(f)
    torch_ms = {(r["group"], r["id"], r["threads"]): r["median_ms"] for r in peer["results"]}

    print(f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- torch {peer['torch']} (CPU capability {peer['cpu_capability']}), Python {peer['python']}")
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
                ratio = sonic / torch
                ok = ratio <= target
                passed += ok
                total += 1
                print(
                    f"| {group} | {cid} | {t} | {sonic:.3f} | {torch:.3f} | {ratio:.2f} | "
                    f"≤ {target:.2f} | {'pass' if ok else 'FAIL'} |"
                )
    print()
    print(f"{passed}/{total} within target.")


if __name__ == "__main__":
    main()
