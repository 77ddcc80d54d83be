"""Coarse cameras (and intrinsics) of a slice from static SIFT matches lifted with the known depth.

``CAMERA_ESTIMATORS`` holds the backends. The default ``"pnp"`` estimator:

1. detects SIFT keypoints on the static support of every frame (dynamic pixels, invalid depth and
   depth edges excluded) and matches consecutive frames (ratio test, mutual nearest neighbours);
2. when the intrinsics are unknown, estimates one focal length f (square pixels, principal point at
   the image centre) by **rigid-alignment consistency**: for a candidate f the matches of several
   frame pairs are lifted to 3D with their depths in both frames; a rigid transform (Umeyama
   without scale, refitted on the best 80 %) aligns them, and the cost is the mean reprojection
   error of the aligned points. A wrong f shears the lifted point sets anisotropically (x, y scale
   with 1/f, z does not), so no rigid motion explains both views unless the camera only translates
   or rolls. The cost is scanned on a log grid and refined with Brent's method;
3. lifts the matched keypoints of frame i-1 to 3D and solves frame i's pose with
   ``cv2.solvePnPRansac`` (then Levenberg–Marquardt on the inliers), chaining the relative poses.

Another estimator (e.g. a DroidCalib-style network) implements :class:`CoarseCameraEstimator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from scipy.optimize import minimize_scalar

from aether.annotate.bundle import Tracks
from aether.annotate.features import detect_sift, match_sift, sample_depth, to_gray
from aether.geometry import umeyama
from aether.registry import Registry

__all__ = [
    "CAMERA_ESTIMATORS",
    "CoarseCameraEstimator",
    "CoarseCameras",
    "PnPCameraEstimator",
    "estimate_focal",
]

CAMERA_ESTIMATORS: Registry = Registry("camera estimator", "aether.annotate.camera_estimators")


@dataclass
class CoarseCameras:
    """c2w (T,4,4) with frame 0 = identity, K (T,3,3), diagnostics (``info``) and, optionally, the
    frame-to-frame correspondences the estimate rests on as two-observation :class:`Tracks`
    (``matches``), which the refinement adds to its long tracks."""

    c2w: np.ndarray
    K: np.ndarray
    focal_estimated: bool
    info: dict[str, Any] = field(default_factory=dict)
    matches: Tracks | None = None


class CoarseCameraEstimator:
    """Interface: ``estimator(frames (T,H,W,3) uint8, depth (T,H,W), support (T,H,W) bool, K (T,3,3) | None)
    -> CoarseCameras``; ``support`` marks static pixels with valid depth (the only pixels to use)."""

    def __call__(
        self, frames: np.ndarray, depth: np.ndarray, support: np.ndarray, K: np.ndarray | None
    ) -> CoarseCameras:
        raise NotImplementedError


def _intrinsics(focal: float, height: int, width: int) -> np.ndarray:
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def _alignment_cost(
    focals: np.ndarray, pairs: list[tuple[np.ndarray, ...]], centre: np.ndarray
) -> np.ndarray:
    """Rigid-alignment reprojection cost (F,) of candidate focal lengths ``focals`` (F,).

    pairs: (uv_a (N,2), depth_a (N,), uv_b (N,2), depth_b (N,)) per frame pair.
    """
    f = torch.as_tensor(focals, dtype=torch.float64)[:, None, None]
    total = torch.zeros(len(focals), dtype=torch.float64)
    for uv_a, d_a, uv_b, d_b in pairs:
        lifted = []
        for uv, d in ((uv_a, d_a), (uv_b, d_b)):
            xy = torch.as_tensor((uv - centre) * d[:, None])[None] / f
            lifted.append(torch.cat([xy, torch.as_tensor(d)[None, :, None].expand(len(focals), -1, 1)], -1))
        src, dst = lifted
        weights = torch.ones(src.shape[:2], dtype=torch.float64)
        for _ in range(2):  # fit, then refit on the best 80 % (trimmed)
            _, R, t = umeyama(src, dst, weights, with_scale=False)
            moved = src @ R.transpose(-1, -2) + t[:, None]
            proj = f * moved[..., :2] / moved[..., 2:].clamp_min(1e-6) + torch.as_tensor(centre)
            err = (proj - torch.as_tensor(uv_b)).norm(dim=-1)
            weights = (err <= err.quantile(0.8, dim=1, keepdim=True)).double()
        total += (err * weights).sum(1) / weights.sum(1)
    return (total / len(pairs)).numpy()


def estimate_focal(
    pairs: list[tuple[np.ndarray, ...]],
    height: int,
    width: int,
    *,
    fov_range=(20.0, 120.0),
    grid: int = 48,
    min_curvature: float = 0.02,
) -> tuple[float, dict[str, float]]:
    """Focal length (pixels) by rigid-alignment consistency (see the module docstring).

    Returns the focal and diagnostics: the cost at the optimum, its relative rise at ±5 % of f
    (``focal_curvature``; near 0 when the motion does not determine the focal, e.g. a camera that
    only translates) and ``focal_observable`` = curvature >= ``min_curvature``.
    """
    if not pairs:
        raise ValueError("focal estimation needs at least one frame pair with matches")
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    lo, hi = (0.5 * width / np.tan(np.radians(fov) / 2) for fov in (fov_range[1], fov_range[0]))
    candidates = np.geomspace(lo, hi, grid)
    costs = _alignment_cost(candidates, pairs, centre)
    best = int(np.argmin(costs))
    step = candidates[1] / candidates[0]
    bracket = (np.log(candidates[best] / step), np.log(candidates[best] * step))
    sol = minimize_scalar(
        lambda logf: float(_alignment_cost(np.array([np.exp(logf)]), pairs, centre)[0]),
        bounds=bracket,
        method="bounded",
        options={"xatol": 1e-4},
    )
    focal = float(np.exp(sol.x))
    around = _alignment_cost(np.array([focal * 0.95, focal * 1.05]), pairs, centre)
    curvature = float(around.mean() / max(sol.fun, 1e-9) - 1.0)
    return focal, {
        "focal_cost": float(sol.fun),
        "focal_curvature": curvature,
        "focal_observable": curvature >= min_curvature,
    }


@CAMERA_ESTIMATORS.register("pnp")
class PnPCameraEstimator(CoarseCameraEstimator):
    """Chained PnP-RANSAC on static SIFT matches lifted with depth; focal by rigid-alignment consistency.

    Args:
        max_features: SIFT keypoints per frame.
        ratio: Lowe ratio for matches.
        ransac_px: PnP-RANSAC inlier threshold in pixels.
        focal_gap: frame gap of the pairs used for focal estimation (wider = more rotation).
        focal_pairs: at most this many pairs are used for focal estimation.
        max_matches: PnP inliers per frame pair kept as ``matches`` for the refinement (evenly
            subsampled; 0 keeps none).
    """

    def __init__(
        self,
        *,
        max_features: int = 2000,
        ratio: float = 0.8,
        ransac_px: float = 2.0,
        focal_gap: int = 4,
        focal_pairs: int = 6,
        max_matches: int = 200,
    ) -> None:
        self.max_features = max_features
        self.ratio = ratio
        self.ransac_px = ransac_px
        self.focal_gap = focal_gap
        self.focal_pairs = focal_pairs
        self.max_matches = max_matches

    def _correspondences(self, feats, depth, a: int, b: int) -> tuple[np.ndarray, ...]:
        (uv_a, desc_a), (uv_b, desc_b) = feats[a], feats[b]
        idx = match_sift(desc_a, desc_b, self.ratio)
        uv_a, uv_b = uv_a[idx[:, 0]].astype(np.float64), uv_b[idx[:, 1]].astype(np.float64)
        d_a, d_b = sample_depth(depth[a], uv_a), sample_depth(depth[b], uv_b)
        ok = (d_a > 0) & (d_b > 0)
        return uv_a[ok], d_a[ok], uv_b[ok], d_b[ok]

    def __call__(
        self, frames: np.ndarray, depth: np.ndarray, support: np.ndarray, K: np.ndarray | None
    ) -> CoarseCameras:
        T, H, W = depth.shape
        feats = [detect_sift(to_gray(f), m, self.max_features) for f, m in zip(frames, support)]
        info: dict[str, Any] = {}
        focal_estimated = K is None
        if K is None:
            gap = max(1, min(self.focal_gap, T - 1))
            starts = np.unique(np.linspace(0, T - 1 - gap, min(self.focal_pairs, T - gap)).astype(int))
            pairs = [self._correspondences(feats, depth, int(a), int(a) + gap) for a in starts]
            pairs = [p for p in pairs if len(p[0]) >= 8]
            focal, focal_info = estimate_focal(pairs, H, W)
            info.update(focal_info)
            K = np.broadcast_to(_intrinsics(focal, H, W), (T, 3, 3)).copy()
        c2w = np.tile(np.eye(4), (T, 1, 1))
        inliers, failed, matches = [], [], []
        for i in range(1, T):
            uv_a, d_a, uv_b, d_b = self._correspondences(feats, depth, i - 1, i)
            rel = None
            if len(uv_a) >= 6:
                Kinv = np.linalg.inv(K[i - 1])
                pts = (np.concatenate([uv_a, np.ones((len(uv_a), 1))], 1) @ Kinv.T) * d_a[:, None]
                ok, rvec, tvec, idx = cv2.solvePnPRansac(
                    pts, uv_b, K[i], None, reprojectionError=self.ransac_px, iterationsCount=200,
                    confidence=0.999, flags=cv2.SOLVEPNP_EPNP,
                )  # fmt: skip
                if ok and idx is not None and len(idx) >= 6:
                    idx = idx.ravel()
                    rvec, tvec = cv2.solvePnPRefineLM(pts[idx], uv_b[idx], K[i], None, rvec, tvec)
                    rel = np.eye(4)
                    rel[:3, :3], rel[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
                    inliers.append(len(idx))
                    keep = idx[np.linspace(0, len(idx) - 1, min(len(idx), self.max_matches)).astype(int)]
                    matches.append(_pair_tracks(T, i - 1, uv_a[keep], d_a[keep], uv_b[keep], d_b[keep]))
            if rel is None:  # no pose: keep the previous camera, record the failure
                failed.append(i)
                rel = np.eye(4)
            c2w[i] = c2w[i - 1] @ np.linalg.inv(rel)
        info.update(pnp_inliers_median=float(np.median(inliers)) if inliers else 0.0, pnp_failed=failed)
        return CoarseCameras(
            c2w=c2w,
            K=np.asarray(K, dtype=np.float64),
            focal_estimated=focal_estimated,
            info=info,
            matches=Tracks.concatenate(matches) if matches and self.max_matches > 0 else None,
        )


def _pair_tracks(T: int, a: int, uv_a, d_a, uv_b, d_b) -> Tracks:
    """Correspondences between frames a and a+1 as tracks (N,T) observed in those two frames only."""
    n = len(uv_a)
    uv, visible, depth = np.zeros((n, T, 2)), np.zeros((n, T), bool), np.zeros((n, T))
    uv[:, a], uv[:, a + 1] = uv_a, uv_b
    depth[:, a], depth[:, a + 1] = d_a, d_b
    visible[:, a : a + 2] = True
    return Tracks(uv, visible, depth)
