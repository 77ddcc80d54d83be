"""Sparse bundle adjustment of RGB-D slices with scipy's trust-region least squares.

Unknowns: the camera-to-world pose of every frame but the first (axis-angle + translation, the first
frame fixes the gauge) and, optionally, pinhole intrinsics (fx, fy, cx, cy) shared by the slice.
Observations are tracks of static points with the metric depth sampled at each observation.

Every track is anchored at its first observation ``r`` (lifted to 3D with its depth); for each later
observation ``j`` of the track the residuals are

- forward reprojection: project the anchor into frame ``j`` and compare with the tracked pixel (px);
- backward reprojection: lift the pixel in ``j`` with its own depth, project into ``r`` (px);
- 3D error: anchor moved into frame ``j`` minus the point lifted in ``j``, divided by its depth and
  multiplied by the focal lengths (x, y: the current fx, fy; z: the initial focal) so that it reads
  in pixels too (weighted by ``depth_weight``).

Poses are updated by left perturbations ``R <- exp([w]x) R, t <- t + tau`` around the current
estimate. The Jacobian is analytic and sparse (a row touches the poses of ``r`` and ``j`` and the
intrinsics); :func:`scipy.optimize.least_squares` (trust-region reflective) solves each step with
LSMR. The loss is Cauchy with scale ``f_scale`` pixels, minimised by iteratively reweighted least
squares (weights 1 / (1 + (r / f_scale)^2)): scipy's built-in robust-loss rescaling makes the LSMR
trust-region steps crawl, the reweighted problems converge in a few steps. Pairs whose forward
reprojection error exceeds ``outlier_px`` get weight zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation
from threadpoolctl import threadpool_limits

__all__ = ["BundleAdjuster", "BundleResult", "Tracks", "reprojection_errors"]


@dataclass
class Tracks:
    """Point tracks over a slice of ``T`` frames.

    Attributes:
        uv: (N, T, 2) float pixel positions (u, v) of each track in each frame.
        visible: (N, T) bool, True where the track is observed (and static).
        depth: (N, T) float metric depth sampled at ``uv``; 0 where unknown.
    """

    uv: np.ndarray
    visible: np.ndarray
    depth: np.ndarray

    def __post_init__(self) -> None:
        n, t = self.visible.shape
        if self.uv.shape != (n, t, 2) or self.depth.shape != (n, t):
            raise ValueError(
                f"tracks need uv (N,T,2), visible (N,T), depth (N,T); got {self.uv.shape}, "
                f"{self.visible.shape}, {self.depth.shape}"
            )

    @property
    def num_frames(self) -> int:
        return self.visible.shape[1]

    @staticmethod
    def concatenate(parts: list[Tracks]) -> Tracks:
        """All tracks of ``parts`` (same number of frames), in order."""
        return Tracks(
            np.concatenate([p.uv for p in parts]),
            np.concatenate([p.visible for p in parts]),
            np.concatenate([p.depth for p in parts]),
        )

    def subset(self, keep: np.ndarray) -> Tracks:
        """The tracks selected by the bool or index array ``keep``."""
        return Tracks(self.uv[keep], self.visible[keep], self.depth[keep])

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anchor pairs ``(track, r, j)`` (each (M,)): anchor frame r = first observation with depth."""
        usable = self.visible & (self.depth > 0)
        has = usable.any(axis=1)
        anchor = np.argmax(usable, axis=1)
        track, frame = np.nonzero(usable & has[:, None])
        later = frame > anchor[track]
        return track[later], anchor[track[later]], frame[later]


@dataclass
class BundleResult:
    """Refined cameras and the solver's summary.

    Attributes:
        c2w: (T, 4, 4) refined camera-to-world poses (frame 0 unchanged).
        K: (T, 3, 3) refined intrinsics.
        cost_initial / cost_final: robust cost before and after.
        num_residuals: rows of the problem; num_params: unknowns; nfev: residual evaluations.
        inliers: (M,) bool per anchor pair, forward reprojection error below the outlier threshold.
    """

    c2w: np.ndarray
    K: np.ndarray
    cost_initial: float
    cost_final: float
    num_residuals: int
    num_params: int
    nfev: int
    inliers: np.ndarray


