"""Metrics refuse what they cannot score: non-finite or off-scale videos, non-rigid poses, a
ground-truth camera that never moves (Sim(3) with scale collapses every prediction onto it)."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aether.evaluation import CameraPoseMetric, camera_pose_metrics, video_pixel_metrics
from aether.evaluation.pose_metrics import DegenerateTrajectoryError


def _video(seed=0, frames=3, size=40):
    return torch.from_numpy(np.random.default_rng(seed).random((frames, 3, size, size), dtype=np.float32))


def test_nan_video_is_refused_not_scored_inf():
    pred, target = _video(), _video()
    pred[1, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"clip-3: pred: expected finite values.*frames \[1\]"):
        video_pixel_metrics(pred, target, sequence="clip-3")
    with pytest.raises(ValueError, match="target: expected finite"):
        video_pixel_metrics(target, pred)


@pytest.mark.parametrize("scale", [255.0, -1.0])
def test_video_on_another_scale_is_refused(scale):
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\]"):
        video_pixel_metrics(_video() * scale, _video())


def test_constant_videos_score_the_closed_form():
    pred = torch.full((2, 3, 40, 40), 0.5)
    target = torch.full((2, 3, 40, 40), 0.25)
    m = video_pixel_metrics(pred, target)
    assert m["psnr"] == pytest.approx(-10 * math.log10(0.25**2), abs=1e-4)
    assert math.isfinite(m["ssim"]) and math.isfinite(m["ms_ssim"])


def _trajectory(frames=10, step=0.1, moving=True):
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(np.outer(np.arange(frames) * step, [0, 0, 1])).as_matrix()
    if moving:
        c2w[:, :3, 3] = np.stack(
            [np.linspace(0, 1, frames), np.sin(np.linspace(0, 2, frames)), np.zeros(frames)], 1
        )
    return c2w


def test_static_ground_truth_is_an_error_naming_the_sequence():
    with pytest.raises(
        DegenerateTrajectoryError, match="office-2: gt_c2w: the ground-truth camera does not move"
    ):
        camera_pose_metrics(_trajectory(), _trajectory(moving=False), sequence="office-2")
    metric = CameraPoseMetric()
    with pytest.raises(ValueError, match="kitchen"):
        metric.update(_trajectory(), _trajectory(moving=False), sequence="kitchen")


def test_static_ground_truth_can_score_rotations_only():
    # truth turns 0.1 rad per frame, the prediction 0.12: every relative rotation is off by 0.02 rad
    m = camera_pose_metrics(_trajectory(step=0.12), _trajectory(moving=False), static_gt="nan")
    assert math.isnan(m["ate"]) and math.isnan(m["rpe_trans"])
    assert m["rpe_rot"] == pytest.approx(math.degrees(0.02), rel=1e-9)


def test_scaled_rotations_are_refused_not_scored_zero():
    gt = _trajectory()
    pred = gt.copy()
    pred[:, :3, :3] *= 2  # det 8, R^T R = 4 I: the relative rotations would look perfect
    with pytest.raises(ValueError, match="pred_c2w rotation: expected orthonormal"):
        camera_pose_metrics(pred, gt)


def test_a_valid_similar_trajectory_still_scores_zero():
    gt = _trajectory()
    S = np.eye(4)
    S[:3, :3] = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    S[:3, 3] = [1, 2, 3]
    pred = S @ gt
    pred[:, :3, 3] *= 0.5  # a Sim(3) of the truth: aligned away
    m = camera_pose_metrics(pred, gt)
    assert m["ate"] < 1e-9 and m["rpe_trans"] < 1e-9 and m["rpe_rot"] < 1e-5
