"""The primitive table of a synthetic scene and ray casting against it.

Rays are cast in torch, vectorised over pixels and primitives. Ray directions are
``R · K⁻¹ · [u, v, 1]`` (unit camera z), so the ray parameter of the first hit *is* the OpenCV
z-depth. Pixel centres sit at integer coordinates (u = column, v = row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# primitive kinds
PLANE, BOX, SHELL, SPHERE, CYLINDER = 0, 1, 2, 3, 4
_EPS = 1e-4
HORIZON = 1000.0
"""Farthest hit in scene units: rays that meet the ground plane beyond it see the sky (depth 0, void), so
a grazing ray never writes a depth past the shard schema's 10 km bound."""


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
