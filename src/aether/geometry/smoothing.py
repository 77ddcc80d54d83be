"""Pose interpolation (slerp + lerp) and trajectory smoothing, vectorised over frames.

Two families. Ours: a Gaussian or a fixed-interval (Rauch-Tung-Striebel) constant-velocity Kalman
smoother, each one linear filter. The reference's (``*_reference``, the smoother of the published
camera pose evaluation, selected as ``"reference"`` in ``POSE_SMOOTHERS``): a Gaussian pre-smoothing,
a forward-only Kalman filter of the centres and Gaussian-weighted quaternion means, plus the
static-window rule that applies a wider Gaussian to nearly still windows.

Both smoothers are linear filters along time applied at once to the camera centres and to the
sign-continuous unit quaternions of the rotations (renormalised afterwards): a Gaussian kernel, or the
fixed-interval (Rauch-Tung-Striebel) smoother of a constant-velocity Kalman filter. The Kalman gains do
not depend on the data, so the whole forward-backward pass reduces to one (T, T) matrix, computed
once per (T, noise) and applied to every trajectory and channel with a single matmul.
"""

from __future__ import annotations

import functools

import torch
from kornia.geometry.conversions import quaternion_to_rotation_matrix, rotation_matrix_to_quaternion
from torch import Tensor

from aether.geometry.cameras import check_poses

__all__ = [
    "CAMERA_SMOOTHERS",
    "POSE_SMOOTHERS",
    "detect_static_poses",
    "interpolate_poses",
    "matrix_to_quaternion",
    "quaternion_xyzw_to_matrix",
    "smooth_poses_gaussian_reference",
    "smooth_trajectory_reference",
    "smooth_window_reference",
    "kalman_smoother_matrix",
    "quaternion_slerp",
    "smooth_poses_gaussian",
    "smooth_cameras",
    "smooth_poses_kalman",
]


def quaternion_slerp(q0: Tensor, q1: Tensor, weight: Tensor | float) -> Tensor:
    """Spherical linear interpolation of unit quaternions (..., 4) at ``weight`` (...) in [0, 1].

    Takes the shorter arc (q and -q are the same rotation); falls back to normalised lerp for nearly
    equal rotations. Returns (..., 4) unit quaternions in the layout of the inputs.
    """
    if q0.shape[-1] != 4 or q1.shape[-1] != 4:
        raise ValueError(f"q0, q1: expected shapes (..., 4), got {tuple(q0.shape)} and {tuple(q1.shape)}")
    w = torch.as_tensor(weight, dtype=q0.dtype, device=q0.device)[..., None]
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-6
    safe_sin = torch.where(near, torch.ones_like(sin_theta), sin_theta)
    a = torch.where(near, 1.0 - w, torch.sin((1.0 - w) * theta) / safe_sin)
    b = torch.where(near, w, torch.sin(w * theta) / safe_sin)
    return torch.nn.functional.normalize(a * q0 + b * q1, dim=-1)


def interpolate_poses(c2w_a: Tensor, c2w_b: Tensor, weight: Tensor | float) -> Tensor:
    """Interpolate poses (..., 4, 4): slerp of rotations, lerp of centres; ``weight`` (...) = 0 gives a."""
    check_poses(c2w_a, "c2w_a")
    check_poses(c2w_b, "c2w_b")
    w = torch.as_tensor(weight, dtype=c2w_a.dtype, device=c2w_a.device)
    qa = rotation_matrix_to_quaternion(c2w_a[..., :3, :3].contiguous())
    qb = rotation_matrix_to_quaternion(c2w_b[..., :3, :3].contiguous())
    q = quaternion_slerp(qa, qb, w)
    t = torch.lerp(c2w_a[..., :3, 3], c2w_b[..., :3, 3], w[..., None])
    return _compose(q, t)


