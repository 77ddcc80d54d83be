"""Inference: ``AetherPipeline`` (reconstruct / predict / plan) around ``AetherSampler`` (the denoising
loop and its ``SamplingPolicy``), ``Trajectory`` and the ``World4D`` result."""

from aether.pipeline.pipeline import AetherPipeline
from aether.pipeline.sampler import DEFAULT, UPSTREAM, AetherSampler, SampleOutput, SamplingPolicy
from aether.pipeline.trajectory import Trajectory
from aether.pipeline.world import World4D

__all__ = [
    "DEFAULT",
    "UPSTREAM",
    "AetherPipeline",
    "AetherSampler",
    "SampleOutput",
    "SamplingPolicy",
    "Trajectory",
    "World4D",
]
