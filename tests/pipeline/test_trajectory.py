"""Trajectory conventions, files and validation."""

import json
import logging

import numpy as np
import pytest
import torch

from aether.geometry import cameras_to_raymap
from aether.pipeline import Trajectory

K = [[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]]


def _poses(T=5):
    c2w = np.tile(np.eye(4), (T, 1, 1))
    angle = np.linspace(0, 0.3, T)
    c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = (
        np.cos(angle),
        np.sin(angle),
        -np.sin(angle),
        np.cos(angle),
    )
    c2w[:, :3, 3] = np.stack([np.linspace(0, 1, T), np.zeros(T), np.linspace(2, 3, T)], 1)
    return c2w


def test_opengl_w2c_is_converted_and_logged(caplog):
    c2w = _poses()
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    w2c_gl = np.linalg.inv(c2w @ flip)  # OpenGL camera axes, world-to-camera
    with caplog.at_level(logging.INFO):
        traj = Trajectory.from_poses(w2c_gl, K, axes="opengl", kind="w2c")
    assert "opengl w2c" in caplog.text
    np.testing.assert_allclose(traj.c2w.numpy(), c2w, atol=1e-9)


def test_relative_to_first_frame_and_model_resolution():
    traj = Trajectory.from_poses(_poses(), K, width=96, height=64)
    c2w, Km = traj.resized(32, 48).for_model(5, 32, 48)
    np.testing.assert_allclose(c2w[0].numpy(), np.eye(4), atol=1e-6)
    np.testing.assert_allclose(
        Km[0].numpy(), [[20, 0, 11.75], [0, 20, 7.75], [0, 0, 1]]
    )  # pixel centres at integers
    with pytest.raises(ValueError, match="5 poses, expected 17"):
        traj.for_model(17, 64, 96)
    with pytest.raises(ValueError, match="resized"):
        traj.for_model(5, 32, 48)


def test_json_tum_and_raymap_files(tmp_path):
    c2w = _poses()
    (tmp_path / "t.json").write_text(
        json.dumps({"w2c": np.linalg.inv(c2w).tolist(), "fx": 40, "fy": 40, "cx": 24, "cy": 16})
    )
    np.testing.assert_allclose(Trajectory.load(tmp_path / "t.json").c2w.numpy(), c2w, atol=1e-9)
    from scipy.spatial.transform import Rotation

    quat = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()
    rows = np.concatenate([np.arange(5)[:, None], c2w[:, :3, 3], quat], 1)
    np.savetxt(tmp_path / "t.txt", rows, header="timestamp tx ty tz qx qy qz qw")
    np.testing.assert_allclose(Trajectory.load(tmp_path / "t.txt", K=np.array(K)).c2w.numpy(), c2w, atol=1e-9)
    rel = Trajectory.from_poses(c2w, K).relative()
    raymap = cameras_to_raymap(rel.c2w, rel.K, 32, 48)
    np.save(tmp_path / "r.npy", raymap.numpy())
    back = Trajectory.load(tmp_path / "r.npy", height=32, width=48)
    np.testing.assert_allclose(back.c2w.numpy(), rel.c2w.numpy(), atol=1e-6)
    np.testing.assert_allclose(back.K.numpy(), rel.K.numpy(), atol=1e-6)


def test_validation_errors(tmp_path):
    bad = _poses()
    bad[1, :3, :3] *= 2
    with pytest.raises(ValueError):
        Trajectory.from_poses(bad, K)
    with pytest.raises(ValueError, match="K: expected"):
        Trajectory.from_poses(_poses(), np.eye(4))
    with pytest.raises(FileNotFoundError):
        Trajectory.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text(json.dumps({"K": K}))
    with pytest.raises(ValueError, match="no 'c2w'"):
        Trajectory.load(tmp_path / "x.json")
    (tmp_path / "x.txt").write_text("0 1 2\n")
    with pytest.raises(ValueError, match="8 numbers"):
        Trajectory.load(tmp_path / "x.txt", K=np.array(K))
    with pytest.raises(ValueError, match="raymap: expected"):
        Trajectory.from_raymap(torch.zeros(5, 6, 3, 3), 32, 48)


def test_text_files_tum_and_4x4_matrices_read_the_same_poses(tmp_path):
    from scipy.spatial.transform import Rotation

    c2w = np.tile(np.eye(4), (3, 1, 1))
    c2w[:, :3, :3] = Rotation.from_euler("y", [[0], [10], [25]], degrees=True).as_matrix()
    c2w[:, :3, 3] = [[0, 0, 0], [0.1, -0.2, 0.3], [0.5, 0, 1]]
    K = np.array([[500.0, 0, 360], [0, 500, 240], [0, 0, 1]])
    quat = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()
    tum = "# t tx ty tz qx qy qz qw\n" + "".join(
        f"{i} {' '.join(map(str, c2w[i, :3, 3]))} {' '.join(map(str, quat[i]))}\n" for i in range(3)
    )
    (tmp_path / "tum.txt").write_text(tum)
    (tmp_path / "rows.txt").write_text("".join(" ".join(map(str, m.ravel())) + "\n" for m in c2w))
    (tmp_path / "blocks.txt").write_text("".join(" ".join(map(str, row)) + "\n" for m in c2w for row in m))
    for name in ("tum.txt", "rows.txt", "blocks.txt"):
        traj = Trajectory.load(tmp_path / name, K=K, width=720, height=480)
        np.testing.assert_allclose(traj.c2w.numpy(), c2w, atol=1e-12, err_msg=name)
    (tmp_path / "bad.txt").write_text("1 2 3 4 5\n")
    with pytest.raises(ValueError, match="TUM lines .* 4x4 matrices .*got 1 lines of 5 numbers"):
        Trajectory.load(tmp_path / "bad.txt", K=K)


def test_presets_are_the_apps_motions_at_the_model_size():
    from aether.pipeline.presets import PRESETS, preset_poses

    assert "orbit left" in PRESETS
    traj = Trajectory.preset("orbit left", 17, 32, 48)
    np.testing.assert_allclose(traj.c2w.numpy(), preset_poses("orbit left", 17))
    assert (traj.height, traj.width) == (32, 48)
    focal = 24 / np.tan(np.radians(30))  # 60° horizontal field of view over 48 px
    np.testing.assert_allclose(traj.K[0].numpy(), [[focal, 0, 23.5], [0, focal, 15.5], [0, 0, 1]])
    assert Trajectory.preset("none", 17, 32, 48) is None
    with pytest.raises(ValueError, match="unknown camera motion 'sideways'"):
        Trajectory.preset("sideways", 17, 32, 48)


def test_principal_point_outside_the_image_is_warned_about(caplog):
    K = np.array([[1000.0, 0, 720], [0, 1000, 480], [0, 0, 1]])  # K of a 1440x960 image
    with caplog.at_level(logging.WARNING, logger="aether.pipeline.trajectory"):
        Trajectory(np.tile(np.eye(4), (2, 1, 1)), K, width=720, height=480)
    assert "principal point (720.0, 480.0) of frame 0 lies outside the 720x480 image (2 of 2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aether.pipeline.trajectory"):
        Trajectory(np.tile(np.eye(4), (2, 1, 1)), K, width=1440, height=960)
    assert not caplog.text
