"""The bench's protocol model-run path against the transcription of the published scripts
(tests/reference_protocol.py): input preparation and crop box, depth windows and merges, and the
camera pose path (per-window smoothing, Sim(3) merge, final smoothing)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aether.evaluation.protocol import (
    check_protocol,
    protocol_depth,
    protocol_poses,
    reference_input,
    spatial_windows,
    temporal_windows,
)
from tests import reference_protocol as ref


@pytest.mark.parametrize("shape", [(2, 436, 1024), (2, 375, 1242), (2, 480, 640), (2, 968, 1296)])
@pytest.mark.parametrize("pose", [False, True])
def test_input_resize_and_crop_box_equal_the_reference(shape, pose):
    rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = reference_input(rgb, 480, 720, multiple=16 if pose else None, crop=pose)
    expected = ref.prepare_input(rgb, pose=pose)
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(ours, expected)
    if pose:
        assert ours.shape[1:3] == (480, 720)


def test_windows_follow_the_reference_rules():
    assert temporal_windows(50, 8) == (41, [0, 8, 9])
    assert temporal_windows(90, 32) == (41, [0, 32, 49])
    assert temporal_windows(20, 8) == (17, [0, 3])
    assert temporal_windows(41, 32) == (41, [0])
    assert spatial_windows(480, 1127, (480, 720)) == ("width", [(0, 720), (407, 1127)])
    assert spatial_windows(480, 720, (480, 720)) == ("height", [(0, 480)])


def _fake_disparity(clip):
    """A deterministic disparity per window that depends on its content (so merges matter)."""
    base = clip.mean(-1).astype(np.float32)
    return (0.2 + 0.5 * base * (1.0 + 0.3 * float(clip[0, 0, 0, 0]))).astype(np.float32)


@pytest.mark.parametrize("frames,width", [(50, 160), (30, 72), (17, 100)])
def test_depth_windows_and_merges_equal_the_reference(frames, width):
    rng = np.random.default_rng(frames)
    obs = rng.random((frames, 48, width, 3))
    ours = protocol_depth(_fake_disparity, obs, (48, 72))
    expected = ref.depth_sliding_window(_fake_disparity, obs, frames, 48, 72)
    assert ours.dtype == expected.dtype
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


def _trajectory(n, seed):
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(0, 0.03, (n, 3)), 0)).as_matrix()
    c2w[:, :3, 3] = np.cumsum(rng.normal(0, 0.05, (n, 3)) + [0.0, 0.0, 0.1], 0)
    return c2w


def _window_cameras(gt, seed, scale_noise=True):
    """Each window's cameras: relative to its first frame, scaled, with noise (as a model gives)."""
    rng = np.random.default_rng(seed)

    def run(start, size):
        rel = np.linalg.inv(gt[start]) @ gt[start : start + size]
        rel[:, :3, 3] *= rng.uniform(0.5, 2.0) if scale_noise else 1.0
        noise = Rotation.from_rotvec(rng.normal(0, 0.01, (size, 3))).as_matrix()
        rel[:, :3, :3] = rel[:, :3, :3] @ noise
        rel[:, :3, 3] += rng.normal(0, 0.01, (size, 3))
        return rel

    return run


@pytest.mark.parametrize("frames", [90, 50, 41])
def test_pose_path_equals_the_reference(frames):
    gt = _trajectory(frames, frames)
    windows = {}
    make = _window_cameras(gt, 7)

    def run(start, size):  # the same noisy cameras for both paths
        if (start, size) not in windows:
            windows[start, size] = make(start, size)
        return windows[start, size].copy()

    ours, reports = protocol_poses(lambda s, n: torch.from_numpy(run(s, n)), frames)
    expected = ref.pose_sliding_window(run, frames)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-9)
    assert [r["start"] for r in reports] == temporal_windows(frames, 32)[1]
    raw, none_reports = protocol_poses(lambda s, n: torch.from_numpy(run(s, n)), frames, smoothing="none")
    assert none_reports == [] and not np.allclose(raw.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("seed,rot,trans", [(1, 0.0005, 0.001), (2, 0.002, 0.0035), (3, 0.0022, 0.003)])
def test_pose_path_static_windows_take_the_wide_gaussian(seed, rot, trans):
    rng = np.random.default_rng(seed)
    cams = np.tile(np.eye(4), (41, 1, 1))  # a camera that barely moves: the static rule
    cams[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, rot, (41, 3))).as_matrix()
    cams[:, :3, 3] = rng.normal(0, trans, (41, 3))
    ours, reports = protocol_poses(lambda s, n: torch.from_numpy(cams.copy()), 41)
    assert reports[0]["static"] and reports[0]["window"] > 5
    if not reports[0]["even_window"]:  # the reference stops on even windows
        expected = ref.pose_sliding_window(lambda s, n: cams.copy(), 41)
        np.testing.assert_allclose(ours.numpy(), expected, atol=1e-9)


