"""Camera control: how closely the cameras of a generated video follow the requested trajectory.

The metrics are CamI2V's (``evaluation/glomap_evaluation.py`` of ZGCTroy/CamI2V), the numbers
published on RealEstate10K (CamI2V 0.41 / 1.34 / 1.53, CameraCtrl 0.71 / 1.94 / 2.31):

- both trajectories are made relative to their first camera (``inv(c2w[0]) @ c2w[i]``);
- **RotErr**: the sum over frames of the geodesic angle ``acos((tr(R_req^T R_rec) - 1) / 2)``, in
  **radians** as the reference sums it (``rot_err_deg`` gives the same sum in degrees);
- each trajectory's translations are divided by its own largest camera distance from the first
  camera (plus 1e-9): the reference's "relative" metric, a similarity normalisation of each path;
- **TransErr**: the sum over frames of the distances between the normalised camera centres;
- **CamMC**: the sum over frames of the Frobenius norm of the difference of the normalised 3×4
  ``[R | t]`` camera-to-world matrices.

Choices the reference leaves open, and how they are made here: a requested camera that never
moves has no translation scale (the reference divides by 1e-9), so TransErr and CamMC are NaN for
it; ``align="umeyama"`` replaces the first-camera anchoring by a least-squares Sim(3) fit of the
recovered camera centres onto the requested ones (:func:`~aether.geometry.
align_trajectory_sim3`), both then scaled by the requested path's largest distance from its
first camera. The reference recovers cameras with COLMAP + GLOMAP; :func:`recover_cameras` offers
the library's two independent recoveries (the annotation pipeline, the model's reconstruction).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aether.evaluation.depth_metrics import as_tensor
from aether.evaluation.pose_metrics import rotation_angle_deg
from aether.geometry import align_trajectory_sim3, check_poses, invert_pose, relative_poses

ALIGNS = ("first-frame", "umeyama")
METHODS = ("annotate", "model")
EPS = 1e-9  # the reference's guard in its translation normalisation
STATIC_DISTANCE = 1e-9  # a requested path whose cameras stay this close to the first does not move

__all__ = [
    "ALIGNS",
    "METHODS",
    "aligned_paths",
    "camera_control_errors",
    "recover_cameras",
]


def _poses(c2w: Any, name: str) -> torch.Tensor:
    x = as_tensor(c2w, name).double()
    if x.ndim != 3 or x.shape[1:] != (4, 4) or x.shape[0] < 2:
        raise ValueError(
            f"{name}: expected camera-to-world poses (T,4,4) with T >= 2, received {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: expected finite poses, received non-finite values")
    check_poses(x, name=name, atol=1e-3)
    return x


def _scaled(c2w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Poses (T,4,4) with their translations divided by ``scale``."""
    out = c2w.clone()
    out[:, :3, 3] = c2w[:, :3, 3] / scale
    return out


