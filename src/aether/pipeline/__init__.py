"""Inference: ``AetherPipeline`` (reconstruct / predict / plan) around ``AetherSampler`` (the denoising
loop and its ``SamplingPolicy``), ``Trajectory`` and the ``World4D`` result.

Names load on first use, so ``aether reconstruct --help`` parses its options without importing torch.
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "DEFAULT": "aether.pipeline.sampler",
    "UPSTREAM": "aether.pipeline.sampler",
    "AetherPipeline": "aether.pipeline.pipeline",
    "AetherSampler": "aether.pipeline.sampler",
    "SampleOutput": "aether.pipeline.sampler",
    "SamplingPolicy": "aether.pipeline.sampler",
    "Trajectory": "aether.pipeline.trajectory",
    "World4D": "aether.pipeline.world",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes("aether.pipeline", _LAZY)
