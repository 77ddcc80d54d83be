"""`aether export` writes a directory the pipeline loads, with the trained weights."""

from __future__ import annotations

import json

import pytest
import torch

from aether.models import AetherTransformer
from aether.pipeline import AetherPipeline
from aether.training.commands import main
from aether.training.export import export_module
from aether.training.validation import evaluate_batch, sampler_for

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_export_round_trip_and_pipeline(tmp_path, batch, module_factory) -> None:
    module = module_factory()
    out = export_module(module, tmp_path / "model")
    assert {p.name for p in out.iterdir()} >= {"transformer", "scheduler", "aether_config.json"}
    assert json.loads((out / "aether_config.json").read_text())["target_modalities"] == [
        "color",
        "disparity",
        "raymap",
    ]
    loaded = AetherTransformer.from_pretrained(out, subfolder="transformer")
    for name, value in module.transformer.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)
    clip = module.target_stack.prepare(batch)
    video = clip["video"][0]
    pipe = AetherPipeline.from_pretrained(out)
    pipe.progress = False
    a = pipe.generate(
        "reconstruction",
        video=video,
        num_frames=video.shape[0],
        fps=24.0,
        generator=torch.Generator().manual_seed(0),
    )
    with sampler_for(module) as live:
        b = live(
            "reconstruction",
            video=video,
            num_frames=video.shape[0],
            fps=24.0,
            generator=torch.Generator().manual_seed(0),
        )
    torch.testing.assert_close(a.disparity, b.disparity)
    torch.testing.assert_close(a.c2w, b.c2w)
    # the sampler froze the transformer only while it ran
    assert all(p.requires_grad for p in module.transformer.parameters())


def test_aether_export_command(tmp_path, shards, module_factory, datamodule_factory, trainer_factory) -> None:
    trainer = trainer_factory(tmp_path, 1)
    module = module_factory()
    trainer.fit(module, datamodule=datamodule_factory(shards))
    ckpt = tmp_path / "one.ckpt"
    trainer.save_checkpoint(ckpt)
    assert main(["export", str(ckpt), str(tmp_path / "exported")], prog="aether export") == 0
    loaded = AetherTransformer.from_pretrained(tmp_path / "exported", subfolder="transformer")
    torch.testing.assert_close(
        loaded.state_dict()["proj_out.weight"], module.transformer.state_dict()["proj_out.weight"]
    )
    with pytest.raises(FileNotFoundError):
        main(["export", str(tmp_path / "missing.ckpt"), str(tmp_path / "x")], prog="aether export")


def test_evaluation_scores_all_tasks_and_baselines(batch, module_factory) -> None:
    module = module_factory()
    one = {k: (v[:1] if isinstance(v, torch.Tensor | list) else v) for k, v in batch.items()}
    results = evaluate_batch(module, one, steps={"reconstruction": 2, "prediction": 2, "planning": 2})
    assert set(results) == {"reconstruction", "prediction", "planning"}
    rec = results["reconstruction"]
    assert set(rec.metrics) == {"abs_rel", "delta_1_25", "ate", "rpe_trans", "rpe_rot"}
    assert set(rec.baseline) == set(rec.metrics)
    assert set(results["planning"].metrics) == {"psnr", "ssim"}
    assert all(torch.isfinite(torch.tensor(list(r.baseline.values()))).all() for r in results.values())


def test_the_recipes_sampling_steps_travel_with_the_exported_model(tmp_path, module_factory) -> None:
    from aether.models.spec import AetherModelSpec
    from aether.pipeline.sampler import DEFAULT

    module = module_factory(sampling_steps={"prediction": 3, "reconstruction": 2})
    out = export_module(module, tmp_path / "model")
    assert json.loads((out / "aether_config.json").read_text())["sampling_steps"] == {
        "prediction": 3,
        "reconstruction": 2,
    }
    sampler = AetherPipeline.from_pretrained(out).sampler
    steps = {
        task: sampler.make_task(task, DEFAULT, None, None, None).num_inference_steps
        for task in ("prediction", "reconstruction", "planning")
    }
    assert steps == {"prediction": 3, "reconstruction": 2, "planning": 50}  # planning: the task's default
    assert sampler.make_task("prediction", DEFAULT, 7, None, None).num_inference_steps == 7  # the caller's
    with pytest.raises(ValueError, match="sampling_steps: expected"):
        AetherModelSpec(sampling_steps={"prediction": 0})
