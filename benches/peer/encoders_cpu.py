#!/usr/bin/env python3
"""The audio encoders at real size on the CPU, timed in PyTorch: whisper-tiny's encoder on 30 s
of audio features, and audio2token over 750 video frames (60 s). Writes the random weights,
inputs and outputs the Rust side (benches/examples/encoders_cpu.rs) loads, times and checks.

    python benches/peer/encoders_cpu.py OUT_DIR [--threads 2] [--runs 5]
    RAYON_NUM_THREADS=2 cargo run --release -p sonic-benches --example encoders_cpu -- OUT_DIR
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import WhisperConfig, WhisperForConditionalGeneration


class AudioProjModel(nn.Module):
    def __init__(self, seq_len=10, blocks=5, channels=384, intermediate_dim=1024, output_dim=1024, context_tokens=32):
        super().__init__()
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = nn.Linear(seq_len * blocks * channels, intermediate_dim)
        self.proj2 = nn.Linear(intermediate_dim, intermediate_dim)
        self.proj3 = nn.Linear(intermediate_dim, context_tokens * output_dim)
        self.norm = nn.LayerNorm(output_dim)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        x = torch.relu(self.proj1(x))
        x = torch.relu(self.proj2(x))
        return self.norm(self.proj3(x).reshape(x.shape[0], self.context_tokens, self.output_dim))


def timed(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    whisper_dir = args.out / "whisper-tiny"
    whisper_dir.mkdir(parents=True, exist_ok=True)
    # openai/whisper-tiny's architecture, random weights.
    cfg = WhisperConfig(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
                        decoder_layers=4, decoder_attention_heads=6, decoder_ffn_dim=1536, num_mel_bins=80,
                        max_source_positions=1500, vocab_size=51865)
    model = WhisperForConditionalGeneration(cfg).eval()
    model.save_pretrained(whisper_dir, safe_serialization=True)
    encoder = model.model.encoder
    proj = AudioProjModel().eval()
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(1, 80, 3000, generator=g)
    windows = torch.randn(750, 10, 5, 384, generator=g)
    with torch.inference_mode():
        hidden, whisper_s = timed(lambda: encoder(mel, output_hidden_states=True).hidden_states, args.runs)
        tokens, proj_s = timed(lambda: proj(windows), args.runs)
    save_file({k: v.contiguous() for k, v in proj.state_dict().items()}, args.out / "audio2token.safetensors")
    io = {"mel": mel, "windows": windows, "tokens": tokens, "last_hidden": hidden[-1]}
    save_file({k: v.contiguous() for k, v in io.items()}, args.out / "io.safetensors")
    timing = {"torch": torch.__version__, "threads": args.threads, "whisper_tiny_30s_s": round(whisper_s, 4),
              "audio2token_750_frames_s": round(proj_s, 4)}
    (args.out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
