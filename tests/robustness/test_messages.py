"""One user-error path: each message names the file given, and the input's own range and shape."""

import argparse
import json

import numpy as np
import pytest
import torch

from aether.cli import main as cli
from aether.pipeline.pipeline import load_trajectory, to_frames

H, W = 32, 48


def _write(tmp_path, name):
    path = tmp_path / name
    if name == "obs.png":
        from PIL import Image

        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    elif name == "bad.json":
        path.write_text('{"c2w": [1, 2')
    elif name == "obj.npy":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif name == "small.npy":
        np.save(path, np.zeros((17, 5, 4, 6)))
    elif name == "zero.txt":
        path.write_text("".join(f"{i} 0 0 0 0 0 0 {1 if i != 3 else 0}\n" for i in range(17)))
    return path


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "obs.png",
            r"obs\.png: not a trajectory file: expected \.json, a raymap \.npy or text .*got a \.png",
        ),
        ("bad.json", r"bad\.json: not a JSON trajectory \(Expecting ',' delimiter"),
        ("obj.npy", r"obj\.npy: not a readable \.npy array of numbers \(Object arrays"),
        ("small.npy", r"small\.npy: expected a raymap \(T, 6, h, w\), got shape \(17, 5, 4, 6\)"),
        (
            "zero.txt",
            r"zero\.txt: line\(s\) 4 of the 17 poses: expected .* quaternion \(qx qy qz qw\) of non-zero",
        ),
    ],
)
def test_a_bad_trajectory_file_is_named_with_what_is_wrong(tmp_path, name, message):
    path = _write(tmp_path, name)
    with pytest.raises(ValueError, match=f"{tmp_path}/{message}"):
        load_trajectory(path, height=H, width=W, K=(40.0, 40.0, 24.0, 16.0))


@pytest.mark.parametrize(
    "video, message",
    [
        (np.full((17, H, W, 3), 300.0),
         r"video \(T, H, W, 3\): expected float values"
         r" in \[0, 1\], got range \[300, 300\] \(shape \(17, 32, 48"),
        (torch.full((17, 3, H, W), 2.5),
         r"video \(T, 3, H, W\): expected float values in \[-1, 1\], got range \[2\.5, 2\.5\]"),
        (np.full((17, H, W, 3), np.nan), r"got NaN or inf values"),
        (np.zeros((17, 4, H, W)), r"expected \(T, H, W, 3\) .* or \(T, 3, H, W\) .*got \(17, 4, 32, 48\)"),
    ],
    ids=["float HWC above 1", "CHW above 1", "nan", "4 channels"],
)  # fmt: skip
def test_a_video_out_of_range_reports_its_own_range_and_shape(video, message):
    with pytest.raises(ValueError, match=message):
        to_frames(video)


def test_a_channel_first_numpy_video_is_read_like_a_tensor():
    video = np.linspace(-1, 1, 17 * 3 * H * W, dtype=np.float32).reshape(17, 3, H, W)
    assert torch.equal(to_frames(video), torch.from_numpy(video))


@pytest.mark.parametrize("option", ["--depth-scale", "--fps"])
@pytest.mark.parametrize("value", ["0", "nan", "-1"])
def test_annotate_numbers_are_checked_when_parsed(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit):  # argparse's exit 2, before any input is read
        cli(["annotate", str(tmp_path), "--out", str(tmp_path / "o"), option, value])
    assert f"argument {option}: expected a finite number > 0, got '{value}'" in capsys.readouterr().err


def test_generation_fps_is_checked_when_parsed(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(["predict", str(tmp_path / "obs.png"), "--model", str(tmp_path), "--fps", "nan"])
    assert "argument --fps: expected a finite number > 0, got 'nan'" in capsys.readouterr().err


def test_a_missing_base_folder_is_named_as_a_folder(tmp_path, capsys):
    image = _write(tmp_path, "obs.png")
    missing = tmp_path / "nothere"
    assert cli(["predict", str(image), "--model", str(tmp_path), "--base", str(missing)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    expected = f"--base: the local folder {missing} does not exist (a hub id is OWNER/NAME)"
    assert line == f"aether predict: error: {expected}"


def _world(tmp_path):
    from aether.pipeline import World4D

    depth = np.ones((3, 8, 8), np.float32)
    K = np.tile(np.array([[10.0, 0, 4], [0, 10, 4], [0, 0, 1]]), (3, 1, 1))
    world = World4D(rgb=np.zeros((3, 8, 8, 3), np.uint8), depth=depth, disparity=depth, valid=depth > 0,
                    c2w=np.tile(np.eye(4), (3, 1, 1)), K=K)  # fmt: skip
    world._save_npz(tmp_path / "world.npz")
    return tmp_path


def test_view_without_a_viewer_or_to_an_unwritable_file_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("rerun")
    folder = _world(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert cli(["view", str(folder)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("aether view: error: no rerun viewer: the `rerun` executable is not on PATH")
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "out.rrd"  # a folder that cannot be made: a file is in the way
    assert cli(["view", str(folder), "--save", str(target)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"aether view: error: --save {target}: cannot write there")


def test_the_positive_float_type_is_the_one_used():
    from aether.argtypes import positive_float

    with pytest.raises(argparse.ArgumentTypeError):
        positive_float("inf")
    assert json.loads("1.5") == positive_float("1.5")
