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
        points: (N, 3); colors: (N, 3) in [-1, 1]; frame: (N,) the index of the frame each came from.
        centers, forwards: (F, 3) each added frame's camera centre and viewing direction.
        stride: pixels kept per frame along each image axis (2: a quarter of them).
        radius, depth_tolerance: how it is splatted (see :func:`aether.geometry.splat_points`).
        max_frames: render only the points of this many frames, those whose cameras are nearest the
            target cameras (centre distance + 1 − cosine of the viewing directions, the smallest over
            the targets), as memory-bank world models retrieve what is relevant to a view; None: all.
            It bounds the time a render takes however long the world grows.
    """

    stride: int = 1
    radius: int = 1
    depth_tolerance: float = 0.2
    max_frames: int | None = None
    points: Tensor = field(default_factory=lambda: torch.zeros(0, 3, dtype=torch.float64))
    colors: Tensor = field(default_factory=lambda: torch.zeros(0, 3, dtype=torch.float64))
    frame: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    centers: Tensor = field(default_factory=lambda: torch.zeros(0, 3, dtype=torch.float64))
    forwards: Tensor = field(default_factory=lambda: torch.zeros(0, 3, dtype=torch.float64))

    def __post_init__(self) -> None:
        if self.max_frames is not None and (int(self.max_frames) != self.max_frames or self.max_frames < 1):
            raise ValueError(f"max_frames: expected a positive integer or None, got {self.max_frames!r}")

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
        first = len(self.centers)
        per_frame = points.shape[1] // len(c2w)
        frame = torch.arange(first, first + len(c2w)).repeat_interleave(per_frame)
        self.points = torch.cat([self.points, points[0][ok[0]]])
        self.colors = torch.cat([self.colors, colors[0][ok[0]]])
        self.frame = torch.cat([self.frame, frame[ok[0]]])
        self.centers = torch.cat([self.centers, c2w[:, :3, 3].double()])
        self.forwards = torch.cat([self.forwards, c2w[:, :3, 2].double()])

    def retrieve(self, c2w: Tensor) -> Tensor:
        """(N,) bool: the points of the ``max_frames`` frames nearest the cameras c2w (T, 4, 4) (all
        points without a limit or with fewer frames)."""
        if self.max_frames is None or len(self.centers) <= self.max_frames:
            return torch.ones(len(self), dtype=torch.bool)
        c2w = c2w.double()
        distance = torch.cdist(self.centers, c2w[:, :3, 3])  # (F, T)
        turn = 1 - self.forwards @ c2w[:, :3, 2].T
        nearest = (distance + turn).amin(1).topk(self.max_frames, largest=False).indices
        chosen = torch.zeros(len(self.centers), dtype=torch.bool)
        chosen[nearest] = True
        return chosen[self.frame]

    def render(self, c2w: Tensor, K: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
        """The cloud seen by cameras c2w (T, 4, 4), K (T, 3, 3): video (T, 3, H, W), mask (T, H, W)."""
        num = len(c2w)
        if not len(self):
            return torch.zeros(num, 3, height, width), torch.zeros(num, height, width, dtype=torch.bool)
        chosen = self.retrieve(c2w)
        video, mask = render_memory(
            self.points[chosen][None], self.colors[chosen][None],
            torch.ones(1, int(chosen.sum()), dtype=torch.bool),
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
