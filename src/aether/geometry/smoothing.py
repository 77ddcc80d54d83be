"""Pose interpolation (slerp + lerp) and trajectory smoothing, vectorised over frames.

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
    "interpolate_poses",
    "kalman_smoother_matrix",
    "quaternion_slerp",
    "smooth_poses_gaussian",
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
