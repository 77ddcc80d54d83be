"""Sparse RGB-D bundle adjustment on hand-built scenes with known cameras."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aether.annotate import BundleAdjuster, Tracks, estimate_focal, reprojection_errors
from aether.annotate.bundle import _pair_residuals


def _scene(frames=10, points=150, noise_px=0.0, seed=0):
    """Random points seen by a camera that yaws, pitches and translates; exact depth per observation."""
    rng = np.random.default_rng(seed)
    world = rng.uniform([-3, -2, 4], [3, 2, 9], (points, 3))
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    angles = np.stack([0.01 * np.arange(frames), 0.03 * np.arange(frames), np.zeros(frames)], 1)
    c2w[:, :3, :3] = Rotation.from_euler("xyz", angles).as_matrix()
    c2w[:, :3, 3] = np.stack(
        [0.06 * np.arange(frames), 0.01 * np.arange(frames), 0.05 * np.arange(frames)], 1
    )
    K = np.tile(np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]]), (frames, 1, 1))
    w2c = np.linalg.inv(c2w)
    cam = np.einsum("tab,nb->nta", w2c[:, :3, :3], world) + w2c[None, :, :3, 3]
    uv = cam[..., :2] / cam[..., 2:] * 100.0 + np.array([63.5, 47.5])
    visible = (uv[..., 0] > 0) & (uv[..., 0] < 127) & (uv[..., 1] > 0) & (uv[..., 1] < 95)
    uv = uv + rng.normal(0, noise_px, uv.shape)
    return c2w, K, Tracks(uv, visible, cam[..., 2])


def _perturb(c2w, seed=1, rot=0.01, trans=0.03):
    rng = np.random.default_rng(seed)
    out = c2w.copy()
    out[1:, :3, :3] = (
        Rotation.from_rotvec(rng.normal(0, rot, (len(c2w) - 1, 3))).as_matrix() @ c2w[1:, :3, :3]
    )
    out[1:, :3, 3] += rng.normal(0, trans, (len(c2w) - 1, 3))
    return out


def test_recovers_exact_cameras_from_perturbed_start():
    c2w, K, tracks = _scene()
    start = _perturb(c2w)
    result = BundleAdjuster()(start, K, tracks)
    np.testing.assert_allclose(result.c2w, c2w, atol=1e-6)
    assert reprojection_errors(result.c2w, K, tracks).max() < 1e-5
    assert result.cost_final < 1e-8 < result.cost_initial
    assert result.num_residuals == 7 * tracks.pairs()[0].size and result.num_params == 6 * 9


def _angle_deg(a, b):
    return np.degrees(Rotation.from_matrix(np.swapaxes(a[:, :3, :3], 1, 2) @ b[:, :3, :3]).magnitude())


def test_gross_outliers_do_not_move_the_solution():
    c2w, K, clean = _scene(noise_px=0.2, points=300)
    reference = BundleAdjuster()(c2w, K, clean)  # the optimum for the noisy inliers, from the truth
    assert _angle_deg(reference.c2w, c2w).max() < 0.15
    assert np.abs(reference.c2w[:, :3, 3] - c2w[:, :3, 3]).max() < 0.01

    corrupt = np.random.default_rng(2).random(clean.visible.shape) < 0.05
    dirty = Tracks(np.where(corrupt[..., None], clean.uv + 15.0, clean.uv), clean.visible, clean.depth)
    result = BundleAdjuster()(_perturb(c2w), K, dirty)  # 5 % gross outliers, perturbed start
    assert result.inliers.mean() < 0.95  # pairs touching a corrupted observation were rejected
    assert _angle_deg(result.c2w, reference.c2w).max() < 0.05
    assert np.abs(result.c2w[:, :3, 3] - reference.c2w[:, :3, 3]).max() < 0.004


def test_focal_by_bundle_adjustment_and_by_rigid_alignment():
    c2w, K, tracks = _scene(noise_px=0.05)
    wrong = K.copy()
    wrong[:, :2, :2] *= 1.06
    wrong[:, :2, 2] += 1.5
    result = BundleAdjuster(optimize_intrinsics=True)(c2w, wrong, tracks)
    np.testing.assert_allclose(result.K[0], K[0], rtol=2e-3, atol=0.2)

    pairs = []
    for a, b in ((0, 4), (4, 8), (1, 9)):
        both = tracks.visible[:, a] & tracks.visible[:, b]
        pairs.append((tracks.uv[both, a], tracks.depth[both, a], tracks.uv[both, b], tracks.depth[both, b]))
    focal, info = estimate_focal(pairs, 96, 128)
    assert abs(focal / 100.0 - 1) < 0.005 and info["focal_curvature"] > 0.01


def test_analytic_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    T, N = 4, 12
    R = Rotation.from_rotvec(rng.normal(0, 0.1, (T, 3))).as_matrix()
    t = rng.normal(0, 0.3, (T, 3))
    tracks = Tracks(rng.uniform(10, 90, (N, T, 2)), np.ones((N, T), bool), rng.uniform(2, 5, (N, T)))
    intr = np.tile([100.0, 110.0, 50.0, 40.0], (T, 1))
    pairs = tracks.pairs()
    n, r, j = pairs
    res, J = _pair_residuals(R, t, intr, tracks, pairs, 0.7, 100.0, jacobian=True)
    numeric = np.zeros_like(J)
    eps = 1e-6
    for frame in range(T):
        for k in range(6):
            Rp, tp = R.copy(), t.copy()
            step = np.zeros(3)
            step[k % 3] = eps
            if k < 3:
                Rp[frame] = Rotation.from_rotvec(step).as_matrix() @ R[frame]
            else:
                tp[frame] += step
            diff = (_pair_residuals(Rp, tp, intr, tracks, pairs, 0.7, 100.0) - res) / eps
            numeric[r == frame, :, k] += diff[r == frame]
            numeric[j == frame, :, 6 + k] += diff[j == frame]
    for k in range(4):
        shifted = intr.copy()
        shifted[:, k] += eps
        numeric[:, :, 12 + k] = (_pair_residuals(R, t, shifted, tracks, pairs, 0.7, 100.0) - res) / eps
    np.testing.assert_allclose(J, numeric, atol=2e-3 * np.abs(J).max())


def test_rejects_bad_input():
    c2w, K, tracks = _scene()
    with pytest.raises(ValueError, match="T frames"):
        BundleAdjuster()(c2w[:5], K[:5], tracks)
    with pytest.raises(ValueError, match="two frames"):
        BundleAdjuster()(c2w, K, Tracks(tracks.uv, np.zeros_like(tracks.visible), tracks.depth))
    with pytest.raises(ValueError, match="f_scale"):
        BundleAdjuster(f_scale=0)
