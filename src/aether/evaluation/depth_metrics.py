"""Video depth metrics with the protocol of the published evaluation (CUT3R's, as AETHER runs it).

A sequence's prediction (T,h,w) is resized to the ground truth's size (OpenCV bicubic, per frame),
aligned to the ground truth on the valid pixels (0 < gt < max_depth; optionally off depth edges)
with one per-sequence alignment, clipped to the dataset's cap, and scored: Abs Rel, Sq Rel, RMSE on
the aligned prediction; log RMSE and the δ thresholds after clamping it to ≥ 1e-5.

Arithmetic follows the protocol: every tensor stays in the dtype it arrives in (Sintel ground
truth float32, Bonn and KITTI float64, predictions float64 after window blending) and mixes by
torch's promotion rules, and each alignment runs the protocol's operations in its order:

- ``scale``: s = mean(gt) / mean(pred), then 10 Weiszfeld steps s = Σ w·pred·gt / Σ w·pred² with
  w = 1 / (|s·pred − gt| + 1e-8), clamped to ≥ 1e-3;
- ``scale&shift``: Adam (lr 1e-4, at most 1000 steps) on Σ|s·pred + t − gt| from
  s = median(gt) / median(pred) (torch's lower median), t = 0, s and t in the prediction's dtype,
  stopping when the loss changes by less than 1e-6;
- ``scale&shiftl2``: least squares (LAPACK gelsd through numpy, as the protocol);
- ``metric``: none.

``scale&shift-exact`` (not in the protocol) is the exact L1 optimum of the same loss.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

from aether.evaluation.names import ALIGNMENTS

METRICS = ("abs_rel", "sq_rel", "rmse", "log_rmse", "delta_1_25", "delta_1_25_2", "delta_1_25_3")
PRED_FLOOR = 1e-5  # the aligned prediction is clamped to this before log RMSE and δ
EDGE_RTOL = 0.03  # mask_edge: relative depth jump over a 3x3 neighbourhood marking an edge


def as_tensor(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert an array-like to a tensor of ``dtype`` (device kept for tensors); bool or complex
    input for a numeric ``dtype`` raises ValueError naming ``name``."""
    kind = x.dtype if isinstance(x, torch.Tensor) else np.asarray(x).dtype if not isinstance(x, str) else None
    if dtype != torch.bool and kind is not None and (kind in (torch.bool, np.bool_) or _complex(kind)):
        raise ValueError(f"{name}: expected real numbers, received dtype {kind}")
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, list | tuple):
        return torch.as_tensor(np.asarray(x), dtype=dtype)
    raise ValueError(f"{name}: expected an array or tensor, received {type(x).__name__}")


REFERENCE_DTYPES = (torch.float32, torch.float64)  # the protocol's arithmetic dtypes, kept as they come


def _complex(dtype: Any) -> bool:
    return dtype.is_complex if isinstance(dtype, torch.dtype) else np.issubdtype(dtype, np.complexfloating)


def as_depth_tensor(x: Any, name: str) -> torch.Tensor:
    """A depth array as a tensor: float32 and float64 keep their dtype (the protocol's arithmetic),
    other real numbers (float16, bfloat16, integers) become float64; numpy arrays share memory.
    Bool, complex and non-numeric arrays raise ValueError naming ``name``."""
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, list | tuple):
        a = np.asarray(x)
        if a.dtype.kind not in "fiu":
            raise ValueError(
                f"{name}: expected real depth values (float or integer), received dtype {a.dtype}"
            )
        x = torch.from_numpy(a if a.dtype in (np.float32, np.float64) else a.astype(np.float64))
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected an array or tensor, received {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name}: expected real depth values (float or integer), received dtype {x.dtype}")
    return x if x.dtype in REFERENCE_DTYPES else x.double()


