"""Scene building: rooms, corridors and streets with their static and moving objects."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from aether.data.synthetic.raycast import BOX, CYLINDER, PLANE, SHELL, SPHERE, Scene
from aether.data.synthetic.textures import CHECKER, NOISE, STRIPES
from aether.data.synthetic_names import SCENES

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
