"""The published evaluation's model runs (AETHER's evaluation scripts), reproduced for the bench.

The bench runs the pipeline window by window through its public ``generate`` (one clip at the
model's resolution, ``mode="upstream"`` for the reference sampling policy) and merges the windows
here exactly as the reference does; the library's own windowing (``AetherPipeline.reconstruct``)
stays available as ``--protocol library``.

Video depth (``PAPER_RUNS["video-depth"]``): each frame resized (bilinear) to cover the model size
(480×720 for AetherV1; short side to 480 when wider than 3:2, else width 720), in [0, 1] float64;
temporal windows of 41 frames (shortened by 8 until they fit), stride 8, the last one ending at the
last frame; within each, spatial windows of the model size along the long side (overlaps 60 / 90
px, i.e. 1/8 of the size) merged first, then the temporal windows. Each merge scales the new
window's disparity by the float32 least-squares ratio over the overlap and blends the overlap with
``linspace(1, 0)`` weights; depth = clip(1 / disparity, 0, 100). Seed 3407 per window, 4 steps,
guidance 1, fps 12.

Camera pose (``PAPER_RUNS["camera-pose"]``): frames resized to cover the model size rounded to a
multiple of 16 and centre-cropped to it; windows of 41, stride 32, seed 42; each window's cameras
read with the paper's Algorithm 1 (origins not divided by 10, as the reference reads them) and
smoothed by :func:`aether.geometry.smoothing.smooth_window_reference`; windows merged by the
reference's Sim(3) fit on the overlap and slerp/lerp with ``linspace(1, 0)`` weights; the merged
trajectory smoothed once more by :func:`aether.geometry.smoothing.smooth_trajectory_reference`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from aether.evaluation.names import PROTOCOLS, SMOOTHING

PAPER_VAE = "slicing + tiling (diffusers' tiles: 240 x 360 px at 480 x 720)"
"""Both reference launch scripts call ``vae.enable_slicing()`` and ``vae.enable_tiling()`` before every
depth and pose run; GroupNorm statistics are per tile, so this changes every conditioning latent."""

# The model-run settings of the published protocol per benchmark.
PAPER_RUNS: dict[str, dict[str, Any]] = {
    "video-depth": {
        "policy": "upstream",
        "seed": 3407,
        "window": 41,
        "stride": 8,
        "steps": 4,
        "fps": 12.0,
        "ensemble": 1,
        "spatial_overlap": "1/8 of the model size (60 x 90 px at 480 x 720), merged before temporal",
        "blend": "linspace(1, 0), float32 least-squares disparity scale",
        "depth": "clip(1 / disparity, 0, 100)",
        "input": "bilinear resize to cover the model size",
        "vae": PAPER_VAE,
    },
    "camera-pose": {
        "policy": "upstream",
        "seed": 42,
        "window": 41,
        "stride": 32,
        "steps": 4,
        "fps": 12.0,
        "ensemble": 1,
        "smoothing": "reference",
        "cameras": "Algorithm 1 (mean ray), origins in the reference's units",
        "input": "bilinear resize to cover the model size, rounded to a multiple of 16, centre crop",
        "vae": PAPER_VAE,
    },
}
PAPER_METRICS = {"align": "scale", "mask_edge": False}
DEPTH_CAP = 100.0


def check_protocol(name: str) -> str:
    """``name`` if it is a protocol, else a ValueError listing them."""
    if name not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {', '.join(PROTOCOLS)}; received {name!r}")
    return name


# --------------------------------------------------------------------------- input frames
def reference_input(
    rgb: np.ndarray, height: int, width: int, multiple: int | None = None, crop: bool = False
) -> np.ndarray:
    """Frames uint8 (T,H,W,3) as the reference prepares them: resized (OpenCV bilinear) to cover
    ``height``×``width`` (short side to ``height`` when wider than width:height, else width to
    ``width``), each side optionally rounded to a multiple of ``multiple``, optionally centre-
    cropped to ``height``×``width``; float64 in [0, 1], (T,h,w,3)."""
    import cv2

    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb: expected (T,H,W,3) frames, received {rgb.shape}")
    h, w = rgb.shape[1:3]
    aspect = w / h
    new_h, new_w = (height, int(round(height * aspect))) if aspect > width / height else (
        int(round(width / aspect)), width)  # fmt: skip
    if multiple is not None:
        new_w, new_h = int(round(new_w / multiple) * multiple), int(round(new_h / multiple) * multiple)
    frames = np.stack([cv2.resize(f, (new_w, new_h)) for f in rgb]) / 255.0
    if crop:
        top, left = (new_h - height) // 2, (new_w - width) // 2
        frames = frames[:, top : top + height, left : left + width]
    return frames


# --------------------------------------------------------------------------- windows
def temporal_windows(num_frames: int, stride: int, window: int = 41) -> tuple[int, list[int]]:
    """(window size, starts): the size shrinks by 8 until it fits; starts every ``stride`` frames
    and a last window ending at the last frame."""
    size = window
    while size > num_frames:
        size -= 8
    if size < 1:
        raise ValueError(f"num_frames: expected at least 1 frame, received {num_frames}")
    starts = list(range(0, num_frames - size, stride))
    if not starts or starts[-1] != num_frames - size:
        starts.append(num_frames - size)
    return size, starts


def spatial_windows(height: int, width: int, size: tuple[int, int]) -> tuple[str, list[tuple[int, int]]]:
    """(axis, [(start, end)]) of the reference's spatial windows of ``size`` (h, w) over an
    ``height``×``width`` frame, with overlaps of 1/8 of the window along the long axis."""
    th, tw = size
    oh, ow = th // 8, tw // 8
    nh = 1 if height <= th else math.ceil((height - th) / (th - oh)) + 1
    nw = 1 if width <= tw else math.ceil((width - tw) / (tw - ow)) + 1
    if nh > 1 and nw > 1:
        raise ValueError(f"frames {height}x{width}: expected at most one side larger than {th}x{tw}")
    axis, length, win, n = ("width", width, tw, nw) if nw > 1 else ("height", height, th, nh)
    stride = (length - win) // (n - 1) if n > 1 else 0
    ranges = []
    for i in range(n):
        start = int(i * stride)
        end = start + win
        if end > length:
            start, end = length - win, length
        ranges.append((start, end))
    return axis, ranges


def overlap_scale(pred: np.ndarray, target: np.ndarray) -> float:
    """The reference's disparity scale on an overlap: Σ pred·target / Σ pred², both converted to
    float32 first (0 when Σ pred² = 0)."""
    p = torch.from_numpy(np.ascontiguousarray(pred)).float().reshape(1, -1, pred.shape[-1])
    t = torch.from_numpy(np.ascontiguousarray(target)).float().reshape(1, -1, pred.shape[-1])
    num, den = torch.sum(p * t, (1, 2)), torch.sum(p * p, (1, 2))
    return float(num / den) if float(den) != 0 else 0.0


def merge_disparity(windows: list[np.ndarray], ranges: list[tuple[int, int]], axis: int) -> np.ndarray:
    """Merge disparity windows (arrays whose ``axis`` spans ``ranges``) in order: each scaled to the
    merged result on the overlap (:func:`overlap_scale`) and blended there with weights
    ``linspace(1, 0)`` for the merged part; float64 once merged."""
    merged = windows[0]
    for k in range(1, len(windows)):
        start, end = ranges[k]
        prev_end = ranges[k - 1][1]
        overlap = prev_end - start
        take = lambda a, sl: a[(slice(None),) * axis + (sl,)]
        new = overlap_scale(take(windows[k], slice(None, overlap)), take(merged, slice(-overlap, None)))
        new = new * windows[k]
        shape = list(merged.shape)
        shape[axis] = end
        out = np.ones(shape)
        weight = np.linspace(1, 0, overlap).reshape([-1 if d == axis else 1 for d in range(merged.ndim)])
        out[(slice(None),) * axis + (slice(None, start),)] = take(merged, slice(None, start))
        out[(slice(None),) * axis + (slice(prev_end, None),)] = take(new, slice(prev_end - start, None))
        out[(slice(None),) * axis + (slice(start, prev_end),)] = take(
            merged, slice(start, prev_end)
        ) * weight + take(new, slice(None, overlap)) * (1 - weight)
        merged = out
    return merged


def protocol_depth(
    run_window: Callable[[np.ndarray], np.ndarray],
    frames: np.ndarray,
    size: tuple[int, int],
    stride: int = 8,
    window: int = 41,
) -> np.ndarray:
    """Depth (T,h,w) of prepared frames (T,h,w,3) with the reference's windows and merges;
    ``run_window(frames (t, *size, 3))`` returns that window's disparity (t, *size)."""
    num = frames.shape[0]
    length, starts = temporal_windows(num, stride, window)
    axis, ranges = spatial_windows(frames.shape[1], frames.shape[2], size)
    along = 2 if axis == "width" else 1
    temporal = []
    for t0 in starts:
        clip = frames[t0 : t0 + length]
        parts = []
        for a, b in ranges:
            crop = clip[:, :, a:b] if axis == "width" else clip[:, a:b]
            crop = crop[:, : size[0]] if axis == "width" else crop[:, :, : size[1]]
            parts.append(run_window(crop))
        temporal.append(merge_disparity(parts, ranges, along))
    disparity = merge_disparity(temporal, [(t0, t0 + length) for t0 in starts], 0)
    with np.errstate(divide="ignore"):
        return np.clip(1.0 / disparity, 0, DEPTH_CAP)


