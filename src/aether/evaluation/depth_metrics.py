"""Video depth metrics with the CUT3R protocol: one alignment per sequence, Abs Rel and δ<1.25.

A sequence's prediction (T,H,W) is resized to the ground truth's size (bicubic), aligned to the
ground truth on the valid pixels (0 < gt < max_depth, finite, optional mask) with one of the
protocol's alignments, clipped to the cap, and scored over all valid pixels of the sequence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

ALIGNMENTS = ("scale", "scale&shift", "scale&shiftl2", "metric")


def as_tensor(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert an array-like to a tensor of ``dtype`` (device kept for tensors)."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, list | tuple):
        return torch.as_tensor(np.asarray(x), dtype=dtype)
    raise ValueError(f"{name}: expected an array or tensor, received {type(x).__name__}")


def resize_depth(pred: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a depth video (T,h,w) to (T,*size); a no-op when sizes agree."""
    if tuple(pred.shape[-2:]) == tuple(size):
        return pred
    return F.interpolate(pred[:, None], size=size, mode="bicubic", align_corners=False)[:, 0]


def _l1_weights(residual: torch.Tensor) -> torch.Tensor:
    """IRLS weights 1 / (|r| + 1e-8), computed in place on the residual buffer."""
    return residual.abs_().add_(1e-8).reciprocal_()


