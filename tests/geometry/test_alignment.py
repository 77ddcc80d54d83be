import numpy as np
import pytest
import torch

from aether.geometry import align_depth_lstsq, align_poses_sim3, align_trajectory_sim3, umeyama

from ._helpers import make_poses, rotation_error_deg, smooth_trajectory


def _known_sim3(batch=(2,)):
    g = torch.Generator().manual_seed(3)
    R = make_poses(
        torch.randn(*batch, 3, generator=g, dtype=torch.float64), torch.zeros(*batch, 3, dtype=torch.float64)
    )
    s = torch.rand(batch, generator=g, dtype=torch.float64) * 3 + 0.2
    t = torch.randn(*batch, 3, generator=g, dtype=torch.float64) * 5
    return s, R[..., :3, :3], t


def test_umeyama_recovers_known_sim3_float64():
    s, R, t = _known_sim3()
    src = torch.randn(2, 30, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    dst = s[:, None, None] * src @ R.transpose(-1, -2) + t[:, None]
    s_hat, R_hat, t_hat = umeyama(src, dst)
    torch.testing.assert_close(s_hat, s, atol=1e-6, rtol=0)
    torch.testing.assert_close(R_hat, R, atol=1e-6, rtol=0)
    torch.testing.assert_close(t_hat, t, atol=1e-6, rtol=0)


def test_weighted_umeyama_ignores_zero_weight_outliers():
    s, R, t = _known_sim3((1,))
    src = torch.randn(1, 20, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    dst = s[:, None, None] * src @ R.transpose(-1, -2) + t[:, None]
    dst[:, :5] += 100.0
    weights = torch.ones(1, 20, dtype=torch.float64)
    weights[:, :5] = 0.0
    s_hat, R_hat, t_hat = umeyama(src, dst, weights)
    torch.testing.assert_close((s_hat, R_hat, t_hat), (s, R, t), atol=1e-6, rtol=0)
    assert rotation_error_deg(umeyama(src, dst)[1], R).item() > 1e-3


def test_rigid_umeyama_and_reflection_guard():
    src = torch.randn(40, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    _, R, t = _known_sim3(())
    s_hat, R_hat, t_hat = umeyama(src, src @ R.T + t, with_scale=False)
    assert s_hat.item() == 1.0
    torch.testing.assert_close((R_hat, t_hat), (R, t))
    mirrored = src * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert torch.linalg.det(umeyama(src, mirrored)[1]).item() == pytest.approx(1.0)


def test_align_poses_sim3_matches_transformed_centres():
    c2w = smooth_trajectory(6)
    s, R, t = (x[0] for x in _known_sim3())
    aligned = align_poses_sim3(c2w, s, R, t)
    torch.testing.assert_close(aligned[:, :3, 3], s * c2w[:, :3, 3] @ R.T + t)
    torch.testing.assert_close(aligned[:, :3, :3], R @ c2w[:, :3, :3])
    s_hat, R_hat, t_hat = umeyama(c2w[:, :3, 3], aligned[:, :3, 3])
    torch.testing.assert_close(align_poses_sim3(c2w, s_hat, R_hat, t_hat), aligned)


def test_align_trajectory_sim3_undoes_a_known_similarity():
    target = smooth_trajectory(7)
    s, R, t = (x[0] for x in _known_sim3())
    moved = align_poses_sim3(target, s, R, t)
    torch.testing.assert_close(align_trajectory_sim3(moved, target), target)
    with pytest.raises(ValueError, match=r"expected the shape of c2w \(7, 4, 4\), got \(6, 4, 4\)"):
        align_trajectory_sim3(moved, target[:6])


@pytest.mark.parametrize("mode", ["scale", "scale_shift"])
def test_depth_alignment_matches_numpy_lstsq(mode):
    g = torch.Generator().manual_seed(7)
    pred = torch.rand(3, 8, 9, generator=g, dtype=torch.float64) + 0.5
    target = 1.7 * pred + 0.2 + 0.01 * torch.randn(3, 8, 9, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 8, 9, generator=g) > 0.3
    target[~mask] = float("nan") if mode == "scale" else 1e6  # excluded pixels must not matter
    scale, shift = align_depth_lstsq(pred, target, mask, mode=mode)
    for i in range(3):
        p, q = pred[i][mask[i]].numpy(), target[i][mask[i]].numpy()
        A = p[:, None] if mode == "scale" else np.stack([p, np.ones_like(p)], axis=1)
        sol = np.linalg.lstsq(A, q, rcond=None)[0]
        assert scale[i].item() == pytest.approx(sol[0], rel=1e-10)
        assert shift[i].item() == pytest.approx(0.0 if mode == "scale" else sol[1], abs=1e-10)


def test_depth_alignment_over_whole_video_and_errors():
    pred = torch.rand(2, 4, 5, 6, dtype=torch.float64) + 0.1
    scale, shift = align_depth_lstsq(pred, 3.0 * pred, mode="scale", dims=(-3, -2, -1))
    torch.testing.assert_close(scale, torch.full((2,), 3.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="mode"):
        align_depth_lstsq(pred, pred, mode="affine")
    with pytest.raises(ValueError, match="at least 1 valid"):
        align_depth_lstsq(pred, pred, torch.zeros_like(pred, dtype=torch.bool))
    with pytest.raises(ValueError, match="target"):
        align_depth_lstsq(pred, pred[0])
    with pytest.raises(ValueError, match="at least 3 points"):
        umeyama(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="weights"):
        umeyama(torch.zeros(5, 3), torch.zeros(5, 3), torch.ones(4))
