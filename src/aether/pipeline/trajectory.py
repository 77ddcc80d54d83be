"""Camera trajectories (the action of prediction and planning), with explicit conventions.

A :class:`Trajectory` holds OpenCV camera-to-world poses in any reference frame and
pixel intrinsics for an image of ``width × height``. Constructors take the
convention of the source (``axes`` "opencv" | "opengl", ``kind`` "c2w" | "w2c")
and log what they converted; :meth:`Trajectory.for_model` makes the poses relative
to the first frame and rescales K to the model's resolution, as AetherV1 expects.

Translation units: AetherV1 raymaps encode ``signed_log1p(10 · dmax · t)`` with
``dmax`` the clip's largest disparity (1 / nearest depth). Give metric poses with
the scene's ``dmax`` (e.g. 1 / 0.5 m), or poses already normalised (dmax = 1, the
default, as in upstream raymap files).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aether.geometry import (
    cameras_to_raymap,
    check_intrinsics,
    check_poses,
    convert_poses,
    raymap_to_cameras,
    relative_poses,
)
from aether.pipeline.presets import default_intrinsics, preset_poses

logger = logging.getLogger(__name__)


TRAJECTORY_SUFFIXES = (".json", ".npy", ".txt", ".tum")


def _intrinsics(K: Any, num_frames: int) -> Tensor:
    K = torch.as_tensor(np.asarray(K, dtype=np.float64))
    if K.shape == (3, 3):
        K = K.expand(num_frames, 3, 3).clone()
    if K.shape != (num_frames, 3, 3):
        raise ValueError(f"K: expected (3, 3) or ({num_frames}, 3, 3), got {tuple(K.shape)}")
    return K


def intrinsics_from_values(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """A (3, 3) pinhole intrinsics matrix."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass
class Trajectory:
    """OpenCV camera-to-world poses ``c2w`` (T, 4, 4) and intrinsics ``K`` (T, 3, 3) in pixels of an
    image ``width × height`` (None: the model's resolution); ``dmax`` the translation normaliser."""

    c2w: Tensor
    K: Tensor
    width: int | None = None
    height: int | None = None
    dmax: float = 1.0

    def __post_init__(self) -> None:
        self.c2w = torch.as_tensor(self.c2w, dtype=torch.float64)
        if self.c2w.ndim != 3 or self.c2w.shape[1:] != (4, 4):
            raise ValueError(f"c2w: expected (T, 4, 4), got {tuple(self.c2w.shape)}")
        self.K = _intrinsics(self.K, len(self.c2w))
        check_poses(self.c2w, "trajectory poses")
        check_intrinsics(self.K, "trajectory K")
        if self.width is not None and self.height is not None:
            self._warn_outside_image()
        if not np.isfinite(self.dmax) or self.dmax <= 0:
            raise ValueError(f"dmax must be a positive number, got {self.dmax}")

    def __len__(self) -> int:
        return len(self.c2w)

    def _warn_outside_image(self) -> None:
        """Log a warning when a principal point lies outside the ``width × height`` image (pixel
        centres at integers: the image spans [-0.5, width - 0.5] × [-0.5, height - 0.5]); such K are
        usually for another image size or swapped (cx, cy)."""
        c = self.K[:, :2, 2]
        size = torch.tensor([self.width, self.height], dtype=c.dtype)
        outside = ((c < -0.5) | (c > size - 0.5)).any(-1)
        if outside.any():
            first = int(outside.nonzero()[0, 0])
            cx, cy = c[first].tolist()
            logger.warning(
                "trajectory K: the principal point (%.1f, %.1f) of frame %d lies outside the %dx%d image "
                "(%d of %d frames); are the intrinsics for another image size, or cx and cy swapped?",
                cx, cy, first, self.width, self.height, int(outside.sum()), len(self),
            )  # fmt: skip

    @classmethod
    def from_poses(
        cls,
        poses: Any,
        K: Any,
        *,
        axes: str = "opencv",
        kind: str = "c2w",
        width: int | None = None,
        height: int | None = None,
        dmax: float = 1.0,
    ) -> Trajectory:
        """From poses (T, 4, 4) or (T, 3, 4) in the ``axes``/``kind`` convention; K (3, 3) or (T, 3, 3)."""
        poses = torch.as_tensor(np.asarray(poses, dtype=np.float64))
        if poses.ndim == 3 and poses.shape[1:] == (3, 4):
            bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=poses.dtype).expand(len(poses), 1, 4)
            poses = torch.cat([poses, bottom], dim=1)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ValueError(f"poses: expected (T, 4, 4) or (T, 3, 4), got {tuple(poses.shape)}")
        if (axes, kind) != ("opencv", "c2w"):
            logger.info(
                "trajectory: converted %d %s %s poses to OpenCV camera-to-world", len(poses), axes, kind
            )
        return cls(convert_poses(poses, axes=axes, kind=kind), K, width=width, height=height, dmax=dmax)

    @classmethod
    def from_json(cls, path: str | os.PathLike, **overrides: Any) -> Trajectory:
        """From JSON: ``{"c2w" | "w2c" | "poses": [...], "K": ... or "fx","fy","cx","cy", "axes",
        "kind", "width", "height", "dmax"}``; keyword arguments override the file's fields."""
        try:
            data = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a JSON trajectory ({err})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object with poses and intrinsics")
        data.update(overrides)
        kind = data.get("kind")
        for key in ("c2w", "w2c", "poses"):
            if key in data:
                poses = data[key]
                kind = kind or ("w2c" if key == "w2c" else "c2w")
                break
        else:
            raise ValueError(f"{path}: no 'c2w', 'w2c' or 'poses' field")
        if "K" in data:
            K = data["K"]
        elif all(k in data for k in ("fx", "fy", "cx", "cy")):
            K = intrinsics_from_values(data["fx"], data["fy"], data["cx"], data["cy"])
        else:
            raise ValueError(f"{path}: no intrinsics ('K' or 'fx','fy','cx','cy')")
        return cls.from_poses(
            poses,
            K,
            axes=data.get("axes", "opencv"),
            kind=kind,
            width=data.get("width"),
            height=data.get("height"),
            dmax=float(data.get("dmax", 1.0)),
        )

    @classmethod
    def from_text(
        cls,
        path: str | os.PathLike,
        K: Any,
        *,
        axes: str = "opencv",
        width: int | None = None,
        height: int | None = None,
        dmax: float = 1.0,
    ) -> Trajectory:
        """From a text file of camera-to-world poses (``#`` comments), by its number of columns: TUM
        (``timestamp tx ty tz qx qy qz qw`` per line), one row-major 4×4 matrix per line (16 numbers),
        or 4×4 matrices as 4 lines of 4 numbers each."""
        from scipy.spatial.transform import Rotation

        try:
            rows = np.loadtxt(path, comments="#", ndmin=2, dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"{path}: not a trajectory text file: {err}") from None
        if rows.shape[1] == 8:
            norms = np.linalg.norm(rows[:, 4:8], axis=1)
            bad = np.flatnonzero(~(np.isfinite(rows).all(axis=1) & (norms > 1e-9)))
            if bad.size:
                raise ValueError(
                    f"{path}: line(s) {', '.join(str(int(i) + 1) for i in bad[:5])} "
                    f"of the {len(rows)} poses: "
                    "expected finite numbers and a quaternion (qx qy qz qw) of non-zero norm"
                )
            poses = np.tile(np.eye(4), (len(rows), 1, 1))
            poses[:, :3, :3] = Rotation.from_quat(rows[:, 4:8]).as_matrix()
            poses[:, :3, 3] = rows[:, 1:4]
        elif rows.shape[1] == 16 or (rows.shape[1] == 4 and len(rows) % 4 == 0):
            poses = rows.reshape(-1, 4, 4)
        else:
            raise ValueError(
                f"{path}: expected TUM lines (8 numbers), 4x4 matrices one per line (16 numbers) or as "
                f"4 lines of 4 numbers; got {len(rows)} lines of {rows.shape[1]} numbers"
            )
        return cls.from_poses(poses, K, axes=axes, kind="c2w", width=width, height=height, dmax=dmax)

    from_tum = from_text

    @classmethod
    def preset(cls, name: str, num_frames: int, height: int, width: int) -> Trajectory | None:
        """A preset camera motion (one of :data:`PRESETS`, as in the app) of ``num_frames`` poses, with
        a 60° horizontal field of view at ``height × width`` (:func:`default_intrinsics`); None for
        "none" (no action)."""
        c2w = preset_poses(name, num_frames)
        if c2w is None:
            return None
        return cls(c2w, default_intrinsics(height, width), width=width, height=height)

    @classmethod
    def from_raymap(
        cls, raymap: Any, height: int, width: int, *, dmax: float = 1.0, downsample: int = 8
    ) -> Trajectory:
        """From an AetherV1 raymap (T, 6, height/8, width/8) (array or ``.npy`` file)."""
        name = "raymap"
        if isinstance(raymap, (str, os.PathLike)):
            name = f"{raymap}: raymap"
            try:
                raymap = np.load(raymap, allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                raise ValueError(f"{name}: not a readable .npy array of numbers ({err})") from None
        try:
            raymap = torch.as_tensor(np.asarray(raymap, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}: expected numbers ({err})") from None
        expected = (6, height // downsample, width // downsample)
        if raymap.ndim != 4 or tuple(raymap.shape[1:]) != expected:
            raise ValueError(
                f"{name}: expected (T, {', '.join(map(str, expected))}) for {height}x{width} frames, "
                f"got {tuple(raymap.shape)}"
            )
        if not bool(torch.isfinite(raymap).all()):
            raise ValueError(f"{name}: expected finite values, got NaN or inf (shape {tuple(raymap.shape)})")
        c2w, K = raymap_to_cameras(raymap, height, width, dmax=1.0, downsample=downsample)
        return cls(c2w, K, width=width, height=height, dmax=dmax)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> Trajectory:
        """Load by suffix: ``.json``, ``.npy`` (raymap; needs height, width), otherwise text (TUM or 4×4
        matrices, :meth:`from_text`; needs K)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such trajectory file: {path}")
        suffix = path.suffix.lower()
        if suffix not in TRAJECTORY_SUFFIXES:
            raise ValueError(
                f"{path}: not a trajectory file: expected .json, a raymap .npy or text (.txt, .tum: TUM "
                "lines or 4x4 matrices), "
                f"got a {suffix or 'suffix-less'} file"
            )
        try:
            if suffix == ".json":
                return cls.from_json(path, **kwargs)
            if suffix == ".npy":
                return cls.from_raymap(path, **kwargs)
            if "K" not in kwargs:
                raise ValueError("a text trajectory needs intrinsics K")
            return cls.from_text(path, **kwargs)
        except (ValueError, np.linalg.LinAlgError) as err:
            text = str(err)
            raise ValueError(text if text.startswith(str(path)) else f"{path}: {text}") from None

    def relative(self) -> Trajectory:
        """Poses relative to the first frame (the first becomes the identity)."""
        return replace(self, c2w=relative_poses(self.c2w))

    def model_cameras(self) -> tuple[Tensor, Tensor]:
        """Poses relative to the first frame (T, 4, 4) float64 with their translations times ``dmax``, the
        units of the raymap and of the model's normalised depth (nearest point ≈ 1), and K (T, 3, 3)."""
        relative = self.relative()
        c2w = relative.c2w.double().clone()
        c2w[:, :3, 3] *= self.dmax
        return c2w, relative.K

    def resized(self, height: int, width: int, crop: tuple[int, int, int, int] | None = None) -> Trajectory:
        """K for the image resized from ``self.width × self.height`` to ``width × height`` and then cropped
        to ``crop`` = (top, left, crop_height, crop_width) (None: no crop); pixel centres at integer
        coordinates (:func:`aether.geometry.resize_intrinsics`)."""
        from aether.geometry import resize_intrinsics

        if self.width is None or self.height is None:
            return self
        offset = None if crop is None else (crop[0], crop[1])
        K = resize_intrinsics(self.K, (self.height, self.width), (height, width), crop=offset)
        if crop is not None:
            height, width = crop[2], crop[3]
        return replace(self, K=K, width=width, height=height)

    def for_model(self, num_frames: int, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Relative OpenCV poses (T, 4, 4) and K (T, 3, 3) at the model's ``height × width``, float32."""
        if len(self) != num_frames:
            raise ValueError(f"the trajectory has {len(self)} poses, expected {num_frames} (one per frame)")
        traj = self.relative()
        if traj.width is not None and (traj.width, traj.height) != (width, height):
            raise ValueError(
                f"trajectory intrinsics are for {traj.width}x{traj.height}, the model runs at "
                f"{width}x{height}; "
                "call .resized() first"
            )
        return traj.c2w.float(), traj.K.float()

    def raymap(self, num_frames: int, height: int, width: int, downsample: int = 8) -> Tensor:
        """The AetherV1 raymap (T, 6, height/8, width/8) of the relative trajectory."""
        c2w, K = self.for_model(num_frames, height, width)
        return cameras_to_raymap(c2w, K, height, width, dmax=self.dmax, downsample=downsample)

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write OpenCV c2w poses and K as JSON (readable by :meth:`from_json`)."""
        path = Path(path)
        data = {
            "axes": "opencv",
            "kind": "c2w",
            "c2w": self.c2w.tolist(),
            "K": self.K.tolist(),
            "width": self.width,
            "height": self.height,
            "dmax": self.dmax,
        }
        path.write_text(json.dumps(data))
        return path
