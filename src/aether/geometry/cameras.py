"""Camera poses, intrinsics, pixel grids and rays.

Conventions: OpenCV camera axes (x right, y down, z forward); ``c2w`` (..., 4, 4) is a
camera-to-world pose, ``w2c`` its inverse; intrinsics ``K`` (..., 3, 3) are in pixels and the
centre of pixel column ``j`` / row ``i`` has coordinates ``(u, v) = (j, i)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "check_intrinsics",
    "check_poses",
    "check_rotation",
    "convert_poses",
    "intrinsics_inverse",
    "invert_pose",
    "pixel_grid",
    "pixel_rays",
    "relative_poses",
    "world_rays",
]

_OPENGL_TO_OPENCV = (1.0, -1.0, -1.0, 1.0)


def _check_square(x: Tensor, size: int, name: str) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(
            f"{name}: expected a torch.Tensor of shape (..., {size}, {size}), got {type(x).__name__}"
        )
    if x.ndim < 2 or tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name}: expected shape (..., {size}, {size}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_rotation(R: Tensor, name: str = "rotation", atol: float = 1e-3) -> None:
    """Raise ValueError unless ``R`` (..., 3, 3) holds finite proper rotations (R^T R = I, det R = +1)."""
    _check_square(R, 3, name)
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    ortho_err = (R.transpose(-1, -2) @ R - eye).abs().amax(dim=(-1, -2))
    if bool((ortho_err > atol).any()):
        raise ValueError(
            f"{name}: expected orthonormal matrices (|R^T R - I| <= {atol}), got an error of "
            f"{float(ortho_err.max()):.3g}"
        )
    det = torch.linalg.det(R)
    if bool((det <= 0).any()):
        raise ValueError(f"{name}: expected proper rotations with det = +1, got det = {float(det.min()):.3g}")


def check_intrinsics(K: Tensor, name: str = "K", atol: float = 1e-6) -> None:
    """Raise ValueError unless ``K`` (..., 3, 3) is finite, upper triangular with last row [0, 0, 1]
    and positive focal lengths ``K[0, 0]`` and ``K[1, 1]``."""
    _check_square(K, 3, name)
    lower = torch.stack([K[..., 1, 0], K[..., 2, 0], K[..., 2, 1], K[..., 2, 2] - 1.0], dim=-1)
    if bool((lower.abs() > atol).any()):
        raise ValueError(
            f"{name}: expected upper-triangular intrinsics with last row [0, 0, 1], got entries below the "
            f"diagonal / K[2, 2] off by {float(lower.abs().max()):.3g}"
        )
    focal = torch.stack([K[..., 0, 0], K[..., 1, 1]], dim=-1)
    if bool((focal <= 0).any()):
        raise ValueError(f"{name}: expected positive focal lengths fx, fy, got min {float(focal.min()):.3g}")


def check_poses(c2w: Tensor, name: str = "c2w", atol: float = 1e-3) -> None:
    """Raise ValueError unless ``c2w`` (..., 4, 4) are finite rigid transforms (last row [0, 0, 0, 1])."""
    _check_square(c2w, 4, name)
    bottom = c2w[..., 3, :] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype, device=c2w.device)
    if bool((bottom.abs() > atol).any()):
        raise ValueError(
            f"{name}: expected the last row to be [0, 0, 0, 1], "
            f"got an error of {float(bottom.abs().max()):.3g}"
        )
    check_rotation(c2w[..., :3, :3], name=f"{name} rotation", atol=atol)


def invert_pose(T: Tensor) -> Tensor:
    """Invert rigid transforms: (..., 4, 4) -> (..., 4, 4), using R^T and -R^T t (no general inverse)."""
    _check_square(T, 4, "pose")
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -(Rt @ t)
    out[..., 3, 3] = 1.0
    return out


def relative_poses(c2w: Tensor) -> Tensor:
    """Express poses (..., T, 4, 4) relative to the first frame, ``inv(c2w[0]) @ c2w[t]``.

    Frame 0 becomes the identity."""
    _check_square(c2w, 4, "c2w")
    if c2w.ndim < 3:
        raise ValueError(f"c2w: expected shape (..., T, 4, 4), got {tuple(c2w.shape)}")
    return invert_pose(c2w[..., :1, :, :]) @ c2w


def mirror_poses(c2w: Tensor) -> Tensor:
    """The left-right mirror image of a camera motion (..., T, 4, 4): each pose relative to the first
    frame is conjugated by the reflection x -> -x of the first camera, ``c2w[0] @ M @ rel[t] @ M``.

    A pan or strafe to the right becomes the same pan or strafe to the left; motion along the
    optical axis and vertical motion are kept. The result is again a rigid trajectory (det R = 1).
    """
    rel = relative_poses(c2w)
    flip = torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=c2w.dtype, device=c2w.device)
    return c2w[..., :1, :, :] @ (rel * flip[:, None] * flip)


def reverse_poses(c2w: Tensor) -> Tensor:
    """The opposite camera motion (..., T, 4, 4): each pose relative to the first frame is inverted,
    ``c2w[0] @ inv(rel[t])`` (forward becomes backward, a pan right a pan left)."""
    return c2w[..., :1, :, :] @ invert_pose(relative_poses(c2w))


def convert_poses(poses: Tensor, *, axes: str = "opencv", kind: str = "c2w") -> Tensor:
    """Convert poses (..., 4, 4) given as ``kind`` ("c2w" or "w2c") in camera ``axes`` ("opencv" or
    "opengl": x right, y up, z backward) to OpenCV camera-to-world poses (..., 4, 4)."""
    if axes not in ("opencv", "opengl"):
        raise ValueError(f"axes: expected 'opencv' or 'opengl', got {axes!r}")
    if kind not in ("c2w", "w2c"):
        raise ValueError(f"kind: expected 'c2w' or 'w2c', got {kind!r}")
    _check_square(poses, 4, "poses")
    c2w = invert_pose(poses) if kind == "w2c" else poses
    if axes == "opengl":
        flip = torch.tensor(_OPENGL_TO_OPENCV, dtype=c2w.dtype, device=c2w.device)
        c2w = c2w * flip  # right-multiplication by diag(1, -1, -1, 1) scales the columns
    return c2w


def pixel_grid(
    height: int,
    width: int,
    downsample: int = 1,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Pixel coordinates (h, w, 2) as (u, v) of a ``downsample``-times coarser grid over an image of
    ``height`` x ``width`` pixels, h = height / downsample, w = width / downsample.

    Coarse cell ``(i, j)`` sits at full-resolution coordinates ``(ds*j + (ds-1)/2, ds*i + (ds-1)/2)``,
    which is where bilinear downsampling with ``align_corners=False`` samples (8j + 3.5 for ds = 8).
    """
    h, w = _coarse_size(height, width, downsample)
    dtype = dtype or torch.get_default_dtype()
    offset = (downsample - 1) / 2.0
    u = torch.arange(w, device=device, dtype=dtype) * downsample + offset
    v = torch.arange(h, device=device, dtype=dtype) * downsample + offset
    return torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)


