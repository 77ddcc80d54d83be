"""Folding raymaps into latent frames (4 frames per latent frame, 4 x 6 = 24 channels) and back.

Layouts:

- ``"aetherv1"`` (the released checkpoint): when T % 4 != 0 the first (4 - T % 4) frames are repeated
  at the front, then ``b (n t) c h w -> b t (n c) h w`` with n = 4, so latent frame t holds padded frames
  t, t + F, t + 2F, t + 3F (strided).
- ``"consecutive"`` (the paper's description, aligned with the causal video VAE): frame 0 is repeated
  to fill latent frame 0, and latent frame t >= 1 holds frames 4t - 3 ... 4t.

Unfolding drops the padding and keeps the last T frames; both layouts are exact inverses.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["FOLD_LAYOUTS", "fold_raymap", "latent_frame_count", "unfold_raymap"]

FOLD_LAYOUTS = ("aetherv1", "consecutive")
_GROUP = 4


def latent_frame_count(num_frames: int, temporal_factor: int = 4) -> int:
    """Number of latent frames F = (T - 1) // temporal_factor + 1 of a T-frame clip."""
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames: expected a positive integer, got {num_frames!r}")
    if int(temporal_factor) != temporal_factor or temporal_factor < 1:
        raise ValueError(f"temporal_factor: expected a positive integer, got {temporal_factor!r}")
    return (int(num_frames) - 1) // int(temporal_factor) + 1


def _check_layout(layout: str) -> None:
    if layout not in FOLD_LAYOUTS:
        raise ValueError(f"layout: expected one of {FOLD_LAYOUTS}, got {layout!r}")


def fold_raymap(raymap: Tensor, layout: str = "aetherv1") -> Tensor:
    """Fold a raymap (B, T, 6, h, w) into latent frames (B, F, 24, h, w), F = (T - 1) // 4 + 1."""
    if not isinstance(raymap, Tensor) or raymap.ndim != 5 or raymap.shape[2] != 6:
        shape = tuple(raymap.shape) if isinstance(raymap, Tensor) else type(raymap).__name__
        raise ValueError(f"raymap: expected shape (B, T, 6, h, w), got {shape}")
    return fold_frames(raymap, layout)


def fold_frames(frames: Tensor, layout: str = "aetherv1") -> Tensor:
    """Fold per-frame maps (B, T, C, h, w) into latent frames (B, F, 4C, h, w), F = (T - 1) // 4 + 1,
    exactly as raymaps are folded (the same padding and grouping for any channel count)."""
    _check_layout(layout)
    if not isinstance(frames, Tensor) or frames.ndim != 5:
        shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"frames: expected shape (B, T, C, h, w), got {shape}")
    raymap = frames
    b, t, c, h, w = raymap.shape
    f = latent_frame_count(t)
    pad = _GROUP * f - t
    if layout == "aetherv1":
        if pad > t:
            raise ValueError(
                f"raymap: the aetherv1 layout needs at least {pad} frames to pad with, got T = {t}"
            )
        padded = raymap if pad == 0 else raymap.new_empty(b, t + pad, c, h, w)
        if pad:
            padded[:, :pad] = raymap[:, :pad]
            padded[:, pad:] = raymap
        # (n t) -> t (n c): padded frame n * F + t goes to latent t, channels n * 6 ... n * 6 + 5
        return padded.reshape(b, _GROUP, f, c, h, w).transpose(1, 2).reshape(b, f, _GROUP * c, h, w)
    padded = raymap if pad == 0 else raymap.new_empty(b, t + pad, c, h, w)
    if pad:
        padded[:, :pad] = raymap[:, :1]
        padded[:, pad:] = raymap
    return padded.reshape(b, f, _GROUP * c, h, w)


def unfold_raymap(latents: Tensor, num_frames: int, layout: str = "aetherv1") -> Tensor:
    """Unfold latent frames (B, F, 24, h, w) back to a raymap (B, T, 6, h, w), T = ``num_frames``."""
    _check_layout(layout)
    if not isinstance(latents, Tensor) or latents.ndim != 5 or latents.shape[2] != _GROUP * 6:
        shape = tuple(latents.shape) if isinstance(latents, Tensor) else type(latents).__name__
        raise ValueError(f"latents: expected shape (B, F, 24, h, w), got {shape}")
    b, f, _, h, w = latents.shape
    if latent_frame_count(num_frames) != f:
        raise ValueError(
            f"num_frames: expected a frame count with (T - 1) // 4 + 1 = {f} latent frames, "
            f"got T = {num_frames}"
        )
    if layout == "aetherv1":
        frames = latents.reshape(b, f, _GROUP, 6, h, w).transpose(1, 2).reshape(b, _GROUP * f, 6, h, w)
    else:
        frames = latents.reshape(b, _GROUP * f, 6, h, w)
    return frames[:, _GROUP * f - num_frames :]
