"""Long and wide videos: temporal sliding windows and spatial windows, merged back into one result.

Temporal windows (AetherV1: 41 frames, stride 24) are merged one after the other:
the new window's disparity is scale-aligned to the merged result on the overlapping
frames (masked least squares), its camera translations rescaled accordingly, and its
cameras rigidly aligned (Umeyama on the camera centres and points one scene-depth
along each camera axis, which stays well posed for a static camera) -- together a
Sim(3). On the overlap, color, disparity and focal lengths are blended linearly and
rotations slerped (centres lerped).

Spatial windows cover a video whose aspect differs from the model's: after resizing
so the short side fits, windows of the model's size slide along the long side, each
scale-aligned to its neighbour on the overlap and blended back with linear ramps.

:func:`plan_windows` checks a request before any work: window and stride are positive integers,
the allowed frame counts are positive, the input's aspect is within :data:`MAX_ASPECT` of the
model's and the plan holds at most :data:`MAX_WINDOWS` windows (spatial × temporal); a degenerate
input (say a 1000×1 video, 720 000 pixels long once resized) fails with the numbers instead of
resizing for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from aether.geometry import relative_poses
from aether.geometry.alignment import align_depth_lstsq, align_poses_sim3, umeyama
from aether.geometry.framing import cover_size
from aether.geometry.smoothing import interpolate_poses

AETHERV1_FRAMES = (17, 25, 33, 41)
# the input's aspect may differ from the model's by at most this factor (8: 480x720 model, up to
# a 1:5.3 or 12:1 video; 8 spatial windows along the long side at most)
MAX_ASPECT = 8.0
# spatial × temporal windows of one reconstruction (a 2-hour 24 fps video at stride 24 is 7 200)
MAX_WINDOWS = 10_000


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, received {value!r}")
    return int(value)


@dataclass
class WindowResult:
    """One window's output: rgb (T, H, W, 3) in [0, 1], disparity (T, H, W), c2w (T, 4, 4), K (T, 3, 3)."""

    rgb: Tensor
    disparity: Tensor
    c2w: Tensor
    K: Tensor

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def frames(self, sel: slice) -> WindowResult:
        return WindowResult(self.rgb[sel], self.disparity[sel], self.c2w[sel], self.K[sel])


def temporal_window_size(
    num_frames: int, window: int = 41, allowed: tuple[int, ...] = AETHERV1_FRAMES
) -> int:
    """The largest allowed frame count <= min(num_frames, window).

    Raises ValueError naming the bound: a window below the smallest allowed count, a video shorter
    than it, or allowed counts that are not positive integers."""
    if not allowed:
        raise ValueError("allowed frame counts: expected at least one, received none")
    allowed = tuple(_positive_int(t, "allowed frame counts") for t in allowed)
    window = _positive_int(window, "window")
    if window < min(allowed):
        raise ValueError(
            f"window: expected at least {min(allowed)} frames (the model takes {sorted(allowed)}), "
            f"received window={window}"
        )
    if num_frames < min(allowed):
        raise ValueError(f"video: need at least {min(allowed)} frames, got {num_frames}")
    return max(t for t in allowed if t <= min(num_frames, window))


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Starts of ``window``-frame windows every ``stride`` frames, the last one ending at the end."""
    window = _positive_int(window, "window")
    stride = _positive_int(stride, "stride")
    if stride > window:
        raise ValueError(f"stride: expected an integer in [1, window={window}], received {stride}")
    if num_frames < window:
        raise ValueError(f"need at least {window} frames for one window, got {num_frames}")
    starts = list(range(0, num_frames - window, stride)) or [0]
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of a reconstruction go: ``size`` frames per temporal window starting at
    ``starts``; the video resized to ``canvas`` (H, W) and cut along ``axis`` at ``offsets``."""

    size: int
    starts: list[int]
    canvas: tuple[int, int]
    axis: str
    offsets: list[int]

    @property
    def count(self) -> int:
        return len(self.starts) * len(self.offsets)


