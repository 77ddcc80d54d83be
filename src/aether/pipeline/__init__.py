"""Inference: ``AetherPipeline`` (reconstruct / predict / plan), ``Trajectory`` and the ``World4D`` result."""

from aether.pipeline.pipeline import AetherPipeline
from aether.pipeline.trajectory import Trajectory
from aether.pipeline.world import World4D

__all__ = ["AetherPipeline", "Trajectory", "World4D"]
