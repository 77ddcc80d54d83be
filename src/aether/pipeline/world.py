"""``World4D``: the result of reconstruction, prediction or planning, with its exporters."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aether.geometry import depth_to_points
from aether.models.spec import DEFAULT_FPS
from aether.pipeline import export
from aether.pipeline.io import write_image, write_video
from aether.visualize import plot_trajectories

logger = logging.getLogger(__name__)

ALL_FORMATS = ("mp4", "npz", "ply", "glb", "json", "tum", "png", "rrd")
DEFAULT_FORMATS = ("mp4", "npz", "ply", "glb", "json", "tum", "png")


@dataclass
class World4D:
    """A 4D scene: per frame color, and the depth, cameras and other modalities the model decodes.

    Colour is always there; depth (with disparity and valid) only from models with a disparity
    target, cameras (c2w, K) only from models with a raymap target; the decoded outputs of other
    target modalities are under ``modalities``. Exporters skip what is absent, saying so.

    Attributes:
        rgb: uint8 (T, H, W, 3).
        depth: float32 (T, H, W), relative units (1 = nearest point of the clip), 0 where invalid; or None.
        disparity: float32 (T, H, W), the model's normalised disparity (1 / depth on valid pixels); or None.
        c2w: float32 (T, 4, 4) OpenCV camera-to-world poses, the first frame at the origin; or None.
        K: float32 (T, 3, 3) intrinsics in pixels of the H × W frames; or None.
        valid: bool (T, H, W) (with depth); or None.
        fps: frames per second.
        raymap: optional float32 (T, 6, H/8, W/8), the raw decoded raymap.
        requested_c2w: optional float32 (T, 4, 4), the camera path a prediction or plan was asked to
            follow (first pose at the origin), drawn under the result's path in the trajectory plot.
        modalities: decoded outputs of the model's other target modalities, {name: float32 (T, ...)}.
        meta: free-form information (task, steps, seed, ...).
    """

    rgb: np.ndarray
    depth: np.ndarray | None = None
    disparity: np.ndarray | None = None
    c2w: np.ndarray | None = None
    K: np.ndarray | None = None
    valid: np.ndarray | None = None
    fps: float = DEFAULT_FPS
    raymap: np.ndarray | None = None
    requested_c2w: np.ndarray | None = None
    modalities: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rgb = np.asarray(self.rgb)
        if self.rgb.dtype != np.uint8:
            self.rgb = (np.clip(self.rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
        if self.rgb.ndim != 4 or self.rgb.shape[-1] != 3:
            raise ValueError(f"rgb: expected (T, H, W, 3), got {self.rgb.shape}")
        t, h, w = self.rgb.shape[:3]
        depth_fields = ("depth", "disparity", "valid")
        given = [name for name in depth_fields if getattr(self, name) is not None]
        if given and len(given) != len(depth_fields):
            raise ValueError(f"depth, disparity and valid: expected all or none, got only {given}")
        for name in given:
            value = np.asarray(getattr(self, name))
            if value.shape != (t, h, w):
                raise ValueError(f"{name}: expected {(t, h, w)}, got {value.shape}")
            setattr(self, name, value.astype(bool if name == "valid" else np.float32))
        if (self.c2w is None) != (self.K is None):
            raise ValueError("c2w and K: expected both or neither")
        if self.c2w is not None:
            self.c2w = np.asarray(self.c2w, dtype=np.float32)
            self.K = np.asarray(self.K, dtype=np.float32)
            if self.c2w.shape != (t, 4, 4) or self.K.shape != (t, 3, 3):
                raise ValueError(
                    f"c2w, K: expected ({t}, 4, 4), ({t}, 3, 3), got {self.c2w.shape}, {self.K.shape}"
                )
        if self.requested_c2w is not None:
            self.requested_c2w = np.asarray(self.requested_c2w, dtype=np.float32)
            if self.requested_c2w.shape != (t, 4, 4):
                raise ValueError(f"requested_c2w: expected ({t}, 4, 4), got {self.requested_c2w.shape}")
        self.modalities = {
            str(k): np.asarray(v, dtype=np.float32) for k, v in (self.modalities or {}).items()
        }
        for name, value in self.modalities.items():
            if value.ndim < 1 or value.shape[0] != t:
                raise ValueError(f"modalities[{name!r}]: expected {t} frames first, got shape {value.shape}")
        self.fps = float(self.fps)

    @property
    def has_depth(self) -> bool:
        return self.depth is not None

    @property
    def has_cameras(self) -> bool:
        return self.c2w is not None

    def _require(self, *what: str) -> None:
        missing = [w for w in what if not getattr(self, f"has_{w}")]
        if missing:
            raise ValueError(
                f"this World4D has no {' or '.join(missing)}: the model that made it decodes no "
                f"{'disparity' if 'depth' in missing else 'raymap'} target"
            )

    @property
    def poses(self) -> np.ndarray:
        """Camera-to-world poses (T, 4, 4) (alias of ``c2w``)."""
        return self.c2w

    @property
    def intrinsics(self) -> np.ndarray:
        """Intrinsics (T, 3, 3) (alias of ``K``)."""
        return self.K

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[2])

    def points(self) -> np.ndarray:
        """World points (T, H, W, 3) float32 (mask them with ``valid``); needs depth and cameras."""
        self._require("depth", "cameras")
        pts = depth_to_points(
            torch.from_numpy(self.depth), torch.from_numpy(self.K), torch.from_numpy(self.c2w)
        )
        return pts.numpy()  # a channel-last view of the point map: no copy

    def point_vertices(
        self, *, frames: Any = None, stride: int = 1, max_points: int | None = None, seed: int = 0
    ) -> np.ndarray:
        """Valid colored points as a PLY vertex array (N,) of ``frames`` (index, slice or None for all),
        every ``stride``-th pixel in each direction, randomly subsampled to at most ``max_points``."""
        self._require("depth", "cameras")
        sel = slice(None) if frames is None else frames
        pick = (lambda a: a[sel][None]) if isinstance(sel, int) else (lambda a: a[sel])
        vertices = export.point_vertices(
            pick(self.depth), pick(self.K), pick(self.c2w), pick(self.rgb), pick(self.valid), stride
        )
        if max_points is not None and len(vertices) > max_points:
            keep = np.sort(np.random.default_rng(seed).choice(len(vertices), max_points, replace=False))
            vertices = vertices[keep]
        return vertices

    def point_cloud(self, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Valid points (N, 3) float32 and colors (N, 3) uint8; arguments as :meth:`point_vertices`."""
        return export.vertices_to_arrays(self.point_vertices(**kwargs))

    def smooth(self, method: str = "kalman", **kwargs: Any) -> World4D:
        """A copy with smoothed cameras (see :func:`aether.geometry.smoothing.smooth_cameras`:
        "kalman" (RTS smoother), "gaussian" (``sigma``), "reference" or "none")."""
        from aether.geometry.smoothing import smooth_cameras

        self._require("cameras")
        c2w = smooth_cameras(torch.from_numpy(self.c2w).double(), method, **kwargs)
        return replace(self, c2w=c2w.float().numpy())

    def resized(self, height: int, width: int) -> World4D:
        """A copy at ``height`` × ``width``: colour bilinear; depth bilinear over valid pixels only
        (invalid neighbours get no weight), valid where the nearest source pixel is valid; disparity
        1/depth; K by :func:`aether.geometry.resize_intrinsics` (pixel centres at integers, as the
        resampling). Cameras, raymap and other modalities are kept as they are."""
        import torch.nn.functional as F

        from aether.geometry import resize_intrinsics
        from aether.geometry.depth import depth_to_disparity

        if min(height, width) <= 0:
            raise ValueError(f"size: expected positive height and width, got {height}x{width}")
        size = (int(height), int(width))
        if size == (self.height, self.width):
            return replace(self)

        def resample(x: torch.Tensor, mode: str) -> torch.Tensor:  # (T, C, h, w) -> (T, C, H, W)
            extra = {} if mode == "nearest-exact" else {"align_corners": False}
            return F.interpolate(x, size=size, mode=mode, **extra)

        rgb = resample(torch.from_numpy(self.rgb).permute(0, 3, 1, 2).float(), "bilinear")
        rgb = rgb.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        changes: dict[str, Any] = {"rgb": rgb}
        if self.has_depth:
            valid = torch.from_numpy(self.valid)[:, None]
            weight = resample(valid.float(), "bilinear")
            total = resample(torch.from_numpy(self.depth)[:, None] * valid, "bilinear")
            keep = resample(valid.float(), "nearest-exact").bool() & (weight > 0)
            depth = torch.where(keep, total / weight.clamp_min(1e-12), 0.0)[:, 0]
            disparity = depth_to_disparity(depth, keep[:, 0])
            changes |= {"depth": depth.numpy(), "valid": keep[:, 0].numpy(), "disparity": disparity.numpy()}
        if self.has_cameras:
            K = resize_intrinsics(torch.from_numpy(self.K).double(), (self.height, self.width), size)
            changes["K"] = K.float().numpy()
        return replace(self, **changes)

    def depth_range(self) -> tuple[float, float]:
        """(near, far) depth in scene units: the 1st and 99th percentile of the valid depth, the
        range of the colour bar of every depth picture and of the depth half of the video."""
        self._require("depth")
        return export.depth_range(self.depth, self.valid)

    def depth_video(self, legend: bool = True) -> np.ndarray:
        """Colourised inverse depth uint8 (T, H, W + L, 3) over :meth:`depth_range` for the whole clip
        (near at the Spectral colormap's blue end), with a near/far colour bar L pixels wide
        (:func:`aether.pipeline.export.depth_legend`; L = 0 without ``legend``)."""
        self._require("depth")
        return export.colorize_depth(self.depth, self.valid, self.depth_range(), legend=legend)

    def save(
        self,
        out_dir: str | os.PathLike,
        *,
        formats: tuple[str, ...] | None = None,
        stride: int = 2,
        max_points: int | None = 2_000_000,
        per_frame: bool = False,
    ) -> dict[str, Path]:
        """Write the result to ``out_dir``; returns {format: path}.

        Formats: mp4 (color | colorised depth with its colour bar), npz (everything, read back by
        :meth:`load`), ply and glb (point cloud of all frames, every ``stride``-th pixel, at most
        ``max_points``; ``per_frame`` adds ``points/frame_XXXX.ply``), json and tum (cameras), png
        (trajectory plot; ``depth.png``: the middle frame's colour | depth with the video's colour
        bar), rrd (rerun, when rerun-sdk is installed).
        """
        formats = DEFAULT_FORMATS if formats is None else tuple(formats)
        unknown = set(formats) - set(ALL_FORMATS)
        if unknown:
            raise ValueError(f"unknown formats {sorted(unknown)}; known: {', '.join(ALL_FORMATS)}")
        needs = {"ply": ("depth", "cameras"), "glb": ("depth", "cameras"), "rrd": ("depth", "cameras")}
        needs |= {"json": ("cameras",), "tum": ("cameras",)}
        skipped = [f for f in formats if not all(getattr(self, f"has_{w}") for w in needs.get(f, ()))]
        if skipped:
            absent = [w for w in ("depth", "cameras") if not getattr(self, f"has_{w}")]
            logger.warning(
                "skipping %s: this result has no %s (the model decodes no such target)",
                ", ".join(skipped),
                " or ".join(absent),
            )
            formats = tuple(f for f in formats if f not in skipped)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        if "npz" in formats:
            written["npz"] = self._save_npz(out / "world.npz")
        pictures = self.rgb
        if self.has_depth and {"mp4", "png"} & set(formats):
            pictures = np.concatenate([self.rgb, self.depth_video()], axis=2)
        if "mp4" in formats:
            frames = pictures
            written["mp4"] = write_video(out / "video.mp4", frames, self.fps)
        vertices = cloud = None
        if {"ply", "glb", "rrd"} & set(formats):
            vertices = self.point_vertices(stride=stride, max_points=max_points)
        if {"glb", "rrd"} & set(formats):
            cloud = export.vertices_to_arrays(vertices)
        if "ply" in formats:
            written["ply"] = export.write_ply(out / "points.ply", vertices)
            if per_frame:
                (out / "points").mkdir(exist_ok=True)
                for t in range(self.num_frames):
                    frame = self.point_vertices(frames=t, stride=stride)
                    export.write_ply(out / "points" / f"frame_{t:04d}.ply", frame)
        if "glb" in formats:
            written["glb"] = export.write_glb(out / "points.glb", *cloud)
        if "json" in formats:
            written["json"] = export.write_trajectory_json(
                out / "trajectory.json", self.c2w, self.K, self.width, self.height
            )
        if "tum" in formats:
            path = out / "trajectory.txt"
            path.write_text(export.tum_lines(self.c2w, np.arange(self.num_frames) / self.fps))
            written["tum"] = path
        if "png" in formats and self.has_cameras:
            paths = {"camera": self.c2w}
            if self.requested_c2w is not None:
                paths = {"requested": self.requested_c2w, "generated": self.c2w}
            written["png"] = plot_trajectories(out / "trajectory.png", paths)
        if "png" in formats and self.has_depth:
            written["depth_png"] = write_image(out / "depth.png", pictures[self.num_frames // 2])
        if "rrd" in formats:
            try:
                written["rrd"] = export.write_rerun(
                    out / "world.rrd", self.rgb, self.depth, self.c2w, self.K, self.fps, cloud
                )
            except ImportError:
                logger.warning("rerun-sdk is not installed; skipping the .rrd recording")
        return written

    def _save_npz(self, path: Path) -> Path:
        skip = ("meta", "fps", "modalities")
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        arrays = {k: v for k, v in arrays.items() if v is not None}
        arrays |= {f"modality:{k}": v for k, v in self.modalities.items()}
        arrays["fps"] = np.float64(self.fps)
        arrays["meta"] = np.array(json.dumps(self.meta, default=str))
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> World4D:
        """Read what :meth:`save` wrote (a directory with ``world.npz``, or the npz itself)."""
        path = Path(path)
        if path.is_dir():
            path = path / "world.npz"
        if not path.is_file():
            raise FileNotFoundError(f"no saved World4D at {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                kwargs = {k: data[k] for k in data.files}
            kwargs["fps"] = float(kwargs["fps"])
            kwargs["modalities"] = {
                k.split(":", 1)[1]: kwargs.pop(k) for k in list(kwargs) if k.startswith("modality:")
            }
            kwargs["meta"] = json.loads(str(kwargs["meta"]))
            world = cls(**kwargs)
            world._check_saved()
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a readable saved World4D ({type(err).__name__}: {err})") from err
        return world

    def _check_saved(self) -> None:
        """ValueError unless the depth is finite and >= 0 and the poses are finite rigid transforms."""
        from aether.geometry import check_poses

        if self.depth is not None and not (np.isfinite(self.depth).all() and (self.depth >= 0).all()):
            raise ValueError("depth: expected finite values >= 0, got NaN, inf or negative ones")
        if self.c2w is not None:
            if not np.isfinite(self.c2w).all() or not np.isfinite(self.K).all():
                raise ValueError("c2w, K: expected finite values")
            check_poses(torch.from_numpy(self.c2w.astype(np.float64)), name="c2w", atol=1e-3)
