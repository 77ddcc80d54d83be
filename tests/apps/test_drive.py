"""The Drive tab's camera steps (closed form) and a world grown step by step without regenerating it."""

import numpy as np
import pytest

from aether.apps.drive import MOVES, DriveSession, move_pose, step_poses


def _turned(c2w):
    return np.arctan2(c2w[0, 2], c2w[2, 2]) * 180 / np.pi  # heading of the viewing direction in x-z


def test_forward_moves_the_centre_along_the_viewing_direction():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    start = np.eye(4)
    start[:3, :3] = q * np.sign(np.linalg.det(q))
    start[:3, 3] = rng.normal(size=3)
    poses = step_poses(start, "forward", 4, step=0.5)
    np.testing.assert_allclose(poses[-1, :3, 3], start[:3, 3] + 0.5 * start[:3, 2], atol=1e-12)
    np.testing.assert_allclose(np.diff(poses[:, :3, 3], axis=0), np.tile(0.125 * start[:3, 2], (3, 1)))
    np.testing.assert_allclose(poses[:, :3, :3], np.tile(start[:3, :3], (4, 1, 1)), atol=1e-12)
    back = step_poses(poses[-1], "back", 2, step=0.5)[-1]
    np.testing.assert_allclose(back, start, atol=1e-12)


def test_turns_strafes_and_up_down_in_camera_axes():
    left = step_poses(np.eye(4), "turn left", 3, angle=30)
    assert _turned(left[-1]) == pytest.approx(-30)  # the viewing direction swings toward -x
    np.testing.assert_allclose(left[:, :3, 3], 0, atol=1e-12)
    np.testing.assert_allclose([_turned(p) for p in left], [-10, -20, -30])
    there_and_back = step_poses(left[-1], "turn right", 5, angle=30)[-1]
    np.testing.assert_allclose(there_and_back, np.eye(4), atol=1e-12)
    for move, axis, sign in [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1)]:
        pose = move_pose(move, step=0.2)
        expected = np.zeros(3)
        expected[axis] = 0.2 * sign
        np.testing.assert_allclose(pose[:3, 3], expected)
        np.testing.assert_allclose(pose[:3, :3], np.eye(3))
    for move in MOVES:
        rotation = move_pose(move)[:3, :3]
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="unknown camera step 'jump'"):
        move_pose("jump")


def test_each_step_extends_the_world_and_keeps_what_came_before(tiny_model_dir):
    from aether.apps.model import load_model

    pipe = load_model(tiny_model_dir)
    pipe.progress = False
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    session = DriveSession(pipe, image, steps=1)
    first = session.step("forward")
    assert (first.frames, session.num_frames) == (session.window, session.window) and first.seconds > 0
    before = session.world()
    second = session.step("turn left")
    world = session.world()
    assert second.frames == session.window - 1 and world.num_frames == 2 * session.window - 1
    np.testing.assert_array_equal(world.rgb[: session.window], before.rgb)  # not regenerated
    requested = world.requested_c2w
    np.testing.assert_allclose(requested[session.window - 1, :3, 3], [0, 0, 0.25], atol=1e-6)
    assert _turned(requested[-1]) == pytest.approx(-15, abs=1e-4)
    assert world.meta["moves"] == ["forward", "turn left"] and len(world.meta["step_seconds"]) == 2
    assert "RANDOM WEIGHTS" in session.summary()
