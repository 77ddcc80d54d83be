"""Independent transcriptions of the published evaluation's steps (AETHER's evaluation scripts and
the helpers they call), written from their behaviour in numpy / scipy / torch as the scripts do,
for tests to compare the library against. Nothing here imports from ``aether``."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation


# --------------------------------------------------------------------------- inputs
def prepare_input(rgb, height=480, width=720, pose=False):
    images = []
    for img in rgb:
        h, w = img.shape[:2]
        aspect = w / h
        new_h, new_w = (height, int(round(height * aspect))) if aspect > width / height else (
            int(round(width / aspect)), width)  # fmt: skip
        if pose:
            new_w = int(round(new_w / 16) * 16)
            new_h = int(round(new_h / 16) * 16)
        img = cv2.resize(img, (new_w, new_h)) / 255.0
        if pose:
            h, w = img.shape[:2]
            top, left = (h - height) // 2, (w - width) // 2
            img = img[top : top + height, left : left + width]
        images.append(img)
    return np.stack(images)


def compute_scale(prediction, target):
    prediction = torch.from_numpy(prediction).float()
    target = torch.from_numpy(target).float()
    mask = torch.ones_like(prediction).bool()
    num = torch.sum(mask * prediction * target, (1, 2))
    den = torch.sum(mask * prediction * prediction, (1, 2))
    scale = torch.zeros_like(num)
    valid = (den != 0).nonzero()
    scale[valid] = num[valid] / den[valid]
    return scale.item()


# --------------------------------------------------------------------------- video depth run
def depth_sliding_window(pipeline, obs, total_frames, target_h=480, target_w=720):
    """The reference's depth windows: pipeline(video) -> disparity (t, target_h, target_w)."""
    t, h, w, _ = obs.shape
    win = 41
    while win > total_frames:
        win -= 8
    ov_h, ov_w = target_h // 8, target_w // 8
    hw = 1 if h <= target_h else math.ceil((h - target_h) / (target_h - ov_h)) + 1
    ww = 1 if w <= target_w else math.ceil((w - target_w) / (target_w - ov_w)) + 1
    sh = (h - target_h) // (hw - 1) if hw > 1 else 0
    sw = (w - target_w) // (ww - 1) if ww > 1 else 0
    t_starts = list(range(0, t - win, 8))
    t_starts.append(t - win)
    tw_disp, tw_ranges = [], []
    for t_start in t_starts:
        t_end = min(t_start + win, t)
        n, stride, horiz = (ww, sw, True) if ww > 1 else (hw, sh, False)
        disps, ranges = [], []
        for i in range(n):
            if horiz:
                h0, h1 = 0, target_h
                w0 = int(i * stride)
                w1 = w0 + target_w
                if w1 > w:
                    w0, w1 = w - target_w, w
            else:
                w0, w1 = 0, target_w
                h0 = int(i * stride)
                h1 = h0 + target_h
                if h1 > h:
                    h0, h1 = h - target_h, h
            disps.append(pipeline(obs[t_start:t_end, h0:h1, w0:w1]))
            ranges.append((w0, w1) if horiz else (h0, h1))
        final = None
        for idx, (d, r) in enumerate(zip(disps, ranges)):
            if idx == 0:
                final = d
                continue
            ov = ranges[idx - 1][1] - r[0]
            if horiz:
                s = compute_scale(d[:, :, :ov].reshape(1, -1, ov), final[:, :, -ov:].reshape(1, -1, ov))
            else:
                s = compute_scale(d[:, :ov, :].reshape(1, ov, -1), final[:, -ov:, :].reshape(1, ov, -1))
            al = s * d
            prev_end = ranges[idx - 1][1]
            if horiz:
                res = np.ones((*disps[0].shape[:-1], r[1]))
                wt = np.linspace(1, 0, ov)[None, None, :]
                res[:, :, : r[0]] = final[:, :, : r[0]]
                res[:, :, prev_end:] = al[:, :, prev_end - r[0] :]
                res[:, :, r[0] : prev_end] = final[:, :, r[0] : prev_end] * wt + al[:, :, :ov] * (1 - wt)
            else:
                res = np.ones((disps[0].shape[0], r[1], disps[0].shape[2]))
                wt = np.linspace(1, 0, ov)[None, :, None]
                res[:, : r[0], :] = final[:, : r[0], :]
                res[:, prev_end:, :] = al[:, prev_end - r[0] :, :]
                res[:, r[0] : prev_end, :] = final[:, r[0] : prev_end, :] * wt + al[:, :ov, :] * (1 - wt)
            final = res
        tw_disp.append(final)
        tw_ranges.append((t_start, t_end))
    final = None
    width = tw_disp[0].shape[-1]
    for idx, (d, (t0, t1)) in enumerate(zip(tw_disp, tw_ranges)):
        if idx == 0:
            final = d
            continue
        ov = tw_ranges[idx - 1][1] - t0
        s = compute_scale(d[:ov].reshape(1, -1, width), final[-ov:].reshape(1, -1, width))
        al = s * d
        res = np.ones((t1, *tw_disp[0].shape[1:]))
        res[:t0] = final[:t0]
        res[tw_ranges[idx - 1][1] :] = al[tw_ranges[idx - 1][1] - t0 :]
        wt = np.linspace(1, 0, ov)[:, None, None]
        res[t0 : tw_ranges[idx - 1][1]] = final[t0 : tw_ranges[idx - 1][1]] * wt + al[:ov] * (1 - wt)
        final = res
    return np.clip(1.0 / final, 0, 1e2)


