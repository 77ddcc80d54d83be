"""Z-buffered point splatting: render coloured points into pinhole cameras, vectorised.

A point X (world) seen by a camera c2w, K lands at pixel (u, v) = K·(w2c·X) / z; pixel (i, j) has its
centre at (u, v) = (j, i) (the convention of :func:`~aether.geometry.depth_to_points`), so the point
is drawn at (round(v), round(u)). A point covers the (2r+1)² pixels around it (``radius`` r); where
several points fall on one pixel the nearest (smallest z) wins; with a ``depth_tolerance`` τ the
points within z_min·(1 + τ) count as the same surface and the one projecting closest to the pixel
centre wins (a cloud lifted from many views then renders as its best-placed samples, not as the
arbitrary nearest one). Everything is a few scatters per camera batch: no loop over points or pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aether.geometry.cameras import check_intrinsics, check_poses, invert_pose

__all__ = ["SplatOutput", "splat_points"]


class SplatOutput(tuple):
    """``(color, depth, mask)``: color (B, C, H, W) (zeros where empty), depth (B, H, W) z-depth of
    the winning point (0 where empty), mask (B, H, W) bool."""

    __slots__ = ()

    def __new__(cls, color: Tensor, depth: Tensor, mask: Tensor) -> SplatOutput:
        return super().__new__(cls, (color, depth, mask))

    @property
    def color(self) -> Tensor:
        return self[0]

    @property
    def depth(self) -> Tensor:
        return self[1]

    @property
    def mask(self) -> Tensor:
        return self[2]


def _check_points(points: Tensor, colors: Tensor, valid: Tensor | None) -> None:
    if not isinstance(points, Tensor) or points.ndim != 3 or points.shape[-1] != 3:
        got = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
        raise ValueError(f"points: expected (B, N, 3), got {got}")
    if not points.is_floating_point():
        raise ValueError(f"points: expected a floating point tensor, got {points.dtype}")
    if not isinstance(colors, Tensor) or colors.ndim != 3 or colors.shape[:2] != points.shape[:2]:
        got = tuple(colors.shape) if isinstance(colors, Tensor) else type(colors).__name__
        raise ValueError(f"colors: expected (B, N, C) = ({points.shape[0]}, {points.shape[1]}, C), got {got}")
    if valid is not None and (not isinstance(valid, Tensor) or tuple(valid.shape) != tuple(points.shape[:2])):
        got = tuple(valid.shape) if isinstance(valid, Tensor) else type(valid).__name__
        raise ValueError(f"valid: expected (B, N) = {tuple(points.shape[:2])}, got {got}")


def splat_points(
    points: Tensor,
    colors: Tensor,
    c2w: Tensor,
    K: Tensor,
    height: int,
    width: int,
    *,
    valid: Tensor | None = None,
    radius: int = 0,
    near: float = 1e-6,
    depth_tolerance: float = 0.0,
) -> SplatOutput:
    """Render points into cameras with a z-buffer.

    Args:
        points: (B, N, 3) world points (one cloud per batch element).
        colors: (B, N, C) their colours (any channels, e.g. RGB in [-1, 1]).
        c2w: (B, 4, 4) OpenCV camera-to-world poses of the target cameras.
        K: (B, 3, 3) intrinsics in pixels of the ``height × width`` target image.
        height: target image height in pixels.
        width: target image width in pixels.
        valid: (B, N) bool, points to draw (default: every finite point).
        radius: each point covers the (2r+1)² pixels around its projection (0: one pixel).
        near: points with z <= ``near`` (behind or at the camera) are culled.
        depth_tolerance: relative depth within which points compete on their distance to the pixel
            centre instead of their depth (0: the exact z-buffer; ties also go to the closest).

    Returns:
        :class:`SplatOutput` (color (B, C, H, W), depth (B, H, W), mask (B, H, W)).
    """
    _check_points(points, colors, valid)
    batch, num, channels = colors.shape
    for name, value, shape in (("c2w", c2w, (batch, 4, 4)), ("K", K, (batch, 3, 3))):
        if not isinstance(value, Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name}: expected {shape}, got {got}")
    check_poses(c2w)
    check_intrinsics(K)
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius: expected a non-negative integer, got {radius!r}")
    if not depth_tolerance >= 0:
        raise ValueError(f"depth_tolerance: expected a non-negative number, got {depth_tolerance!r}")
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"height, width: expected positive integers, got {height}, {width}")
    dtype, device = points.dtype, points.device
    w2c = invert_pose(c2w.to(dtype))
    cam = points @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]  # (B, N, 3)
    z = cam[..., 2]
    proj = cam @ K.to(dtype).transpose(1, 2)
    uv = proj[..., :2] / z.clamp_min(near)[..., None]
    keep = torch.isfinite(cam).all(-1) & (z > near)
    if valid is not None:
        keep = keep & valid.to(device=device, dtype=torch.bool)
    col = torch.round(uv[..., 0]).clamp(-1 - radius, width + radius).to(torch.int32)
    row = torch.round(uv[..., 1]).clamp(-1 - radius, height + radius).to(torch.int32)
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.int32)
    dr, dc = (o.reshape(-1) for o in torch.meshgrid(offsets, offsets, indexing="ij"))
    rows, cols = row[..., None] + dr, col[..., None] + dc  # (B, N, S) pixels of each splat
    inside = keep[..., None] & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    pixels = height * width
    # one flat index per (batch, pixel) and entry (B, N, S); entries not drawn carry a neutral value
    base = torch.arange(batch, device=device, dtype=torch.int32)[:, None, None] * pixels
    flat = torch.where(inside, base + rows * width + cols, 0).long().reshape(-1)
    inf = torch.tensor(float("inf"), dtype=dtype, device=device)
    depth = torch.where(inside, z[..., None], inf)
    zbuf = torch.full((batch * pixels,), float("inf"), dtype=dtype, device=device)
    zbuf.scatter_reduce_(0, flat, depth.reshape(-1), "amin")
    candidate = inside & (depth <= zbuf[flat].reshape(depth.shape) * (1 + depth_tolerance))
    # squared distance of each entry's projection to the centre of the pixel it is drawn on
    dist = (uv[..., 0, None] - cols).square() + (uv[..., 1, None] - rows).square()
    dist = torch.where(candidate, dist, inf)
    dbuf = torch.full((batch * pixels,), float("inf"), dtype=dtype, device=device)
    dbuf.scatter_reduce_(0, flat, dist.reshape(-1), "amin")
    winner = candidate & (dist == dbuf[flat].reshape(dist.shape))
    # remaining ties (equal depth and distance): the highest point index wins, deterministically
    index = torch.where(winner, torch.arange(num, device=device)[:, None], -1)
    owner = torch.full((batch * pixels,), -1, dtype=torch.long, device=device)
    owner.scatter_reduce_(0, flat, index.reshape(-1), "amax")
    owner = owner.reshape(batch, pixels)
    mask = owner >= 0
    picked = torch.gather(colors, 1, owner.clamp_min(0)[..., None].expand(-1, -1, channels))
    color = torch.where(mask[..., None], picked, 0).transpose(1, 2).reshape(batch, channels, height, width)
    zmap = torch.where(mask, torch.gather(z, 1, owner.clamp_min(0)), 0).reshape(batch, height, width)
    return SplatOutput(color, zmap, mask.reshape(batch, height, width))
