import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aether.geometry import (
    cameras_to_raymap,
    raymap_origins,
    raymap_to_cameras,
    relative_poses,
    signed_expm1,
    signed_log1p,
)

from ._helpers import intrinsics, make_poses, rotation_error_deg, smooth_trajectory

angle = st.floats(-math.pi / 4, math.pi / 4)


@st.composite
def camera_clips(draw):
    """Smooth trajectories (T, 4, 4) starting at the identity, intrinsics (T, 3, 3), image size, dmax."""
    num_frames = draw(st.integers(2, 6))
    height = 8 * draw(st.integers(3, 60))
    width = 8 * draw(st.integers(3, 90))
    fx = draw(st.floats(200.0, 2000.0))
    fy = fx * draw(st.floats(0.9, 1.1))
    fy = min(max(fy, 200.0), 2000.0)
    cx = width * draw(st.floats(0.3, 0.7))
    cy = height * draw(st.floats(0.3, 0.7))
    yaw, pitch = draw(angle), draw(angle)
    roll = draw(st.floats(-0.2, 0.2))
    end = torch.tensor([draw(st.floats(-10.0, 10.0)) for _ in range(3)], dtype=torch.float64)
    bend = draw(st.floats(-1.0, 1.0))
    s = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)[:, None]
    axis_angle = s * torch.tensor([pitch, yaw, roll], dtype=torch.float64)
    centres = s * end + bend * s * (1 - s) * torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    c2w = make_poses(axis_angle, centres)
    K = intrinsics(fx, fy, cx, cy).expand(num_frames, 3, 3)
    dmax = draw(st.floats(0.05, 2.0))
    return c2w, K, height, width, dmax


