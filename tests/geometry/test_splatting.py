import math

import pytest
import torch

from aether.geometry import depth_to_points
from aether.geometry.splatting import splat_points

from ._helpers import intrinsics

H, W, FX, FY, CX, CY, D = 24, 36, 50.0, 60.0, 17.0, 11.0, 2.0


def _plane(
    height: int = H, width: int = W, depth: float = D
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The plane z = depth seen by the camera at the origin; colour = (u, v, 1) of the source pixel."""
    K = intrinsics(FX, FY, CX, CY).double()
    points = depth_to_points(torch.full((height, width), depth, dtype=torch.float64), K).reshape(1, -1, 3)
    v, u = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    colors = torch.stack([u, v, torch.ones_like(u)], -1).reshape(1, -1, 3).double()
    return points, colors, K


def _pose(yaw: float = 0.0, t: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    c, s = math.cos(yaw), math.sin(yaw)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)
    pose[:3, 3] = torch.tensor(t, dtype=torch.float64)
    return pose[None]


def test_identity_camera_reproduces_the_source_exactly():
    points, colors, K = _plane()
    out = splat_points(points, colors, _pose(), K[None], H, W)
    assert out.mask.all()
    torch.testing.assert_close(out.color[0].permute(1, 2, 0).reshape(-1, 3), colors[0])
    torch.testing.assert_close(out.depth, torch.full((1, H, W), D, dtype=torch.float64))


@pytest.mark.parametrize("shift", [3, -5])
def test_sideways_step_shifts_the_plane_by_whole_pixels(shift):
    # moving the camera by shift·D/fx along x moves every point of the plane z = D by exactly -shift pixels
    points, colors, K = _plane()
    out = splat_points(points, colors, _pose(t=(shift * D / FX, 0.0, 0.0)), K[None], H, W)
    cols = torch.arange(W)
    seen = (cols + shift >= 0) & (cols + shift < W)
    assert torch.equal(out.mask[0], seen.expand(H, W))  # the uncovered strip is masked out
    expected_u = (cols + shift).double().expand(H, W)
    torch.testing.assert_close(out.color[0, 0][:, seen], expected_u[:, seen])
    torch.testing.assert_close(
        out.color[0, 1][:, seen], torch.arange(H).double()[:, None].expand(H, W)[:, seen]
    )
    assert (out.color[0][:, ~seen.expand(H, W)] == 0).all()


def test_general_motion_matches_the_ray_plane_intersection():
    # a turned and advanced camera: each rendered pixel shows the source pixel its ray hits (to rounding)
    points, colors, K = _plane(height=48, width=72)
    Kt = intrinsics(FX, FY, CX, CY).double()
    pose = _pose(yaw=0.08, t=(0.1, -0.05, 0.3))
    out = splat_points(points, colors, pose, Kt[None], H, W, radius=1)
    v, u = torch.meshgrid(torch.arange(float(H)), torch.arange(float(W)), indexing="ij")
    rays = torch.stack([(u - CX) / FX, (v - CY) / FY, torch.ones_like(u)], -1).double() @ pose[0, :3, :3].T
    hit = pose[0, :3, 3] + rays * ((D - pose[0, 2, 3]) / rays[..., 2:])
    expected_u = FX * hit[..., 0] / D + CX
    expected_v = FY * hit[..., 1] / D + CY
    assert out.mask.all()
    # the drawn point projects within (radius + 1/2) target pixels of the pixel centre: ≤ 1.5 px · its scale
    assert (out.color[0, 0] - expected_u).abs().max() < 1.5 * 1.1
    assert (out.color[0, 1] - expected_v).abs().max() < 1.5 * 1.1


def test_nearer_points_win_the_z_buffer_whatever_their_order():
    points, colors, K = _plane()
    near_points = points * 0.5  # the same rays at half the depth
    near_colors = torch.full_like(colors, -1.0)
    for order in ((points, near_points), (near_points, points)):
        cols = (colors, near_colors) if order[0] is points else (near_colors, colors)
        out = splat_points(torch.cat(order, 1), torch.cat(cols, 1), _pose(), K[None], H, W)
        assert (out.color == -1).all()
        torch.testing.assert_close(out.depth, torch.full((1, H, W), D / 2, dtype=torch.float64))


def test_points_behind_the_camera_and_invalid_points_are_not_drawn():
    points, colors, K = _plane()
    behind = _pose(t=(0.0, 0.0, D + 1.0))  # the plane is behind this camera
    assert not splat_points(points, colors, behind, K[None], H, W).mask.any()
    valid = torch.zeros(1, H * W, dtype=torch.bool)
    valid[0, :W] = True  # the first row only
    out = splat_points(points, colors, _pose(), K[None], H, W, valid=valid)
    assert out.mask[0, 0].all() and not out.mask[0, 1:].any()
    nan_points = points.clone()
    nan_points[0, 0] = float("nan")
    assert not splat_points(nan_points, colors, _pose(), K[None], H, W).mask[0, 0, 0]


def test_shapes_are_checked_with_expected_and_received():
    points, colors, K = _plane()
    with pytest.raises(ValueError, match=r"points: expected \(B, N, 3\), got \(864, 3\)"):
        splat_points(points[0], colors, _pose(), K[None], H, W)
    with pytest.raises(ValueError, match="colors: expected"):
        splat_points(points, colors[:, :5], _pose(), K[None], H, W)
    with pytest.raises(ValueError, match=r"c2w: expected \(1, 4, 4\)"):
        splat_points(points, colors, _pose()[0], K[None], H, W)
    with pytest.raises(ValueError, match="radius"):
        splat_points(points, colors, _pose(), K[None], H, W, radius=-1)


def test_within_the_depth_tolerance_the_best_placed_point_wins():
    # the same plane sampled twice: exactly on the pixel centres, and 0.4 px off and 1% nearer
    points, colors, K = _plane()
    shifted = points * 0.99
    shifted[..., 0] += 0.4 * 0.99 * D / FX
    both = torch.cat([points, shifted], 1)
    labels = torch.cat([torch.zeros_like(colors), torch.ones_like(colors)], 1)
    exact = splat_points(both, labels, _pose(), K[None], H, W)
    assert (exact.color[:, :, :, 1:] == 1).all()  # the exact z-buffer: the nearer sample
    tolerant = splat_points(both, labels, _pose(), K[None], H, W, depth_tolerance=0.03)
    assert (tolerant.color == 0).all()  # the same surface: the sample on the pixel centre
    torch.testing.assert_close(tolerant.depth, torch.full((1, H, W), D, dtype=torch.float64))
