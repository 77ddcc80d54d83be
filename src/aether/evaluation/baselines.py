"""Trivial baselines scored beside a model: each frame's mean depth, a static camera, and a copy of
the first frame (sharp or blurred)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from aether.evaluation.pose_metrics import does_not_move, rotation_angle_deg
from aether.geometry import invert_pose


def frame_mean_depth(depth: Tensor, valid: Tensor) -> Tensor:
    """Baseline (T,H,W): each frame's mean valid depth everywhere."""
    v = valid.to(depth.dtype)
    mean = (depth * v).flatten(1).sum(1) / v.flatten(1).sum(1).clamp_min(1.0)
    return mean[:, None, None].expand_as(depth).clone()


def static_camera_metrics(gt_c2w: Tensor) -> dict[str, float]:
    """ATE / RPE of a static camera after the best Sim(3) alignment (closed form).

    A static trajectory aligns to a single point (scale 0); the best point is the centroid of
    the true positions, so ATE = RMS distance to it, RPE = the RMS true relative motions. ATE and
    RPE translation are NaN where a prediction's are (a ground truth that does not move,
    :func:`~aether.evaluation.pose_metrics.does_not_move`), so a mean over clips compares the
    model and the baseline on the same clips.

    Args:
        gt_c2w: (T,4,4) true poses.
    """
    gt = torch.as_tensor(gt_c2w).double()
    pos = gt[:, :3, 3]
    ate = (pos - pos.mean(0)).square().sum(-1).mean().sqrt()
    rel = invert_pose(gt[:-1]) @ gt[1:]
    rpe_trans = rel[:, :3, 3].square().sum(-1).mean().sqrt()
    rpe_rot = rotation_angle_deg(rel[:, :3, :3]).square().mean().sqrt()
    if does_not_move(gt):
        ate = rpe_trans = torch.tensor(math.nan)
    return {"ate": float(ate), "rpe_trans": float(rpe_trans), "rpe_rot": float(rpe_rot)}


BLUR_SIGMAS = (0.5, 1.0, 2.0, 3.0, 4.0)
"""Gaussian blur widths (pixels) tried by :func:`blurred_copies`."""


def blurred_copies(frame: Tensor, sigmas: tuple[float, ...] = BLUR_SIGMAS) -> Tensor:
    """Gaussian-blurred copies (S,3,H,W) of one frame (3,H,W), one per σ in ``sigmas`` (pixels; the
    kernel spans ±3σ, reflected at the borders).

    A model that predicts the posterior mean of unseen frames blurs; a blurred copy of the given
    frame is the trivial predictor of that kind, so generated videos are scored against the best σ.
    """
    import kornia

    if frame.ndim != 3 or frame.shape[0] != 3:
        raise ValueError(f"frame: expected (3,H,W), got {tuple(frame.shape)}")
    copies = []
    for sigma in sigmas:
        size = 2 * math.ceil(3 * sigma) + 1
        copies.append(kornia.filters.gaussian_blur2d(frame[None], (size, size), (sigma, sigma), "reflect"))
    return torch.cat(copies)
