"""Camera paths for long worlds: trajectories that leave and come back, and where they revisit."""

from __future__ import annotations

import numpy as np


def out_and_back(c2w: np.ndarray) -> np.ndarray:
    """The path (M, 4, 4) followed out and then back: (2M − 1, 4, 4), frame M − 1 + i at the pose of
    frame M − 1 − i (so the last frame is the first pose again)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or len(c2w) < 2:
        raise ValueError(f"c2w: expected (M, 4, 4) with M >= 2, got {c2w.shape}")
    return np.concatenate([c2w, c2w[-2::-1]])


def revisits(num_out: int) -> np.ndarray:
    """(M − 1, 2) pairs (later frame, earlier frame at the same pose) of an :func:`out_and_back` path
    built from ``num_out`` outward poses."""
    if num_out < 2:
        raise ValueError(f"num_out: expected >= 2, got {num_out}")
    later = np.arange(num_out, 2 * num_out - 1)
    return np.stack([later, 2 * (num_out - 1) - later], axis=1)


def out_and_back_frames(num_frames: int) -> int:
    """The outward poses M of an out-and-back path of ``num_frames`` = 2M − 1 frames (odd, >= 3)."""
    if num_frames < 3 or num_frames % 2 == 0:
        raise ValueError(f"num_frames: expected an odd count >= 3 for an out-and-back path, got {num_frames}")
    return (num_frames + 1) // 2
