"""The first hour of a newcomer: example inputs from nothing, presets on the command line, and errors
that name the local path a user gave (never a hub failure), with nothing left behind on failure."""

import json

import numpy as np
import pytest

from aether import cli
from aether.apps.examples import EXAMPLE_FILES, write_examples
from aether.pipeline import Trajectory, World4D
from aether.pipeline.io import read_image, read_video

from .conftest import HEIGHT, WIDTH


def _world() -> World4D:
    depth = np.ones((2, 4, 6), np.float32)
    return World4D(
        rgb=np.zeros((2, 4, 6, 3), np.uint8), depth=depth, disparity=1 / depth, valid=depth > 0, fps=8.0,
        c2w=np.tile(np.eye(4, dtype=np.float32), (2, 1, 1)),
        K=np.tile(np.array([[5, 0, 2.5], [0, 5, 1.5], [0, 0, 1]], np.float32), (2, 1, 1)),
    )  # fmt: skip


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    written, K = write_examples(root)
    return root, written, K


def test_examples_are_every_input_the_readme_names(examples):
    root, written, K = examples
    assert sorted(written) == sorted(EXAMPLE_FILES)
    assert sorted(p.name for p in root.iterdir()) == sorted(EXAMPLE_FILES)  # no staging folder left
    frames, fps = read_video(root / "clip.mp4")
    assert frames.shape == (17, 480, 720, 3) and fps == 12
    np.testing.assert_allclose(read_image(root / "obs.png"), frames[0], atol=40)  # lossy H.264 vs PNG
    assert read_image(root / "goal.png").shape == (480, 720, 3)
    traj = Trajectory.load(root / "path.json")
    assert len(traj) == 17 and (traj.width, traj.height) == (720, 480)
    np.testing.assert_allclose(traj.K[0].numpy(), K)
    np.testing.assert_allclose(traj.c2w[0].numpy(), np.eye(4), atol=1e-12)  # relative to the first frame
    tum = Trajectory.load(root / "traj.txt", K=K, width=720, height=480)
    np.testing.assert_allclose(tum.c2w.numpy(), traj.c2w.numpy(), atol=1e-6)
    walk = root / "my_clips" / "walk"
    assert [len(list((walk / s).glob("*.png"))) for s in ("rgb", "depth", "masks")] == [17, 17, 17]


def test_examples_refuse_to_replace_files_unless_told(examples, tmp_path, capsys):
    root, _, _ = examples
    assert cli.main(["examples", str(root)]) == 2
    err = capsys.readouterr().err
    assert "already holds clip.mp4, obs.png, goal.png, path.json, traj.txt, my_clips" in err
    (tmp_path / "clip.mp4").write_text("mine")
    assert cli.main(["examples", str(tmp_path)]) == 2
    assert (tmp_path / "clip.mp4").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_predict_with_a_preset_follows_the_apps_motion(examples, tiny_model_dir, tmp_path, capsys):
    root, _, _ = examples
    out = tmp_path / "orbit"
    argv = ["predict", str(root / "obs.png"), "--preset", "orbit left", "--frames", "17", "--steps", "1"]
    assert cli.main([*argv, "--model", str(tiny_model_dir), "--out", str(out), "--formats", "npz"]) == 0
    world = World4D.load(out)
    expected = Trajectory.preset("orbit left", 17, HEIGHT, WIDTH).c2w.numpy()
    np.testing.assert_allclose(world.requested_c2w, expected, atol=1e-6)
    assert world.meta["action"] is True
    # a result already there is not overwritten without --overwrite
    assert cli.main([*argv, "--model", str(tiny_model_dir), "--out", str(out)]) == 2
    assert "is not empty (an earlier result?)" in capsys.readouterr().err
    both = [*argv, "--trajectory", str(root / "path.json"), "--model", str(tiny_model_dir)]
    with pytest.raises(SystemExit):  # argparse: --trajectory and --preset exclude each other
        cli.main(both)