def test_unknown_protocol_lists_the_valid_ones():
    with pytest.raises(ValueError, match="paper, library"):
        check_protocol("cut3r")


class RaymapPipeline:
    """A stand-in for the pipeline's public surface used by the bench: ``generate`` returns the raw
    raymap (float64) of known cameras per window (each window relative to its first frame, scaled)."""

    height, width, device = 48, 72, torch.device("cpu")

    def __init__(self, gt, K):
        self.gt, self.K, self.calls = gt, K, []

    def generate(self, task, *, video, num_frames, fps, num_inference_steps, generator, mode, **kw):
        from aether.geometry import cameras_to_raymap

        self.calls.append(
            {"video": video.clone(), "seed": generator.initial_seed(), "mode": mode, "fps": fps}
        )
        start = len(self.calls) - 1
        starts = temporal_windows(len(self.gt), 32)[1]
        s0 = starts[start]
        rel = np.linalg.inv(self.gt[s0]) @ self.gt[s0 : s0 + num_frames]
        rel[:, :3, 3] *= 0.5 + 0.25 * start
        c2w = torch.from_numpy(rel)
        K = torch.from_numpy(self.K).expand(num_frames, 3, 3)
        return SimpleNamespace(raymap=cameras_to_raymap(c2w, K, self.height, self.width))


def test_bench_pose_path_from_raymaps_equals_the_reference():
    """Frames -> crop -> windows -> raymap readout (reference units) -> smoothing -> merge, end to end."""
    from aether.evaluation.protocol import PAPER_RUNS, run_poses

    frames = 50
    gt = _trajectory(frames, 11)
    K = np.array([[60.0, 0, 35.0], [0, 58.0, 24.5], [0, 0, 1]])
    rgb = np.random.default_rng(0).integers(0, 256, (frames, 40, 100, 3), dtype=np.uint8)
    pipe = RaymapPipeline(gt, K)
    ours, _ = run_poses(pipe, rgb, PAPER_RUNS["camera-pose"])
    prepared = ref.prepare_input(rgb, 48, 72, pose=True)
    starts = temporal_windows(frames, 32)[1]
    for call, s0 in zip(pipe.calls, starts):  # each window got the centre-cropped frames, seed 42
        expected = torch.from_numpy(prepared[s0 : s0 + 41]).permute(0, 3, 1, 2).float() * 2 - 1
        torch.testing.assert_close(call["video"], expected, rtol=0, atol=0)
        assert (call["seed"], call["mode"], call["fps"]) == (42, "upstream", 12.0)
    replay = RaymapPipeline(gt, K)

    def window_cameras(start, size):
        gen = torch.Generator().manual_seed(42)
        out = replay.generate(
            "reconstruction", video=torch.zeros(1), num_frames=size, fps=12.0,
            num_inference_steps=4, generator=gen, mode="upstream",
        )  # fmt: skip
        return ref.raymap_to_poses(out.raymap.numpy())

    expected = ref.pose_sliding_window(window_cameras, frames)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)


class DisparityPipeline:
    """A stand-in returning a content-dependent float32 disparity per window (T, H, W)."""

    height, width, device = 48, 72, torch.device("cpu")

    def __init__(self):
        self.calls = []

    def generate(self, task, *, video, num_frames, fps, num_inference_steps, generator, mode, **kw):
        self.calls.append((generator.initial_seed(), mode, num_inference_steps, num_frames))
        clip = ((video.permute(0, 2, 3, 1) + 1) / 2).double().numpy()
        return SimpleNamespace(disparity=torch.from_numpy(_fake_disparity(clip)))


def test_bench_depth_path_end_to_end_equals_the_reference():
    from aether.evaluation.protocol import PAPER_RUNS, run_depth

    rgb = np.random.default_rng(3).integers(0, 256, (30, 44, 128, 3), dtype=np.uint8)
    pipe = DisparityPipeline()
    ours = run_depth(pipe, rgb, PAPER_RUNS["video-depth"])
    assert {c[:3] for c in pipe.calls} == {(3407, "upstream", 4)}

    def reference_window(clip):  # the pipeline sees the float32 [-1, 1] frames
        as_model = torch.from_numpy(np.ascontiguousarray(clip)).float() * 2 - 1
        return _fake_disparity(((as_model + 1) / 2).double().numpy())

    prepared = ref.prepare_input(rgb, 48, 72)
    expected = ref.depth_sliding_window(reference_window, prepared, len(rgb), 48, 72)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)
    assert ours.shape == (30, 48, 140) and ours.max() <= 100.0