def _compose(q: Tensor, t: Tensor) -> Tensor:
    """Poses (..., 4, 4) from unit quaternions (..., 4) and centres (..., 3)."""
    out = torch.zeros(*t.shape[:-1], 4, 4, dtype=t.dtype, device=t.device)
    out[..., :3, :3] = quaternion_to_rotation_matrix(q)
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def _num_frames(c2w: Tensor) -> int:
    """T of a trajectory (..., T, 4, 4), after validating it."""
    if not isinstance(c2w, Tensor) or c2w.ndim < 3:
        shape = tuple(c2w.shape) if isinstance(c2w, Tensor) else type(c2w).__name__
        raise ValueError(f"c2w: expected shape (..., T, 4, 4), got {shape}")
    check_poses(c2w)
    return c2w.shape[-3]


def _pose_signal(c2w: Tensor) -> Tensor:
    """(..., T, 4, 4) -> (..., T, 7): centres and quaternions made sign-continuous along T."""
    q = rotation_matrix_to_quaternion(c2w[..., :3, :3].contiguous())
    dots = (q[..., 1:, :] * q[..., :-1, :]).sum(-1)
    flips = torch.where(dots < 0, -torch.ones_like(dots), torch.ones_like(dots))
    signs = torch.cat([torch.ones_like(flips[..., :1]), torch.cumprod(flips, dim=-1)], dim=-1)
    return torch.cat([c2w[..., :3, 3], q * signs[..., None]], dim=-1)


def _filter_poses(c2w: Tensor, operator: Tensor) -> Tensor:
    """Apply a (T, T) linear filter along time to the pose signal and rebuild poses (..., T, 4, 4)."""
    signal = operator.to(device=c2w.device, dtype=c2w.dtype) @ _pose_signal(c2w)
    q = torch.nn.functional.normalize(signal[..., 3:], dim=-1)
    return _compose(q, signal[..., :3])


def smooth_poses_gaussian(c2w: Tensor, sigma: float) -> Tensor:
    """Gaussian smoothing of poses (..., T, 4, 4) along T with standard deviation ``sigma`` frames.

    The kernel is renormalised at the clip ends; rotations are averaged as quaternions (chordal mean).
    ``sigma = 0`` returns the poses unchanged (up to rounding).
    """
    if not sigma >= 0:
        raise ValueError(f"sigma: expected a non-negative number of frames, got {sigma!r}")
    num = _num_frames(c2w)
    idx = torch.arange(num, dtype=torch.float64)
    if sigma == 0:
        kernel = torch.eye(num, dtype=torch.float64)
    else:
        kernel = torch.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
        kernel = kernel / kernel.sum(-1, keepdim=True)
    return _filter_poses(c2w, kernel)


def kalman_smoother_matrix(num_frames: int, process_noise: float, measurement_noise: float) -> Tensor:
    """The (T, T) float64 matrix S such that S @ z is the RTS-smoothed position of measurements z.

    Model per channel: state (position, velocity), x_{t+1} = F x_t + w with F = [[1, 1], [0, 1]] and
    w ~ N(0, q [[1/3, 1/2], [1/2, 1]]) (white acceleration, unit time step), z_t = position + v with
    v ~ N(0, r). Initialised from the first measurement with a diffuse velocity. The forward filter and
    backward pass run once on the coefficient vectors of the measurements (x_t = X_t z, X_t (2, T)).
    """
    return _kalman_smoother_matrix(int(num_frames), float(process_noise), float(measurement_noise)).clone()


