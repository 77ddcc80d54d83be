"""Post-processing benchmark: cameras, smoothed trajectory and point maps of one 41 x 480 x 720 clip,
against the reference AetherV1 post-processing, side by side in one process.

The reference is reproduced here from its published code (InternRobotics/Aether,
``aether/utils/postprocess_utils.py``: ``postprocess_pointmap`` with ``smooth_camera=True`` and
``smooth_method="kalman"``, ``ray_o_scale_inv=0.1`` as its demo calls it), operation by operation:

* depth = clip(1 / clip(disparity, 1e-3, 1), 0, 1e8) in numpy;
* cameras by ``raymap_to_poses`` (the paper's Algorithm 1: mean origin, mean ray as forward axis,
  field of view from the mean first/last column and row rays) in numpy, focal from the two fields of view;
* the static-window test, then ``smooth_trajectory``: scipy Gaussian pre-smoothing (sigma = 5/6,
  "nearest" edges) of centres and sign-aligned quaternions, a 6-state constant-velocity Kalman
  filter stepped pose by pose on a 1-D state (filterpy's predict / update with Joseph-form covariance,
  R = Q = 0.1 I, P = I), Gaussian-weighted quaternion means over +-2 frames, scipy rotations;
* ``get_rays``: per-pixel camera rays (x - cx + 0.5) / f on the full int64 pixel grid in torch float32,
  rotated by one (T, HW, 3) x (T, 3, 3) matmul, converted to numpy; point map = depth[..., None] * ray_d
  + ray_o in numpy.

Ours, on the same decoded inputs: ``disparity_to_depth``, ``raymap_to_cameras`` (exact least squares),
``smooth_poses_kalman`` (RTS smoother as one cached (T, T) matrix) and ``depth_to_points`` -- the same
outputs (depth, cameras, smoothed trajectory, a (T, H, W, 3) float32 point map).

Both sides are bound by writing fresh memory: the first touch of each new page costs more than the
arithmetic. With 4 KiB pages (torch's allocator by default) a fresh 170 MB buffer costs ~80 ms to fill,
with 2 MiB transparent huge pages ~14 ms. numpy asks for huge pages by itself, torch only when the
process starts with ``THP_MEM_ALLOC_ENABLE=1``; ``aether.geometry`` takes its large CPU outputs from
numpy (``aether.geometry.buffers``), the reference's ``get_rays`` allocates through torch. The
environment therefore changes the reference's time (its torch part) far more than ours, and each
setting is measured in its own process:

* ``plain-1-thread``: the default environment (no ``THP_MEM_ALLOC_ENABLE``), one torch/BLAS thread;
* ``plain-default-threads``: the default environment and torch's default thread count (what
  ``torch.get_num_threads()`` gives without thread variables: the physical cores);
* ``plain-default-threads-omp-passive``: the same with ``OMP_WAIT_POLICY=passive`` (an OpenMP setting:
  idle worker threads sleep instead of spinning, which matters when another job shares the cores);
* ``thp-1-thread`` / ``thp-default-threads``: the same with ``THP_MEM_ALLOC_ENABLE=1`` for both sides
  (an environment option of torch, not a default: reported as such).

Within a setting, the reference and ours run back to back in each round (alternating which goes first)
and the headline ratio is the median of the per-round ratios, which cancels most of a shared machine's
load swings; the load average is recorded with every round.

    python benchmarks/bench_postprocess.py [--repeats 9] [--settings all] [--out PATH]

writes ``benchmarks/results/postprocess.json`` and prints the table of docs/geometry.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from aether.geometry import (
    cameras_to_raymap,
    depth_to_points,
    disparity_to_depth,
    raymap_to_cameras,
    smooth_poses_kalman,
)

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_geometry import make_clip, rotation_error_deg

NUM_FRAMES, HEIGHT, WIDTH, DOWNSAMPLE = 41, 480, 720, 8
RAY_O_SCALE_INV = 0.1  # the reference demo's constant: origins are signed_log1p(10 t)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
SETTINGS = {  # name: (environment, torch threads: 1 or None for torch's default)
    "plain-1-thread": ({"THP_MEM_ALLOC_ENABLE": "0"}, 1),
    "plain-default-threads": ({"THP_MEM_ALLOC_ENABLE": "0"}, None),
    "plain-default-threads-omp-passive": ({"THP_MEM_ALLOC_ENABLE": "0", "OMP_WAIT_POLICY": "passive"}, None),
    "thp-1-thread": ({"THP_MEM_ALLOC_ENABLE": "1"}, 1),
    "thp-default-threads": ({"THP_MEM_ALLOC_ENABLE": "1"}, None),
}


# --------------------------------------------------------------------------- the reference (numpy)
def ref_signed_expm1(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * (np.exp(np.abs(x)) - 1)


def ref_raymap_to_poses(raymap: np.ndarray, ray_o_scale_inv: float = RAY_O_SCALE_INV):
    """Algorithm 1 as the reference writes it: (T, 6, h, w) -> c2w (T, 4, 4), fov_x (T,), fov_y (T,).

    (The reference overwrites its argument's origin channels; a copy is taken here.)"""
    raymap = raymap.copy()
    ts = raymap.shape[0]
    raymap[:, 3:] = ref_signed_expm1(raymap[:, 3:])
    ray_o = raymap[:, 3:].transpose(0, 2, 3, 1) * ray_o_scale_inv
    ray_d = raymap[:, :3].transpose(0, 2, 3, 1)
    orient = ray_o.reshape(ts, -1, 3).mean(axis=1)
    image_orient = (ray_o + ray_d).reshape(ts, -1, 3).mean(axis=1)
    focal = np.linalg.norm(image_orient - orient, axis=-1)
    z_dir = image_orient - orient
    w_left = ray_d[:, :, :1, :].reshape(ts, -1, 3).mean(axis=1)
    w_right = ray_d[:, :, -1:, :].reshape(ts, -1, 3).mean(axis=1)
    w_real = (
        np.linalg.norm(np.cross(w_right - w_left, z_dir), axis=-1) / (raymap.shape[-1] - 1) * raymap.shape[-1]
    )
    fov_x = np.arctan(w_real / (2 * focal))
    h_up = ray_d[:, :1, :, :].reshape(ts, -1, 3).mean(axis=1)
    h_down = ray_d[:, -1:, :, :].reshape(ts, -1, 3).mean(axis=1)
    h_real = (
        np.linalg.norm(np.cross(h_up - h_down, z_dir), axis=-1) / (raymap.shape[-2] - 1) * raymap.shape[-2]
    )
    fov_y = np.arctan(h_real / (2 * focal))
    x_dir = w_right - w_left
    y_dir = np.cross(z_dir, x_dir)
    x_dir = np.cross(y_dir, z_dir)
    x_dir /= np.linalg.norm(x_dir, axis=-1, keepdims=True)
    y_dir /= np.linalg.norm(y_dir, axis=-1, keepdims=True)
    z_dir /= np.linalg.norm(z_dir, axis=-1, keepdims=True)
    pose = np.zeros((ts, 4, 4))
    pose[:, :3, 0], pose[:, :3, 1], pose[:, :3, 2] = x_dir, y_dir, z_dir
    pose[:, :3, 3] = orient
    pose[:, 3, 3] = 1.0
    return pose, fov_x, fov_y


def ref_fov_to_focal(fov_x: np.ndarray, fov_y: np.ndarray, h: int, w: int) -> np.ndarray:
    return (w * 0.5 / np.tan(fov_x) + h * 0.5 / np.tan(fov_y)) / 2


def ref_detect_static(poses: np.ndarray, threshold: float = 0.01):
    trans = np.linalg.norm(poses[1:, :3, 3] - poses[:-1, :3, 3], axis=1).mean()
    rot = np.linalg.norm(poses[1:, :3, :3] - poses[:-1, :3, :3], axis=(1, 2)).mean()
    return trans < threshold and rot < threshold, trans, rot


def ref_smooth_poses(poses: np.ndarray, window_size: int = 5) -> np.ndarray:
    """The reference's Gaussian pose smoothing (scipy, sigma = window / 6, "nearest" edges)."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.spatial.transform import Rotation

    n = poses.shape[0]
    quats = Rotation.from_matrix(poses[:, :3, :3]).as_quat()
    for i in range(1, n):
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    sigma = window_size / 6.0
    trans = gaussian_filter1d(poses[:, :3, 3], sigma, axis=0, mode="nearest")
    quats = gaussian_filter1d(quats, sigma, axis=0, mode="nearest")
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return ref_poses_from(quats, trans)


def ref_poses_from(quats: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Poses (N, 4, 4) from scipy (x, y, z, w) quaternions and centres, pose by pose as the reference."""
    from scipy.spatial.transform import Rotation

    rots = Rotation.from_quat(quats).as_matrix()
    out = np.zeros((len(quats), 4, 4))
    for i in range(len(quats)):
        out[i] = np.eye(4)
        out[i, :3, :3], out[i, :3, 3] = rots[i], trans[i]
    return out


class RefKalmanFilter:
    """filterpy.kalman.KalmanFilter's predict / update (no control input, alpha = 1), on the 1-D state
    the reference sets (``kf.x = np.zeros(6)``): filterpy reshapes each measurement to the state's
    dimensionality and keeps prior / posterior copies, as here."""

    def __init__(self, dim_x: int, dim_z: int) -> None:
        self.x = np.zeros((dim_x, 1))
        self.P, self.Q = np.eye(dim_x), np.eye(dim_x)
        self.F, self.H = np.eye(dim_x), np.zeros((dim_z, dim_x))
        self.R = np.eye(dim_z)
        self._alpha_sq = 1.0
        self._I = np.eye(dim_x)

    def predict(self) -> None:
        self.x = self.F @ self.x
        self.P = self._alpha_sq * (self.F @ self.P @ self.F.T) + self.Q
        self.x_prior, self.P_prior = self.x.copy(), self.P.copy()

    def update(self, z: np.ndarray) -> None:
        z = np.reshape(z, (self.H.shape[0],) if self.x.ndim == 1 else (self.H.shape[0], 1))
        y = z - self.H @ self.x
        PHT = self.P @ self.H.T
        S = self.H @ PHT + self.R
        K = PHT @ np.linalg.inv(S)
        self.x = self.x + K @ y
        I_KH = self._I - K @ self.H
        self.P = I_KH @ self.P @ I_KH.T + K @ self.R @ K.T
        self.z, self.x_post, self.P_post = z.copy(), self.x.copy(), self.P.copy()


def ref_smooth_trajectory(poses: np.ndarray, window_size: int = 5) -> np.ndarray:
    """The reference's Kalman trajectory smoother, pose by pose."""
    from scipy.spatial.transform import Rotation

    n = poses.shape[0]
    kf = RefKalmanFilter(6, 3)
    kf.F = np.eye(6) + np.eye(6, k=3)  # the reference writes these out as integer literals (dt = 1.0)
    kf.H = np.eye(3, 6, dtype=np.int64)
    kf.R *= 0.1
    kf.Q *= 0.1
    kf.P *= 1.0
    quats = Rotation.from_matrix(poses[:, :3, :3]).as_quat()
    smooth_trans = ref_smooth_poses(poses, window_size)[:, :3, 3]
    filtered = np.zeros_like(poses[:, :3, 3])
    kf.x = np.zeros(6)
    kf.x[:3] = smooth_trans[0]
    filtered[0] = smooth_trans[0]
    for i in range(1, n):
        kf.predict()
        kf.update(smooth_trans[i])
        filtered[i] = kf.x[:3]
    half = window_size // 2
    smoothed_quats = np.zeros_like(quats)
    for i in range(n):
        start, end = max(0, i - half), min(n, i + half + 1)
        weights = np.exp(-0.5 * ((np.arange(start, end) - i) / (half / 2)) ** 2)
        weights /= weights.sum()
        avg = np.zeros(4)
        for j, w in zip(range(start, end), weights):
            avg += w * (-quats[j] if np.dot(quats[j], quats[i]) < 0 else quats[j])
        smoothed_quats[i] = avg / np.linalg.norm(avg)
    return ref_poses_from(smoothed_quats, filtered)


def ref_get_rays(pose: np.ndarray, h: int, w: int, focal: np.ndarray):
    """Per-pixel rays on the full grid (torch float32): origins and directions (T, h, w, 3), K (T, 3, 3)."""
    pose_t = torch.from_numpy(pose).float()
    x, y = torch.meshgrid(torch.arange(w), torch.arange(h), indexing="xy")
    x = x.flatten().unsqueeze(0).repeat(pose_t.shape[0], 1)
    y = y.flatten().unsqueeze(0).repeat(pose_t.shape[0], 1)
    cx, cy = w * 0.5, h * 0.5
    intrinsics = np.zeros((pose_t.shape[0], 3, 3))
    intrinsics[:, 0, 0] = intrinsics[:, 1, 1] = focal
    intrinsics[:, 0, 2], intrinsics[:, 1, 2], intrinsics[:, 2, 2] = cx, cy, 1.0
    f = torch.from_numpy(focal).float()
    dirs = torch.nn.functional.pad(
        torch.stack([(x - cx + 0.5) / f.unsqueeze(-1), (y - cy + 0.5) / f.unsqueeze(-1)], dim=-1),
        (0, 1),
        value=1.0,
    )
    rays_d = dirs @ pose_t[:, :3, :3].transpose(1, 2)
    rays_o = pose_t[:, :3, 3].unsqueeze(1).expand_as(rays_d)
    t = pose_t.shape[0]
    return rays_o.reshape(t, h, w, 3).float().numpy(), rays_d.reshape(t, h, w, 3).float().numpy(), intrinsics


def reference_postprocess(disparity: np.ndarray, raymap: np.ndarray) -> dict[str, np.ndarray]:
    """``postprocess_pointmap(disparity, raymap, ray_o_scale_inv=0.1, smooth_camera=True,
    smooth_method="kalman")`` of the reference."""
    depth = np.clip(1.0 / np.clip(disparity, 1e-3, 1), 0, 1e8)
    pose, fov_x, fov_y = ref_raymap_to_poses(raymap)
    focal = ref_fov_to_focal(fov_x, fov_y, raymap.shape[2] * DOWNSAMPLE, raymap.shape[3] * DOWNSAMPLE)
    static, trans, rot = ref_detect_static(pose)
    # a wider Gaussian for nearly still windows (an even width, where the reference asserts, made odd)
    if static:
        window = min(41, max(5, int(5 * (0.1 / max(trans + rot, 1e-6)))))
        pose = ref_smooth_poses(pose, window | 1)
    else:
        pose = ref_smooth_trajectory(pose, 5)
    ray_o, ray_d, K = ref_get_rays(pose, raymap.shape[2] * DOWNSAMPLE, raymap.shape[3] * DOWNSAMPLE, focal)
    return {
        "pointmap": depth[..., None] * ray_d + ray_o,
        "camera_pose": pose,
        "intrinsics": K,
        "depth": depth,
    }


# --------------------------------------------------------------------------- ours
def aether_postprocess(
    disparity: torch.Tensor, raymap: torch.Tensor, points_out: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The same outputs with aether.geometry: depth, cameras, smoothed trajectory, (T, H, W, 3) points
    (written into ``points_out``, an earlier point map, when given)."""
    depth, valid = disparity_to_depth(disparity)
    c2w, K = raymap_to_cameras(raymap, HEIGHT, WIDTH, dmax=1.0)
    smoothed = smooth_poses_kalman(c2w)
    points = depth_to_points(depth, K, smoothed, out=points_out)
    return {"pointmap": points, "camera_pose": smoothed, "intrinsics": K, "depth": depth, "valid": valid}


# --------------------------------------------------------------------------- inputs and run
def make_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decoded-model-like inputs: disparity (T, H, W) float32 in (0, 1] and a float32 raymap (T, 6, h, w)
    of a smooth trajectory with dmax 1, plus the true poses and intrinsics."""
    c2w, K, depth = make_clip(seed)
    disparity = (depth.min() / depth).astype(np.float32)
    raymap = cameras_to_raymap(torch.from_numpy(c2w), torch.from_numpy(K), HEIGHT, WIDTH, dmax=1.0)
    return disparity, raymap.float().numpy(), c2w, K


def profile_ours(disparity: torch.Tensor, raymap: torch.Tensor, top: int = 12) -> list[str]:
    """cProfile of our post-processing: the functions where its time goes, best first."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        aether_postprocess(disparity, raymap)
    prof.disable()
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(top)
    return [line for line in stream.getvalue().splitlines() if line.strip()][-top:]


def torch_uses_huge_pages() -> bool | None:
    """Whether a fresh 64 MiB torch tensor lands on transparent huge pages (None off Linux)."""

    def anon_huge_kb() -> int:
        with open("/proc/self/smaps_rollup") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("AnonHugePages"))

    try:
        before = anon_huge_kb()
    except OSError:
        return None
    probe = torch.ones(1 << 24)  # touched: 64 MiB
    grown = anon_huge_kb() - before
    del probe
    return grown >= 32 * 1024


def rounds(fns: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, list[float]], list[float]]:
    """Wall times (s) of each function per round after one warm-up call, and the 1-minute load average
    after each round. The functions run back to back in each round, in reversed order every other
    round, so a change in load or a cache left warm by one hits both sides alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    load: list[float] = []
    names = list(fns)
    for i in range(repeats):
        for name in names if i % 2 == 0 else reversed(names):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
        load.append(os.getloadavg()[0])
    return times, load


def summary(t: list[float]) -> dict[str, float | list[float]]:
    return {"median": statistics.median(t), "min": min(t), "rounds": t}


def measure(repeats: int) -> dict:
    """One setting, in this process: accuracy, side-by-side rounds, stage timings and a profile."""
    disparity_np, raymap_np, c2w_true, K_true = make_inputs()
    disparity, raymap = torch.from_numpy(disparity_np), torch.from_numpy(raymap_np)
    ref = reference_postprocess(disparity_np, raymap_np)
    ours = aether_postprocess(disparity, raymap)
    raw_c2w, raw_K = raymap_to_cameras(raymap, HEIGHT, WIDTH, dmax=1.0)
    raw_ref, _, _ = ref_raymap_to_poses(raymap_np)
    true_c2w = torch.from_numpy(c2w_true)
    accuracy = {
        "reference_rotation_error_deg_before_smoothing": rotation_error_deg(
            torch.from_numpy(raw_ref[:, :3, :3]), true_c2w[:, :3, :3]
        ),
        "aether_rotation_error_deg_before_smoothing": rotation_error_deg(
            raw_c2w[:, :3, :3], true_c2w[:, :3, :3]
        ),
        "reference_focal_rel_error": float(np.abs(ref["intrinsics"][:, 0, 0] / K_true[:, 0, 0] - 1).max()),
        "aether_focal_rel_error": float(
            (raw_K[:, 0, 0].double() / torch.from_numpy(K_true[:, 0, 0]) - 1).abs().max()
        ),
        "depth_max_abs_diff": float(np.abs(ours["depth"].numpy() - ref["depth"]).max()),
        "pointmap_shapes": [list(ref["pointmap"].shape), list(ours["pointmap"].shape)],
        "pointmap_dtypes": [str(ref["pointmap"].dtype), str(ours["pointmap"].dtype)],
    }
    del ref, ours
    kept = aether_postprocess(disparity, raymap)["pointmap"]  # a point map buffer kept across calls
    side_by_side, load = rounds(
        {
            "reference_postprocess": lambda: reference_postprocess(disparity_np, raymap_np),
            "aether_postprocess": lambda: aether_postprocess(disparity, raymap),
            "aether_postprocess_points_into_buffer": lambda: aether_postprocess(disparity, raymap, kept),
        },
        repeats,
    )
    depth = disparity_to_depth(disparity)[0]
    stages, _ = rounds(
        {
            "aether_disparity_to_depth": lambda: disparity_to_depth(disparity),
            "aether_raymap_to_cameras": lambda: raymap_to_cameras(raymap, HEIGHT, WIDTH, dmax=1.0),
            "aether_smooth_poses_kalman": lambda: smooth_poses_kalman(raw_c2w),
            "aether_depth_to_points": lambda: depth_to_points(depth, raw_K, raw_c2w),
            "reference_depth": lambda: np.clip(1.0 / np.clip(disparity_np, 1e-3, 1), 0, 1e8),
            "reference_raymap_to_poses": lambda: ref_raymap_to_poses(raymap_np),
            "reference_smooth_trajectory": lambda: ref_smooth_trajectory(raw_ref, 5),
        },
        max(3, repeats // 2),
    )
    ref_t, ours_t = side_by_side["reference_postprocess"], side_by_side["aether_postprocess"]
    kept_t = side_by_side["aether_postprocess_points_into_buffer"]
    return {
        "torch_threads": torch.get_num_threads(),
        "thp_mem_alloc_enable": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch_allocations_on_huge_pages": torch_uses_huge_pages(),
        "load_average_1min_per_round": load,
        "seconds": {name: summary(t) for name, t in {**side_by_side, **stages}.items()},
        # each round runs both back to back: the ratio within a round cancels most of the load swings
        "speedup_median_of_round_ratios": statistics.median(r / a for r, a in zip(ref_t, ours_t)),
        "speedup_of_medians": statistics.median(ref_t) / statistics.median(ours_t),
        "speedup_of_minima": min(ref_t) / min(ours_t),
        "speedup_points_into_buffer_median_of_round_ratios": statistics.median(
            r / a for r, a in zip(ref_t, kept_t)
        ),
        "accuracy": accuracy,
        "profile_aether_tottime": profile_ours(disparity, raymap),
    }


def torch_default_threads() -> int:
    """torch's intra-op thread count in a process without thread variables (a library user's default)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    probe = [sys.executable, "-c", "import torch; print(torch.get_num_threads())"]
    return int(subprocess.run(probe, env=env, check=True, capture_output=True, text=True).stdout)


def run_setting(name: str, repeats: int) -> dict:
    """``measure`` in a fresh process with the setting's environment (torch reads THP_MEM_ALLOC_ENABLE
    once, at its first allocation); torch, OpenMP and BLAS get the setting's thread count."""
    settings, threads = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | settings
    env.update(dict.fromkeys(THREAD_VARIABLES, str(threads or torch_default_threads())))
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"setting {name} failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def readme_table(settings: dict[str, dict]) -> str:
    """The table of docs/geometry.md: one row per setting."""
    lines = [
        "| setting | torch threads | load avg (1 min) | reference | ours | ratio (median of rounds) "
        "| ratio, points into a kept buffer |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in settings.items():
        ref_s = r["seconds"]["reference_postprocess"]["median"]
        ours_ms = 1e3 * r["seconds"]["aether_postprocess"]["median"]
        load = r["load_average_1min_per_round"]
        lines.append(
            f"| {name} | {r['torch_threads']} | {min(load):.1f}–{max(load):.1f} "
            f"| {ref_s:.2f} s | {ours_ms:.0f} ms "
            f"| {r['speedup_median_of_round_ratios']:.1f}× "
            f"| {r['speedup_points_into_buffer_median_of_round_ratios']:.1f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--settings", default="all", help=f"comma-separated subset of {', '.join(SETTINGS)} (default: all)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "postprocess.json")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one setting, JSON out
    args = parser.parse_args()
    if args.measure:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        print(json.dumps(measure(args.repeats)))
        return
    names = list(SETTINGS) if args.settings == "all" else args.settings.split(",")
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        parser.error(f"--settings: unknown {unknown}; expected names from {list(SETTINGS)}")
    settings = {}
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        settings[name] = run_setting(name, args.repeats)
    pixels = NUM_FRAMES * HEIGHT * WIDTH
    result = {
        "clip": {"frames": NUM_FRAMES, "height": HEIGHT, "width": WIDTH, "downsample": DOWNSAMPLE},
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.processor() or platform.machine(),
        "kernel_thp_mode": _kernel_thp_mode(),
        "repeats": args.repeats,
        "command": "python benchmarks/bench_postprocess.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "fresh_output_bytes": {
            "aether": pixels * (4 + 1 + 12),  # depth float32, valid bool, points float32 xyz
            "reference_at_least": pixels * (3 * 4 + 2 * 8 + 6 * 4 + 8 + 12 + 12 + 12 + 12),
        },
        "settings": settings,
        "readme_table": readme_table(settings),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(result["readme_table"])


def _kernel_thp_mode() -> str | None:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        return None


if __name__ == "__main__":
    main()
