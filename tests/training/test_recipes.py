"""The recipes parse and build their objects: the paper's FSDP2 setup without a GPU."""

from __future__ import annotations

import contextlib
from pathlib import Path
from unittest import mock

import lightning.fabric.accelerators.cuda as fabric_cuda
import lightning.pytorch.accelerators.cuda as pl_cuda
import pytest
import torch
import yaml
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock

from aether.training.cli import apply_overrides, build_cli, load_recipe, resolve_config_args
from aether.training.module import AetherModule
from aether.training.progress import StepProgressBar
from aether.training.sharding import FSDP2Strategy

RECIPES = Path(__file__).parents[2] / "recipes"
TINY_MODEL = [
    "model.transformer={tiny: {num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, "
    "text_embed_dim: 8, max_text_seq_length: 2}}",
    "model.latent_backend=tiny",
    "model.backend_kwargs={spatial_factor: 8, latent_channels: 16}",
]


def _pretend_8_gpus() -> contextlib.ExitStack:
    """A GPU trainer refuses to be constructed without CUDA: pretend a node of 8 GPUs."""
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(fabric_cuda, "num_cuda_devices", return_value=8))
    stack.enter_context(mock.patch.object(pl_cuda, "num_cuda_devices", return_value=8))
    stack.enter_context(mock.patch.object(pl_cuda.CUDAAccelerator, "is_available", return_value=True))
    stack.enter_context(mock.patch("torch.cuda.is_available", return_value=True))
    stack.enter_context(mock.patch("torch.cuda.device_count", return_value=8))
    return stack


def test_paper_recipe_builds_fsdp2_trainer_with_a_tiny_model() -> None:
    recipe = apply_overrides(load_recipe(RECIPES / "aether.yaml"), TINY_MODEL)
    recipe.pop("run")
    recipe["trainer"]["logger"] = False
    with _pretend_8_gpus():
        cli = build_cli(recipe)
    trainer, strategy = cli.trainer, cli.trainer.strategy
    assert isinstance(strategy, FSDP2Strategy)
    assert strategy.mesh == (10, 8) and strategy.mesh_shape == (10, 8)
    assert strategy.reshard_after_forward is False  # ZeRO-2 inside a node
    assert strategy.wrap == (CogVideoXBlock,) and strategy.activation_checkpointing
    assert strategy.mixed_precision.param_dtype == torch.bfloat16
    assert strategy.mixed_precision.reduce_dtype == torch.float32
    assert (trainer.num_nodes, trainer.num_devices, trainer.precision) == (10, 8, "32-true")
    assert sum(isinstance(c, StepProgressBar) for c in trainer.callbacks) == 1
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


@pytest.mark.slow
def test_paper_recipe_runs_two_steps_on_two_cpu_processes(tmp_path, shards) -> None:
    """`aether run recipes/aether.yaml` with only the model size, the devices and the data replaced:
    FSDP2 over a (1 x 2) mesh with bf16 parameters, two steps, a sharded checkpoint, export, report."""
    import json
    import socket
    import subprocess
    import sys

    from aether.pipeline import AetherPipeline
    from aether.training.checkpoints import is_sharded_checkpoint
    from tests.training.conftest import subprocess_environ

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tiny = (
        "model.transformer={tiny: {num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, "
        "text_embed_dim: 8, max_text_seq_length: 2, sample_height: 6, sample_width: 8, sample_frames: 17}}"
    )
    overrides = [
        f"run.output_dir={tmp_path}",
        "run.evaluate={clips: 1, tasks: [reconstruction], steps: {reconstruction: 1}, pictures: 0}",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.num_nodes=1",
        "trainer.strategy.mesh=[1, 2]",
        "trainer.max_steps=2",
        "trainer.limit_val_batches=0",
        tiny,
        *TINY_MODEL[1:],
        "model.stage2_start_step=1",
        f"data.train_urls={shards['train']}",
        f"data.val_urls={shards['val']}",
        "data.height=48",
        "data.width=64",
        "data.frames=[17]",
        "data.fps=[24]",
        "data.batch_size=1",
        "data.num_workers=0",
    ]
    args = [sys.executable, "-m", "aether.cli", "run", str(RECIPES / "aether.yaml")]
    args += [a for o in overrides for a in ("--set", o)]
    env = subprocess_environ(MASTER_PORT=str(port))
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = tmp_path / "aether"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 2
    assert is_sharded_checkpoint(out / "checkpoints" / "last.ckpt")
    assert len(list((out / "checkpoints" / "last.ckpt").glob("*.distcp"))) == 2  # one file per rank
    pipe = AetherPipeline.from_pretrained(out / "model")
    assert pipe.transformer.config.num_layers == 1


def test_lora_recipe_builds_one_gpu_lora_trainer() -> None:
    recipe = apply_overrides(load_recipe(RECIPES / "aether_lora.yaml"), TINY_MODEL)
    recipe.pop("run")
    recipe["trainer"]["logger"] = False
    with _pretend_8_gpus():
        cli = build_cli(recipe)
    trainer, model = cli.trainer, cli.model
    assert (trainer.num_nodes, trainer.num_devices, trainer.precision) == (1, 1, "bf16-mixed")
    assert not isinstance(trainer.strategy, FSDP2Strategy)
    assert model.lora_config["rank"] == 64 and model.lora_config["full"] == ["patch_embed.proj", "proj_out"]
    model.configure_model()
    trained = {n for n, p in model.transformer.named_parameters() if p.requires_grad}
    assert "proj_out.weight" in trained and "transformer_blocks.0.attn1.to_q.lora_A.default.weight" in trained
    assert cli.datamodule.batch_size == 2 and trainer.accumulate_grad_batches == 2


def test_tiny_memory_recipe_adds_the_cache_condition_and_context_frames(tmp_path) -> None:
    recipe = load_recipe(RECIPES / "tiny_memory.yaml")
    assert recipe.pop("run")["name"] == "tiny_memory"
    recipe["trainer"]["default_root_dir"] = str(tmp_path)
    recipe["trainer"]["logger"] = False
    model = build_cli(recipe).model
    assert model.condition_stack.names == ["color", "raymap", "cache"]
    assert model.transformer.config.in_channels == 56 + 16 + 24 + 20
    assert model.condition_stack.codecs["cache"].drop == 0.5
    assert model.task_sampler.max_context_frames == 2
    assert model.condition_stack.codecs["raymap"].layout == "consecutive"  # tiny.yaml's, kept
