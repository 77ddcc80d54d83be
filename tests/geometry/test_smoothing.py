import math

import numpy as np
import pytest
import torch

from aether.geometry import (
    interpolate_poses,
    kalman_smoother_matrix,
    quaternion_slerp,
    smooth_poses_gaussian,
    smooth_poses_kalman,
)

from ._helpers import make_poses, rotation_error_deg, smooth_trajectory


def _noisy(c2w, rot_sigma=0.02, trans_sigma=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    noise = make_poses(
        rot_sigma * torch.randn(c2w.shape[:-2] + (3,), generator=g, dtype=c2w.dtype),
        trans_sigma * torch.randn(c2w.shape[:-2] + (3,), generator=g, dtype=c2w.dtype),
    )
    out = c2w.clone()
    out[..., :3, :3] = c2w[..., :3, :3] @ noise[..., :3, :3]
    out[..., :3, 3] += noise[..., :3, 3]
    return out


def _errors(c2w, truth):
    return (
        rotation_error_deg(c2w[..., :3, :3], truth[..., :3, :3]).mean().item(),
        (c2w[..., :3, 3] - truth[..., :3, 3]).norm(dim=-1).mean().item(),
    )


def test_quaternion_slerp_closed_form():
    half = math.radians(90) / 2
    q0 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    q1 = torch.tensor([math.cos(half), 0.0, 0.0, math.sin(half)], dtype=torch.float64)
    w = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    out = quaternion_slerp(q0.expand(3, 4), q1.expand(3, 4), w)
    expected = torch.stack([torch.cos(w * half), 0 * w, 0 * w, torch.sin(w * half)], dim=-1)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(quaternion_slerp(q0, -q1, 0.25), expected[1])  # shorter arc
    torch.testing.assert_close(quaternion_slerp(q0, q0, 0.5), q0)


def test_interpolate_poses():
    a = make_poses(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    b = make_poses(
        torch.tensor([0.0, 1.2, 0.0], dtype=torch.float64),
        torch.tensor([2.0, 0.0, -4.0], dtype=torch.float64),
    )
    mid = interpolate_poses(
        a.expand(2, 4, 4), b.expand(2, 4, 4), torch.tensor([0.5, 1.0], dtype=torch.float64)
    )
    expected = make_poses(
        torch.tensor([0.0, 0.6, 0.0], dtype=torch.float64),
        torch.tensor([1.0, 0.0, -2.0], dtype=torch.float64),
    )
    torch.testing.assert_close(mid[0], expected)
    torch.testing.assert_close(mid[1], b)


def test_smoothing_lowers_error_of_noisy_trajectory():
    truth = smooth_trajectory(41)
    noisy = _noisy(truth)
    rot_noisy, trans_noisy = _errors(noisy, truth)
    for smoothed in (smooth_poses_gaussian(noisy, sigma=2.0), smooth_poses_kalman(noisy, 1e-4, 1e-2)):
        rot, trans = _errors(smoothed, truth)
        assert rot < 0.7 * rot_noisy
        assert trans < 0.7 * trans_noisy
        torch.testing.assert_close(torch.linalg.det(smoothed[:, :3, :3]), torch.ones(41, dtype=torch.float64))


def test_smoothing_is_batched_and_keeps_straight_lines():
    s = torch.linspace(0, 1, 9, dtype=torch.float64)[:, None]
    line = make_poses(
        s * torch.tensor([0.0, 0.4, 0.0], dtype=torch.float64),
        s * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
    )
    batch = torch.stack([line, _noisy(line)])
    kalman = smooth_poses_kalman(batch)
    torch.testing.assert_close(kalman[1], smooth_poses_kalman(batch[1]))
    torch.testing.assert_close(kalman[0, :, :3, 3], line[:, :3, 3])  # constant velocity is kept exactly
    torch.testing.assert_close(smooth_poses_gaussian(batch, 0.0), batch)


def _numpy_rts(z, q, r):
    """Reference constant-velocity Kalman filter + RTS smoother for one channel z (T,)."""
    F = np.array([[1.0, 1.0], [0.0, 1.0]])
    Q = q * np.array([[1 / 3, 1 / 2], [1 / 2, 1.0]])
    H = np.array([[1.0, 0.0]])
    x = np.array([z[0], 0.0])
    P = np.diag([r, 1e6 * (r + q)])
    xs, Ps, xps, Pps = [x], [P], [None], [None]
    for zt in z[1:]:
        xp, Pp = F @ x, F @ P @ F.T + Q
        S = H @ Pp @ H.T + r
        Kg = Pp @ H.T / S
        x = xp + (Kg * (zt - H @ xp)).ravel()
        P = (np.eye(2) - Kg @ H) @ Pp
        xs.append(x), Ps.append(P), xps.append(xp), Pps.append(Pp)
    out = [xs[-1]]
    for t in range(len(z) - 2, -1, -1):
        C = Ps[t] @ F.T @ np.linalg.inv(Pps[t + 1])
        out.append(xs[t] + C @ (out[-1] - xps[t + 1]))
    return np.array([o[0] for o in reversed(out)])


def test_kalman_matches_reference_rts_smoother():
    truth = smooth_trajectory(25)
    noisy = _noisy(truth, seed=2)
    smoothed = smooth_poses_kalman(noisy, process_noise=1e-3, measurement_noise=5e-3)
    for axis in range(3):
        ref = _numpy_rts(noisy[:, axis, 3].numpy(), 1e-3, 5e-3)
        np.testing.assert_allclose(smoothed[:, axis, 3].numpy(), ref, atol=1e-9)
    S = kalman_smoother_matrix(25, 1e-3, 5e-3)
    torch.testing.assert_close(S.sum(-1), torch.ones(25, dtype=torch.float64))


def test_bad_inputs_raise():
    c2w = smooth_trajectory(5)
    with pytest.raises(ValueError, match="sigma"):
        smooth_poses_gaussian(c2w, -1.0)
    with pytest.raises(ValueError, match="positive"):
        smooth_poses_kalman(c2w, process_noise=0.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 4, 4\)"):
        smooth_poses_kalman(c2w[0])
    bad = c2w.clone()
    bad[2, :3, :3] *= 3.0
    with pytest.raises(ValueError, match="orthonormal"):
        smooth_poses_gaussian(bad, 1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        quaternion_slerp(torch.zeros(3), torch.zeros(4), 0.5)


def test_smooth_cameras_dispatches_by_name():
    from aether.geometry.smoothing import smooth_cameras, smooth_trajectory_reference

    noisy = _noisy(smooth_trajectory(17))
    assert smooth_cameras(noisy, "none") is noisy
    torch.testing.assert_close(smooth_cameras(noisy, "kalman"), smooth_poses_kalman(noisy))
    torch.testing.assert_close(
        smooth_cameras(noisy, "kalman", process_noise=1e-5), smooth_poses_kalman(noisy, 1e-5, 1e-2)
    )
    torch.testing.assert_close(smooth_cameras(noisy, "gaussian"), smooth_poses_gaussian(noisy, 1.0))
    wide = smooth_cameras(noisy, "gaussian", sigma=2.0)
    torch.testing.assert_close(wide, smooth_poses_gaussian(noisy, 2.0))
    torch.testing.assert_close(smooth_cameras(noisy, "reference"), smooth_trajectory_reference(noisy))
    with pytest.raises(ValueError, match=r"unknown smoothing method 'median'.*kalman"):
        smooth_cameras(noisy, "median")
