"""Helpers shared by the geometry tests: known trajectories and rotation errors."""

from __future__ import annotations

import math

import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix


def rotation_error_deg(R_a: torch.Tensor, R_b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle (degrees) between rotations (..., 3, 3), computed stably in float64."""
    diff = torch.linalg.matrix_norm(R_a.double() - R_b.double())  # = 2 sqrt(2) sin(angle / 2)
    return torch.rad2deg(2.0 * torch.asin((diff / (2.0 * math.sqrt(2.0))).clamp(max=1.0)))


def make_poses(axis_angle: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Poses (..., 4, 4) from axis-angle rotations (..., 3) and centres (..., 3)."""
    c2w = torch.zeros(*centres.shape[:-1], 4, 4, dtype=centres.dtype)
    c2w[..., :3, :3] = axis_angle_to_rotation_matrix(axis_angle.reshape(-1, 3)).reshape(*axis_angle.shape, 3)
    c2w[..., :3, 3] = centres
    c2w[..., 3, 3] = 1.0
    return c2w


def smooth_trajectory(num_frames: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A smooth known trajectory (T, 4, 4): a turning, rising camera moving forward."""
    s = torch.linspace(0.0, 1.0, num_frames, dtype=dtype)
    axis_angle = torch.stack([0.2 * torch.sin(2 * s), 0.6 * s, 0.05 * s], dim=-1)
    centres = torch.stack([torch.sin(3 * s), 0.3 * s**2, 4.0 * s], dim=-1)
    return make_poses(axis_angle, centres)


def intrinsics(
    fx: float, fy: float, cx: float, cy: float, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)
