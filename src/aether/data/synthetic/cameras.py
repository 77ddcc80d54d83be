"""Camera paths through a synthetic scene."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aether.data.synthetic_names import TRAJECTORIES


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