@functools.lru_cache(maxsize=64)
def _kalman_smoother_matrix(num_frames: int, process_noise: float, measurement_noise: float) -> Tensor:
    if num_frames < 1:
        raise ValueError(f"num_frames: expected at least 1, got {num_frames}")
    if not (process_noise > 0 and measurement_noise > 0):
        raise ValueError(
            "process_noise, measurement_noise: expected positive values, "
            f"got {process_noise}, {measurement_noise}"
        )
    f64 = torch.float64
    F = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=f64)
    Q = process_noise * torch.tensor([[1.0 / 3.0, 0.5], [0.5, 1.0]], dtype=f64)
    r = float(measurement_noise)
    eye_t = torch.eye(num_frames, dtype=f64)
    X = torch.zeros(2, num_frames, dtype=f64)
    X[0, 0] = 1.0
    P = torch.diag(torch.tensor([r, 1e6 * (r + process_noise)], dtype=f64))
    filtered, covs, predicted, pred_covs = [X], [P], [], []
    for t in range(1, num_frames):
        Xp = F @ X
        Pp = F @ P @ F.T + Q
        gain = Pp[:, 0] / (Pp[0, 0] + r)
        X = Xp + gain[:, None] * (eye_t[t] - Xp[0])
        P = Pp - gain[:, None] * Pp[0:1, :]
        predicted.append(Xp)
        pred_covs.append(Pp)
        filtered.append(X)
        covs.append(P)
    smoothed = [filtered[-1]]
    for t in range(num_frames - 2, -1, -1):
        C = covs[t] @ F.T @ torch.linalg.inv(pred_covs[t])
        smoothed.append(filtered[t] + C @ (smoothed[-1] - predicted[t]))
    return torch.stack([x[0] for x in reversed(smoothed)])


def smooth_poses_kalman(c2w: Tensor, process_noise: float = 1e-3, measurement_noise: float = 1e-2) -> Tensor:
    """Constant-velocity Kalman filter with Rauch-Tung-Striebel backward smoothing of poses (..., T, 4, 4).

    Each centre coordinate and quaternion component is one channel of the same model (see
    :func:`kalman_smoother_matrix`); ``process_noise`` q is the acceleration variance per frame and
    ``measurement_noise`` r the observation variance, in scene units squared for centres and in squared
    quaternion components (about (angle / 2)^2 in radians) for rotations. Larger r / q smooths more.
    """
    num = _num_frames(c2w)
    return _filter_poses(c2w, _kalman_smoother_matrix(num, float(process_noise), float(measurement_noise)))


CAMERA_SMOOTHERS = ("none", "kalman", "gaussian", "reference")
"""Methods of :func:`smooth_cameras`."""


def smooth_cameras(c2w: Tensor, method: str = "kalman", **kwargs: float) -> Tensor:
    """Smoothed camera-to-world poses (T, 4, 4) by name: ``"kalman"`` (:func:`smooth_poses_kalman`,
    keyword ``process_noise`` / ``measurement_noise``), ``"gaussian"`` (:func:`smooth_poses_gaussian`,
    keyword ``sigma``, default 1 frame), ``"reference"`` (:func:`smooth_trajectory_reference`, keyword
    ``window``) or ``"none"`` (returned as given)."""
    if method == "none":
        return c2w
    if method == "kalman":
        return smooth_poses_kalman(c2w, **kwargs)
    if method == "gaussian":
        return smooth_poses_gaussian(c2w, kwargs.pop("sigma", 1.0), **kwargs)
    if method == "reference":
        return smooth_trajectory_reference(c2w, **kwargs)
    raise ValueError(f"unknown smoothing method {method!r}; expected one of {CAMERA_SMOOTHERS}")


# --------------------------------------------------------------------------- the reference smoother
POSE_SMOOTHERS = ("reference", "none")


