import pytest
import torch

from aether.geometry import (
    check_intrinsics,
    check_poses,
    check_rotation,
    convert_poses,
    invert_pose,
    pixel_grid,
    pixel_rays,
    relative_poses,
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
