"""Typed AetherModule options: a misspelled recipe key fails while the recipe is parsed, naming it;
Python callers still pass mappings; checkpoints of either form load and compare as equal settings."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch
import yaml

from aether import cli
from aether.training.cli import apply_overrides, build_cli, check_recipe, load_recipe
from aether.training.export import load_module
from aether.training.module import AetherModule
from aether.training.options import (
    LoraOptions,
    OptimizerOptions,
    TimestepSampling,
    canonical_hparams,
    coerce_options,
)
from aether.training.runner import check_same_settings

RECIPES = Path(__file__).parents[2] / "recipes"
TINY_MODEL = [
    "model.transformer={tiny: {num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, "
    "text_embed_dim: 8, max_text_seq_length: 2}}",
]


def _recipe(tmp_path: Path, model: dict) -> Path:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"extends": str(RECIPES / "tiny.yaml"), "model": model}))
    return path


@pytest.mark.parametrize("command", ["run", "fit"])
def test_a_misspelled_option_key_is_one_line_naming_it(tmp_path, monkeypatch, capsys, command) -> None:
    monkeypatch.chdir(tmp_path)
    path = _recipe(tmp_path, {"optimizer": {"lrr": 1e-3}})
    args = ["run", str(path)] if command == "run" else ["fit", "-c", str(path)]
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in captured.err, captured.err
    assert err == (
        f"aether {command}: error: recipe {path}: unknown key model.optimizer.lrr (did you mean "
        "model.optimizer.lr?); expected one of lr, betas, weight_decay, eps"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typo.yaml"]  # nothing rendered or written


@pytest.mark.parametrize(
    "model, key",
    [
        ({"lr_scheduler": {"pct_strat": 0.1}}, "model.lr_scheduler.pct_strat"),
        ({"timestep_sampling": {"meen": 1.0}}, "model.timestep_sampling.meen"),
        ({"validation": {"task": ["prediction"]}}, "model.validation.task"),
        ({"lora": {"rnak": 8}}, "model.lora.rnak"),
        ({"task_probabilities": {"vide": 1.0}}, "model.task_probabilities.vide"),
        (
            {"class_path": "aether.training.AetherModule", "init_args": {"optimizer": {"lrr": 1.0}}},
            "model.init_args.optimizer.lrr",
        ),
    ],
)
def test_every_typed_section_names_its_unknown_key(model, key) -> None:
    with pytest.raises(ValueError, match=rf"recipe r\.yaml: unknown key {key.replace('.', '[.]')} "):
        check_recipe({"model": model}, "r.yaml")


def test_the_parser_itself_refuses_the_key(capsys) -> None:
    """Past the recipe check (e.g. ``aether fit --model.optimizer ...``) LightningCLI refuses it too."""
    recipe = apply_overrides(load_recipe(RECIPES / "tiny.yaml"), ["model.optimizer.lrr=1e-3"])
    recipe.pop("run")
    with pytest.raises(SystemExit):
        build_cli(recipe)
    assert "Option 'lrr' is not accepted" in capsys.readouterr().err


def test_the_shipped_recipes_build_typed_options(tmp_path) -> None:
    recipe = load_recipe(RECIPES / "tiny.yaml")
    recipe.pop("run")
    recipe["trainer"].update(default_root_dir=str(tmp_path), logger=False)
    model = build_cli(recipe).model
    assert model.optimizer_config == OptimizerOptions(lr=2e-3, betas=(0.9, 0.99), weight_decay=1e-4, eps=1e-8)
    assert model.lr_scheduler_config.final_div_factor == 100.0
    assert model.lr_scheduler_config.total_steps is None
    assert model.task_sampler.probabilities.tolist() == pytest.approx([0.15, 0.20, 0.60, 0.05])
    # the checkpoint's hyper-parameters are plain data
    assert model.hparams["optimizer"] == {"lr": 2e-3, "betas": [0.9, 0.99], "weight_decay": 1e-4, "eps": 1e-8}


def test_python_callers_pass_mappings_or_dataclasses(module_factory) -> None:
    module = module_factory(optimizer={"lr": 1e-3}, timestep_sampling={"kind": "logit_normal", "mean": 1.0})
    assert module.optimizer_config == OptimizerOptions(lr=1e-3)
    assert module.timestep_sampling == {"kind": "logit_normal", "mean": 1.0, "std": 1.0}
    full = {"lr": 1e-3, "betas": [0.9, 0.95], "weight_decay": 1e-4, "eps": 1e-8}
    assert module.hparams["optimizer"] == full  # plain data, in full
    same = module_factory(
        optimizer=OptimizerOptions(lr=1e-3), timestep_sampling=TimestepSampling("logit_normal", mean=1.0)
    )
    assert same.hparams["optimizer"] == module.hparams["optimizer"]
    assert same.hparams["timestep_sampling"] == module.hparams["timestep_sampling"]
    with pytest.raises(ValueError, match=r"optimizer: unknown key\(s\) \['lrr'\]; expected keys among"):
        module_factory(optimizer={"lrr": 1e-3})
    with pytest.raises(ValueError, match="timestep_sampling 'uniform': expected keys"):
        module_factory(timestep_sampling={"mean": 1.0})
    with pytest.raises(ValueError, match="lora.rank must be a positive integer"):
        coerce_options(LoraOptions, {"rank": 0}, "lora")


def test_checkpoints_load_and_older_partial_options_compare_equal(tmp_path) -> None:
    recipe = apply_overrides(load_recipe(RECIPES / "tiny.yaml"), TINY_MODEL)
    recipe.pop("run")
    recipe["trainer"].update(default_root_dir=str(tmp_path), logger=False)
    parsed = build_cli(recipe)
    module = parsed.model
    checkpoint = {
        "hyper_parameters": dict(module.hparams),
        "state_dict": module.state_dict(),
        "pytorch-lightning_version": lightning.__version__,
    }
    torch.save(checkpoint, tmp_path / "new.ckpt")
    for loaded in (
        load_module(tmp_path / "new.ckpt"),
        AetherModule.load_from_checkpoint(tmp_path / "new.ckpt", weights_only=False),  # jsonargparse
    ):
        assert loaded.optimizer_config == module.optimizer_config
        assert loaded.timestep_sampling == module.timestep_sampling
    # as checkpoints written before the options were typed hold them: the keys the recipe gave
    old = dict(checkpoint["hyper_parameters"])
    old["timestep_sampling"] = {"kind": "logit_normal", "mean": 1.0, "std": 1.0}
    old["optimizer"] = {k: v for k, v in old["optimizer"].items() if k != "eps"}
    torch.save({**checkpoint, "hyper_parameters": old}, tmp_path / "old.ckpt")
    for loaded in (
        load_module(tmp_path / "old.ckpt"),
        AetherModule.load_from_checkpoint(tmp_path / "old.ckpt", weights_only=False),
    ):
        assert loaded.optimizer_config == module.optimizer_config  # eps: the default, as the recipe's
        assert loaded.timestep_sampling == module.timestep_sampling
    assert canonical_hparams(old) == canonical_hparams(module.hparams)
    check_same_settings("old.ckpt", {"hyper_parameters": old}, module, parsed.datamodule)
    old["optimizer"]["lr"] = 1.0
    with pytest.raises(ValueError, match=r"model\.optimizer differ"):
        check_same_settings("old.ckpt", {"hyper_parameters": old}, module, parsed.datamodule)


def test_a_memory_recipes_checkpoint_loads_with_its_context_frames(tmp_path) -> None:
    # the context-frame counts come back from a checkpoint's saved hyper-parameters as digit strings
    recipe = apply_overrides(load_recipe(RECIPES / "tiny_memory.yaml"), TINY_MODEL)
    recipe.pop("run")
    recipe["trainer"].update(default_root_dir=str(tmp_path), logger=False)
    module = build_cli(recipe).model
    hparams = dict(module.hparams)
    hparams["context_probabilities"] = {str(k): v for k, v in hparams["context_probabilities"].items()}
    checkpoint = {
        "hyper_parameters": hparams,
        "state_dict": module.state_dict(),
        "pytorch-lightning_version": lightning.__version__,
    }
    torch.save(checkpoint, tmp_path / "memory.ckpt")
    loaded = load_module(tmp_path / "memory.ckpt")
    g = torch.Generator().manual_seed(0)
    draws = loaded.task_sampler.sample_context(2000, generator=g)
    assert set(draws.unique().tolist()) == {1, 2}
    assert torch.equal(
        draws, module.task_sampler.sample_context(2000, generator=torch.Generator().manual_seed(0))
    )
