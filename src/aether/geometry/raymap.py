"""Raymaps: the AetherV1 camera encoding and its exact inverse.

A raymap frame has 6 channels on the latent grid (H/8 x W/8): channels 0:3 hold the world-frame ray
directions ``R K^-1 [u, v, 1]`` (unit z in the camera frame, not normalised) at pixel
``(8j + 3.5, 8i + 3.5)``, channels 3:6 hold ``signed_log1p(10 * dmax * t)`` with ``t`` the camera
centre, replicated over the grid.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from aether.geometry.cameras import (
    _apply_to_grid,
    _coarse_size,
    check_intrinsics,
    check_poses,
    intrinsics_inverse,
)
from aether.geometry.depth import check_dmax_values

__all__ = [
    "RAY_ORIGIN_SCALE",
    "RAYMAP_METHODS",
    "cameras_to_raymap",
    "raymap_origins",
    "raymap_to_cameras",
    "signed_expm1",
    "signed_log1p",
]

RAY_ORIGIN_SCALE = 10.0
"""Constant factor applied to camera centres before ``signed_log1p`` (AetherV1)."""

RAYMAP_METHODS = ("lstsq", "mean_ray")


def signed_log1p(x: Tensor) -> Tensor:
    """sign(x) * log(1 + |x|), elementwise, any shape."""
    return torch.sign(x) * torch.log1p(x.abs())


def signed_expm1(x: Tensor) -> Tensor:
    """sign(x) * (exp(|x|) - 1), the inverse of :func:`signed_log1p`, elementwise, any shape."""
    return torch.copysign(torch.expm1(x.abs()), x)


def raymap_origins(raymap: Tensor) -> Tensor:
    """Raymap (..., 6, h, w) with its origin channels mapped back from the signed log: directions,
    then the camera centres ``dmax · t`` (the inverse of the encoding in :func:`cameras_to_raymap`)."""
    if raymap.ndim < 3 or raymap.shape[-3] != 6:
        raise ValueError(f"raymap: expected shape (..., 6, h, w), got {tuple(raymap.shape)}")
    return torch.cat([raymap[..., :3, :, :], signed_expm1(raymap[..., 3:, :, :]) / RAY_ORIGIN_SCALE], -3)


def _mean_ray_origin(origins: Tensor) -> Tensor:
    """Mean over the grid of signed_expm1 of the origin channels: (..., 3, h, w) -> (..., 3).

    Uses exp(|x|) - 1 (vectorised exp; torch.expm1 is several times slower on CPU): its absolute error
    is at most a few ulps of 1, i.e. ~1e-7 in float32 before the division by 10 * dmax.
    """
    return torch.copysign(torch.exp(origins.abs()) - 1.0, origins).mean(dim=(-2, -1))


def _all_finite(x: Tensor) -> bool:
    """True when every element is finite; one reduction, with a full check only if the sum overflows."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _dmax_per_frame(dmax: float | Tensor, batch_ndim: int, like: Tensor) -> Tensor:
    """Broadcast ``dmax`` (scalar, (...,) per clip, or (..., T) per frame) to (..., T) against ``like``."""
    d = check_dmax_values(torch.as_tensor(dmax, dtype=like.dtype, device=like.device))
    if d.ndim == batch_ndim:  # one value per clip: add the frame axis
        d = d.unsqueeze(-1)
    try:
        torch.broadcast_shapes(d.shape, like.shape)
    except RuntimeError as err:
        raise ValueError(
            f"dmax: expected a shape broadcastable to {tuple(like.shape)} (per frame) or "
            f"{tuple(like.shape[:-1])} (per clip), got {tuple(d.shape)}"
        ) from err
    return d


