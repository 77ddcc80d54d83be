"""Tiny modules and synthetic batches for the training tests."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from aether.data.synthetic import render_clip
from aether.geometry import relative_poses
from aether.models.testing import tiny_module_kwargs
from aether.training.module import AetherModule

HEIGHT, WIDTH, FRAMES = 48, 64, 9


class LossRecorder(Callback):
    """``losses[global_step]``: the training loss of each step (this rank's)."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step] = float(outputs["loss"])


DISTRIBUTED_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def subprocess_environ(**extra: str) -> dict[str, str]:
    """This environment without launcher variables (a distributed run in this process leaves
    LOCAL_RANK behind, and a child seeing it would wait for ranks nobody starts), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED_VARIABLES}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture
def isolated_environ():
    """Undo what a distributed run in the test process writes into ``os.environ``."""
    before = dict(os.environ)
    yield
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)


def cpu_trainer(root, max_steps: int, **overrides) -> L.Trainer:
    """A quiet CPU trainer without validation or logger, checkpointing only through a given
    ModelCheckpoint (``overrides`` win)."""
    callbacks = overrides.get("callbacks") or []
    kwargs = {
        "accelerator": "cpu",
        "devices": 1,
        "max_steps": max_steps,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks),
        "default_root_dir": root,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**kwargs, **overrides})


def make_module(**overrides) -> AetherModule:
    kwargs = tiny_module_kwargs(height=HEIGHT, width=WIDTH, frames=17)
    kwargs.update(overrides)
    return AetherModule(**kwargs)


def synthetic_batch(seeds=(0, 1), frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> dict:
    """A clip dict batch rendered by the synthetic generator (poses relative to frame 0)."""
    clips = [render_clip(s, num_frames=frames, height=height, width=width) for s in seeds]
    video = (
        torch.from_numpy(np.stack([c.rgb for c in clips])).float().div(127.5).sub(1).permute(0, 1, 4, 2, 3)
    )
    depth = torch.from_numpy(np.stack([c.depth for c in clips])).float()
    c2w = relative_poses(torch.from_numpy(np.stack([c.c2w for c in clips])).float())
    return {
        "video": video,
        "depth": depth,
        "valid": depth > 0,
        "K": torch.from_numpy(np.stack([c.K for c in clips])).float(),
        "c2w": c2w,
        "fps": torch.tensor([float(c.fps) for c in clips]),
        "key": [f"clip{s}" for s in seeds],
    }


@pytest.fixture(scope="session")
def batch() -> dict:
    return synthetic_batch()


@pytest.fixture
def module_factory():
    """``make_module(**overrides)``: a tiny AetherModule on the ``tiny`` codec."""
    return make_module


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> dict[str, str]:
    """Train and validation shard folders of 17-frame 48x64 synthetic clips at 24 fps."""
    from aether.data import synthesize_shards

    root = tmp_path_factory.mktemp("shards")
    common = {"frames": 17, "fps": 24.0, "height": HEIGHT, "width": WIDTH, "maxcount": 2, "progress": False}
    synthesize_shards(root / "train", 4, seed=0, prefix="train", **common)
    synthesize_shards(root / "val", 2, seed=500, prefix="val", **common)
    return {"train": str(root / "train"), "val": str(root / "val")}


def datamodule(shards: dict[str, str], batch_size: int = 2, seed: int = 0):
    from aether.data import AetherDataModule

    return AetherDataModule(
        train_urls=shards["train"],
        val_urls=shards["val"],
        height=HEIGHT,
        width=WIDTH,
        frames=[17],
        fps=[24, 12],
        batch_size=batch_size,
        num_workers=0,
        shuffle_buffer=4,
        seed=seed,
    )


@pytest.fixture
def datamodule_factory():
    return datamodule


@pytest.fixture
def trainer_factory():
    """``cpu_trainer(root, max_steps, **overrides)``."""
    return cpu_trainer