# --------------------------------------------------------------------------- camera pose
def _sim3_fit(src: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """The reference's window alignment of [R|t] (n,3,4) ``src`` onto ``tgt``: rotation from the SVD
    of the mean Rᵀ_tgt R_src, scale and offset from the rows tᵀR_src by covariance matching."""
    r_src, r_tgt = src[:, :, :3], tgt[:, :, :3]
    U, _, Vh = torch.linalg.svd(torch.bmm(r_tgt.transpose(2, 1), r_src).mean(0))
    rot = Vh.mH @ U.t()
    a = torch.bmm(src[:, None, :, 3], r_src)[:, 0]
    b = torch.bmm(tgt[:, None, :, 3], r_src)[:, 0]
    a_mu, b_mu = a.mean(0, keepdim=True), b.mean(0, keepdim=True)
    if a.shape[0] > 1:
        ac, bc = a - a_mu, b - b_mu
        scale = (ac * bc).mean() / (ac**2).mean().clamp(1e-9)
    else:
        scale = 1.0
    return rot[None], b_mu - scale * a_mu, scale


def _sim3_apply(src: torch.Tensor, rot: torch.Tensor, offset: torch.Tensor, scale: Any) -> torch.Tensor:
    """[R|t] (n,3,4) -> [R·rot | R·offset + s·t] (the reference's application of :func:`_sim3_fit`)."""
    r_src = src[:, :, :3]
    n = src.shape[0]
    rotation = torch.bmm(r_src, rot.expand(n, 3, 3))
    t = torch.bmm(r_src, offset[..., None].repeat(n, 1, 1))[..., 0] + src[:, :, 3] * scale
    return torch.cat([rotation, t[..., None]], -1)


def _slerp_reference(q1: torch.Tensor, q2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Slerp of quaternions (n,4) at t (n,) on the shorter arc; normalised lerp when the dot
    product exceeds 0.9995 (the reference's threshold)."""
    dot = (q1 * q2).sum(-1)
    q2 = torch.where(dot[:, None] < 0, -q2, q2)
    dot = dot.abs()
    lerp = q1 + t[:, None] * (q2 - q1)
    lerp = lerp / torch.linalg.vector_norm(lerp, dim=-1, keepdim=True)
    theta0 = torch.arccos(dot.clamp(max=1.0))
    sin0 = torch.sin(theta0)
    theta = theta0 * t
    safe = torch.where(sin0 > 0, sin0, torch.ones_like(sin0))
    s1 = torch.sin(theta) / safe
    s0 = torch.cos(theta) - dot * s1
    slerp = s0[:, None] * q1 + s1[:, None] * q2
    return torch.where((dot > 0.9995)[:, None], lerp, slerp)


def blend_pose_windows(windows: list[torch.Tensor], starts: list[int]) -> torch.Tensor:
    """Merge per-window cameras (n,4,4) float64 starting at ``starts`` into one trajectory
    (T,4,4): each window Sim(3)-fitted to the merged one on the overlap, the overlap interpolated
    (slerp, lerp) with weight ``linspace(1, 0)`` on the merged poses."""
    from aether.geometry.smoothing import matrix_to_quaternion, quaternion_xyzw_to_matrix

    merged = windows[0][:, :3, :4]
    end = starts[0] + windows[0].shape[0]
    for start, win in zip(starts[1:], windows[1:]):
        overlap = end - start
        cur = win[:, :3, :4]
        aligned = _sim3_apply(cur, *_sim3_fit(cur[:overlap], merged[-overlap:]))
        w = torch.linspace(1, 0, overlap, dtype=torch.float64)
        prev = merged[start : start + overlap]
        q = _slerp_reference(
            matrix_to_quaternion(prev[:, :, :3]), matrix_to_quaternion(aligned[:overlap, :, :3]), 1 - w
        )
        blended = torch.cat(
            [
                quaternion_xyzw_to_matrix(q),
                (w[:, None] * prev[:, :, 3] + (1 - w[:, None]) * aligned[:overlap, :, 3])[..., None],
            ],
            -1,
        )
        merged = torch.cat([merged[: merged.shape[0] - overlap], blended, aligned[overlap:]])
        end = start + win.shape[0]
    out = torch.zeros(merged.shape[0], 4, 4, dtype=merged.dtype)
    out[:, :3] = merged
    out[:, 3, 3] = 1.0
    return out


def protocol_poses(
    run_window: Callable[[int, int], torch.Tensor],
    num_frames: int,
    stride: int = 32,
    window: int = 41,
    smoothing: str = "reference",
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The reference's camera trajectory (T,4,4) float64 from per-window cameras:
    ``run_window(start, size)`` returns the window's raw cameras (size,4,4); each window smoothed
    (``smoothing="reference"``) or not (``"none"``), merged by :func:`blend_pose_windows`, and the
    merged trajectory smoothed again. Also returns each window's smoothing report."""
    from aether.geometry.smoothing import smooth_trajectory_reference, smooth_window_reference

    if smoothing not in SMOOTHING:
        raise ValueError(f"smoothing: expected one of {', '.join(SMOOTHING)}; received {smoothing!r}")
    size, starts = temporal_windows(num_frames, stride, window)
    cams, reports = [], []
    for start in starts:
        c2w = run_window(start, size).to(torch.float64)
        if smoothing == "reference":
            c2w, info = smooth_window_reference(c2w)
            reports.append({"start": start, **info})
        cams.append(c2w)
    merged = blend_pose_windows(cams, starts)
    if smoothing == "reference":
        merged = smooth_trajectory_reference(merged, 5)
    return merged, reports


# --------------------------------------------------------------------------- with the pipeline
def _clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """(t,h,w,3) float in [0, 1] -> (t,3,h,w) float32 in [-1, 1], as the pipeline takes videos."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() * 2 - 1


def run_depth(pipe: Any, rgb: np.ndarray, settings: dict[str, Any]) -> np.ndarray:
    """Video depth of frames uint8 (T,H,W,3) with the reference's model run (``settings`` as in
    ``PAPER_RUNS["video-depth"]``): float64 (T,h,w) at the prepared resolution."""
    H, W = pipe.height, pipe.width
    frames = reference_input(rgb, H, W)

    def run_window(clip: np.ndarray) -> np.ndarray:
        gen = torch.Generator(device=pipe.device).manual_seed(int(settings["seed"]))
        out = pipe.generate(
            "reconstruction", video=_clip_tensor(clip), num_frames=clip.shape[0], fps=settings["fps"],
            num_inference_steps=settings["steps"], generator=gen, mode=settings["policy"],
            decode_color=False, num_samples=settings["ensemble"],
        )  # fmt: skip
        return out.disparity.numpy()

    return protocol_depth(run_window, frames, (H, W), settings["stride"], settings["window"])


def run_poses(
    pipe: Any, rgb: np.ndarray, settings: dict[str, Any]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Camera poses c2w (T,4,4) of frames uint8 (T,H,W,3) with the reference's model run and
    smoothing (``settings`` as in ``PAPER_RUNS["camera-pose"]``), and the per-window reports."""
    from aether.geometry import RAY_ORIGIN_SCALE, raymap_to_cameras

    H, W = pipe.height, pipe.width
    frames = reference_input(rgb, H, W, multiple=16, crop=True)

    def run_window(start: int, size: int) -> torch.Tensor:
        gen = torch.Generator(device=pipe.device).manual_seed(int(settings["seed"]))
        out = pipe.generate(
            "reconstruction", video=_clip_tensor(frames[start : start + size]), num_frames=size,
            fps=settings["fps"], num_inference_steps=settings["steps"], generator=gen,
            mode=settings["policy"], decode_color=False, num_samples=settings["ensemble"],
        )  # fmt: skip
        c2w, _ = raymap_to_cameras(out.raymap.double(), H, W, method="mean_ray")
        c2w[:, :3, 3] *= RAY_ORIGIN_SCALE  # the reference reads origins without the 1/10
        return c2w

    c2w, reports = protocol_poses(
        run_window, frames.shape[0], settings["stride"], settings["window"], settings["smoothing"]
    )
    return c2w.numpy(), reports
