"""Inference: ``AetherPipeline`` (reconstruct / predict / plan), ``Trajectory`` and the ``World4D`` result.

Names load on first use, so ``aether reconstruct --help`` parses its options without importing torch.
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "AetherPipeline": "aether.pipeline.pipeline",
    "Trajectory": "aether.pipeline.trajectory",
    "World4D": "aether.pipeline.world",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes("aether.pipeline", _LAZY)
