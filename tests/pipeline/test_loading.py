"""Every loader reads the model spec: export -> from_pretrained / the CLI, and bad folders refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from aether.cli import main as cli
from aether.modalities import TinyBackend
from aether.models.spec import AETHERV1_SPEC, SPEC_FILE, AetherModelSpec
from aether.models.testing import tiny_module_kwargs
from aether.pipeline import AetherPipeline
from aether.training.export import export_module
from aether.training.module import AetherModule

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny-codec model (48x64, 17 frames) exported by ``export_module``, and its module."""
    module = AetherModule(**tiny_module_kwargs())
    out = export_module(module, tmp_path_factory.mktemp("export") / "model")
    return out, module


def test_spec_round_trip_and_folders_without_one(tmp_path, tiny_dirs):
    spec = AetherModelSpec(
        latent_backend="tiny",
        backend_kwargs={"spatial_factor": 8},
        target_modalities=("color", "raymap"),
        modality_options={"raymap": {"method": "mean_ray"}},
        prediction_type="sample",
        frames=None,
        fps=(12.0,),
    )
    spec.save(tmp_path, extra={"training": {"lr": 1}})
    assert AetherModelSpec.load(tmp_path) == spec
    assert json.loads((tmp_path / SPEC_FILE).read_text())["training"] == {"lr": 1}
    _, aether = tiny_dirs
    assert AetherModelSpec.load(aether) == AETHERV1_SPEC  # no spec: the released AetherV1
    with pytest.raises(ValueError, match="unknown model spec keys \\['layers'\\]"):
        AetherModelSpec.from_dict({"layers": 3})
    with pytest.raises(ValueError, match="must start with the one 'frames' modality"):
        AetherModelSpec(condition_modalities=("raymap", "color")).check_registered()
    with pytest.raises(ValueError, match="must contain the condition's frames modality 'color'"):
        AetherModelSpec(target_modalities=("disparity",)).check_registered()
    # any number of condition sets after the frames: depth as a signal condition is a spec
    AetherModelSpec(condition_modalities=("color", "raymap", "disparity")).check_registered()


def test_export_loads_offline_with_its_backend_stacks_and_scheduler(exported, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, module = exported
    pipe = AetherPipeline.from_pretrained(out)
    assert pipe.spec == module.spec
    assert isinstance(pipe.backend, TinyBackend) and pipe.backend.latent_channels == 16
    assert pipe.targets.names == ["color", "disparity", "raymap"] and pipe.targets.channels == 56
    assert pipe.scheduler.config.prediction_type == module.prediction_type
    assert dict(pipe.scheduler.config)["timestep_spacing"] == "trailing"
    assert torch.equal(pipe.prompt_embeds, module.prompt_embedding)
    assert (pipe.height, pipe.width) == (48, 64)


def test_a_colour_only_condition_model_samples(tmp_path):
    module = AetherModule(**tiny_module_kwargs(), condition_modalities=["color"])
    assert module.transformer.config.in_channels == 56 + 16
    pipe = AetherPipeline.from_pretrained(export_module(module, tmp_path / "model"))
    pipe.progress = False
    world = pipe.plan(torch.zeros(3, 48, 64), torch.zeros(3, 48, 64), num_frames=17, num_inference_steps=1)
    assert world.c2w.shape == (17, 4, 4)
    with pytest.raises(ValueError, match="no raymap condition"):
        pipe.generate(
            "prediction", observation=torch.zeros(3, 48, 64), num_frames=17, raymap=torch.zeros(17, 6, 6, 8)
        )


def test_a_base_contradicting_the_spec_is_refused(exported, tiny_dirs):
    out, _ = exported
    base, _ = tiny_dirs
    with pytest.raises(ValueError) as err:
        AetherPipeline.from_pretrained(out, base=base)
    assert str(base) in str(err.value) and str(out) in str(err.value) and "'tiny'" in str(err.value)


def _copy(out, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    return bad


def _edit_spec(folder, **changes):
    path = folder / SPEC_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_bad_model_folders_are_refused_naming_what_is_wrong(exported, tmp_path):
    out, _ = exported
    bad = _copy(out, tmp_path)
    shutil.rmtree(bad / "transformer")
    with pytest.raises(FileNotFoundError, match="missing transformer/"):
        AetherPipeline.from_pretrained(bad)
    shutil.rmtree(bad)

    bad = _copy(out, tmp_path)
    weights = bad / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated weights: expected \\d+ bytes, the file has \\d+"):
        AetherPipeline.from_pretrained(bad)
    weights.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="unreadable safetensors"):
        AetherPipeline.from_pretrained(bad)
    shutil.rmtree(bad)

    bad = _copy(out, tmp_path)
    _edit_spec(bad, latent_backend="nope")
    with pytest.raises(ValueError, match="unknown latent backend 'nope'; known: .*cogvideox.*tiny"):
        AetherPipeline.from_pretrained(bad)
    _edit_spec(bad, latent_backend="tiny", target_modalities=["color", "normals"])
    with pytest.raises(ValueError, match="unknown modalities \\['normals'\\]; known: .*color, disparity"):
        AetherPipeline.from_pretrained(bad)
    # the transformer was trained for color | disparity | raymap = 56 channels, the spec says 40
    _edit_spec(bad, target_modalities=["color", "raymap"])
    with pytest.raises(ValueError, match="in_channels=96, out_channels=56.*in_channels=80.*out_channels=40"):
        AetherPipeline.from_pretrained(bad)
    with pytest.raises(FileNotFoundError, match="the local folder .*missing does not exist"):
        AetherPipeline.from_pretrained(tmp_path / "missing")


def test_a_hub_id_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match="some-org/some-model: not a local folder, .*HF_HUB_OFFLINE"):
        AetherPipeline.from_pretrained("some-org/some-model")


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_a_hub_id_without_the_hub_fails_at_once_with_one_line(env, tmp_path):
    import os
    import subprocess
    import sys
    import time

    environ = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    for name in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        environ.pop(name, None)
    environ.update(env)
    argv = [sys.executable, "-m", "aether.cli", "reconstruct", "clip.mp4", "--model", "some-org/some-model"]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=environ, cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2 and elapsed < 5.0, (elapsed, proc.stderr[-500:])
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("aether reconstruct: error: some-org/some-model: not a local folder")
    assert (
        "HF_HUB_OFFLINE is set" in line
        if "HF_HUB_OFFLINE" in env
        else "127.0.0.1:9 cannot be reached" in line
    )
    assert str(tmp_path / "hf" / "hub") in line  # where a local copy was looked for
    assert "--model DIR" in line and "hf download some-org/some-model --local-dir DIR" in line


