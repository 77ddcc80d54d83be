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
