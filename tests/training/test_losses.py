"""Invariances and closed forms of the training losses."""

import pytest
import torch
from diffusers import CogVideoXDPMScheduler

from aether.modalities.losses import ms_ssim_loss, pointmap_loss, raymap_points, ssi_loss
from aether.training.losses import add_noise, channel_mse, diffusion_target, predicted_clean_latents


@pytest.fixture
def alphas() -> torch.Tensor:
    return CogVideoXDPMScheduler(prediction_type="v_prediction", rescale_betas_zero_snr=True).alphas_cumprod


@pytest.mark.parametrize("kind", ["v_prediction", "epsilon", "sample"])
def test_clean_latents_invert_target(alphas: torch.Tensor, kind: str) -> None:
    z0, eps = torch.randn(3, 2, 4, 5, 6), torch.randn(3, 2, 4, 5, 6)
    t = torch.tensor([10, 500, 900])
    zt = add_noise(alphas, z0, eps, t)
    target = diffusion_target(kind, alphas, z0, eps, t)
    torch.testing.assert_close(predicted_clean_latents(kind, alphas, zt, target, t), z0, atol=1e-4, rtol=1e-4)


def test_v_target_matches_diffusers(alphas: torch.Tensor) -> None:
    sched = CogVideoXDPMScheduler(prediction_type="v_prediction", rescale_betas_zero_snr=True)
    z0, eps, t = torch.randn(2, 3, 4, 4, 4), torch.randn(2, 3, 4, 4, 4), torch.tensor([3, 700])
    torch.testing.assert_close(
        diffusion_target("v_prediction", alphas, z0, eps, t), sched.get_velocity(z0, eps, t)
    )
    torch.testing.assert_close(add_noise(alphas, z0, eps, t), sched.add_noise(z0, eps, t))


def test_unknown_prediction_type(alphas: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="prediction_type"):
        diffusion_target(
            "flow", alphas, torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)
        )


def test_channel_mse_groups() -> None:
    pred = torch.zeros(2, 1, 4, 1, 1)
    target = torch.tensor([1.0, 1.0, 2.0, 2.0]).reshape(1, 1, 4, 1, 1).expand(2, 1, 4, 1, 1)
    out = channel_mse(pred, target, {"a": slice(0, 2), "b": slice(2, 4)})
    torch.testing.assert_close(out["a"], torch.ones(2))
    torch.testing.assert_close(out["b"], torch.full((2,), 4.0))


def test_ms_ssim_zero_on_identical_and_positive_otherwise() -> None:
    x = torch.rand(2, 3, 3, 64, 96) * 2 - 1
    torch.testing.assert_close(ms_ssim_loss(x, x), torch.zeros(2), atol=1e-5, rtol=0)
    assert (ms_ssim_loss(x, torch.rand_like(x) * 2 - 1) > 0.1).all()


def test_ssi_invariant_to_scale_and_shift() -> None:
    target = torch.rand(2, 3, 16, 20) + 0.1
    mask = torch.rand(2, 3, 16, 20) > 0.2
    pred = target + 0.1 * torch.randn_like(target)
    base = ssi_loss(pred, target, mask)
    torch.testing.assert_close(ssi_loss(3.7 * pred - 1.3, target, mask), base, atol=1e-5, rtol=1e-4)
    # an exact affine copy of the target has zero loss; invalid pixels do not count
    garbage = torch.where(mask, 2 * target + 5, torch.full_like(target, 1e3))
    torch.testing.assert_close(
        ssi_loss(garbage, torch.where(mask, target, 0.0), mask), torch.zeros(2), atol=1e-4, rtol=0
    )
    assert (base > 0).all()


def test_ssi_gradient_term_sees_structure() -> None:
    target = torch.rand(1, 2, 16, 16)
    mask = torch.ones_like(target, dtype=torch.bool)
    noisy = target + 0.2 * torch.randn_like(target)
    assert ssi_loss(noisy, target, mask, alpha=1.0) > ssi_loss(noisy, target, mask, alpha=0.0)


def _rays(b: int = 2, t: int = 3, h: int = 5, w: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    dirs = torch.randn(b, t, 3, h, w) * 0.3
    dirs[:, :, 2] = 1.0
    origins = torch.randn(b, t, 3, 1, 1).expand(b, t, 3, h, w)
    return torch.cat([dirs, origins], 2), torch.rand(b, t, h, w) * 4 + 0.5


def test_raymap_points_closed_form() -> None:
    raymap, depth = _rays()
    pts = raymap_points(depth, raymap)
    torch.testing.assert_close(
        pts[0, 1, 2, 3], depth[0, 1, 2, 3] * raymap[0, 1, :3, 2, 3] + raymap[0, 1, 3:, 2, 3]
    )


@pytest.mark.parametrize("align", ["scale", "scale_shift"])
def test_pointmap_loss_scale_invariant(align: str) -> None:
    raymap, depth = _rays()
    target = raymap_points(depth, raymap)
    mask = torch.rand(depth.shape) > 0.1
    pred = target + 0.05 * torch.randn_like(target)
    base = pointmap_loss(pred, target, depth, mask, align=align)
    torch.testing.assert_close(
        pointmap_loss(0.25 * pred, target, depth, mask, align=align), base, rtol=1e-4, atol=1e-6
    )
    torch.testing.assert_close(
        pointmap_loss(3 * target, target, depth, mask, align=align), torch.zeros(2), atol=1e-4, rtol=0
    )
    assert (base > 0).all()


def test_pointmap_loss_weights_near_points_more() -> None:
    raymap, depth = _rays(1, 1, 4, 4)
    target = raymap_points(depth, raymap)
    mask = torch.ones_like(depth, dtype=torch.bool)
    near, far = depth.flatten().argmin(), depth.flatten().argmax()
    err = torch.zeros(16, 3)
    err[near, 0] = 0.1
    loss_near = pointmap_loss(target + err.reshape(target.shape), target, depth, mask, align="scale")
    err = torch.zeros(16, 3)
    err[far, 0] = 0.1
    loss_far = pointmap_loss(target + err.reshape(target.shape), target, depth, mask, align="scale")
    assert loss_near > loss_far


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="B,T,H,W"):
        ssi_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="32 pixels"):
        ms_ssim_loss(torch.zeros(1, 1, 3, 16, 16), torch.zeros(1, 1, 3, 16, 16))
