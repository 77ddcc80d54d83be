"""LoRA fine-tuning: what trains, what the merged export holds, the adapter onto a base model."""

from __future__ import annotations

import pytest
import torch

from aether.models import AetherTransformer
from aether.pipeline import AetherPipeline
from aether.training.commands import main
from aether.training.export import export_module
from aether.training.lora import check_lora, load_adapter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LORA = {"rank": 4, "alpha": 8.0}
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")


def lora_module(module_factory, **overrides):
    torch.manual_seed(0)
    module = module_factory(lora={**LORA, **overrides}, optimizer={"lr": 1e-2})
    module.configure_model()
    return module


def fixed_loss(module, batch) -> torch.Tensor:
    """The loss with the same tasks, timesteps and noise every call."""
    module._generator = torch.Generator().manual_seed(7)
    return module.training_step(batch, 0)


def train(module, batch, steps: int) -> None:
    opt = module.configure_optimizers()["optimizer"]
    for step in range(steps):
        opt.zero_grad()
        module._generator = torch.Generator().manual_seed(step)
        module.training_step(batch, step).backward()
        opt.step()


def test_only_adapters_and_full_projections_get_gradients(module_factory, batch) -> None:
    module = lora_module(module_factory)
    fixed_loss(module, batch).backward()
    with_grad = {n for n, p in module.transformer.named_parameters() if p.grad is not None}
    lora_modules = {n.split(".lora_")[0] for n in with_grad if ".lora_" in n}
    linear = {n for n, m in module.transformer.named_modules() if n.endswith(TARGETS)}
    assert lora_modules == {n for n in linear if ".lora_" not in n and not n.endswith(".base_layer")}
    full = with_grad - {n for n in with_grad if ".lora_" in n}
    assert full == {"patch_embed.proj.weight", "patch_embed.proj.bias", "proj_out.weight", "proj_out.bias"}
    frozen = {n for n, p in module.transformer.named_parameters() if not p.requires_grad}
    assert "transformer_blocks.0.norm1.linear.weight" in frozen
    assert "transformer_blocks.0.attn1.to_q.base_layer.weight" in frozen
    # B starts at zero, so only B moves on the first step
    b = module.transformer.transformer_blocks[0].attn1.to_q.lora_B["default"].weight
    assert b.grad.abs().sum() > 0


def test_loss_on_a_fixed_batch_decreases(module_factory, batch) -> None:
    module = lora_module(module_factory)
    before = float(fixed_loss(module, batch))
    train(module, batch, 8)
    after = float(fixed_loss(module, batch))
    assert after < 0.9 * before, (before, after)


def test_merged_export_is_base_plus_scaled_adapters(
    tmp_path, shards, module_factory, datamodule_factory, trainer_factory
) -> None:
    module = lora_module(module_factory)
    trainer = trainer_factory(tmp_path, 3)
    trainer.fit(module, datamodule=datamodule_factory(shards))
    ckpt = tmp_path / "lora.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert main(["export", str(ckpt), str(tmp_path / "merged")], prog="aether export") == 0
    merged = AetherTransformer.from_pretrained(tmp_path / "merged", subfolder="transformer").state_dict()
    scale = LORA["alpha"] / LORA["rank"]
    checked = 0
    for name, value in merged.items():
        module_name = "transformer." + name.rpartition(".")[0]
        if f"{module_name}.lora_A.default.weight" in state and name.endswith(".weight"):
            a, b = (
                state[f"{module_name}.lora_A.default.weight"],
                state[f"{module_name}.lora_B.default.weight"],
            )
            expected = state[f"{module_name}.base_layer.weight"] + scale * b @ a
            assert b.abs().sum() > 0
            checked += 1
        else:
            key = f"{module_name}.base_layer.{name.rpartition('.')[2]}"
            expected = state[key] if key in state else state["transformer." + name]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6, msg=name)
    assert checked == len(TARGETS)  # one block


def test_adapter_loads_onto_the_base_model(tmp_path, module_factory, batch) -> None:
    torch.manual_seed(0)
    base = module_factory()  # the same base weights as lora_module's
    export_module(base, tmp_path / "base")
    module = lora_module(module_factory)
    train(module, batch, 3)
    ckpt = tmp_path / "lora.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    assert main(["export", str(ckpt), str(tmp_path / "adapter"), "--adapter"], prog="aether export") == 0
    pipe = AetherPipeline.from_pretrained(tmp_path / "base")
    load_adapter(pipe.transformer, tmp_path / "adapter")
    noisy, cond = torch.randn(1, 3, 56, 6, 8), torch.randn(1, 3, 40, 6, 8)
    args = (noisy, cond, torch.tensor([500]), torch.zeros(1, 2, 8), 24.0)
    with torch.no_grad():
        expected = module.transformer(*args)
        torch.testing.assert_close(pipe.transformer(*args), expected, rtol=1e-4, atol=1e-5)
        merged = load_adapter(
            AetherPipeline.from_pretrained(tmp_path / "base").transformer, tmp_path / "adapter", merge=True
        )
        assert not any(".lora_" in n for n, _ in merged.named_parameters())
        torch.testing.assert_close(merged(*args), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="not an adapter"):
        load_adapter(pipe.transformer, tmp_path / "base")
    with pytest.raises(ValueError, match="trained without lora"):
        torch.save({"hyper_parameters": dict(base.hparams), "state_dict": base.state_dict()}, ckpt)
        main(["export", str(ckpt), str(tmp_path / "x"), "--adapter"], prog="aether export")


@pytest.mark.parametrize("rank", [0, -2])
def test_lora_rank_must_be_positive(rank, module_factory) -> None:
    with pytest.raises(ValueError, match=f"lora.rank must be a positive integer, got {rank}"):
        module_factory(lora={"rank": rank})


def test_lora_settings_are_checked(module_factory) -> None:
    assert check_lora(None) is None
    assert check_lora({"rank": 8})["alpha"] == 64.0
    with pytest.raises(ValueError, match="unknown lora keys"):
        check_lora({"rnak": 8})
    with pytest.raises(ValueError, match="overlap"):
        check_lora({"full": ["to_q"]})
    module = module_factory(lora={"targets": ["to_qq"]})
    with pytest.raises(ValueError, match="'to_qq' matches no module"):
        module.configure_model()
