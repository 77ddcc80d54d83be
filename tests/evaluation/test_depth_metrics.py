import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import sparse
from scipy.optimize import linprog, minimize

from aether.evaluation import VideoDepthMetric, video_depth_metrics
from aether.evaluation import depth_metrics as dm
from aether.evaluation.depth_metrics import depth_sequence_stats, scale_shift_l1


def _gt(seed=0, shape=(3, 8, 10)):
    return np.random.default_rng(seed).uniform(1.0, 10.0, shape)


@pytest.mark.parametrize("align", ["scale", "scale&shift-exact", "scale&shiftl2"])
def test_known_scale_gives_zero_error(align):
    gt = _gt()
    m = video_depth_metrics(2.5 * gt, gt, align=align)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-7)  # 10 Weiszfeld steps (scale) stop short of exact
    assert m["delta_1_25"] == 1.0


@pytest.mark.parametrize("align", ["scale&shift-exact", "scale&shiftl2"])
def test_known_scale_and_shift_gives_zero_error(align):
    gt = _gt(1)
    m = video_depth_metrics(0.5 * gt + 3.0, gt, align=align)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-7)


def test_metric_alignment_known_per_pixel_errors():
    gt = np.array([1.0, 2.0, 4.0, 5.0]).reshape(1, 2, 2)
    pred = np.array([1.1, 2.0, 5.0, 2.0]).reshape(1, 2, 2)
    m = video_depth_metrics(pred, gt, align="metric")
    assert m["abs_rel"] == pytest.approx((0.1 + 0 + 0.25 + 0.6) / 4)
    assert m["delta_1_25"] == pytest.approx(0.5)  # 1.1, 1.0 pass; exactly 1.25 and 2.5 fail


def test_scale_alignment_is_the_l1_scale():
    rng = np.random.default_rng(3)
    gt = rng.uniform(1, 5, (2, 6, 7))
    pred = gt / 3.0 * rng.uniform(0.9, 1.1, gt.shape)
    pred[0, 0, :3] = 8.0  # outliers an L2 scale would follow
    s = depth_sequence_stats(pred, gt, "scale")["scale"]
    # the exact L1 scale is the weighted median of gt/pred with weights pred
    r, w = (gt / pred).ravel(), pred.ravel()
    order = np.argsort(r)
    cw = np.cumsum(w[order])
    s_exact = r[order][np.searchsorted(cw, cw[-1] / 2)]
    l1 = lambda k: np.abs(k * pred - gt).sum()
    # 10 reweighted steps from mean(gt)/mean(pred) get close to the L1 optimum (not exactly to it)
    assert l1(s_exact) <= l1(s) <= 1.01 * l1(s_exact)
    assert l1(s) < l1(gt.mean() / pred.mean())
    assert abs(s - 3.0) < 0.1


def test_scale_alignment_starts_at_mean_ratio_and_clamps():
    gt = np.ones((1, 2, 2))
    pred = np.full((1, 2, 2), 1e6)
    assert depth_sequence_stats(pred, gt, "scale")["scale"] == pytest.approx(1e-3)


def test_scale_shift_l1_reaches_the_l1_minimum():
    rng = np.random.default_rng(4)
    gt = rng.uniform(1, 5, (2, 5, 6))
    pred = 0.4 * gt + 1.0 + rng.laplace(0, 0.2, gt.shape)
    st = depth_sequence_stats(pred, gt, "scale&shift-exact")
    loss = lambda p: np.abs(p[0] * pred + p[1] - gt).mean()
    ref = minimize(
        loss, [2.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}
    )
    assert loss([st["scale"], st["shift"]]) <= ref.fun + 1e-6


def _l1_loss(pred, gt, s, t):
    return float(np.abs(s * pred + t - gt).sum())


def _exhaustive_l1(pred, gt):
    """Exact minimum of Σ|s·pred + t − gt|: some minimiser makes two residuals vanish (one when pred
    is constant), so try every line through two points and every horizontal line through one."""
    i, j = np.triu_indices(pred.size, 1)
    i, j = i[pred[i] != pred[j]], j[pred[i] != pred[j]]
    s = np.concatenate([(gt[i] - gt[j]) / (pred[i] - pred[j]), np.zeros(pred.size)])
    t = np.concatenate([gt[i] - s[: i.size] * pred[i], gt])
    return np.abs(s[:, None] * pred[None] + t[:, None] - gt[None]).sum(1).min()