def _coarse_size(height: int, width: int, downsample: int) -> tuple[int, int]:
    if int(downsample) != downsample or downsample < 1:
        raise ValueError(f"downsample: expected a positive integer, got {downsample!r}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size: expected positive height and width, got {height}x{width}")
    if height % downsample or width % downsample:
        raise ValueError(
            f"image size: expected height and width divisible by {downsample}, got {height}x{width}"
        )
    return height // downsample, width // downsample


def intrinsics_inverse(K: Tensor) -> Tensor:
    """Closed-form inverse of upper-triangular intrinsics (..., 3, 3) -> (..., 3, 3) (skew allowed)."""
    fx, s, cx = K[..., 0, 0], K[..., 0, 1], K[..., 0, 2]
    fy, cy = K[..., 1, 1], K[..., 1, 2]
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = [
        torch.stack([1.0 / fx, -s / (fx * fy), (s * cy - cx * fy) / (fx * fy)], dim=-1),
        torch.stack([zero, 1.0 / fy, -cy / fy], dim=-1),
        torch.stack([zero, zero, one], dim=-1),
    ]
    return torch.stack(rows, dim=-2)


def _grid_terms(M: Tensor, height: int, width: int, downsample: int = 1) -> tuple[Tensor, Tensor]:
    """The separable parts of d = M [u, v, 1] on the coarse grid: column term M[:, 0] u (..., 3, 1, w)
    and row term M[:, 1] v + M[:, 2] (..., 3, h, 1); their broadcast sum is d."""
    h, w = _coarse_size(height, width, downsample)
    offset = (downsample - 1) / 2.0
    u = torch.arange(w, device=M.device, dtype=M.dtype) * downsample + offset
    v = torch.arange(h, device=M.device, dtype=M.dtype) * downsample + offset
    col = M[..., :, 0, None, None] * u
    row = M[..., :, 1, None, None] * v[:, None] + M[..., :, 2, None, None]
    return col, row


