"""Depth ⇄ disparity, with the one disparity floor shared by training and inference.

Disparity is 1 / depth on valid pixels (0 elsewhere). Decoded disparity below
:data:`MIN_DISPARITY` (in units of the clip's dmax, i.e. farther than 1000× the nearest point) is
invalid: depth 0 there. The disparity codec, the training losses and the pipeline all use these
functions, so a pixel is valid for the same reason everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aether.geometry import buffers

MIN_DISPARITY = 1e-3
"""Smallest normalised disparity decoded as valid depth."""


def _check_float(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a float tensor, got {got}")


def check_dmax_values(dmax: Tensor) -> Tensor:
    """``dmax`` (any shape) unchanged when every value is finite and > 0; ValueError listing them
    otherwise. The one check behind every dmax argument (codecs and raymaps)."""
    if not bool((torch.isfinite(dmax) & (dmax > 0)).all()):
        raise ValueError(f"dmax: expected finite values > 0, got {dmax.tolist()}")
    return dmax


def disparity_validity(disparity: Tensor, floor: float = MIN_DISPARITY) -> Tensor:
    """Bool mask (same shape) of finite disparity at or above ``floor``."""
    _check_float(disparity, "disparity")
    return torch.isfinite(disparity) & (disparity >= floor)


def disparity_to_depth(disparity: Tensor, floor: float = MIN_DISPARITY) -> tuple[Tensor, Tensor]:
    """Depth 1/disparity where the disparity is valid (>= ``floor``, finite), 0 elsewhere.

    Args:
        disparity: (...) float disparity.
        floor: smallest valid disparity.

    Returns:
        depth (...) and valid (...) bool. Differentiable where valid. Without autograd, large CPU
        results live in numpy-allocated memory (:mod:`aether.geometry.buffers`: huge pages).
    """
    if torch.is_grad_enabled() and disparity.requires_grad:
        valid = disparity_validity(disparity, floor)
        depth = torch.where(valid, 1.0 / torch.where(valid, disparity, torch.ones_like(disparity)), 0.0)
        return depth, valid
    return _disparity_to_depth_fast(disparity, floor)


_CHUNK = 1 << 20
"""Elements per pass and thread: a few MiB, in cache between the passes, few parallel regions."""


def _disparity_to_depth_fast(disparity: Tensor, floor: float) -> tuple[Tensor, Tensor]:
    """The same values as the differentiable path in a few cache-sized passes: non-finite -> 0, below the
    floor -> +inf (``threshold`` keeps x > the float just below ``floor``, i.e. x >= floor), then 1/x, so
    every invalid pixel becomes exactly +0 and ``valid`` is ``depth != 0`` (1/x of a finite float32 is
    never 0)."""
    _check_float(disparity, "disparity")
    below = torch.nextafter(
        torch.tensor(floor, dtype=disparity.dtype), torch.tensor(-float("inf"), dtype=disparity.dtype)
    ).item()
    source = disparity.contiguous().reshape(-1)
    depth = buffers.empty(source.shape, disparity.dtype, disparity.device)
    valid = buffers.empty(source.shape, torch.bool, disparity.device)
    chunk = _CHUNK * torch.get_num_threads()
    for start in range(0, source.numel(), chunk):
        part = depth[start : start + chunk]
        torch.nan_to_num(source[start : start + chunk], nan=0.0, posinf=0.0, neginf=0.0, out=part)
        torch.nn.functional.threshold(part, below, float("inf"), inplace=True)
        part.reciprocal_()
        valid[start : start + chunk].copy_(part)
    return depth.reshape(disparity.shape), valid.reshape(disparity.shape)


def depth_to_disparity(depth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Disparity 1/depth on valid pixels (``valid``, default finite depth > 0), 0 elsewhere.

    Args:
        depth: (...) float depth.
        valid: optional bool mask of the same shape.
    """
    _check_float(depth, "depth")
    usable = torch.isfinite(depth) & (depth > 0)
    if valid is not None:
        if valid.shape != depth.shape:
            raise ValueError(f"valid: expected shape {tuple(depth.shape)}, got {tuple(valid.shape)}")
        usable = usable & valid.bool()
    return torch.where(usable, 1.0 / torch.where(usable, depth, torch.ones_like(depth)), 0.0)


def fill_invalid_depth(depth: Tensor, valid: Tensor) -> Tensor:
    """``depth`` (...) with its invalid pixels (``valid`` False, same shape) set to the largest
    valid depth (the sky / far field; 1 when nothing is valid): how a prediction is scored where
    the model gave no depth, in training validation and in the benchmarks alike."""
    _check_float(depth, "depth")
    if valid.shape != depth.shape:
        raise ValueError(f"valid: expected shape {tuple(depth.shape)}, got {tuple(valid.shape)}")
    valid = valid.bool()
    far = depth[valid].max() if bool(valid.any()) else torch.ones((), dtype=depth.dtype, device=depth.device)
    return torch.where(valid, depth, far)
