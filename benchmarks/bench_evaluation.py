"""Evaluation benchmark (CPU): time to score one 50-frame Sintel-format sequence (436 x 1024).

Metric computation only (the arrays are in memory): video depth for each alignment of the
protocol (the 218 x 512 prediction bicubically resized to the ground truth, valid pixels
0 < gt < 70, cap 70) and the camera pose metrics (ATE, RPE translation / rotation) of the
50-frame trajectory. Reports the median of ``--repeats`` runs.

    .venv/bin/python benchmarks/bench_evaluation.py [--threads 2] [--repeats 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from aether.evaluation import camera_pose_metrics
from aether.evaluation.depth_metrics import ALIGNMENTS, depth_sequence_stats

RESULTS = Path(__file__).resolve().parent / "results" / "evaluation.json"
FRAMES, HEIGHT, WIDTH = 50, 436, 1024


def sintel_like_sequence(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gt depth (50,436,1024) with far and invalid pixels, a half-resolution noisy prediction, and
    a smooth 50-pose trajectory with a noisy Sim(3)-transformed prediction."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / np.array([HEIGHT, WIDTH])[:, None, None]
    t = np.arange(FRAMES)[:, None, None] / FRAMES
    gt = (2 + 30 * yy[None] + 10 * np.sin(6 * xx[None] + 3 * t)).astype(np.float32)
    gt[:, :20] = 120.0  # beyond the 70 m cap
    gt[:, -10:, :100] = 0.0  # invalid
    small = torch.nn.functional.interpolate(
        torch.from_numpy(gt)[:, None], size=(HEIGHT // 2, WIDTH // 2), mode="area"
    )
    pred = (0.37 * small[:, 0].numpy() * rng.lognormal(0, 0.1, (FRAMES, HEIGHT // 2, WIDTH // 2))).astype(
        np.float32
    )
    gt_c2w = np.tile(np.eye(4), (FRAMES, 1, 1))
    gt_c2w[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(0, 0.03, (FRAMES, 3)), 0)).as_matrix()
    gt_c2w[:, :3, 3] = np.cumsum(rng.normal(0, 0.1, (FRAMES, 3)), 0)
    S = np.eye(4)
    S[:3, :3] = Rotation.from_rotvec([0.3, -0.2, 0.1]).as_matrix()
    pred_c2w = S @ gt_c2w
    pred_c2w[:, :3, 3] = 2.0 * pred_c2w[:, :3, 3] + rng.normal(0, 0.02, (FRAMES, 3))
    return gt, pred, gt_c2w, pred_c2w


def _time(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gt, pred, gt_c2w, pred_c2w = sintel_like_sequence()
    depth = {}
    for align in ALIGNMENTS:
        seconds, stats = _time(
            lambda a=align: depth_sequence_stats(pred, gt, a, 70.0, None, 70.0), args.repeats
        )
        depth[align] = {"seconds": seconds, **stats}
        print(f"video depth ({align:>13}): {seconds:.3f} s  abs_rel {stats['abs_rel']:.4f}")
    seconds, pose = _time(lambda: camera_pose_metrics(pred_c2w, gt_c2w), max(args.repeats, 10))
    print(f"camera pose: {seconds * 1e3:.2f} ms  {pose}")
    result = {
        "benchmark": "evaluation metrics of one Sintel-format sequence (metric computation only)",
        "command": "python benchmarks/bench_evaluation.py "
        + f"--threads {args.threads} --repeats {args.repeats}",
        "sequence": {"frames": FRAMES, "gt_size": [HEIGHT, WIDTH], "pred_size": [HEIGHT // 2, WIDTH // 2]},
        "device": "cpu",
        "torch_threads": args.threads,
        "load_average_1min_at_end": os.getloadavg()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "video_depth": depth,
        "camera_pose": {"seconds": seconds, **pose},
        "depth_scale_plus_pose_seconds": depth["scale"]["seconds"] + seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
