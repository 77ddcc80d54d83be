"""AETHER-no-depth from the command line: train (validating), export, infer and bench planning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aether.cli import main as cli

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

RECIPE = Path(__file__).parents[2] / "recipes" / "aether_no_depth.yaml"


def _smoke_overrides(root: Path) -> list[str]:
    """recipes/aether_no_depth.yaml at smoke size: a tiny model on the tiny codec, on CPU, 2 steps."""
    synth = "{frames: 17, height: 48, width: 64, maxcount: 2"
    sets = [
        f"run.output_dir={root / 'out'}",
        f"run.prepare={{synth: [{synth}, out: {root / 'train'}, clips: 2, seed: 0, prefix: train}}, "
        f"{synth}, out: {root / 'val'}, clips: 1, seed: 9, prefix: val}}]}}",
        "run.evaluate={clips: 1, steps: {reconstruction: 2, prediction: 2, planning: 2}}",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.num_nodes=1",
        "trainer.strategy=auto",
        "trainer.precision=32-true",
        "trainer.callbacks=[]",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "model.transformer={tiny: {num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, "
        "text_embed_dim: 8, max_text_seq_length: 2, sample_height: 6, sample_width: 8, sample_frames: 17}}",
        "model.latent_backend=tiny",
        "model.backend_kwargs={spatial_factor: 8, latent_channels: 16}",
        "model.validation={max_batches: 1, "
        "num_inference_steps: {reconstruction: 2, prediction: 2, planning: 2}}",
        f"data.train_urls={root / 'train'}",
        f"data.val_urls={root / 'val'}",
        "data.height=48",
        "data.width=64",
        "data.frames=[17]",
        "data.batch_size=1",
        "data.num_workers=0",
        "data.shuffle_buffer=2",
        "data.seed=42",
    ]
    return [arg for s in sets for arg in ("--set", s)]


def test_no_depth_trains_validates_exports_and_benches_planning(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    assert cli(["run", str(RECIPE), *_smoke_overrides(tmp_path)]) == 0
    run = tmp_path / "out" / "aether_no_depth"
    logged = (run / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/planning/psnr", "val/reconstruction/ate"} <= set(logged)  # validation sampled
    assert not any("abs_rel" in k for k in logged)  # no depth without a disparity target
    metrics = json.loads((run / "metrics.json").read_text())["tasks"]
    assert set(metrics["reconstruction"]["metrics"]) == {"ate", "rpe_trans", "rpe_rot"}
    model = run / "model"
    assert json.loads((model / "aether_config.json").read_text())["target_modalities"] == ["color", "raymap"]

    args = ["--model", str(model), "--out", str(tmp_path / "bench"), "--steps", "2", "--no-plots"]
    synthetic = ["--dataset", "synthetic", "--num-sequences", "1", "--num-frames", "17"]
    assert cli(["bench", "planning", *synthetic, "--height", "48", "--width", "64", *args]) == 0
    result = json.loads((tmp_path / "bench" / "planning_synthetic.json").read_text())
    assert np.isfinite(result["mean"]["psnr"])

    import imageio.v3 as iio

    iio.imwrite(tmp_path / "obs.png", np.full((48, 64, 3), 128, np.uint8))
    capsys.readouterr()
    out = ["--model", str(model), "--frames", "17", "--steps", "1", "--out", str(tmp_path / "pred")]
    assert cli(["predict", str(tmp_path / "obs.png"), *out]) == 0
    printed = capsys.readouterr()
    assert "skipping ply, glb: this result has no depth" in caplog.text
    assert {"npz:", "json:"} <= set(printed.out.split())
    world = np.load(tmp_path / "pred" / "world.npz")
    assert "depth" not in world.files and world["c2w"].shape == (17, 4, 4)
