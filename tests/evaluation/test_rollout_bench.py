"""`aether bench rollout`: its baselines, revisit scores and table on a tiny random model."""

import numpy as np
import pytest

from aether.data.paths import out_and_back, out_and_back_frames, revisits
from aether.data.synthetic import render_clip
from aether.evaluation.rollout import markdown, memory_alone, run_rollout, score
from tests.pipeline.test_rollout import _pipe


def test_out_and_back_paths_return_to_their_poses():
    outward = render_clip(2, num_frames=5, height=16, width=24).c2w
    path = out_and_back(outward)
    assert len(path) == 9 == 2 * 5 - 1 and out_and_back_frames(9) == 5
    for later, earlier in revisits(5):
        np.testing.assert_array_equal(path[later], path[earlier])
    with pytest.raises(ValueError, match="odd"):
        out_and_back_frames(8)


def test_memory_alone_is_the_truth_where_the_first_view_sees_and_scores_are_closed_form():
    clip = render_clip(4, num_frames=5, height=32, width=48, trajectory="turn")
    render = memory_alone(clip)
    exact = np.abs(render[0] - clip.rgb[0] / 255).max(-1) < 1e-6
    assert exact.mean() > 0.9  # all but the nearer neighbour splats across depth edges
    truth = clip.rgb.astype(np.float32) / 255
    pred = truth.copy()
    pred[4] = np.clip(truth[4] + 0.1, 0, 1)
    pairs = np.array([[4, 0]])
    scores = score(pred, truth, pairs)
    expected = float(np.abs(pred[4] - pred[0]).mean())
    assert scores["revisit_l1"] == pytest.approx(expected)
    mse = float(((pred[4] - truth[4]) ** 2).mean())
    assert scores["revisit_psnr_truth"] == pytest.approx(-10 * np.log10(mse), rel=1e-5)


def test_the_benchmark_table_holds_every_method_and_horizon(tmp_path):
    pipe = _pipe(condition_modalities=["color", "raymap", "cache"])
    result = run_rollout(
        pipe, num_worlds=1, horizons=(1, 2), num_inference_steps=1, picture_dir=tmp_path, progress=False
    )
    assert {(r["method"], r["horizon"]) for r in result["rows"]} == {
        (m, h) for m in ("memory", "no_memory", "memory_alone", "copy_first") for h in (1, 2)
    }
    rows = {(r["method"], r["horizon"]): r for r in result["rows"]}
    assert (
        rows[("copy_first", 1)]["revisit_l1"] is None
    )  # a one-window path revisits nothing in another window
    assert rows[("copy_first", 2)]["revisit_l1"] == 0.0  # the copied frame is always the same
    assert rows[("memory", 2)]["drift_ate"] is not None and rows[("memory", 2)]["seconds_per_window"] > 0
    assert (tmp_path / "rollout_revisit.png").is_file()
    assert "| memory | 2x | 33 |" in markdown(result)


def test_a_last_frame_that_is_the_given_view_is_not_scored():
    truth = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)
    truth[3] = truth[0]  # the path came back to the start exactly
    copy = np.repeat(truth[:1], 4, 0)
    scores = score(copy, truth, np.zeros((0, 2), dtype=int))
    mse = float(np.mean([((truth[i] - truth[0]) ** 2).mean() for i in (1, 2)]))
    assert np.isfinite(scores["psnr"])
    frame_psnr = [-10 * np.log10(((truth[i] - truth[0]) ** 2).mean()) for i in (1, 2)]
    assert scores["psnr"] == pytest.approx(np.mean(frame_psnr), rel=1e-5) and mse > 0
