"""Video depth metrics with the CUT3R protocol: one alignment per sequence, Abs Rel and δ<1.25.

A sequence's prediction (T,H,W) is resized to the ground truth's size (bicubic), aligned to the
ground truth on the valid pixels (0 < gt < max_depth, finite, optional mask) with one of the
protocol's alignments, clipped to the cap, and scored over all valid pixels of the sequence.
"""

from __future__ import annotations

import math
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


# Scale & shift L1 alignment. The loss F(s, t) = Σ w·|c − d·s − t| (d = pred, c = gt) is convex
# and piecewise linear. Large problems are reduced (Portnoy & Koenker's preprocessing): a fit on a
# random subsample predicts which points lie above or below the optimal line; each of those two
# sets is replaced by one weighted point (its weighted mean, whose absolute residual equals the
# set's summed residuals while their signs agree, and bounds it from below otherwise), and the
# reduced problem is solved recursively. Its minimiser minimises F exactly when every replaced
# point keeps its predicted sign there; otherwise wrong-signed points rejoin the problem (or the
# band widens) and it is solved again. Small problems take a golden-section search over s of the
# convex g(s) = min_t F(s, t), whose inner minimiser is a weighted median, to float precision.

_DIRECT_MAX = 2048  # problems up to this many points are searched directly
_BAND_SE = 5.0  # half-width of the kept band around the subsample fit, in its standard errors
_GOLDEN = (5**0.5 - 1) / 2


