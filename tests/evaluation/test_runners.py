import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from aether.evaluation import (
    CogVideoXBaseline,
    SavedPredictions,
    build_dataset,
    run_camera_pose,
    run_video_depth,
)
from aether.evaluation.runners import COGVIDEOX_NEGATIVE_PROMPT, read_prompts, split_for_rank, to_uint8_video

SYN = {"num_sequences": 3, "num_frames": 5, "height": 16, "width": 24}


def _save_predictions(directory: Path) -> None:
    rng = np.random.default_rng(0)
    for seq in build_dataset("synthetic", **SYN).sequences("video-depth"):
        depth = seq.depth() * rng.uniform(0.8, 1.2, seq.depth().shape)
        c2w = seq.c2w.copy()
        c2w[:, :3, 3] += rng.normal(0, 0.02, (len(seq), 3))
        np.savez(directory / f"{seq.name}.npz", depth=depth, c2w=c2w)


def _worker(rank: int, world: int, port: int, preds: str, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        dataset = build_dataset("synthetic", **SYN)
        mine = [s.name for s in split_for_rank(dataset.sequences("video-depth"))]
        depth = run_video_depth(dataset, SavedPredictions(preds), progress=False)
        pose = run_camera_pose(dataset, SavedPredictions(preds), progress=False)
        Path(out, f"{rank}.json").write_text(json.dumps({"mine": mine, "depth": depth, "pose": pose}))
    finally:
        dist.destroy_process_group()


def test_ranks_split_sequences_and_gather_one_result(tmp_path):
    _save_predictions(tmp_path)
    dataset = build_dataset("synthetic", **SYN)
    single = {
        "depth": run_video_depth(dataset, SavedPredictions(tmp_path), progress=False),
        "pose": run_camera_pose(dataset, SavedPredictions(tmp_path), progress=False),
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker_args = (2, port, str(tmp_path), str(tmp_path))
    torch.multiprocessing.start_processes(_worker, args=worker_args, nprocs=2, join=True, start_method="fork")
    results = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    assert results[0]["mine"] == ["seed1000000", "seed1000002"] and results[1]["mine"] == ["seed1000001"]
    single = json.loads(json.dumps(single))  # tuples -> lists as in the workers' JSON
    for r in results:
        for key in ("depth", "pose"):
            assert r[key]["per_sequence"] == single[key]["per_sequence"]
            for k, v in single[key]["mean"].items():
                assert r[key]["mean"][k] == pytest.approx(v, rel=1e-12)


def test_prompts_file_formats(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"a": "a walk", "b": "a drive"}))
    (tmp_path / "p.txt").write_text("a\ta walk\n\nb\ta drive\n")
    assert (
        read_prompts(tmp_path / "p.json")
        == read_prompts(tmp_path / "p.txt")
        == {"a": "a walk", "b": "a drive"}
    )
    (tmp_path / "bad.txt").write_text("a walk\n")
    with pytest.raises(ValueError, match="bad.txt: line 1: expected 'clip<TAB>prompt'"):
        read_prompts(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="none.json: missing"):
        read_prompts(tmp_path / "none.json")


class RecordingI2V:
    """Stands in for diffusers' CogVideoXImageToVideoPipeline: records the call and returns the
    conditioning image as a still video (float frames in [0,1], as with output_type='np')."""

    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        still = np.asarray(kwargs["image"], dtype=np.float32) / 255
        frames = np.repeat(still[None], kwargs["num_frames"], axis=0)
        return type("Output", (), {"frames": [frames]})()


