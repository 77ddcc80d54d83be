"""The trivial predictors generated videos are scored against."""

from __future__ import annotations

import math

import pytest
import torch

from aether.evaluation.baselines import blurred_copies


def test_blurred_copies_keep_constants_and_spread_an_impulse_as_the_gaussian() -> None:
    flat = torch.full((3, 20, 30), 0.25)
    torch.testing.assert_close(blurred_copies(flat, (1.0, 2.0)), flat.expand(2, -1, -1, -1))
    impulse = torch.zeros(3, 41, 41)
    impulse[:, 20, 20] = 1.0
    (blurred,) = blurred_copies(impulse, (2.0,))
    x = torch.arange(-3, 4, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / 8)  # σ = 2 px, truncated at ±6 px and normalised over ±6
    full = torch.exp(-(torch.arange(-6, 7, dtype=torch.float32) ** 2) / 8).sum()
    expected = (kernel[:, None] * kernel[None]) / full**2
    torch.testing.assert_close(blurred[1, 17:24, 17:24], expected, atol=1e-6, rtol=1e-5)
    assert float(blurred.sum()) == pytest.approx(3.0, rel=1e-5)  # mass is kept (away from borders)
    assert math.isclose(float(blurred[0, 20, 20]), float(1 / full**2), rel_tol=1e-5)


def test_blurred_copies_refuse_a_video() -> None:
    with pytest.raises(ValueError, match=r"expected \(3,H,W\), got \(2, 3, 8, 8\)"):
        blurred_copies(torch.zeros(2, 3, 8, 8))


def test_static_camera_baseline_is_undefined_on_the_clips_a_prediction_is() -> None:
    """A camera that only turns: ATE / RPE translation are NaN for the static baseline exactly as for
    a prediction (so a mean over clips compares both on the same clips); RPE rotation is the turn."""
    from kornia.geometry.conversions import axis_angle_to_rotation_matrix

    from aether.evaluation.baselines import static_camera_metrics
    from aether.evaluation.pose_metrics import camera_pose_metrics

    turn = torch.eye(4, dtype=torch.float64).repeat(5, 1, 1)
    angles = torch.deg2rad(torch.arange(5, dtype=torch.float64) * 2.0)
    turn[:, :3, :3] = axis_angle_to_rotation_matrix(torch.stack([0 * angles, angles, 0 * angles], -1))
    static = static_camera_metrics(turn)
    moving = turn.clone()
    moving[:, 0, 3] = 0.01 * torch.arange(5)  # a prediction that drifts sideways
    predicted = camera_pose_metrics(moving, turn, static_gt="nan")
    assert math.isnan(static["ate"]) and math.isnan(static["rpe_trans"])
    assert math.isnan(predicted["ate"]) and math.isnan(predicted["rpe_trans"])
    assert static["rpe_rot"] == pytest.approx(2.0, rel=1e-6)
