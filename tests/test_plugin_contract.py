"""The plug-in contract: a task and a condition modality defined outside ``src/aether`` (the package
in ``tests/plugin_package``, one file each) and registered only through entry points train, validate,
export, load, sample through ``AetherPipeline`` into ``World4D``, run in ``aether bench`` and in the
app's job layer, with no edit to the core."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from aether.modalities import MODALITIES
from aether.models.testing import tiny_module_kwargs
from aether.tasks import TASKS
from tests.clips import synthetic_batch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PACKAGE = Path(__file__).parent / "plugin_package"
ENTRY_POINTS = """\
[aether.modalities]
depth_hint = aether_plugin_example.depth_hint:DepthHintCodec

[aether.tasks]
depth_guided = aether_plugin_example.depth_guided:DepthGuided
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The plug-in package installed as pip would leave it (a ``*.dist-info`` with its entry points on
    ``sys.path``); the registries rescan their entry points and forget the plug-ins afterwards."""
    site = tmp_path / "site"
    info = site / "aether_plugin_example-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aether-plugin-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PACKAGE))
    for registry in (MODALITIES, TASKS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))
        monkeypatch.setattr(registry, "_plugins_loaded", False)


def _hint(depth: torch.Tensor) -> torch.Tensor:
    """The depth_hint latents (1,5,1,6,8) of a (17,48,64) depth video, written out by hand."""
    disparity = 1 / depth
    x = (disparity / disparity.max()).clamp(max=1).sqrt() * 2 - 1
    return F.avg_pool2d(x[::4][:, None], 8)[None]


def test_a_plugin_task_and_condition_modality_run_everywhere(installed, tmp_path, monkeypatch):
    from aether.cli import main as cli
    from aether.pipeline import AetherPipeline
    from aether.training.export import export_module
    from aether.training.module import AetherModule
    from aether.training.pictures import task_pictures
    from aether.training.validation import evaluate_batch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert TASKS.get("depth_guided").__module__ == "aether_plugin_example.depth_guided"
    assert MODALITIES.get("depth_hint").__module__ == "aether_plugin_example.depth_hint"

    # train: the hint is a condition (encoded from the clip's depth) and a target with its own losses
    module = AetherModule(
        **tiny_module_kwargs(),
        target_modalities=["color", "disparity", "raymap", "depth_hint"],
        condition_modalities=["color", "raymap", "depth_hint"],
        stage2_start_step=0,
        stage2={"depth_hint": 0.5},
    )
    assert module.transformer.config.in_channels == (16 + 16 + 24 + 1) + (16 + 24 + 1)
    trainer = L.Trainer(
        accelerator="cpu", max_steps=2, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=DataLoader([synthetic_batch()] * 2, batch_size=None))
    assert trainer.global_step == 2
    for key in ("train/loss_latent_depth_hint", "train/loss_depth_hint", "train/loss_pointmap"):
        assert torch.isfinite(trainer.callback_metrics[key]), key

    # validate: the task's required inputs come from the clip; its scores and pictures are a generator's
    batch = synthetic_batch()
    results = evaluate_batch(module, batch, tasks=["depth_guided"], steps={"depth_guided": 1})
    assert set(results["depth_guided"].metrics) == {"psnr", "ssim"}
    (picture,) = task_pictures(tmp_path / "pictures", "depth_guided", results["depth_guided"], batch, 0, "v")
    assert picture.name == "v_depth_guided_frames.png" and picture.stat().st_size > 0

    # export, load, sample: the hint reaches the transformer's condition, its decode World4D
    pipe = AetherPipeline.from_pretrained(export_module(module, tmp_path / "model"))
    pipe.progress = False
    assert pipe.spec.condition_modalities == ("color", "raymap", "depth_hint")
    image, depth = batch["video"][0, 0], batch["depth"][0]
    seen = {}
    sample = pipe.generate(
        "depth_guided", observation=image, signals={"depth": depth}, num_frames=17, num_inference_steps=2,
        generator=torch.Generator().manual_seed(3), hook=lambda name, x: seen.setdefault(name, x),
    )  # fmt: skip
    torch.testing.assert_close(seen["condition"][:, :, -1:], _hint(depth), rtol=1e-5, atol=1e-6)
    assert not seen["condition"][:, :, 16:40].any()  # no action given
    inputs = {"observation": image, "depth": depth}
    world = pipe.run("depth_guided", inputs, num_frames=17, num_inference_steps=2, seed=3)
    assert world.meta["task"] == "depth_guided" and world.depth.shape == (17, 48, 64)
    hint = sample.latents[:, :, pipe.targets.slices["depth_hint"]][0, [0, 1, 1, 1, 1, 2], 0]
    np.testing.assert_array_equal(world.modalities["depth_hint"][:6], hint.numpy())
    flipped = pipe.run(
        "depth_guided", {**inputs, "depth": depth.flip(-1)}, num_frames=17, num_inference_steps=2, seed=3
    )
    assert not np.array_equal(flipped.rgb, world.rgb)  # the hint conditions the video
    with pytest.raises(ValueError, match=r"depth_guided: expected inputs \['observation', 'depth'\]"):
        pipe.run("depth_guided", {"observation": image}, num_frames=17)

    # the app's job layer
    from aether.apps.jobs import AppRunner

    frame = ((image.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    result = AppRunner(pipe, tmp_path / "app").generate(
        "depth_guided", [frame], signals={"depth": depth.numpy()}, num_frames=17, steps=1
    )
    assert result.summary.startswith("depth_guided: 17 frames of 64x48") and result.archive.is_file()

    # aether bench: the planning benchmark's scoring of the plug-in task's videos
    args = ["--model", str(tmp_path / "model"), "--out", str(tmp_path / "bench"), "--steps", "1"]
    synthetic = ["--dataset", "synthetic", "--num-sequences", "1", "--num-frames", "17"]
    sizes = ["--height", "48", "--width", "64", "--no-plots", "--task", "depth_guided"]
    assert cli(["bench", "planning", *synthetic, *sizes, *args]) == 0
    report = json.loads((tmp_path / "bench" / "planning_synthetic.json").read_text())
    assert np.isfinite(report["mean"]["psnr"])