def cameras_to_raymap(
    c2w: Tensor,
    K: Tensor,
    height: int,
    width: int,
    dmax: float | Tensor = 1.0,
    downsample: int = 8,
) -> Tensor:
    """Encode cameras as AetherV1 raymaps, evaluated directly on the low-resolution grid.

    Args:
        c2w: (..., T, 4, 4) camera-to-world poses (OpenCV), used as given (pass relative poses).
        K: (..., T, 3, 3) intrinsics in pixels of the ``height`` x ``width`` image.
        height: full image height, divisible by ``downsample``.
        width: full image width, divisible by ``downsample``.
        dmax: clip disparity maximum, a float, a (...,) tensor (per clip) or (..., T) (per frame).
        downsample: spatial factor of the raymap grid.

    Returns:
        (..., T, 6, height / downsample, width / downsample), dtype of ``c2w``. Equal to the
        full-resolution raymap bilinearly downsampled with ``align_corners=False``.
    """
    check_poses(c2w)
    check_intrinsics(K)
    if c2w.ndim < 3 or K.ndim < 3:
        raise ValueError(
            "c2w, K: expected shapes (..., T, 4, 4) and (..., T, 3, 3), "
            f"got {tuple(c2w.shape)} and {tuple(K.shape)}"
        )
    if c2w.shape[-3] != K.shape[-3]:
        raise ValueError(f"K: expected T = {c2w.shape[-3]} frames as in c2w, got {K.shape[-3]}")
    K = K.to(c2w.dtype)
    h, w = _coarse_size(height, width, downsample)
    M = c2w[..., :3, :3] @ intrinsics_inverse(K)  # (..., T, 3, 3)
    directions = _apply_to_grid(M, height, width, downsample)  # (..., T, 3, h, w)
    t = c2w[..., :3, 3]  # (..., T, 3)
    d = _dmax_per_frame(dmax, c2w.ndim - 3, t[..., 0])
    origins = signed_log1p(RAY_ORIGIN_SCALE * d[..., None] * t)
    origins = origins[..., None, None].expand(*origins.shape, h, w)
    lead = torch.broadcast_shapes(directions.shape[:-3], origins.shape[:-3])
    return torch.cat([directions.expand(*lead, 3, h, w), origins.expand(*lead, 3, h, w)], dim=-3)


def _grid_normalisation(height: int, width: int) -> tuple[float, float, float]:
    """Centre (uc, vc) and scale s that map pixels to well-conditioned coordinates
    ((u - uc) / s, (v - vc) / s)."""
    return (width - 1) / 2.0, (height - 1) / 2.0, max(height, width) / 2.0


