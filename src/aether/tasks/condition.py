"""Condition latents [color | raymap] for a batch of tasks, built without per-sample loops."""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor


class ColorMode(IntEnum):
    """What the color condition of a sample holds."""

    OBSERVATION_GOAL = 0  # observation in latent frame 0, goal in the last (planning)
    OBSERVATION = 1  # observation in latent frame 0 (prediction)
    VIDEO = 2  # the whole video (reconstruction)
    NONE = 3  # zeros


COLOR_INPUTS = ("observation", "goal", "video", "context")
"""The colour inputs a task can be given, in the order a sampler encodes them (the reference's; then
"context", the leading frames a rollout continues from)."""


def color_inputs(video: Tensor) -> dict[str, Tensor]:
    """The colour inputs cut from a clip's video (T,3,H,W): "observation" its first frame (3,H,W),
    "goal" its last, "video" the whole clip."""
    return {"observation": video[0], "goal": video[-1], "video": video}


def given_frames(color_mode: ColorMode, num_frames: int, context_frames: int = 1) -> tuple[int, ...]:
    """The frames of a ``num_frames`` clip whose colour a task of ``color_mode`` is given; with
    ``context_frames`` k > 1 the observation modes are also given the leading frames 0 … 4(k−1)."""
    lead = tuple(range(min(4 * (int(context_frames) - 1) + 1, num_frames)))
    return {
        ColorMode.OBSERVATION_GOAL: tuple(dict.fromkeys((*lead, num_frames - 1))),
        ColorMode.OBSERVATION: lead,
        ColorMode.VIDEO: tuple(range(num_frames)),
        ColorMode.NONE: (),
    }[ColorMode(color_mode)]


def _check_latents(name: str, value: Tensor, frames: int | None) -> None:
    if not isinstance(value, Tensor) or value.ndim != 5 or (frames is not None and value.shape[1] != frames):
        expected = f"(B,{frames if frames is not None else 'F'},C,h,w)"
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"expected {name} latents of shape {expected}, got {shape}")


