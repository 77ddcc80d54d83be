"""Tiny, randomly initialised components in the hub layout, for tests, benchmarks and CPU trainings.

``save_tiny_base(dir)`` writes a CogVideoX-I2V-like base (``vae/``, ``scheduler/``,
``tokenizer/``, ``text_encoder/``, ``transformer/``) and ``save_tiny_aether(dir)`` an
AetherV1-like model (``transformer/`` with in 96 / out 56). They load through the same
``from_pretrained`` code as the released weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from aether.models.transformer import AetherTransformer, tiny_config

# scheduler/scheduler_config.json of THUDM/CogVideoX-5b-I2V
COGVIDEOX_5B_I2V_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
    "trained_betas": None,
}

TINY_TEXT_LENGTH = 8
TINY_TEXT_DIM = 32


def tiny_vae_config(height: int = 32, width: int = 48) -> dict[str, Any]:
    """A 4-level CogVideoX VAE (spatial ×8, temporal ×4) with 16 latent channels and 8 features."""
    return {
        "down_block_types": ["CogVideoXDownBlock3D"] * 4,
        "up_block_types": ["CogVideoXUpBlock3D"] * 4,
        "block_out_channels": [8, 8, 8, 8],
        "latent_channels": 16,
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "temporal_compression_ratio": 4,
        "sample_height": height,
        "sample_width": width,
        "scaling_factor": 0.7,
    }


def build_tiny_tokenizer():
    """A T5 tokenizer (Unigram, ``<pad>``=0, ``</s>``=1, ``<unk>``=2) built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    model = Tokenizer(models.Unigram(vocab, unk_id=2))
    model.pre_tokenizer = pre_tokenizers.Metaspace()
    model.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5Tokenizer(
        tokenizer_object=model, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0
    )


def build_tiny_text_encoder(vocab_size: int = 30):
    """A 2-layer T5 encoder with d_model = 32."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size,
        d_model=TINY_TEXT_DIM,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    return T5EncoderModel(config).eval()


def save_tiny_base(path: str | os.PathLike, *, height: int = 32, width: int = 48, seed: int = 0) -> Path:
    """Write a tiny CogVideoX-I2V-like base model (in 32 / out 16 transformer) at ``path``."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel

    root = Path(path)
    torch.manual_seed(seed)
    AutoencoderKLCogVideoX(**tiny_vae_config(height, width)).save_pretrained(root / "vae")
    CogVideoXDPMScheduler(**COGVIDEOX_5B_I2V_SCHEDULER).save_pretrained(root / "scheduler")
    tokenizer = build_tiny_tokenizer()
    tokenizer.save_pretrained(root / "tokenizer")
    build_tiny_text_encoder(len(tokenizer)).save_pretrained(root / "text_encoder")
    base_config = tiny_config(
        in_channels=32,
        out_channels=16,
        sample_height=height // 8,
        sample_width=width // 8,
        text_embed_dim=TINY_TEXT_DIM,
        max_text_seq_length=TINY_TEXT_LENGTH,
    )
    CogVideoXTransformer3DModel.from_config(base_config).save_pretrained(root / "transformer")
    return root


def tiny_aether_transformer(*, height: int = 32, width: int = 48, seed: int = 0, **overrides: Any):
    """A randomly initialised AetherV1-shaped (96 → 56) tiny transformer for videos of height × width."""
    torch.manual_seed(seed)
    config = tiny_config(
        sample_height=height // 8,
        sample_width=width // 8,
        text_embed_dim=TINY_TEXT_DIM,
        max_text_seq_length=TINY_TEXT_LENGTH,
        **overrides,
    )
    return AetherTransformer.from_config(config)


def save_tiny_aether(path: str | os.PathLike, *, height: int = 32, width: int = 48, seed: int = 0) -> Path:
    """Write a tiny AetherV1-layout model (``transformer/``) at ``path``."""
    root = Path(path)
    tiny_aether_transformer(height=height, width=width, seed=seed).save_pretrained(root / "transformer")
    return root


def tiny_module_kwargs(*, height: int = 48, width: int = 64, frames: int = 17) -> dict[str, Any]:
    """Keyword arguments of a tiny ``AetherModule`` on the weight-free ``tiny`` codec (one
    transformer layer, width 32) for clips of ``frames`` × ``height`` × ``width``."""
    return {
        "transformer": {
            "tiny": {
                "num_layers": 1,
                "num_attention_heads": 2,
                "attention_head_dim": 16,
                "text_embed_dim": 8,
                "max_text_seq_length": 2,
                "sample_height": height // 8,
                "sample_width": width // 8,
                "sample_frames": frames,
            }
        },
        "latent_backend": "tiny",
        "backend_kwargs": {"spatial_factor": 8, "latent_channels": 16},
        "optimizer": {"lr": 3e-3},
        "lr_scheduler": {"total_steps": 1000, "pct_start": 0.01},
        "seed": 0,
    }