def plan_windows(
    num_frames: int,
    height: int,
    width: int,
    model_height: int,
    model_width: int,
    *,
    window: int = 41,
    stride: int = 24,
    allowed: tuple[int, ...] = AETHERV1_FRAMES,
    max_aspect: float = MAX_ASPECT,
    max_windows: int = MAX_WINDOWS,
) -> WindowPlan:
    """Validate a reconstruction request and plan its windows (nothing is resized here).

    ``stride`` larger than the chosen window size is reduced to it (windows then just touch).
    Raises ValueError with the numbers for a window or stride that is not a positive integer, a
    video shorter than the smallest allowed window, an aspect beyond ``max_aspect`` times the
    model's, or more than ``max_windows`` windows."""
    height, width = _positive_int(height, "video height"), _positive_int(width, "video width")
    size = temporal_window_size(num_frames, window, allowed)
    starts = window_starts(num_frames, size, min(_positive_int(stride, "stride"), size))
    ratio = (width / height) / (model_width / model_height)
    if max(ratio, 1 / ratio) > max_aspect:
        raise ValueError(
            f"video: expected an aspect within {max_aspect:g}x of the model's {model_width}x{model_height}, "
            f"received {width}x{height} ({max(ratio, 1 / ratio):.3g}x); crop or pad it first"
        )
    canvas = cover_size(height, width, model_height, model_width)
    axis = "width" if canvas[1] > model_width else "height"
    if axis == "width":
        offsets = spatial_offsets(canvas[1], model_width)
    else:
        offsets = spatial_offsets(canvas[0], model_height)
    plan = WindowPlan(size, starts, canvas, axis, offsets)
    if plan.count > max_windows:
        raise ValueError(
            f"video: {num_frames} frames of {width}x{height} plan {len(starts)} temporal x {len(offsets)} "
            f"spatial = {plan.count} windows, expected at most {max_windows} "
            "(raise the stride or split the video)"
        )
    return plan


def _axis_points(c2w: Tensor, length: Tensor) -> Tensor:
    """(T*4, 3): camera centres and the points ``length`` along each camera axis."""
    centres = c2w[:, :3, 3]
    axes = centres[:, None, :] + length * c2w[:, :3, :3].transpose(-1, -2)  # rows: R e_k
    return torch.cat([centres[:, None, :], axes], dim=1).reshape(-1, 3)


def disparity_scale(pred: Tensor, target: Tensor) -> Tensor:
    """Scale s with s · pred ≈ target over the pixels valid (> 0, finite) in both."""
    mask = (pred > 0) & (target > 0)
    scale, _ = align_depth_lstsq(pred, target, mask, mode="scale", dims=tuple(range(-pred.ndim, 0)))
    if not torch.isfinite(scale) or scale <= 0:
        return torch.ones((), dtype=pred.dtype, device=pred.device)
    return scale


def align_to(reference: WindowResult, window: WindowResult, overlap: int) -> WindowResult:
    """Align ``window`` (its first ``overlap`` frames) to the last ``overlap`` frames of ``reference``."""
    ref, cur = reference.frames(slice(len(reference) - overlap, None)), window.frames(slice(0, overlap))
    scale = disparity_scale(cur.disparity.double(), ref.disparity.double())
    c2w = window.c2w.double().clone()
    c2w[:, :3, 3] /= scale  # depth scales by 1 / s, and so do the translations
    valid = ref.disparity > 0
    length = (1.0 / ref.disparity[valid].double()).median() if valid.any() else torch.tensor(1.0)
    length = length.to(c2w)
    _, R, t = umeyama(
        _axis_points(c2w[:overlap], length), _axis_points(ref.c2w.double(), length), with_scale=False
    )
    aligned = align_poses_sim3(c2w, 1.0, R, t)
    return WindowResult(
        window.rgb, window.disparity * scale.to(window.disparity), aligned.to(window.c2w), window.K
    )


def merge_temporal(windows: list[WindowResult], starts: list[int]) -> WindowResult:
    """Merge windows starting at ``starts`` (increasing, overlapping) into one result of all frames."""
    if len(windows) != len(starts) or not windows:
        raise ValueError(f"expected as many windows as starts, got {len(windows)} and {len(starts)}")
    merged = windows[0]
    end = starts[0] + len(merged)
    for start, window in zip(starts[1:], windows[1:]):
        overlap = end - start
        if overlap < 1:
            raise ValueError(f"windows must overlap; window at {start} starts after the merged end {end}")
        window = align_to(merged, window, overlap)
        w = torch.linspace(0, 1, overlap + 2, dtype=torch.float64)[1:-1]  # weight of the new window
        keep = len(merged) - overlap
        prev = merged.frames(slice(keep, None))

        def lerp(a: Tensor, b: Tensor, w=w) -> Tensor:
            return torch.lerp(a, b, w.to(a).reshape(-1, *[1] * (a.ndim - 1)))

        blended = WindowResult(
            lerp(prev.rgb, window.rgb[:overlap]),
            lerp(prev.disparity, window.disparity[:overlap]),
            interpolate_poses(prev.c2w.double(), window.c2w[:overlap].double(), w).to(prev.c2w),
            lerp(prev.K, window.K[:overlap]),
        )
        parts = [merged.frames(slice(0, keep)), blended, window.frames(slice(overlap, None))]
        merged = WindowResult(
            *(torch.cat([getattr(p, k) for p in parts]) for k in ("rgb", "disparity", "c2w", "K"))
        )
        end = start + len(window)
    return replace(merged, c2w=relative_poses(merged.c2w.double()).to(merged.c2w))


