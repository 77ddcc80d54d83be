"""Inputs of the annotation pipeline: RGB-D clip folders and WebDataset shards.

Clip folder layout (one clip per folder; INPUT may be one clip folder or a folder of them)::

    CLIP/rgb/*.png|*.jpg          frames, sorted by name
    CLIP/depth/*.png|*.npy|*.exr  one per frame; 16-bit PNG holds depth · depth_scale (default
                                  1000: millimetres), npy / exr hold metres; 0 = invalid
    CLIP/intrinsics.txt|.json     optional: 3x3 matrix or T lines of 9 values (txt), or
                                  {"K": 3x3 or Tx3x3} / {"fx","fy","cx","cy"} (json)
    CLIP/masks/*.png              optional dynamic masks (nonzero = may move)
    CLIP/meta.json                optional {"fps": ...}

Shards written by ``aether synth`` (or any shard of the data schema) are accepted too: a ``.tar``
file, a brace pattern, or a folder holding ``*.tar``. Their ``c2w`` is kept as ground truth for the
report, never used for estimation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2

__all__ = ["ClipInput", "iter_inputs", "load_clip_folder"]

_IMAGE_EXT = (".png", ".jpg", ".jpeg")
_DEPTH_EXT = (".png", ".npy", ".exr")


@dataclass
class ClipInput:
    """One clip to annotate: rgb uint8 (T,H,W,3), depth float32 metres (T,H,W), K (T,3,3) or None,
    fps, ``extras`` (dynamic / semantic / instance / classes / untextured when known), ground-truth
    c2w (T,4,4) or None, and a provenance string."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray | None
    fps: float
    extras: dict[str, Any] = field(default_factory=dict)
    gt_c2w: np.ndarray | None = None
    source: str = ""

    @classmethod
    def from_synthetic(cls, clip: Any, name: str = "clip") -> ClipInput:
        """A clip of :func:`aether.data.synthetic.render_clip` with its dynamic masks, K and ground-truth
        poses (the poses only score the result, they never feed the estimation)."""
        return cls(
            name=name,
            rgb=clip.rgb,
            depth=clip.depth,
            K=clip.K,
            fps=clip.fps,
            extras={"dynamic": clip.dynamic},
            gt_c2w=clip.c2w,
            source="synthetic",
        )


def _sorted_files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts)


def _read_depth(path: Path, depth_scale: float) -> np.ndarray:
    if path.suffix == ".npy":
        depth = np.load(path)
    else:
        depth = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise ValueError(f"cannot read depth image {path}")
        if depth.ndim == 3:
            depth = depth[..., 0]
        if path.suffix.lower() == ".png":
            if depth.dtype != np.uint16:
                raise ValueError(f"PNG depth must be 16-bit, got {depth.dtype} in {path}")
            depth = depth.astype(np.float32) / depth_scale
    depth = np.asarray(depth, dtype=np.float32)
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def _read_intrinsics(folder: Path, frames: int) -> np.ndarray | None:
    txt, js = folder / "intrinsics.txt", folder / "intrinsics.json"
    if txt.is_file():
        values = np.loadtxt(txt, dtype=np.float64).reshape(-1, 9)
        K = values.reshape(-1, 3, 3)
    elif js.is_file():
        data = json.loads(js.read_text())
        if "K" in data:
            K = np.asarray(data["K"], dtype=np.float64).reshape(-1, 3, 3)
        else:
            K = np.array([[[data["fx"], 0, data["cx"]], [0, data["fy"], data["cy"]], [0, 0, 1]]], np.float64)
    else:
        return None
    if K.shape[0] not in (1, frames):
        raise ValueError(f"intrinsics of {folder}: expected 1 or {frames} matrices, got {K.shape[0]}")
    return np.broadcast_to(K, (frames, 3, 3)).copy()


def load_clip_folder(folder: str | Path, *, depth_scale: float = 1000.0, fps: float = 24.0) -> ClipInput:
    """Read a clip folder (layout in the module docstring); ``fps`` is used when meta.json has none."""
    folder = Path(folder)
    rgb_files = _sorted_files(folder / "rgb", _IMAGE_EXT) if (folder / "rgb").is_dir() else []
    depth_files = _sorted_files(folder / "depth", _DEPTH_EXT) if (folder / "depth").is_dir() else []
    if not rgb_files or len(rgb_files) != len(depth_files):
        raise ValueError(
            f"clip folder {folder} needs rgb/ and depth/ with one file per frame, "
            f"got {len(rgb_files)} rgb and {len(depth_files)} depth files"
        )
    rgb = np.stack([cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in rgb_files])
    depth = np.stack([_read_depth(p, depth_scale) for p in depth_files])
    if depth.shape != rgb.shape[:3]:
        raise ValueError(f"depth {depth.shape} does not match frames {rgb.shape[:3]} in {folder}")
    extras: dict[str, Any] = {}
    if (folder / "masks").is_dir():
        mask_files = _sorted_files(folder / "masks", (".png",))
        if len(mask_files) != len(rgb_files):
            raise ValueError(f"{folder}/masks: expected {len(rgb_files)} masks, got {len(mask_files)}")
        extras["dynamic"] = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0 for p in mask_files])
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    return ClipInput(
        name=folder.name,
        rgb=rgb,
        depth=depth,
        K=_read_intrinsics(folder, len(rgb)),
        fps=float(meta.get("fps", fps)),
        extras=extras,
        source=str(folder),
    )


def _from_sample(sample: dict[str, Any]) -> ClipInput:
    extras = {k: sample[k] for k in ("dynamic", "semantic", "instance", "untextured") if k in sample}
    classes = sample["meta"].get("classes")
    if classes:
        extras["classes"] = {int(k): v for k, v in classes.items()}
    return ClipInput(
        name=sample["__key__"].replace("/", "_"),
        rgb=sample["rgb"],
        depth=sample["depth"].astype(np.float32),
        K=sample["K"],
        fps=float(sample["fps"]),
        extras=extras,
        gt_c2w=sample["c2w"],
        source=str(sample.get("__url__", "")),
    )


def iter_inputs(path: str | Path, *, depth_scale: float = 1000.0, fps: float = 24.0) -> Iterator[ClipInput]:
    """Clips under ``path``: a clip folder, a folder of clip folders, or shards (file, pattern, folder)."""
    from aether.data.shards import iter_samples

    p = Path(path)
    if p.is_dir() and (p / "rgb").is_dir():
        yield load_clip_folder(p, depth_scale=depth_scale, fps=fps)
    elif p.is_dir() and any(p.glob("*.tar")):
        yield from map(_from_sample, iter_samples(str(p)))
    elif p.is_dir():
        clips = sorted(c for c in p.iterdir() if (c / "rgb").is_dir())
        if not clips:
            raise ValueError(f"{p} holds no clip folders (with rgb/ and depth/) and no *.tar shards")
        for clip in clips:
            yield load_clip_folder(clip, depth_scale=depth_scale, fps=fps)
    elif str(path).endswith(".tar") or "{" in str(path):
        yield from map(_from_sample, iter_samples(str(path)))
    else:
        raise FileNotFoundError(f"annotation input not found: {path}")
