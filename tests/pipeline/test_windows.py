"""Window planning and merging on synthetic cameras and depth with known answers."""

import pytest
import torch

from aether.geometry import cameras_to_raymap, raymap_to_cameras, relative_poses
from aether.pipeline.windows import (
    WindowResult,
    align_to,
    merge_spatial,
    merge_temporal,
    spatial_offsets,
    temporal_window_size,
    window_starts,
)

H, W = 32, 48


def _rot_y(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    R = torch.zeros(*angle.shape, 3, 3, dtype=torch.float64)
    R[..., 0, 0], R[..., 0, 2], R[..., 1, 1], R[..., 2, 0], R[..., 2, 2] = c, s, 1, -s, c
    return R


def _trajectory(num_frames: int) -> torch.Tensor:
    """A turning, advancing camera (T, 4, 4)."""
    t = torch.arange(num_frames, dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
    c2w[:, :3, :3] = _rot_y(0.01 * t)
    c2w[:, 0, 3] = 0.3 * torch.sin(0.05 * t)
    c2w[:, 2, 3] = 0.02 * t
    return c2w


def _K(num_frames: int) -> torch.Tensor:
    K = torch.tensor([[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]], dtype=torch.float64)
    return K.repeat(num_frames, 1, 1)


def test_window_plan():
    assert window_starts(100, 41, 24) == [0, 24, 48, 59]
    assert window_starts(41, 41, 24) == [0]
    assert temporal_window_size(30) == 25 and temporal_window_size(100) == 41
    with pytest.raises(ValueError, match="at least 17"):
        temporal_window_size(16)
    offsets = spatial_offsets(80, 48)
    assert offsets[0] == 0 and offsets[-1] == 32 and len(offsets) == 2
    assert spatial_offsets(48, 48) == [0]


def test_known_trajectory_survives_raymap_round_trip_and_window_merge():
    T = 100
    gt = _trajectory(T)
    gt_rel = relative_poses(gt)
    disparity = 0.5 + torch.rand(T, H, W, dtype=torch.float64)
    starts = window_starts(T, 41, 24)
    windows, scales = [], [1.0, 0.5, 2.0, 1.7]
    for start, s in zip(starts, scales):
        sel = slice(start, start + 41)
        local = relative_poses(gt[sel])
        local[:, :3, 3] *= s  # each window has its own scale, as each clip normalises by its dmax
        raymap = cameras_to_raymap(local, _K(41), H, W)  # encode ...
        c2w, K = raymap_to_cameras(raymap, H, W)  # ... identity model, decode
        windows.append(WindowResult(torch.rand(41, H, W, 3), disparity[sel] / s, c2w, K))
    merged = merge_temporal(windows, starts)
    assert len(merged) == T
    torch.testing.assert_close(merged.c2w[:, :3, :3], gt_rel[:, :3, :3], atol=1e-5, rtol=0)
    torch.testing.assert_close(merged.c2w[:, :3, 3], gt_rel[:, :3, 3], atol=1e-5, rtol=0)
    torch.testing.assert_close(merged.disparity, disparity, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(merged.K, _K(T), atol=1e-6, rtol=0)


def test_overlap_cameras_agree_after_alignment():
    torch.manual_seed(0)
    gt = _trajectory(41)
    a = WindowResult(torch.rand(41, H, W, 3), torch.ones(41, H, W), gt.clone(), _K(41))
    # the second window sees frames 24..40 in its own frame: a random rotation, offset and scale
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    R = R * torch.linalg.det(R).sign()
    local = gt[24:].clone()
    local[:, :3, 3] = 3.0 * (local[:, :3, 3] - local[0, :3, 3])
    local[:, :3, :3] = R @ local[:, :3, :3]
    local[:, :3, 3] = (R @ local[:, :3, 3, None])[..., 0]
    local[:, :3, 3] += 0.001 * torch.randn(17, 3, dtype=torch.float64)
    b = WindowResult(torch.rand(17, H, W, 3), torch.full((17, H, W), 1 / 3.0), local, _K(17))
    before = (b.c2w[:, :3, 3] - gt[24:, :3, 3]).norm(dim=-1).max()
    aligned = align_to(a, b, overlap=17)
    after = (aligned.c2w[:, :3, 3] - gt[24:, :3, 3]).norm(dim=-1).max()
    rot_err = (aligned.c2w[:, :3, :3] - gt[24:, :3, :3]).abs().max()
    assert before > 0.1 and after < 2e-3 and rot_err < 1e-3
    torch.testing.assert_close(aligned.disparity, torch.ones(17, H, W, dtype=torch.float32))


def test_spatial_merge_recovers_canvas_disparity_and_principal_point():
    T, width = 3, 80
    canvas = 0.5 + torch.rand(T, H, width, dtype=torch.float64)
    offsets = spatial_offsets(width, W)
    gt = _trajectory(T)
    rgb = torch.rand(T, H, width, 3, dtype=torch.float64)
    windows = []
    for i, o in enumerate(offsets):
        s = 1.0 + i  # each crop's own disparity scale; translations scale by 1 / s with depth
        K = _K(T).clone()
        K[:, 0, 2] = 40.0 - o  # principal point of the canvas seen from the crop
        c2w = gt.clone()
        c2w[:, :3, 3] *= s
        windows.append(WindowResult(rgb[:, :, o : o + W], canvas[..., o : o + W] / s, c2w, K))
    merged = merge_spatial(windows, offsets, "width", width)
    torch.testing.assert_close(merged.disparity, canvas, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(merged.K[:, 0, 2], torch.full((T,), 40.0, dtype=torch.float64))
    torch.testing.assert_close(merged.c2w, gt, atol=1e-6, rtol=0)
    torch.testing.assert_close(merged.rgb, rgb)
