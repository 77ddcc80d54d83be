"""Fast stand-in clips for the shard and DataModule tests (the renderer has its own tests)."""

from __future__ import annotations

import math
import tarfile
from pathlib import Path

import numpy as np
import pytest

from aether.data.shards import write_shards


def make_sample(
    key: str, frames: int = 17, height: int = 12, width: int = 16, fps: float = 24.0, seed: int = 0
) -> dict:
    """A schema-valid clip: random colour and depth, a camera yawing and moving forward."""
    rng = np.random.default_rng(seed)
    yaw = np.linspace(0, 0.3, frames)
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = (
        np.cos(yaw),
        np.sin(yaw),
        -np.sin(yaw),
        np.cos(yaw),
    )
    c2w[:, :3, 3] = np.stack([0.1 * yaw, 0 * yaw, np.linspace(0, 1, frames)], -1)
    focal = 0.5 * width / math.tan(math.radians(30))
    K = np.tile(
        np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]]), (frames, 1, 1)
    )
    depth = rng.uniform(1.0, 5.0, (frames, height, width)).astype(np.float32)
    depth[:, 0, 0] = 0.0  # one invalid pixel per frame
    return {
        "__key__": key,
        "rgb": rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8),
        "depth": depth,
        "K": K,
        "c2w": c2w,
        "fps": fps,
        "dynamic": rng.uniform(size=(frames, height, width)) < 0.1,
        "semantic": rng.integers(0, 13, (frames, height, width)).astype(np.int32),
        "meta": {"source": {"generator": "tests"}},
    }


@pytest.fixture
def sample_factory():
    return make_sample


def _truncate_inside_member(path: Path, key: str, member: str = "depth.npy") -> None:
    """Cut the tar in the middle of ``key``'s member, as a crashed copy would."""
    with tarfile.open(path) as tar:
        info = tar.getmember(f"{key}.{member}")
    with open(path, "r+b") as f:
        f.truncate(info.offset_data + info.size // 2)


def _write_bad_shards(folder: Path) -> list[str]:
    """Three shards, 7 samples: one with NaN depth, one truncated mid-member (the shard's last)."""
    nan = make_sample("nan", seed=9)
    nan["depth"][3, 4, 5] = np.nan
    groups = [
        [make_sample("a0", seed=1), make_sample("a1", seed=2)],
        [make_sample("b0", seed=3), nan, make_sample("b2", seed=4)],
        [make_sample("c0", seed=5), make_sample("c1", seed=6)],
    ]
    shards = []
    for index, group in enumerate(groups):
        shards += write_shards(group, str(folder / f"bad{index}-%03d.tar"), validate=False)
    _truncate_inside_member(Path(shards[2]), "c1")
    return shards


@pytest.fixture
def bad_shards():
    """Writes three shards of 7 clips into a folder: "nan" has NaN depth, "c1" is truncated."""
    return _write_bad_shards
