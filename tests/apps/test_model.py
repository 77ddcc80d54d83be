"""``aether tiny-model`` and the loader of the newcomer commands."""

import json

import numpy as np
import pytest

from aether import cli
from aether.apps.model import default_model, load_model
from aether.pipeline import World4D

from .conftest import HEIGHT, WIDTH


def test_tiny_model_command_writes_a_model_that_reconstructs_offline(tmp_path, capsys):
    out = tmp_path / "m"
    assert cli.main(["tiny-model", str(out), "--height", "32", "--width", "64", "--seed", "3"]) == 0
    assert str(out) in capsys.readouterr().out
    for sub in ("transformer", "vae", "scheduler", "tokenizer", "text_encoder"):
        assert (out / sub).is_dir(), sub
    config = json.loads((out / "transformer" / "config.json").read_text())
    assert (config["in_channels"], config["out_channels"]) == (96, 56)
    assert (out / "empty_prompt_embedding.safetensors").is_file()
    pipe = load_model(out)
    pipe.progress = False
    assert (pipe.height, pipe.width) == (32, 64)
    video = np.random.default_rng(0).integers(0, 256, (17, 32, 64, 3), dtype=np.uint8)
    world = pipe.reconstruct(video)
    assert isinstance(world, World4D)
    assert world.depth.shape == (17, 32, 64)
    np.testing.assert_array_equal(world.rgb, video)  # reconstruction keeps the input colours
    assert np.isfinite(world.c2w).all()


def test_tiny_models_with_the_same_seed_are_identical(tmp_path, tiny_model_dir):
    from aether.apps.model import save_tiny_model

    again = save_tiny_model(tmp_path / "again", height=HEIGHT, width=WIDTH)
    a = (tiny_model_dir / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()
    b = (again / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert a == b


@pytest.mark.parametrize("size", [["--height", "30"], ["--width", "0"]])
def test_tiny_model_rejects_sizes_that_are_not_multiples_of_16(tmp_path, capsys, size):
    assert cli.main(["tiny-model", str(tmp_path / "m"), *size]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_load_model_rebuilds_an_exported_model_from_its_spec(tmp_path):
    from aether.training.export import export_module
    from aether.training.module import AetherModule

    module = AetherModule(
        transformer={"tiny": {"sample_height": 4, "sample_width": 6, "sample_frames": 17}},
        latent_backend="tiny",
        backend_kwargs={"spatial_factor": 8, "latent_channels": 16},
    )
    export_module(module, tmp_path / "exported")
    pipe = load_model(tmp_path / "exported")
    assert type(pipe.backend).__name__ == "TinyBackend"
    assert (pipe.height, pipe.width) == (32, 48)


def test_default_model_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="aether tiny-model"):
        default_model()
    (tmp_path / "outputs" / "tiny" / "model").mkdir(parents=True)
    assert default_model().is_dir()


def test_app_without_a_model_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["app"]) == 2
    err = capsys.readouterr().err.strip()
    assert "make demo" in err and "aether tiny-model" in err and len(err.splitlines()) == 1