def scale_l1_weiszfeld(pred: torch.Tensor, gt: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """L1 scale ``s`` minimising Σ|s·pred − gt| (pred, gt (N,)): the protocol's 10 Weiszfeld
    reweighted least-squares steps from mean(gt)/mean(pred), clamped to ≥ 1e-3."""
    s = gt.mean() / pred.mean()
    pg, pp = pred * gt, pred * pred
    for _ in range(iterations):
        w = _l1_weights(torch.sub(pred * s, gt))
        s = torch.dot(w, pg) / torch.dot(w, pp)
    return s.clamp(min=1e-3)


def _l1_at_scale(pred: torch.Tensor, gt: torch.Tensor, s: torch.Tensor) -> tuple[float, torch.Tensor]:
    """min over t of mean |s·pred + t − gt| and its minimiser t = median(gt − s·pred)."""
    r = gt - s * pred
    t = r.median()
    return float(r.sub_(t).abs_().mean()), t


def scale_shift_l1(
    pred: torch.Tensor, gt: torch.Tensor, rtol: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) minimising Σ|s·pred + t − gt| (pred, gt (N,)). For a fixed scale the best shift is a
    median, and the remaining loss is convex in s: a golden-section search from the median ratio
    s0 = median(gt)/median(pred) over [0, 2·s0] (widened while the minimum is at its end) finds the
    scale to ``rtol``·s0."""
    s0 = gt.median() / pred.median()
    lo, hi = torch.zeros_like(s0), 2 * s0
    for _ in range(30):
        if _l1_at_scale(pred, gt, hi)[0] >= _l1_at_scale(pred, gt, hi / 2)[0]:
            break
        lo, hi = hi / 2, 2 * hi
    ratio = (5**0.5 - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _l1_at_scale(pred, gt, a)[0], _l1_at_scale(pred, gt, b)[0]
    while float(hi - lo) > rtol * float(s0.abs()):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _l1_at_scale(pred, gt, a)[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _l1_at_scale(pred, gt, b)[0]
    s = (lo + hi) / 2
    return s, _l1_at_scale(pred, gt, s)[1]


def scale_shift_l2(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordinary least squares (s, t) minimising Σ(s·pred + t − gt)² (pred, gt (N,))."""
    A = torch.stack([pred, torch.ones_like(pred)], dim=1)
    sol = torch.linalg.lstsq(A, gt[:, None]).solution[:, 0]
    return sol[0], sol[1]


def align_depth(pred: torch.Tensor, gt: torch.Tensor, align: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift aligning valid predictions to the ground truth (pred, gt (N,))."""
    if align == "scale":
        return scale_l1_weiszfeld(pred, gt), torch.zeros((), dtype=pred.dtype, device=pred.device)
    if align == "scale&shift":
        return scale_shift_l1(pred, gt)
    if align == "scale&shiftl2":
        return scale_shift_l2(pred, gt)
    if align == "metric":
        one = torch.ones((), dtype=pred.dtype, device=pred.device)
        return one, torch.zeros_like(one)
    raise ValueError(f"align: expected one of {ALIGNMENTS}, received {align!r}")


def _check_video(x: torch.Tensor, name: str) -> None:
    if x.ndim != 3:
        raise ValueError(f"{name}: expected shape (T,H,W), received {tuple(x.shape)}")


def depth_sequence_stats(
    pred_depth: Any,
    gt_depth: Any,
    align: str = "scale",
    max_depth: float | None = None,
    mask: Any = None,
    post_clip_max: float | None = None,
) -> dict[str, float]:
    """Score one sequence; returns abs_rel, delta_1_25, valid (pixel count), scale and shift.

    pred_depth (T,h,w), gt_depth (T,H,W) (pred resized bicubically to (H,W)); mask (T,H,W) bool
    restricts the valid pixels further. The aligned prediction is clipped to ``post_clip_max``.
    """
    gt = as_tensor(gt_depth, "gt_depth")
    pred = as_tensor(pred_depth, "pred_depth").to(gt.device)
    _check_video(gt, "gt_depth")
    _check_video(pred, "pred_depth")
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f"pred_depth: expected {gt.shape[0]} frames like gt_depth, received {pred.shape[0]}")
    pred = resize_depth(pred, tuple(gt.shape[-2:]))
    valid = torch.isfinite(gt) & (gt > 0)
    if max_depth is not None:
        valid &= gt < max_depth
    if mask is not None:
        m = as_tensor(mask, "mask", torch.bool).to(gt.device)
        if m.shape != gt.shape:
            raise ValueError(f"mask: expected shape {tuple(gt.shape)}, received {tuple(m.shape)}")
        valid &= m
    p, g = pred[valid], gt[valid]
    if p.numel() == 0:
        raise ValueError("gt_depth: no valid pixels (expected 0 < gt < max_depth somewhere)")
    if not torch.isfinite(p).all():
        raise ValueError("pred_depth: non-finite values on valid ground-truth pixels")
    s, t = align_depth(p, g, align)
    p = s * p + t
    if post_clip_max is not None:
        p = p.clamp(max=post_clip_max)
    ratio = torch.maximum(p / g, g / p)
    return {
        "abs_rel": float(((p - g).abs() / g).mean()),
        "delta_1_25": float((ratio < 1.25).double().mean()),
        "valid": int(p.numel()),
        "scale": float(s),
        "shift": float(t),
    }


def video_depth_metrics(
    pred_depth: Any,
    gt_depth: Any,
    align: str = "scale",
    max_depth: float | None = None,
    mask: Any = None,
    post_clip_max: float | None = None,
) -> dict[str, float]:
    """Abs Rel and δ<1.25 of one depth video after one per-sequence alignment.

    pred_depth (T,h,w) and gt_depth (T,H,W) arrays or tensors; align in
    ``"scale" | "scale&shift" | "scale&shiftl2" | "metric"``; valid = finite & 0 < gt < max_depth
    (& mask). The aligned prediction is clipped to ``post_clip_max`` (default: ``max_depth``).
    Returns ``{"abs_rel", "delta_1_25"}``.
    """
    clip = max_depth if post_clip_max is None else post_clip_max
    stats = depth_sequence_stats(pred_depth, gt_depth, align, max_depth, mask, clip)
    return {"abs_rel": stats["abs_rel"], "delta_1_25": stats["delta_1_25"]}


class VideoDepthMetric(Metric):
    """Dataset-level video depth metric: each ``update`` scores one sequence; ``compute`` returns
    the means weighted by each sequence's valid-pixel count (the protocol's dataset mean).
    States are sums, so distributed ranks reduce correctly; ``sequence_stats`` keeps this
    process's per-sequence results (abs_rel, delta_1_25, valid, scale, shift) in update order."""

    full_state_update = False

    def __init__(
        self,
        align: str = "scale",
        max_depth: float | None = None,
        post_clip_max: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if align not in ALIGNMENTS:
            raise ValueError(f"align: expected one of {ALIGNMENTS}, received {align!r}")
        self.align, self.max_depth, self.post_clip_max = align, max_depth, post_clip_max
        for name in ("abs_rel_sum", "delta_sum", "valid"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.sequence_stats: list[dict[str, float]] = []

    def update(self, pred_depth: Any, gt_depth: Any, mask: Any = None) -> None:  # type: ignore[override]
        """Score one sequence: pred (T,h,w), gt (T,H,W), optional mask (T,H,W) bool."""
        stats = depth_sequence_stats(
            pred_depth, gt_depth, self.align, self.max_depth, mask, self.post_clip_max
        )
        self.abs_rel_sum += stats["abs_rel"] * stats["valid"]
        self.delta_sum += stats["delta_1_25"] * stats["valid"]
        self.valid += stats["valid"]
        self.sequence_stats.append(stats)

    def reset(self) -> None:
        super().reset()
        self.sequence_stats = []

    def compute(self) -> dict[str, float]:
        n = float(self.valid)
        if n == 0:
            raise ValueError("VideoDepthMetric: no sequence was scored (expected update() calls)")
        return {"abs_rel": float(self.abs_rel_sum) / n, "delta_1_25": float(self.delta_sum) / n}
