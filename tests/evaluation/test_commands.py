import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aether.cli import main as cli
from aether.evaluation import build_dataset, camera_pose_metrics

SYN = [
    "--dataset",
    "synthetic",
    "--num-sequences",
    "2",
    "--num-frames",
    "9",
    "--height",
    "48",
    "--width",
    "64",
]


@pytest.fixture(scope="module")
def synthetic_predictions(tmp_path_factory):
    """Predictions from the ground truth with known perturbations: depth ×3 (seq 0) or ×1.1 (seq 1)
    under metric alignment; poses Sim(3)-moved (seq 0) or noisy (seq 1); rgb exact or +10."""
    out = tmp_path_factory.mktemp("preds")
    seqs = build_dataset("synthetic", num_sequences=2, num_frames=9, height=48, width=64).sequences(
        "planning"
    )
    rng = np.random.default_rng(0)
    S = np.eye(4)
    S[:3, :3] = Rotation.from_rotvec([0.2, 0.5, -0.3]).as_matrix()
    S[:3, 3] = [1.0, -2.0, 0.5]
    truth = {}
    for i, seq in enumerate(seqs):
        c2w = S @ seq.c2w
        c2w[:, :3, 3] *= 2.0
        if i == 1:
            c2w[:, :3, 3] += rng.normal(0, 0.05, (len(seq), 3))
        rgb = seq.rgb() if i == 0 else np.clip(seq.rgb().astype(int) + 10, 0, 255).astype(np.uint8)
        depth = seq.depth() * (3.0 if i == 0 else 1.1)
        np.savez(out / f"{seq.name}.npz", depth=depth, c2w=c2w, rgb=rgb)
        truth[seq.name] = {"gt_c2w": seq.c2w, "c2w": c2w, "gt_rgb": seq.rgb(), "rgb": rgb}
    return out, truth


def _read(out, stem):
    result = json.loads((out / f"{stem}.json").read_text())
    table = (out / f"{stem}.md").read_text()
    return result, table


def test_video_depth_cli_on_synthetic(tmp_path, synthetic_predictions, capsys):
    preds, truth = synthetic_predictions
    args = ["bench", "video-depth", *SYN, "--predictions", str(preds), "--out", str(tmp_path)]
    assert cli([*args, "--align", "scale"]) == 0
    result, table = _read(tmp_path, "video-depth_synthetic")
    assert result["settings"]["align"] == "scale"
    seq0, seq1 = sorted(result["per_sequence"])
    assert result["per_sequence"][seq0]["abs_rel"] == pytest.approx(0, abs=1e-6)  # float32 depth
    assert result["per_sequence"][seq0]["scale"] == pytest.approx(1 / 3)
    assert "| **mean (ours)** |" in table and seq0 in table
    assert (tmp_path / "video-depth_synthetic_per_sequence.png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out
    assert cli([*args, "--align", "metric"]) == 0
    result, _ = _read(tmp_path, "video-depth_synthetic")
    assert result["per_sequence"][seq1]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert result["per_sequence"][seq1]["delta_1_25"] == 1.0
    n0, n1 = (result["per_sequence"][s]["valid"] for s in (seq0, seq1))
    assert result["mean"]["abs_rel"] == pytest.approx((2.0 * n0 + 0.1 * n1) / (n0 + n1), rel=1e-5)


def test_camera_pose_cli_on_synthetic(tmp_path, synthetic_predictions):
    preds, truth = synthetic_predictions
    assert cli(["bench", "camera-pose", *SYN, "--predictions", str(preds), "--out", str(tmp_path)]) == 0
    result, table = _read(tmp_path, "camera-pose_synthetic")
    seq0, seq1 = sorted(result["per_sequence"])
    for k in ("ate", "rpe_trans", "rpe_rot"):
        assert result["per_sequence"][seq0][k] == pytest.approx(0, abs=1e-5)
    direct = camera_pose_metrics(truth[seq1]["c2w"], truth[seq1]["gt_c2w"])
    assert direct["ate"] > 0.01
    for k, v in direct.items():
        assert result["per_sequence"][seq1][k] == pytest.approx(v, rel=1e-9)
        assert result["mean"][k] == pytest.approx(v / 2, abs=1e-5)
    assert result["settings"]["protocol"] == "paper" and result["settings"]["departures"] == {}
    assert result["settings"]["model_run"]["source"].startswith("saved predictions")
    assert "AETHER (paper)" not in table and "not reported" in table  # no synthetic numbers in the paper
    static = result["baselines"]["static camera"]
    assert static["ate"] > result["mean"]["ate"] and "| static camera (baseline) |" in table
    assert (tmp_path / "plots" / f"trajectory_synthetic_{seq1}.png").is_file()


def test_planning_cli_on_synthetic(tmp_path, synthetic_predictions):
    preds, truth = synthetic_predictions
    assert (
        cli(["bench", "planning", *SYN, "--predictions", str(preds), "--out", str(tmp_path), "--no-plots"])
        == 0
    )
    result, table = _read(tmp_path, "planning_synthetic")
    seq0, seq1 = sorted(result["per_sequence"])
    assert math.isinf(result["per_sequence"][seq0]["psnr"])
    assert result["per_sequence"][seq0]["ssim"] == pytest.approx(1.0, abs=1e-6)
    diff = (truth[seq1]["rgb"].astype(float) - truth[seq1]["gt_rgb"]) / 255
    psnr = np.mean(-10 * np.log10((diff**2).reshape(len(diff), -1).mean(1)))
    assert result["per_sequence"][seq1]["psnr"] == pytest.approx(psnr, rel=1e-5)
    assert not (tmp_path / "planning_synthetic_per_sequence.png").exists()
    assert "| inf |" in table
    if result["mean"]["lpips"] is None:  # no backbone weights here: the table says where they were looked for
        from aether.evaluation.pixel_metrics import lpips_backbone_path

        assert f"lpips: no LPIPS backbone weights at {lpips_backbone_path()}" in table


def test_prediction_cli_reports_missing_vbench_weights(tmp_path, synthetic_predictions, monkeypatch):
    preds, _ = synthetic_predictions
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "empty"))
    assert cli(["bench", "prediction", *SYN, "--predictions", str(preds), "--out", str(tmp_path)]) == 0
    result, table = _read(tmp_path, "prediction_synthetic")
    assert result["mean"]["total"] is None
    assert len(result["settings"]["missing"]) == 6
    assert "missing" in table
    reasons = result["settings"]["missing_reasons"]
    assert sorted(reasons) == sorted(result["settings"]["missing"])
    assert all(str(tmp_path / "empty") in why for why in reasons.values())
    assert "Missing: " in table and f"under {tmp_path / 'empty'}" in table
    args = ["bench", "planning", *SYN, "--predictions", str(preds), "--out", str(tmp_path), "--vbench"]
    assert cli(args) == 0
    result, _ = _read(tmp_path, "planning_synthetic")
    assert result["mean"]["subject_consistency"] is None and result["mean"]["ssim"] > 0.5


