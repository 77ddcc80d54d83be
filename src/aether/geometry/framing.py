"""Framing an image for a model size: resize to cover it, then crop. One home for both roundings,
used by training (the DataModule) and inference (the pipeline) alike."""

from __future__ import annotations

import math

__all__ = ["cover_size", "crop_origin"]


def cover_size(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int]:
    """Size (H, W) of a ``height × width`` image resized, keeping its aspect, to cover
    ``target_h × target_w`` (each side rounded to the nearest pixel, never below the target)."""
    if min(height, width, target_h, target_w) <= 0:
        raise ValueError(
            f"sizes: expected positive image and target sizes, got {height}x{width} -> {target_h}x{target_w}"
        )
    scale = max(target_h / height, target_w / width)
    return max(target_h, round(height * scale)), max(target_w, round(width * scale))


def crop_origin(size: int, target: int, offset: float = 0.5) -> int:
    """First pixel of a ``target``-long crop of a ``size``-long side: ``floor((size - target) · offset)``.

    ``offset`` in [0, 1] places the crop (0 the start, 0.5 the centre, 1 the end); the centre of
    an odd margin leaves the extra pixel after the crop.
    """
    if not 0 <= target <= size:
        raise ValueError(f"crop: expected 0 <= target <= size, got target {target} and size {size}")
    if not 0.0 <= offset <= 1.0:
        raise ValueError(f"offset: expected a value in [0, 1], got {offset}")
    return math.floor((size - target) * offset)
