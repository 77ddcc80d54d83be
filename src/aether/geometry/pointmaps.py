"""Pointmaps from depth maps, and a depth-discontinuity mask."""

from __future__ import annotations

import torch
from torch import Tensor

from aether.geometry import buffers
from aether.geometry.cameras import (
    _apply_to_grid,
    _grid_terms,
    check_intrinsics,
    check_poses,
    intrinsics_inverse,
)

__all__ = ["depth_edge_mask", "depth_to_points"]


def _check_depth(depth: Tensor) -> None:
    if not isinstance(depth, Tensor) or depth.ndim < 2 or not depth.is_floating_point():
        desc = f"{tuple(depth.shape)} {depth.dtype}" if isinstance(depth, Tensor) else type(depth).__name__
        raise ValueError(f"depth: expected a floating point tensor of shape (..., H, W), got {desc}")


def depth_to_points(
    depth: Tensor, K: Tensor, c2w: Tensor | None = None, *, out: Tensor | None = None
) -> Tensor:
    """Back-project depth maps (z-depth along the optical axis) to 3D points.

    Args:
        depth: (..., H, W); pixel (i, j) sits at (u, v) = (j, i). Invalid depth (0, NaN) simply
            yields the camera centre / NaN; mask it with the depth's validity.
        K: (..., 3, 3) intrinsics, batch dims broadcastable with depth's.
        c2w: optional (..., 4, 4) camera-to-world poses; None gives camera-frame points.
        out: optional earlier result of the same shape and dtype to overwrite (no new allocation:
            writing fresh memory is most of the cost of a large point map). Not with autograd.

    Returns:
        (..., H, W, 3) points (a channel-last view of a channel-first buffer; large CPU buffers are
        numpy-allocated, see :mod:`aether.geometry.buffers`); ``out`` when given.
    """
    _check_depth(depth)
    check_intrinsics(K)
    M = intrinsics_inverse(K.to(depth.dtype))
    if c2w is not None:
        check_poses(c2w)
        c2w = c2w.to(depth.dtype)
        M = c2w[..., :3, :3] @ M
    height, width = depth.shape[-2:]
    translation = None if c2w is None else c2w[..., :3, 3, None, None]  # (..., 3, 1, 1)
    differentiable = torch.is_grad_enabled() and (
        depth.requires_grad or M.requires_grad or (translation is not None and translation.requires_grad)
    )
    if differentiable:
        if out is not None:
            raise ValueError("out: not supported when gradients flow through depth_to_points")
        points = _apply_to_grid(M, height, width, 1) * depth[..., None, :, :]
        return (points if translation is None else points + translation).movedim(-3, -1)
    return _points_inplace(depth, M, translation, _check_out(out, depth, M, translation)).movedim(-3, -1)


def _check_out(out: Tensor | None, depth: Tensor, M: Tensor, translation: Tensor | None) -> Tensor | None:
    """The channel-first buffer (..., 3, H, W) behind ``out`` (..., H, W, 3), after checking it fits."""
    if out is None:
        return None
    batch = torch.broadcast_shapes(depth.shape[:-2], M.shape[:-2])
    if translation is not None:
        batch = torch.broadcast_shapes(batch, translation.shape[:-3])
    expected = (*batch, *depth.shape[-2:], 3)
    buffer = out.movedim(-1, -3) if isinstance(out, Tensor) else None
    if (
        buffer is None
        or tuple(out.shape) != expected
        or out.dtype != depth.dtype
        or not buffer.is_contiguous()
    ):
        got = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"out: expected an earlier depth_to_points result of shape {expected} and dtype {depth.dtype} "
            f"(a channel-last view of a contiguous channel-first buffer), got {got}"
        )
    if out.device != depth.device:
        raise ValueError(f"out: expected a tensor on {depth.device}, got one on {out.device}")
    return buffer


_CHUNK_PIXELS = 1 << 20
"""Pixels per pass and thread (whole frames, at least one)."""


def _points_inplace(
    depth: Tensor, M: Tensor, translation: Tensor | None, buffer: Tensor | None = None
) -> Tensor:
    """(..., 3, H, W) = depth * M [u, v, 1] (+ t), written once into one buffer (``buffer`` or a new one),
    a few frames at a time so the second pass over each chunk stays in cache."""
    height, width = depth.shape[-2:]
    batch = torch.broadcast_shapes(depth.shape[:-2], M.shape[:-2])
    if translation is not None:
        batch = torch.broadcast_shapes(batch, translation.shape[:-3])
        translation = translation.expand(*batch, 3, 1, 1).reshape(-1, 3, 1, 1)
    depth_f = depth.expand(*batch, height, width).reshape(-1, 1, height, width)
    M_f = M.expand(*batch, 3, 3).reshape(-1, 3, 3)
    if buffer is None:
        out = buffers.empty((M_f.shape[0], 3, height, width), depth.dtype, depth.device)
    else:
        out = buffer.reshape(M_f.shape[0], 3, height, width)  # a view: contiguous checked
    step = max(1, _CHUNK_PIXELS * torch.get_num_threads() // (height * width))
    for start in range(0, out.shape[0], step):
        chunk = slice(start, start + step)
        rays = out[chunk]
        torch.add(*_grid_terms(M_f[chunk], height, width), out=rays)
        if translation is None:
            rays.mul_(depth_f[chunk])
        else:
            torch.addcmul(translation[chunk], rays, depth_f[chunk], out=rays)
    return out.reshape(*batch, 3, height, width) if buffer is None else buffer


def depth_edge_mask(depth: Tensor, rtol: float = 0.03) -> Tensor:
    """Mark depth discontinuities: (..., H, W) -> bool (..., H, W).

    A valid pixel (finite, > 0) is an edge when the spread (max - min) of the valid depths in its 3 x 3
    neighbourhood exceeds ``rtol`` times its own depth. Invalid pixels are never edges.
    """
    _check_depth(depth)
    if not rtol > 0:
        raise ValueError(f"rtol: expected a positive relative tolerance, got {rtol!r}")
    valid = torch.isfinite(depth) & (depth > 0)
    flat = depth.reshape(-1, 1, *depth.shape[-2:])
    flat_valid = valid.reshape(flat.shape)
    inf = torch.tensor(float("inf"), dtype=depth.dtype, device=depth.device)
    pool = torch.nn.functional.max_pool2d
    hi = pool(torch.where(flat_valid, flat, -inf), 3, stride=1, padding=1)
    lo = -pool(torch.where(flat_valid, -flat, -inf), 3, stride=1, padding=1)
    edge = (hi - lo) > rtol * torch.where(flat_valid, flat, inf)
    return (edge & flat_valid).reshape(depth.shape)