def matrix_to_quaternion(R: Tensor) -> Tensor:
    """Unit quaternions (..., 4) in (x, y, z, w) order of rotation matrices (..., 3, 3), by the
    largest-component (Shepperd) branch; exact to rounding (no epsilon inside the square root)."""
    m = R
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    diag = torch.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], trace], dim=-1)
    k = diag.argmax(-1)
    cand = []
    for i in range(3):
        j, o = (i + 1) % 3, (i + 2) % 3
        q = torch.empty(*m.shape[:-2], 4, dtype=m.dtype, device=m.device)
        q[..., i] = 1 - trace + 2 * m[..., i, i]
        q[..., j] = m[..., j, i] + m[..., i, j]
        q[..., o] = m[..., o, i] + m[..., i, o]
        q[..., 3] = m[..., o, j] - m[..., j, o]
        cand.append(q)
    q = torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1], 1 + trace], -1
    )
    cand.append(q)
    q = torch.stack(cand, -2).gather(-2, k[..., None, None].expand(*k.shape, 1, 4))[..., 0, :]
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def quaternion_xyzw_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) in (x, y, z, w) order (normalised first)."""
    return quaternion_to_rotation_matrix(torch.nn.functional.normalize(q, dim=-1)[..., [3, 0, 1, 2]])


def _sign_continuous(q: Tensor) -> Tensor:
    """Flip quaternions (T, 4) so each has a non-negative dot product with the previous (flipped) one."""
    dots = (q[1:] * q[:-1]).sum(-1)
    flips = torch.where(dots < 0, -1.0, 1.0).to(q.dtype)
    signs = torch.cat([torch.ones_like(flips[:1]), torch.cumprod(flips, 0)])
    return q * signs[:, None]


def _gaussian_nearest_matrix(num: int, sigma: float, dtype: torch.dtype, truncate: float = 4.0) -> Tensor:
    """(T, T) matrix of a 1-D Gaussian filter (σ = ``sigma``, kernel radius int(truncate·σ + 0.5),
    weights normalised over the full kernel) with edges extended by their nearest value."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights = weights / weights.sum()
    rows = torch.arange(num)[:, None].expand(num, 2 * radius + 1)
    cols = (rows + torch.arange(-radius, radius + 1)[None]).clamp(0, num - 1)
    M = torch.zeros(num, num, dtype=torch.float64)
    M.index_put_((rows, cols), weights.expand(num, -1).clone(), accumulate=True)
    return M.to(dtype)


def _compose_xyzw(q: Tensor, t: Tensor) -> Tensor:
    """Poses (..., 4, 4) from quaternions (..., 4) in (x, y, z, w) order (normalised) and centres."""
    return _compose(torch.nn.functional.normalize(q, dim=-1)[..., [3, 0, 1, 2]], t)


def _check_trajectory(c2w: Tensor) -> int:
    if not isinstance(c2w, Tensor) or c2w.ndim != 3:
        shape = tuple(c2w.shape) if isinstance(c2w, Tensor) else type(c2w).__name__
        raise ValueError(f"c2w: expected shape (T, 4, 4), got {shape}")
    check_poses(c2w)
    return c2w.shape[0]


def smooth_poses_gaussian_reference(c2w: Tensor, window: int = 5) -> Tensor:
    """The reference's Gaussian pose smoothing of a trajectory (T, 4, 4): σ = window / 6 frames,
    edges extended by the nearest pose, centres and sign-continuous quaternions filtered, the
    quaternions renormalised. (The reference accepts odd windows only; any window works here.)"""
    num = _check_trajectory(c2w)
    M = _gaussian_nearest_matrix(num, window / 6.0, c2w.dtype).to(c2w.device)
    q = _sign_continuous(matrix_to_quaternion(c2w[:, :3, :3]))
    return _compose_xyzw(M @ q, M @ c2w[:, :3, 3])


def _kalman_forward(z: Tensor, noise: float = 0.1) -> Tensor:
    """Forward constant-velocity Kalman filter of positions z (T, 3): state (x, v) per axis,
    F = [[1, 1], [0, 1]], R = Q = ``noise``·I, P₀ = I, x₀ = (z₀, 0); Joseph-form covariance update.
    The covariance recursion is the same for every axis and independent of the data."""
    num = z.shape[0]
    out = torch.empty_like(z)
    out[0] = z[0]
    F = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=z.dtype, device=z.device)
    Q = noise * torch.eye(2, dtype=z.dtype, device=z.device)
    P = torch.eye(2, dtype=z.dtype, device=z.device)
    x = torch.stack([z[0], torch.zeros_like(z[0])])  # (2, 3): position and velocity rows
    for i in range(1, num):
        x = F @ x
        P = F @ P @ F.T + Q
        gain = P[:, 0] / (P[0, 0] + noise)  # (2,)
        x = x + gain[:, None] * (z[i] - x[0])[None]
        A = torch.eye(2, dtype=z.dtype, device=z.device)
        A[:, 0] -= gain
        P = A @ P @ A.T + noise * gain[:, None] * gain[None, :]
        out[i] = x[0]
    return out