@functools.lru_cache(maxsize=32)
def _grid_pinv(height: int, width: int, downsample: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Pseudo-inverse (h*w, 3) of the normalised homogeneous coarse grid P (3, h*w), so M' = D @ pinv
    fits d = M' [(u - uc) / s, (v - vc) / s, 1] in the least-squares sense."""
    h, w = _coarse_size(height, width, downsample)
    uc, vc, s = _grid_normalisation(height, width)
    offset = (downsample - 1) / 2.0
    u = (torch.arange(w, dtype=torch.float64) * downsample + offset - uc) / s
    v = (torch.arange(h, dtype=torch.float64) * downsample + offset - vc) / s
    uu, vv = torch.meshgrid(u, v, indexing="xy")
    P = torch.stack([uu.reshape(-1), vv.reshape(-1), torch.ones(h * w, dtype=torch.float64)])
    return torch.linalg.pinv(P).to(device=device, dtype=dtype)


def _intrinsics(fx: Tensor, fy: Tensor, cx: Tensor, cy: Tensor) -> Tensor:
    """Zero-skew intrinsics (..., 3, 3) from (...,) focal lengths and principal point."""
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    return torch.stack(
        [
            torch.stack([fx, zero, cx], dim=-1),
            torch.stack([zero, fy, cy], dim=-1),
            torch.stack([zero, zero, one], dim=-1),
        ],
        dim=-2,
    )


def _qr_split(M: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Split M = R K^-1 (..., 3, 3) into a proper rotation R and zero-skew intrinsics (fx, fy, cx, cy).

    Gram-Schmidt on the columns of M (a QR decomposition with positive diagonal): the first column is
    x / fx, the second y / fy plus a multiple of x, the third R K^-1 e3. z = x cross y makes det R = +1.
    A global scale of M (noisy fits) is removed through K^-1[2, 2] = 1.
    """
    c0, c1, c2 = M[..., :, 0], M[..., :, 1], M[..., :, 2]
    a = torch.linalg.vector_norm(c0, dim=-1)
    x = c0 / a[..., None]
    y = c1 - (x * c1).sum(-1, keepdim=True) * x
    d = torch.linalg.vector_norm(y, dim=-1)
    y = y / d[..., None]
    z = torch.linalg.cross(x, y, dim=-1)
    scale = (z * c2).sum(-1).abs()
    fx = scale / a
    fy = scale / d
    cx = -(x * c2).sum(-1) / a
    cy = -(y * c2).sum(-1) / d
    return torch.stack([x, y, z], dim=-1), fx, fy, cx, cy


def _mean_ray_cameras(directions: Tensor, height: int, width: int, downsample: int) -> tuple[Tensor, Tensor]:
    """The paper's Algorithm 1 on directions (..., 3, h, w): forward axis = mean ray, right axis =
    mean of the last column minus mean of the first column; intrinsics by a line fit of the pixel
    coordinates against the camera-frame ray slopes. Returns R (..., 3, 3), K (..., 3, 3)."""
    normalize = torch.nn.functional.normalize
    z = normalize(directions.mean(dim=(-2, -1)), dim=-1)
    x = normalize(directions[..., -1].mean(-1) - directions[..., 0].mean(-1), dim=-1)
    y = normalize(torch.linalg.cross(z, x, dim=-1), dim=-1)
    x = normalize(torch.linalg.cross(y, z, dim=-1), dim=-1)
    R = torch.stack([x, y, z], dim=-1)
    cam = torch.einsum("...ji,...jhw->...ihw", R, directions)
    sx = (cam[..., 0, :, :] / cam[..., 2, :, :]).mean(-2)  # (..., w) slope per column
    sy = (cam[..., 1, :, :] / cam[..., 2, :, :]).mean(-1)  # (..., h) slope per row
    h, w = _coarse_size(height, width, downsample)
    offset = (downsample - 1) / 2.0
    u = torch.arange(w, dtype=directions.dtype, device=directions.device) * downsample + offset
    v = torch.arange(h, dtype=directions.dtype, device=directions.device) * downsample + offset

    def line_fit(s: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:  # p = f s + c
        sc = s - s.mean(-1, keepdim=True)
        f = (sc * (p - p.mean())).sum(-1) / (sc * sc).sum(-1)
        return f, p.mean() - f * s.mean(-1)

    fx, cx = line_fit(sx, u)
    fy, cy = line_fit(sy, v)
    return R, _intrinsics(fx, fy, cx, cy)


def raymap_to_cameras(
    raymap: Tensor,
    height: int,
    width: int,
    dmax: float | Tensor = 1.0,
    method: str = "lstsq",
    downsample: int = 8,
) -> tuple[Tensor, Tensor]:
    """Recover cameras from raymaps.

    Camera centre: invert ``signed_log1p``, divide by 10 and by ``dmax``, average over the grid.
    Rotation and intrinsics, ``method="lstsq"`` (default): per frame the directions are the linear
    function d = M [u, v, 1] of the pixel with M = R K^-1; M is the least-squares fit over the grid
    (one batched matmul with the grid's precomputed pseudo-inverse) and a QR split gives R (det +1)
    and K (positive focals, zero skew) -- exact on clean raymaps, the least-squares optimum on noisy
    ones. ``method="mean_ray"`` is the paper's Algorithm 1 (mean ray as forward axis), which is
    biased and kept for comparison.

    Args:
        raymap: (..., T, 6, h, w) with h = height / downsample, w = width / downsample.
        height: full image height the raymap was made for.
        width: full image width the raymap was made for.
        dmax: float, (...,) per clip or (..., T) per frame.

    Returns:
        c2w (..., T, 4, 4) and K (..., T, 3, 3), in the raymap's dtype (float32 for half/bfloat16 input).
    """
    if method not in RAYMAP_METHODS:
        raise ValueError(f"method: expected one of {RAYMAP_METHODS}, got {method!r}")
    if not isinstance(raymap, Tensor) or raymap.ndim < 4 or raymap.shape[-3] != 6:
        shape = tuple(raymap.shape) if isinstance(raymap, Tensor) else type(raymap).__name__
        raise ValueError(f"raymap: expected shape (..., T, 6, h, w), got {shape}")
    if not raymap.is_floating_point():
        raise ValueError(f"raymap: expected a floating point tensor, got {raymap.dtype}")
    h, w = _coarse_size(height, width, downsample)
    if tuple(raymap.shape[-2:]) != (h, w):
        raise ValueError(
            f"raymap: expected a {h}x{w} grid for a {height}x{width} image at downsample {downsample}, "
            f"got {tuple(raymap.shape[-2:])}"
        )
    if not _all_finite(raymap):
        raise ValueError("raymap: expected finite values, got NaN or inf")
    if torch.finfo(raymap.dtype).bits < 32:  # half / bfloat16 model outputs: fit in float32
        raymap = raymap.float()
    directions = raymap[..., :3, :, :]
    centre = _mean_ray_origin(raymap[..., 3:, :, :]) / RAY_ORIGIN_SCALE  # (..., T, 3)
    centre = centre / _dmax_per_frame(dmax, raymap.ndim - 4, centre[..., 0])[..., None]
    if method == "lstsq":
        # fit in normalised pixel coordinates: M' = R (N K)^-1 with N the normalisation, so the split
        # gives R and the normalised intrinsics N K, mapped back to pixels below
        pinv = _grid_pinv(height, width, downsample, raymap.device, raymap.dtype)
        M = directions.reshape(*directions.shape[:-2], h * w) @ pinv  # (..., T, 3, 3)
        R, fx, fy, cx, cy = _qr_split(M)
        uc, vc, s = _grid_normalisation(height, width)
        K = _intrinsics(fx * s, fy * s, cx * s + uc, cy * s + vc)
    else:
        R, K = _mean_ray_cameras(directions, height, width, downsample)
    c2w = torch.zeros(*R.shape[:-2], 4, 4, dtype=R.dtype, device=R.device)
    c2w[..., :3, :3] = R
    c2w[..., :3, 3] = centre
    c2w[..., 3, 3] = 1.0
    return c2w, K
