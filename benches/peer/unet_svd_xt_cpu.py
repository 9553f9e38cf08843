#!/usr/bin/env python3
"""The real-size SVD-xt UNet on the CPU: random weights, one forward at a small latent, timed
in PyTorch; writes a model folder the Rust side loads and checks against.

    python benches/peer/unet_svd_xt_cpu.py OUT_DIR [--threads 2] [--frames 4] [--latent 16]
    cargo run --release -p sonic-benches --example unet_svd_xt_cpu -- OUT_DIR

OUT_DIR receives config.json (SVD-xt's unet/config.json), weights.safetensors (~6 GB of f32
weights from diffusers' own initialisation, seeded), io.safetensors (the inputs and
PyTorch's output) and timing.json. A second call reuses the weights and inputs it finds there.
The folder is a scratch area, not a fixture. Wall and process CPU time are both reported:
on a shared machine the CPU time is the steadier figure.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import UNetSpatioTemporalConditionModel
from safetensors.torch import load_file, save_file

SVD_XT = {
    "_class_name": "UNetSpatioTemporalConditionModel",
    "addition_time_embed_dim": 256,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
    "in_channels": 8,
    "layers_per_block": 2,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 768,
    "sample_size": 96,
    "transformer_layers_per_block": 1,
    "up_block_types": ["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    kwargs = {k: v for k, v in SVD_XT.items() if not k.startswith("_")}
    weights, io_path = args.out / "weights.safetensors", args.out / "io.safetensors"
    fresh = not (weights.is_file() and io_path.is_file())
    if fresh:
        torch.manual_seed(0)
        unet = UNetSpatioTemporalConditionModel(**kwargs).eval()
        g = torch.Generator().manual_seed(1)
        n = args.latent
        io = {
            "sample": torch.randn(1, args.frames, 8, n, n, generator=g),
            "timesteps": torch.tensor([0.25 * torch.log(torch.tensor(49.81)).item()]),
            "encoder_hidden_states": torch.randn(1, 1, 1024, generator=g),
            "added_time_ids": torch.tensor([[12.5, 31.0, 18.0]]),
        }
    else:
        with torch.device("meta"):
            unet = UNetSpatioTemporalConditionModel(**kwargs)
        unet.load_state_dict(load_file(weights), assign=True)
        unet.eval()
        io = load_file(io_path)
    wall, cpu = [], []
    with torch.inference_mode():
        for _ in range(args.runs + 1):  # the first run warms up
            t0, c0 = time.perf_counter(), time.process_time()
            out = unet(io["sample"], io["timesteps"], io["encoder_hidden_states"], io["added_time_ids"]).sample
            wall.append(round(time.perf_counter() - t0, 2))
            cpu.append(round(time.process_time() - c0, 2))
    if fresh:
        io["out"] = out
        save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, weights)
        save_file({k: v.contiguous().float() for k, v in io.items()}, io_path)
        (args.out / "config.json").write_text(json.dumps(SVD_XT, indent=2) + "\n")
    timing = {
        "torch": torch.__version__,
        "threads": args.threads,
        "params": sum(p.numel() for p in unet.parameters()),
        "sample": list(io["sample"].shape),
        "warmup_s": wall[0],
        "forward_wall_s": wall[1:],
        "forward_cpu_s": cpu[1:],
        "rel_error_vs_stored": ((out - io["out"]).norm() / io["out"].norm()).item(),
    }
    (args.out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
