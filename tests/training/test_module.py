"""AetherModule: it learns on a fixed batch, and stage 2 trains only what the paper says."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore:.*self.log.*")


def _loss_at(module, batch, seed: int = 123) -> float:
    module.generator.manual_seed(seed)
    with torch.no_grad():
        return float(module.training_step(batch, 0))


def test_overfits_one_batch(batch, module_factory) -> None:
    module = module_factory()
    opt = torch.optim.AdamW(module.transformer.parameters(), lr=3e-3)
    before = _loss_at(module, batch)
    module.generator.manual_seed(0)
    for _ in range(30):
        opt.zero_grad()
        module.training_step(batch, 0).backward()
        opt.step()
    after = _loss_at(module, batch)
    assert after < 0.7 * before


def test_stage2_losses_finite_and_gradients_where_the_paper_says(batch, module_factory) -> None:
    module = module_factory(stage2_start_step=0)
    clip = module.target_stack.prepare(batch)
    target = module.encode_clip(clip)["target"]
    clean = (target + 0.3 * torch.randn_like(target)).requires_grad_(True)
    stage2 = module.stage2_losses(clean, clip, target)
    assert set(stage2) == {"color", "depth", "pointmap"}
    slices = module.target_stack.slices
    expected = {"color": {"color"}, "depth": {"disparity"}, "pointmap": {"raymap"}}
    for name, value in stage2.items():
        assert value.shape == (2,) and torch.isfinite(value).all() and (value > 0).all()
        (grad,) = torch.autograd.grad(value.sum(), clean, retain_graph=True)
        touched = {m for m, sl in slices.items() if grad[:, :, sl].abs().sum() > 0}
        assert touched == expected[name], name


def test_stage2_zero_on_true_latents_for_geometry(batch, module_factory) -> None:
    module = module_factory()
    clip = module.target_stack.prepare(batch)
    target = module.encode_clip(clip)["target"]
    stage2 = module.stage2_losses(target, clip, target)
    # the raymap round trip is exact, so predicted points equal true points up to the depth codec
    assert float(stage2["pointmap"].max()) < 0.1
    assert float(stage2["color"].max()) < 0.3


def test_the_codec_disparity_floor_bounds_the_training_pointmap_depth(batch, module_factory, monkeypatch):
    """The floor configured on the disparity codec (the one inference decodes with) also bounds the
    predicted depth of the training point map: no depth beyond 1 / floor."""
    from aether.modalities import losses

    depths, maxima = [], []
    real = losses.raymap_points
    monkeypatch.setattr(
        losses, "raymap_points", lambda depth, rays: depths.append(depth) or real(depth, rays)
    )
    for floor in (1e-3, 0.25):
        module = module_factory(modality_options={"disparity": {"min_disparity": floor}})
        assert module.target_stack.codecs["disparity"].min_disparity == floor
        clip = module.target_stack.prepare(batch)
        target = module.encode_clip(clip)["target"]
        noisy = target + 0.3 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
        depths.clear()
        module.stage2_losses(noisy, clip, target)
        predicted = depths[0]  # raymap_points(predicted depth, rays), then the true one
        assert float(predicted.max()) <= 1 / floor * (1 + 1e-6)
        maxima.append(float(predicted.max()))
    assert maxima[0] > 1 / 0.25  # the low floor leaves depth beyond 4 that the high floor clips


def test_no_depth_ablation_is_a_config_change(batch, module_factory) -> None:
    module = module_factory(target_modalities=["color", "raymap"], stage2_start_step=0)
    assert module.transformer.config.out_channels == 16 + 24
    assert module.transformer.config.in_channels == 16 + 24 + 16 + 24
    assert torch.isfinite(module.training_step(module.target_stack.prepare(batch), 0))


def test_v_prediction_and_epsilon_targets(module_factory) -> None:
    from aether.training.module import COGVIDEOX_SCHEDULER

    eps = module_factory(scheduler={**COGVIDEOX_SCHEDULER, "prediction_type": "epsilon"})
    assert eps.prediction_type == "epsilon"
    assert module_factory().prediction_type == "v_prediction"


def test_bad_transformer_spec(module_factory) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        module_factory(transformer={"tiny": {}, "base": "x"})


def test_one_step_warm_up_is_lengthened_not_a_division_by_zero(module_factory) -> None:
    # 20 steps with pct_start 0.05 is a one-step warm-up, which OneCycleLR cannot schedule
    module = module_factory(lr_scheduler={"pct_start": 0.05, "total_steps": 20}, optimizer={"lr": 1e-2})
    config = module.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 / 25)  # step 0: max_lr / div_factor
    lrs = []
    for _ in range(19):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-2)  # step 1 peaks: the warm-up spans steps 0 and 1
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 1e-4


def test_bf16_autocast_reaches_only_the_transformer(batch, module_factory) -> None:
    """Under ``bf16-mixed`` (autocast) the codecs, camera geometry and stage-2 losses stay float32."""
    module = module_factory(stage2_start_step=0)
    clip = {**batch, "fps": torch.tensor([12.0, 24.0])}  # two fps groups in one transformer call
    reference = module.encode_clip(module.target_stack.prepare(clip))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with module.full_precision():
            latents = module.encode_clip(module.target_stack.prepare(clip))
        noisy = torch.randn_like(latents["target"])
        condition = module.condition(latents, torch.tensor([1, 2]), torch.tensor([True, False]))
        out = module.denoise(noisy, condition, torch.tensor([999, 500]), clip["fps"])
        loss = module.training_step(clip, 0)
    for key in reference:
        assert torch.equal(latents[key], reference[key]), key
    assert out.dtype == torch.bfloat16 and out.shape == noisy.shape
    loss.backward()
    grads = [p.grad for p in module.transformer.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads)
