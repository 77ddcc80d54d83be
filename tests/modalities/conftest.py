"""Fixtures for the modality tests: a tiny CogVideoX VAE saved to disk, smooth test videos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

TINY_VAE_SCALING = 0.7


@pytest.fixture(scope="session")
def tiny_vae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding a randomly initialised 4-level CogVideoX VAE under ``vae/``."""
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        block_out_channels=(32, 32, 32, 32),
        latent_channels=16,
        layers_per_block=1,
        norm_num_groups=8,
        sample_height=16,
        sample_width=24,
        scaling_factor=TINY_VAE_SCALING,
    )
    root = tmp_path_factory.mktemp("cogvideox")
    vae.save_pretrained(root / "vae")
    return root
