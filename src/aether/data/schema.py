"""The clip sample schema of the shards: members, codecs, validation and plausibility bounds.

One tar sample per clip (``__key__`` without dots), members:

- ``meta.json``: ``schema_version``, ``fps``, ``num_frames``, ``height``, ``width``, ``rgb_codec``,
  optional ``classes`` (semantic id → name) and ``source`` (provenance);
- ``rgb.NNNN.png`` (one lossless PNG per frame, ``rgb_codec="png"``) or ``rgb.npy`` uint8
  (T,H,W,3) (``rgb_codec="npy"``);
- ``depth.npy`` float32 (T,H,W), metres, invalid = 0;
- ``K.npy`` float64 (T,3,3) pixels, pixel centres at integer coordinates;
- ``c2w.npy`` float64 (T,4,4) OpenCV camera-to-world;
- optional ``dynamic.npy`` bool (T,H,W), ``semantic.npy`` / ``instance.npy`` uint16 or int32
  (T,H,W), ``untextured.npy`` bool (T,).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "PLAUSIBLE",
    "Plausibility",
    "RGB_CODECS",
    "SCHEMA_VERSION",
    "decode_sample",
    "encode_sample",
    "read_meta",
    "validate_sample",
]

SCHEMA_VERSION = 1
RGB_CODECS = ("png", "npy")
_LABELS = ("dynamic", "semantic", "instance")
_KEY = re.compile(r"^[A-Za-z0-9_\-/]+$")


@dataclass(frozen=True)
class Plausibility:
    """Bounds a sample must meet to be read (else it is skipped and counted like a broken one).

    Attributes:
        min_depth, max_depth: range of valid (> 0) depth values, scene units (metres): 1 mm to 10 km.
        min_focal, max_focal: focal lengths fx, fy relative to the image width / height (0.05: a
            ~170° field of view; 50: ~1°).
        max_skew: |K[0, 1]| relative to fx.
        max_translation: largest |camera position| coordinate, scene units.
        max_dmax: largest per-clip maximum disparity 1 / depth after resizing (checked by the
            DataModule, which computes it).
    """

    min_depth: float = 1e-3
    max_depth: float = 1e4
    min_focal: float = 0.05
    max_focal: float = 50.0
    max_skew: float = 0.05
    max_translation: float = 1e4
    max_dmax: float = 1e3

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ValueError(f"Plausibility.{name}: expected a finite positive number, got {value!r}")
        if self.min_depth >= self.max_depth or self.min_focal >= self.max_focal:
            raise ValueError(f"Plausibility: expected min < max, got {self}")

    def check(self, sample: dict[str, Any]) -> None:
        """Raise ValueError naming the member and the bound a validated sample breaks."""
        depth = sample["depth"]
        valid = depth > 0
        if valid.any():
            low, high = float(depth[valid].min()), float(depth[valid].max())
            if low < self.min_depth or high > self.max_depth:
                raise ValueError(
                    f"depth.npy: expected valid depth in [{self.min_depth:g}, {self.max_depth:g}], "
                    f"got [{low:.3g}, {high:.3g}]"
                )
        K = sample["K"]
        height, width = depth.shape[1:]
        for axis, size, label in ((0, width, "fx / width"), (1, height, "fy / height")):
            rel = K[:, axis, axis] / size
            if rel.min() < self.min_focal or rel.max() > self.max_focal:
                raise ValueError(
                    f"K.npy: expected {label} in [{self.min_focal:g}, {self.max_focal:g}], "
                    f"got [{rel.min():.3g}, {rel.max():.3g}]"
                )
        skew = np.abs(K[:, 0, 1]) / K[:, 0, 0]
        if skew.max() > self.max_skew:
            raise ValueError(f"K.npy: expected |skew| / fx <= {self.max_skew:g}, got {skew.max():.3g}")
        reach = float(np.abs(sample["c2w"][:, :3, 3]).max())
        if reach > self.max_translation:
            raise ValueError(
                f"c2w.npy: expected camera positions within {self.max_translation:g}, got {reach:.3g}"
            )


PLAUSIBLE = Plausibility()


# ---------------------------------------------------------------------------------------------
# encoding


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _png(frame: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def _load_png(data: bytes) -> np.ndarray:
    import cv2

    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError("undecodable PNG")
    return frame[..., ::-1]


def encode_sample(sample: dict[str, Any], rgb_codec: str = "png") -> dict[str, Any]:
    """Encode a clip sample (keys as returned by :func:`decode_sample`) into tar members (bytes)."""
    if rgb_codec not in RGB_CODECS:
        raise ValueError(f"rgb_codec must be one of {RGB_CODECS}, got {rgb_codec!r}")
    key = sample.get("__key__")
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"__key__ must be a string of letters, digits, '_', '-', '/' (no dots), got {key!r}")
    rgb = np.asarray(sample["rgb"])
    meta = dict(sample.get("meta") or {})
    meta.update(
        schema_version=SCHEMA_VERSION,
        fps=float(sample["fps"]),
        num_frames=int(rgb.shape[0]),
        height=int(rgb.shape[1]),
        width=int(rgb.shape[2]),
        rgb_codec=rgb_codec,
    )
    out: dict[str, Any] = {"__key__": key, "meta.json": json.dumps(meta, sort_keys=True).encode()}
    if rgb_codec == "png":
        out.update({f"rgb.{i:04d}.png": _png(frame) for i, frame in enumerate(rgb)})
    else:
        out["rgb.npy"] = _npy(rgb.astype(np.uint8))
    out["depth.npy"] = _npy(np.asarray(sample["depth"], dtype=np.float32))
    out["K.npy"] = _npy(np.asarray(sample["K"], dtype=np.float64))
    out["c2w.npy"] = _npy(np.asarray(sample["c2w"], dtype=np.float64))
    if sample.get("dynamic") is not None:
        out["dynamic.npy"] = _npy(np.asarray(sample["dynamic"], dtype=bool))
    for name in ("semantic", "instance"):
        if sample.get(name) is not None:
            labels = np.asarray(sample[name])
            small = labels.size == 0 or (labels.min() >= 0 and labels.max() < 2**16)
            out[f"{name}.npy"] = _npy(labels.astype(np.uint16 if small else np.int32))
    if sample.get("untextured") is not None:
        out["untextured.npy"] = _npy(np.asarray(sample["untextured"], dtype=bool))
    return out


def _member(raw: dict[str, Any], name: str, load: Callable[[bytes], np.ndarray]) -> np.ndarray:
    """Decode member ``name``; errors name the member."""
    if name not in raw:
        raise ValueError(f"missing member {name}")
    try:
        return load(raw[name])
    except Exception as err:
        raise ValueError(f"{name}: cannot decode ({type(err).__name__}: {err})") from err


def read_meta(raw: dict[str, Any]) -> dict[str, Any]:
    if "meta.json" not in raw:
        raise ValueError(
            f"missing member meta.json (members: {sorted(k for k in raw if not k.startswith('__'))})"
        )
    try:
        meta = json.loads(raw["meta.json"])
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"meta.json: expected a JSON object, cannot parse it ({err})") from err
    if not isinstance(meta, dict):
        raise ValueError(f"meta.json: expected a JSON object, got {type(meta).__name__}")
    count = meta.get("num_frames")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"meta.json: expected num_frames a positive integer, got {count!r}")
    return meta


def decode_sample(raw: dict[str, Any], frames: slice | None = None) -> dict[str, Any]:
    """Decode tar members (bytes) into arrays: rgb uint8 (T,H,W,3), depth float32 (T,H,W), K (T,3,3),
    c2w (T,4,4) float64, fps float, meta dict, optional dynamic / semantic / instance (T,H,W) and
    untextured (T,); ``__key__`` (and ``__url__`` when present) pass through. Not validated, except
    that every per-frame member must hold ``meta["num_frames"]`` frames (else ValueError naming it).

    ``frames`` keeps only those frames of every per-frame array (PNG frames outside it are not
    decoded); ``meta["num_frames"]`` still counts the stored frames."""
    meta = read_meta(raw)
    count = meta["num_frames"]
    keep = slice(None) if frames is None else frames

    def per_frame(name: str, array: np.ndarray) -> np.ndarray:
        if array.ndim < 1 or array.shape[0] != count:
            raise ValueError(
                f"{name}: meta.json says num_frames={count}, the member holds "
                f"{array.shape[0] if array.ndim else 'no'} frames (shape {array.shape})"
            )
        return array[keep]

    out: dict[str, Any] = {k: v for k, v in raw.items() if k.startswith("__")}
    codec = meta.get("rgb_codec")
    if codec == "png":
        names = sorted(k for k in raw if k.startswith("rgb.") and k.endswith(".png"))
        if not names:
            raise ValueError("missing rgb.NNNN.png members")
        if len(names) != count:
            raise ValueError(f"meta.json says num_frames={count}, got {len(names)} rgb.NNNN.png members")
        out["rgb"] = np.stack([_member(raw, name, _load_png) for name in names[keep]])
    elif codec == "npy":
        out["rgb"] = per_frame("rgb.npy", _member(raw, "rgb.npy", _load_npy))
    else:
        raise ValueError(f"meta.json rgb_codec must be one of {RGB_CODECS}, got {codec!r}")
    for name in ("depth", "K", "c2w"):
        out[name] = per_frame(f"{name}.npy", _member(raw, f"{name}.npy", _load_npy))
    for name in (*_LABELS, "untextured"):
        if f"{name}.npy" in raw:
            array = per_frame(f"{name}.npy", _member(raw, f"{name}.npy", _load_npy))
            out[name] = array.astype(np.int32) if name in ("semantic", "instance") else array
    out["fps"] = meta.get("fps")
    out["meta"] = meta
    return out


def validate_sample(
    sample: dict[str, Any], atol: float = 1e-4, plausibility: Plausibility | None = PLAUSIBLE
) -> dict[str, Any]:
    """Check a decoded sample against the schema; return it, or raise ValueError naming the problem.

    Checks: schema version; rgb uint8 (T,H,W,3); depth (T,H,W) finite and >= 0; K (T,3,3) valid
    intrinsics with the principal point inside the image; c2w (T,4,4) rigid (rotation orthonormal
    within ``atol``); fps finite > 0; optional labels (T,H,W) and untextured (T,); then the
    ``plausibility`` bounds (None: not checked).
    """
    import torch

    from aether.geometry import check_intrinsics, check_poses

    version = sample["meta"].get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"schema_version must be an int in [1, {SCHEMA_VERSION}], got {version!r}")
    rgb = sample["rgb"]
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.shape[0] < 1:
        raise ValueError(f"rgb must be uint8 (T,H,W,3), got {rgb.dtype} {rgb.shape}")
    frames, height, width = rgb.shape[:3]
    depth = sample["depth"]
    if depth.shape != (frames, height, width) or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(
            f"depth must be float (T,H,W)={(frames, height, width)}, got {depth.dtype} {depth.shape}"
        )
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise ValueError("depth must be finite and >= 0 (invalid = 0), got NaN/inf or negative values")
    K, c2w = sample["K"], sample["c2w"]
    if K.shape != (frames, 3, 3) or c2w.shape != (frames, 4, 4):
        raise ValueError(f"K must be (T,3,3) and c2w (T,4,4) with T={frames}, got {K.shape} and {c2w.shape}")
    check_intrinsics(torch.from_numpy(K.astype(np.float64)), name="K", atol=atol)
    cx, cy = K[:, 0, 2], K[:, 1, 2]
    if ((cx < -0.5) | (cx > width - 0.5) | (cy < -0.5) | (cy > height - 0.5)).any():
        raise ValueError(
            f"K principal point must lie inside the {height}x{width} image, got cx in "
            f"[{cx.min():.1f}, {cx.max():.1f}], cy in [{cy.min():.1f}, {cy.max():.1f}]"
        )
    check_poses(torch.from_numpy(c2w.astype(np.float64)), name="c2w", atol=atol)
    fps = sample["fps"]
    if not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite positive number, got {fps!r}")
    for name in _LABELS:
        if name in sample and sample[name].shape != (frames, height, width):
            raise ValueError(f"{name} must be (T,H,W)={(frames, height, width)}, got {sample[name].shape}")
    if "untextured" in sample and sample["untextured"].shape != (frames,):
        raise ValueError(f"untextured must be (T,)={(frames,)}, got {sample['untextured'].shape}")
    if plausibility is not None:
        plausibility.check(sample)
    return sample
