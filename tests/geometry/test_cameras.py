import pytest
import torch

from aether.geometry import (
    check_intrinsics,
    check_poses,
    check_rotation,
    convert_poses,
    invert_pose,
    mirror_poses,
    pixel_grid,
    pixel_rays,
    relative_poses,
    reverse_poses,
    world_rays,
)

from ._helpers import intrinsics, smooth_trajectory


def test_invert_pose_matches_general_inverse():
    c2w = smooth_trajectory(7)
    torch.testing.assert_close(invert_pose(c2w), torch.linalg.inv(c2w))
    torch.testing.assert_close(
        invert_pose(c2w.float()) @ c2w.float(), torch.eye(4).expand(7, 4, 4), atol=1e-5, rtol=0
    )


def test_relative_poses():
    c2w = smooth_trajectory(5)
    moved = c2w.clone()
    moved[:, :3, 3] += torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)  # same motion from elsewhere
    rel = relative_poses(torch.stack([c2w, moved]))
    torch.testing.assert_close(rel[:, 0], torch.eye(4, dtype=torch.float64).expand(2, 4, 4))
    torch.testing.assert_close(rel[0], rel[1])
    torch.testing.assert_close(rel[0, 3], torch.linalg.inv(c2w[0]) @ c2w[3])


def test_pixel_grid_centres():
    grid = pixel_grid(16, 24, downsample=8, dtype=torch.float64)
    assert grid.shape == (2, 3, 2)
    torch.testing.assert_close(grid[..., 0], torch.tensor([[3.5, 11.5, 19.5]] * 2, dtype=torch.float64))
    torch.testing.assert_close(grid[..., 1], torch.tensor([[3.5] * 3, [11.5] * 3], dtype=torch.float64))
    assert pixel_grid(4, 6)[2, 5].tolist() == [5.0, 2.0]


def test_pixel_and_world_rays():
    K = intrinsics(50.0, 60.0, 10.0, 7.0).expand(3, 3, 3)
    rays = pixel_rays(K, 16, 32, downsample=2)
    grid = pixel_grid(16, 32, downsample=2, dtype=torch.float64)
    homogeneous = torch.cat([grid, torch.ones_like(grid[..., :1])], dim=-1)
    torch.testing.assert_close(rays, (homogeneous @ torch.linalg.inv(K[0]).T).expand(3, 8, 16, 3))
    c2w = smooth_trajectory(3)
    origins, dirs = world_rays(c2w, K, 16, 32, downsample=2)
    torch.testing.assert_close(origins, c2w[:, :3, 3])
    torch.testing.assert_close(dirs, torch.einsum("tij,thwj->thwi", c2w[:, :3, :3], rays))


def test_convert_poses_from_opengl_world_to_camera():
    c2w = smooth_trajectory(4)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
    w2c_gl = torch.linalg.inv(c2w @ flip)
    torch.testing.assert_close(convert_poses(w2c_gl, axes="opengl", kind="w2c"), c2w)
    torch.testing.assert_close(convert_poses(c2w), c2w)
    with pytest.raises(ValueError, match="axes"):
        convert_poses(c2w, axes="blender")
    with pytest.raises(ValueError, match="kind"):
        convert_poses(c2w, kind="extrinsic")


