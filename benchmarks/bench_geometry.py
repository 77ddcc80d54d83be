"""Geometry benchmark: raymap encode / decode, pointmaps and pose smoothing for one AetherV1 clip.

Times ``aether.geometry`` (torch, CPU) against a straightforward full-resolution numpy implementation
of the same steps on a 41-frame 480 x 720 clip, and measures the rotation bias of the paper's
Algorithm 1 (mean ray as the forward axis) against the exact least-squares recovery.

    .venv/bin/python benchmarks/bench_geometry.py [--repeats 5] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import os

# numpy backs large arrays with transparent huge pages by default; let torch do the same for its CPU
# allocations (read once, before torch allocates), so the 170 MB pointmaps are compared like for like.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
# one thread on both sides (torch via --threads): BLAS threads in numpy's matmuls would only measure
# contention on a shared machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from aether.geometry import (
    cameras_to_raymap,
    depth_to_points,
    raymap_to_cameras,
    smooth_poses_gaussian,
    smooth_poses_kalman,
)

NUM_FRAMES, HEIGHT, WIDTH, DOWNSAMPLE, DMAX = 41, 480, 720, 8, 0.5


# --------------------------------------------------------------------------- baseline (numpy)
def _rotation(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for one axis-angle vector (3,) -> (3, 3)."""
    angle = np.linalg.norm(axis_angle)
    if angle < 1e-12:
        return np.eye(3)
    k = axis_angle / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def numpy_encode(c2w: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Full-resolution raymap per frame, then bilinear downsampling (align_corners=False): (T, 6, h, w)."""
    v, u = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)  # (H, W, 3)
    out = []
    for pose, k in zip(c2w, K):
        directions = pixels @ np.linalg.inv(k).T @ pose[:3, :3].T  # (H, W, 3)
        t = 10.0 * DMAX * pose[:3, 3]
        origins = np.broadcast_to(np.sign(t) * np.log1p(np.abs(t)), (HEIGHT, WIDTH, 3))
        full = np.concatenate([directions, origins], axis=-1).transpose(2, 0, 1)  # (6, H, W)
        # align_corners=False, factor 8: sample at 8i + 3.5, i.e. the mean of pixels 8i + 3 and 8i + 4
        rows = 0.5 * (full[:, 3::DOWNSAMPLE] + full[:, 4::DOWNSAMPLE])
        out.append(0.5 * (rows[:, :, 3::DOWNSAMPLE] + rows[:, :, 4::DOWNSAMPLE]))
    return np.stack(out).astype(np.float32)


def numpy_decode(raymap: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame least-squares camera fit, full-resolution pointmaps and Gaussian pose smoothing."""
    h, w = HEIGHT // DOWNSAMPLE, WIDTH // DOWNSAMPLE
    v, u = np.meshgrid(np.arange(h) * 8 + 3.5, np.arange(w) * 8 + 3.5, indexing="ij")
    grid = np.stack([u.ravel(), v.ravel(), np.ones(h * w)], axis=1)  # (N, 3)
    vf, uf = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
    pixels = np.stack([uf, vf, np.ones_like(uf)], axis=-1).astype(np.float64)
    poses, intrinsics, points = [], [], []
    for frame, d in zip(raymap.astype(np.float64), depth):
        o = np.sign(frame[3:]) * np.expm1(np.abs(frame[3:]))
        centre = o.reshape(3, -1).mean(axis=1) / 10.0 / DMAX
        M = np.linalg.lstsq(grid, frame[:3].reshape(3, -1).T, rcond=None)[0].T  # d = M [u, v, 1]
        Q, U = np.linalg.qr(M)
        signs = np.sign(np.diag(U))
        Q, U = Q * signs, signs[:, None] * U
        if np.linalg.det(Q) < 0:
            Q[:, 2], U[2] = -Q[:, 2], -U[2]
        Kinv = U / U[2, 2]
        k = np.linalg.inv(Kinv)
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = Q, centre
        rays = pixels @ np.linalg.inv(k).T
        points.append((rays * d[..., None]) @ Q.T + centre)
        poses.append(pose)
        intrinsics.append(k)
    poses = np.stack(poses)
    # Gaussian smoothing: centres directly, rotations through sign-aligned quaternions
    sigma, t_idx = 2.0, np.arange(len(poses))
    smoothed = []
    quats = []
    for pose in poses:
        R = pose[:3, :3]
        qw = math.sqrt(max(0.0, 1.0 + np.trace(R))) / 2.0
        q = np.array(
            [
                qw,
                (R[2, 1] - R[1, 2]) / (4 * qw),
                (R[0, 2] - R[2, 0]) / (4 * qw),
                (R[1, 0] - R[0, 1]) / (4 * qw),
            ]
        )
        if quats and np.dot(q, quats[-1]) < 0:
            q = -q
        quats.append(q)
    quats = np.stack(quats)
    for i in range(len(poses)):
        weights = np.exp(-0.5 * ((t_idx - i) / sigma) ** 2)
        weights /= weights.sum()
        q = (weights[:, None] * quats).sum(0)
        q /= np.linalg.norm(q)
        a, b, c, e = q
        R = np.array(
            [
                [a * a + b * b - c * c - e * e, 2 * (b * c - a * e), 2 * (b * e + a * c)],
                [2 * (b * c + a * e), a * a - b * b + c * c - e * e, 2 * (c * e - a * b)],
                [2 * (b * e - a * c), 2 * (c * e + a * b), a * a - b * b - c * c + e * e],
            ]
        )
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R, (weights[:, None] * poses[:, :3, 3]).sum(0)
        smoothed.append(pose)
    return np.stack(smoothed), np.stack(intrinsics), np.stack(points).astype(np.float32)


# --------------------------------------------------------------------------- inputs
def make_clip(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth 41-frame trajectory (relative to frame 0), off-centre intrinsics and a depth video."""
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, NUM_FRAMES)
    c2w = np.tile(np.eye(4), (NUM_FRAMES, 1, 1))
    for i, si in enumerate(s):
        c2w[i, :3, :3] = _rotation(np.array([0.2 * math.sin(2 * si), 0.6 * si, 0.05 * si]))
        c2w[i, :3, 3] = [math.sin(3 * si), 0.3 * si**2, 4.0 * si]
    c2w = np.linalg.inv(c2w[0]) @ c2w
    K = np.tile(np.array([[600.0, 0.0, 350.0], [0.0, 620.0, 250.0], [0.0, 0.0, 1.0]]), (NUM_FRAMES, 1, 1))
    depth = (1.0 + 4.0 * rng.random((NUM_FRAMES, HEIGHT, WIDTH))).astype(np.float32)
    return c2w, K, depth


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Wall times in seconds (median, min and every round's) of each function, after one warm-up call.

    The functions run interleaved, round after round, so a change in machine load hits all of them.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: {"median": statistics.median(t), "min": min(t), "rounds": t} for name, t in times.items()}


def rotation_error_deg(R_a: torch.Tensor, R_b: torch.Tensor) -> float:
    diff = torch.linalg.matrix_norm(R_a.double() - R_b.double())
    return float(torch.rad2deg(2 * torch.asin((diff / (2 * math.sqrt(2))).clamp(max=1))).max())


def algorithm1_bias(c2w: torch.Tensor) -> list[dict]:
    """Rotation error (degrees, max over frames) of both recovery methods on exact float64 raymaps."""
    rows = []
    cases = [
        ("centred (W/2, H/2)", WIDTH / 2, HEIGHT / 2),
        ("grid centre ((W-1)/2, (H-1)/2)", (WIDTH - 1) / 2, (HEIGHT - 1) / 2),
        ("off-centre (0.4 W, 0.6 H)", 0.4 * WIDTH, 0.6 * HEIGHT),
        ("off-centre (0.3 W, 0.3 H)", 0.3 * WIDTH, 0.3 * HEIGHT),
    ]
    for focal in (50.0, 200.0, 600.0, 2000.0):
        for name, cx, cy in cases:
            K = torch.tensor([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], dtype=torch.float64)
            K = K.expand(len(c2w), 3, 3)
            raymap = cameras_to_raymap(c2w, K, HEIGHT, WIDTH, dmax=DMAX)
            row = {"focal_px": focal, "principal_point": name}
            for method in ("mean_ray", "lstsq"):
                est, K_est = raymap_to_cameras(raymap, HEIGHT, WIDTH, dmax=DMAX, method=method)
                row[f"{method}_rotation_error_deg"] = rotation_error_deg(est[:, :3, :3], c2w[:, :3, :3])
                row[f"{method}_focal_rel_error"] = float(((K_est[:, 0, 0] - focal).abs() / focal).max())
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "geometry.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    c2w_np, K_np, depth_np = make_clip()
    c2w, K, depth = (torch.from_numpy(x).float() for x in (c2w_np, K_np, depth_np))

    raymap_np = numpy_encode(c2w_np, K_np)
    raymap = cameras_to_raymap(c2w, K, HEIGHT, WIDTH, dmax=DMAX)

    def encode() -> torch.Tensor:
        return cameras_to_raymap(c2w, K, HEIGHT, WIDTH, dmax=DMAX)

    def decode() -> tuple[torch.Tensor, ...]:
        poses, intr = raymap_to_cameras(raymap, HEIGHT, WIDTH, dmax=DMAX)
        points = depth_to_points(depth, intr, poses)
        return poses, intr, points, smooth_poses_gaussian(poses, 2.0), smooth_poses_kalman(poses)

    times = timed(
        {
            "baseline_encode": lambda: numpy_encode(c2w_np, K_np),
            "aether_encode": encode,
            "baseline_decode_pointmaps_smooth": lambda: numpy_decode(raymap_np, depth_np),
            "aether_decode_pointmaps_smooth": decode,
            "aether_raymap_to_cameras": lambda: raymap_to_cameras(raymap, HEIGHT, WIDTH, dmax=DMAX),
            "aether_depth_to_points": lambda: depth_to_points(depth, K, c2w),
            "aether_smooth_poses_gaussian": lambda: smooth_poses_gaussian(c2w, 2.0),
            "aether_smooth_poses_kalman": lambda: smooth_poses_kalman(c2w),
        },
        args.repeats,
    )
    median = {name: t["median"] for name, t in times.items()}

    # agreement between the two implementations
    _, K_base, points_base = numpy_decode(raymap_np, depth_np)
    _, K_ours, points_ours, _, _ = decode()
    agreement = {
        "raymap_max_abs_diff": float(np.abs(raymap_np - raymap.numpy()).max()),
        "intrinsics_max_abs_diff_px": float(np.abs(K_base - K_ours.double().numpy()).max()),
        "points_max_abs_diff": float(np.abs(points_base - points_ours.numpy()).max()),
    }
    result = {
        "clip": {"frames": NUM_FRAMES, "height": HEIGHT, "width": WIDTH, "downsample": DOWNSAMPLE},
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "torch_thp_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_1_5_15min": os.getloadavg(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.processor() or platform.machine(),
        "repeats": args.repeats,
        "seconds": times,
        "speedup_median": {
            "encode": median["baseline_encode"] / median["aether_encode"],
            "decode_pointmaps_smooth": median["baseline_decode_pointmaps_smooth"]
            / median["aether_decode_pointmaps_smooth"],
            "total": (median["baseline_encode"] + median["baseline_decode_pointmaps_smooth"])
            / (median["aether_encode"] + median["aether_decode_pointmaps_smooth"]),
        },
        "agreement": agreement,
        "algorithm1_bias": algorithm1_bias(torch.from_numpy(c2w_np)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    summary = ("seconds", "speedup_median", "agreement", "load_average_1_5_15min")
    print(json.dumps({k: result[k] for k in summary}, indent=2))


if __name__ == "__main__":
    main()