def smooth_trajectory_reference(c2w: Tensor, window: int = 5) -> Tensor:
    """The reference trajectory smoother (T, 4, 4) -> (T, 4, 4).

    Centres: :func:`smooth_poses_gaussian_reference` with ``window``, then a forward-only
    constant-velocity Kalman filter (R = Q = 0.1·I, P₀ = I, no backward pass). Rotations: for each
    frame the Gaussian-weighted (σ = (window // 2) / 2) mean of the input quaternions within
    ±window // 2 frames (weights renormalised at the ends, each quaternion sign-matched to the
    frame's own), renormalised."""
    num = _check_trajectory(c2w)
    centres = _kalman_forward(smooth_poses_gaussian_reference(c2w, window)[:, :3, 3])
    q = matrix_to_quaternion(c2w[:, :3, :3])
    half = window // 2
    offsets = torch.arange(-half, half + 1, device=c2w.device)
    idx = torch.arange(num, device=c2w.device)[:, None] + offsets[None]
    inside = (idx >= 0) & (idx < num)
    weights = torch.exp(-0.5 * (offsets.to(c2w.dtype) / (half / 2)) ** 2)[None] * inside
    weights = weights / weights.sum(-1, keepdim=True)
    neighbours = q[idx.clamp(0, num - 1)]  # (T, 2·half+1, 4)
    signs = torch.where((neighbours * q[:, None]).sum(-1) < 0, -1.0, 1.0).to(c2w.dtype)
    mean = (weights[..., None] * signs[..., None] * neighbours).sum(1)
    return _compose_xyzw(mean, centres)


def detect_static_poses(c2w: Tensor, threshold: float = 0.01) -> tuple[bool, float, float]:
    """(static, Δt, ΔR) of a trajectory (T, 4, 4): Δt the mean frame-to-frame centre distance, ΔR
    the mean Frobenius norm of consecutive rotation differences; static when both < threshold."""
    _check_trajectory(c2w)
    dt = float(torch.linalg.vector_norm(c2w[1:, :3, 3] - c2w[:-1, :3, 3], dim=-1).mean())
    dr = float(torch.linalg.matrix_norm(c2w[1:, :3, :3] - c2w[:-1, :3, :3]).mean())
    return dt < threshold and dr < threshold, dt, dr


def smooth_window_reference(c2w: Tensor, threshold: float = 0.01) -> tuple[Tensor, dict[str, float]]:
    """The reference's per-window camera smoothing of a window's trajectory (T, 4, 4).

    A static window (:func:`detect_static_poses`) gets :func:`smooth_poses_gaussian_reference` with
    window min(41, max(5, int(5·0.1 / max(Δt + ΔR, 1e-6)))); any other gets
    :func:`smooth_trajectory_reference` with window 5. The reference asserts an odd Gaussian window
    and so stops on an even one; here an even window is used as computed (σ = window / 6) and
    reported (``even_window``). Returns the smoothed poses and {static, trans_diff, rot_diff,
    window, even_window}."""
    static, dt, dr = detect_static_poses(c2w, threshold)
    if not static:
        info = {"static": False, "trans_diff": dt, "rot_diff": dr, "window": 5, "even_window": False}
        return smooth_trajectory_reference(c2w, 5), info
    window = min(41, max(5, int(5 * (0.1 / max(dt + dr, 1e-6)))))
    info = {
        "static": True,
        "trans_diff": dt,
        "rot_diff": dr,
        "window": window,
        "even_window": window % 2 == 0,
    }
    return smooth_poses_gaussian_reference(c2w, window), info
