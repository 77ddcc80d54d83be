"""`aether synth` writes valid shards that the DataModule streams."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aether.cli import main as cli_main
from aether.data import AetherDataModule, ShardReader


def test_synth_writes_streamable_shards_with_previews(tmp_path):
    out = tmp_path / "synth"
    argv = ["synth", "--out", str(out), "--clips", "3", "--frames", "17", "--height", "16", "--width", "24"]
    argv += ["--maxcount", "2", "--fps", "24", "--preview", "1", "--quiet", "--seed", "40"]
    assert cli_main(argv) == 0
    assert sorted(p.name for p in out.glob("*.tar")) == ["synth-000000.tar", "synth-000001.tar"]
    assert (out / "preview" / "synth-00000040.png").is_file()
    assert json.loads((out / "synth.json").read_text())["shards"] == ["synth-000000.tar", "synth-000001.tar"]
    reader = ShardReader(str(out))
    samples = list(reader)
    assert [s["__key__"] for s in samples] == ["synth-00000040", "synth-00000041", "synth-00000042"]
    assert reader.skipped == 0 and samples[0]["rgb"].shape == (17, 16, 24, 3)
    assert samples[0]["meta"]["source"]["seed"] == 40
    dm = AetherDataModule(val_urls=str(out), height=16, width=16, frames=(17,), fps=(24,), batch_size=3)
    batch = next(iter(dm.val_dataloader()))
    assert batch["video"].shape == (3, 17, 3, 16, 16) and bool(batch["valid"].any())
    assert torch.isfinite(batch["dmax"]).all()


def test_synth_rejects_bad_arguments(tmp_path, capsys):
    assert cli_main(["synth", "--out", str(tmp_path), "--clips", "0"]) == 2
    assert "clips" in capsys.readouterr().err


@pytest.mark.slow
def test_parallel_rendering_writes_the_same_clips(tmp_path):
    from aether.data.commands import synthesize_shards

    kwargs = {"frames": 3, "height": 16, "width": 24, "seed": 5, "progress": False}
    serial = synthesize_shards(tmp_path / "a", 3, **kwargs)
    parallel = synthesize_shards(tmp_path / "b", 3, workers=2, **kwargs)
    for a, b in zip(ShardReader(serial), ShardReader(parallel), strict=True):
        assert a["__key__"] == b["__key__"]
        for name in ("rgb", "depth", "K", "c2w", "semantic", "instance", "dynamic"):
            assert np.array_equal(a[name], b[name])


def test_preview_rows_are_labelled_and_readable(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    from PIL import Image

    from aether.data.commands import write_preview
    from aether.data.synthetic import render_clip

    clip = render_clip(1, num_frames=9, height=16, width=24)
    sample = {"__key__": "k", "rgb": clip.rgb, "depth": clip.depth, "semantic": clip.semantic}
    seen = {}
    save = Figure.savefig

    def record(fig, *args, **kwargs):
        seen["ylabels"] = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
        seen["titles"] = [ax.get_title() for ax in fig.axes if ax.get_title()]
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    write_preview(sample, tmp_path / "p.png")
    assert seen["ylabels"] == ["colour", "depth", "depth (scene units)", "semantic labels"]
    assert seen["titles"] == ["frame 0", "frame 4", "frame 8"]
    width = Image.open(tmp_path / "p.png").size[0]
    assert width >= 3 * 120  # 24-px frames drawn at least 120 px wide each
