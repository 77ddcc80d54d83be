"""Closed-form alignment: weighted Sim(3) (Umeyama) for points and poses, least-squares depth scale/shift."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["DEPTH_ALIGN_MODES", "align_depth_lstsq", "align_poses_sim3", "align_trajectory_sim3", "umeyama"]

DEPTH_ALIGN_MODES = ("scale", "scale_shift")


def umeyama(
    src: Tensor, dst: Tensor, weights: Tensor | None = None, with_scale: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted least-squares similarity transform with ``dst ~ s R src + t`` (Umeyama, 1991).

    Args:
        src: (..., N, 3) points, N >= 3.
        dst: (..., N, 3) the corresponding points.
        weights: optional (..., N) non-negative weights (at least 3 positive per batch element).
        with_scale: estimate s; otherwise s = 1 (rigid alignment).

    Returns:
        s (...), R (..., 3, 3) with det R = +1, t (..., 3).
    """
    if src.shape != dst.shape or src.ndim < 2 or src.shape[-1] != 3:
        raise ValueError(
            f"src, dst: expected equal shapes (..., N, 3), got {tuple(src.shape)} and {tuple(dst.shape)}"
        )
    if src.shape[-2] < 3:
        raise ValueError(f"src: expected at least 3 points, got {src.shape[-2]}")
    if weights is None:
        weights = torch.ones(src.shape[:-1], dtype=src.dtype, device=src.device)
    elif weights.shape != src.shape[:-1]:
        raise ValueError(f"weights: expected shape {tuple(src.shape[:-1])}, got {tuple(weights.shape)}")
    elif bool((weights < 0).any()) or bool(((weights > 0).sum(-1) < 3).any()):
        raise ValueError("weights: expected non-negative weights with at least 3 positive per set")
    w = (weights / weights.sum(-1, keepdim=True)).to(src.dtype)[..., None]  # (..., N, 1)
    mu_src = (w * src).sum(-2)
    mu_dst = (w * dst).sum(-2)
    src_c = src - mu_src[..., None, :]
    dst_c = dst - mu_dst[..., None, :]
    cov = (w * dst_c).transpose(-1, -2) @ src_c  # (..., 3, 3) = sum_i w_i dst_i src_i^T
    U, S, Vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(U) * torch.linalg.det(Vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    D = torch.ones_like(S)
    D[..., 2] = sign
    R = (U * D[..., None, :]) @ Vh
    if with_scale:
        var_src = (w * src_c.square()).sum(dim=(-2, -1))
        s = (S * D).sum(-1) / var_src
    else:
        s = torch.ones_like(S[..., 0])
    t = mu_dst - s[..., None] * (R @ mu_src[..., None])[..., 0]
    return s, R, t


def align_poses_sim3(c2w: Tensor, s: Tensor | float, R: Tensor, t: Tensor) -> Tensor:
    """Apply the similarity x -> s R x + t to camera poses.

    Args:
        c2w: (..., T, 4, 4) camera-to-world poses.
        s: (...) scale, R: (..., 3, 3), t: (..., 3), as returned by :func:`umeyama` on camera centres.

    Returns:
        (..., T, 4, 4) poses with rotation R R_i and centre s R t_i + t.
    """
    if c2w.ndim < 3 or tuple(c2w.shape[-2:]) != (4, 4):
        raise ValueError(f"c2w: expected shape (..., T, 4, 4), got {tuple(c2w.shape)}")
    s = torch.as_tensor(s, dtype=c2w.dtype, device=c2w.device)
    R = R.to(c2w.dtype)[..., None, :, :]
    out = c2w.clone()
    out[..., :3, :3] = R @ c2w[..., :3, :3]
    centre = (R @ c2w[..., :3, 3:])[..., 0]
    out[..., :3, 3] = s[..., None, None] * centre + t.to(c2w.dtype)[..., None, :]
    return out


def align_trajectory_sim3(c2w: Tensor, target_c2w: Tensor) -> Tensor:
    """``c2w`` (T, 4, 4) Sim(3)-aligned onto ``target_c2w`` (T, 4, 4): :func:`umeyama` with scale on
    the camera centres, then :func:`align_poses_sim3`."""
    if c2w.shape != target_c2w.shape:
        raise ValueError(
            f"target_c2w: expected the shape of c2w {tuple(c2w.shape)}, got {tuple(target_c2w.shape)}"
        )
    s, R, t = umeyama(c2w[..., :3, 3], target_c2w[..., :3, 3], with_scale=True)
    return align_poses_sim3(c2w, s, R, t)


def align_depth_lstsq(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    mode: str = "scale",
    dims: int | Sequence[int] = (-2, -1),
    *,
    check: bool = True,
) -> tuple[Tensor, Tensor]:
    """Masked closed-form least squares of ``scale * pred + shift ~ target`` over ``dims``.

    The one masked scale / scale-and-shift solver of the library (window merging, the training
    SSI loss). Differentiable; the scale-and-shift fit uses centred sums (cov / var) for float32
    stability.

    Args:
        pred: e.g. (..., H, W) with the default ``dims=(-2, -1)``, or (..., N) with ``dims=-1``.
        target: the shape of ``pred``. Non-finite values in either are excluded.
        mask: optional bool of the same shape, True where the pair is used.
        mode: "scale" (shift = 0) or "scale_shift".
        dims: the dimensions reduced into one fit.
        check: raise when a fit has fewer valid pixels than unknowns (a host sync); with False,
            such fits (and degenerate ones) give scale 0 and the masked target mean as shift.

    Returns:
        scale, shift with the shape of ``pred`` without ``dims``.
    """
    if mode not in DEPTH_ALIGN_MODES:
        raise ValueError(f"mode: expected one of {DEPTH_ALIGN_MODES}, got {mode!r}")
    if pred.shape != target.shape:
        raise ValueError(f"target: expected shape {tuple(pred.shape)} as pred, got {tuple(target.shape)}")
    valid = torch.isfinite(pred) & torch.isfinite(target)
    if mask is not None:
        if mask.shape != pred.shape:
            raise ValueError(f"mask: expected shape {tuple(pred.shape)}, got {tuple(mask.shape)}")
        valid = valid & mask.bool()
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    tiny = torch.finfo(pred.dtype).tiny
    m = valid.to(pred.dtype)
    p = torch.where(valid, pred, torch.zeros_like(pred))
    q = torch.where(valid, target.to(pred.dtype), torch.zeros_like(pred))
    n = m.sum(dims, keepdim=True)
    need = 1 if mode == "scale" else 2
    if check and bool((n < need).any()):
        raise ValueError(f"mask: expected at least {need} valid finite pixel(s) per fit, got {int(n.min())}")
    spp = (p * p).sum(dims, keepdim=True)
    if mode == "scale":
        scale = (p * q).sum(dims, keepdim=True) / spp.clamp_min(tiny)
        return scale.squeeze(dims), torch.zeros_like(scale).squeeze(dims)
    count = n.clamp_min(1.0)
    mean_p, mean_q = p.sum(dims, keepdim=True) / count, q.sum(dims, keepdim=True) / count
    dp = (p - mean_p) * m
    cov = (dp * (q - mean_q)).sum(dims, keepdim=True)
    var = (dp * dp).sum(dims, keepdim=True)
    safe = var > torch.finfo(pred.dtype).eps * spp.clamp_min(tiny)
    scale = torch.where(safe, cov / torch.where(safe, var, torch.ones_like(var)), torch.zeros_like(var))
    shift = mean_q - scale * mean_p
    return scale.squeeze(dims), shift.squeeze(dims)
