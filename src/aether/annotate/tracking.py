"""Long-term point trackers for the refinement stage.

A tracker maps a video and its static-support masks to point tracks; it knows nothing about depth
or cameras. ``TRACKERS`` holds the backends: ``"lucas_kanade"`` (default, OpenCV pyramidal
Lucas–Kanade on Shi-Tomasi or SIFT points with a forward-backward check) and ``"cotracker"``
(a CoTracker3 predictor loaded from a local checkout, used when one is available).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from aether.annotate.features import detect_sift, to_gray
from aether.registry import Registry

__all__ = ["TRACKERS", "CoTrackerTracker", "LucasKanadeTracker", "Tracker"]

TRACKERS: Registry = Registry("tracker", "aether.annotate.trackers")


class Tracker:
    """Interface: ``tracker(frames (T,H,W,3) uint8, support (T,H,W) bool) -> (uv (N,T,2), visible (N,T))``.

    ``support`` marks pixels where new tracks may start (static, valid depth). Callers still discard
    observations that land outside the support of their frame.
    """

    def __call__(self, frames: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@TRACKERS.register("lucas_kanade")
class LucasKanadeTracker(Tracker):
    """Pyramidal Lucas–Kanade tracks, checked forward-backward, re-seeded when they thin out.

    Args:
        max_points: target number of live tracks.
        detector: ``"shi-tomasi"`` (cv2.goodFeaturesToTrack) or ``"sift"`` keypoints as seeds.
        min_distance: minimum spacing in pixels between seeds and live tracks.
        window: LK window size; levels: pyramid levels.
        fb_threshold: maximum forward-backward error in pixels.
        max_length: tracks are ended after this many frames (limits drift); None = unlimited.
    """

    def __init__(
        self,
        *,
        max_points: int = 400,
        detector: str = "shi-tomasi",
        min_distance: int = 6,
        window: int = 21,
        levels: int = 3,
        fb_threshold: float = 0.5,
        max_length: int | None = 8,
    ) -> None:
        if detector not in ("shi-tomasi", "sift"):
            raise ValueError(f"detector must be 'shi-tomasi' or 'sift', got {detector!r}")
        self.max_points = max_points
        self.detector = detector
        self.min_distance = min_distance
        self.lk = {
            "winSize": (window, window),
            "maxLevel": levels,
            "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
        }
        self.fb_threshold = fb_threshold
        self.max_length = max_length

    def _seed(self, gray: np.ndarray, mask: np.ndarray, count: int) -> np.ndarray:
        if count <= 0 or not mask.any():
            return np.zeros((0, 2), np.float32)
        if self.detector == "sift":
            uv, _ = detect_sift(gray, mask, max_features=count)
            return uv[:count]
        pts = cv2.goodFeaturesToTrack(
            gray,
            maxCorners=count,
            qualityLevel=0.01,
            minDistance=self.min_distance,
            mask=mask.astype(np.uint8),
        )
        return np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2)

    def __call__(self, frames: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T, H, W = support.shape
        if frames.shape != (T, H, W, 3):
            raise ValueError(f"frames must be (T,H,W,3) matching support {support.shape}, got {frames.shape}")
        grays = [to_gray(f) for f in frames]
        uv = np.full((0, T, 2), np.nan, np.float32)  # NaN where a track is not visible
        live = np.zeros(0, int)  # rows of uv still tracked
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.min_distance + 1,) * 2)
        for t in range(T):
            if t > 0 and live.size:
                pos = uv[live, t - 1].reshape(-1, 1, 2)
                fwd, st1, _ = cv2.calcOpticalFlowPyrLK(grays[t - 1], grays[t], pos, None, **self.lk)
                bwd, st2, _ = cv2.calcOpticalFlowPyrLK(grays[t], grays[t - 1], fwd, None, **self.lk)
                fwd = fwd.reshape(-1, 2)
                ok = (st1.ravel() == 1) & (st2.ravel() == 1)
                ok &= np.linalg.norm((bwd - pos).reshape(-1, 2), axis=1) < self.fb_threshold
                ok &= (fwd[:, 0] >= 0) & (fwd[:, 1] >= 0) & (fwd[:, 0] <= W - 1) & (fwd[:, 1] <= H - 1)
                if self.max_length is not None:
                    ok &= np.isfinite(uv[live, :, 0]).sum(axis=1) < self.max_length
                live = live[ok]
                uv[live, t] = fwd[ok]
            need = self.max_points - live.size
            if need > self.max_points // 5:
                occupied = np.zeros((H, W), np.uint8)
                pix = np.round(uv[live, t]).astype(int)
                occupied[pix[:, 1], pix[:, 0]] = 1
                free = support[t] & (cv2.dilate(occupied, disk) == 0)
                seeds = self._seed(grays[t], free, need)
                new = np.full((len(seeds), T, 2), np.nan, np.float32)
                new[:, t] = seeds
                live = np.concatenate([live, np.arange(len(uv), len(uv) + len(seeds))])
                uv = np.concatenate([uv, new])
        visible = np.isfinite(uv[..., 0])
        return np.nan_to_num(uv), visible


@TRACKERS.register("cotracker")
class CoTrackerTracker(Tracker):
    """CoTracker3 (offline) on a grid of query points sampled from the first frame's support.

    Args:
        model: a loaded CoTracker predictor (``model(video (1,T,3,H,W) float 0-255, queries=(1,N,3))
            -> (tracks (1,T,N,2), visibility (1,T,N))``), or None to build
            ``cotracker.predictor.CoTrackerPredictor`` from ``checkpoint``.
        repo: a co-tracker checkout to import from when the package is not installed.
        checkpoint: local CoTracker3 offline weights (``scaled_offline.pth``).
        max_points: number of query points; device: torch device for the model.
    """

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        *,
        repo: str | Path | None = None,
        checkpoint: str | Path | None = None,
        max_points: int = 400,
        device: str = "cpu",
    ) -> None:
        if model is None:
            if checkpoint is None or not Path(checkpoint).is_file():
                raise FileNotFoundError(f"CoTracker3 needs a local offline checkpoint, got {checkpoint!r}")
            if repo is not None:  # a co-tracker checkout that is not pip-installed
                sys.path.insert(0, str(repo))
            from cotracker.predictor import CoTrackerPredictor

            model = CoTrackerPredictor(checkpoint=str(checkpoint), offline=True, window_len=60)
        self.model = model.to(device).eval()
        self.max_points = max_points
        self.device = device

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = support.shape[0]
        queries = []
        for t in range(0, T, max(T // 4, 1)):  # seed on a few frames so late content is covered
            v, u = np.nonzero(support[t])
            pick = np.linspace(0, len(u) - 1, min(len(u), self.max_points // 4)).astype(int) if len(u) else []
            queries += [(t, u[i], v[i]) for i in pick]
        if not queries:
            return np.zeros((0, T, 2), np.float32), np.zeros((0, T), bool)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2)[None].float().to(self.device)
        q = torch.tensor(queries, dtype=torch.float32, device=self.device)[None]
        tracks, visibility = self.model(video, queries=q)
        uv = tracks[0].permute(1, 0, 2).cpu().numpy()
        visible = visibility[0].permute(1, 0).cpu().numpy().astype(bool)
        frame_of_query = np.array([q_[0] for q_ in queries])
        visible &= np.arange(T)[None] >= frame_of_query[:, None]
        return uv.astype(np.float32), visible
