"""The recipes parse and build their objects: the paper's FSDP setup without a GPU."""

from __future__ import annotations

import contextlib
from pathlib import Path
from unittest import mock

import lightning.fabric.accelerators.cuda as fabric_cuda
import lightning.pytorch.accelerators.cuda as pl_cuda
import pytest
import yaml
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import ShardingStrategy

from aether.training.cli import apply_overrides, build_cli, load_recipe, resolve_config_args
from aether.training.module import AetherModule

RECIPES = Path(__file__).parents[2] / "recipes"
TINY_MODEL = [
    "model.transformer={tiny: {num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, "
    "text_embed_dim: 8, max_text_seq_length: 2}}",
    "model.latent_backend=tiny",
    "model.backend_kwargs={spatial_factor: 8, latent_channels: 16}",
]


def _pretend_8_gpus() -> contextlib.ExitStack:
    """Lightning's FSDP refuses to be constructed without CUDA: pretend a node of 8 GPUs."""
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(fabric_cuda, "num_cuda_devices", return_value=8))
    stack.enter_context(mock.patch.object(pl_cuda, "num_cuda_devices", return_value=8))
    stack.enter_context(mock.patch.object(pl_cuda.CUDAAccelerator, "is_available", return_value=True))
    stack.enter_context(mock.patch("torch.cuda.is_available", return_value=True))
    stack.enter_context(mock.patch("torch.cuda.device_count", return_value=8))
    return stack


def test_paper_recipe_builds_fsdp_trainer_with_a_tiny_model() -> None:
    recipe = apply_overrides(load_recipe(RECIPES / "aether.yaml"), TINY_MODEL)
    recipe.pop("run")
    recipe["trainer"]["logger"] = False
    with _pretend_8_gpus():
        cli = build_cli(recipe)
    trainer, strategy = cli.trainer, cli.trainer.strategy
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.sharding_strategy == ShardingStrategy._HYBRID_SHARD_ZERO2
    assert strategy.kwargs["device_mesh"] == (10, 8)
    assert set(strategy.kwargs["auto_wrap_policy"]._module_classes) == {CogVideoXBlock}
    assert set(strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes) == {
        CogVideoXBlock
    }
    assert (trainer.num_nodes, trainer.num_devices, trainer.precision) == (10, 8, "bf16-mixed")
    assert trainer.max_steps == 30000 and trainer.gradient_clip_val == 1.0
    model = cli.model
    assert isinstance(model, AetherModule)
    assert model.prediction_type == "v_prediction"
    assert model.hparams.stage2_start_step == 24000
    assert model.task_sampler.probabilities.tolist() == pytest.approx([0.30, 0.40, 0.28, 0.02])
    assert cli.datamodule.batch_size == 4
    assert tuple(cli.datamodule.frames) == (17, 25, 33, 41)
    assert tuple(cli.datamodule.fps) == (8, 10, 12, 15, 24)
    assert (cli.datamodule.height, cli.datamodule.width) == (480, 720)


def test_no_depth_recipe_differs_only_in_targets() -> None:
    paper = load_recipe(RECIPES / "aether.yaml")
    ablation = load_recipe(RECIPES / "aether_no_depth.yaml")
    assert ablation["model"]["target_modalities"] == ["color", "raymap"]
    ablation["model"]["target_modalities"] = paper["model"]["target_modalities"]
    ablation["run"]["name"] = paper["run"]["name"]
    assert ablation == paper


def test_config_args_are_merged_for_lightning(tmp_path) -> None:
    args = resolve_config_args(
        ["-c", str(RECIPES / "aether_no_depth.yaml"), "--trainer.max_steps", "3"], tmp_path
    )
    merged = yaml.safe_load(Path(args[1]).read_text())
    assert "extends" not in merged and merged["model"]["target_modalities"] == ["color", "raymap"]
    assert args[2:] == ["--trainer.max_steps", "3"]


def test_tiny_recipe_builds_on_cpu(tmp_path) -> None:
    recipe = load_recipe(RECIPES / "tiny.yaml")
    recipe.pop("run")
    recipe["trainer"]["default_root_dir"] = str(tmp_path)
    recipe["trainer"]["logger"] = False
    cli = build_cli(recipe)
    assert cli.trainer.max_steps > 0 and cli.model.transformer.config.out_channels == 56
    assert sum(p.numel() for p in cli.model.transformer.parameters()) < 2_000_000
    assert cli.model.timestep_sampling == {"kind": "logit_normal", "mean": 1.0, "std": 1.0}


def test_overrides() -> None:
    recipe = {"data": {"class_path": "x", "init_args": {"batch_size": 1}}, "trainer": {}}
    out = apply_overrides(recipe, ["data.batch_size=3", "trainer.max_steps=5", "run.evaluate.clips=2"])
    assert out["data"]["init_args"]["batch_size"] == 3 and out["trainer"]["max_steps"] == 5
    assert out["run"]["evaluate"]["clips"] == 2 and recipe["data"]["init_args"]["batch_size"] == 1
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_overrides(recipe, ["nonsense"])
    with pytest.raises(FileNotFoundError):
        load_recipe("missing.yaml")