def _aligned(requested_c2w: Any, recovered_c2w: Any, align: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    if align not in ALIGNS:
        raise ValueError(f"align: expected one of {', '.join(ALIGNS)}, received {align!r}")
    req = relative_poses(_poses(requested_c2w, "requested_c2w"))
    rec = _poses(recovered_c2w, "recovered_c2w").to(req.device)
    if rec.shape != req.shape:
        raise ValueError(
            f"recovered_c2w: expected shape {tuple(req.shape)} like requested_c2w, "
            f"received {tuple(rec.shape)}"
        )
    req_scale = req[:, :3, 3].norm(dim=-1).amax()
    if align == "first-frame":
        rec = relative_poses(rec)
        rec_scale = rec[:, :3, 3].norm(dim=-1).amax() + EPS
    else:
        moving = bool(rec[:, :3, 3].var(0).sum() > 0)
        rec = align_trajectory_sim3(rec, req) if moving else rec
        rec_scale = req_scale + EPS
    return _scaled(req, req_scale + EPS), _scaled(rec, rec_scale), float(req_scale)


def aligned_paths(
    requested_c2w: Any, recovered_c2w: Any, *, align: str = "first-frame"
) -> tuple[np.ndarray, np.ndarray]:
    """The two paths (T,4,4) as :func:`camera_control_errors` compares them: relative to the first
    camera (or the recovered one Sim(3)-fitted onto the requested, ``align="umeyama"``), each
    translation divided by the path's largest distance from its first camera."""
    req, rec, _ = _aligned(requested_c2w, recovered_c2w, align)
    return req.numpy(), rec.numpy()


def camera_control_errors(
    requested_c2w: Any, recovered_c2w: Any, *, align: str = "first-frame"
) -> dict[str, float]:
    """RotErr, TransErr and CamMC of recovered cameras against the requested ones (module docstring).

    Args:
        requested_c2w: (T,4,4) the trajectory the video was asked to follow (any world frame).
        recovered_c2w: (T,4,4) the cameras recovered from the video, frame i matched to frame i.
        align: "first-frame" (CamI2V's: each path relative to its first camera, scaled to unit
            largest distance) or "umeyama" (a Sim(3) least-squares fit of the recovered centres).

    Returns:
        ``{"rot_err" (radians), "rot_err_deg", "trans_err", "cammc"}``, each a sum over frames;
        TransErr and CamMC are NaN when the requested camera does not move.
    """
    a, b, req_scale = _aligned(requested_c2w, recovered_c2w, align)
    angles = rotation_angle_deg(invert_pose(a)[:, :3, :3] @ b[:, :3, :3])
    out = {"rot_err": float(torch.deg2rad(angles).sum()), "rot_err_deg": float(angles.sum())}
    if req_scale <= STATIC_DISTANCE:
        return {**out, "trans_err": float("nan"), "cammc": float("nan")}
    out["trans_err"] = float((a[:, :3, 3] - b[:, :3, 3]).norm(dim=-1).sum())
    out["cammc"] = float((a[:, :3] - b[:, :3]).flatten(1).norm(dim=-1).sum())
    return out


def recover_cameras(
    video: Any,
    K: Any,
    method: str = "annotate",
    *,
    pipeline: Any = None,
    depth: Any = None,
    fps: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The cameras of a video, recovered without knowing what was requested.

    Args:
        video: (T,H,W,3) uint8, or (T,3,H,W) float in [-1, 1] (also (T,H,W,3) float in [0, 1]).
        K: (T,3,3) or (3,3) intrinsics in pixels of the video (used by "annotate").
        method: "annotate": the annotation pipeline's SIFT + PnP coarse cameras, Lucas–Kanade tracks
            and bundle adjustment (:class:`aether.annotate.Annotator`; it shares no weights with the
            model). It is an RGB-D pipeline: it lifts tracks with ``depth`` (T,H,W) (metres or any
            consistent unit; invalid = 0 or non-finite); without ``depth`` the depth of the model's
            reconstruction of the video is used (needs ``pipeline``). "model": the camera poses of
            ``pipeline.reconstruct(video)`` (the model's own intrinsics; ``K`` is not used).
        pipeline: an :class:`aether.pipeline.AetherPipeline` (for "model", or the depth of "annotate").
        depth: (T,H,W) depth of the video for "annotate".
        fps: for the model's reconstruction.
        seed: for the model's reconstruction.

    Returns:
        c2w (T,4,4) float64, relative to the first camera (frame 0 = identity).
    """
    from aether.evaluation.runners import to_uint8_video

    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, received {method!r}")
    frames = to_uint8_video(video)
    T, H, W = frames.shape[:3]
    if method == "model" or depth is None:
        if pipeline is None:
            need = (
                "camera recovery by the model" if method == "model" else "depth for 'annotate' (none given)"
            )
            raise ValueError(f"{need}: expected pipeline=AetherPipeline, received None")
        world = pipeline.reconstruct(frames, fps=fps, seed=seed, output_size=(H, W))
        if method == "model":
            return relative_poses(torch.as_tensor(world.c2w, dtype=torch.float64)).numpy()
        depth = world.depth  # 0 where invalid
    depth = np.asarray(depth, dtype=np.float64)
    if depth.shape != (T, H, W):
        raise ValueError(f"depth: expected (T,H,W) = {(T, H, W)} like the video, received {depth.shape}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape not in ((3, 3), (T, 3, 3)):
        raise ValueError(f"K: expected intrinsics (3,3) or (T,3,3) with T = {T}, received {K.shape}")
    K = np.broadcast_to(K, (T, 3, 3))
    from aether.annotate.pipeline import Annotator

    result = Annotator().annotate_slice(frames, depth, np.zeros((T, H, W), bool), np.array(K))
    return relative_poses(torch.as_tensor(result.c2w, dtype=torch.float64)).numpy()
