"""Camera accuracy of the whole pipeline on synthetic clips with moving objects, against ground truth."""

import numpy as np
import pytest

from aether.annotate import Annotator
from aether.annotate.features import support_mask


def _check_slice(report, *, ate: bool, focal: bool) -> None:
    gt = report["ground_truth"]
    if ate:
        assert gt["refined_ate_rel"] <= 0.01, gt
    assert gt["refined_rpe_rot_deg"] < 0.2, gt
    if focal:
        assert report["focal_estimated"]
        assert gt["refined_focal_rel_err"] < 0.01, gt
    reproj = report["reprojection_px"]
    assert reproj["refined"]["median"] < reproj["coarse"]["median"]
    assert reproj["refined"]["mean"] < reproj["coarse"]["mean"]


@pytest.mark.slow
def test_forward_with_lights_out_drops_untextured_frames_and_meets_accuracy(render, to_input):
    clip = render("forward", blackout=True)
    assert clip.dynamic.any() and clip.untextured.any()
    _, report = Annotator().annotate(to_input(clip))
    dropped = {f["index"] for f in report["frames"] if not f["kept"]}
    assert set(np.flatnonzero(clip.untextured)) <= dropped
    assert report["slices"], report["frames"]
    for s in report["slices"]:
        _check_slice(s, ate=True, focal=False)


@pytest.mark.parametrize(("trajectory", "estimate"), [("strafe", False), ("turn", True), ("handheld", True)])
def test_accuracy_per_trajectory(trajectory, estimate, render, to_input):
    """Strafe: translation; turn: pure rotation (no trajectory length: no ATE); handheld: shake."""
    clip = render(trajectory)
    _, report = Annotator(estimate_intrinsics=estimate).annotate(to_input(clip))
    assert len(report["slices"]) == 1 and report["slices"][0]["frames"] == [0, clip.num_frames - 1]
    _check_slice(report["slices"][0], ate=trajectory != "turn", focal=estimate)


def test_dynamic_pixels_never_reach_the_solver(render):
    clip = render("strafe", seed=3)  # a street: cars and people cover ~18 % of the pixels
    annotator = Annotator()
    support = np.stack([support_mask(~m, d) for m, d in zip(clip.dynamic, clip.depth)])
    assert clip.dynamic.mean() > 0.1
    tracks = annotator.build_tracks(clip.rgb, clip.depth, support)
    n, t = np.nonzero(tracks.visible)
    u = np.round(tracks.uv[n, t, 0]).astype(int)
    v = np.round(tracks.uv[n, t, 1]).astype(int)
    assert len(n) > 1000
    assert not clip.dynamic[t, v, u].any()


def test_fully_dynamic_frame_is_dropped(render, to_input):
    clip = render("strafe")
    dynamic = clip.dynamic.copy()
    dynamic[10] = True
    data = to_input(clip)
    data.extras["dynamic"] = dynamic
    _, report = Annotator().annotate(data)
    assert report["frames"][10]["reason"] == "dynamic"
    assert [s["frames"] for s in report["slices"]] == [[0, 9], [11, 20]]
