"""Evaluation benchmark (CPU): time to score one 50-frame Sintel-format sequence (436 x 1024).

Metric computation only (the arrays are in memory): video depth for each alignment (the
218 x 512 float64 prediction bicubically resized to the float32 ground truth, valid pixels
0 < gt < 70, cap 70) and the camera pose metrics (ATE, RPE translation / rotation) of the
50-frame trajectory. Reports the median of ``--repeats`` runs.

The protocol's ``scale&shift`` (Adam, up to 1000 steps over the ~20 M valid pixels) is timed
step by step: ``--adam-steps`` steps are run on the full sequence and the time of the protocol's
1000 steps is projected from them (the loop stops early only when the L1 loss changes by less
than 1e-6 between steps, which it does not on such sequences); the whole loop is also run to its
stop on the first ``--adam-frames`` frames. The exact L1 solver (``scale&shift-exact``) runs in
full beside it.

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
from aether.evaluation.depth_metrics import ALIGNMENTS, depth_sequence_stats, resize_depth, scale_shift_adam

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
    pred = 0.37 * small[:, 0].numpy() * rng.lognormal(0, 0.1, (FRAMES, HEIGHT // 2, WIDTH // 2))
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


def _valid_pixels(pred: np.ndarray, gt: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The protocol's valid pixels (0 < gt < 70) of the resized prediction and the ground truth."""
    g = torch.from_numpy(gt)
    p = resize_depth(torch.from_numpy(pred), tuple(g.shape[-2:]))
    valid = (g > 0) & (g < 70)
    return p[valid], g[valid]


def adam_timing(pred: np.ndarray, gt: np.ndarray, steps: int, frames: int) -> dict[str, float]:
    """Seconds per Adam step on the full sequence (``steps`` steps), the projection to the
    protocol's 1000 steps, and a full run to its stop on the first ``frames`` frames."""
    p, g = _valid_pixels(pred, gt)
    start = time.perf_counter()
    scale_shift_adam(p, g, max_iters=steps)
    per_step = (time.perf_counter() - start) / steps
    p_small, g_small = _valid_pixels(pred[:frames], gt[:frames])
    start = time.perf_counter()
    s, t = scale_shift_adam(p_small, g_small)
    full = time.perf_counter() - start
    return {
        "seconds_per_step": per_step,
        "steps_timed": steps,
        "projected_seconds_1000_steps": 1000 * per_step,
        "valid_pixels": int(p.numel()),
        "full_run_frames": frames,
        "full_run_seconds": full,
        "full_run_valid_pixels": int(p_small.numel()),
        "full_run_scale_shift": [s, t],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--adam-steps", type=int, default=10, help="Adam steps timed on the full sequence")
    parser.add_argument("--adam-frames", type=int, default=2, help="frames of the full-length Adam run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gt, pred, gt_c2w, pred_c2w = sintel_like_sequence()
    depth = {}
    for align in [a for a in ALIGNMENTS if a != "scale&shift"]:
        seconds, stats = _time(
            lambda a=align: depth_sequence_stats(pred, gt, a, 70.0, None, 70.0), args.repeats
        )
        depth[align] = {"seconds": seconds, **stats}
        print(f"video depth ({align:>13}): {seconds:.3f} s  abs_rel {stats['abs_rel']:.4f}")
    depth["scale&shift"] = adam_timing(pred, gt, args.adam_steps, args.adam_frames)
    exact = depth["scale&shift-exact"]["seconds"]
    print(
        f"video depth (  scale&shift): {depth['scale&shift']['seconds_per_step']:.3f} s/step, "
        f"projected {depth['scale&shift']['projected_seconds_1000_steps']:.0f} s for 1000 steps "
        f"({depth['scale&shift']['projected_seconds_1000_steps'] / exact:.0f}x the exact solver)"
    )
    seconds, pose = _time(lambda: camera_pose_metrics(pred_c2w, gt_c2w), max(args.repeats, 10))
    print(f"camera pose: {seconds * 1e3:.2f} ms  {pose}")
    result = {
        "benchmark": "evaluation metrics of one Sintel-format sequence (metric computation only)",
        "command": "python benchmarks/bench_evaluation.py "
        + f"--threads {args.threads} --repeats {args.repeats} --adam-steps {args.adam_steps} "
        + f"--adam-frames {args.adam_frames}",
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