# --------------------------------------------------------------------------- pose smoothing
def smooth_poses_gaussian(poses, window):
    assert window % 2 == 1
    quats = Rotation.from_matrix(poses[:, :3, :3]).as_quat()
    for i in range(1, len(quats)):
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    sigma = window / 6.0
    trans = gaussian_filter1d(poses[:, :3, 3], sigma, axis=0, mode="nearest")
    q = gaussian_filter1d(quats, sigma, axis=0, mode="nearest")
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = np.tile(np.eye(4), (len(poses), 1, 1))
    out[:, :3, :3] = Rotation.from_quat(q).as_matrix()
    out[:, :3, 3] = trans
    return out


def smooth_trajectory(poses, window=5):
    n = len(poses)
    F = np.eye(6)
    F[:3, 3:] = np.eye(3)
    H = np.hstack([np.eye(3), np.zeros((3, 3))])
    R, Q, P = 0.1 * np.eye(3), 0.1 * np.eye(6), np.eye(6)
    quats = Rotation.from_matrix(poses[:, :3, :3]).as_quat()
    z = smooth_poses_gaussian(poses, window)[:, :3, 3]
    x = np.zeros(6)
    x[:3] = z[0]
    trans = np.zeros((n, 3))
    trans[0] = z[0]
    for i in range(1, n):
        x = F @ x
        P = F @ P @ F.T + Q
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ (z[i] - H @ x)
        A = np.eye(6) - K @ H
        P = A @ P @ A.T + K @ R @ K.T
        trans[i] = x[:3]
    half = window // 2
    out = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        js = range(max(0, i - half), min(n, i + half + 1))
        w = np.exp(-0.5 * ((np.arange(js.start, js.stop) - i) / (half / 2)) ** 2)
        w /= w.sum()
        avg = np.zeros(4)
        for j, wj in zip(js, w):
            avg += wj * (-quats[j] if np.dot(quats[j], quats[i]) < 0 else quats[j])
        out[i, :3, :3] = Rotation.from_quat(avg / np.linalg.norm(avg)).as_matrix()
    out[:, :3, 3] = trans
    return out


def smooth_window(poses):
    """Per-window smoothing: static rule (both mean changes < 0.01), else the trajectory smoother."""
    dt = np.linalg.norm(poses[1:, :3, 3] - poses[:-1, :3, 3], axis=1).mean()
    dr = np.linalg.norm(poses[1:, :3, :3] - poses[:-1, :3, :3], axis=(1, 2)).mean()
    if dt < 0.01 and dr < 0.01:
        window = min(41, max(5, int(5 * (0.1 / max(dt + dr, 1e-6)))))
        return smooth_poses_gaussian(poses, window)
    return smooth_trajectory(poses, 5)


