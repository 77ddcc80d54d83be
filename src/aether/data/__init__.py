"""Data: the synthetic 4D world generator, WebDataset shards and the streaming DataModule.

Submodules load on first use (``aether.data.AetherDataModule`` imports Lightning).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "AetherDataModule": "aether.data.datamodule",
    "ClipStream": "aether.data.datamodule",
    "ClipLoader": "aether.data.datamodule",
    "ShardReader": "aether.data.shards",
    "iter_samples": "aether.data.shards",
    "write_shards": "aether.data.shards",
    "validate_sample": "aether.data.shards",
    "SyntheticClip": "aether.data.synthetic",
    "render_clip": "aether.data.synthetic",
    "synthesize_shards": "aether.data.commands",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'aether.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
