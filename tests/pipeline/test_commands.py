"""`aether reconstruct | predict | plan` on the tiny saved model."""

import numpy as np
import pytest
from PIL import Image

from aether.cli import main
from aether.pipeline.io import write_video


@pytest.fixture(scope="module")
def files(tmp_path_factory, random_video):
    root = tmp_path_factory.mktemp("cli_inputs")
    write_video(root / "clip.mp4", random_video(18, seed=1), fps=12)
    write_video(root / "short.mp4", random_video(5, seed=1), fps=12)
    frames = random_video(2, seed=3)
    Image.fromarray(frames[0]).save(root / "obs.png")
    Image.fromarray(frames[1]).save(root / "goal.jpg")
    (root / "broken.png").write_bytes(b"not an image")
    c2w = np.tile(np.eye(4), (17, 1, 1))
    c2w[:, 2, 3] = np.linspace(0, 1, 17)
    rows = np.concatenate([np.arange(17)[:, None], c2w[:, :3, 3], np.tile([0, 0, 0, 1.0], (17, 1))], 1)
    np.savetxt(root / "traj.txt", rows)
    return root


def _model_args(tiny_dirs, out):
    base, aether = tiny_dirs
    return [
        "--model",
        str(aether),
        "--base",
        str(base),
        "--out",
        str(out),
        "--quiet",
        "--formats",
        "npz,ply,json",
    ]


def test_each_command_writes_its_outputs(tiny_dirs, files, tmp_path, capsys):
    assert (
        main(
            [
                "reconstruct",
                str(files / "clip.mp4"),
                "--smooth",
                "kalman",
                "--ensemble",
                "2",
                *_model_args(tiny_dirs, tmp_path / "r"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "predict",
                str(files / "obs.png"),
                "--frames",
                "17",
                "--steps",
                "1",
                *_model_args(tiny_dirs, tmp_path / "p"),
            ]
        )
        == 0
    )
    args = ["plan", str(files / "obs.png"), str(files / "goal.jpg"), "--trajectory", str(files / "traj.txt")]
    args += ["--intrinsics", "40", "40", "24", "16", "--steps", "1", "--seed", "2"]
    assert main([*args, *_model_args(tiny_dirs, tmp_path / "q")]) == 0
    for name in ("r", "p", "q"):
        assert {p.name for p in (tmp_path / name).iterdir()} == {"world.npz", "points.ply", "trajectory.json"}
    assert "npz:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["reconstruct", "short.mp4"], "need at least 17"),
        (["reconstruct", "missing.mp4"], "no such file"),
        (["predict", "broken.png"], "cannot read"),
        (
            [
                "predict",
                "obs.png",
                "--trajectory",
                "traj.txt",
                "--intrinsics",
                "40",
                "40",
                "24",
                "16",
                "--frames",
                "25",
            ],
            "17 poses",
        ),
        (["plan", "obs.png", "goal.jpg", "--trajectory", "traj.txt"], "needs intrinsics"),
    ],
)
def test_bad_inputs_give_one_line_errors(files, tiny_dirs, tmp_path, capsys, argv, message):
    argv = [
        argv[0],
        *[str(files / a) if a.endswith((".mp4", ".png", ".jpg", ".txt")) else a for a in argv[1:]],
    ]
    assert main([*argv, *_model_args(tiny_dirs, tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith(f"aether {argv[0]}: error:")


def test_predict_along_an_upstream_style_raymap(tiny_dirs, files, tmp_path):
    import torch

    from aether.geometry import cameras_to_raymap

    c2w = torch.eye(4).repeat(17, 1, 1)
    c2w[:, 0, 3] = torch.linspace(0, 0.5, 17)
    K = torch.tensor([[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]]).repeat(17, 1, 1)
    np.save(tmp_path / "raymap.npy", cameras_to_raymap(c2w, K, 32, 48).numpy())
    args = ["predict", str(files / "obs.png"), "--trajectory", str(tmp_path / "raymap.npy"), "--steps", "1"]
    assert main([*args, *_model_args(tiny_dirs, tmp_path / "out")]) == 0
    from aether.pipeline import World4D

    world = World4D.load(tmp_path / "out")
    assert world.num_frames == 17 and world.meta["action"]


def test_output_size_input_writes_results_at_the_video_resolution(tiny_dirs, random_video, tmp_path):
    from aether.pipeline import World4D

    write_video(tmp_path / "big.mp4", random_video(17, height=64, width=96, seed=4), fps=12)
    argv = ["reconstruct", str(tmp_path / "big.mp4"), "--steps", "1", "--output-size", "input"]
    assert main([*argv, *_model_args(tiny_dirs, tmp_path / "out")]) == 0
    world = World4D.load(tmp_path / "out")
    assert world.depth.shape == (17, 64, 96) and world.rgb.shape == (17, 64, 96, 3)


def test_predict_along_a_path_longer_than_a_window_rolls_out_with_a_bounded_memory(
    tiny_dirs, files, tmp_path
):
    from aether.pipeline import World4D

    poses = np.tile([0, 0, 0, 0, 0, 0, 1.0], (49, 1))
    poses[:, 2] = np.linspace(0, 2, 49)  # a forward walk, TUM rows: t x y z qx qy qz qw
    np.savetxt(tmp_path / "long.txt", np.concatenate([np.arange(49)[:, None], poses], 1))
    args = ["predict", str(files / "obs.png"), "--trajectory", str(tmp_path / "long.txt"), "--steps", "1"]
    args += ["--intrinsics", "40", "40", "24", "16"]
    assert main([*args, "--memory-frames", "2", *_model_args(tiny_dirs, tmp_path / "out")]) == 0
    world = World4D.load(tmp_path / "out")
    assert world.num_frames == 49 and world.meta["windows"] == [0, 8] and world.meta["memory"]