def test_cogvideox_baseline_uses_the_papers_settings():
    seq = build_dataset("synthetic", num_sequences=1, num_frames=5, height=16, width=24).sequences(
        "prediction"
    )[0]
    recorder = RecordingI2V()
    baseline = CogVideoXBaseline(None, {seq.name: "a corridor"}, pipeline=recorder, num_inference_steps=3)
    video = baseline.predict(seq)
    (call,) = recorder.calls
    assert call["prompt"] == "a corridor" and call["negative_prompt"] == COGVIDEOX_NEGATIVE_PROMPT
    assert call["guidance_scale"] == 6.0 and call["num_frames"] == 5 and call["num_inference_steps"] == 3
    assert (call["height"], call["width"]) == (16, 24)
    assert video.shape == (5, 16, 24, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(video[3], seq.rgb()[0])
    with pytest.raises(ValueError, match="expected a prompt for clip"):
        CogVideoXBaseline(None, {}, pipeline=recorder).predict(seq)


def test_to_uint8_video_conventions():
    x = torch.linspace(-1, 1, 2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    v = to_uint8_video(x)
    assert v.shape == (2, 2, 2, 3) and v.min() == 0 and v.max() == 255
    assert to_uint8_video(np.full((1, 2, 2, 3), 0.5)).max() == 128
    with pytest.raises(ValueError, match=r"\(T,H,W,3\)"):
        to_uint8_video(np.zeros((2, 2, 2)))


@pytest.mark.slow
def test_benchmarks_through_the_tiny_pipeline(tmp_path):
    from aether.cli import main as cli
    from aether.models.testing import save_tiny_aether, save_tiny_base

    base = save_tiny_base(tmp_path / "base", height=32, width=48)
    model = save_tiny_aether(tmp_path / "aether", height=32, width=48, seed=1)
    args = ["--dataset", "synthetic", "--num-sequences", "1", "--num-frames", "17", "--height", "32"]
    args += ["--width", "48", "--model", str(model), "--base", str(base), "--out", str(tmp_path / "o")]
    assert cli(["bench", "video-depth", *args]) == 0
    result = json.loads((tmp_path / "o" / "video-depth_synthetic.json").read_text())
    assert 0 <= result["mean"]["delta_1_25"] <= 1 and np.isfinite(result["mean"]["abs_rel"])
    run = result["settings"]["model_run"]
    assert result["settings"]["protocol"] == "paper" and result["settings"]["departures"] == {}
    assert (run["policy"], run["seed"], run["stride"]) == ("upstream", 3407, 8)
    assert "frame-mean depth" in result["baselines"]
    assert (tmp_path / "o" / "pictures" / "depth_synthetic_seed1000000.png").is_file()
    assert cli(["bench", "camera-pose", *args, "--no-plots"]) == 0
    result = json.loads((tmp_path / "o" / "camera-pose_synthetic.json").read_text())
    (report,) = result["per_sequence"]["seed1000000"]["window_smoothing"]
    assert result["settings"]["model_run"]["seed"] == 42 and report["window"] >= 5
    assert cli(["bench", "video-depth", *args, "--protocol", "library", "--no-plots"]) == 0
    result = json.loads((tmp_path / "o" / "video-depth_synthetic.json").read_text())
    assert result["settings"]["windows_not_applied"] == ["spatial_window", "spatial_overlap"]
    assert result["settings"]["departures"]["protocol"] == "library"
    assert cli(["bench", "planning", *args, "--steps", "2", "--action", "--no-plots"]) == 0
    result = json.loads((tmp_path / "o" / "planning_synthetic.json").read_text())
    assert np.isfinite(result["mean"]["psnr"]) and result["mean"]["lpips"] is None


def test_model_options_reach_the_pipeline(monkeypatch):
    from aether.evaluation import commands, runners

    seen = {}
    monkeypatch.setattr(runners.PipelineSource, "__init__", lambda self, *a, **kw: seen.update(kw))
    args = commands._parser("aether bench").parse_args(
        [
            "video-depth",
            "--dataset",
            "synthetic",
            "--model",
            "m",
            "--out",
            "o",
            "--steps",
            "3",
            "--ensemble",
            "5",
        ]
    )
    assert isinstance(commands._source(args, "cpu"), runners.PipelineSource)
    assert seen["num_inference_steps"] == 3 and seen["ensemble"] == 5


def test_saved_predictions_read_world4d_directories(tmp_path):
    from aether.pipeline import World4D

    seq = build_dataset("synthetic", num_sequences=1, num_frames=5, height=16, width=24).sequences(
        "camera-pose"
    )[0]
    depth = seq.depth() * 2
    world = World4D(
        rgb=seq.rgb(),
        depth=depth,
        disparity=np.where(depth > 0, 1 / np.maximum(depth, 1e-6), 0).astype(np.float32),
        c2w=seq.c2w.astype(np.float32),
        K=seq.K.astype(np.float32),
        valid=depth > 0,
    )
    world.save(tmp_path / seq.name, formats=("npz",))
    source = SavedPredictions(tmp_path)
    np.testing.assert_allclose(source.reconstruct(seq, "camera-pose")["c2w"], seq.c2w, atol=1e-6)
    np.testing.assert_array_equal(source.predict(seq), seq.rgb())
    with pytest.raises(FileNotFoundError, match="no predictions for sequence 'other'"):
        source.reconstruct(type(seq)("other"), "video-depth")


def test_the_library_protocol_scores_invalid_depth_at_the_far_depth_as_validation_does():
    from types import SimpleNamespace

    from aether.evaluation.runners import PipelineSource
    from aether.pipeline import World4D

    depth = np.array([[[2.0, 0.0], [5.0, 0.0]]], np.float32)
    disparity = np.divide(1, depth, out=np.zeros_like(depth), where=depth > 0)
    world = World4D(
        rgb=np.zeros((1, 2, 2, 3), np.uint8), depth=depth, disparity=disparity,
        valid=depth > 0, c2w=np.eye(4, dtype=np.float32)[None], K=np.eye(3, dtype=np.float32)[None],
    )  # fmt: skip
    source = PipelineSource.__new__(PipelineSource)
    source.protocol, source.seed, source.ensemble, source.steps = "library", None, 1, {}
    source.pipe = SimpleNamespace(reconstruct=lambda frames, **kwargs: world)
    out = source.reconstruct(SimpleNamespace(rgb=lambda: np.zeros((1, 2, 2, 3), np.uint8)), "video-depth")
    np.testing.assert_array_equal(out["depth"], [[[2.0, 5.0], [5.0, 5.0]]])


def test_paper_runs_slice_and_tile_the_vae_as_the_reference(tmp_path):
    """The reference calls ``vae.enable_slicing()`` and ``vae.enable_tiling()`` before every depth and
    pose run; the paper protocol does the same, the library protocol leaves the VAE as loaded."""
    from aether.evaluation.protocol import PAPER_RUNS, PAPER_VAE
    from aether.models.testing import save_tiny_aether, save_tiny_base

    base = save_tiny_base(tmp_path / "base", height=32, width=48)
    model = save_tiny_aether(tmp_path / "aether", height=32, width=48, seed=1)
    from aether.evaluation import runners

    paper = runners.PipelineSource(model, base=base)
    vae = paper.pipe.backend.vae
    assert vae.use_slicing and vae.use_tiling
    used, departures = paper.run_settings("video-depth")
    assert used["vae"] == PAPER_VAE == PAPER_RUNS["camera-pose"]["vae"] and "vae" not in departures
    library = runners.PipelineSource(model, base=base, protocol="library")
    assert not (library.pipe.backend.vae.use_slicing or library.pipe.backend.vae.use_tiling)


class _Poses:
    """A pose source returning, per sequence, its ground truth with a known perturbation."""

    action, ignored_windowing, window_reports = False, [], {}

    def run_settings(self, task):
        return {}, {}

    def reconstruct(self, seq, task):
        c2w = np.nan_to_num(seq.c2w, nan=0.0).copy()
        c2w[:, :3, 3] += 0.01 * np.arange(len(c2w))[:, None]
        return {"c2w": c2w}


def _pose_dataset(sequences):
    from types import SimpleNamespace

    return SimpleNamespace(
        name="toy", tasks=("camera-pose",), trivial_baselines=False, sequences=lambda task: sequences
    )


def _walk(n: int = 6) -> np.ndarray:
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.linspace(0.0, 1.0, n)
    c2w[:, 2, 3] = np.linspace(0.0, 0.3, n) ** 2
    return c2w


def test_camera_pose_skips_and_lists_what_cut3r_skips(caplog):
    """CUT3R's pose evaluation skips a sequence whose ground truth is not finite (it is not scored on
    the remaining frames) and logs a trajectory the metrics are undefined for, then goes on; the mean
    is over the scored sequences. ``fail_fast`` stops at the first instead."""
    from aether.evaluation.datasets import EvalSequence
    from aether.evaluation.pose_metrics import DegenerateTrajectoryError, camera_pose_metrics

    nan = _walk()
    nan[3, 0, 3] = np.nan
    static = np.tile(np.eye(4), (6, 1, 1))
    good = EvalSequence("walk", c2w=_walk(), arrays={"rgb": np.zeros((6, 2, 2, 3), np.uint8)})
    seqs = [good, EvalSequence("nan-gt", c2w=nan), EvalSequence("static", c2w=static)]
    result = run_camera_pose(_pose_dataset(seqs), _Poses(), progress=False)
    assert list(result["per_sequence"]) == ["walk"]
    assert result["per_sequence"]["walk"]["frames"] == 6
    assert result["skipped"]["nan-gt"] == "non-finite ground-truth poses in frames [3]"
    assert result["skipped"]["static"].startswith("degenerate trajectory: toy/static")
    expected = camera_pose_metrics(_Poses().reconstruct(good, "camera-pose")["c2w"], good.c2w)
    assert result["mean"]["ate"] == pytest.approx(expected["ate"])
    assert "skipping toy/nan-gt" in caplog.text and "skipping toy/static" in caplog.text
    from aether.evaluation.report import markdown_table

    assert "Skipped (not in the mean): nan-gt: non-finite" in markdown_table(result)
    with pytest.raises(DegenerateTrajectoryError, match="toy/nan-gt: non-finite.*fail-fast"):
        run_camera_pose(_pose_dataset(seqs), _Poses(), progress=False, fail_fast=True)
    with pytest.raises(ValueError, match="no sequence could be scored"):
        run_camera_pose(_pose_dataset(seqs[1:]), _Poses(), progress=False)