def test_checks_raise_with_expected_and_received():
    check_poses(smooth_trajectory(3))
    check_intrinsics(intrinsics(1.0, 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 3, 3\), got \(3, 4\)"):
        check_rotation(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="det"):
        check_rotation(torch.diag(torch.tensor([1.0, 1.0, -1.0])))
    with pytest.raises(ValueError, match="orthonormal"):
        check_rotation(torch.eye(3) * 1.1)
    with pytest.raises(ValueError, match="floating point"):
        check_rotation(torch.eye(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="positive focal"):
        check_intrinsics(intrinsics(0.0, 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="last row"):
        check_intrinsics(torch.ones(3, 3))
    bottom = smooth_trajectory(2)
    bottom[1, 3, 0] = 1.0
    with pytest.raises(ValueError, match="last row"):
        check_poses(bottom)
    with pytest.raises(ValueError, match="divisible by 8"):
        pixel_grid(20, 24, downsample=8)


def _project(K: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    uvw = K @ point
    return uvw[:2] / uvw[2]


def test_resize_intrinsics_keeps_pixel_centres_at_integers():
    from aether.geometry import resize_intrinsics

    K = torch.tensor([[50.0, 0.3, 31.2], [0.0, 47.0, 20.7], [0.0, 0.0, 1.0]], dtype=torch.float64)
    point = torch.tensor([0.4, -0.25, 2.0], dtype=torch.float64)
    src, dst = (40, 64), (30, 96)  # anisotropic: y × 0.75, x × 1.5
    u, v = _project(K, point)
    # a continuous source coordinate maps to (c + 0.5)·s − 0.5: pixel centres to pixel centres
    expected = torch.stack([(u + 0.5) * 1.5 - 0.5, (v + 0.5) * 0.75 - 0.5])
    resized = resize_intrinsics(K, src, dst)
    torch.testing.assert_close(_project(resized, point), expected, rtol=0, atol=1e-9)
    # ×2: source pixel 0 ([-0.5, 0.5]) becomes target pixels 0 and 1, its centre 0.5 between them
    doubled = resize_intrinsics(torch.eye(3, dtype=torch.float64), (2, 4), (4, 8))
    assert doubled[0, 2].item() == 0.5 and doubled[1, 2].item() == 0.5 and doubled[0, 0].item() == 2.0
    cropped = resize_intrinsics(K, src, dst, crop=(3, 5))
    torch.testing.assert_close(
        _project(cropped, point), expected - torch.tensor([5.0, 3.0], dtype=torch.float64)
    )


def test_data_loader_and_trajectory_resize_give_the_same_intrinsics():
    from aether.data.datamodule import resize_and_crop
    from aether.pipeline import Trajectory

    K = torch.tensor([[50.0, 0.0, 31.2], [0.0, 47.0, 20.7], [0.0, 0.0, 1.0]])
    T, h, w = 2, 40, 64
    video, depth = torch.zeros(T, 3, h, w), torch.ones(T, h, w)
    _, _, K_loader, _ = resize_and_crop(video, depth, K.expand(T, 3, 3).clone(), 48, 64)
    # the loader covers 48 × 64 by resizing to 48 × 77 (round(64·1.2)) and centre-cropping 6 columns
    traj = Trajectory(torch.eye(4).expand(T, 4, 4).clone(), K.expand(T, 3, 3).clone(), width=w, height=h)
    K_traj = traj.resized(48, 77, (0, 6, 48, 64)).K
    torch.testing.assert_close(K_traj.float(), K_loader, rtol=0, atol=1e-5)


def _yaw(angle: float, x: float = 0.0, z: float = 0.0) -> torch.Tensor:
    """A pose turned by ``angle`` about the camera's y axis, at (x, 0, z)."""
    c, s = (
        torch.cos(torch.tensor(angle, dtype=torch.float64)),
        torch.sin(torch.tensor(angle, dtype=torch.float64)),
    )
    pose = torch.eye(4, dtype=torch.float64)
    pose[0, 0], pose[0, 2], pose[2, 0], pose[2, 2] = c, s, -s, c
    pose[0, 3], pose[2, 3] = x, z
    return pose


def test_mirror_poses_turns_a_pan_and_strafe_the_other_way_and_keeps_forward_motion():
    start = smooth_trajectory(1)[0]
    motion = torch.stack([_yaw(0.1 * t, x=0.2 * t, z=0.3 * t) for t in range(4)])
    mirrored = relative_poses(mirror_poses(start @ motion))
    expected = torch.stack([_yaw(-0.1 * t, x=-0.2 * t, z=0.3 * t) for t in range(4)])
    torch.testing.assert_close(mirrored, expected)
    torch.testing.assert_close(mirror_poses(mirror_poses(start @ motion)), start @ motion)
    torch.testing.assert_close(torch.linalg.det(mirrored[:, :3, :3]), torch.ones(4, dtype=torch.float64))


def test_reverse_poses_inverts_the_motion_from_the_first_frame():
    start = smooth_trajectory(1)[0]
    motion = torch.stack([_yaw(0.1 * t, z=0.3 * t) for t in range(4)])
    reversed_ = relative_poses(reverse_poses(start @ motion))
    torch.testing.assert_close(reversed_[2], torch.linalg.inv(motion[2]))
    assert float(reversed_[3, 2, 3]) < 0  # forward becomes backward
    torch.testing.assert_close(reverse_poses(reverse_poses(start @ motion)), start @ motion)
