"""The video depth metrics against an independent transcription of the published protocol's
metric code (CUT3R's ``depth_evaluation`` as AETHER's evaluation calls it), written here from its
behaviour: masks, alignments, caps and metric order, each tensor in the dtype it arrives in."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aether.evaluation import VideoDepthMetric, video_depth_metrics
from aether.evaluation.depth_metrics import depth_sequence_stats

KEYS = {
    "Abs Rel": "abs_rel",
    "Sq Rel": "sq_rel",
    "RMSE": "rmse",
    "Log RMSE": "log_rmse",
    "d1": "delta_1_25",
    "d2": "delta_1_25_2",
    "d3": "delta_1_25_3",
}


def _edges(depth):
    shape = depth.shape
    d = depth.reshape(-1, 1, *shape[-2:])
    diff = F.max_pool2d(d, 3, stride=1, padding=1) + F.max_pool2d(-d, 3, stride=1, padding=1)
    edge = torch.zeros_like(d, dtype=torch.bool)
    edge |= (diff / d).nan_to_num_() > 0.03
    return edge.reshape(*shape)


def _adam(pred, gt, s_init):
    s = torch.tensor([s_init], requires_grad=True, dtype=pred.dtype)
    t = torch.tensor([0.0], requires_grad=True, dtype=pred.dtype)
    opt = torch.optim.Adam([s, t], lr=1e-4)
    prev = None
    for _ in range(1000):
        opt.zero_grad()
        loss = torch.sum(torch.abs(s * pred + t - gt))
        loss.backward()
        opt.step()
        if prev is not None and torch.abs(prev - loss) < 1e-6:
            break
        prev = loss.item()
    return s.detach().item(), t.detach().item()


def reference(pred_np, gt_np, align, max_depth=None, post_clip_max=None, mask_edge=False, custom=None):
    """The protocol, step by step: resize, mask, align, clip, custom mask, metrics."""
    pred_np = np.stack(
        [cv2.resize(f, (gt_np.shape[2], gt_np.shape[1]), interpolation=cv2.INTER_CUBIC) for f in pred_np]
    )
    pred0 = torch.from_numpy(pred_np)
    gt0 = torch.from_numpy(gt_np)
    w = gt0.shape[-1]
    pred0, gt0 = pred0.view(-1, w), gt0.view(-1, w)
    if custom is not None:
        custom = torch.from_numpy(custom).view(-1, w)
    mask = (gt0 > 0) & (gt0 < max_depth) if max_depth is not None else gt0 > 0
    if mask_edge:
        mask = mask & (~_edges(gt0))
    p, g = pred0[mask], gt0[mask]
    s = t = None
    if align == "scale&shiftl2":
        pn = p.numpy().reshape(-1, 1)
        A = np.hstack([pn, np.ones_like(pn)])
        res = np.linalg.lstsq(A, g.numpy().reshape(-1, 1), rcond=None)
        s, t = torch.tensor(res[0][0]), torch.tensor(res[0][1])
        p = s * p + t
    elif align == "scale&shift":
        s, t = _adam(p, g, (torch.median(g) / torch.median(p)).item())
        p = s * p + t
    elif align == "scale":
        s = torch.nanmean(g) / torch.nanmean(p)
        for _ in range(10):
            r = s * p - g
            wts = 1.0 / (r.abs() + 1e-8)
            s = torch.sum(wts * p * g) / torch.sum(wts * p**2)
        s = s.clamp(min=1e-3)
        p = s * p
    if post_clip_max is not None:
        p = torch.clamp(p, max=post_clip_max)
    if custom is not None:
        inner = custom[mask]
        p, g = p[inner], g[inner]
    out = {
        "Abs Rel": torch.mean(torch.abs(p - g) / g).item(),
        "Sq Rel": torch.mean(((p - g) ** 2) / g).item(),
        "RMSE": torch.sqrt(torch.mean((p - g) ** 2)).item(),
    }
    p = torch.clamp(p, min=1e-5)
    out["Log RMSE"] = torch.sqrt(torch.mean((torch.log(p) - torch.log(g)) ** 2)).item()
    ratio = torch.maximum(p / g, g / p)
    out["d1"] = torch.mean((ratio < 1.25).float()).item()
    out["d2"] = torch.mean((ratio < 1.25**2).float()).item()
    out["d3"] = torch.mean((ratio < 1.25**3).float()).item()
    out["valid"] = int(mask.sum()) if custom is None else int(inner.sum())
    out["st"] = (s, t)
    return out


def _case(seed, gt_dtype, pred_dtype, shape=(3, 24, 32), small=(12, 16)):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, 90.0, shape)
    gt[:, :2, :5] = -1.0  # holes stored as -1 (Bonn / KITTI)
    gt[0, 5, 5] = 0.0
    yy = np.linspace(0, 1, small[0])[None, :, None]
    pred = 1.0 / (0.02 + 0.3 * yy + 0.05 * rng.random((shape[0], *small)))  # an affine-in-disparity guess
    pred[0, 0, :4] = -2.0  # negative predictions on valid pixels
    return pred.astype(pred_dtype), gt.astype(gt_dtype)


def _assert_same(ours, ref, rel):
    for k, key in KEYS.items():
        assert ours[key] == pytest.approx(ref[k], rel=rel, abs=1e-300), key
    assert ours["valid"] == ref["valid"]


@pytest.mark.parametrize("align", ["scale", "scale&shiftl2", "metric"])
@pytest.mark.parametrize(
    "gt_dtype,pred_dtype",
    [(np.float32, np.float64), (np.float64, np.float64), (np.float32, np.float32), (np.float64, np.float32)],
)
@pytest.mark.parametrize("caps", [(None, None), (70.0, 70.0), (70.0, None)])
def test_closed_form_alignments_equal_the_protocol(align, gt_dtype, pred_dtype, caps):
    pred, gt = _case(1, gt_dtype, pred_dtype)
    ref = reference(pred, gt, align, *caps)
    ours = depth_sequence_stats(pred, gt, align, caps[0], None, caps[1])
    _assert_same(ours, ref, 1e-12)


@pytest.mark.parametrize(
    "gt_dtype,pred_dtype", [(np.float32, np.float64), (np.float64, np.float64), (np.float64, np.float32)]
)
def test_adam_alignment_equals_the_protocol(gt_dtype, pred_dtype):
    pred, gt = _case(2, gt_dtype, pred_dtype, shape=(2, 12, 16), small=(6, 8))
    ref = reference(pred, gt, "scale&shift", 70.0, 70.0)
    ours = depth_sequence_stats(pred, gt, "scale&shift", 70.0, None, 70.0)
    assert ours["scale"] == pytest.approx(ref["st"][0], rel=1e-9)
    assert ours["shift"] == pytest.approx(ref["st"][1], rel=1e-9, abs=1e-12)
    _assert_same(ours, ref, 1e-12)


@pytest.mark.parametrize("align", ["scale", "scale&shiftl2"])
def test_mask_edge_and_custom_mask_equal_the_protocol(align):
    pred, gt = _case(3, np.float64, np.float64)
    yy = np.linspace(0, 1, gt.shape[1])[None, :, None]
    gt = np.broadcast_to(30.0 + 5.0 * yy, gt.shape).copy()  # smooth: no edges ...
    gt[:, 10:, 16:] *= 1.5  # ... but along a depth step, the holes and the frame borders
    gt[:, :2, :5] = -1.0
    custom = np.random.default_rng(0).random(gt.shape) > 0.3
    ref = reference(pred, gt, align, 70.0, None, mask_edge=True, custom=custom)
    ours = depth_sequence_stats(pred, gt, align, 70.0, custom, None, mask_edge=True)
    _assert_same(ours, ref, 1e-12)
    assert ours["valid"] < depth_sequence_stats(pred, gt, align, 70.0)["valid"]


def test_delta_clamps_negative_predictions():
    # both ratios of a negative prediction are negative (< 1.25): the clamp to 1e-5 makes it a miss
    m = video_depth_metrics([[[-1.0, 2.0]]], [[[1.0, 2.0]]], align="metric")
    assert m["delta_1_25"] == 0.5
    for align in ("scale&shift-exact", "scale&shiftl2", "scale&shift", "scale"):
        gt = np.arange(1.0, 21.0).reshape(1, 4, 5)
        pred = gt.copy()
        pred[0, 0, 0] = -1.0  # stays negative after any of the alignments (s ≈ 1, t ≈ 0)
        stats = depth_sequence_stats(pred, gt, align)
        assert stats["nonpositive_pred"] == 1, align
        assert stats["delta_1_25"] == pytest.approx(19 / 20), align


def test_bad_predictions_name_the_sequence():
    gt = np.ones((1, 2, 2))
    with pytest.raises(ValueError, match="alley_2.*non-finite"):
        depth_sequence_stats(np.array([[[1.0, np.nan], [1.0, 1.0]]]), gt, "scale", name="alley_2")
    with pytest.raises(ValueError, match="alley_2.*nowhere positive"):
        depth_sequence_stats(-np.ones((1, 2, 2)), gt, "scale", name="alley_2")
    with pytest.raises(ValueError, match=r"scale&shift-exact"):
        depth_sequence_stats(gt, gt, "median")


def test_dataset_mean_is_the_valid_pixel_weighted_average():
    metric = VideoDepthMetric("scale", 70.0, 70.0)
    refs = []
    for seed in range(3):
        pred, gt = _case(seed, np.float32, np.float64, shape=(2 + seed, 12, 16), small=(6, 8))
        metric.update(pred, gt, sequence=f"s{seed}")
        refs.append(reference(pred, gt, "scale", 70.0, 70.0))
    out = metric.compute()
    weights = [r["valid"] for r in refs]
    for k, key in KEYS.items():
        assert out[key] == pytest.approx(np.average([r[k] for r in refs], weights=weights), rel=1e-12)


def test_exact_scale_shift_option_takes_mixed_dtypes_and_beats_adam_on_l1():
    pred, gt = _case(5, np.float32, np.float64, shape=(2, 12, 16), small=(6, 8))
    exact = depth_sequence_stats(pred, gt, "scale&shift-exact", 70.0)
    adam = depth_sequence_stats(pred, gt, "scale&shift", 70.0)
    g = gt.reshape(-1)
    p = cv2.resize(pred[0], (16, 12), interpolation=cv2.INTER_CUBIC)
    p = np.stack([p, cv2.resize(pred[1], (16, 12), interpolation=cv2.INTER_CUBIC)]).reshape(-1)
    keep = (g > 0) & (g < 70)
    loss = lambda s, t: np.abs(s * p[keep] + t - g[keep]).sum()
    assert loss(exact["scale"], exact["shift"]) <= loss(adam["scale"], adam["shift"]) + 1e-9


def test_mean_row_averages_nonpositive_counts_over_sequences():
    from aether.evaluation.depth_metrics import VideoDepthMetric

    metric = VideoDepthMetric(align="metric")
    gt = np.arange(1.0, 21.0).reshape(1, 4, 5)
    for bad in (1, 3):  # 1 and 3 non-positive pixels: the mean row says 2, not the sum 4
        pred = gt.copy()
        pred.reshape(-1)[:bad] = -1.0
        metric.update(pred, gt)
    assert [s["nonpositive_pred"] for s in metric.sequence_stats] == [1, 3]
    assert metric.compute()["nonpositive_pred"] == 2.0