def _linprog_l1(pred, gt):
    """Minimum of Σ|s·pred + t − gt| from the linear program min Σ(u + v) s.t.
    s·pred + t − u + v = gt, u, v ≥ 0 (HiGHS), polished to the exact vertex: the line through the
    two points nearest the solver's line, when that is better."""
    n = pred.size
    eye = sparse.eye(n)
    res = linprog(
        np.r_[0.0, 0.0, np.ones(2 * n)],
        A_eq=sparse.hstack([np.c_[pred, np.ones(n)], -eye, eye]).tocsr(),
        b_eq=gt,
        bounds=[(None, None)] * 2 + [(0, None)] * (2 * n),
        method="highs",
    )
    assert res.status == 0
    s, t = res.x[:2]
    best = _l1_loss(pred, gt, s, t)
    i, j = np.argsort(np.abs(s * pred + t - gt))[:2]
    if pred[i] != pred[j]:
        s = (gt[i] - gt[j]) / (pred[i] - pred[j])
        best = min(best, _l1_loss(pred, gt, s, gt[i] - s * pred[i]))
    return best


def _case(kind, n, seed):
    """(pred, gt) (n,) for the adversarial and random cases of the L1 scale & shift tests."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(1, 10, n)
    if kind == "noise":
        pred = 0.3 * gt + 0.5 + rng.normal(0, 0.3, n)
    elif kind == "outliers":  # a quarter of the points far off, on one side
        pred = 2.0 * gt - 1.0 + rng.laplace(0, 0.1, n)
        pred[: n // 4] = rng.uniform(50, 100, n // 4)
    elif kind == "ties":  # few distinct values: many coincident points and tied residuals
        gt = rng.integers(1, 5, n).astype(float)
        pred = np.round(gt / 2 + rng.integers(0, 2, n))
    elif kind == "constant":
        pred = np.full(n, 3.0)
    elif kind == "exact":  # every point on one line
        pred = gt / 2.5 - 0.2
    elif kind == "anticorrelated":  # the minimiser has a negative scale
        pred = 20.0 - gt + rng.normal(0, 0.5, n)
    else:  # two clusters with very different spreads
        pred = np.where(rng.random(n) < 0.5, 1e-3, 1e3) * rng.uniform(1, 2, n)
    return pred, gt


CASES = ["noise", "outliers", "ties", "constant", "exact", "anticorrelated", "clusters"]


def _assert_l1_minimum(pred, gt, reference):
    s, t = scale_shift_l1(torch.from_numpy(pred), torch.from_numpy(gt))
    assert s.dtype == torch.float64 and s.shape == t.shape == ()
    loss = _l1_loss(pred, gt, float(s), float(t))
    assert loss <= reference * (1 + 1e-9) + 1e-12 * np.abs(gt).sum()


@pytest.mark.parametrize("kind", CASES)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_scale_shift_l1_matches_exhaustive_search(kind, n):
    pred, gt = _case(kind, n, n)
    _assert_l1_minimum(pred, gt, _exhaustive_l1(pred, gt))


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("kind", CASES)
def test_scale_shift_l1_reduction_matches_linear_program(kind, seed, monkeypatch):
    # a tiny direct-search limit sends 1500 points through several levels of reduction
    monkeypatch.setattr(dm, "_DIRECT_MAX", 16)
    pred, gt = _case(kind, 1500, seed)
    _assert_l1_minimum(pred, gt, _linprog_l1(pred, gt))


@pytest.mark.parametrize("n", [20000, 2000])
def test_scale_shift_l1_constant_pred_takes_the_median_shift(n, monkeypatch):
    # any scale fits a constant prediction; the shift must then be the median residual
    monkeypatch.setattr(dm, "_DIRECT_MAX", 16)
    pred, gt = _case("constant", n, 7180294)
    s, t = scale_shift_l1(torch.from_numpy(pred), torch.from_numpy(gt))
    assert abs(float(s)) < 10
    assert _l1_loss(pred, gt, float(s), float(t)) == pytest.approx(
        np.abs(gt - np.median(gt)).sum(), rel=1e-12
    )


@pytest.mark.parametrize("kind", ["noise", "outliers", "ties"])
def test_scale_shift_l1_large_problem_matches_linear_program(kind):
    pred, gt = _case(kind, 6000, 12)
    _assert_l1_minimum(pred, gt, _linprog_l1(pred, gt))


def test_scale_shift_l1_float32_and_input_validation():
    pred, gt = _case("noise", 3000, 13)
    s, t = scale_shift_l1(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    assert s.dtype == torch.float32
    assert _l1_loss(pred, gt, float(s), float(t)) <= _linprog_l1(pred, gt) * (1 + 1e-5)
    with pytest.raises(ValueError, match=r"\(N,\)"):
        scale_shift_l1(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="finite"):
        scale_shift_l1(torch.tensor([1.0, float("nan")]), torch.ones(2))


def test_scale_shift_l2_is_ordinary_least_squares():
    rng = np.random.default_rng(5)
    gt = rng.uniform(1, 5, (2, 5, 6))
    pred = rng.uniform(1, 5, gt.shape)
    st = depth_sequence_stats(pred, gt, "scale&shiftl2")
    s, t = np.polyfit(pred.ravel(), gt.ravel(), 1)
    assert (st["scale"], st["shift"]) == pytest.approx((s, t), rel=1e-9)


def test_max_depth_masks_gt_and_caps_prediction():
    gt = np.array([10.0, 60.0, 80.0, 0.0]).reshape(1, 2, 2)
    pred = np.array([10.0, 100.0, 5.0, 7.0]).reshape(1, 2, 2)
    stats = depth_sequence_stats(pred, gt, "metric", max_depth=70.0, post_clip_max=70.0)
    assert stats["valid"] == 2
    assert stats["abs_rel"] == pytest.approx((0 + 10 / 60) / 2)
    # the function entry point caps at max_depth by default
    assert video_depth_metrics(pred, gt, "metric", max_depth=70.0)["abs_rel"] == pytest.approx(
        stats["abs_rel"]
    )


def test_mask_restricts_valid_pixels():
    gt = np.full((1, 2, 2), 2.0)
    pred = np.array([2.0, 2.0, 2.0, 4.0]).reshape(1, 2, 2)
    mask = np.array([True, True, True, False]).reshape(1, 2, 2)
    assert video_depth_metrics(pred, gt, "metric", mask=mask)["abs_rel"] == 0.0


def test_prediction_is_resized_bicubically_to_gt():
    small = torch.rand(2, 6, 8, dtype=torch.float64) + 1
    gt = F.interpolate(small[:, None], size=(12, 16), mode="bicubic", align_corners=False)[:, 0]
    assert video_depth_metrics(small, gt, align="metric")["abs_rel"] == pytest.approx(0, abs=1e-12)
    nearest = F.interpolate(small[:, None], size=(12, 16), mode="nearest")[:, 0]
    assert video_depth_metrics(small, nearest, align="metric")["abs_rel"] > 1e-3


def test_dataset_mean_weights_sequences_by_valid_pixels():
    metric = VideoDepthMetric(align="metric")
    gt1, pred1 = np.full((1, 2, 2), 1.0), np.full((1, 2, 2), 1.5)  # abs_rel 0.5 over 4 pixels
    gt2, pred2 = np.full((1, 1, 1), 2.0), np.full((1, 1, 1), 2.0)  # abs_rel 0 over 1 pixel
    metric.update(pred1, gt1)
    metric.update(pred2, gt2)
    out = metric.compute()
    assert out["abs_rel"] == pytest.approx(0.5 * 4 / 5)
    assert out["delta_1_25"] == pytest.approx(1 / 5)
    assert [s["valid"] for s in metric.sequence_stats] == [4, 1]
    metric.reset()
    assert metric.sequence_stats == []


def test_input_validation():
    gt = _gt()
    with pytest.raises(ValueError, match=r"\(T,H,W\)"):
        video_depth_metrics(gt[0], gt)
    with pytest.raises(ValueError, match="frames"):
        video_depth_metrics(gt[:2], gt)
    with pytest.raises(ValueError, match="no valid pixels"):
        video_depth_metrics(gt, np.zeros_like(gt))
    with pytest.raises(ValueError, match="align"):
        video_depth_metrics(gt, gt, align="median")
