"""`aether run recipes/tiny.yaml` at smoke size: data, fit, evaluation, report with pictures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from aether.training.commands import main
from aether.training.validation import static_camera_metrics

RECIPE = str(Path(__file__).parents[2] / "recipes" / "tiny.yaml")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
def test_tiny_recipe_smoke_run_writes_a_report(tmp_path) -> None:
    data = tmp_path / "data"
    clip = "frames: 17, fps: 24, height: 64, width: 96, progress: false"
    overrides = [
        f"run.output_dir={tmp_path}",
        f"run.prepare.synth=[{{out: {data}/train, clips: 3, seed: 0, prefix: train, {clip}}}, "
        f"{{out: {data}/val, clips: 1, seed: 77, prefix: val, {clip}}}]",
        f"data.train_urls={data}/train",
        f"data.val_urls={data}/val",
        "data.batch_size=2",
        "data.num_workers=0",
        "trainer.max_steps=4",
        "trainer.log_every_n_steps=1",
        "model.stage2_start_step=2",
        "run.evaluate.clips=1",
        "run.evaluate.steps={reconstruction: 2, prediction: 2, planning: 2}",
        "run.evaluate.ensemble=2",
        "run.evaluate.following={seeds: [2000001], trajectories: [turn], steps: 1}",
        "run.checkpoint_every=2",
    ]
    args = ["run", RECIPE, "--name", "smoke"]
    for item in overrides:
        args += ["--set", item]
    assert main(args, prog="aether run") == 0
    out = tmp_path / "smoke"
    report = (out / "report.md").read_text()
    assert "Learning margins" in report and "per-frame mean depth" in report and "static camera" in report
    for check in ("rpe_rot vs static camera", "prediction psnr vs copy the first frame", "planning ssim"):
        assert f"| {check}" in report or f"| reconstruction {check}" in report, check
    assert "the decoded cameras smoothed first (kalman)" in report  # the recipe's run.evaluate.smooth
    for line in report.splitlines():
        if line.startswith("!["):
            assert (out / line.split("(")[1].rstrip(")")).is_file(), line
    metrics = json.loads((out / "metrics.json").read_text())
    for task in ("prediction", "planning"):  # run.evaluate.ablate_camera: with and without the camera
        scored = set(metrics["tasks"][task]["metrics"])
        assert {"psnr", "ssim", "psnr_mirrored", "psnr_without_camera", "ssim_without_camera"} <= scored, task
        assert {"rot_err", "trans_err", "rot_err_without_camera"} <= scored, task  # evaluate.camera_control
        assert {"psnr_blurred", "ssim_blurred"} <= set(metrics["tasks"][task]["baseline"]), task
        # the recipe's memory condition: the first frame lifted with the model's own depth, and ablations
        assert {"psnr_without_memory", "ssim_without_memory"} <= scored, task
        assert {"psnr_render", "ssim_render"} <= set(metrics["tasks"][task]["baseline"]), task
    assert metrics["training"]["steps"] == 4 and set(metrics["tasks"]) == {
        "reconstruction",
        "prediction",
        "planning",
    }
    assert (out / "model" / "transformer" / "config.json").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "loss.png").is_file()
    assert metrics["settings"]["ensemble"] == 2 and "averages 2 sample(s)" in report
    # the finished run is not resumed under other model settings
    from aether.training.runner import run_recipe

    with pytest.raises(ValueError, match=r"model\.action_keep differ"):
        run_recipe(RECIPE, [*overrides, "model.action_keep=0.25"], name="smoke")
    # run again: the checkpoint at max_steps is evaluated without training, and the report says so
    assert main([*args, "--set", "run.evaluate.following=null"], prog="aether run") == 0
    header = (out / "report.md").read_text().splitlines()[2]
    assert "the checkpoint of step 4, trained by an earlier run (evaluated only)" in header


def test_static_camera_baseline_closed_form() -> None:
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.0, 1.0, 2.0])
    scores = static_camera_metrics(c2w)
    assert scores["ate"] == pytest.approx((2 / 3) ** 0.5)
    assert scores["rpe_trans"] == pytest.approx(1.0) and scores["rpe_rot"] == pytest.approx(0.0, abs=1e-6)


def test_margin_checks_compare_each_metric_the_right_way() -> None:
    from aether.training.runner import margin_checks

    summary = {
        "reconstruction": {
            "metrics": {"abs_rel": 0.5, "ate": 0.3, "rpe_trans": 0.05, "rpe_rot": 1.0, "delta_1_25": 0.9},
            "baseline": {"abs_rel": 1.0, "ate": 0.5, "rpe_trans": 0.1, "rpe_rot": 1.0, "delta_1_25": 0.4},
        },
        "prediction": {
            "metrics": {
                "psnr": 24.0, "ssim": 0.4, "psnr_mirrored": 23.2, "psnr_without_camera": 22.0,
                "rot_err": 1.0, "rot_err_without_camera": 2.0,
                "trans_err": 3.0, "trans_err_without_camera": 4.0,
            },
            "baseline": {"psnr": 23.0, "ssim": 0.5, "psnr_blurred": 24.5, "ssim_blurred": 0.3},
        },
    }  # fmt: skip
    checks = {(c["task"], c["metric"], c["reference"]): c for c in margin_checks(summary)}
    passed = {k: c["passed"] for k, c in checks.items()}
    assert passed == {  # no planning in the summary, and δ<1.25 is not a margin
        ("reconstruction", "abs_rel", "per-frame mean depth"): True,  # exactly half: ≤ ½ holds
        ("reconstruction", "ate", "static camera"): False,  # 0.6 of the baseline
        ("reconstruction", "rpe_trans", "static camera"): True,
        ("reconstruction", "rpe_rot", "static camera"): False,  # equal to the static camera is not below it
        ("prediction", "psnr", "copy the first frame"): True,
        ("prediction", "ssim", "copy the first frame"): False,
        ("prediction", "psnr", "blurred copy (best σ)"): False,
        ("prediction", "ssim", "blurred copy (best σ)"): True,
        ("prediction", "psnr", "mirrored trajectory"): False,  # 0.8 dB: the gap must reach 1 dB
        ("prediction", "psnr", "no trajectory"): True,  # 2 dB
        ("prediction", "rot_err", "no trajectory"): True,  # exactly half
        ("prediction", "trans_err", "no trajectory"): False,
    }
    assert checks[("prediction", "psnr", "copy the first frame")]["ratio"] == pytest.approx(24 / 23)
    assert checks[("prediction", "psnr", "mirrored trajectory")]["ratio"] == pytest.approx(0.8)


def test_margin_checks_skip_undefined_scores() -> None:
    from aether.training.runner import margin_checks

    summary = {  # every clip's true camera static: ATE and RPE translation are NaN, baselines 0
        "reconstruction": {
            "metrics": {"ate": math.nan, "rpe_trans": math.nan, "rpe_rot": 0.5},
            "baseline": {"ate": 0.0, "rpe_trans": 0.0, "rpe_rot": 1.0},
        }
    }
    assert [(c["metric"], c["passed"]) for c in margin_checks(summary)] == [("rpe_rot", True)]