def test_world_save_refuses_a_non_empty_folder(tmp_path):
    world = _world()
    (tmp_path / "notes.txt").write_text("an earlier result")
    with pytest.raises(FileExistsError, match="is not empty .*overwrite=True"):
        world.save(tmp_path, formats=("npz",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    world.save(tmp_path, formats=("npz",), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "world.npz"]


@pytest.mark.parametrize(
    "argv",
    [
        ["reconstruct", "clip.mp4", "--model", "outputs/tiny/model"],
        ["app", "--model", "outputs/tiny/model"],
        ["bench", "video-depth", "--dataset", "synthetic", "--model", "outputs/tiny/model", "--out", "r"],
    ],
    ids=["reconstruct", "app", "bench"],
)
def test_a_missing_local_model_folder_is_named_as_such(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    write_examples(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "the local folder outputs/tiny/model does not exist" in err and "hub" not in err.split("(")[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created


def test_a_lora_run_on_a_missing_model_creates_nothing(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny.yaml"
    monkeypatch.chdir(tmp_path)
    argv = ["run", str(recipe), "--name", "tiny_lora"]
    argv += ["--set", "model.transformer={pretrained: outputs/tiny/model, subfolder: transformer}"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "model.transformer.pretrained: the local folder outputs/tiny/model does not exist" in err
    assert not (tmp_path / "outputs").exists()


def test_view_without_a_display_suggests_save(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rerun")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    world = _world()
    world.save(tmp_path / "out", formats=("npz",))
    assert cli.main(["view", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--save {tmp_path / 'out' / 'world.rrd'}" in err[0]


def test_app_takes_a_base(monkeypatch):
    from aether.apps import web

    seen = {}
    monkeypatch.setattr(web, "serve", lambda model, **kw: seen.update(model=model, **kw))
    assert cli.main(["app", "--model", "m", "--base", "local/base"]) == 0
    assert seen["base"] == "local/base" and seen["model"] == "m"


def test_docs_json_example_is_a_trajectory(tmp_path):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "inference.md").read_text()
    start = text.index('{"kind": "c2w"')
    example = text[start : text.index("```", start)]
    (tmp_path / "t.json").write_text(example)
    traj = Trajectory.load(tmp_path / "t.json")
    assert len(traj) == 2 and float(traj.c2w[1, 2, 3]) == pytest.approx(0.1)
    assert json.loads(example)["width"] == 720


def test_results_of_random_weights_say_so(tiny_model_dir, tmp_path):
    from PIL import Image

    from aether.apps.jobs import AppRunner
    from aether.apps.model import load_model
    from aether.visualize import RANDOM_WEIGHTS_BADGE

    pipe = load_model(tiny_model_dir)
    pipe.progress = False
    assert pipe.random_weights
    world = pipe.reconstruct(np.zeros((17, HEIGHT, WIDTH, 3), np.uint8), num_inference_steps=1)
    assert world.meta["random_weights"] is True
    picture = np.asarray(Image.open(world.save(tmp_path / "w", formats=("png",))["depth_png"]).convert("RGB"))
    header = picture[:44].astype(int)
    red = (header[..., 0] > 150) & (header[..., 1] < 60) & (header[..., 2] < 60)
    assert red.sum() > 200  # the badge, in red above the panels
    result = AppRunner(pipe, workdir=tmp_path / "app").package(world, "reconstruction")
    assert result.summary.startswith(RANDOM_WEIGHTS_BADGE)
    assert "1st to 99th percentile, scene units" in result.summary


def test_loading_in_any_mode_leaves_the_model_folder_as_it_is(tiny_model_dir, tmp_path):
    """The paper benchmarks load models in the reference mode, whose empty-prompt embedding is made
    another way than the one a tiny model ships: it is cached outside the folder, never rewritten."""
    import shutil

    from aether.hub import cache_dir
    from aether.pipeline import AetherPipeline

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    before = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}
    AetherPipeline.from_pretrained(model, mode="upstream")
    AetherPipeline.from_pretrained(model)
    assert {p: p.read_bytes() for p in model.rglob("*") if p.is_file()} == before
    assert list(cache_dir("embeddings").glob("model-*/reference/empty_prompt_embedding.safetensors"))
