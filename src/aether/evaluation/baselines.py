"""Trivial baselines scored beside a model: each frame's mean depth, and a static camera."""

from __future__ import annotations

import torch
from torch import Tensor

from aether.evaluation.pose_metrics import rotation_angle_deg
from aether.geometry import invert_pose


def frame_mean_depth(depth: Tensor, valid: Tensor) -> Tensor:
    """Baseline (T,H,W): each frame's mean valid depth everywhere."""
    v = valid.to(depth.dtype)
    mean = (depth * v).flatten(1).sum(1) / v.flatten(1).sum(1).clamp_min(1.0)
    return mean[:, None, None].expand_as(depth).clone()


def static_camera_metrics(gt_c2w: Tensor) -> dict[str, float]:
    """ATE / RPE of a static camera after the best Sim(3) alignment (closed form).

    A static trajectory aligns to a single point (scale 0); the best point is the centroid of
    the true positions, so ATE = RMS distance to it, RPE = the RMS true relative motions.

    Args:
        gt_c2w: (T,4,4) true poses.
    """
    gt = torch.as_tensor(gt_c2w).double()
    pos = gt[:, :3, 3]
    ate = (pos - pos.mean(0)).square().sum(-1).mean().sqrt()
    rel = invert_pose(gt[:-1]) @ gt[1:]
    rpe_trans = rel[:, :3, 3].square().sum(-1).mean().sqrt()
    rpe_rot = rotation_angle_deg(rel[:, :3, :3]).square().mean().sqrt()
    return {"ate": float(ate), "rpe_trans": float(rpe_trans), "rpe_rot": float(rpe_rot)}
