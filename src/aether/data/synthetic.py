"""A small synthetic 4D world: analytic scenes rendered to RGB-D video with exact geometry.

Scenes are made of analytic primitives (ground planes, boxes, inside-out boxes for room shells,
spheres, vertical cylinders) arranged as rooms, corridors and streets. Surfaces carry procedural
solid textures (value noise, checkers, stripes, gradients) with Lambertian shading. Objects of the
classes "person", "car" and "animal" move on their own paths; everything else is static.

Rays are cast in torch, vectorised over pixels and primitives. Ray directions are
``R · K⁻¹ · [u, v, 1]`` (unit camera z), so the ray parameter of the first hit *is* the OpenCV
z-depth. Pixel centres sit at integer coordinates (u = column, v = row).

World frame: z up, ground at z = 0. Cameras are OpenCV (x right, y down, z forward) and ``c2w``
maps camera to world coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aether.data.synthetic_names import SCENES, TRAJECTORIES

__all__ = [
    "CLASSES",
    "DYNAMIC_CLASSES",
    "SCENES",
    "TRAJECTORIES",
    "Scene",
    "SyntheticClip",
    "build_scene",
    "camera_trajectory",
    "clips_batch",
    "look_at",
    "render_clip",
    "render_frames",
]

CLASSES: dict[int, str] = {
    0: "void",
    1: "floor",
    2: "wall",
    3: "ceiling",
    4: "road",
    5: "sidewalk",
    6: "building",
    7: "box",
    8: "pillar",
    9: "ball",
    10: "person",
    11: "car",
    12: "animal",
}
_CLASS_ID = {name: idx for idx, name in CLASSES.items()}
DYNAMIC_CLASSES = ("person", "car", "animal")
SOURCE_FPS = (24.0, 30.0, 12.0, 15.0, 10.0)

# primitive kinds
PLANE, BOX, SHELL, SPHERE, CYLINDER = 0, 1, 2, 3, 4
# texture patterns
NOISE, CHECKER, STRIPES, GRADIENT = 0, 1, 2, 3
_EPS = 1e-4
HORIZON = 1000.0
"""Farthest hit in scene units: rays that meet the ground plane beyond it see the sky (depth 0, void), so
a grazing ray never writes a depth past the shard schema's 10 km bound."""


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


