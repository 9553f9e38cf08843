#!/usr/bin/env python3
"""PyTorch CUDA peer of benches/benches/cuda_kernels.rs: the same shapes, the same units,
one JSON line per case on stdout.

- spatial self-attention [75, h, L, 64] f16 through F.scaled_dot_product_attention pinned
  to the flash and the cuDNN backends (TFLOP/s = 4·b·h·L²·d / t);
- temporal attention over 25 frames as diffusers runs it: permute [b·F, hw, c] to
  [b·hw, F, c], SDPA, permute back (GB/s of Q, K, V read and O written, the bytes the
  in-place kernel moves);
- F.silu(F.group_norm(x, 32, w, b)) at the UNet's four levels (GB/s of 1 read + 1 write);
- F.conv2d 3×3, padding 1, C → C channels at the same four levels, through cuDNN with
  torch.backends.cudnn.benchmark on (TFLOP/s = 2·n·C·P·C·9 / t);
- a device-to-device copy of 512 MiB, the bandwidth yardstick.

Each case warms up for at least 0.5 s, then the median of 30 single-call CUDA-event timings
is reported; inputs rotate over three sets so successive calls do not hit in L2.

    python benches/peer/cuda_kernels.py
"""

import json
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

IMAGES, FRAMES, ROTATE = 75, 25, 3


def median_ms(fn):
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < 0.5 or i < 5:
        fn(i)
        i += 1
    torch.cuda.synchronize()
    times = []
    for j in range(30):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn(j)
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def randn(*shape):
    return torch.randn(*shape, device="cuda", dtype=torch.float16) * 0.5


def report(impl, case, ms, **extra):
    line = {"impl": impl, "gpu": torch.cuda.get_device_name(), "case": case, "ms": round(ms, 4)}
    line.update(extra)
    print(json.dumps(line), flush=True)


def main():
    props = torch.cuda.get_device_properties(0)
    print(
        f"# torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
        f"{props.name}, {props.multi_processor_count} SMs",
        flush=True,
    )
    copy_bytes = 512 << 20
    srcs = [torch.empty(copy_bytes // 2, device="cuda", dtype=torch.float16) for _ in range(ROTATE)]
    dsts = [torch.empty_like(s) for s in srcs]
    ms = median_ms(lambda i: dsts[i % ROTATE].copy_(srcs[i % ROTATE]))
    d2d = 2 * copy_bytes / ms / 1e6
    report("torch", f"d2d_copy/{copy_bytes >> 20}MiB", ms, gbps=round(d2d))
    del srcs, dsts

    for tokens, heads in [(4096, 5), (1024, 10)]:
        sets = [[randn(IMAGES, heads, tokens, 64) for _ in range(3)] for _ in range(ROTATE)]
        flops = 4 * IMAGES * heads * tokens * tokens * 64
        for name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]:
            try:
                with sdpa_kernel(backend):
                    ms = median_ms(lambda i: F.scaled_dot_product_attention(*sets[i % ROTATE], scale=0.125))
            except RuntimeError as err:
                print(f"# sdpa {name} unavailable: {err}", flush=True)
                continue
            case = f"spatial_attention/b{IMAGES}_h{heads}_l{tokens}_d64"
            report(f"torch-sdpa-{name}", case, ms, tflops=round(flops / ms / 1e9, 1))
        del sets

    hw, heads, d = 64 * 64, 5, 64
    b = IMAGES // FRAMES
    sets = [[randn(IMAGES, hw, heads * d) for _ in range(3)] for _ in range(ROTATE)]

    def temporal(i):
        q, k, v = (
            t.reshape(b, FRAMES, hw, heads, d).permute(0, 2, 3, 1, 4).reshape(b * hw, heads, FRAMES, d)
            for t in sets[i % ROTATE]
        )
        o = F.scaled_dot_product_attention(q, k, v, scale=0.125)
        return o.reshape(b, hw, heads, FRAMES, d).permute(0, 3, 1, 2, 4).reshape(IMAGES, hw, heads * d)

    ms = median_ms(temporal)
    gbps = 4 * IMAGES * hw * heads * d * 2 / ms / 1e6
    case = f"temporal_attention/f{FRAMES}_b{b}_hw{hw}_h{heads}_d{d}"
    report("torch-sdpa", case, ms, gbps=round(gbps), pct_of_d2d=round(100 * gbps / d2d, 1))
    del sets

    for c, side in [(320, 64), (640, 32), (1280, 16), (1280, 8)]:
        sets = [(randn(IMAGES, c, side, side), randn(c), randn(c)) for _ in range(ROTATE)]
        ms = median_ms(lambda i: F.silu(F.group_norm(sets[i % ROTATE][0], 32, sets[i % ROTATE][1], sets[i % ROTATE][2], 1e-5)))
        gbps = 2 * IMAGES * c * side * side * 2 / ms / 1e6
        case = f"group_norm_silu/n{IMAGES}_c{c}_{side}x{side}"
        report("torch", case, ms, gbps=round(gbps), pct_of_d2d=round(100 * gbps / d2d, 1))
        del sets

    # cuDNN times its candidate algorithms on the first call of each shape (the warm-up).
    torch.backends.cudnn.benchmark = True
    for c, side in [(320, 64), (640, 32), (1280, 16), (1280, 8)]:
        sets = [(randn(IMAGES, c, side, side), randn(c, c, 3, 3), randn(c)) for _ in range(ROTATE)]
        ms = median_ms(lambda i: F.conv2d(*sets[i % ROTATE], padding=1))
        flops = 2 * IMAGES * c * side * side * c * 9
        case = f"conv3x3/n{IMAGES}_c{c}_{side}x{side}"
        report("torch-cudnn", case, ms, tflops=round(flops / ms / 1e9, 1))
        del sets


if __name__ == "__main__":
    if not torch.cuda.is_available():
        print("# cuda_kernels.py skipped: torch sees no CUDA device", flush=True)
    else:
        main()