def _lift(uv: np.ndarray, depth: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """Pixels (M,2) with depths (M,) to camera points (M,3); intr (M,4) or (4,) = fx, fy, cx, cy."""
    intr = np.broadcast_to(intr, (*depth.shape, 4))
    x = (uv[:, 0] - intr[:, 2]) / intr[:, 0]
    y = (uv[:, 1] - intr[:, 3]) / intr[:, 1]
    return np.stack([x * depth, y * depth, depth], axis=-1)


def _project(points: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """Camera points (M,3) to pixels (M,2); points behind the camera get z clamped to 1e-6."""
    intr = np.broadcast_to(intr, (points.shape[0], 4))
    z = np.maximum(points[:, 2], 1e-6)
    return np.stack(
        [intr[:, 0] * points[:, 0] / z + intr[:, 2], intr[:, 1] * points[:, 1] / z + intr[:, 3]], -1
    )


def _intr_from_K(K: np.ndarray) -> np.ndarray:
    return np.stack([K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]], axis=-1)


def _K_from_intr(intr: np.ndarray) -> np.ndarray:
    K = np.zeros((*intr.shape[:-1], 3, 3))
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2] = np.moveaxis(intr, -1, 0)
    K[..., 2, 2] = 1.0
    return K


def _skew(v: np.ndarray) -> np.ndarray:
    """(M,3) vectors to (M,3,3) cross-product matrices."""
    out = np.zeros((*v.shape, 3))
    out[:, 0, 1], out[:, 0, 2], out[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    out[:, 1, 0], out[:, 2, 0], out[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    return out


def _project_jacobian(points: np.ndarray, intr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d pixel / d point (M,2,3) and d pixel / d (fx, fy, cx, cy) (M,2,4) at camera points (M,3)."""
    z = np.maximum(points[:, 2], 1e-6)
    x, y = points[:, 0] / z, points[:, 1] / z
    d_point = np.zeros((len(z), 2, 3))
    d_point[:, 0, 0], d_point[:, 0, 2] = intr[:, 0] / z, -intr[:, 0] * x / z
    d_point[:, 1, 1], d_point[:, 1, 2] = intr[:, 1] / z, -intr[:, 1] * y / z
    d_intr = np.zeros((len(z), 2, 4))
    d_intr[:, 0, 0], d_intr[:, 1, 1], d_intr[:, 0, 2], d_intr[:, 1, 3] = x, y, 1.0, 1.0
    return d_point, d_intr


def _lift_jacobian(uv: np.ndarray, depth: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """d lifted point / d (fx, fy, cx, cy): (M,3,4)."""
    out = np.zeros((len(depth), 3, 4))
    out[:, 0, 0] = -depth * (uv[:, 0] - intr[:, 2]) / intr[:, 0] ** 2
    out[:, 1, 1] = -depth * (uv[:, 1] - intr[:, 3]) / intr[:, 1] ** 2
    out[:, 0, 2] = -depth / intr[:, 0]
    out[:, 1, 3] = -depth / intr[:, 1]
    return out


def _pair_residuals(
    R: np.ndarray,
    t: np.ndarray,
    intr: np.ndarray,
    tracks: Tracks,
    pairs,
    depth_weight: float,
    f0: float,
    jacobian: bool = False,
):
    """Residuals (M, 7) of anchor pairs for poses R (T,3,3), t (T,3) and per-frame intr (T,4).

    With ``jacobian``, also returns the derivatives (M, 7, 16): columns 0:3 rotation and 3:6
    translation perturbation of frame r, 6:12 the same for frame j, 12:16 (fx, fy, cx, cy).
    """
    n, r, j = pairs
    uv_r, uv_j = tracks.uv[n, r], tracks.uv[n, j]
    d_r, d_j = tracks.depth[n, r], tracks.depth[n, j]
    intr_r, intr_j = intr[r], intr[j]
    x_r, x_j = _lift(uv_r, d_r, intr_r), _lift(uv_j, d_j, intr_j)
    Rr, Rj = R[r], R[j]
    world = np.einsum("mab,mb->ma", Rr, x_r) + t[r]
    pred_j = np.einsum("mba,mb->ma", Rj, world - t[j])
    world_j = np.einsum("mab,mb->ma", Rj, x_j) + t[j]
    pred_r = np.einsum("mba,mb->ma", Rr, world_j - t[r])
    # lateral errors in pixels of the current focal lengths (a fixed scale would reward larger focals,
    # which shrink the lifted points), depth errors relative to depth times the initial focal
    focal = np.concatenate([intr_j[:, :2], np.full((len(n), 1), f0)], axis=1)
    scale = depth_weight * focal / np.maximum(x_j[:, 2:], 1e-6)
    res = np.concatenate(
        [_project(pred_j, intr_j) - uv_j, _project(pred_r, intr_r) - uv_r, (pred_j - x_j) * scale], axis=1
    )
    if not jacobian:
        return res
    RjT, RrT = Rj.transpose(0, 2, 1), Rr.transpose(0, 2, 1)
    # d pred_j / d (ω_r, τ_r, ω_j, τ_j, intr)
    dj = np.concatenate(
        [
            -RjT @ _skew(world - t[r]),
            RjT,
            RjT @ _skew(world - t[j]),
            -RjT,
            RjT @ Rr @ _lift_jacobian(uv_r, d_r, intr_r),
        ],
        axis=2,
    )
    dr = np.concatenate(
        [
            RrT @ _skew(world_j - t[r]),
            -RrT,
            -RrT @ _skew(world_j - t[j]),
            RrT,
            RrT @ Rj @ _lift_jacobian(uv_j, d_j, intr_j),
        ],
        axis=2,
    )
    pj_point, pj_intr = _project_jacobian(pred_j, intr_j)
    pr_point, pr_intr = _project_jacobian(pred_r, intr_r)
    fwd = pj_point @ dj
    fwd[:, :, 12:] += pj_intr
    bwd = pr_point @ dr
    bwd[:, :, 12:] += pr_intr
    err3d = dj.copy()
    err3d[:, :, 12:] -= _lift_jacobian(uv_j, d_j, intr_j)
    err3d *= scale[:, :, None]
    unscaled = depth_weight * (pred_j - x_j) / np.maximum(x_j[:, 2:], 1e-6)
    err3d[:, 0, 12] += unscaled[:, 0]
    err3d[:, 1, 13] += unscaled[:, 1]
    return res, np.concatenate([fwd, bwd, err3d], axis=1)


def reprojection_errors(c2w: np.ndarray, K: np.ndarray, tracks: Tracks) -> np.ndarray:
    """Forward reprojection error (M,) in pixels of every anchor pair under cameras c2w (T,4,4), K (T,3,3)."""
    pairs = tracks.pairs()
    res = _pair_residuals(c2w[:, :3, :3], c2w[:, :3, 3], _intr_from_K(K), tracks, pairs, 0.0, 1.0)
    return np.linalg.norm(res[:, :2], axis=1)


class BundleAdjuster:
    """Sparse RGB-D bundle adjustment (see module docstring).

    Args:
        optimize_intrinsics: also refine the intrinsics, shared by all frames of the slice.
        square_pixels: with ``optimize_intrinsics``, one focal length f = fx = fy (plus cx, cy); else
            fx and fy are separate unknowns (only observable when the camera rotates about both axes).
        depth_weight: weight of the 3D residual relative to the reprojection residuals.
        f_scale: Cauchy loss scale in pixels.
        outlier_px: forward reprojection error beyond which a pair counts as an outlier (weight 0).
        iterations: reweighting rounds of the Cauchy loss (stops early once the weights settle).
        max_nfev: cap on residual evaluations per round.
    """

    def __init__(
        self,
        *,
        optimize_intrinsics: bool = False,
        depth_weight: float = 1.0,
        f_scale: float = 0.5,
        outlier_px: float = 1.5,
        square_pixels: bool = True,
        iterations: int = 5,
        max_nfev: int = 50,
    ) -> None:
        if f_scale <= 0 or outlier_px <= 0 or depth_weight < 0 or iterations < 1:
            raise ValueError(
                "BundleAdjuster expects f_scale > 0, outlier_px > 0, depth_weight >= 0, iterations >= 1; "
                f"got {f_scale}, {outlier_px}, {depth_weight}, {iterations}"
            )
        self.optimize_intrinsics = optimize_intrinsics
        self.depth_weight = depth_weight
        self.f_scale = f_scale
        self.outlier_px = outlier_px
        self.square_pixels = square_pixels
        self.iterations = iterations
        self.max_nfev = max_nfev

    def __call__(self, c2w: np.ndarray, K: np.ndarray, tracks: Tracks) -> BundleResult:
        """Refine initial cameras c2w (T,4,4) and K (T,3,3) against ``tracks`` (T frames)."""
        # LSMR runs many small BLAS products; threaded BLAS only adds contention to them
        with threadpool_limits(limits=1, user_api="blas"):
            return self._solve(c2w, K, tracks)

    def _solve(self, c2w: np.ndarray, K: np.ndarray, tracks: Tracks) -> BundleResult:
        T = c2w.shape[0]
        if c2w.shape != (T, 4, 4) or K.shape != (T, 3, 3) or tracks.num_frames != T:
            raise ValueError(
                f"expected c2w (T,4,4), K (T,3,3) and tracks over T frames; got {c2w.shape}, {K.shape}, "
                f"{tracks.num_frames} frames"
            )
        pairs = tracks.pairs()
        if pairs[0].size == 0:
            raise ValueError("bundle adjustment needs tracks observed in at least two frames")
        c2w = np.asarray(c2w, dtype=np.float64)
        intr0 = _intr_from_K(np.asarray(K, dtype=np.float64))
        f0 = float(intr0[:, :2].mean())
        R, t = c2w[:, :3, :3].copy(), c2w[:, :3, 3].copy()
        n_pose = 6 * (T - 1)
        if self.optimize_intrinsics:
            mean = intr0.mean(axis=0)
            intr_x = np.array([mean[:2].mean(), *mean[2:]] if self.square_pixels else mean)
        else:
            intr_x = np.zeros(0)

        def unpack(params: np.ndarray, R0: np.ndarray, t0: np.ndarray):
            delta = params[:n_pose].reshape(T - 1, 6)
            R = np.concatenate([R0[:1], Rotation.from_rotvec(delta[:, :3]).as_matrix() @ R0[1:]])
            t = np.concatenate([t0[:1], t0[1:] + delta[:, 3:]])
            if not self.optimize_intrinsics:
                return R, t, intr0
            intr = (
                np.concatenate([params[n_pose : n_pose + 1], params[n_pose:]])
                if self.square_pixels
                else params[n_pose:]
            )
            return R, t, np.broadcast_to(intr, (T, 4))

        m, n_cols = pairs[0].size, n_pose + intr_x.size
        rows, cols, valid = self._layout(pairs, T)
        res = _pair_residuals(R, t, intr0, tracks, pairs, self.depth_weight, f0)
        cost_initial = _cauchy_cost(res, self.f_scale)
        weights = np.ones_like(res)
        nfev = 0
        intr = intr0
        for _ in range(self.iterations):
            sqrt_w = np.sqrt(weights)
            R0, t0 = R, t

            def fun(p, sqrt_w=sqrt_w, R0=R0, t0=t0):
                return (
                    sqrt_w * _pair_residuals(*unpack(p, R0, t0), tracks, pairs, self.depth_weight, f0)
                ).ravel()

            def jac(p, sqrt_w=sqrt_w, R0=R0, t0=t0):
                _, J = _pair_residuals(
                    *unpack(p, R0, t0), tracks, pairs, self.depth_weight, f0, jacobian=True
                )
                J = J * sqrt_w[:, :, None]
                if not self.optimize_intrinsics:
                    J = J[..., :12]
                elif self.square_pixels:
                    J = np.concatenate([J[..., :12], J[..., 12:13] + J[..., 13:14], J[..., 14:]], axis=2)
                return coo_matrix((J[valid], (rows[valid], cols[valid])), shape=(7 * m, n_cols)).tocsr()

            sol = least_squares(
                fun,
                np.concatenate([np.zeros(n_pose), intr_x]),
                jac=jac,
                method="trf",
                tr_solver="lsmr",
                x_scale="jac",
                max_nfev=self.max_nfev,
            )
            nfev += sol.nfev
            R, t, intr = unpack(sol.x, R0, t0)
            intr_x = sol.x[n_pose:]
            res = _pair_residuals(R, t, intr, tracks, pairs, self.depth_weight, f0)
            inliers = np.linalg.norm(res[:, :2], axis=1) < self.outlier_px
            new_weights = inliers[:, None] / (1.0 + (res / self.f_scale) ** 2)
            converged = np.abs(new_weights - weights).max() < 1e-3
            weights = new_weights
            if converged or inliers.sum() < 6:
                break
        out = np.tile(np.eye(4), (T, 1, 1))
        out[:, :3, :3], out[:, :3, 3] = R, t
        return BundleResult(
            c2w=out,
            K=_K_from_intr(np.array(intr)),
            cost_initial=cost_initial,
            cost_final=_cauchy_cost(res, self.f_scale),
            num_residuals=int(7 * m),
            num_params=int(n_pose + intr_x.size),
            nfev=int(nfev),
            inliers=inliers,
        )

    def _layout(self, pairs, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row and column (M,7,C) of every Jacobian entry, and which entries exist (frame 0 is fixed)."""
        _, r, j = pairs
        m = r.size
        n_pose = 6 * (T - 1)
        pose_cols = [6 * (f - 1)[:, None] + np.arange(6) for f in (r, j)]
        pose_ok = [np.repeat((f > 0)[:, None], 6, axis=1) for f in (r, j)]
        if not self.optimize_intrinsics:
            intr_cols, intr_ok = np.zeros((m, 0), int), np.zeros((m, 0), bool)
        else:
            k = 3 if self.square_pixels else 4
            intr_cols, intr_ok = np.broadcast_to(n_pose + np.arange(k), (m, k)), np.ones((m, k), bool)
        cols = np.concatenate([*pose_cols, intr_cols], axis=1)
        ok = np.concatenate([*pose_ok, intr_ok], axis=1)
        c = cols.shape[1]
        rows = np.broadcast_to(7 * np.arange(m)[:, None, None] + np.arange(7)[None, :, None], (m, 7, c))
        return rows, np.broadcast_to(cols[:, None], (m, 7, c)), np.broadcast_to(ok[:, None], (m, 7, c))


def _cauchy_cost(residuals: np.ndarray, f_scale: float) -> float:
    """scipy's Cauchy cost 0.5·Σ f²·log(1 + (r/f)²)."""
    return float(0.5 * f_scale**2 * np.log1p((residuals / f_scale) ** 2).sum())
