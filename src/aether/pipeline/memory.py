"""The geometric memory of a rollout: a coloured point cloud, and the first window's from the image.

:class:`Memory` holds the points of the frames seen so far, lifted with their depth and cameras, and
renders them into new cameras with the splats of the model's memory condition (:func:`memory_splats`).

The first window: the given image lifted with the model's own depth of it.

A model with a memory condition ("cache") was trained on clips whose memory is their first frame lifted
with its depth and rendered into every camera of the clip. From one image there is no depth to lift,
so the model gives its own: a first pass without a memory predicts the window (its frame 0 is the
image), frame 0's disparity lifts the image (:class:`~aether.pipeline.rollout.Memory`), the cloud is
rendered into the requested cameras, and a second pass samples the window with that memory. This is
how a rollout's first window and a single prediction or plan use the memory; the depth comes from
the model, never from ground truth.

Units: the disparity is the model's normalised one (nearest point ≈ 1) and the cameras' translations
are in the same units, i.e. a trajectory's poses with their translations times its ``dmax`` (what the
action raymap encodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from aether.geometry import disparity_to_depth
from aether.modalities.base import MEMORY_INPUTS
from aether.modalities.cache import lift_frames, render_memory

__all__ = ["Memory", "lifted_image_memory", "memory_splats", "sample_with_image_memory"]


@dataclass
class Memory:
    """The coloured point cloud of the frames generated so far, in the world's global frame.

    Attributes:
        points: (N, 3); colors: (N, 3) in [-1, 1].
        stride: pixels kept per frame along each image axis (2: a quarter of them).
        radius, depth_tolerance: how it is splatted (see :func:`aether.geometry.splat_points`).
    """

    stride: int = 1
    radius: int = 1
    depth_tolerance: float = 0.2
    points: Tensor = field(default_factory=lambda: torch.zeros(0, 3))
    colors: Tensor = field(default_factory=lambda: torch.zeros(0, 3))

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def add(self, rgb: Tensor, depth: Tensor, c2w: Tensor, K: Tensor, valid: Tensor | None = None) -> None:
        """Lift frames rgb (T, H, W, 3) in [0, 1], depth (T, H, W), c2w (T, 4, 4), K (T, 3, 3)."""
        s = self.stride
        K = K.double().clone()
        K[:, :2] /= s  # pixel (i, j) of the subsampled grid is pixel (s·i, s·j): u' = u / s
        video = (rgb[:, ::s, ::s].permute(0, 3, 1, 2).double() * 2 - 1)[None]
        keep = None if valid is None else valid[None, :, ::s, ::s]
        points, colors, ok = lift_frames(
            video, depth[None, :, ::s, ::s].double(), c2w[None].double(), K[None], keep
        )
        self.points = torch.cat([self.points.double(), points[0][ok[0]]])
        self.colors = torch.cat([self.colors.double(), colors[0][ok[0]]])

    def render(self, c2w: Tensor, K: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
        """The cloud seen by cameras c2w (T, 4, 4), K (T, 3, 3): video (T, 3, H, W), mask (T, H, W)."""
        num = len(c2w)
        if not len(self):
            return torch.zeros(num, 3, height, width), torch.zeros(num, height, width, dtype=torch.bool)
        video, mask = render_memory(
            self.points[None].double(), self.colors[None].double(),
            torch.ones(1, len(self), dtype=torch.bool),
            c2w[None].double(), K[None].double(), height, width, radius=self.radius,
            depth_tolerance=self.depth_tolerance,
        )  # fmt: skip
        return video[0].float(), mask[0]


def memory_splats(sampler: Any) -> tuple[int, float]:
    """The splat radius and depth tolerance the model's memory condition was trained with (the defaults
    of :func:`~aether.modalities.render_memory` without one)."""
    codecs = sampler.conditions.codecs.values()
    codec = next((c for c in codecs if c.condition_role == "memory"), None)
    return int(getattr(codec, "radius", 1)), float(getattr(codec, "depth_tolerance", 0.2))


def lifted_image_memory(
    sampler: Any, image: Tensor, disparity: Tensor, c2w: Tensor, K: Tensor
) -> tuple[Tensor, Tensor]:
    """The image (3, H, W) in [-1, 1], lifted with its normalised disparity (H, W) from camera
    ``c2w[0]``, ``K[0]`` and rendered into all cameras c2w (T, 4, 4), K (T, 3, 3) with the splats
    of the model's memory condition.

    Returns:
        video (T, 3, H, W) in [-1, 1] (zeros where nothing is drawn) and mask (T, H, W) bool.
    """
    height, width = image.shape[-2:]
    if tuple(disparity.shape) != (height, width) or c2w.ndim != 3 or K.shape != (len(c2w), 3, 3):
        raise ValueError(
            f"expected disparity {(height, width)}, c2w (T, 4, 4) and K (T, 3, 3), got "
            f"{tuple(disparity.shape)}, {tuple(c2w.shape)} and {tuple(K.shape)}"
        )
    depth, valid = disparity_to_depth(disparity.float().cpu(), sampler.min_disparity)
    store = Memory(1, *memory_splats(sampler))
    rgb = ((image.float().cpu() + 1) / 2).permute(1, 2, 0)[None]
    store.add(rgb, depth[None], c2w[:1].cpu(), K[:1].cpu(), valid[None])
    return store.render(c2w.cpu(), K.cpu(), height, width)


def sample_with_image_memory(
    sampler: Any,
    task: str,
    *,
    observation: Tensor,
    c2w: Tensor,
    K: Tensor,
    first_pass_steps: int | None = None,
    **kwargs: Any,
) -> tuple[Any, Tensor, Tensor]:
    """Sample ``task`` with the memory of ``observation`` (3, H, W) lifted with the model's own depth.

    Args:
        sampler: an :class:`~aether.pipeline.sampler.AetherSampler` whose model has a memory
            condition and decodes disparity.
        task: a generating task ("prediction", "planning").
        observation: the image, (3, H, W) in [-1, 1].
        c2w, K: (T, 4, 4) cameras of the window in the disparity's units and (T, 3, 3) intrinsics at
            the model's size (the action the raymap encodes).
        first_pass_steps: denoising steps of the pass that gives the depth (default: as the second).
        kwargs: the sampler's other arguments (raymap, num_frames, fps, generator, ...), both passes.

    Returns:
        the second pass's :class:`~aether.pipeline.sampler.SampleOutput` and the memory it was given:
        video (T, 3, H, W) in [-1, 1] and mask (T, H, W).
    """
    if not sampler.has_memory:
        raise ValueError("an image memory needs a model with a memory condition (e.g. 'cache')")
    first_kwargs = dict(kwargs)
    if first_pass_steps is not None:
        first_kwargs["num_inference_steps"] = first_pass_steps
    first = sampler(task, observation=observation, **first_kwargs)
    if first.disparity is None:
        raise ValueError("an image memory needs a model that decodes disparity")
    video, mask = lifted_image_memory(sampler, observation, first.disparity[0], c2w, K)
    signals = {**(kwargs.pop("signals", None) or {}), **dict(zip(MEMORY_INPUTS, (video, mask)))}
    out = sampler(task, observation=observation, signals=signals, **kwargs)
    return out, video, mask