def test_a_cached_hub_model_loads_its_spec_offline(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from aether.models.spec import AETHERV1_SPEC
    from aether.pipeline.loading import load_spec

    repo = tmp_path / "models--some-org--released"
    snapshot = repo / "snapshots" / ("a" * 40)
    (snapshot / "transformer").mkdir(parents=True)
    (snapshot / "transformer" / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert load_spec("some-org/released") == AETHERV1_SPEC  # cached, without a spec: the released layout
    with pytest.raises(FileNotFoundError, match=f"no copy in the local cache {tmp_path}"):
        load_spec("some-org/other")


def test_cli_runs_an_export_offline_and_refuses_a_contradicting_base(
    exported, tiny_dirs, tmp_path, monkeypatch, capsys
):
    import imageio.v3 as iio

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, _ = exported
    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "obs.png", (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    iio.imwrite(tmp_path / "goal.png", (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    common = ["--model", str(out), "--steps", "1", "--quiet", "--formats", "npz"]
    assert (
        cli(["predict", str(tmp_path / "obs.png"), "--frames", "17", "--out", str(tmp_path / "p"), *common])
        == 0
    )
    video = np.stack([iio.imread(tmp_path / "obs.png")] * 17)
    iio.imwrite(tmp_path / "clip.mp4", video, fps=12)
    assert cli(["reconstruct", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "r"), *common]) == 0
    args = ["plan", str(tmp_path / "obs.png"), str(tmp_path / "goal.png"), "--frames", "17"]
    assert cli([*args, "--out", str(tmp_path / "g"), *common]) == 0
    world = np.load(tmp_path / "r" / "world.npz")
    assert world["depth"].shape == (17, 48, 64) and world["c2w"].shape == (17, 4, 4)
    base, _ = tiny_dirs
    capsys.readouterr()
    assert cli([*args, "--out", str(tmp_path / "x"), *common, "--base", str(base)]) == 2
    err = capsys.readouterr().err
    assert "contradicts the model spec" in err and str(base) in err and str(out) in err
    assert "Traceback" not in err


def test_the_rope_time_base_travels_with_the_spec(tmp_path):
    module = AetherModule(**tiny_module_kwargs(), rope_base_fps=24.0)
    assert module.spec.rope_base_fps == 24.0 and module.transformer.base_fps == 24.0
    out = export_module(module, tmp_path / "model")
    pipe = AetherPipeline.from_pretrained(out)
    assert pipe.spec.rope_base_fps == 24.0
    transformer = pipe.sampler.transformer
    assert transformer.base_fps == 24.0
    # at its own base rate a clip advances one RoPE position per latent frame, as AetherV1's at 12 fps
    cos, sin = transformer.rotary_embedding(5, 6, 8, 24.0)
    ref_cos, ref_sin = transformer.rotary_embedding(5, 6, 8, 12.0)
    transformer.base_fps = 12.0
    v1_cos, v1_sin = transformer.rotary_embedding(5, 6, 8, 12.0)
    assert torch.equal(cos, v1_cos) and torch.equal(sin, v1_sin)
    assert not torch.equal(ref_cos, v1_cos)  # 12 fps under base 24: positions twice as far apart
    with pytest.raises(ValueError, match="rope_base_fps must be positive"):
        AetherModelSpec(rope_base_fps=0)