@settings(max_examples=40, deadline=None)
@given(camera_clips())
def test_raymap_round_trip_float32(clip):
    c2w, K, height, width, dmax = clip
    raymap = cameras_to_raymap(c2w.float(), K.float(), height, width, dmax=dmax)
    assert raymap.shape == (c2w.shape[0], 6, height // 8, width // 8)
    assert raymap.dtype == torch.float32
    c2w_hat, K_hat = raymap_to_cameras(raymap, height, width, dmax=dmax)
    assert c2w_hat.dtype == torch.float32
    assert rotation_error_deg(c2w_hat[:, :3, :3], c2w[:, :3, :3]).max() < 0.1
    t, t_hat = c2w[:, :3, 3], c2w_hat[:, :3, 3].double()
    assert bool(((t_hat - t).norm(dim=-1) <= 1e-3 * t.norm(dim=-1) + 1e-6).all())
    focal, focal_hat = K[:, [0, 1], [0, 1]], K_hat[:, [0, 1], [0, 1]].double()
    assert ((focal_hat - focal).abs() / focal).max() < 5e-3
    principal, principal_hat = K[:, :2, 2], K_hat[:, :2, 2].double()
    assert ((principal_hat - principal).abs() / focal).max() < 5e-3
    assert torch.allclose(
        torch.linalg.det(c2w_hat[:, :3, :3]).double(), torch.ones(len(c2w), dtype=torch.float64)
    )


def _full_resolution_raymap(c2w, K, height, width, dmax):
    """Independent reference: every pixel's ray through explicit matrix products, (T, 6, H, W)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=c2w.dtype), torch.arange(width, dtype=c2w.dtype), indexing="ij"
    )
    pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # (H, W, 3)
    cam = pixels @ torch.linalg.inv(K).transpose(-1, -2)[:, None]  # (T, H, W, 3)
    world = cam @ c2w[:, None, :3, :3].transpose(-1, -2)
    origin = torch.sign(c2w[:, :3, 3]) * torch.log(1 + (10 * dmax * c2w[:, :3, 3]).abs())
    origin = origin[:, :, None, None].expand(-1, -1, height, width)
    return torch.cat([world.permute(0, 3, 1, 2), origin], dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_low_resolution_equals_bilinear_downsample(dtype):
    c2w = relative_poses(smooth_trajectory(5)).to(dtype)
    K = intrinsics(300.0, 280.0, 51.0, 30.0, dtype).expand(5, 3, 3)
    height, width = 48, 80
    full = _full_resolution_raymap(c2w, K, height, width, 0.7)
    reference = F.interpolate(full, scale_factor=1 / 8, mode="bilinear", align_corners=False)
    raymap = cameras_to_raymap(c2w, K, height, width, dmax=0.7)
    assert raymap.shape == reference.shape == (5, 6, 6, 10)
    torch.testing.assert_close(raymap, reference, atol=1e-5, rtol=0)


def test_direction_channels_have_unit_camera_z():
    c2w = smooth_trajectory(4)
    K = intrinsics(100.0, 120.0, 40.0, 20.0).expand(4, 3, 3)
    raymap = cameras_to_raymap(c2w, K, 32, 64)
    camera_dirs = torch.einsum("tji,tjhw->tihw", c2w[:, :3, :3], raymap[:, :3])
    torch.testing.assert_close(camera_dirs[:, 2], torch.ones_like(camera_dirs[:, 2]))
    # pixel (8j + 3.5, 8i + 3.5): x slope (u - cx) / fx
    torch.testing.assert_close(
        camera_dirs[0, 0, 0, 1], torch.tensor((11.5 - 40.0) / 100.0, dtype=torch.float64)
    )


def test_batched_clips_with_per_clip_dmax():
    c2w = torch.stack([smooth_trajectory(5), smooth_trajectory(5) * 1]).clone()
    c2w[1, :, :3, 3] *= 3.0
    K = intrinsics(200.0, 200.0, 30.0, 20.0).expand(2, 5, 3, 3)
    dmax = torch.tensor([0.5, 0.1], dtype=torch.float64)
    raymap = cameras_to_raymap(c2w, K, 40, 64, dmax=dmax)
    assert raymap.shape == (2, 5, 6, 5, 8)
    expected = signed_log1p(10 * dmax[:, None, None] * c2w[..., :3, 3])
    torch.testing.assert_close(raymap[..., 3:, 2, 3], expected)
    c2w_hat, K_hat = raymap_to_cameras(raymap, 40, 64, dmax=dmax)
    torch.testing.assert_close(c2w_hat, c2w)
    torch.testing.assert_close(K_hat, K)


def test_signed_log1p_inverse():
    x = torch.tensor([-1e3, -2.5, -1e-6, 0.0, 1e-6, 0.3, 40.0], dtype=torch.float64)
    torch.testing.assert_close(signed_expm1(signed_log1p(x)), x)
    torch.testing.assert_close(
        signed_log1p(torch.tensor([math.e - 1, 1 - math.e])), torch.tensor([1.0, -1.0])
    )
    for dtype in (torch.float32, torch.float64):
        y = torch.cat([torch.logspace(-20, 1.9, 500, dtype=dtype), torch.tensor([0.0], dtype=dtype)])
        y = torch.cat([y, -y])
        reference = torch.sign(y) * torch.expm1(y.abs())
        torch.testing.assert_close(signed_expm1(y), reference, rtol=4 * torch.finfo(dtype).eps, atol=0)


def test_mean_ray_method_is_selectable_and_biased_off_centre():
    c2w = smooth_trajectory(4)
    height, width = 64, 96
    centred = intrinsics(80.0, 80.0, (width - 1) / 2, (height - 1) / 2).expand(4, 3, 3)
    off_centre = intrinsics(80.0, 80.0, 30.0, 20.0).expand(4, 3, 3)
    for K, biased in [(centred, False), (off_centre, True)]:
        raymap = cameras_to_raymap(c2w, K, height, width)
        exact, _ = raymap_to_cameras(raymap, height, width, method="lstsq")
        algorithm1, _ = raymap_to_cameras(raymap, height, width, method="mean_ray")
        assert rotation_error_deg(exact[:, :3, :3], c2w[:, :3, :3]).max() < 1e-6
        torch.testing.assert_close(algorithm1[:, :3, 3], c2w[:, :3, 3])
        err = rotation_error_deg(algorithm1[:, :3, :3], c2w[:, :3, :3]).max()
        assert (err > 1.0) if biased else (err < 1e-6)


def test_least_squares_is_robust_to_noise():
    c2w = smooth_trajectory(6)
    K = intrinsics(300.0, 310.0, 50.0, 40.0).expand(6, 3, 3)
    raymap = cameras_to_raymap(c2w, K, 96, 128)
    noise = torch.randn(raymap.shape, generator=torch.Generator().manual_seed(1), dtype=raymap.dtype)
    c2w_hat, K_hat = raymap_to_cameras(raymap + 0.003 * noise, 96, 128)
    assert rotation_error_deg(c2w_hat[:, :3, :3], c2w[:, :3, :3]).max() < 0.5
    assert ((K_hat[:, 0, 0] - 300.0).abs() / 300.0).max() < 0.01
    torch.testing.assert_close(torch.linalg.det(c2w_hat[:, :3, :3]), torch.ones(6, dtype=torch.float64))
    assert bool((K_hat[:, [0, 1], [0, 1]] > 0).all())


def test_bfloat16_raymaps_decode_in_float32():
    c2w = smooth_trajectory(5)
    K = intrinsics(400.0, 400.0, 60.0, 50.0).expand(5, 3, 3)
    raymap = cameras_to_raymap(c2w, K, 96, 128, dmax=0.3).bfloat16()
    c2w_hat, K_hat = raymap_to_cameras(raymap, 96, 128, dmax=0.3)
    assert c2w_hat.dtype == K_hat.dtype == torch.float32
    assert rotation_error_deg(c2w_hat[:, :3, :3], c2w[:, :3, :3]).max() < 1.0
    torch.testing.assert_close(c2w_hat[:, :3, 3].double(), c2w[:, :3, 3], atol=0.05, rtol=0.02)


def test_bad_inputs_raise():
    c2w = smooth_trajectory(3)
    K = intrinsics(100.0, 100.0, 30.0, 20.0).expand(3, 3, 3)
    with pytest.raises(ValueError, match="divisible by 8"):
        cameras_to_raymap(c2w, K, 60, 64)
    with pytest.raises(ValueError, match="T = 3"):
        cameras_to_raymap(c2w, K[:2], 64, 64)
    bad = c2w.clone()
    bad[1, :3, :3] *= 2.0
    with pytest.raises(ValueError, match="orthonormal"):
        cameras_to_raymap(bad, K, 64, 64)
    mirrored = c2w.clone()
    mirrored[1, :3, 0] *= -1.0
    with pytest.raises(ValueError, match="det"):
        cameras_to_raymap(mirrored, K, 64, 64)
    negative = K.clone()
    negative[0, 0, 0] = -5.0
    with pytest.raises(ValueError, match="positive focal"):
        cameras_to_raymap(c2w, negative, 64, 64)
    nan = c2w.clone()
    nan[0, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        cameras_to_raymap(nan, K, 64, 64)
    with pytest.raises(ValueError, match="dmax"):
        cameras_to_raymap(c2w, K, 64, 64, dmax=0.0)
    raymap = cameras_to_raymap(c2w, K, 64, 64)
    with pytest.raises(ValueError, match="8x16 grid"):
        raymap_to_cameras(raymap, 64, 128)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 6, h, w\)"):
        raymap_to_cameras(raymap[:, :5], 64, 64)
    with pytest.raises(ValueError, match="method"):
        raymap_to_cameras(raymap, 64, 64, method="svd")


def test_raymap_origins_are_the_scaled_camera_centres_with_the_directions_unchanged():
    c2w = smooth_trajectory(5)
    K = intrinsics(40.0, 44.0, 30.0, 21.0).expand(5, 3, 3)
    raymap = cameras_to_raymap(c2w, K, 48, 64, dmax=2.5)
    metric = raymap_origins(raymap)
    torch.testing.assert_close(metric[:, :3], raymap[:, :3], rtol=0, atol=0)
    expected = (2.5 * c2w[:, :3, 3])[:, :, None, None].expand(-1, -1, 6, 8)
    torch.testing.assert_close(metric[:, 3:], expected)
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 6, h, w\), got \(5, 3, 6, 8\)"):
        raymap_origins(raymap[:, :3])