def spatial_offsets(length: int, window: int, min_overlap: float = 0.25) -> list[int]:
    """Offsets of windows of ``window`` pixels covering ``length``, overlapping by >= ``min_overlap``."""
    if not 0 <= min_overlap < 1:
        raise ValueError(f"min_overlap: expected a fraction in [0, 1), received {min_overlap}")
    if length < window:
        raise ValueError(f"length {length} is shorter than the window {window}")
    if length == window:
        return [0]
    count = max(2, math.ceil((length - window) / (window * (1 - min_overlap))) + 1)
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def _ramps(offsets: list[int], window: int, length: int) -> Tensor:
    """(n, length) blending weights: 1 inside a window, linear ramps across overlaps, summing to 1."""
    weights = torch.zeros(len(offsets), length, dtype=torch.float64)
    x = torch.arange(length, dtype=torch.float64)
    for i, o in enumerate(offsets):
        w = ((x >= o) & (x < o + window)).double()
        if i > 0 and offsets[i - 1] + window > o:  # rising over the overlap with the previous window
            end = offsets[i - 1] + window
            w = torch.where((x >= o) & (x < end), (x - o + 1) / (end - o + 1), w)
        if i + 1 < len(offsets) and o + window > offsets[i + 1]:
            start = offsets[i + 1]
            w = torch.where((x >= start) & (x < o + window), (o + window - x) / (o + window - start + 1), w)
        weights[i] = w
    return weights / weights.sum(0).clamp_min(1e-12)


def _mean_rotation(R: Tensor) -> Tensor:
    """Chordal mean of rotations (n, ..., 3, 3) over the first dimension."""
    U, _, Vh = torch.linalg.svd(R.sum(0))
    D = torch.ones(*U.shape[:-1], dtype=R.dtype, device=R.device)
    D[..., -1] = torch.sign(torch.linalg.det(U @ Vh))
    return U @ torch.diag_embed(D) @ Vh


def merge_spatial(windows: list[WindowResult], offsets: list[int], axis: str, length: int) -> WindowResult:
    """Merge windows placed at ``offsets`` along ``axis`` ("width" or "height") into a canvas ``length`` long.

    Disparities are scale-aligned window to window on the shared pixels; cameras (the same physical
    camera, cropped) average their rotations (chordal mean) and rescaled translations; the principal
    point is moved to canvas coordinates.
    """
    if axis not in ("width", "height"):
        raise ValueError(f"axis must be 'width' or 'height', got {axis!r}")
    dim = 2 if axis == "width" else 1  # of (T, H, W)
    size = windows[0].disparity.shape[dim]
    weights = _ramps(offsets, size, length)
    first = windows[0]
    shape = list(first.disparity.shape)
    shape[dim] = length
    disparity = torch.zeros(shape, dtype=torch.float64)
    rgb = torch.zeros([*shape, 3], dtype=torch.float64)
    scales = [torch.ones((), dtype=torch.float64)]
    for i in range(1, len(windows)):  # chain scales through adjacent (overlapping) windows
        shared = offsets[i - 1] + size - offsets[i]
        if shared <= 0:
            raise ValueError(f"spatial windows at {offsets[i - 1]} and {offsets[i]} do not overlap")
        ours, theirs = [slice(None)] * 3, [slice(None)] * 3
        ours[dim], theirs[dim] = slice(0, shared), slice(size - shared, size)
        prev = windows[i - 1].disparity[tuple(theirs)].double() * scales[-1]
        scales.append(disparity_scale(windows[i].disparity[tuple(ours)].double(), prev))
    rotations, centres, Ks = [], [], []
    for window, offset, weight, scale in zip(windows, offsets, weights, scales):
        region = [slice(None)] * 3
        region[dim] = slice(offset, offset + size)
        w = weight[offset : offset + size]
        w = w.reshape(-1, 1) if dim == 1 else w.reshape(1, -1)
        disparity[tuple(region)] += window.disparity.double() * scale * w
        rgb[tuple(region)] += window.rgb.double() * w[..., None]
        rotations.append(window.c2w[:, :3, :3].double())
        centres.append(window.c2w[:, :3, 3].double() / scale)
        K = window.K.double().clone()
        K[:, 0 if axis == "width" else 1, 2] += offset
        Ks.append(K)
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(first), 1, 1)
    c2w[:, :3, :3] = _mean_rotation(torch.stack(rotations))
    c2w[:, :3, 3] = torch.stack(centres).mean(0)
    return WindowResult(
        rgb.to(first.rgb.dtype), disparity.to(first.disparity.dtype), c2w.to(first.c2w.dtype),
        torch.stack(Ks).mean(0).to(first.K.dtype),
    )  # fmt: skip
