"""Camera pose metrics with the published protocol (evo's APE/RPE settings).

ATE: RMSE of camera positions after a Sim(3) Umeyama alignment with scale correction.
RPE: RMSE over all consecutive pairs (delta 1 frame) of the relative-pose error's translation
norm and rotation angle (degrees), after the same alignment.

Inputs are validated before scoring: poses must be finite rigid transforms (a scaled or sheared
rotation is refused, it would otherwise score as a perfect rotation), and a ground-truth
trajectory whose camera never moves is refused (Sim(3) alignment with scale collapses the
prediction onto one point and scores every prediction ATE = RPE = 0; evo refuses it too).
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric

from aether.evaluation.depth_metrics import as_tensor
from aether.geometry.alignment import align_trajectory_sim3
from aether.geometry.cameras import check_poses, invert_pose

# a ground-truth camera whose centres spread (RMS) less than this fraction of the scene scale does
# not move: Sim(3) alignment would fit any prediction onto its jitter
STATIC_SPREAD = 1e-3
# |R^T R - I| allowed in a pose's rotation block (float32 predictions pass, a scaled R does not)
ROTATION_ATOL = 1e-3


class DegenerateTrajectoryError(ValueError):
    """A trajectory the metric is undefined for (e.g. a static ground truth under Sim(3))."""


def _label(name: str, sequence: str | None) -> str:
    return name if sequence is None else f"{sequence}: {name}"


def _check_poses(c2w: torch.Tensor, name: str) -> None:
    if c2w.ndim != 3 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"{name}: expected shape (N,4,4), received {tuple(c2w.shape)}")
    if c2w.shape[0] < 2:
        raise ValueError(f"{name}: expected at least 2 poses, received {c2w.shape[0]}")
    if not torch.isfinite(c2w).all():
        bad = (~torch.isfinite(c2w).flatten(1).all(1)).nonzero()[:, 0].tolist()
        raise ValueError(f"{name}: expected finite poses, received non-finite values in frames {bad[:10]}")
    check_poses(c2w, name=name, atol=ROTATION_ATOL)


def position_spread(c2w: torch.Tensor) -> float:
    """RMS distance of the camera centres of poses (N,4,4) from their mean."""
    return float(c2w[:, :3, 3].var(0, unbiased=False).sum().sqrt())


def scene_scale(c2w: torch.Tensor) -> float:
    """The scale a trajectory (N,4,4) is judged against: its largest camera-centre distance from the
    origin, at least one scene unit (a trajectory around the origin in metres)."""
    return max(1.0, float(c2w[:, :3, 3].norm(dim=-1).max()))


def does_not_move(c2w: torch.Tensor, scene: float | None = None) -> bool:
    """True when the camera centres of poses (N,4,4) spread by at most :data:`STATIC_SPREAD` of the
    ``scene`` scale (default :func:`scene_scale` of ``c2w``): ATE and RPE translation under Sim(3)
    alignment are undefined against such a ground truth."""
    scale = scene_scale(c2w) if scene is None else float(scene)
    return position_spread(c2w) <= STATIC_SPREAD * scale


def rotation_angle_deg(R: torch.Tensor) -> torch.Tensor:
    """Rotation angle in degrees of rotation matrices (...,3,3), stable near 0 and 180."""
    skew = torch.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1
    )
    trace = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    return torch.rad2deg(torch.atan2(skew.norm(dim=-1), trace - 1))


def camera_pose_metrics(
    pred_c2w: Any,
    gt_c2w: Any,
    *,
    sequence: str | None = None,
    static_gt: str = "error",
    scene: float | None = None,
) -> dict[str, float]:
    """ATE, RPE translation and RPE rotation (degrees) of a predicted trajectory.

    pred_c2w, gt_c2w: (N,4,4) finite rigid camera-to-world poses (arrays or tensors), frame i of
    one matched to frame i of the other. ``sequence`` names the trajectory in error messages.
    A ground truth whose camera does not move (centres spread by less than :data:`STATIC_SPREAD`
    of ``scene`` scale, default :func:`scene_scale` of the ground truth) raises
    :class:`DegenerateTrajectoryError` (``static_gt="error"``), or scores ATE and RPE translation
    as NaN and RPE rotation as usual (``static_gt="nan"``; rotation errors need no alignment scale).
    Returns ``{"ate", "rpe_trans", "rpe_rot"}``.
    """
    if static_gt not in ("error", "nan"):
        raise ValueError(f"static_gt: expected 'error' or 'nan', received {static_gt!r}")
    gt = as_tensor(gt_c2w, "gt_c2w")
    pred = as_tensor(pred_c2w, "pred_c2w").to(gt.device)
    _check_poses(gt, _label("gt_c2w", sequence))
    _check_poses(pred, _label("pred_c2w", sequence))
    if pred.shape != gt.shape:
        raise ValueError(
            f"{_label('pred_c2w', sequence)}: expected shape {tuple(gt.shape)} like gt_c2w, "
            f"received {tuple(pred.shape)}"
        )
    if scene is not None and not (isinstance(scene, int | float) and 0 < scene < float("inf")):
        raise ValueError(f"scene: expected a finite positive scene scale, received {scene!r}")
    scale = scene_scale(gt) if scene is None else float(scene)
    if position_spread(pred) <= 1e-12 * scene_scale(pred):
        raise DegenerateTrajectoryError(
            f"{_label('pred_c2w', sequence)}: expected moving camera positions, received a static one "
            "(Sim(3) alignment undefined)"
        )
    if does_not_move(gt, scale):
        if static_gt == "error":
            raise DegenerateTrajectoryError(
                f"{_label('gt_c2w', sequence)}: the ground-truth camera does not move (centres spread "
                f"{position_spread(gt):.3g} <= {STATIC_SPREAD:g} x scene scale {scale:.3g}); ATE/RPE under "
                "Sim(3) alignment with scale are undefined for it"
            )
        rel_gt = invert_pose(gt[:-1]) @ gt[1:]
        rel_pred = invert_pose(pred[:-1]) @ pred[1:]
        err = (invert_pose(rel_gt) @ rel_pred)[:, :3, :3]
        rpe_rot = rotation_angle_deg(err).square().mean().sqrt()
        return {"ate": float("nan"), "rpe_trans": float("nan"), "rpe_rot": float(rpe_rot)}
    est = align_trajectory_sim3(pred, gt)
    ate = (est[:, :3, 3] - gt[:, :3, 3]).square().sum(-1).mean().sqrt()
    rel_gt = invert_pose(gt[:-1]) @ gt[1:]
    rel_est = invert_pose(est[:-1]) @ est[1:]
    err = invert_pose(rel_gt) @ rel_est
    rpe_trans = err[:, :3, 3].square().sum(-1).mean().sqrt()
    rpe_rot = rotation_angle_deg(err[:, :3, :3]).square().mean().sqrt()
    return {"ate": float(ate), "rpe_trans": float(rpe_trans), "rpe_rot": float(rpe_rot)}


class CameraPoseMetric(Metric):
    """Dataset-level pose metric: each ``update`` scores one sequence; ``compute`` returns the
    mean over sequences of ATE, RPE translation and RPE rotation (the protocol's mean).
    ``sequence_stats`` keeps this process's per-sequence results in update order."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("ate_sum", "rpe_trans_sum", "rpe_rot_sum", "count"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.sequence_stats: list[dict[str, float]] = []

    def update(self, pred_c2w: Any, gt_c2w: Any, sequence: str | None = None) -> None:  # type: ignore[override]
        """Score one sequence's trajectory (N,4,4); ``sequence`` names it in error messages."""
        m = camera_pose_metrics(pred_c2w, gt_c2w, sequence=sequence)
        self.ate_sum += m["ate"]
        self.rpe_trans_sum += m["rpe_trans"]
        self.rpe_rot_sum += m["rpe_rot"]
        self.count += 1
        self.sequence_stats.append(m)

    def reset(self) -> None:
        super().reset()
        self.sequence_stats = []

    def compute(self) -> dict[str, float]:
        n = float(self.count)
        if n == 0:
            raise ValueError("CameraPoseMetric: no sequence was scored (expected update() calls)")
        return {
            "ate": float(self.ate_sum) / n,
            "rpe_trans": float(self.rpe_trans_sum) / n,
            "rpe_rot": float(self.rpe_rot_sum) / n,
        }
