"""Clip rendering: shading the rays of a scene's frames, whole clips, and clips as a training batch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aether.data.batch import ClipBatch
from aether.data.synthetic.cameras import camera_trajectory
from aether.data.synthetic.raycast import SHELL, Scene, _local_normals, _rotate_z
from aether.data.synthetic.scenes import _CLASS_ID, CLASSES, build_scene
from aether.data.synthetic.textures import _albedo, _face_id
from aether.data.synthetic_names import TRAJECTORIES

SOURCE_FPS = (24.0, 30.0, 12.0, 15.0, 10.0)


@dataclass
class SyntheticClip:
    """One rendered clip. Arrays are numpy; T frames of H×W pixels.

    rgb uint8 (T,H,W,3); depth float32 (T,H,W) OpenCV z-depth, 0 where no surface (sky);
    K float64 (T,3,3); c2w float64 (T,4,4) OpenCV camera-to-world in the scene's world frame;
    fps float; instance int32 (T,H,W) (0 = none); semantic int32 (T,H,W) (ids of ``classes``);
    dynamic bool (T,H,W) (pixels of moving objects); untextured bool (T,) frames without usable
    texture (a lights-out event); meta: generation parameters.
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    fps: float
    instance: np.ndarray
    semantic: np.ndarray
    dynamic: np.ndarray
    classes: dict[int, str]
    untextured: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])