def _apply_to_grid(M: Tensor, height: int, width: int, downsample: int) -> Tensor:
    """d = M [u, v, 1] on the coarse grid: M (..., 3, 3) -> (..., 3, h, w), channel first, without
    materialising an (h, w, 3) pixel grid."""
    col, row = _grid_terms(M, height, width, downsample)
    return col + row


def pixel_rays(K: Tensor, height: int, width: int, downsample: int = 1) -> Tensor:
    """Camera-frame ray directions K^-1 [u, v, 1] with unit z: K (..., 3, 3) -> (..., h, w, 3)."""
    check_intrinsics(K)
    return _apply_to_grid(intrinsics_inverse(K), height, width, downsample).movedim(-3, -1)


def world_rays(c2w: Tensor, K: Tensor, height: int, width: int, downsample: int = 1) -> tuple[Tensor, Tensor]:
    """World-frame rays of cameras c2w (..., 4, 4) with intrinsics K (..., 3, 3).

    Returns ``origins`` (..., 3), the camera centres, and ``directions`` (..., h, w, 3) = R K^-1 [u, v, 1]
    (unit z in the camera frame, not normalised).
    """
    check_poses(c2w)
    check_intrinsics(K)
    M = c2w[..., :3, :3] @ intrinsics_inverse(K)
    return c2w[..., :3, 3], _apply_to_grid(M, height, width, downsample).movedim(-3, -1)


def resize_intrinsics(
    K: Tensor,
    src_size: tuple[int, int],
    dst_size: tuple[int, int],
    crop: tuple[int, int] | None = None,
) -> Tensor:
    """Intrinsics (..., 3, 3) of an image resized from ``src_size`` to ``dst_size`` (height, width),
    then cropped at ``crop`` = (top, left) (None: no crop).

    Pixel centres sit at integer coordinates (pixel i spans [i - 0.5, i + 0.5]), so a resize by s maps
    u to (u + 0.5)·s − 0.5: focal lengths and skew scale by s, the principal point by that affine
    map; a crop subtracts its offset.
    """
    _check_square(K, 3, "K")
    (src_h, src_w), (dst_h, dst_w) = src_size, dst_size
    if min(src_h, src_w, dst_h, dst_w) <= 0:
        raise ValueError(f"sizes: expected positive (height, width), got {src_size} -> {dst_size}")
    sx, sy = dst_w / src_w, dst_h / src_h
    K = K.clone()
    K[..., 0, 0] = K[..., 0, 0] * sx
    K[..., 0, 1] = K[..., 0, 1] * sx
    K[..., 1, 1] = K[..., 1, 1] * sy
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    if crop is not None:
        top, left = crop
        K[..., 0, 2] = K[..., 0, 2] - left
        K[..., 1, 2] = K[..., 1, 2] - top
    return K
