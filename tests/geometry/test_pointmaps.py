import pytest
import torch

from aether.geometry import depth_edge_mask, depth_to_points, invert_pose, pointmaps

from ._helpers import intrinsics, smooth_trajectory


@pytest.mark.parametrize("chunk_pixels", [60, 1 << 18])
def test_points_project_back_to_their_pixels(chunk_pixels, monkeypatch):
    monkeypatch.setattr(pointmaps, "_CHUNK_PIXELS", chunk_pixels)  # one frame per chunk, or all at once
    g = torch.Generator().manual_seed(0)
    depth = torch.rand(3, 6, 10, generator=g, dtype=torch.float64) * 5 + 0.5
    K = intrinsics(20.0, 25.0, 4.5, 3.0).expand(3, 3, 3)
    c2w = smooth_trajectory(3)
    points = depth_to_points(depth, K, c2w)
    assert points.shape == (3, 6, 10, 3)
    w2c = invert_pose(c2w)
    cam = torch.einsum("tij,thwj->thwi", w2c[:, :3, :3], points) + w2c[:, None, None, :3, 3]
    torch.testing.assert_close(cam[..., 2], depth)
    pix = torch.einsum("tij,thwj->thwi", K, cam)
    pix = pix[..., :2] / pix[..., 2:]
    v, u = torch.meshgrid(
        torch.arange(6.0, dtype=torch.float64), torch.arange(10.0, dtype=torch.float64), indexing="ij"
    )
    torch.testing.assert_close(pix, torch.stack([u, v], dim=-1).expand(3, 6, 10, 2))
    camera_frame = depth_to_points(depth, K)
    torch.testing.assert_close(camera_frame, cam)


def test_shared_intrinsics_broadcast_over_frames():
    depth = torch.rand(4, 3, 5) + 1
    K = intrinsics(9.0, 8.0, 2.0, 1.0, torch.float32)
    expected = torch.stack([depth_to_points(d, K) for d in depth])
    torch.testing.assert_close(depth_to_points(depth, K), expected)
    c2w = smooth_trajectory(4).float()
    torch.testing.assert_close(
        depth_to_points(depth[0], K, c2w), depth_to_points(depth[0].expand(4, 3, 5), K, c2w)
    )


def test_points_are_differentiable():
    depth = (torch.rand(2, 4, 5, dtype=torch.float64) + 1).requires_grad_()
    K = intrinsics(10.0, 10.0, 2.0, 1.5).expand(2, 3, 3)
    c2w = smooth_trajectory(2)
    points = depth_to_points(depth, K, c2w)
    with torch.no_grad():
        torch.testing.assert_close(points, depth_to_points(depth, K, c2w))
    points[..., 2].sum().backward()  # d z_world / d depth = third row of R times the camera ray
    rays = depth_to_points(torch.ones_like(depth), K).detach()
    torch.testing.assert_close(depth.grad, torch.einsum("tj,thwj->thw", c2w[:, 2, :3], rays))


def test_depth_edge_mask_on_a_step():
    depth = torch.ones(2, 6, 8)
    depth[:, :, 4:] = 1.02  # below rtol: no edge
    depth[1, :, 6:] = 2.0
    depth[1, 0, 0] = 0.0  # invalid
    mask = depth_edge_mask(depth, rtol=0.03)
    assert not mask[0].any()
    expected = torch.zeros(6, 8, dtype=torch.bool)
    expected[:, 5:7] = True
    assert torch.equal(mask[1], expected)
    assert depth_edge_mask(depth, rtol=0.01)[0, :, 3:5].all()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="depth"):
        depth_to_points(torch.ones(5), intrinsics(1.0, 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="positive focal"):
        depth_to_points(torch.ones(4, 4, dtype=torch.float64), intrinsics(-1.0, 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="rtol"):
        depth_edge_mask(torch.ones(4, 4), rtol=0.0)


def test_points_written_into_an_earlier_result_equal_fresh_ones():
    g = torch.Generator().manual_seed(1)
    depth = torch.rand(4, 5, 7, generator=g) + 0.5
    K = intrinsics(20.0, 25.0, 3.5, 2.0).expand(4, 3, 3).float()
    c2w = smooth_trajectory(4).float()
    fresh = depth_to_points(depth, K, c2w)
    out = depth_to_points(torch.ones_like(depth), K, c2w[[1, 2, 3, 0]])
    result = depth_to_points(depth, K, c2w, out=out)
    assert result.data_ptr() == out.data_ptr()
    assert torch.equal(result, fresh)
    assert torch.equal(depth_to_points(depth, K, out=depth_to_points(depth, K)), depth_to_points(depth, K))
    with pytest.raises(ValueError, match="out: expected an earlier depth_to_points result"):
        depth_to_points(depth, K, c2w, out=torch.empty(4, 5, 7, 3))  # channel-last memory
    with pytest.raises(ValueError, match="out: expected"):
        depth_to_points(depth, K, c2w, out=fresh[:3])
    with pytest.raises(ValueError, match="out: expected"):
        depth_to_points(depth, K, c2w, out=fresh.double())
