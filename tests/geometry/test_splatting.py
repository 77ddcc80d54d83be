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


def test_colour_and_depth_are_differentiable_in_the_drawn_points():
    points, colors, K = _plane()
    points.requires_grad_()
    colors.requires_grad_()
    out = splat_points(points, colors, _pose(), K[None], H, W)
    (out.color.sum() + out.depth.sum()).backward()
    assert torch.equal(colors.grad, torch.ones_like(colors))  # each point is drawn on one pixel
    assert torch.equal(points.grad, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(points))


def _brute_force_splat(points, colors, valid, centre, focal, height, width, radius, depth_tolerance):
    """The documented rule with plain loops over pixels and points, for one camera at ``centre`` looking
    down +z (no rotation) with K = diag(focal, focal, 1); Python's round, like torch.round, rounds half to
    even. Also counts the pixels won on the point index (a tie in depth and distance) and those won by a
    point behind the nearest (the depth tolerance)."""
    projected = []  # (index, u, v, z) of the drawable points
    for n, (x, y, z) in enumerate(points.tolist()):
        x, y, z = x - centre[0], y - centre[1], z - centre[2]
        if valid[n] and all(map(math.isfinite, (x, y, z))) and z > 1e-6:
            projected.append((n, focal * x / z, focal * y / z, z))
    color = torch.zeros(colors.shape[1], height, width, dtype=colors.dtype)
    depth = torch.zeros(height, width, dtype=points.dtype)
    mask = torch.zeros(height, width, dtype=torch.bool)
    index_ties = behind_nearest = 0
    for i in range(height):
        for j in range(width):
            cover = [p for p in projected if max(abs(round(p[1]) - j), abs(round(p[2]) - i)) <= radius]
            if not cover:
                continue
            z_min = min(z for _, _, _, z in cover)
            candidates = [
                (n, (u - j) * (u - j) + (v - i) * (v - i), z)
                for n, u, v, z in cover
                if z <= z_min * (1 + depth_tolerance)
            ]
            best = min(d for _, d, _ in candidates)
            tied = [(n, z) for n, d, z in candidates if d == best]
            n, z = max(tied)
            index_ties += len(tied) > 1
            behind_nearest += z > z_min
            color[:, i, j], depth[i, j], mask[i, j] = colors[n], z, True
    return color, depth, mask, index_ties, behind_nearest


@pytest.mark.parametrize("radius", [0, 1, 2])
@pytest.mark.parametrize("depth_tolerance", [0.0, 0.2, 0.5])
def test_matches_a_brute_force_reference_with_ties_and_the_depth_tolerance(radius, depth_tolerance):
    # 30 points on a quarter-pixel lattice at a few depths, exact duplicates among them (ties in depth
    # and distance, left to the point index), a pair on one pixel with the farther point on its centre,
    # an invalid point, one behind the cameras and a NaN one
    height, width, focal = 6, 8, 2.0
    g = torch.Generator().manual_seed(0)
    u = torch.randint(-10, 38, (30,), generator=g).double() / 4
    v = torch.randint(-10, 30, (30,), generator=g).double() / 4
    z = torch.tensor([1.0, 1.1, 1.25, 2.0], dtype=torch.float64)[torch.randint(0, 4, (30,), generator=g)]
    u[20:22], v[20:22], z[20:22] = torch.tensor([[2.25, 2.0], [2.0, 2.0], [1.0, 1.1]], dtype=torch.float64)
    points = torch.stack([u * z / focal, v * z / focal, z], -1)
    points[22:] = points[[0, 3, 3, 7, 10, 12, 15, 15]]
    points[5, 2], points[6, 0] = -1.0, float("nan")
    colors = torch.stack([torch.arange(30.0), torch.arange(30.0) ** 2], -1).double()
    valid = torch.ones(30, dtype=torch.bool)
    valid[4] = False
    centres = [(0.0, 0.0, 0.0), (0.5, -0.25, -0.5)]
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[:, :3, 3] = torch.tensor(centres, dtype=torch.float64)
    K = torch.diag(torch.tensor([focal, focal, 1.0], dtype=torch.float64)).expand(2, 3, 3)
    out = splat_points(
        points.expand(2, -1, -1), colors.expand(2, -1, -1), c2w, K, height, width,
        valid=valid.expand(2, -1), radius=radius, depth_tolerance=depth_tolerance,
    )  # fmt: skip
    index_ties = behind_nearest = 0
    for b, centre in enumerate(centres):
        color, depth, mask, ties, behind = _brute_force_splat(
            points, colors, valid, centre, focal, height, width, radius, depth_tolerance
        )
        assert torch.equal(out.color[b], color) and torch.equal(out.depth[b], depth)
        assert torch.equal(out.mask[b], mask)
        index_ties, behind_nearest = index_ties + ties, behind_nearest + behind
    assert index_ties > 0  # the rules under test decide some pixels
    assert (behind_nearest > 0) == (depth_tolerance > 0)
