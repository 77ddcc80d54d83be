"""Video slicing: drop unusable frames and cut clips where the camera motion cannot be trusted.

Per frame (rules in order, the first that fires is recorded): dynamic area above a fraction
(``dynamic``), too few SIFT keypoints on the static part (``keypoints``), too little texture (mean
gradient magnitude, ``texture``), too dark or too bright (mean grey level, ``brightness``). Between two
consecutive kept frames: median static optical-flow magnitude above a fraction of the image
diagonal (``flow``) or too few static pixels passing the forward-backward flow check
(``consistency``) cut the clip. A dropped frame also cuts the clip (slices are runs of consecutive
frames); runs shorter than ``min_length`` are discarded.

``FLOW_BACKENDS``: ``"dis"`` (OpenCV DIS, no weights) and ``"raft"`` (torchvision RAFT, local weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from aether.annotate.features import detect_sift, to_gray
from aether.registry import Registry

__all__ = ["FLOW_BACKENDS", "DISFlow", "FlowBackend", "RAFTFlow", "SliceConfig", "Slicer", "SlicingResult"]

FLOW_BACKENDS: Registry = Registry("flow backend", "aether.annotate.flow_backends")


class FlowBackend:
    """Interface: ``flow(a (H,W,3) uint8, b (H,W,3) uint8) -> (H,W,2) float32`` pixel displacement a→b."""

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@FLOW_BACKENDS.register("dis")
class DISFlow(FlowBackend):
    """OpenCV Dense Inverse Search optical flow (``preset``: "ultrafast", "fast" or "medium")."""

    _PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}

    def __init__(self, preset: str = "medium") -> None:
        if preset not in self._PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(self._PRESETS)}, got {preset!r}")
        self.dis = cv2.DISOpticalFlow_create(self._PRESETS[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.dis.calc(to_gray(a), to_gray(b), None)


@FLOW_BACKENDS.register("raft")
class RAFTFlow(FlowBackend):
    """torchvision RAFT (``"small"`` or ``"large"``) with weights from a local state-dict file.

    Frames are padded (replicated borders) to multiples of 8 and at least 128 pixels (RAFT's stride
    and correlation pyramid need both) and the flow is cropped back.
    """

    def __init__(
        self, weights: str | Path, *, size: str = "small", iterations: int = 12, device: str = "cpu"
    ) -> None:
        from torchvision.models.optical_flow import raft_large, raft_small

        if size not in ("small", "large"):
            raise ValueError(f"RAFT size must be 'small' or 'large', got {size!r}")
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"RAFT weights not found: {path}")
        self.model = (raft_small if size == "small" else raft_large)(weights=None)
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model.eval().to(device)
        self.iterations = iterations
        self.device = device

    @torch.no_grad()
    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        pad = (0, max(128, w + (-w) % 8) - w, 0, max(128, h + (-h) % 8) - h)
        pair = [torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1 for x in (a, b)]
        pair = [torch.nn.functional.pad(x, pad, mode="replicate") for x in pair]
        flows = self.model(pair[0].to(self.device), pair[1].to(self.device), num_flow_updates=self.iterations)
        return flows[-1][0, :, :h, :w].permute(1, 2, 0).cpu().numpy()


@dataclass
class SliceConfig:
    """Slicing thresholds (see the module docstring). Flow magnitudes are fractions of the diagonal."""

    min_keypoints: int = 40
    min_texture: float = 0.75
    min_brightness: float = 20.0
    max_brightness: float = 235.0
    max_dynamic_fraction: float = 0.5
    max_flow: float = 0.08
    fb_threshold_px: float = 1.0
    min_consistency: float = 0.6
    min_length: int = 5


@dataclass
class SlicingResult:
    """``slices``: lists of frame indices; ``frames``: one record per frame (statistics, kept, reason);
    ``cuts``: one record per cut between kept frames (index of the later frame, reason, statistics)."""

    slices: list[list[int]]
    frames: list[dict[str, Any]]
    cuts: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Slicer:
    """Applies the slicing rules of ``config`` with the flow backend ``flow`` (default: DIS)."""

    def __init__(self, config: SliceConfig | None = None, flow: FlowBackend | None = None) -> None:
        self.config = config or SliceConfig()
        self.flow = flow or DISFlow()

    def frame_stats(self, frame: np.ndarray, dynamic: np.ndarray) -> dict[str, float]:
        """Keypoints on static pixels, texture (mean gradient magnitude), brightness, dynamic fraction."""
        gray = to_gray(frame)
        uv, _ = detect_sift(gray, ~dynamic)
        gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0) / 8, cv2.Sobel(gray, cv2.CV_32F, 0, 1) / 8
        return {
            "keypoints": int(len(uv)),
            "texture": float(np.hypot(gx, gy).mean()),
            "brightness": float(gray.mean()),
            "dynamic_fraction": float(dynamic.mean()),
        }

    def frame_reason(self, stats: dict[str, float]) -> str | None:
        c = self.config
        if stats["dynamic_fraction"] > c.max_dynamic_fraction:
            return "dynamic"
        if stats["keypoints"] < c.min_keypoints:
            return "keypoints"
        if stats["texture"] < c.min_texture:
            return "texture"
        if not c.min_brightness <= stats["brightness"] <= c.max_brightness:
            return "brightness"
        return None

    def pair_stats(self, a: np.ndarray, b: np.ndarray, static: np.ndarray) -> dict[str, float]:
        """Median static flow magnitude (fraction of the diagonal) and forward-backward consistency."""
        h, w = a.shape[:2]
        fwd, bwd = self.flow(a, b), self.flow(b, a)
        grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float32)
        target = grid + fwd
        back = cv2.remap(
            bwd, target[..., 0], target[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        inside = (
            (target[..., 0] >= 0)
            & (target[..., 0] <= w - 1)
            & (target[..., 1] >= 0)
            & (target[..., 1] <= h - 1)
        )
        error = np.linalg.norm(fwd + back, axis=-1)
        mask = static if static.any() else np.ones_like(static)
        magnitude = float(np.median(np.linalg.norm(fwd, axis=-1)[mask])) / float(np.hypot(h, w))
        consistency = float(((error < self.config.fb_threshold_px) & inside)[mask].mean())
        return {"flow": magnitude, "consistency": consistency}

    def __call__(self, frames: np.ndarray, dynamic: np.ndarray) -> SlicingResult:
        """Slice a clip: frames (T,H,W,3) uint8, dynamic (T,H,W) bool."""
        if frames.ndim != 4 or dynamic.shape != frames.shape[:3]:
            raise ValueError(
                f"expected frames (T,H,W,3) and dynamic (T,H,W), got {frames.shape}, {dynamic.shape}"
            )
        c = self.config
        records = []
        for t, (frame, dyn) in enumerate(zip(frames, dynamic)):
            stats = self.frame_stats(frame, dyn)
            reason = self.frame_reason(stats)
            records.append({"index": t, **stats, "kept": reason is None, "reason": reason})
        slices: list[list[int]] = []
        cuts: list[dict[str, Any]] = []
        current: list[int] = []
        for t, rec in enumerate(records):
            if not rec["kept"]:
                slices.append(current)
                current = []
                continue
            if current and current[-1] == t - 1:
                stats = self.pair_stats(frames[t - 1], frames[t], ~dynamic[t - 1])
                reason = "flow" if stats["flow"] > c.max_flow else None
                reason = reason or ("consistency" if stats["consistency"] < c.min_consistency else None)
                rec.update({f"{k}_from_previous": v for k, v in stats.items()})
                if reason is not None:
                    cuts.append({"index": t, "reason": reason, **stats})
                    slices.append(current)
                    current = []
            current.append(t)
        slices.append(current)
        kept = [s for s in slices if len(s) >= c.min_length]
        for s in slices:
            if 0 < len(s) < c.min_length:
                for t in s:
                    records[t].update(kept=False, reason="short_slice")
        return SlicingResult(slices=kept, frames=records, cuts=cuts)