def _weighted_median(z: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Lower weighted median of z (n,) with positive weights w (n,) (None: unit weights)."""
    if w is None:
        return z.kthvalue((z.numel() + 1) // 2).values
    zs, order = z.sort()
    cw = w[order].cumsum(0)
    return zs[torch.searchsorted(cw, cw[-1:] / 2).clamp_(max=z.numel() - 1)[0]]


def _shift_loss(
    d: torch.Tensor, c: torch.Tensor, w: torch.Tensor | None, s: float
) -> tuple[float, torch.Tensor]:
    """g(s) = min_t Σ w·|c − d·s − t| and its minimiser t (a weighted median), for d, c, w (n,)."""
    z = torch.add(c, d, alpha=-s)
    t = _weighted_median(z, w)
    z.sub_(t).abs_()
    return float((z if w is None else z.mul_(w)).sum()), t


def _is_constant(d_lo: float, d_hi: float, dtype: torch.dtype) -> bool:
    """Whether values in [d_lo, d_hi] are equal up to rounding (then every scale fits equally well)."""
    return d_hi - d_lo <= 4 * torch.finfo(dtype).eps * max(-d_lo, d_hi)


def _golden_line(
    d: torch.Tensor, c: torch.Tensor, w: torch.Tensor | None, s_init: float | None
) -> tuple[float, float]:
    """(s, t) minimising Σ w·|c − d·s − t| by golden-section search of the convex g(s) to float
    precision, bracketed by doubling steps from ``s_init`` (default: the median ratio)."""
    if s_init is None:
        s_init = float(_weighted_median(c, w) / _weighted_median(d, w))
        s_init = s_init if math.isfinite(s_init) else 0.0
    eps = torch.finfo(d.dtype).eps
    d_lo, d_hi = (float(x) for x in torch.aminmax(d))
    if _is_constant(d_lo, d_hi, d.dtype):
        return s_init, float(_weighted_median(torch.add(c, d, alpha=-s_init), w))
    scale = max(abs(s_init), float(c.max() - c.min()) / (d_hi - d_lo))
    step = 0.05 * scale if 0 < scale < math.inf else 1.0
    g = lambda s: _shift_loss(d, c, w, s)[0]
    f0, lo, hi = g(s_init), s_init - step, s_init + step
    flo, fhi = g(lo), g(hi)
    if min(flo, fhi) < f0:  # walk downhill with doubling steps until g rises
        sign = 1.0 if fhi < f0 else -1.0
        prev, x, fx = s_init, s_init + sign * step, min(flo, fhi)
        while True:
            step *= 2
            nxt = x + sign * step
            fn = g(nxt)
            if not fn < fx or not math.isfinite(nxt):
                break
            prev, x, fx = x, nxt, fn
        lo, hi = min(prev, nxt), max(prev, nxt)
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = g(a), g(b)
    while hi - lo > 4 * eps * max(abs(lo), abs(hi), 1e-3 * step):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            if not lo < a < b:
                break
            fa = g(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            if not a < b < hi:
                break
            fb = g(b)
    s = a if fa <= fb else b
    return s, float(_shift_loss(d, c, w, s)[1])


def _subsample(
    d: torch.Tensor, c: torch.Tensor, w: torch.Tensor | None, m: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A smaller weighted problem approximating (d, c, w): m points drawn with probability
    proportional to weight, each standing for 1/m of the drawn weight, plus every point heavier
    than 1/m of the total kept whole."""
    if w is None:
        idx = torch.randint(d.numel(), (m,), generator=generator, device=d.device)
        return d[idx], c[idx], None
    heavy = w >= w.sum() / m
    cw = torch.where(heavy, 0, w).cumsum(0)
    u = torch.rand(m, generator=generator, device=d.device, dtype=w.dtype).mul_(cw[-1])
    idx = torch.searchsorted(cw, u).clamp_(max=d.numel() - 1)
    ws = torch.cat([(cw[-1] / m).expand(m), w[heavy]])
    return torch.cat([d[idx], d[heavy]]), torch.cat([c[idx], c[heavy]]), ws


def _lad_line(
    d: torch.Tensor, c: torch.Tensor, w: torch.Tensor | None = None, s_init: float | None = None
) -> tuple[float, float]:
    """(s, t) minimising Σ w·|c − d·s − t| exactly (to float precision) for d, c, w (n,), w > 0
    (None: unit weights); see the comment above for the method."""
    n = d.numel()
    d_lo, d_hi = (float(x) for x in torch.aminmax(d))
    if n <= _DIRECT_MAX or _is_constant(d_lo, d_hi, d.dtype):
        return _golden_line(d, c, w, s_init)
    m = min(n // 4, max(_DIRECT_MAX // 2, int(n ** (2 / 3))))
    ds, cs, ws = _subsample(d, c, w, m, torch.Generator(device=d.device).manual_seed(n))
    s0, t0 = _lad_line(ds, cs, ws, s_init)
    # band |c − d·s0 − t0| ≤ lam·(|d − mean d| + sd d): the fit's error grows away from the mean
    d_mean, d_sd = float(ds.mean()), float(ds.std()) if ds.numel() > 1 else 0.0
    d_sd = d_sd if d_sd > 0 else 1.0
    q_sub = torch.add(cs, ds, alpha=-s0).sub_(t0).abs_().div_(ds.sub(d_mean).abs_().add_(d_sd))
    lam = float(q_sub.kthvalue(max(1, min(m, int(m**0.5 * _BAND_SE)))).values)
    q, buf = torch.add(c, d, alpha=-s0).sub_(t0), torch.empty_like(d)
    q.div_(torch.sub(d, d_mean, out=buf).abs_().add_(d_sd))
    upper, lower = q > lam, q < -lam
    active = ~(upper | lower)
    if w is None:
        totals = torch.stack([torch.full_like(d[0], n), d.sum(), c.sum()])
    else:
        totals = torch.stack([w.sum(), torch.dot(w, d), torch.dot(w, c)])
    c_lo, c_hi = torch.aminmax(c)
    c_max, d_max = float(torch.maximum(-c_lo, c_hi)), max(-d_lo, d_hi)
    wrong, rounds = torch.empty_like(active), 0
    while int(torch.count_nonzero(active)) + 2 <= n // 2:
        rounds += 1
        da, ca = d[active], c[active]
        wa = torch.ones_like(da) if w is None else w[active]
        wm = buf.copy_(upper) if w is None else torch.mul(w, upper, out=buf)
        up = torch.stack([wm.sum(), torch.dot(wm, d), torch.dot(wm, c)])
        low = totals - up - torch.stack([wa.sum(), torch.dot(wa, da), torch.dot(wa, ca)])
        globs = torch.stack([up, low])
        globs = globs[globs[:, 0] > 0]
        s, t = _lad_line(
            torch.cat([da, globs[:, 1] / globs[:, 0]]),
            torch.cat([ca, globs[:, 2] / globs[:, 0]]),
            torch.cat([wa, globs[:, 0]]),
            s0,
        )
        # replaced points must keep their sign (up to rounding) for (s, t) to minimise F
        r = torch.add(c, d, alpha=-s, out=buf).sub_(t)
        tol = 16 * torch.finfo(d.dtype).eps * (c_max + abs(s) * d_max + abs(t))
        torch.lt(r, -tol, out=wrong).logical_and_(upper).logical_or_(torch.gt(r, tol).logical_and_(lower))
        n_wrong = int(torch.count_nonzero(wrong))
        if n_wrong == 0:
            return s, t
        # wrong-signed points rejoin the problem (so each round grows it); many, or a third
        # round, widen the band
        wrong.logical_not_()
        upper &= wrong
        lower &= wrong
        if rounds > 2 or n_wrong > max(100, int(torch.count_nonzero(active)) // 10):
            lam *= 2
            upper &= q > lam
            lower &= q < -lam
        torch.logical_or(upper, lower, out=active).logical_not_()
    # no reduction: merge coincident points, else search over all of them
    points, inverse = torch.unique(torch.stack([d, c], 1), dim=0, return_inverse=True)
    if points.shape[0] <= n // 2:
        merged = torch.zeros(points.shape[0], dtype=d.dtype, device=d.device)
        merged.index_add_(0, inverse, torch.ones_like(d) if w is None else w)
        return _lad_line(points[:, 0].contiguous(), points[:, 1].contiguous(), merged, s0)
    return _golden_line(d, c, w, s0)


def scale_shift_l1(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) minimising Σ|s·pred + t − gt| (pred, gt (N,)) exactly, up to float rounding: the L1
    scale & shift alignment. Where the minimiser is not unique (e.g. constant pred) one of them."""
    if pred.shape != gt.shape or pred.ndim != 1 or pred.numel() == 0:
        raise ValueError(
            f"pred, gt: expected two non-empty (N,) tensors, received {tuple(pred.shape)}, {tuple(gt.shape)}"
        )
    if not bool(torch.isfinite(pred.sum() + gt.sum())):
        raise ValueError("pred, gt: expected finite values")
    s, t = _lad_line(pred, gt)
    return pred.new_tensor(s), pred.new_tensor(t)


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
