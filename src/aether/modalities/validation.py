"""Input checks shared by the latent backends and the modality codecs.

Every check raises ``ValueError`` naming what was expected and what was received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from aether.geometry import latent_frame_count


def check_num_frames(num_frames: int, temporal_factor: int = 4, allowed: Sequence[int] | None = None) -> int:
    """Check that a clip of ``num_frames`` frames fits the latent temporal geometry.

    The first frame is encoded alone and the rest in groups of ``temporal_factor``, so
    ``num_frames`` must be ``temporal_factor * k + 1``; when ``allowed`` is given it must also be one
    of those values (AetherV1: 17, 25, 33, 41).

    Returns:
        The number of latent frames ``(num_frames - 1) // temporal_factor + 1``.
    """
    if num_frames < 1 or (num_frames - 1) % temporal_factor != 0:
        raise ValueError(
            f"expected a frame count of the form {temporal_factor}k+1 (1, {temporal_factor + 1}, "
            f"{2 * temporal_factor + 1}, ...), got {num_frames}"
        )
    if allowed is not None and num_frames not in allowed:
        raise ValueError(f"expected a frame count in {sorted(allowed)}, got {num_frames}")
    return latent_frame_count(num_frames, temporal_factor)


def check_spatial_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """Check that ``height`` and ``width`` are divisible by ``factor``; return the latent size."""
    if height % factor or width % factor or height < factor or width < factor:
        raise ValueError(
            f"expected height and width to be positive multiples of the spatial factor {factor}, "
            f"got {height}x{width}"
        )
    return height // factor, width // factor


def check_video(video: Tensor, name: str = "video") -> Tensor:
    """Check a float video (B,T,3,H,W) with finite values in [-1, 1] (small overshoot tolerated)."""
    if not isinstance(video, Tensor):
        raise ValueError(f"expected {name} to be a torch.Tensor, got {type(video).__name__}")
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected {name} of shape (B,T,3,H,W), got {tuple(video.shape)}")
    if not video.is_floating_point():
        raise ValueError(f"expected {name} as a floating tensor in [-1, 1], got dtype {video.dtype}")
    if video.numel():
        lo, hi = torch.aminmax(video.detach())
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            raise ValueError(f"expected finite values in {name}, got non-finite values")
        if lo < -1.05 or hi > 1.05:
            raise ValueError(
                f"expected {name} values in [-1, 1], got range [{lo.item():.3g}, {hi.item():.3g}]"
            )
    return video


def check_latents(latents: Tensor, channels: int, name: str = "latents") -> Tensor:
    """Check latents of shape (B,F,channels,h,w)."""
    if not isinstance(latents, Tensor) or latents.ndim != 5 or latents.shape[2] != channels:
        shape = tuple(latents.shape) if isinstance(latents, Tensor) else type(latents).__name__
        raise ValueError(f"expected {name} of shape (B,F,{channels},h,w), got {shape}")
    return latents


# Number of leading (batch, time) dims and trailing dims of each clip key that carries frames.
FRAME_KEYS = {"video": 3, "depth": 2, "valid": 2, "dynamic": 2, "c2w": 2, "K": 2}


def check_clip_frames(clip: Mapping[str, object], keys: Sequence[str]) -> tuple[int, int]:
    """Check that the per-frame clip entries ``keys`` share batch size B and frame count T.

    Also checks that "video", "depth", "valid" and "dynamic" share H and W.

    Returns:
        ``(B, T)``.
    """
    ref: tuple[str, tuple[int, int]] | None = None
    size_ref: tuple[str, tuple[int, int]] | None = None
    for key in keys:
        if key not in clip:
            raise ValueError(f"expected clip key {key!r}, got keys {sorted(clip)}")
        value = clip[key]
        if not isinstance(value, Tensor):
            raise ValueError(f"expected clip[{key!r}] to be a torch.Tensor, got {type(value).__name__}")
        trailing = FRAME_KEYS.get(key)
        if trailing is not None and value.ndim != 2 + trailing:
            raise ValueError(
                f"expected clip[{key!r}] with {2 + trailing} dims (B,T,...), got shape {tuple(value.shape)}"
            )
        bt = (value.shape[0], value.shape[1])
        if ref is None:
            ref = (key, bt)
        elif bt != ref[1]:
            raise ValueError(f"expected clip[{key!r}] to have (B,T)={ref[1]} like clip[{ref[0]!r}], got {bt}")
        if key in ("video", "depth", "valid", "dynamic"):
            hw = (value.shape[-2], value.shape[-1])
            if size_ref is None:
                size_ref = (key, hw)
            elif hw != size_ref[1]:
                raise ValueError(
                    f"expected clip[{key!r}] to have (H,W)={size_ref[1]} like clip[{size_ref[0]!r}], got {hw}"
                )
    if ref is None:
        raise ValueError("expected at least one clip key to check")
    return ref[1]


def image_size(clip: Mapping[str, object]) -> tuple[int, int] | None:
    """Full-resolution (H, W) of a clip: from "height"/"width", else "video", "depth" or "valid"."""
    if "height" in clip and "width" in clip:
        return int(clip["height"]), int(clip["width"])  # type: ignore[call-overload]
    for key in ("video", "depth", "valid"):
        value = clip.get(key)
        if isinstance(value, Tensor):
            return int(value.shape[-2]), int(value.shape[-1])
    return None
