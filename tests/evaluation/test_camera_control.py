"""Camera-control metrics against a transcription of CamI2V's evaluation code, closed forms, and
the two camera recoveries on a rendered clip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aether.evaluation.camera_control import camera_control_errors, recover_cameras
from aether.geometry import reverse_poses


# ----------------------------------------------------------------- CamI2V's metric, transcribed
# ZGCTroy/CamI2V evaluation/glomap_evaluation.py (calc_roterr, calc_transerr, calc_cammc, metric:
# RotErr and the "relative" TransErr / CamMC) and evaluation/utils/common.py (relative_pose with
# mode="left", normalize_t, rt34_to_44), in numpy.
def _relative_pose_left(rt):
    return np.concatenate([np.eye(4)[None], np.linalg.inv(rt[:1]) @ rt[1:]], axis=0)


def _normalize_t(rt, ref, eps=1e-9):
    scale = np.linalg.norm(ref[:, :3, 3:4], axis=1).max() + eps
    out = np.tile(np.eye(4), (len(rt), 1, 1))
    out[:, :3, :3], out[:, :3, 3:4] = rt[:, :3, :3], rt[:, :3, 3:4] / scale
    return out


def cami2v_metric(c2w_1, c2w_2):
    c2w_1, c2w_2 = _relative_pose_left(c2w_1), _relative_pose_left(c2w_2)
    cos = (np.trace(np.swapaxes(c2w_1[:, :3, :3], -1, -2) @ c2w_2[:, :3, :3], axis1=1, axis2=2) - 1) / 2
    rot_err = np.arccos(np.clip(cos, -1, 1)).sum()
    a, b = _normalize_t(c2w_1, c2w_1), _normalize_t(c2w_2, c2w_2)
    trans_err = np.linalg.norm(b[:, :3, 3] - a[:, :3, 3], axis=-1).sum()
    cammc = np.linalg.norm((b[:, :3, :4] - a[:, :3, :4]).reshape(-1, 12), axis=-1).sum()
    return rot_err, trans_err, cammc


def random_path(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(
        rng.normal(0, 0.4, 3) + np.cumsum(rng.normal(0, 0.1, (n, 3)), 0)
    ).as_matrix()
    c2w[:, :3, 3] = rng.normal(0, 2, 3) + np.cumsum(rng.normal(0, 0.3, (n, 3)), 0)
    return c2w


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_cami2v_transcription(seed):
    requested, recovered = random_path(16, seed), random_path(16, seed + 100)
    got = camera_control_errors(requested, recovered)
    rot, trans, cammc = cami2v_metric(requested, recovered)
    np.testing.assert_allclose(
        [got["rot_err"], got["trans_err"], got["cammc"]], [rot, trans, cammc], rtol=1e-9
    )
    assert got["rot_err_deg"] == pytest.approx(math.degrees(got["rot_err"]))


def test_identical_paths_and_similar_worlds_score_zero():
    c2w = random_path(12, 0)
    world = np.eye(4)
    world[:3, :3], world[:3, 3] = Rotation.from_rotvec([0.3, -1.0, 0.5]).as_matrix(), [4.0, -2.0, 7.0]
    scaled = world @ c2w
    scaled[:, :3, 3] *= 3.7  # the same path in another world frame and unit
    for other in (c2w, scaled):
        assert camera_control_errors(c2w, other) == pytest.approx(
            {"rot_err": 0, "rot_err_deg": 0, "trans_err": 0, "cammc": 0}, abs=1e-6
        )


def _line(n: int) -> np.ndarray:
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) / (n - 1)  # a straight path, largest distance 1
    return c2w


def test_constant_rotation_offset_gives_its_angle_per_frame():
    n, theta = 9, 0.2
    requested = random_path(n, 3)
    rel = np.linalg.inv(requested[0]) @ requested
    recovered = rel.copy()
    recovered[1:, :3, :3] = rel[1:, :3, :3] @ Rotation.from_rotvec([0, 0, theta]).as_matrix()
    got = camera_control_errors(requested, recovered)
    assert got["rot_err"] == pytest.approx((n - 1) * theta)
    assert got["rot_err_deg"] == pytest.approx((n - 1) * math.degrees(theta))
    assert got["trans_err"] == pytest.approx(0, abs=1e-9)
    # ||I - Rz(theta)||_F = 2 sqrt(1 - cos theta)
    assert got["cammc"] == pytest.approx((n - 1) * 2 * math.sqrt(1 - math.cos(theta)))


def test_translation_offsets_give_their_distances():
    n, phi = 9, 0.5
    requested = _line(n)
    turned = requested.copy()  # the same distances, the path turned by phi about y
    turned[:, :3, 3] = requested[:, :3, 3] @ Rotation.from_rotvec([0, phi, 0]).as_matrix().T
    norms = np.arange(n) / (n - 1)
    got = camera_control_errors(requested, turned)
    assert got["rot_err"] == pytest.approx(0, abs=1e-9)
    assert got["trans_err"] == pytest.approx(2 * math.sin(phi / 2) * norms.sum())
    assert got["cammc"] == pytest.approx(got["trans_err"])
    backwards = camera_control_errors(requested, _reversed(requested))
    assert backwards["trans_err"] == pytest.approx(2 * norms.sum())  # every centre mirrored
    static = camera_control_errors(requested, np.tile(np.eye(4), (n, 1, 1)))
    assert static["trans_err"] == pytest.approx(norms.sum())  # a camera that stays at the start


def test_umeyama_alignment_and_static_requests():
    c2w = random_path(10, 2)
    world = np.eye(4)
    world[:3, 3] = [1.0, 2.0, 3.0]
    assert camera_control_errors(c2w, world @ c2w, align="umeyama")["trans_err"] == pytest.approx(0, abs=1e-9)
    still = np.tile(np.eye(4), (10, 1, 1))
    still[:, :3, :3] = Rotation.from_rotvec(np.outer(np.arange(10), [0, 0.05, 0])).as_matrix()
    got = camera_control_errors(still, c2w)  # a camera that only turns has no translation scale
    assert math.isnan(got["trans_err"]) and math.isnan(got["cammc"]) and got["rot_err"] > 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"requested_c2w: expected camera-to-world poses \(T,4,4\)"):
        camera_control_errors(np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match=r"recovered_c2w: expected shape \(5, 4, 4\)"):
        camera_control_errors(random_path(5, 0), random_path(6, 0))
    with pytest.raises(ValueError, match="align: expected one of"):
        camera_control_errors(random_path(5, 0), random_path(5, 0), align="procrustes")
    with pytest.raises(ValueError, match="method: expected one of annotate, model"):
        recover_cameras(np.zeros((3, 8, 8, 3), np.uint8), np.eye(3), "colmap")
    with pytest.raises(ValueError, match="depth for 'annotate'"):
        recover_cameras(np.zeros((3, 8, 8, 3), np.uint8), np.eye(3))


# ----------------------------------------------------------------- recovery on a rendered clip
@pytest.fixture(scope="module")
def clip():
    from aether.data.synthetic import render_clip

    return render_clip(1_000_000, num_frames=17, height=64, width=96, trajectory="forward")


def test_annotation_recovery_separates_following_from_not(clip):
    recovered = recover_cameras(clip.rgb, clip.K, "annotate", depth=clip.depth)
    np.testing.assert_allclose(recovered[0], np.eye(4), atol=1e-12)
    follows = camera_control_errors(clip.c2w, recovered)
    opposite = camera_control_errors(_reversed(clip.c2w), recovered)
    still = recover_cameras(np.repeat(clip.rgb[:1], 17, 0), clip.K, "annotate", depth=clip.depth)
    static = camera_control_errors(clip.c2w, still)
    assert follows["trans_err"] < 0.25 * min(opposite["trans_err"], static["trans_err"])
    assert follows["rot_err"] < 0.5 * opposite["rot_err"]


def test_model_recovery_runs_the_reconstruction(clip):
    calls = []

    class Pipe:  # records the call, returns poses in another world frame
        def reconstruct(self, frames, **kwargs):
            from types import SimpleNamespace

            calls.append((frames.shape, kwargs))
            world = np.eye(4)
            world[:3, 3] = [5.0, 0.0, 0.0]
            return SimpleNamespace(c2w=world @ clip.c2w, depth=clip.depth)

    recovered = recover_cameras(clip.rgb, clip.K, "model", pipeline=Pipe())
    np.testing.assert_allclose(recovered, np.linalg.inv(clip.c2w[0]) @ clip.c2w, atol=1e-9)
    assert calls[0][0] == (17, 64, 96, 3) and calls[0][1]["output_size"] == (64, 96)
    by_depth = recover_cameras(clip.rgb, clip.K, "annotate", pipeline=Pipe())  # depth of the model's run
    assert camera_control_errors(clip.c2w, by_depth)["trans_err"] < 2


def _reversed(c2w: np.ndarray) -> np.ndarray:
    return reverse_poses(torch.as_tensor(c2w, dtype=torch.float64)).numpy()
