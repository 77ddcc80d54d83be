"""The reference pose smoother against an independent transcription of the published evaluation's
steps (scipy Gaussian filter with nearest edges, a 6-state Kalman filter with the Joseph-form
update, Gaussian-weighted quaternion means, the static-window rule)."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aether.geometry.smoothing import (
    matrix_to_quaternion,
    smooth_poses_gaussian_reference,
    smooth_trajectory_reference,
    smooth_window_reference,
)
from tests.reference_protocol import smooth_poses_gaussian as ref_gaussian
from tests.reference_protocol import smooth_trajectory as ref_trajectory


def trajectory(n, seed=0, step=0.2, rot=0.05):
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(0, rot, (n, 3)), 0) + [0, 3.0, 0]).as_matrix()
    c2w[:, :3, 3] = np.cumsum(rng.normal(0, step, (n, 3)), 0)
    return c2w


def test_quaternions_match_scipy_up_to_sign():
    R = torch.from_numpy(Rotation.random(200, random_state=1).as_matrix())
    R[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # a half turn
    q = matrix_to_quaternion(R).numpy()
    ref = Rotation.from_matrix(R.numpy()).as_quat()
    np.testing.assert_allclose(np.abs((q * ref).sum(-1)), 1.0, atol=1e-14)


@pytest.mark.parametrize("window", [5, 9, 41])
def test_gaussian_equals_the_transcription(window):
    c2w = trajectory(30, seed=window)
    ours = smooth_poses_gaussian_reference(torch.from_numpy(c2w), window).numpy()
    np.testing.assert_allclose(ours, ref_gaussian(c2w, window), atol=1e-12)


@pytest.mark.parametrize("n", [17, 41, 90])
def test_trajectory_smoother_equals_the_transcription(n):
    c2w = trajectory(n, seed=n)
    ours = smooth_trajectory_reference(torch.from_numpy(c2w)).numpy()
    np.testing.assert_allclose(ours, ref_trajectory(c2w), rtol=0, atol=1e-9)


def test_static_windows_get_the_wide_gaussian():
    still = trajectory(41, seed=3, step=0.0005, rot=0.0005)
    out, info = smooth_window_reference(torch.from_numpy(still))
    assert info["static"]
    expected = min(41, max(5, int(5 * (0.1 / max(info["trans_diff"] + info["rot_diff"], 1e-6)))))
    assert info["window"] == expected and info["even_window"] == (expected % 2 == 0)
    if expected % 2:
        np.testing.assert_allclose(out.numpy(), ref_gaussian(still, expected), atol=1e-12)
    moving = trajectory(41, seed=4)
    out, info = smooth_window_reference(torch.from_numpy(moving))
    assert not info["static"] and info["window"] == 5
    np.testing.assert_allclose(out.numpy(), ref_trajectory(moving), atol=1e-9)
