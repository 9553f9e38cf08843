#!/usr/bin/env python3
"""The peer side of the UNet benchmark: diffusers' SVD-xt UNet, timed, and saved as a fixture.

    python3 benches/peer/svd_unet.py DIR [--frames 75] [--side 64] [--runs 5] [--device cuda]

Builds `UNetSpatioTemporalConditionModel` with the SVD-xt config (`SVD_XT` of
unet_svd_xt_cpu.py beside this script, as stabilityai/stable-video-diffusion-img2vid-xt ships
it) and random weights (torch's default initialisation, seed 0) rounded to f16. On CUDA it times one
forward of `frames` frames at a `side`×`side` latent in f16 with CUDA events (median of
`runs` after two warm-ups; attention through scaled_dot_product_attention with PyTorch's own
backend choice) and prints one JSON line.

DIR becomes a `model.svd-unet` fixture of that model: config.json, weights.safetensors
(f16), io.safetensors with the inputs and the f32 output (TF32 off), meta.json. So

    sonic verify DIR --device cuda --dtype f16     # or f32; on the CPU: --device cpu, small sizes

checks our UNet on the real SVD-xt configuration, and `benches/benches/cuda_unet.rs` times
the same weights on the same inputs (`SONIC_SVD_UNET_DIR=DIR`).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

RUN = "svdxt"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--frames", type=int, default=75)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    try:
        from diffusers import UNetSpatioTemporalConditionModel
        from unet_svd_xt_cpu import SVD_XT
    except ImportError as err:
        print(f"svd_unet: diffusers is not installed ({err})", file=sys.stderr)
        sys.exit(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    torch.manual_seed(0)
    config = {k: v for k, v in SVD_XT.items() if not k.startswith("_")}
    unet = UNetSpatioTemporalConditionModel(**config).eval().half().to(args.device)
    gen = torch.Generator().manual_seed(1)
    inputs = {
        "sample": torch.randn(1, args.frames, 8, args.side, args.side, generator=gen),
        "timesteps": torch.tensor([0.7]),
        "encoder_hidden_states": torch.randn(1, 1, 1024, generator=gen),
        # fps − 1, motion bucket, noise augmentation: SVD-xt's usual conditioning.
        "added_time_ids": torch.tensor([[6.0, 127.0, 0.02]]),
    }

    def forward(dtype):
        with torch.no_grad():
            args_ = [inputs[k].to(args.device, dtype) for k in inputs]
            args_[1] = inputs["timesteps"].to(args.device)
            return unet(*args_, return_dict=False)[0]

    if args.device.startswith("cuda"):
        for _ in range(2):
            forward(torch.float16)
        torch.cuda.synchronize()
        times = []
        for _ in range(args.runs):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            forward(torch.float16)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        print(
            json.dumps(
                {
                    "impl": "diffusers",
                    "gpu": torch.cuda.get_device_name(),
                    "case": f"svd_unet_forward/f{args.frames}_{args.side}x{args.side}_f16",
                    "ms": round(statistics.median(times), 2),
                    "torch": torch.__version__,
                    "params": sum(p.numel() for p in unet.parameters()),
                }
            ),
            flush=True,
        )

    args.dir.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(args.dir, variant="fp16", safe_serialization=True)
    (args.dir / "diffusion_pytorch_model.fp16.safetensors").replace(args.dir / "weights.safetensors")
    unet = unet.float()
    reference = forward(torch.float32)
    tensors = {f"{RUN}.{k}": v.contiguous() for k, v in inputs.items()}
    tensors[f"{RUN}.out"] = reference.float().cpu().contiguous()
    save_file(tensors, args.dir / "io.safetensors")
    meta = {
        "kind": "model.svd-unet",
        "inputs": [k for k in tensors if not k.endswith(".out")],
        "outputs": [f"{RUN}.out"],
        "params": {"runs": [RUN]},
        "tolerance": {"rel": 1e-4},
        "generator": "benches/peer/svd_unet.py",
    }
    (args.dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