@dataclass
class Scene:
    """Analytic primitives, one row each (N primitives).

    kind (N,) long; offset (N,3) part offset in its object's frame; yaw (N,) part yaw in the object
    frame; size (N,3): box/shell half extents, sphere (r, r, r), cylinder (r, r, half height),
    plane unused; object motion: center (N,3), yaw0 (N,), velocity (N,3), radius (N,), omega (N,)
    rad/s, phase (N,), so that at time s the object sits at
    ``center + velocity·s + radius·(cos(omega·s+phase), sin(omega·s+phase), 0)`` with heading
    ``yaw0 + omega·s``. instance (N,), semantic (N,) long; texture: pattern (N,), scale (N,),
    color_a (N,3), color_b (N,3) in [0,1], tex_seed (N,) long.
    """

    kind: torch.Tensor
    offset: torch.Tensor
    yaw: torch.Tensor
    size: torch.Tensor
    center: torch.Tensor
    yaw0: torch.Tensor
    velocity: torch.Tensor
    radius: torch.Tensor
    omega: torch.Tensor
    phase: torch.Tensor
    instance: torch.Tensor
    semantic: torch.Tensor
    pattern: torch.Tensor
    scale: torch.Tensor
    color_a: torch.Tensor
    color_b: torch.Tensor
    tex_seed: torch.Tensor
    light: torch.Tensor
    sky: bool
    name: str
    path: dict[str, Any]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Scene:
        values = {}
        for key, value in self.__dict__.items():
            if isinstance(value, torch.Tensor):
                value = value.to(device=device, dtype=dtype if value.is_floating_point() else None)
            values[key] = value
        return Scene(**values)

    @property
    def dynamic(self) -> torch.Tensor:
        """(N,) bool: primitives that belong to moving objects."""
        return (self.velocity.abs().sum(-1) > 0) | (self.omega != 0)

    def poses_at(self, time: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World centres (...,N,3) and yaws (...,N) of every primitive at ``time`` (seconds, a float
        or a tensor (...,), e.g. (F,) for F frames)."""
        time = torch.as_tensor(time, dtype=self.size.dtype, device=self.size.device)
        angle = self.omega * time[..., None] + self.phase
        circle = torch.stack([torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)], -1)
        origin = self.center + self.velocity * time[..., None, None] + self.radius[:, None] * circle
        heading = self.yaw0 + self.omega * time[..., None]
        return origin + _rotate_z(self.offset, heading), heading + self.yaw

    def intersect(
        self, origin: torch.Tensor, dirs: torch.Tensor, time: float | torch.Tensor, chunk: int = 1 << 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """First hit along rays ``origin + t·dirs``, for one frame or a batch of F frames.

        origin (3,) or (F,3), dirs (R,3) or (F,R,3), time float or (F,). Returns t (R,) / (F,R)
        (inf where nothing is hit) and the index of the primitive hit, same shape (-1 for none).
        """
        single = origin.ndim == 1
        origins, dirs = (origin[None], dirs[None]) if single else (origin, dirs)
        times = torch.as_tensor(time, dtype=self.size.dtype, device=self.size.device).reshape(-1)
        centers, yaws = self.poses_at(times)  # (F,N,3), (F,N)
        o_local = _rotate_z(origins[:, None, :] - centers, -yaws)[:, None]  # (F,1,N,3)
        rays = max(1, chunk // origins.shape[0])
        ts, idx = [], []
        for start in range(0, dirs.shape[1], rays):
            d = dirs[:, start : start + rays, None, :]  # (F,R,1,3)
            d_local = _rotate_z(d, -yaws[:, None, :])  # (F,R,N,3)
            t, i = _hit_distance(self.kind, self.size, o_local, d_local).min(dim=-1)
            t = torch.where(t <= HORIZON, t, torch.inf)
            ts.append(t)
            idx.append(torch.where(torch.isinf(t), torch.full_like(i, -1), i))
        t, index = torch.cat(ts, dim=1), torch.cat(idx, dim=1)
        return (t[0], index[0]) if single else (t, index)

    def surface_distance(self, points: torch.Tensor, time: float) -> torch.Tensor:
        """Unsigned distance (M,N) from world points (M,3) to each primitive's analytic surface."""
        centers, yaws = self.poses_at(time)
        p = _rotate_z(points[:, None, :] - centers[None], -yaws[None].expand(points.shape[0], -1))
        size = self.size[None].expand_as(p)
        q = p.abs() - size
        box = q.clamp(min=0).norm(dim=-1) + q.amax(-1).clamp(max=0)
        sphere = p.norm(dim=-1) - size[..., 0]
        radial = p[..., :2].norm(dim=-1) - size[..., 0]
        axial = p[..., 2].abs() - size[..., 2]
        cyl = torch.stack([radial, axial], -1)
        cylinder = cyl.clamp(min=0).norm(dim=-1) + cyl.amax(-1).clamp(max=0)
        plane = p[..., 2]
        kind = self.kind[None].expand_as(box)
        dist = torch.where(kind == SPHERE, sphere, box)
        dist = torch.where(kind == CYLINDER, cylinder, dist)
        dist = torch.where(kind == PLANE, plane, dist)
        return dist.abs()


def _local_normals(p: torch.Tensor, kind: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Outward (inward for shells) normals (M,3) at local surface points p (M,3) of primitives of
    ``kind`` (M,) and ``size`` (M,3)."""
    ratio = p.abs() / size.clamp(min=1e-6)
    face = torch.nn.functional.one_hot(ratio.argmax(-1), 3).to(p.dtype) * torch.sign(p)
    face = torch.where((kind == SHELL)[:, None], -face, face)
    sphere = p / p.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    cap = (p[:, 2].abs() - size[:, 2]).abs() < 1e-3 * size[:, 2].clamp(min=1.0)
    side = torch.cat([p[:, :2], torch.zeros_like(p[:, 2:])], -1)
    side = side / side.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    top = torch.zeros_like(p)
    top[:, 2] = torch.sign(p[:, 2])
    cylinder = torch.where(cap[:, None], top, side)
    up = torch.zeros_like(p)
    up[:, 2] = 1.0
    n = torch.where((kind == SPHERE)[:, None], sphere, face)
    n = torch.where((kind == CYLINDER)[:, None], cylinder, n)
    return torch.where((kind == PLANE)[:, None], up, n)


def _rotate_z(v: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (...,3) about +z by ``yaw`` (broadcast against v[..., 0])."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    x, y, z = v.unbind(-1)
    x, y = c * x - s * y, s * x + c * y
    return torch.stack(torch.broadcast_tensors(x, y, z), -1)


def _hit_distance(kind: torch.Tensor, size: torch.Tensor, o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Ray parameter of the first hit for every ray × primitive, each kind computed on its own columns.

    kind (N,), size (N,3), o (...,1,N,3) local ray origins, d (...,R,N,3) local directions
    -> (...,R,N), inf = miss.
    """
    d = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t = torch.full(d.shape[:-1], float("inf"), dtype=d.dtype, device=d.device)
    for code, hit in _HITS.items():
        columns = (kind == code).nonzero()[:, 0]
        if len(columns):
            t[..., columns] = hit(o[..., columns, :], d[..., columns, :], size[columns])
    return t


def _hit_slab(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t1 = (-size - o) / d
    t2 = (size - o) / d
    tnear = torch.minimum(t1, t2).amax(-1)
    tfar = torch.maximum(t1, t2).amin(-1)
    return tnear, torch.where(tfar >= tnear, tfar, -torch.inf)


def _hit_box(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    tnear, tfar = _hit_slab(o, d, size)
    return torch.where((tfar >= tnear) & (tnear > _EPS), tnear, torch.inf)


def _hit_shell(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Inside of a box: the exit point of a ray starting inside."""
    tnear, tfar = _hit_slab(o, d, size)
    return torch.where((tnear < 0) & (tfar > _EPS), tfar, torch.inf)


def _hit_sphere(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    r = size[:, 0]
    a = (d * d).sum(-1)
    b = (d * o).sum(-1)
    c = (o * o).sum(-1) - r * r
    disc = b * b - a * c
    root = disc.clamp(min=0).sqrt()
    near, far = (-b - root) / a, (-b + root) / a
    t = torch.where(near > _EPS, near, torch.where(far > _EPS, far, torch.inf))
    return torch.where(disc >= 0, t, torch.inf)


def _hit_cylinder(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Vertical capped cylinders: the side wall, then the caps."""
    r, half = size[:, 0], size[:, 2]
    a = (d[..., :2] ** 2).sum(-1)
    b = (d[..., :2] * o[..., :2]).sum(-1)
    c = (o[..., :2] ** 2).sum(-1) - r * r
    disc = b * b - a * c
    t_side = (-b - disc.clamp(min=0).sqrt()) / a.clamp(min=1e-20)
    z_side = o[..., 2] + t_side * d[..., 2]
    t_side = torch.where((disc >= 0) & (t_side > _EPS) & (z_side.abs() <= half), t_side, torch.inf)
    t_cap = (torch.where(o[..., 2] > 0, half, -half) - o[..., 2]) / d[..., 2]
    xy = o[..., :2] + t_cap[..., None] * d[..., :2]
    t_cap = torch.where((t_cap > _EPS) & ((xy**2).sum(-1) <= r * r), t_cap, torch.inf)
    return torch.minimum(t_side, t_cap)


def _hit_plane(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Horizontal planes through the local origin."""
    t = -o[..., 2] / d[..., 2]
    return torch.where(t > _EPS, t, torch.inf)


_HITS = {BOX: _hit_box, SHELL: _hit_shell, SPHERE: _hit_sphere, CYLINDER: _hit_cylinder, PLANE: _hit_plane}


# ---------------------------------------------------------------------------------------------
# procedural textures


def _hash(ix: torch.Tensor, iy: torch.Tensor, iz: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    h = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791) ^ (seed * 2654435761)
    h = h & 0x7FFFFFFF
    h = ((h >> 13) ^ h) * 1274126177 & 0x7FFFFFFF
    h = ((h >> 16) ^ h) * 668265263 & 0x7FFFFFFF
    return (h & 0xFFFF).to(torch.float32) / 65535.0


def value_noise(p: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Smooth lattice value noise in [0,1] at points p (M,3) with per-point seeds (M,) long."""
    base = torch.floor(p)
    f = p - base
    f = f * f * (3 - 2 * f)
    i = base.long()
    out = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
    for corner in range(8):
        ox, oy, oz = corner & 1, (corner >> 1) & 1, (corner >> 2) & 1
        w = (
            (f[:, 0] if ox else 1 - f[:, 0])
            * (f[:, 1] if oy else 1 - f[:, 1])
            * (f[:, 2] if oz else 1 - f[:, 2])
        )
        out = out + w * _hash(i[:, 0] + ox, i[:, 1] + oy, i[:, 2] + oz, seed).to(p.dtype)
    return out


def _fbm(p: torch.Tensor, seed: torch.Tensor, octaves: int = 3) -> torch.Tensor:
    total, amp, norm = torch.zeros_like(p[:, 0]), 1.0, 0.0
    for octave in range(octaves):
        total = total + amp * value_noise(p * (2.0**octave), seed + octave)
        norm += amp
        amp *= 0.5
    return total / norm


def _face_id(normal: torch.Tensor) -> torch.Tensor:
    """Index 0..5 of the dominant signed axis of local normals (M,3), so box faces differ."""
    axis = normal.abs().argmax(-1)
    positive = normal.gather(1, axis[:, None])[:, 0] > 0
    return axis + 3 * positive.long()


def _albedo(scene: Scene, index: torch.Tensor, local: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Texture colour (M,3) in [0,1] at local surface points (M,3) of primitives ``index``."""
    scale = scene.scale[index][:, None]
    seed = scene.tex_seed[index] + 7919 * face
    pattern = (scene.pattern[index] + face) % 4
    q = local / scale
    noise = _fbm(q, seed)
    checker = ((torch.floor(q).long().sum(-1) % 2) == 0).to(q.dtype)
    stripes = (torch.sin(2 * math.pi * (q[:, 0] + 0.6 * q[:, 1] + 0.3 * q[:, 2])) > 0).to(q.dtype)
    gradient = torch.frac(0.25 * (q[:, 2] + q[:, 0]))
    mix = torch.where(pattern == NOISE, noise, checker)
    mix = torch.where(pattern == STRIPES, stripes, mix)
    mix = torch.where(pattern == GRADIENT, gradient, mix)
    mix = (0.8 * mix + 0.2 * noise).clamp(0, 1)
    detail = _fbm(local * 9.0, seed + 101, octaves=2)
    color = scene.color_a[index] * (1 - mix[:, None]) + scene.color_b[index] * mix[:, None]
    return color * (0.65 + 0.55 * detail[:, None])


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


# ---------------------------------------------------------------------------------------------
# scenes


class _Builder:
    """Accumulates primitives; one object (instance) may hold several parts."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rows: list[dict[str, Any]] = []
        self.instances = 0

    def texture(self, semantic: str) -> dict[str, Any]:
        rng = self.rng
        hue = rng.uniform(0, 1, 3)
        color_a = 0.25 + 0.6 * hue
        color_b = np.clip(color_a * rng.uniform(0.2, 0.6) + rng.uniform(0, 0.3, 3), 0, 1)
        pattern = {"floor": CHECKER, "road": NOISE, "person": STRIPES}.get(semantic, int(rng.integers(0, 4)))
        return {
            "pattern": pattern,
            "scale": float(rng.uniform(0.25, 0.9)),
            "color_a": color_a,
            "color_b": color_b,
            "tex_seed": int(rng.integers(0, 2**20)),
        }

    def add(
        self,
        semantic: str,
        parts: list[tuple[int, tuple[float, float, float], tuple[float, float, float]]],
        center: tuple[float, float, float],
        yaw0: float = 0.0,
        velocity: tuple[float, float, float] = (0.0, 0.0, 0.0),
        radius: float = 0.0,
        omega: float = 0.0,
        phase: float = 0.0,
    ) -> None:
        """Add one object made of ``parts`` = [(kind, offset, size)] with a shared motion."""
        self.instances += 1
        texture = self.texture(semantic)
        for kind, offset, size in parts:
            self.rows.append(
                {
                    "kind": kind,
                    "offset": offset,
                    "yaw": 0.0,
                    "size": size,
                    "center": center,
                    "yaw0": yaw0,
                    "velocity": velocity,
                    "radius": radius,
                    "omega": omega,
                    "phase": phase,
                    "instance": self.instances,
                    "semantic": _CLASS_ID[semantic],
                    **texture,
                }
            )

    def build(self, name: str, sky: bool, path: dict[str, Any]) -> Scene:
        def col(key: str, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(np.array([row[key] for row in self.rows]), dtype=dtype)

        elevation, azimuth = self.rng.uniform(0.6, 1.2), self.rng.uniform(0, 2 * math.pi)
        light = [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth)]
        light.append(math.sin(elevation))
        return Scene(
            kind=col("kind", torch.long),
            offset=col("offset", torch.float64),
            yaw=col("yaw", torch.float64),
            size=col("size", torch.float64),
            center=col("center", torch.float64),
            yaw0=col("yaw0", torch.float64),
            velocity=col("velocity", torch.float64),
            radius=col("radius", torch.float64),
            omega=col("omega", torch.float64),
            phase=col("phase", torch.float64),
            instance=col("instance", torch.long),
            semantic=col("semantic", torch.long),
            pattern=col("pattern", torch.long),
            scale=col("scale", torch.float64),
            color_a=col("color_a", torch.float64),
            color_b=col("color_b", torch.float64),
            tex_seed=col("tex_seed", torch.long),
            light=torch.tensor(light, dtype=torch.float64),
            sky=sky,
            name=name,
            path=path,
        )


def _person(height: float = 1.7) -> list:
    body = height - 0.3
    return [
        (CYLINDER, (0.0, 0.0, body / 2), (0.22, 0.22, body / 2)),
        (SPHERE, (0.0, 0.0, body + 0.14), (0.14, 0.14, 0.14)),
    ]


def _animal() -> list:
    return [
        (BOX, (0.0, 0.0, 0.45), (0.4, 0.16, 0.18)),
        (SPHERE, (0.48, 0.0, 0.62), (0.13, 0.13, 0.13)),
        (CYLINDER, (0.0, 0.0, 0.14), (0.08, 0.08, 0.14)),
    ]


def _car() -> list:
    return [
        (BOX, (0.0, 0.0, 0.65), (2.1, 0.9, 0.42)),
        (BOX, (-0.2, 0.0, 1.38), (1.1, 0.8, 0.32)),
    ]


def _far_from_path(rng: np.random.Generator, path: dict[str, Any], low, high, clearance: float, tries=50):
    """Uniform point in the box [low, high] (xy) at least ``clearance`` from the camera path segment."""
    a = np.asarray(path["start"][:2])
    b = a + np.asarray(path["direction"][:2]) * path["length"]
    point = None
    for _ in range(tries):
        point = rng.uniform(low, high)
        ab = b - a
        s = np.clip(np.dot(point - a, ab) / max(np.dot(ab, ab), 1e-9), 0, 1)
        if np.linalg.norm(point - (a + s * ab)) >= clearance:
            return point
    return point


def _indoor(rng: np.random.Generator, name: str) -> Scene:
    builder = _Builder(rng)
    if name == "room":
        half = np.array([rng.uniform(3.0, 5.0), rng.uniform(4.0, 7.0), rng.uniform(1.3, 1.75)])
    else:
        half = np.array([rng.uniform(1.3, 1.8), rng.uniform(14.0, 20.0), rng.uniform(1.3, 1.6)])
    builder.add("wall", [(SHELL, (0.0, 0.0, half[2]), tuple(half))], (0.0, 0.0, 0.0))
    start = np.array([rng.uniform(-0.3, 0.3) * half[0], -half[1] + 1.2, 1.5])
    path = {
        "start": start,
        "direction": np.array([0.0, 1.0, 0.0]),
        "length": 2 * half[1] - 2.6,
        "orbit_center": np.array([0.0, 0.0, 1.2]),
        "orbit_radius": float(max(min(half[0], half[1]) - 0.6, 0.6)),
        "bounds": half[:2] - 0.5,
    }
    low, high = -half[:2] + 0.6, half[:2] - 0.6
    for _ in range(int(rng.integers(3, 7))):
        xy = _far_from_path(rng, path, low, high, 1.2)
        choice = rng.integers(0, 3)
        if choice == 0:
            size = rng.uniform([0.2, 0.2, 0.2], [0.6, 0.6, 0.6])
            builder.add(
                "box", [(BOX, (0, 0, size[2]), tuple(size))], (*xy, 0.0), yaw0=rng.uniform(0, math.pi)
            )
        elif choice == 1:
            r = rng.uniform(0.1, 0.3)
            builder.add("pillar", [(CYLINDER, (0, 0, half[2]), (r, r, half[2]))], (*xy, 0.0))
        else:
            r = rng.uniform(0.15, 0.4)
            builder.add("ball", [(SPHERE, (0, 0, r), (r, r, r))], (*xy, 0.0))
    for _ in range(int(rng.integers(1, 4))):
        cls = "person" if rng.uniform() < 0.6 else "animal"
        xy = _far_from_path(rng, path, low * 0.7, high * 0.7, 1.6)
        parts = _person(rng.uniform(1.5, 1.85)) if cls == "person" else _animal()
        if rng.uniform() < 0.5:  # walk in a circle
            radius = rng.uniform(0.4, 0.9)
            omega = rng.choice([-1, 1]) * rng.uniform(0.6, 1.2) / radius
            phase = rng.uniform(0, 2 * math.pi)
            builder.add(
                cls, parts, (*xy, 0.0), yaw0=phase + math.pi / 2, radius=radius, omega=omega, phase=phase
            )
        else:  # walk straight along the room
            speed = rng.uniform(0.5, 1.2) * rng.choice([-1, 1])
            builder.add(
                cls,
                parts,
                (*xy, 0.0),
                yaw0=math.pi / 2 if speed > 0 else -math.pi / 2,
                velocity=(0, speed, 0),
            )
    return builder.build(name, sky=False, path=path)


def _street(rng: np.random.Generator) -> Scene:
    builder = _Builder(rng)
    road, length = rng.uniform(3.0, 5.0), 60.0
    builder.add("road", [(PLANE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))], (0.0, 0.0, 0.0))
    for side in (-1, 1):
        builder.add(
            "sidewalk",
            [(BOX, (0.0, 0.0, 0.075), (1.5, length, 0.075))],
            (side * (road + 1.5), 0.0, 0.0),
        )
        y = -length
        while y < length:
            depth, width, height = rng.uniform(3, 6), rng.uniform(4, 9), rng.uniform(4, 14)
            builder.add(
                "building",
                [(BOX, (0.0, 0.0, height / 2), (depth / 2, width / 2, height / 2))],
                (side * (road + 3.0 + depth / 2 + rng.uniform(0, 1)), y + width / 2, 0.0),
            )
            y += width + rng.uniform(0.5, 3)
    start = np.array([rng.uniform(-0.5, 0.5) * road, -20.0, 1.6])
    path = {
        "start": start,
        "direction": np.array([0.0, 1.0, 0.0]),
        "length": 35.0,
        "orbit_center": np.array([0.0, -14.0, 1.0]),
        "orbit_radius": float(road + 1.0),
        "bounds": np.array([road + 2.5, length]),
    }
    for _ in range(int(rng.integers(1, 4))):  # cars in lanes, driving along the street
        lane = rng.choice([-1, 1]) * road * 0.5
        speed = rng.uniform(3.0, 8.0) * (1 if lane > 0 else -1)
        builder.add(
            "car",
            _car(),
            (lane, rng.uniform(-30, 30), 0.0),
            yaw0=math.copysign(math.pi / 2, speed),
            velocity=(0, speed, 0),
        )
    for _ in range(int(rng.integers(1, 4))):  # people on the sidewalks
        side = rng.choice([-1, 1])
        speed = rng.uniform(0.6, 1.4) * rng.choice([-1, 1])
        cls = "person" if rng.uniform() < 0.7 else "animal"
        parts = _person(rng.uniform(1.5, 1.85)) if cls == "person" else _animal()
        center = (side * (road + 1.5), rng.uniform(-20, 10), 0.15)
        builder.add(cls, parts, center, yaw0=math.copysign(math.pi / 2, speed), velocity=(0, speed, 0))
    for _ in range(int(rng.integers(1, 4))):  # street furniture
        side = rng.choice([-1, 1])
        r = rng.uniform(0.1, 0.25)
        h = rng.uniform(1.0, 3.0)
        builder.add(
            "pillar",
            [(CYLINDER, (0, 0, h / 2), (r, r, h / 2))],
            (side * (road + 0.4), rng.uniform(-25, 25), 0.0),
        )
    return builder.build("street", sky=True, path=path)


def build_scene(seed: int, scene: str | None = None) -> Scene:
    """A random scene of kind ``scene`` ("room", "corridor", "street"; None draws one) from ``seed``."""
    rng = np.random.default_rng([int(seed), 1])
    name = SCENES[int(rng.integers(0, len(SCENES)))] if scene is None else scene
    if name not in SCENES:
        raise ValueError(f"scene must be one of {SCENES} or None, got {scene!r}")
    return _street(rng) if name == "street" else _indoor(rng, name)


# ---------------------------------------------------------------------------------------------
# cameras


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """OpenCV camera-to-world (...,4,4) at ``eye`` (...,3) looking at ``target`` (...,3), world z up."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else up
    forward = target - eye
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    pose = np.zeros((*eye.shape[:-1], 4, 4))
    pose[..., :3, 0], pose[..., :3, 1], pose[..., :3, 2], pose[..., :3, 3] = right, down, forward, eye
    pose[..., 3, 3] = 1.0
    return pose


def camera_trajectory(
    kind: str, path: dict[str, Any], times: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Camera-to-world poses (T,4,4) of a trajectory ``kind`` through a scene ``path`` at ``times`` (s)."""
    if kind not in TRAJECTORIES:
        raise ValueError(f"trajectory must be one of {TRAJECTORIES} or None, got {kind!r}")
    t = times[:, None]
    duration = max(float(times[-1]), 1e-6)
    start, direction = np.asarray(path["start"], float), np.asarray(path["direction"], float)
    right = np.cross(direction, [0.0, 0.0, 1.0])
    pitch = rng.uniform(-0.25, 0.05)
    heading = rng.uniform(-0.3, 0.3)
    forward = np.cos(heading) * direction + np.sin(heading) * right
    eye = np.broadcast_to(start, (len(times), 3)).copy()
    look = np.broadcast_to(forward, (len(times), 3)).copy()
    if kind == "forward":
        speed = min(rng.uniform(0.8, 1.6), path["length"] / duration)
        eye = start + t * speed * direction
        eye[:, 2] += 0.03 * np.sin(2 * math.pi * 1.8 * times)
        look = direction + 0.1 * np.sin(0.7 * times)[:, None] * right
    elif kind == "turn":
        yaw = rng.choice([-1, 1]) * rng.uniform(0.3, 0.7) * times + heading
        look = np.cos(yaw)[:, None] * direction + np.sin(yaw)[:, None] * right
    elif kind == "orbit":
        center = np.asarray(path["orbit_center"], float)
        radius = path["orbit_radius"] * rng.uniform(0.6, 1.0)
        angle = rng.uniform(0, 2 * math.pi) + rng.choice([-1, 1]) * rng.uniform(0.15, 0.35) * times
        eye = center + radius * np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], -1)
        eye[:, 2] = start[2]
        return look_at(eye, np.broadcast_to(center, eye.shape))
    elif kind == "strafe":
        bound = float(path["bounds"][0]) - abs(float(start[0]))
        speed = min(rng.uniform(0.4, 1.0), 2 * bound / duration) * rng.choice([-1, 1])
        eye = start - 0.5 * speed * duration * right + t * speed * right
    elif kind == "handheld":
        freqs = rng.uniform(0.5, 2.5, (2, 3))
        phases = rng.uniform(0, 2 * math.pi, (2, 3))
        eye = start + 0.03 * np.sin(2 * math.pi * freqs[0] * t + phases[0])
        jitter = 0.04 * np.sin(2 * math.pi * freqs[1] * t + phases[1])
        look = forward + jitter
    look = look / np.linalg.norm(look, axis=-1, keepdims=True)
    target = eye + look + np.array([0.0, 0.0, pitch])
    return look_at(eye, target)


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


def clips_batch(clips: Sequence[SyntheticClip], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Rendered clips of equal shape as one batch in the layout the DataModule yields: video
    (B,T,3,H,W) float in [-1,1], depth (B,T,H,W), valid, K (B,T,3,3), c2w (B,T,4,4) relative to each
    clip's first frame, fps (B,), key (``keys``, default clip0, clip1, ...)."""
    from aether.geometry import relative_poses

    rgb = torch.from_numpy(np.stack([c.rgb for c in clips]))
    depth = torch.from_numpy(np.stack([c.depth for c in clips])).float()
    return {
        "video": rgb.float().div(127.5).sub(1).permute(0, 1, 4, 2, 3),
        "depth": depth,
        "valid": depth > 0,
        "K": torch.from_numpy(np.stack([c.K for c in clips])).float(),
        "c2w": relative_poses(torch.from_numpy(np.stack([c.c2w for c in clips]))).float(),
        "fps": torch.tensor([float(c.fps) for c in clips]),
        "key": list(keys) if keys is not None else [f"clip{i}" for i in range(len(clips))],
    }