def resize_depth(pred: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a depth video (T,h,w) to (T,*size) frame by frame with OpenCV's bicubic (INTER_CUBIC),
    in its dtype; a no-op when sizes agree."""
    import cv2

    if tuple(pred.shape[-2:]) == tuple(size):
        return pred
    frames = pred.detach().cpu().numpy()
    out = np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for f in frames])
    return torch.from_numpy(out).to(pred.device)


def depth_edges(depth: torch.Tensor, rtol: float = EDGE_RTOL, kernel_size: int = 3) -> torch.Tensor:
    """Pixels of a depth image (H,W) where (max − min over the 3x3 neighbourhood) / depth > rtol.

    The protocol runs this on the sequence's frames stacked into one (T·H, W) image, so
    neighbourhoods cross frame borders; invalid pixels keep their stored value (−1 for Bonn and
    KITTI), which makes their neighbours edges."""
    x = depth.reshape(1, 1, *depth.shape[-2:])
    pad = kernel_size // 2
    spread = F.max_pool2d(x, kernel_size, 1, pad) + F.max_pool2d(-x, kernel_size, 1, pad)
    return ((spread / x).nan_to_num_() > rtol).reshape(depth.shape)


def _promoted_like(gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """gt converted (exactly) to pred's dtype when every product with pred is in that dtype anyway,
    so the loops below skip a per-operation conversion without changing any rounding."""
    if gt.dtype != pred.dtype and torch.promote_types(pred.dtype, gt.dtype) == pred.dtype:
        return gt.to(pred.dtype)
    return gt


def scale_l1_weiszfeld(pred: torch.Tensor, gt: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """The protocol's L1 scale for pred, gt (N,): s = mean(gt) / mean(pred) (nan-means), then
    ``iterations`` Weiszfeld steps s = Σ(w·pred·gt) / Σ(w·pred²), w = 1 / (|s·pred − gt| + 1e-8),
    each product and sum in this order and in the inputs' dtypes; clamped to ≥ 1e-3. Returns a
    0-dim tensor."""
    s = torch.nanmean(gt) / torch.nanmean(pred)
    gt = _promoted_like(gt, pred)
    pp = pred**2
    for _ in range(iterations):
        r = torch.mul(s, pred)
        r = r.sub_(gt) if r.dtype == torch.promote_types(r.dtype, gt.dtype) else r - gt
        w = r.abs_().add_(1e-8).reciprocal_()  # 1 / (|s·pred − gt| + 1e-8)
        num = torch.sum(torch.mul(w, pred).mul_(gt))
        s = num / torch.sum(w.mul_(pp))
    return s.clamp(min=1e-3)


def scale_shift_adam(
    pred: torch.Tensor,
    gt: torch.Tensor,
    lr: float = 1e-4,
    max_iters: int = 1000,
    tol: float = 1e-6,
) -> tuple[float, float]:
    """The protocol's ``scale&shift``: Adam on Σ|s·pred + t − gt| (pred, gt (N,)).

    Starts from s = median(gt) / median(pred) (torch's lower medians), t = 0, both one-element
    tensors in pred's dtype on its device. Per step: evaluate the loss, set the gradients, take an
    Adam step; then stop when |previous loss − loss| < ``tol`` (the loss evaluated before the
    step). The gradients (Σ sign(r)·pred, Σ sign(r), r = s·pred + t − gt) are formed in one reused
    buffer with the same roundings and reductions as autograd's, so (s, t) equal the autograd loop
    bit for bit at about half the memory traffic. Returns (s, t) as Python floats."""
    s_init = (torch.median(gt) / torch.median(pred)).item()
    s = torch.tensor([s_init], dtype=pred.dtype, device=pred.device)
    t = torch.zeros(1, dtype=pred.dtype, device=pred.device)
    s.grad, t.grad = torch.zeros_like(s), torch.zeros_like(t)
    opt = torch.optim.Adam([s, t], lr=lr)
    gt = _promoted_like(gt, pred)
    a = torch.empty_like(pred)  # s·pred + t, in pred's dtype; then the sign of the residual
    r = a if torch.promote_types(pred.dtype, gt.dtype) == pred.dtype else torch.empty_like(gt)
    prev = None
    for _ in range(max_iters):
        torch.mul(s, pred, out=a)
        a.add_(t)
        torch.sub(a, gt, out=r)
        loss = torch.sum(torch.abs(r))
        r.sign_()
        if r is not a:  # autograd casts the gradient to the dtype of s·pred + t
            a.copy_(r)
        t.grad.copy_(a.sum().reshape(1))
        s.grad.copy_(a.mul_(pred).sum().reshape(1))
        opt.step()
        if prev is not None and torch.abs(prev - loss) < tol:
            break
        prev = loss.item()
    return s.item(), t.item()


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
    """Least-squares (s, t) minimising Σ(s·pred + t − gt)² (pred, gt (N,)), solved as the protocol
    does (numpy ``lstsq`` of [pred, 1] against gt, rcond=None, in their promoted dtype). Returns
    one-element tensors in that dtype."""
    p = pred.detach().cpu().numpy().reshape(-1, 1)
    sol = np.linalg.lstsq(
        np.hstack([p, np.ones_like(p)]), gt.detach().cpu().numpy().reshape(-1, 1), rcond=None
    )[0]
    return torch.tensor(sol[0], device=pred.device), torch.tensor(sol[1], device=pred.device)


def check_alignment(align: str) -> str:
    """``align`` if it names an alignment, else a ValueError listing the valid ones."""
    if align not in ALIGNMENTS:
        raise ValueError(f"align: expected one of {', '.join(ALIGNMENTS)}; received {align!r}")
    return align


def aligned_prediction(pred: torch.Tensor, gt: torch.Tensor, align: str) -> tuple[torch.Tensor, float, float]:
    """The aligned prediction s·pred + t (pred, gt (N,)) with the arithmetic of the protocol, and
    (s, t) as floats."""
    check_alignment(align)
    if align == "metric":
        return pred, 1.0, 0.0
    if align == "scale":
        s = scale_l1_weiszfeld(pred, gt)
        return s * pred, float(s), 0.0
    if align == "scale&shift":
        s, t = scale_shift_adam(pred, gt)
    elif align == "scale&shiftl2":
        s_t, t_t = scale_shift_l2(pred, gt)
        return s_t * pred + t_t, float(s_t), float(t_t)
    else:
        common = torch.promote_types(pred.dtype, gt.dtype)
        s_e, t_e = scale_shift_l1(pred.to(common), gt.to(common))
        s, t = float(s_e), float(t_e)
    return s * pred + t, s, t


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
    mask_edge: bool = False,
    name: str = "sequence",
) -> dict[str, Any]:
    """Score one sequence with the protocol: the seven metrics, ``valid`` (pixel count), ``scale``,
    ``shift`` and ``nonpositive_pred`` (valid pixels whose aligned prediction was ≤ 0 and was
    clamped to 1e-5 for log RMSE and δ).

    pred_depth (T,h,w), gt_depth (T,H,W) arrays or tensors, each kept in its dtype; pred is resized
    bicubically to (H,W). Valid = 0 < gt (< max_depth), finite, and off depth edges with
    ``mask_edge``; the alignment uses all valid pixels. ``mask`` (T,H,W) bool then restricts the
    pixels scored (as the protocol's custom mask). The aligned prediction is clipped to
    ``post_clip_max``. A prediction that is non-finite, or nowhere positive, on the valid pixels
    raises a ValueError naming ``name``.
    """
    check_alignment(align)
    gt = as_depth_tensor(gt_depth, "gt_depth")
    pred = as_depth_tensor(pred_depth, "pred_depth").to(gt.device)
    _check_video(gt, "gt_depth")
    _check_video(pred, "pred_depth")
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(
            f"{name}: pred_depth has {pred.shape[0]} frames, expected {gt.shape[0]} like gt_depth"
        )
    pred = resize_depth(pred, tuple(gt.shape[-2:]))
    flat_gt = gt.reshape(-1, gt.shape[-1])  # the protocol scores the frames stacked as (T·H, W)
    valid = (flat_gt > 0) & torch.isfinite(flat_gt)
    if max_depth is not None:
        valid &= flat_gt < max_depth
    if mask_edge:
        valid &= ~depth_edges(flat_gt)
    p, g = pred.reshape(-1, gt.shape[-1])[valid], flat_gt[valid]
    if p.numel() == 0:
        raise ValueError(f"{name}: gt_depth has no valid pixels (expected 0 < gt < max_depth somewhere)")
    if not bool(torch.isfinite(p).all()):
        bad = int((~torch.isfinite(p)).sum())
        raise ValueError(f"{name}: pred_depth has {bad} non-finite values on valid ground-truth pixels")
    if not bool((p > 0).any()):
        raise ValueError(
            f"{name}: pred_depth is nowhere positive on the valid ground-truth pixels "
            "(expected depth, received zeros or negative values: disparity or an inverted sign?)"
        )
    _check_scales(p, g, name)
    p, s, t = aligned_prediction(p, g, align)
    if post_clip_max is not None:
        p = torch.clamp(p, max=post_clip_max)
    if mask is not None:
        m = as_tensor(mask, "mask", torch.bool).to(gt.device)
        if m.shape != gt.shape:
            raise ValueError(f"{name}: mask has shape {tuple(m.shape)}, expected {tuple(gt.shape)}")
        keep = m.reshape(valid.shape)[valid]
        p, g = p[keep], g[keep]
        if p.numel() == 0:
            raise ValueError(f"{name}: mask leaves no valid pixel to score")
    stats = protocol_metrics(p, g)
    return {**stats, "valid": int(p.numel()), "scale": s, "shift": t, "nonpositive_pred": int((p <= 0).sum())}


def _check_scales(p: torch.Tensor, g: torch.Tensor, name: str) -> None:
    """ValueError when the prediction's scale is so far from the ground truth's that the alignment
    would under- or overflow in the arithmetic dtype (e.g. 1e-30·gt: products vanish in float32)."""
    pred_scale, gt_scale = float(p.abs().max()), float(g.abs().max())
    dtype = torch.promote_types(p.dtype, g.dtype)
    limit = torch.finfo(dtype).eps ** -1  # ratios beyond 1/eps lose every digit of the alignment
    ratio = pred_scale / gt_scale
    if not (1 / limit <= ratio <= limit):
        raise ValueError(
            f"{name}: pred_depth's scale ({pred_scale:.3g}) is {ratio:.3g} times the ground truth's "
            f"({gt_scale:.3g}); expected within a factor {limit:.3g} ({dtype} cannot align it)"
        )


def protocol_metrics(p: torch.Tensor, g: torch.Tensor) -> dict[str, float]:
    """The seven metrics of an aligned, clipped prediction p against g (N,), in the protocol's
    order: Abs Rel, Sq Rel, RMSE; then p clamped to ≥ 1e-5; log RMSE, δ < 1.25, 1.25², 1.25³."""
    err = p - g
    out = {
        "abs_rel": torch.mean(torch.abs(err) / g).item(),
        "sq_rel": torch.mean(err**2 / g).item(),
        "rmse": torch.sqrt(torch.mean(err**2)).item(),
    }
    p = torch.clamp(p, min=PRED_FLOOR)
    out["log_rmse"] = torch.sqrt(torch.mean((torch.log(p) - torch.log(g)) ** 2)).item()
    ratio = torch.maximum(p / g, g / p)
    for key, bound in (("delta_1_25", 1.25), ("delta_1_25_2", 1.25**2), ("delta_1_25_3", 1.25**3)):
        out[key] = torch.mean((ratio < bound).float()).item()
    return out


def video_depth_metrics(
    pred_depth: Any,
    gt_depth: Any,
    align: str = "scale",
    max_depth: float | None = None,
    mask: Any = None,
    post_clip_max: float | None = None,
    mask_edge: bool = False,
) -> dict[str, float]:
    """The seven video depth metrics (``METRICS``) of one depth video after one per-sequence
    alignment (see :func:`depth_sequence_stats`; the aligned prediction is clipped to
    ``post_clip_max``, default ``max_depth``), computed in float64 whatever the inputs' dtype
    (:class:`VideoDepthMetric` keeps the protocol's float32 / float64 arithmetic)."""
    clip = max_depth if post_clip_max is None else post_clip_max
    pred_depth = as_depth_tensor(pred_depth, "pred_depth").double()
    gt_depth = as_depth_tensor(gt_depth, "gt_depth").double()
    stats = depth_sequence_stats(pred_depth, gt_depth, align, max_depth, mask, clip, mask_edge)
    return {k: stats[k] for k in METRICS}


class VideoDepthMetric(Metric):
    """Dataset-level video depth metric: each ``update`` scores one sequence; ``compute`` returns
    each metric's mean weighted by the sequences' valid-pixel counts (the protocol's dataset
    mean) and ``nonpositive_pred`` as the mean count per sequence (a mean row, not a total). States
    are sums, so distributed ranks reduce correctly; ``sequence_stats`` keeps this
    process's per-sequence results in update order."""

    full_state_update = False
    higher_is_better = None  # per key: aether.evaluation.names.LOWER_IS_BETTER (delta_* go up)

    def __init__(
        self,
        align: str = "scale",
        max_depth: float | None = None,
        post_clip_max: float | None = None,
        mask_edge: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.align = check_alignment(align)
        self.max_depth, self.post_clip_max, self.mask_edge = max_depth, post_clip_max, mask_edge
        for name in (*METRICS, "valid", "nonpositive_pred", "sequences"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.sequence_stats: list[dict[str, Any]] = []

    def update(self, pred_depth: Any, gt_depth: Any, mask: Any = None, sequence: str = "sequence") -> None:  # type: ignore[override]
        """Score one sequence: pred (T,h,w), gt (T,H,W), optional mask (T,H,W) bool; ``sequence``
        names it in error messages."""
        stats = depth_sequence_stats(
            pred_depth,
            gt_depth,
            self.align,
            self.max_depth,
            mask,
            self.post_clip_max,
            self.mask_edge,
            sequence,
        )
        for key in METRICS:
            setattr(self, key, getattr(self, key) + stats[key] * stats["valid"])
        self.valid += stats["valid"]
        self.nonpositive_pred += stats["nonpositive_pred"]
        self.sequences += 1
        self.sequence_stats.append(stats)

    def reset(self) -> None:
        super().reset()
        self.sequence_stats = []

    def compute(self) -> dict[str, float]:
        n = float(self.valid)
        if n == 0:
            raise ValueError("VideoDepthMetric: no sequence was scored (expected update() calls)")
        out = {key: float(getattr(self, key)) / n for key in METRICS}
        return {**out, "nonpositive_pred": float(self.nonpositive_pred) / float(self.sequences)}
