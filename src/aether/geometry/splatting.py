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


def _owners(
    uv: Tensor, z: Tensor, keep: Tensor, height: int, width: int, radius: int, depth_tolerance: float
) -> Tensor:
    """The point drawn on each pixel by :func:`splat_points`' rule: (B, H·W) long, n + 1 for point n and
    0 where none is, from the projections uv (B, N, 2) in pixels (a non-finite one is not drawn), depths
    z (B, N) and keep (B, N) bool, the points to draw."""
    (batch, num), dtype, device = z.shape, z.dtype, z.device
    # The images are drawn with a margin of 2r + 1 pixels. A projection's pixel is clamped to just off
    # the image (a non-finite one: off it too), so that a splat off the image falls in the margin, and
    # the points not drawn move to the margin's corner.
    margin = 2 * radius + 1
    rows, cols = height + 2 * margin, width + 2 * margin
    corner = -1.0 - radius
    pixel = torch.stack(
        [
            torch.round(uv[..., axis]).nan_to_num_(corner).clamp_(corner, size + radius)
            for axis, size in enumerate((width, height))
        ],
        dim=-1,
    )
    pixel = torch.where(keep[..., None], pixel, corner)  # (B, N, 2): column, row
    offset = (uv - pixel).permute(2, 0, 1)  # (2, B, N): projection - pixel centre, in [-1/2, 1/2] if drawn
    pixel = pixel.long() + margin
    start = (torch.arange(batch, device=device)[:, None] * rows + pixel[..., 1]) * cols + pixel[..., 0]
    # the entries: the S = (2r + 1)² pixels (dr, dc) of every splat, as flat indices (S, B, N)
    steps = torch.arange(-radius, radius + 1, device=device)
    flat = (start + (steps[:, None] * cols + steps).view(-1, 1, 1)).view(-1)
    side, inf = len(steps), float("inf")
    # one value per entry (S, B, N), in one buffer: the point's depth, the depth limit at its pixel, then
    # the squared distance of its projection to its pixel's centre (+inf: not a candidate)
    value = z.expand(side * side, -1, -1).contiguous()
    nearest = torch.full((batch * rows * cols,), inf, dtype=dtype, device=device)
    nearest.scatter_reduce_(0, flat, value.view(-1), "amin")
    torch.index_select(nearest * (1 + depth_tolerance), 0, flat, out=value.view(-1))
    candidate = z <= value
    shift = steps.to(dtype)[:, None, None]
    du2, dv2 = (offset[0] - shift).square_(), (offset[1] - shift).square_()  # (2r + 1, B, N)
    torch.add(du2[None], dv2[:, None], out=value.view(side, side, batch, num))
    dist = value.masked_fill_(~candidate, inf)
    closest = torch.full_like(nearest, inf).scatter_reduce_(0, flat, dist.view(-1), "amin")
    winner = candidate & (dist == closest.index_select(0, flat).view_as(dist))
    # remaining ties (equal depth and distance): the highest point index wins, deterministically;
    # owner 0 is an empty pixel, n + 1 is point n
    index = winner * torch.arange(1, num + 1, device=device, dtype=torch.int32)
    owner = torch.zeros(batch * rows * cols, dtype=torch.int32, device=device)
    owner.scatter_reduce_(0, flat, index.view(-1), "amax")
    return owner.view(batch, rows, cols)[:, margin:-margin, margin:-margin].reshape(batch, -1).long()


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
    keep = z > near
    if valid is not None:
        keep = keep & valid.to(device=device, dtype=torch.bool)
    owner = _owners(uv.detach(), z.detach(), keep, height, width, radius, depth_tolerance)
    palette = torch.cat([colors.new_zeros(batch, channels, 1), colors.transpose(1, 2)], 2)  # (B, C, 1 + N)
    color = palette.gather(2, owner[:, None].expand(-1, channels, -1)).view(batch, channels, height, width)
    zmap = torch.cat([z.new_zeros(batch, 1), z], 1).gather(1, owner).view(batch, height, width)
    return SplatOutput(color, zmap, (owner > 0).view(batch, height, width))
