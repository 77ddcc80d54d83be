import copy

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aether.evaluation import CameraPoseMetric, camera_pose_metrics


def _sim3(scale, rotvec, t):
    S = np.eye(4)
    S[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    S[:3, 3] = t
    return scale, S


def _apply(c2w, scale, S):
    out = S @ c2w
    out[:, :3, 3] = scale * (S[:3, :3] @ c2w[:, :3, 3].T).T + S[:3, 3]
    return out


def test_sim3_transformed_trajectory_scores_zero(formats):
    gt = formats.random_trajectory(20)
    pred = _apply(gt, *_sim3(0.3, [0.4, -1.0, 0.2], [5.0, -2.0, 1.0]))
    m = camera_pose_metrics(pred, gt)
    assert m["ate"] == pytest.approx(0, abs=1e-9)
    assert m["rpe_trans"] == pytest.approx(0, abs=1e-9)
    assert m["rpe_rot"] == pytest.approx(0, abs=1e-5)


def test_constant_rotation_drift_gives_known_rpe():
    # straight-line gt; prediction yaws by a constant 2 degrees per frame about its own optical axis
    n, drift = 12, 2.0
    gt = np.tile(np.eye(4), (n, 1, 1))
    gt[:, 0, 3] = np.arange(n)
    pred = gt.copy()
    pred[:, :3, :3] = Rotation.from_euler("z", drift * np.arange(n)[:, None], degrees=True).as_matrix()
    m = camera_pose_metrics(pred, gt)
    assert m["ate"] == pytest.approx(0, abs=1e-9)  # positions are identical
    assert m["rpe_rot"] == pytest.approx(drift, rel=1e-9)


def test_constant_translation_drift_gives_known_rpe():
    # gt steps (1,0,0) per frame; the prediction drifts sideways, stepping (1,d,0) with identity
    # rotations. The Sim(3) alignment maps its line onto gt's (scale 1/sqrt(1+d^2)) and rotates its
    # cameras by the same R, which cancels in relative poses: each relative step is s·(1,d,0).
    n, d = 10, 0.1
    gt = np.tile(np.eye(4), (n, 1, 1))
    gt[:, 0, 3] = np.arange(n)
    pred = gt.copy()
    pred[:, 1, 3] = d * np.arange(n)
    m = camera_pose_metrics(pred, gt)
    assert m["ate"] == pytest.approx(0, abs=1e-9)
    assert m["rpe_rot"] == pytest.approx(0, abs=1e-6)
    a = np.arctan(d)  # error per step: s·(1,d,0) − (1,0,0) = (cos a − 1, sin a, 0)
    assert m["rpe_trans"] == pytest.approx(np.hypot(np.cos(a) - 1, np.sin(a)), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_evo(seed, formats):
    from evo.core.metrics import PoseRelation, Unit
    from evo.core.trajectory import PoseTrajectory3D
    from evo.main_ape import ape
    from evo.main_rpe import rpe

    rng = np.random.default_rng(seed)
    n = 25
    gt = formats.random_trajectory(n, seed)
    pred = gt.copy()
    pred[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.03, (n, 3))).as_matrix() @ pred[:, :3, :3]
    pred[:, :3, 3] += rng.normal(0, 0.1, (n, 3))
    pred = _apply(pred, *_sim3(rng.uniform(0.2, 3), rng.normal(0, 1, 3), rng.normal(0, 5, 3)))
    ts = np.arange(n, dtype=float)
    ref = PoseTrajectory3D(poses_se3=list(gt), timestamps=ts)
    est = PoseTrajectory3D(poses_se3=list(pred), timestamps=ts)
    common = {"align": True, "correct_scale": True}
    rpe_kw = {**common, "delta": 1, "delta_unit": Unit.frames, "rel_delta_tol": 0.01, "all_pairs": True}
    expected = {
        "ate": ape(ref, copy.deepcopy(est), pose_relation=PoseRelation.translation_part, **common).stats[
            "rmse"
        ],
        "rpe_trans": rpe(
            ref, copy.deepcopy(est), pose_relation=PoseRelation.translation_part, **rpe_kw
        ).stats["rmse"],
        "rpe_rot": rpe(
            ref, copy.deepcopy(est), pose_relation=PoseRelation.rotation_angle_deg, **rpe_kw
        ).stats["rmse"],
    }
    got = camera_pose_metrics(torch.as_tensor(pred), gt)
    for k, v in expected.items():
        assert abs(got[k] - v) < 1e-6, (k, got[k], v)


def test_metric_averages_sequences(formats):
    gt = formats.random_trajectory(10)
    pred = gt.copy()
    pred[:, :3, 3] += np.random.default_rng(0).normal(0, 0.1, (10, 3))
    single = camera_pose_metrics(pred, gt)
    metric = CameraPoseMetric()
    metric.update(pred, gt)
    metric.update(gt, gt)
    out = metric.compute()
    for k in ("ate", "rpe_trans", "rpe_rot"):
        assert out[k] == pytest.approx(single[k] / 2, abs=1e-6)
    assert metric.sequence_stats[0] == single


def test_input_validation(formats):
    gt = formats.random_trajectory(5)
    with pytest.raises(ValueError, match=r"\(N,4,4\)"):
        camera_pose_metrics(gt[:, :3], gt)
    with pytest.raises(ValueError, match="shape"):
        camera_pose_metrics(gt[:4], gt)
    bad = gt.copy()
    bad[2, 0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        camera_pose_metrics(bad, gt)
    with pytest.raises(ValueError, match="static"):
        camera_pose_metrics(np.tile(np.eye(4), (5, 1, 1)), gt)