def render_frames(
    scene: Scene,
    c2w: torch.Tensor,
    K: torch.Tensor,
    times: torch.Tensor,
    height: int,
    width: int,
    dark: torch.Tensor | None = None,
    chunk: int = 1 << 16,
) -> dict[str, torch.Tensor]:
    """Render T frames of ``scene``, as many frames at once as fit in ``chunk`` rays.

    c2w (T,4,4) OpenCV camera-to-world, K (T,3,3) pixels, times (T,) seconds, dark (T,) bool frames
    rendered without light (uniform colour). Returns rgb uint8 (T,H,W,3), depth (T,H,W) z-depth
    (0 = nothing hit), instance, semantic (T,H,W) long, dynamic (T,H,W) bool.
    """
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise ValueError(f"c2w must be (T,4,4), got {tuple(c2w.shape)}")
    if K.shape != (c2w.shape[0], 3, 3) or times.shape != (c2w.shape[0],):
        raise ValueError(
            f"K must be (T,3,3) and times (T,) with T={c2w.shape[0]}, "
            f"got {tuple(K.shape)}, {tuple(times.shape)}"
        )
    dtype, device = scene.size.dtype, scene.size.device
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    pix = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3)
    c2w, K, times = (x.to(dtype=dtype, device=device) for x in (c2w, K, times))
    dark = torch.zeros(len(times), dtype=torch.bool) if dark is None else dark.to(torch.bool)
    step = max(1, chunk // pix.shape[0])
    parts = [
        _shade_frames(scene, c2w[s : s + step], K[s : s + step], times[s : s + step], pix, dark[s : s + step])
        for s in range(0, len(times), step)
    ]
    shape = (len(times), height, width)
    return {key: torch.cat([p[key] for p in parts]).reshape(*shape, -1).squeeze(-1) for key in parts[0]}


def _shade_frames(
    scene: Scene,
    c2w: torch.Tensor,
    K: torch.Tensor,
    times: torch.Tensor,
    pix: torch.Tensor,
    dark: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Cast and shade the rays of F frames: pix (P,3) homogeneous pixels -> per-pixel outputs (F,P,...)."""
    dirs = pix @ torch.linalg.inv(K).transpose(-1, -2) @ c2w[:, :3, :3].transpose(-1, -2)  # (F,P,3), unit z
    origins = c2w[:, :3, 3]
    t, index = scene.intersect(origins, dirs, times)  # (F,P)
    hit = index >= 0
    safe = index.clamp(min=0)
    depth = torch.where(hit, t, torch.zeros_like(t))
    points = origins[:, None] + depth[..., None] * dirs
    centers, yaws = scene.poses_at(times)  # (F,N,3), (F,N)
    frame = torch.arange(len(times), device=pix.device)[:, None].expand_as(safe)
    yaw = yaws[frame, safe]
    local = _rotate_z(points - centers[frame, safe], -yaw)  # (F,P,3)
    flat = safe.reshape(-1)
    local_normal = _local_normals(local.reshape(-1, 3), scene.kind[flat], scene.size[flat])
    normal = _rotate_z(local_normal.reshape(local.shape), yaw)
    albedo = _albedo(scene, flat, local.reshape(-1, 3), _face_id(local_normal)).reshape(local.shape)
    view = -dirs / dirs.norm(dim=-1, keepdim=True)
    lambert = (normal * scene.light).sum(-1).clamp(min=0)
    shade = 0.3 + 0.55 * lambert + 0.25 * (normal * view).sum(-1).abs()
    color = albedo * shade[..., None]
    sky_t = -view[..., 2]
    sky = torch.stack([0.55 - 0.2 * sky_t, 0.7 - 0.15 * sky_t, 0.95 + 0.0 * sky_t], -1)
    color = torch.where(hit[..., None], color, sky)
    color = torch.where(dark.to(color.device)[:, None, None], torch.full_like(color, 0.05), color)
    shell_class = torch.where(
        normal[..., 2] > 0.5,
        _CLASS_ID["floor"],
        torch.where(normal[..., 2] < -0.5, _CLASS_ID["ceiling"], _CLASS_ID["wall"]),
    )
    semantic = torch.where(scene.kind[safe] == SHELL, shell_class, scene.semantic[safe])
    return {
        "rgb": (color.clamp(0, 1) * 255 + 0.5).to(torch.uint8),
        "depth": depth,
        "instance": torch.where(hit, scene.instance[safe], 0),
        "semantic": torch.where(hit, semantic, 0),
        "dynamic": hit & scene.dynamic[safe],
    }


def render_clip(
    seed: int,
    *,
    num_frames: int = 41,
    height: int = 64,
    width: int = 96,
    trajectory: str | Sequence[str] | None = None,
    scene: str | None = None,
    fps: float | None = None,
    blackout: bool = False,
    c2w: np.ndarray | None = None,
    device: torch.device | str | None = None,
) -> SyntheticClip:
    """Render one synthetic RGB-D clip, deterministic from ``seed``.

    trajectory: one of TRAJECTORIES, a sequence of them (one drawn from the seed) or None (drawn
    among all); scene: one of SCENES or None;
    fps: source frame rate (None draws from 24, 30, 12, 15, 10). ``blackout`` switches the lights off
    for a run of frames (uniform images, flagged in ``untextured``; geometry stays exact). ``c2w``
    (num_frames,4,4) renders these camera poses instead of the drawn trajectory; every draw is made
    all the same, so the scene, intrinsics and fps are those of the seed's own clip (e.g. the same
    view under a mirrored motion, :func:`aether.geometry.mirror_poses`).
    """
    if num_frames < 1 or height < 8 or width < 8:
        raise ValueError(f"need num_frames >= 1 and height, width >= 8, got {num_frames}, {height}x{width}")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be positive, got {fps}")
    rng = np.random.default_rng([int(seed), 2])
    world = build_scene(seed, scene)
    kinds = (trajectory,) if isinstance(trajectory, str) else tuple(trajectory or TRAJECTORIES)
    if not kinds or any(k not in TRAJECTORIES for k in kinds):
        raise ValueError(
            f"trajectory must be among {TRAJECTORIES} (a name, a list or None), got {trajectory!r}"
        )
    kind = kinds[int(rng.integers(0, len(kinds)))] if len(kinds) > 1 or trajectory is None else kinds[0]
    rate = float(SOURCE_FPS[int(rng.integers(0, len(SOURCE_FPS)))]) if fps is None else float(fps)
    times = np.arange(num_frames) / rate
    drawn = camera_trajectory(kind, world.path, times, rng)
    given = c2w is not None
    if not given:
        c2w = drawn
    else:
        c2w = np.asarray(c2w, dtype=np.float64)
        if c2w.shape != (num_frames, 4, 4) or not np.isfinite(c2w).all():
            raise ValueError(f"c2w: expected finite poses of shape ({num_frames}, 4, 4), got {c2w.shape}")
    fov = math.radians(rng.uniform(55.0, 75.0))
    focal = 0.5 * width / math.tan(0.5 * fov)
    K = np.array(
        [
            [focal, 0.0, (width - 1) / 2 + rng.uniform(-0.02, 0.02) * width],
            [0.0, focal, (height - 1) / 2 + rng.uniform(-0.02, 0.02) * height],
            [0.0, 0.0, 1.0],
        ]
    )
    K = np.broadcast_to(K, (num_frames, 3, 3)).copy()
    untextured = np.zeros(num_frames, dtype=bool)
    if blackout and num_frames > 1:
        length = max(1, num_frames // 5)
        first = int(rng.integers(1, max(2, num_frames - length + 1)))
        untextured[first : first + length] = True
    frames = render_frames(
        world.to(device=device, dtype=torch.float32),
        torch.from_numpy(c2w),
        torch.from_numpy(K),
        torch.from_numpy(times),
        height,
        width,
        dark=torch.from_numpy(untextured),
    )
    meta = {
        "generator": "aether.data.synthetic",
        "seed": int(seed),
        "scene": world.name,
        "trajectory": "given" if given else kind,
        "fps": rate,
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "fov_deg": math.degrees(fov),
        "blackout": bool(blackout),
    }
    return SyntheticClip(
        rgb=frames["rgb"].cpu().numpy(),
        depth=frames["depth"].cpu().numpy().astype(np.float32),
        K=K,
        c2w=c2w,
        fps=rate,
        instance=frames["instance"].cpu().numpy().astype(np.int32),
        semantic=frames["semantic"].cpu().numpy().astype(np.int32),
        dynamic=frames["dynamic"].cpu().numpy(),
        classes=dict(CLASSES),
        untextured=untextured,
        meta=meta,
    )


def clips_batch(clips: Sequence[SyntheticClip], keys: Sequence[str] | None = None) -> ClipBatch:
    """Rendered clips of equal shape as one batch in the layout the DataModule yields
    (:class:`~aether.data.batch.ClipBatch`): video (B,T,3,H,W) float in [-1,1], depth (B,T,H,W),
    valid, K (B,T,3,3), c2w (B,T,4,4) relative to each clip's first frame, fps and dmax (B,), key
    (``keys``, default clip0, clip1, ...)."""
    from aether.geometry import relative_poses
    from aether.modalities.disparity import clip_dmax

    rgb = torch.from_numpy(np.stack([c.rgb for c in clips]))
    depth = torch.from_numpy(np.stack([c.depth for c in clips])).float()
    valid = depth > 0
    return {
        "video": rgb.float().div(127.5).sub(1).permute(0, 1, 4, 2, 3),
        "depth": depth,
        "valid": valid,
        "K": torch.from_numpy(np.stack([c.K for c in clips])).float(),
        "c2w": relative_poses(torch.from_numpy(np.stack([c.c2w for c in clips]))).float(),
        "fps": torch.tensor([float(c.fps) for c in clips]),
        "dmax": clip_dmax(depth, valid),
        "key": list(keys) if keys is not None else [f"clip{i}" for i in range(len(clips))],
    }
