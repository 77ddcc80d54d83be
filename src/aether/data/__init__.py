"""Data: the synthetic 4D world generator, WebDataset shards and the streaming DataModule.

Submodules load on first use (``aether.data.AetherDataModule`` imports Lightning).
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "AetherDataModule": "aether.data.datamodule",
    "ClipStream": "aether.data.datamodule",
    "ClipLoader": "aether.data.datamodule",
    "Plausibility": "aether.data.shards",
    "ShardReader": "aether.data.shards",
    "iter_samples": "aether.data.shards",
    "write_shards": "aether.data.shards",
    "validate_sample": "aether.data.shards",
    "SyntheticClip": "aether.data.synthetic",
    "render_clip": "aether.data.synthetic",
    "synthesize_shards": "aether.data.commands",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes("aether.data", _LAZY)