def test_sintel_format_through_the_cli_shows_paper_numbers(tmp_path, formats):
    root = tmp_path / "sintel" / "training"
    gt = formats.random_trajectory(6)
    K = np.array([[100.0, 0, 3], [0, 100, 2], [0, 0, 1]])
    for i in range(6):
        formats.write_rgb(
            root / "final" / "alley_2" / f"frame_{i + 1:04d}.png", np.zeros((4, 6, 3), np.uint8)
        )
        formats.write_cam(
            root / "camdata_left" / "alley_2" / f"frame_{i + 1:04d}.cam", K, np.linalg.inv(gt[i])
        )
        formats.write_dpt(root / "depth" / "alley_2" / f"frame_{i + 1:04d}.dpt", np.full((4, 6), 2.0 + i))
    preds = tmp_path / "preds"
    preds.mkdir()
    depth = np.stack([np.full((2, 3), 2.0 + i) for i in range(6)]) / 5  # half resolution, scaled
    np.savez(preds / "alley_2.npz", c2w=gt, depth=depth)
    common = ["--dataset", "sintel", "--root", str(tmp_path / "sintel"), "--sequences", "alley_2"]
    assert (
        cli(["bench", "camera-pose", *common, "--predictions", str(preds), "--out", str(tmp_path / "o")]) == 0
    )
    result, table = _read(tmp_path / "o", "camera-pose_sintel")
    assert result["paper"] == {"AETHER (paper)": {"ate": 0.189, "rpe_trans": 0.054, "rpe_rot": 0.694}}
    assert "| AETHER (paper) | 0.1890 | 0.0540 | 0.6940 |" in table
    assert result["settings"]["departures"] == {"sequences": ["alley_2"]}
    assert (
        cli(["bench", "video-depth", *common, "--predictions", str(preds), "--out", str(tmp_path / "o")]) == 0
    )
    result, table = _read(tmp_path / "o", "video-depth_sintel")
    assert result["mean"]["abs_rel"] == pytest.approx(0, abs=1e-9)
    assert result["settings"]["max_depth"] == 70 and result["settings"]["post_clip_max"] == 70
    assert "| AETHER (paper) | 0.3240 | – | – | – | 0.5020 |" in table  # Table 1, per-sequence scale
    assert (tmp_path / "o" / "pictures" / "depth_sintel_alley_2.png").is_file()
    args = ["bench", "video-depth", *common, "--predictions", str(preds), "--out", str(tmp_path / "e")]
    assert cli([*args, "--align", "scale&shift-exact", "--mask-edge"]) == 0
    result, table = _read(tmp_path / "e", "video-depth_sintel")
    assert result["settings"]["departures"]["align"] == "scale&shift-exact"
    assert result["settings"]["departures"]["mask_edge"] is True and result["paper"] == {}


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["bench", "video-depth", *SYN, "--predictions", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no predictions for sequence 'seed1000000'" in err
    assert (
        cli(
            [
                "bench",
                "camera-pose",
                "--dataset",
                "tum",
                "--root",
                str(tmp_path / "x"),
                "--predictions",
                "p",
                "--out",
                "o",
            ]
        )
        == 2
    )
    assert "x: missing; expected the tum dataset directory" in capsys.readouterr().err
    args = ["bench", "video-depth", *SYN, "--predictions", str(tmp_path), "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        cli([*args, "--align", "median"])
    assert "scale&shift-exact" in capsys.readouterr().err  # the valid alignments are listed
    with pytest.raises(SystemExit):
        cli([*args, "--protocol", "cut3r"])
    assert "'paper', 'library'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(
            ["bench", "video-depth", "--dataset", "synthetic", "--out", str(tmp_path)]
        )  # no prediction source
