"""Builders of bad inputs (written in exactly the file formats the readers parse) and a time limit."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from aether.data.shards import encode_sample


def clip_sample(key: str, frames: int = 17, height: int = 8, width: int = 12, seed: int = 0, **over: Any):
    """A valid clip sample: random colours, depth in [1, 5], fx = fy = 10, camera moving along x."""
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    c2w[:, 0, 3] = np.linspace(0, 1, frames)
    K = np.array([[10.0, 0, width / 2 - 0.5], [0, 10.0, height / 2 - 0.5], [0, 0, 1]])
    sample = {
        "__key__": key,
        "rgb": rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8),
        "depth": rng.uniform(1, 5, (frames, height, width)).astype(np.float32),
        "K": np.tile(K, (frames, 1, 1)),
        "c2w": c2w,
        "fps": 12.0,
    }
    sample.update(over)
    return sample


def raw_sample(key: str = "c0", **over: Any) -> dict[str, Any]:
    """Tar members (bytes) of :func:`clip_sample`, not validated (so bad values can be written)."""
    return encode_sample(clip_sample(key, **over), rgb_codec="npy")


def set_meta(raw: dict[str, Any], **fields: Any) -> dict[str, Any]:
    meta = json.loads(raw["meta.json"])
    meta.update(fields)
    return {**raw, "meta.json": json.dumps(meta).encode()}


def write_tar(path: Path, raws: list[dict[str, Any]]) -> str:
    """A tar shard holding the raw samples' members in order (``<key>.<member>``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for raw in raws:
            for ext, data in raw.items():
                if ext.startswith("__"):
                    continue
                info = tarfile.TarInfo(f"{raw['__key__']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


@contextlib.contextmanager
def within(seconds: float):
    """Fail with TimeoutError when the body runs longer than ``seconds`` (no hang goes unnoticed)."""

    def expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
