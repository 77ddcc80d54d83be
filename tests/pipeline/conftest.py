"""Tiny saved models in the hub layout, loaded through the real loading code."""

import numpy as np
import pytest

from aether.models.testing import save_tiny_aether, save_tiny_base
from aether.pipeline import AetherPipeline

HEIGHT, WIDTH = 32, 48


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    base = save_tiny_base(root / "base", height=HEIGHT, width=WIDTH)
    aether = save_tiny_aether(root / "aether", height=HEIGHT, width=WIDTH, seed=1)
    return base, aether


@pytest.fixture(scope="session")
def pipe(tiny_dirs):
    base, aether = tiny_dirs
    pipeline = AetherPipeline.from_pretrained(aether, base=base)
    pipeline.progress = False
    return pipeline


@pytest.fixture(scope="session")
def upstream_pipe(tiny_dirs):
    base, aether = tiny_dirs
    pipeline = AetherPipeline.from_pretrained(aether, base=base, mode="upstream")
    pipeline.progress = False
    return pipeline


def _random_video(num_frames: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """Blocky random uint8 frames (T, H, W, 3)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((num_frames, height // 8 + 1, width // 8 + 1, 3))
    frames = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :height, :width]
    return (frames * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def random_video():
    """``random_video(num_frames, height=32, width=48, seed=0)`` -> uint8 (T, H, W, 3)."""
    return _random_video
