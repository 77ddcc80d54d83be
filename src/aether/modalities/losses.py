"""Decoded-space losses of stage 2 (paper appendix D), used by the codecs that own them.

- ``ms_ssim_loss``: 1 − MS-SSIM on color frames;
- ``ssi_loss``: scale-and-shift-invariant loss with the multi-scale gradient-matching
  term of MiDaS, on disparity videos;
- ``pointmap_loss``: pointmaps from depth and raymap, weighted inversely to depth,
  aligned by a global scale (and shift), gradients stopped through the depth.

:class:`Stage2Batch` is what every target codec's ``stage2_losses`` receives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from aether.geometry.alignment import DEPTH_ALIGN_MODES, align_depth_lstsq


@dataclass
class Stage2Batch:
    """What the target codecs' stage-2 losses read, in the target stack's order.

    Attributes:
        clip: the training batch (video (B,T,3,H,W), depth, valid, K, c2w, dmax, ...).
        options: the module's stage-2 options (weights and each codec's settings).
        generator: the module's CPU generator (random frame subsets).
        shared: decoded values one codec leaves for the codecs after it (the disparity codec's
            "disparity", "true_disparity" (B,T,H,W), "valid" and "min_disparity").
    """

    clip: Mapping[str, Any]
    options: Mapping[str, Any]
    generator: torch.Generator | None = None
    shared: dict[str, Any] = field(default_factory=dict)


def area_resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-average (B,T,H,W) to (B,T,*size)."""
    return F.interpolate(x.flatten(0, 1)[:, None], size=tuple(size), mode="area")[:, 0].unflatten(
        0, x.shape[:2]
    )


def _ms_ssim_window(size: int) -> int:
    """Largest odd Gaussian window ≤ 11 that pytorch-msssim accepts for a side of ``size`` pixels."""
    win = 11
    while win > 1 and (win - 1) * 16 >= size:
        win -= 2
    if win < 3:
        raise ValueError(f"MS-SSIM needs images with a shorter side > 32 pixels, got {size}")
    return win


