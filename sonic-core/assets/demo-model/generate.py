#!/usr/bin/env python3
"""Writes the demo model that `sonic animate` runs when no --weights are given:
sonic-core/assets/demo-model/{model.json,weights.safetensors}.

    python sonic-core/assets/demo-model/generate.py   # in a venv made from tests/fixtures/requirements.txt

Every component of the real pipeline in a tiny configuration, with upstream key names under one
prefix per component (unet., vae., image_encoder., whisper., audio2token., audio2bucket., rife.) and
upstream config formats in model.json. The weights are the libraries' default random
initialisation from fixed seeds: the model is untrained, so its videos are noise shaped by the
portrait's latent, not a talking face. It exists so the whole pipeline (loading, encoders,
audio conditioning, the long-video scheduler, the UNet, chunked VAE decoding, the output
writers) runs on a fresh machine with nothing downloaded. Stored in f16 to stay small.

The UNet keeps SVD's block types but puts its attention only on the lower of two levels, so a
75-frame window at a 24x32 latent (the default 192-pixel short side) stays cheap on a CPU; the
window is SVD's 25 frames. The UNet carries Sonic's audio adapters (to_k_ip.0 / to_v_ip.0 on
every attn2).
"""

import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT.parents[2] / "tests" / "fixtures"))
from gen_rife import IFNet  # noqa: E402  (the fixture's IFNet, defined from the same config)
CROSS = 64  # CLIP projection = UNet cross-attention width = audio token width
WHISPER_D = 64
WHISPER_LAYERS = 2

UNET = {
    "_class_name": "UNetSpatioTemporalConditionModel",
    "_diffusers_version": "0.35.2",
    "sample_size": None,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ["DownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal"],
    "up_block_types": ["CrossAttnUpBlockSpatioTemporal", "UpBlockSpatioTemporal"],
    "block_out_channels": [32, 64],
    "addition_time_embed_dim": 16,
    "projection_class_embeddings_input_dim": 48,
    "layers_per_block": 1,
    "cross_attention_dim": CROSS,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [1, 2],
    "num_frames": 25,
}

VAE = {
    "_class_name": "AutoencoderKLTemporalDecoder",
    "_diffusers_version": "0.35.2",
    "block_out_channels": [32, 32, 32, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 1,
    "out_channels": 3,
    "sample_size": 256,
    "scaling_factor": 0.18215,
}

AUDIO2TOKEN = {"seq_len": 10, "blocks": WHISPER_LAYERS + 1, "channels": WHISPER_D,
               "intermediate_dim": 128, "output_dim": CROSS, "context_tokens": 4}
AUDIO2BUCKET = {"seq_len": 50, "blocks": 1, "channels": WHISPER_D, "clip_channels": CROSS,
                "intermediate_dim": 64, "output_dim": 1, "context_tokens": 2}


def mlp(sizes, activation_last=None):
    torch.manual_seed(sum(sizes))
    return {f"proj{i + 1}": nn.Linear(a, b) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}


def audio_modules():
    t, b = AUDIO2TOKEN, AUDIO2BUCKET
    out = {}
    layers = mlp([t["seq_len"] * t["blocks"] * t["channels"], t["intermediate_dim"], t["intermediate_dim"],
                  t["context_tokens"] * t["output_dim"]])
    for name, lin in layers.items():
        out[f"audio2token.{name}.weight"], out[f"audio2token.{name}.bias"] = lin.weight, lin.bias
    norm = nn.LayerNorm(t["output_dim"])
    out["audio2token.norm.weight"], out["audio2token.norm.bias"] = norm.weight, norm.bias
    layers = mlp([b["seq_len"] * b["blocks"] * b["channels"] + b["clip_channels"], b["intermediate_dim"],
                  b["intermediate_dim"], b["context_tokens"] * b["output_dim"]])
    for name, lin in layers.items():
        out[f"audio2bucket.{name}.weight"], out[f"audio2bucket.{name}.bias"] = lin.weight, lin.bias
    return out


def unet():
    torch.manual_seed(25)
    model = UNetSpatioTemporalConditionModel(**{k: v for k, v in UNET.items() if not k.startswith("_")})
    weights = {f"unet.{k}": v for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(32)
    for name, module in model.named_modules():
        if name.endswith("attn2"):
            hidden = module.to_q.out_features
            for which in ("to_k_ip", "to_v_ip"):
                w = torch.randn(hidden, CROSS, generator=g) / CROSS**0.5
                weights[f"unet.{name}.processor.{which}.0.weight"] = w
    return weights


def vae():
    torch.manual_seed(8)
    model = AutoencoderKLTemporalDecoder(**{k: v for k, v in VAE.items() if not k.startswith("_")})
    return {f"vae.{k}": v for k, v in model.state_dict().items()}


def image_encoder():
    torch.manual_seed(224)
    config = CLIPVisionConfig(hidden_size=64, intermediate_size=128, projection_dim=CROSS, num_hidden_layers=2,
                              num_attention_heads=2, image_size=224, patch_size=32, hidden_act="gelu")
    model = CLIPVisionModelWithProjection(config)
    return config, {f"image_encoder.{k}": v for k, v in model.state_dict().items()}


def whisper():
    torch.manual_seed(1500)
    config = WhisperConfig(d_model=WHISPER_D, encoder_layers=WHISPER_LAYERS, encoder_attention_heads=2,
                           encoder_ffn_dim=128, num_mel_bins=80, max_source_positions=1500)
    model = WhisperEncoder(config)
    return config, {f"whisper.{k}": v for k, v in model.state_dict().items()}


RIFE = {"_class_name": "IFNet", "channels": 16, "residual_groups": 2, "convs_per_group": 2,
        "scale_list": [4, 2, 1], "pad_multiple": 32, "unused_prefixes": []}


def rife():
    torch.manual_seed(90)
    net = IFNet(RIFE)
    return {f"rife.{k}": v for k, v in net.state_dict().items() if not k.startswith("block_tea.")}


def encoder_fields(config, fields):
    d = config.to_dict()
    return {k: d[k] for k in fields}


def main():
    clip_config, clip_weights = image_encoder()
    whisper_config, whisper_weights = whisper()
    weights = {**unet(), **vae(), **clip_weights, **whisper_weights, **audio_modules(), **rife()}
    weights = {k: v.detach().to(torch.float16).contiguous() for k, v in weights.items()}
    save_file(weights, OUT / "weights.safetensors", metadata={"format": "pt"})
    model = {
        "description": "untrained demo model: tiny configs, random weights from fixed seeds",
        "short_side": 192,
        "unet": UNET,
        "vae": VAE,
        "image_encoder": encoder_fields(clip_config, [
            "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
            "num_channels", "image_size", "patch_size", "hidden_act", "layer_norm_eps"]),
        "whisper": encoder_fields(whisper_config, [
            "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim", "num_mel_bins",
            "max_source_positions", "activation_function"]),
        "audio2token": AUDIO2TOKEN,
        "audio2bucket": AUDIO2BUCKET,
        "rife": RIFE,
    }
    (OUT / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    total = sum(v.numel() for v in weights.values())
    print(f"{len(weights)} tensors, {total / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