def compose_condition(
    color_mode: Tensor,
    keep_action: Tensor,
    *,
    video: Tensor | None = None,
    observation: Tensor | None = None,
    goal: Tensor | None = None,
    raymap: Tensor | None = None,
    num_latent_frames: int | None = None,
    raymap_channels: int = 24,
    context: Tensor | None = None,
    context_frames: Tensor | None = None,
) -> Tensor:
    """Condition latents per sample: color condition by ``color_mode``, raymap kept or zeroed.

    Color condition (channels 0:Cc) per sample b:
    ``OBSERVATION_GOAL``: observation in latent frame 0, goal in frame F-1, zeros elsewhere;
    ``OBSERVATION``: observation in frame 0, zeros elsewhere; ``VIDEO``: the video latents;
    ``NONE``: zeros. Raymap condition (channels Cc:Cc+Cr): the raymap latents where
    ``keep_action``, zeros elsewhere (all zeros when ``raymap`` is None).

    When ``observation`` or ``goal`` is None the first / last latent frame of ``video`` stands in.

    Context frames: in the ``OBSERVATION`` and ``OBSERVATION_GOAL`` modes, latent frames
    1 … k−1 (k = ``context_frames[b]``) also hold colour: the matching frames of ``context`` (default
    ``video``), the last generated frames of a rollout. Frame 0 stays the observation and the goal
    stays in frame F−1.

    Args:
        color_mode: (B,) integer ``ColorMode`` values.
        keep_action: (B,) bool.
        video: (B,F,Cc,h,w) latents of the whole clip.
        observation: (B,1,Cc,h,w) latents of the observation image.
        goal: (B,1,Cc,h,w) latents of the goal image.
        raymap: (B,F,Cr,h,w) raymap latents, or None.
        num_latent_frames: F when ``video`` is not given.
        raymap_channels: Cr (24 for AetherV1).
        context: (B,K,Cc,h,w) latents of the leading frames (default: ``video``).
        context_frames: (B,) integers in [1, F], the context latent frames per sample (None: 1).

    Returns:
        (B,F,Cc+Cr,h,w) in the color latents' dtype.
    """
    if video is not None:
        _check_latents("video", video, num_latent_frames)
        num_latent_frames = video.shape[1]
        if observation is None:
            observation = video[:, :1]
        if goal is None:
            goal = video[:, -1:]
    if num_latent_frames is None or num_latent_frames < 1:
        raise ValueError(f"expected num_latent_frames >= 1 (or video latents), got {num_latent_frames}")
    ref = next((x for x in (video, observation, goal) if x is not None), None)
    if ref is None:
        raise ValueError("expected at least one of video, observation or goal latents, got none")
    for name, value in (("observation", observation), ("goal", goal)):
        if value is not None:
            _check_latents(name, value, 1)
    batch_size, _, channels, h, w = ref.shape
    for name, value in (("video", video), ("observation", observation), ("goal", goal)):
        if value is not None and (value.shape[0], *value.shape[2:]) != (batch_size, channels, h, w):
            raise ValueError(
                f"expected {name} latents with (B,C,h,w)={(batch_size, channels, h, w)}, "
                f"got {(value.shape[0], *value.shape[2:])}"
            )
    for name, value, dtype in (("color_mode", color_mode, None), ("keep_action", keep_action, torch.bool)):
        if not isinstance(value, Tensor) or value.shape != (batch_size,) or (dtype and value.dtype != dtype):
            got = (tuple(value.shape), value.dtype) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"expected {name} of shape ({batch_size},){' bool' if dtype else ''}, got {got}")

    mode = color_mode.to(ref.device)
    needs = {"video": mode == ColorMode.VIDEO, "goal": mode == ColorMode.OBSERVATION_GOAL}
    needs["observation"] = needs["goal"] | (mode == ColorMode.OBSERVATION)
    for name, value in (("video", video), ("observation", observation), ("goal", goal)):
        if value is None and bool(needs[name].any()):
            raise ValueError(f"expected {name} latents for the samples whose color mode uses them, got None")

    if num_latent_frames < 2 and bool(needs["goal"].any()):
        raise ValueError(
            f"expected >= 2 latent frames for an observation and a goal, got {num_latent_frames}"
        )

    frame = torch.arange(num_latent_frames, device=ref.device)
    zeros = ref.new_zeros(batch_size, num_latent_frames, channels, h, w)
    color = zeros
    if observation is not None:
        at = needs["observation"][:, None] & (frame == 0)[None]
        color = torch.where(at[..., None, None, None], observation.to(ref.dtype), color)
    if context_frames is not None:
        color = _place_context(
            color, needs["observation"], context_frames, context if context is not None else video
        )
    if goal is not None:
        at = needs["goal"][:, None] & (frame == num_latent_frames - 1)[None]
        color = torch.where(at[..., None, None, None], goal.to(ref.dtype), color)
    if video is not None:
        color = torch.where(needs["video"][:, None, None, None, None], video, color)

    if raymap is None:
        action = ref.new_zeros(batch_size, num_latent_frames, raymap_channels, h, w)
    else:
        expected = (batch_size, num_latent_frames, raymap_channels, h, w)
        if not isinstance(raymap, Tensor) or tuple(raymap.shape) != expected:
            shape = tuple(raymap.shape) if isinstance(raymap, Tensor) else type(raymap).__name__
            raise ValueError(f"expected raymap latents of shape {expected}, got {shape}")
        keep = keep_action.to(ref.device)[:, None, None, None, None]
        action = torch.where(keep, raymap.to(ref.dtype), 0.0)
    return torch.cat([color, action], dim=2)


def _place_context(color: Tensor, uses: Tensor, context_frames: Tensor, context: Tensor | None) -> Tensor:
    """``color`` (B,F,Cc,h,w) with latent frames 1 … k_b − 1 taken from ``context`` where ``uses``."""
    batch_size, num_latent_frames = color.shape[:2]
    if not isinstance(context_frames, Tensor) or tuple(context_frames.shape) != (batch_size,):
        got = (
            tuple(context_frames.shape)
            if isinstance(context_frames, Tensor)
            else type(context_frames).__name__
        )
        raise ValueError(f"expected context_frames of shape ({batch_size},), got {got}")
    counts = context_frames.to(color.device).long()
    longest = int(counts.max()) if batch_size else 1
    if batch_size and (int(counts.min()) < 1 or longest > num_latent_frames):
        raise ValueError(f"expected context_frames in [1, {num_latent_frames}], got {counts.tolist()}")
    if longest <= 1:
        return color
    if context is None:
        raise ValueError(f"expected context (or video) latents for {longest} context frames, got None")
    _check_latents("context", context, None)
    if context.shape[1] < longest or (context.shape[0], *context.shape[2:]) != (batch_size, *color.shape[2:]):
        raise ValueError(
            f"expected context latents (B,>={longest},Cc,h,w) with (B,Cc,h,w)="
            f"{(batch_size, *color.shape[2:])}, got {tuple(context.shape)}"
        )
    frame = torch.arange(num_latent_frames, device=color.device)
    at = uses[:, None] & (frame >= 1)[None] & (frame[None] < counts[:, None])  # (B, F)
    padded = color.new_zeros(color.shape)
    take = min(num_latent_frames, context.shape[1])
    padded[:, :take] = context[:, :take].to(color.dtype)
    return torch.where(at[..., None, None, None], padded, color)
