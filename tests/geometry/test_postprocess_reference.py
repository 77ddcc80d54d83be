"""The reference post-processing reproduced in benchmarks/bench_postprocess.py, checked against closed
forms and against aether.geometry on exact raymaps."""

import math

import numpy as np
import pytest
import torch
from benchmarks import bench_postprocess as bench

from aether.geometry import cameras_to_raymap, raymap_to_cameras

from ._helpers import smooth_trajectory


@pytest.mark.parametrize("state_shape", [(6,), (6, 1)])  # the reference's 1-D state, filterpy's default
def test_reference_kalman_first_update_matches_the_closed_form(state_shape):
    kf = bench.RefKalmanFilter(6, 3)
    kf.F = np.eye(6) + np.eye(6, k=3)
    kf.H = np.eye(3, 6, dtype=np.int64)
    kf.R *= 0.1
    kf.Q *= 0.1
    kf.x = np.zeros(state_shape)
    kf.predict()
    kf.update(np.array([1.0, 2.0, -3.0]))
    assert kf.x.shape == state_shape
    x = kf.x.reshape(6)
    # predicted covariance per axis: position 1 + 1 + 0.1 = 2.1, cross 1, velocity 1.1; S = 2.2
    np.testing.assert_allclose(x[:3], np.array([1.0, 2.0, -3.0]) * 2.1 / 2.2)
    np.testing.assert_allclose(x[3:], np.array([1.0, 2.0, -3.0]) / 2.2)
    joseph = np.array([[2.1, 1.0], [1.0, 1.1]]) - np.outer([2.1, 1.0], [2.1, 1.0]) / 2.2
    np.testing.assert_allclose(kf.P[[0, 3]][:, [0, 3]], joseph, atol=1e-12)
    np.testing.assert_array_equal(kf.x_post, kf.x)


def test_reference_kalman_trajectory_filters_a_constant_velocity_path_to_its_limit():
    """A straight path at constant speed: the filter starts at rest, lags, then converges to the
    (Gaussian pre-smoothed, in the interior exact) centres: a constant-velocity track has no steady lag."""
    poses = np.tile(np.eye(4), (40, 1, 1))
    poses[:, :3, 3] = np.outer(np.arange(40.0), [0.1, -0.05, 0.2])
    out = bench.ref_smooth_trajectory(poses, 5)
    np.testing.assert_allclose(out[:, :3, :3], poses[:, :3, :3], atol=1e-12)
    assert np.abs(out[2:5, :3, 3] - poses[2:5, :3, 3]).max(axis=1).min() > 1e-3  # starts at rest: lags
    np.testing.assert_allclose(out[10:-4, :3, 3], poses[10:-4, :3, 3], atol=1e-4)


def test_reference_algorithm1_recovers_centred_cameras():
    """Centred principal point: the reference's mean-ray cameras match the exact least-squares ones
    (rotation within a small angle, centres exactly, focal within 1 %)."""
    height, width, num = 96, 144, 6
    c2w = smooth_trajectory(num)
    focal = 120.0
    K = torch.tensor(
        [[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=torch.float64
    )
    raymap = cameras_to_raymap(c2w, K.expand(num, 3, 3), height, width, dmax=1.0)
    ref_pose, fov_x, fov_y = bench.ref_raymap_to_poses(raymap.numpy())
    ours, K_ours = raymap_to_cameras(raymap, height, width, dmax=1.0)
    np.testing.assert_allclose(ref_pose[:, :3, 3], ours[:, :3, 3].numpy(), atol=1e-9)
    cos = (np.einsum("tij,tij->t", ref_pose[:, :3, :3], ours[:, :3, :3].numpy()) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5
    ref_focal = bench.ref_fov_to_focal(fov_x, fov_y, height, width)
    assert np.abs(ref_focal / focal - 1).max() < 0.01
    torch.testing.assert_close(K_ours[:, 0, 0], torch.full((num,), focal, dtype=torch.float64))
    assert math.isclose(float(ref_pose[0, 3, 3]), 1.0)


def test_benchmark_rounds_alternate_the_order_and_record_the_load():
    calls = []
    times, load = bench.rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then a-b, b-a, a-b
    assert [len(t) for t in times.values()] == [3, 3] and len(load) == 3
    assert all(t >= 0 for t in times["a"] + times["b"])


def test_benchmark_table_row_holds_the_measured_values():
    setting = {
        "torch_threads": 1,
        "load_average_1min_per_round": [2.54, 2.61],
        "seconds": {"reference_postprocess": {"median": 1.234}, "aether_postprocess": {"median": 0.0516}},
        "speedup_median_of_round_ratios": 24.04,
        "speedup_points_into_buffer_median_of_round_ratios": 31.0,
    }
    row = bench.readme_table({"plain-1-thread": setting}).splitlines()[-1]
    assert row == "| plain-1-thread | 1 | 2.5–2.6 | 1.23 s | 52 ms | 24.0× | 31.0× |"
