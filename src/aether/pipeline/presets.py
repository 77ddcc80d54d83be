"""Preset camera motions for prediction and planning (the app's, the CLI's ``--preset`` and
:meth:`aether.Trajectory.preset`), with numpy only so ``aether predict --help`` stays instant."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PRESETS", "default_intrinsics", "preset_poses"]

PRESETS = (
    "none",
    "forward",
    "backward",
    "left",
    "right",
    "up",
    "down",
    "turn left",
    "turn right",
    "orbit left",
    "orbit right",
)
"""Preset camera motions for prediction and planning ("none": no action, the model chooses)."""


def default_intrinsics(height: int, width: int, fov_degrees: float = 60.0) -> np.ndarray:
    """(3, 3) pinhole K of a ``width × height`` image with a horizontal field of view ``fov_degrees``
    and the principal point at the image centre (pixel centres at integer coordinates)."""
    focal = 0.5 * width / math.tan(math.radians(fov_degrees) / 2)
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def preset_poses(name: str, num_frames: int, distance: float = 0.5, angle: float = 30.0) -> np.ndarray | None:
    """Camera-to-world poses (T, 4, 4) of a preset motion, the first camera at the origin (OpenCV: x
    right, y down, z forward); None for "none".

    Translations move ``distance`` scene units over the clip (the model's depth unit: 1 = nearest
    point); turns rotate ``angle`` degrees about the camera's y axis; orbits move ``angle`` degrees
    around the point 1 unit ahead, keeping it in view.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown camera motion {name!r}; expected one of {', '.join(PRESETS)}")
    if name == "none":
        return None
    s = np.linspace(0.0, 1.0, num_frames)
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    moves = {
        "forward": (2, 1),
        "backward": (2, -1),
        "left": (0, -1),
        "right": (0, 1),
        "up": (1, -1),
        "down": (1, 1),
    }
    if name in moves:
        axis, sign = moves[name]
        c2w[:, axis, 3] = sign * distance * s
        return c2w
    sign = -1.0 if name.endswith("left") else 1.0
    theta = sign * math.radians(angle) * s
    c, n = np.cos(theta), np.sin(theta)
    c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = c, n, -n, c
    if name.startswith("orbit"):  # the centre stays 1 unit ahead of the rotated camera's axis
        c2w[:, 0, 3] = -n
        c2w[:, 2, 3] = 1.0 - c
    return c2w