# --------------------------------------------------------------------------- pose windows
def _align(src, tgt):
    r_src, r_tgt = src[:, :, :3], tgt[:, :, :3]
    cov = torch.bmm(r_tgt.transpose(2, 1), r_src).mean(0)
    U, _, V = torch.svd(cov)
    rot = V @ U.t()
    A = torch.bmm(src[:, :, 3][:, None], r_src)[:, 0]
    B = torch.bmm(tgt[:, :, 3][:, None], r_src)[:, 0]
    Amu, Bmu = A.mean(0, keepdim=True), B.mean(0, keepdim=True)
    Ac, Bc = A - Amu, B - Bmu
    s = (Ac * Bc).mean() / (Ac**2).mean().clamp(1e-9)
    return rot[None], Bmu - s * Amu, s


def _apply(src, rot, T, s):
    r_src, t_src = src[:, :, :3], src[:, :, 3]
    rr = torch.bmm(r_src, rot.expand(r_src.shape[0], 3, 3))
    tt = torch.bmm(r_src, T[..., None].repeat(r_src.shape[0], 1, 1))[..., 0] + t_src * s
    return torch.cat([rr, tt.unsqueeze(-1)], dim=-1)


def _slerp(q1, q2, t):
    dot = np.sum(q1 * q2)
    if dot < 0.0:
        q2, dot = -q2, -dot
    if dot > 0.9995:
        r = q1 + t * (q2 - q1)
        return r / np.linalg.norm(r)
    theta0 = np.arccos(dot)
    theta = theta0 * t
    return (np.cos(theta) - dot * np.sin(theta) / np.sin(theta0)) * q1 + np.sin(theta) / np.sin(theta0) * q2


def _interpolate(p1, p2, weight):
    q = _slerp(
        Rotation.from_matrix(p1[:3, :3]).as_quat(), Rotation.from_matrix(p2[:3, :3]).as_quat(), 1 - weight
    )
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat(q).as_matrix()
    out[:3, 3] = weight * p1[:3, 3] + (1 - weight) * p2[:3, 3]
    return out


def pose_sliding_window(window_cameras, t):
    """The reference's pose windows: ``window_cameras(start, size)`` gives raw (size,4,4) cameras."""
    win = 41
    while win > t:
        win -= 8
    starts = list(range(0, t - win, 32))
    if not starts or starts[-1] != t - win:
        starts.append(t - win)
    outs = [
        {"poses": smooth_window(window_cameras(s, win))[:, :3, :4], "range": (s, s + win)} for s in starts
    ]
    final = outs[0]
    for i in range(1, len(outs)):
        prev, curr = final, outs[i]
        ts, pe = curr["range"][0], prev["range"][1]
        ov = pe - ts
        rot, T, s = _align(torch.from_numpy(curr["poses"][:ov]), torch.from_numpy(prev["poses"][-ov:]))
        aligned = _apply(torch.from_numpy(curr["poses"]), rot, T, s).numpy()
        weights = np.linspace(1, 0, ov)
        interp = np.array(
            [_interpolate(prev["poses"][ts + k], aligned[k], w)[:3, :4] for k, w in enumerate(weights)]
        )
        stitch = prev["poses"].shape[0] - ov
        final = {
            "poses": np.concatenate((prev["poses"][:stitch], interp, aligned[ov:]), axis=0),
            "range": (prev["range"][0], curr["range"][-1]),
        }
    poses = np.concatenate([final["poses"], np.zeros((final["poses"].shape[0], 1, 4))], axis=1)
    poses[:, -1, 3] = 1.0
    return smooth_trajectory(poses, 5)


# --------------------------------------------------------------------------- raymap readout
def raymap_to_poses(raymap):
    """The reference's camera readout of a raw raymap (T,6,h,w): origins through the inverse of
    signed log1p (no division by 10), the paper's Algorithm 1 for the axes; the one transcription
    of the reference's ``raymap_to_poses`` (``benchmarks/bench_postprocess.py``) with a unit
    origin scale."""
    from benchmarks.bench_postprocess import ref_raymap_to_poses

    return ref_raymap_to_poses(raymap, ray_o_scale_inv=1.0)[0]