def ms_ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 − MS-SSIM per clip, frames in [-1, 1].

    Args:
        pred, target: (B, T, 3, H, W) in [-1, 1]; H and W > 32. The Gaussian window
            shrinks from 11 to fit small frames (pytorch-msssim needs side > 16·(win − 1)).

    Returns:
        (B,) loss, 0 for identical inputs.
    """
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(
            f"pred and target must both be (B,T,3,H,W), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    b, t = pred.shape[:2]
    x = ((pred.float().flatten(0, 1) + 1) / 2).clamp(0, 1)
    y = ((target.float().flatten(0, 1) + 1) / 2).clamp(0, 1)
    from pytorch_msssim import ms_ssim

    score = ms_ssim(x, y, data_range=1.0, size_average=False, win_size=_ms_ssim_window(min(x.shape[-2:])))
    return 1.0 - score.reshape(b, t).mean(1)


def ssi_loss(pred: Tensor, target: Tensor, mask: Tensor, alpha: float = 0.5, scales: int = 4) -> Tensor:
    """Scale-and-shift-invariant loss with MiDaS' multi-scale gradient matching.

    The prediction is aligned to the target by the least-squares scale and shift over
    all valid pixels of each clip (one (s, t) per clip keeps the video consistent);
    the data term is the mean absolute residual, the gradient term the mean absolute
    x/y finite difference of the residual at ``scales`` strided resolutions (1, 1/2, …).

    Args:
        pred, target: (B, T, H, W) disparity (or depth) videos.
        mask: (B, T, H, W) bool, True where the target is valid.
        alpha: weight of the gradient term.
        scales: number of gradient-matching scales.

    Returns:
        (B,) loss.
    """
    if not (pred.shape == target.shape == mask.shape) or pred.ndim != 4:
        raise ValueError(
            "pred, target and mask must all be (B,T,H,W), got "
            f"{tuple(pred.shape)}, {tuple(target.shape)} and {tuple(mask.shape)}"
        )
    pred, target = pred.float(), target.float()
    m = mask & torch.isfinite(target)
    target = torch.where(m, target, torch.zeros_like(target))
    scale, shift = align_depth_lstsq(pred, target, m, mode="scale_shift", dims=(1, 2, 3), check=False)
    residual = (scale[:, None, None, None] * pred + shift[:, None, None, None] - target) * m
    mf = m.float()
    data = residual.abs().flatten(1).sum(1) / mf.flatten(1).sum(1).clamp_min(1.0)
    grad = pred.new_zeros(pred.shape[0])
    for k in range(scales):
        step = 2**k
        r, mk = residual[..., ::step, ::step], mf[..., ::step, ::step]
        mx = mk[..., :, 1:] * mk[..., :, :-1]
        my = mk[..., 1:, :] * mk[..., :-1, :]
        gx = (r[..., :, 1:] - r[..., :, :-1]).abs() * mx
        gy = (r[..., 1:, :] - r[..., :-1, :]).abs() * my
        count = (mx.flatten(1).sum(1) + my.flatten(1).sum(1)).clamp_min(1.0)
        grad = grad + (gx.flatten(1).sum(1) + gy.flatten(1).sum(1)) / count
    return data + alpha * grad


def raymap_points(depth: Tensor, raymap: Tensor) -> Tensor:
    """Pointmaps P = D·r_d + r_o from z-depth and a decoded raymap.

    Args:
        depth: (B, T, h, w) z-depth at the raymap's resolution.
        raymap: (B, T, 6, h, w) with directions (unit z) in 0:3 and origins in 3:6
            already mapped back from signed log (so P is in the origins' units).

    Returns:
        (B, T, h, w, 3) world points.
    """
    if raymap.ndim != 5 or raymap.shape[2] != 6 or depth.shape != raymap.shape[:2] + raymap.shape[3:]:
        raise ValueError(
            "expected depth (B,T,h,w) and raymap (B,T,6,h,w), "
            f"got {tuple(depth.shape)} and {tuple(raymap.shape)}"
        )
    points = depth[:, :, None] * raymap[:, :, :3] + raymap[:, :, 3:]
    return points.permute(0, 1, 3, 4, 2)


def pointmap_loss(
    pred_points: Tensor, target_points: Tensor, target_depth: Tensor, mask: Tensor, align: str = "scale_shift"
) -> Tensor:
    """Depth-weighted L1 pointmap loss invariant to a global scale (and shift) of the prediction.

    Each valid point has weight w_i ∝ 1/D_i (normalised to mean 1); the prediction is
    aligned to the target by the weighted least-squares scale (``"scale"``) or scale
    and 3D shift (``"scale_shift"``) per clip, then
    L = (1/N) Σ w_i ‖s·P̂_i + t − P_i‖₂.

    Args:
        pred_points, target_points: (B, T, h, w, 3).
        target_depth: (B, T, h, w) true depth (> 0 where valid).
        mask: (B, T, h, w) bool valid points.
        align: "scale" or "scale_shift".

    Returns:
        (B,) loss.
    """
    if align not in DEPTH_ALIGN_MODES:
        raise ValueError(f"align: expected one of {DEPTH_ALIGN_MODES}, got {align!r}")
    if pred_points.shape != target_points.shape or pred_points.shape[:-1] != mask.shape:
        raise ValueError(
            "expected points (B,T,h,w,3) and mask (B,T,h,w), got "
            f"{tuple(pred_points.shape)}, {tuple(target_points.shape)} and {tuple(mask.shape)}"
        )
    p = pred_points.float().flatten(1, -2)
    q = target_points.float().flatten(1, -2)
    d = target_depth.float().flatten(1)
    m = mask.flatten(1) & (d > 0) & torch.isfinite(d) & torch.isfinite(q).all(-1)
    w = torch.where(m, 1.0 / d.clamp_min(1e-6), torch.zeros_like(d))
    w = w / (w.sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1)).clamp_min(1e-12)
    q = torch.where(m[..., None], q, torch.zeros_like(q))
    wn = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    if align == "scale_shift":
        mp = (wn[..., None] * p).sum(1, keepdim=True)
        mq = (wn[..., None] * q).sum(1, keepdim=True)
    else:
        mp = mq = torch.zeros_like(p[:, :1])
    pc, qc = p - mp, q - mq
    scale = (wn[..., None] * pc * qc).sum((1, 2)) / (wn[..., None] * pc * pc).sum((1, 2)).clamp_min(1e-12)
    err = ((scale[:, None, None] * pc - qc).square().sum(-1) + 1e-12).sqrt()
    return (w * err).sum(1) / m.sum(1).clamp_min(1)
