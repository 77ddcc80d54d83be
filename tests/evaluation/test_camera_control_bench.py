"""``aether bench camera-control`` end to end: the RealEstate10K reader on a fixture in the dataset's
own format, the bench on it with a tiny model, and the ground-truth sanity check on synthetic clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aether.cli import main as cli
from aether.evaluation import build_dataset
from aether.evaluation.datasets import read_realestate10k_cameras


def write_realestate10k(root: Path, name: str, clip, stamps: list[int], frame_names: list[str]) -> Path:
    """A RealEstate10K clip: ``<name>.txt`` (URL line, then per frame ``timestamp fx fy cx cy 0 0``
    and the row-major 3x4 world-to-camera matrix, intrinsics normalised by width and height) and the
    frames as PNGs in ``<name>/``."""
    from tests.evaluation.conftest import write_rgb

    T, H, W = clip.rgb.shape[:3]
    lines = [f"https://www.youtube.com/watch?v={name}"]
    for t, K, c2w in zip(stamps, clip.K, clip.c2w):
        w2c = np.linalg.inv(c2w)[:3].ravel()
        values = [K[0, 0] / W, K[1, 1] / H, K[0, 2] / W, K[1, 2] / H, 0.0, 0.0, *w2c]
        lines.append(" ".join([str(t), *(f"{v:.12f}" for v in values)]))
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.txt").write_text("\n".join(lines) + "\n")
    for rgb, frame in zip(clip.rgb, frame_names):
        write_rgb(root / name / f"{frame}.png", rgb)
    return root / f"{name}.txt"


@pytest.fixture(scope="module")
def clip():
    from aether.data.synthetic import render_clip

    return render_clip(1_000_000, num_frames=17, height=32, width=48, trajectory="forward")


@pytest.fixture(scope="module")
def realestate(tmp_path_factory, clip):
    root = tmp_path_factory.mktemp("re10k")
    stamps = [45_979_267 + 33_367 * i for i in range(17)]
    write_realestate10k(root, "0a1b2c", clip, stamps, [f"{i:03d}" for i in range(17)])
    return root


def test_reader_returns_the_cameras_written(realestate, clip):
    stamps, intrinsics, c2w = read_realestate10k_cameras(realestate / "0a1b2c.txt")
    assert stamps[1] - stamps[0] == 33_367 and intrinsics.shape == (17, 4)
    np.testing.assert_allclose(c2w, clip.c2w, atol=1e-9)
    (seq,) = build_dataset("realestate10k", realestate).sequences("camera-control")
    np.testing.assert_allclose(seq.K, clip.K, atol=1e-9)  # pixels of the 48x32 frames
    np.testing.assert_allclose(seq.c2w, clip.c2w, atol=1e-9)
    np.testing.assert_array_equal(seq.rgb(), clip.rgb)


def test_frames_named_by_timestamp_take_their_lines(tmp_path, clip):
    stamps = [1000 * i for i in range(17)]  # names of several lengths: "0" < "12000" < "4000" as text
    write_realestate10k(tmp_path, "clip", clip, stamps, [str(t) for t in stamps])
    for extra in sorted((tmp_path / "clip").glob("*.png")):
        if int(extra.stem) % 4000:
            extra.unlink()
    (seq,) = build_dataset("realestate10k", tmp_path).sequences("camera-control")
    np.testing.assert_allclose(seq.c2w, clip.c2w[::4], atol=1e-9)
    np.testing.assert_array_equal(seq.rgb(), clip.rgb[::4])


def test_malformed_files_are_named_with_the_line(tmp_path, clip):
    path = write_realestate10k(tmp_path, "bad", clip, list(range(17)), [f"{i:03d}" for i in range(17)])
    lines = path.read_text().splitlines()
    lines[3] = " ".join(lines[3].split()[:-1])  # 18 numbers
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad.txt: line 4: expected 19 finite numbers .* found 18 fields"):
        read_realestate10k_cameras(path)
    lines[3] = lines[4].replace("0.000000000000", "zero", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 4: expected 19 finite numbers"):
        read_realestate10k_cameras(path)
    path.write_text("https://example.com\n")
    with pytest.raises(ValueError, match="found no camera lines"):
        read_realestate10k_cameras(path)
    stamps = [10_000 + i for i in range(17)]  # frame names that are not the timestamps: line by line
    write_realestate10k(tmp_path / "few", "clip", clip, stamps, [f"{i:03d}" for i in range(15)])
    with pytest.raises(ValueError, match="expected one camera line per frame .* 17 lines for 15 frames"):
        build_dataset("realestate10k", tmp_path / "few").sequences("camera-control")


def test_ground_truth_sanity_check_on_synthetic_clips(tmp_path, capsys):
    args = ["--dataset", "synthetic", "--num-sequences", "1", "--height", "64", "--width", "96"]
    assert cli(["bench", "camera-control", *args, "--ground-truth", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "camera-control_synthetic.json").read_text())
    truth = result["per_sequence"]["seed1000000"]
    static = result["baselines"]["static video (first frame copied)"]
    opposite = result["baselines"]["ground-truth video, opposite request"]
    assert truth["trans_err"] < 0.25 * min(static["trans_err"], opposite["trans_err"])
    assert truth["rot_err"] < 0.5 * opposite["rot_err"]
    assert result["settings"]["depth"] == ["true"] and result["settings"]["video"] == "ground truth"
    out = capsys.readouterr().out
    assert "| seed1000000 |" in out and "rot_err ↓" in out
    assert (tmp_path / "pictures" / "camera_control_synthetic_seed1000000.png").is_file()


def test_bench_runs_a_tiny_model_on_realestate10k(tmp_path, realestate, capsys):
    from aether.apps.model import save_tiny_model

    model = save_tiny_model(tmp_path / "model", height=32, width=48)
    args = ["--dataset", "realestate10k", "--root", str(realestate), "--model", str(model), "--steps", "2"]
    assert cli(["bench", "camera-control", *args, "--out", str(tmp_path / "o")]) == 0
    result = json.loads((tmp_path / "o" / "camera-control_realestate10k.json").read_text())
    assert set(result["per_sequence"]) == {"0a1b2c"}
    assert result["settings"]["depth"] == ["model"]  # no depth in RealEstate10K: the model's
    assert set(result["baselines"]) == {
        "ground-truth video",
        "static video (first frame copied)",
        "ground-truth video, opposite request",
        "prediction without trajectory",
    }
    assert result["paper"]["CamI2V (its paper)"]["rot_err"] == pytest.approx(0.412)
    assert "CamI2V (its paper)" in capsys.readouterr().out
    assert (tmp_path / "o" / "pictures" / "camera_control_realestate10k_0a1b2c.png").is_file()
    assert (
        cli(
            [
                "bench",
                "camera-control",
                *args,
                "--recovery",
                "model",
                "--no-plots",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "m" / "camera-control_realestate10k.json").read_text())
    assert np.isfinite(result["mean"]["rot_err"]) and result["settings"]["recovery"] == "model"


def test_cli_mistakes_are_one_line(tmp_path, realestate, capsys):
    syn = ["--dataset", "synthetic", "--num-sequences", "1", "--out", str(tmp_path)]
    assert cli(["bench", "video-depth", *syn, "--ground-truth"]) == 2
    assert "expected --ground-truth only with camera-control" in capsys.readouterr().err
    assert cli(["bench", "camera-control", *syn, "--predictions", str(tmp_path)]) == 2
    assert "camera-control with --model or --ground-truth" in capsys.readouterr().err
    assert cli(["bench", "camera-control", *syn, "--ground-truth", "--recovery", "model"]) == 2
    assert "--recovery model: expected --model" in capsys.readouterr().err
    re10k = ["--dataset", "realestate10k", "--root", str(realestate), "--out", str(tmp_path)]
    assert cli(["bench", "camera-control", *re10k, "--ground-truth"]) == 2
    assert "needs depth; expected the clip's depth or a model for it (--model)" in capsys.readouterr().err
    assert cli(["bench", "camera-pose", *re10k, "--ground-truth"]) == 2
