"""Readers for the evaluation datasets in their published on-disk formats.

Each dataset lists :class:`EvalSequence` objects whose arrays load on demand. Layouts (``root``
may be the named directory or its parent):

- ``sintel``: ``training/final/<seq>/frame_XXXX.png``, ``training/depth/<seq>/frame_XXXX.dpt``,
  ``training/camdata_left/<seq>/frame_XXXX.cam``; the 14-sequence pose list (all sequences for depth).
  Depth float32 as stored.
- ``bonn``: ``rgbd_bonn_dataset/rgbd_bonn_<seq>/{rgb_110,depth_110}/*.png`` (frames 30-140 of each
  sequence; depth png / 5000 m as float64, holes -1), ``groundtruth_110.txt``.
- ``kitti``: the gathered layout of the evaluation's preparation script,
  ``depth_selection/val_selection_cropped/{image_gathered,groundtruth_depth_gathered}/<drive>_02/*.png``
  (the first 110 annotated frames of each drive's left colour camera ``image_02``, uncropped; depth
  png / 256 m as float64, holes -1).
- ``tum``: ``rgbd_dataset_freiburg3_*/rgb_90/<timestamp>.png`` + ``groundtruth_90.txt`` (TUM format,
  associated by timestamp).
- ``scannet``: ``scene*/color_90/*.jpg`` + ``pose_90.txt`` (a flattened 4×4 c2w per line, or TUM lines).
- ``realestate10k``: ``<clip>.txt`` camera files of RealEstate10K beside ``<clip>/`` frame folders
  (``*.png`` / ``*.jpg``; named by the file's timestamps, or one frame per camera line in name order).
- ``clips``: ``*.npz`` clips with ``rgb`` (T,H,W,3) uint8 and optional ``depth``, ``c2w``, ``K``, ``fps``.
- ``synthetic``: held-out clips rendered by :func:`aether.data.synthetic.render_clip` (no files).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aether.registry import Registry

DPT_TAG = 202021.25
SINTEL_POSE_SEQUENCES = (
    "alley_2", "ambush_4", "ambush_5", "ambush_6", "cave_2", "cave_4", "market_2",
    "market_5", "market_6", "shaman_3", "sleeping_1", "sleeping_2", "temple_2", "temple_3",
)  # fmt: skip
BONN_SEQUENCES = ("balloon2", "crowd2", "crowd3", "person_tracking2", "synchronous")
SINTEL_LAYOUT = (
    "training/{final/<seq>/frame_XXXX.png, depth/<seq>/frame_XXXX.dpt, camdata_left/<seq>/frame_XXXX.cam}"
)
BONN_LAYOUT = "rgbd_bonn_dataset/rgbd_bonn_<seq>/{rgb_110/, depth_110/, groundtruth_110.txt}"
KITTI_LAYOUT = (
    "depth_selection/val_selection_cropped/{image_gathered, groundtruth_depth_gathered}"
    "/<drive>_02/<frame>.png"
)
TUM_LAYOUT = "rgbd_dataset_freiburg3_<seq>/{rgb_90/<timestamp>.png, groundtruth_90.txt}"
SCANNET_LAYOUT = "scene<id>/{color_90/frame_XXXX.jpg, pose_90.txt}"
REALESTATE10K_LAYOUT = "<clip>.txt (RealEstate10K cameras) beside <clip>/ (its frames, *.png or *.jpg)"
SYNTHETIC_SEED_OFFSET = 1_000_000  # held out: training data uses seeds below this
# camera paths with translation (the Sim(3) alignment of the pose protocol needs a moving camera)
SYNTHETIC_TRAJECTORIES = ("forward", "orbit", "strafe", "handheld")
DATASETS: Registry[type[EvalDataset]] = Registry("evaluation dataset")


# --------------------------------------------------------------------------- file formats
def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; expected {what}")
    return path


def read_dpt(path: str | Path) -> np.ndarray:
    """Sintel ``.dpt`` depth: float32 tag 202021.25, int32 width, int32 height, float32 data -> (H,W)."""
    path = _require(Path(path), "a Sintel .dpt depth file")
    raw = path.read_bytes()
    if len(raw) < 12:
        raise ValueError(f"{path}: expected a 12-byte .dpt header, found {len(raw)} bytes")
    tag = np.frombuffer(raw, "<f4", 1, 0)[0]
    if tag != np.float32(DPT_TAG):
        raise ValueError(f"{path}: expected .dpt float tag {DPT_TAG}, found {tag}")
    width, height = (int(v) for v in np.frombuffer(raw, "<i4", 2, 4))
    if width <= 0 or height <= 0 or len(raw) != 12 + 4 * width * height:
        raise ValueError(
            f"{path}: expected {12 + 4 * max(width, 0) * max(height, 0)} bytes "
            f"for {width}x{height} depth, found {len(raw)}"
        )
    return np.frombuffer(raw, "<f4", width * height, 12).reshape(height, width).copy()


def read_cam(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Sintel ``.cam``: float32 tag 202021.25, then M (3×3 intrinsics) and N (3×4 world-to-camera),
    float64 row-major. Returns (K (3,3), w2c (4,4))."""
    path = _require(Path(path), "a Sintel .cam camera file")
    raw = path.read_bytes()
    if len(raw) != 4 + 8 * 21:
        raise ValueError(f"{path}: expected {4 + 8 * 21} bytes (tag, 3x3 M, 3x4 N), found {len(raw)}")
    tag = np.frombuffer(raw, "<f4", 1, 0)[0]
    if tag != np.float32(DPT_TAG):
        raise ValueError(f"{path}: expected .cam float tag {DPT_TAG}, found {tag}")
    values = np.frombuffer(raw, "<f8", 21, 4)
    w2c = np.eye(4)
    w2c[:3] = values[9:].reshape(3, 4)
    return values[:9].reshape(3, 3).copy(), w2c


def read_png_depth(path: str | Path, scale: float) -> np.ndarray:
    """16-bit depth png divided by ``scale`` (5000 for Bonn/TUM, 256 for KITTI) -> (H,W) float64 m,
    holes (value 0) set to -1 as the evaluation protocol reads them."""
    import cv2

    if isinstance(scale, bool) or not isinstance(scale, int | float) or not (0 < scale < float("inf")):
        raise ValueError(
            f"{path}: depth scale: expected a finite number > 0 (png value / scale = metres), got {scale!r}"
        )
    path = _require(Path(path), f"a 16-bit depth png (value / {scale:g} = metres)")
    png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if png is None or png.ndim != 2 or png.dtype != np.uint16:
        found = "unreadable" if png is None else f"{png.dtype} with shape {png.shape}"
        raise ValueError(f"{path}: expected a single-channel 16-bit depth png, found {found}")
    depth = png.astype(np.float64) / scale
    depth[png == 0] = -1.0
    return depth


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as uint8 (H,W,3) RGB."""
    import cv2

    path = _require(Path(path), "an RGB image")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: expected a readable RGB image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def quaternion_pose(xyz: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """c2w (N,4,4) from positions (N,3) and unit quaternions (N,4) in x,y,z,w order."""
    from scipy.spatial.transform import Rotation

    c2w = np.tile(np.eye(4), (len(xyz), 1, 1))
    c2w[:, :3, :3] = Rotation.from_quat(quat_xyzw).as_matrix()
    c2w[:, :3, 3] = xyz
    return c2w


def read_tum_trajectory(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """TUM trajectory, ``timestamp tx ty tz qx qy qz qw`` per line (``#`` comments).

    Returns timestamps (N,) and c2w (N,4,4)."""
    path = _require(Path(path), "a TUM trajectory (timestamp tx ty tz qx qy qz qw per line)")
    rows = [
        ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    bad = [i for i, r in enumerate(rows) if len(r) != 8]
    if not rows or bad:
        raise ValueError(
            f"{path}: expected lines of 8 numbers 'timestamp tx ty tz qx qy qz qw', "
            + ("found no data" if not rows else f"data line {bad[0] + 1} has {len(rows[bad[0]])}")
        )
    try:
        data = np.asarray(rows, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: expected numbers 'timestamp tx ty tz qx qy qz qw', {err}") from err
    stamps, counts = np.unique(data[:, 0], return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"{path}: timestamp {float(stamps[counts > 1][0])!r} appears {counts.max()} times; "
            "expected each once"
        )
    norms = np.linalg.norm(data[:, 4:8], axis=1)
    if not (np.isfinite(data).all() and (norms > 1e-8).all()):
        bad = int(np.flatnonzero(~np.isfinite(data).all(1) | (norms <= 1e-8))[0])
        raise ValueError(f"{path}: data line {bad + 1}: expected finite values and a non-zero quaternion")
    return data[:, 0], quaternion_pose(data[:, 1:4], data[:, 4:8])


def associate(
    first: np.ndarray, second: np.ndarray, max_difference: float = 0.02, offset: float = 0.0
) -> list[tuple[int, int]]:
    """TUM ``associate.py``: greedily pair timestamps closest first with |a − (b + offset)| <
    max_difference, each used once. Returns index pairs sorted by the first list."""
    diff = np.abs(first[:, None] - (second[None, :] + offset))
    cand = np.argwhere(diff < max_difference)
    order = np.argsort(diff[cand[:, 0], cand[:, 1]], kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for a, b in cand[order]:
        if a not in used_a and b not in used_b:
            used_a.add(int(a))
            used_b.add(int(b))
            pairs.append((int(a), int(b)))
    return sorted(pairs)


def read_pose_list(path: str | Path) -> np.ndarray:
    """ScanNet ``pose_90.txt``: one flattened 4×4 c2w per line (16 numbers) or 4 lines of 4 per pose.
    Returns (N,4,4); invalid (non-finite) poses are kept as they are."""
    path = _require(Path(path), "camera poses (a flattened 4x4 c2w per line, or 4 rows of 4 per pose)")
    rows = [
        ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    widths = {len(r) for r in rows}
    if not rows or widths - {4, 16} or len(widths) != 1 or (widths == {4} and len(rows) % 4):
        raise ValueError(
            f"{path}: expected lines of 16 numbers or groups of 4 lines of 4, found widths {sorted(widths)}"
        )
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4, 4)


def frame_timestamps(paths: list[Path]) -> np.ndarray | None:
    """Timestamps parsed from file stems (``1341846647.734820.png``), or None if any is not one."""
    try:
        return np.asarray([float(p.stem) for p in paths])
    except ValueError:
        return None


def poses_for_frames(frames: list[Path], trajectory: Path) -> np.ndarray:
    """c2w (T,4,4) for frames from a TUM trajectory: by timestamp association when the frame names
    are timestamps, otherwise line by line (then the counts must agree)."""
    times, c2w = read_tum_trajectory(trajectory)
    stamps = frame_timestamps(frames)
    if stamps is None:
        if len(times) != len(frames):
            raise ValueError(f"{trajectory}: expected one pose per frame ({len(frames)}), found {len(times)}")
        return c2w
    pairs = dict(associate(stamps, times))
    missing = [frames[i].name for i in range(len(frames)) if i not in pairs]
    if missing:
        raise ValueError(
            f"{trajectory}: expected a pose within 0.02 s of every frame, none for {missing[:3]}"
        )
    return c2w[[pairs[i] for i in range(len(frames))]]


def read_realestate10k_cameras(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A RealEstate10K camera file: the video URL on the first line, then one line per frame of 19
    numbers ``timestamp_us fx fy cx cy 0 0`` and the 3×4 world-to-camera matrix, row-major, the
    intrinsics normalised by the image width (fx, cx) and height (fy, cy).

    Returns timestamps (T,) int64 microseconds, normalised intrinsics (T,4) as fx, fy, cx, cy, and
    c2w (T,4,4) (the inverse of the file's world-to-camera poses)."""
    path = _require(Path(path), "a RealEstate10K camera file (URL line, then 19 numbers per frame)")
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(fields) != 19 or len(values) != 19 or not np.isfinite(values).all():
            raise ValueError(
                f"{path}: line {number}: expected 19 finite numbers 'timestamp fx fy cx cy 0 0' and a "
                f"3x4 world-to-camera matrix, found {len(fields)} fields: {line.strip()[:80]!r}"
            )
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: expected a URL line and one camera line per frame, found no camera lines")
    data = np.asarray(rows, dtype=np.float64)
    w2c = np.tile(np.eye(4), (len(data), 1, 1))
    w2c[:, :3] = data[:, 7:].reshape(-1, 3, 4)
    return data[:, 0].astype(np.int64), data[:, 1:5], np.linalg.inv(w2c)


def pixel_intrinsics(normalised: np.ndarray, height: int, width: int) -> np.ndarray:
    """K (T,3,3) in pixels of ``width × height`` frames from normalised fx, fy, cx, cy (T,4)."""
    K = np.tile(np.eye(3), (len(normalised), 1, 1))
    K[:, 0, 0], K[:, 1, 1] = normalised[:, 0] * width, normalised[:, 1] * height
    K[:, 0, 2], K[:, 1, 2] = normalised[:, 2] * width, normalised[:, 3] * height
    return K


# --------------------------------------------------------------------------- sequences
@dataclass
class EvalSequence:
    """One evaluation sequence. Arrays load on first access of :meth:`rgb` / :meth:`depth`."""

    name: str
    frames: list[Path] = field(default_factory=list)
    depth_files: list[Path] = field(default_factory=list)
    depth_reader: Callable[[Path], np.ndarray] | None = None
    c2w: np.ndarray | None = None  # (T,4,4) ground-truth camera-to-world
    K: np.ndarray | None = None  # (T,3,3)
    fps: float = 24.0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # in-memory rgb / depth

    def __len__(self) -> int:
        return len(self.frames) if self.frames else len(self.arrays["rgb"])

    def rgb(self) -> np.ndarray:
        """uint8 (T,H,W,3)."""
        if "rgb" not in self.arrays:
            self.arrays["rgb"] = np.stack([read_rgb(p) for p in self.frames])
        return self.arrays["rgb"]

    def depth(self) -> np.ndarray | None:
        """(T,H,W) metres in the dtype the dataset stores (invalid ≤ 0 or non-finite), or None
        without depth ground truth."""
        if "depth" not in self.arrays and self.depth_files and self.depth_reader is not None:
            self.arrays["depth"] = np.stack([self.depth_reader(p) for p in self.depth_files])
        return self.arrays.get("depth")

    def entry(self, key: str) -> np.ndarray | None:
        """A per-frame array by its clip key ("video": :meth:`rgb`, "depth": :meth:`depth`, others
        from ``arrays``), or None."""
        if key == "video":
            return self.rgb()
        return self.depth() if key == "depth" else self.arrays.get(key)


class EvalDataset:
    """A benchmark dataset: its protocol settings and its sequences.

    Attributes: ``max_depth`` (valid gt < max_depth, None for none), ``post_clip_max`` (cap of the
    aligned prediction), ``fps``, ``trivial_baselines`` (the runners also score the frame-mean depth
    and the static camera on it); ``sequences(task)`` lists the sequences of a benchmark task
    (``"video-depth" | "camera-pose" | "prediction" | "planning"``).
    """

    name = ""
    max_depth: float | None = None
    post_clip_max: float | None = None
    tasks: tuple[str, ...] = ("video-depth", "camera-pose")
    trivial_baselines: bool = False

    def __init__(
        self, root: str | Path | None = None, sequences: list[str] | None = None, **kwargs: Any
    ) -> None:
        if root is None:
            raise ValueError(f"{self.name}: expected --root DIR with the dataset, received none")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: missing; expected the {self.name} dataset directory")
        self.only = list(sequences) if sequences else None
        if kwargs:
            raise ValueError(f"{self.name}: unexpected options {sorted(kwargs)}")

    def _subdir(self, *candidates: str) -> Path:
        for c in candidates:
            if (self.root / c).is_dir():
                return self.root / c
        return self.root

    def _names(self, found: list[str], default: tuple[str, ...] | None = None) -> list[str]:
        wanted = self.only or (list(default) if default else sorted(found))
        missing = [n for n in wanted if n not in found]
        if missing:
            raise FileNotFoundError(f"{self.root}: missing sequences {missing}; found {sorted(found)[:20]}")
        return wanted

    def sequences(self, task: str) -> list[EvalSequence]:
        raise NotImplementedError


def _layout(dataset: str, expected: str, path: Path) -> Path:
    """``path`` if it exists, else a FileNotFoundError naming the expected layout and the path."""
    if not path.exists():
        raise FileNotFoundError(f"{dataset}: expected the layout {expected}; first missing path: {path}")
    return path


def _sorted_files(directory: Path, patterns: tuple[str, ...], what: str) -> list[Path]:
    _require(directory, f"a directory of {what}")
    files = sorted(p for pat in patterns for p in directory.glob(pat))
    if not files:
        raise FileNotFoundError(f"{directory}: expected {what} ({', '.join(patterns)}), found none")
    return files


@DATASETS.register("sintel")
class Sintel(EvalDataset):
    """MPI Sintel training set, final pass; poses on the 14 CUT3R sequences, depth on all."""

    name = "sintel"
    max_depth = 70.0
    post_clip_max = 70.0

    def sequences(self, task: str) -> list[EvalSequence]:
        base = self._subdir("training", "sintel/training")
        final = _layout(self.name, SINTEL_LAYOUT, base / "final")
        if task == "camera-pose":
            _layout(self.name, SINTEL_LAYOUT, base / "camdata_left")
        else:
            _layout(self.name, SINTEL_LAYOUT, base / "depth")
        found = [p.name for p in final.iterdir() if p.is_dir()]
        names = self._names(found, SINTEL_POSE_SEQUENCES if task == "camera-pose" else None)
        out = []
        for n in names:
            frames = _sorted_files(final / n, ("frame_*.png",), "Sintel frames frame_XXXX.png")
            cams = [read_cam(base / "camdata_left" / n / f"{f.stem}.cam") for f in frames]
            depth = [base / "depth" / n / f"{f.stem}.dpt" for f in frames] if task == "video-depth" else []
            out.append(
                EvalSequence(
                    n,
                    frames,
                    depth,
                    read_dpt,
                    c2w=np.linalg.inv(np.stack([c[1] for c in cams])),
                    K=np.stack([c[0] for c in cams]),
                    fps=24.0,
                )  # fmt: skip
            )
        return out


@DATASETS.register("bonn")
class Bonn(EvalDataset):
    """Bonn RGB-D dynamic: the 110-frame subsets (depth png / 5000); valid gt < 70 m, the aligned
    prediction is not capped (as the protocol)."""

    name = "bonn"
    max_depth = 70.0
    post_clip_max = None

    def sequences(self, task: str) -> list[EvalSequence]:
        base = self._subdir("rgbd_bonn_dataset")
        if not any(base.glob("rgbd_bonn_*")):
            _layout(self.name, BONN_LAYOUT, base / "rgbd_bonn_balloon2")
        found = [p.name.removeprefix("rgbd_bonn_") for p in base.glob("rgbd_bonn_*") if p.is_dir()]
        out = []
        for n in self._names(found, BONN_SEQUENCES):
            d = base / f"rgbd_bonn_{n}"
            for sub in ("rgb_110", "depth_110") + (("groundtruth_110.txt",) if task == "camera-pose" else ()):
                _layout(self.name, BONN_LAYOUT, d / sub)
            frames = _sorted_files(d / "rgb_110", ("*.png",), "110 RGB frames")
            depth = _sorted_files(d / "depth_110", ("*.png",), "110 depth pngs (1/5000 m)")
            if len(depth) != len(frames):
                raise ValueError(
                    f"{d}: expected as many depth_110 as rgb_110 files, found {len(depth)} and {len(frames)}"
                )
            c2w = poses_for_frames(frames, d / "groundtruth_110.txt") if task == "camera-pose" else None
            out.append(EvalSequence(n, frames, depth, lambda p: read_png_depth(p, 5000.0), c2w=c2w, fps=30.0))
        return out


@DATASETS.register("kitti")
class Kitti(EvalDataset):
    """KITTI in the evaluation's gathered layout: per drive, the first 110 annotated frames of the
    left colour camera (``<drive>_02``), uncropped; valid gt > 0 without a cap, no post-clip."""

    name = "kitti"
    tasks = ("video-depth",)

    def sequences(self, task: str) -> list[EvalSequence]:
        base = self._subdir("depth_selection/val_selection_cropped", "val_selection_cropped")
        images = _layout(self.name, KITTI_LAYOUT, base / "image_gathered")
        depths = _layout(self.name, KITTI_LAYOUT, base / "groundtruth_depth_gathered")
        found = sorted(p.name for p in images.iterdir() if p.is_dir())
        if not found:
            _layout(self.name, KITTI_LAYOUT, images / "2011_09_26_drive_0002_sync_02")
        out = []
        for n in self._names(found):
            frames = _sorted_files(images / n, ("*.png",), "KITTI frames <frame>.png")
            depth = _sorted_files(_layout(self.name, KITTI_LAYOUT, depths / n), ("*.png",), "depth pngs")
            if [p.name for p in frames] != [p.name for p in depth]:
                extra = sorted({p.name for p in frames} ^ {p.name for p in depth})
                raise ValueError(
                    f"{images / n}: expected one groundtruth_depth_gathered png per image (same names), "
                    f"unmatched: {extra[:3]}"
                )
            out.append(EvalSequence(n, frames, depth, lambda p: read_png_depth(p, 256.0), fps=10.0))
        return out


@DATASETS.register("tum")
class TumDynamics(EvalDataset):
    """TUM RGB-D dynamics (freiburg3): 90-frame subsets, poses by timestamp association."""

    name = "tum"
    tasks = ("camera-pose",)

    def sequences(self, task: str) -> list[EvalSequence]:
        found = {
            p.name.removeprefix("rgbd_dataset_freiburg3_"): p
            for p in self.root.glob("rgbd_dataset_freiburg3_*")
            if p.is_dir()
        }
        if not found:
            _layout(self.name, TUM_LAYOUT, self.root / "rgbd_dataset_freiburg3_walking_xyz")
        for d in found.values():
            _layout(self.name, TUM_LAYOUT, d / "rgb_90")
            _layout(self.name, TUM_LAYOUT, d / "groundtruth_90.txt")
        out = []
        for n in self._names(list(found)):
            frames = _sorted_files(found[n] / "rgb_90", ("*.png",), "90 RGB frames named by timestamp")
            out.append(
                EvalSequence(
                    n, frames, c2w=poses_for_frames(frames, found[n] / "groundtruth_90.txt"), fps=30.0
                )
            )
        return out


@DATASETS.register("scannet")
class ScanNet(EvalDataset):
    """ScanNet test scenes: ``color_90`` frames and ``pose_90.txt``."""

    name = "scannet"
    tasks = ("camera-pose",)

    def sequences(self, task: str) -> list[EvalSequence]:
        scenes = sorted(p for p in self.root.glob("scene*") if p.is_dir())
        if not scenes:
            _layout(self.name, SCANNET_LAYOUT, self.root / "scene0707_00")
        for d in scenes:
            _layout(self.name, SCANNET_LAYOUT, d / "color_90")
            _layout(self.name, SCANNET_LAYOUT, d / "pose_90.txt")
        found = {p.name: p for p in scenes}
        out = []
        for n in self._names(list(found)):
            frames = _sorted_files(found[n] / "color_90", ("*.jpg", "*.png"), "90 colour frames")
            c2w = read_pose_list(found[n] / "pose_90.txt")
            if len(c2w) != len(frames):
                raise ValueError(
                    f"{found[n] / 'pose_90.txt'}: expected {len(frames)} poses (one per frame), "
                    f"found {len(c2w)}"
                )
            out.append(EvalSequence(n, frames, c2w=c2w, fps=30.0))
        return out


def _sequence_from_arrays(name: str, arrays: dict[str, Any], default_fps: float = 12.0) -> EvalSequence:
    rgb = np.asarray(arrays["rgb"])
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"{name}: expected rgb uint8 (T,H,W,3), found {rgb.dtype} {rgb.shape}")
    data = {"rgb": rgb}
    if arrays.get("depth") is not None:
        data["depth"] = np.asarray(arrays["depth"], dtype=np.float32)
    get = lambda k: None if arrays.get(k) is None else np.asarray(arrays[k], dtype=np.float64)
    fps = arrays.get("fps")
    return EvalSequence(
        name, c2w=get("c2w"), K=get("K"), fps=float(default_fps if fps is None else fps), arrays=data
    )


@DATASETS.register("clips")
class Clips(EvalDataset):
    """A directory of ``<name>.npz`` clips (rgb, optional depth, c2w, K, fps): any validation set."""

    name = "clips"
    tasks = ("video-depth", "camera-pose", "prediction", "planning", "camera-control")

    def sequences(self, task: str) -> list[EvalSequence]:
        found = {p.stem: p for p in self.root.glob("*.npz")}
        out = []
        for n in self._names(list(found)):
            with np.load(found[n]) as z:
                if "rgb" not in z:
                    raise ValueError(
                        f"{found[n]}: expected an 'rgb' array (T,H,W,3) uint8, found {sorted(z.files)}"
                    )
                out.append(_sequence_from_arrays(n, {k: z[k] for k in z.files}))
        return out


@DATASETS.register("realestate10k")
class RealEstate10K(EvalDataset):
    """RealEstate10K clips: ``<clip>.txt`` camera files and ``<clip>/`` frame folders. Frames named by
    their timestamp (``<timestamp_us>.png``) take that line's camera; otherwise the frames, in name
    order, take the lines in order (then the counts must agree)."""

    name = "realestate10k"
    tasks = ("camera-control",)

    def sequences(self, task: str) -> list[EvalSequence]:
        found = {p.stem: p for p in self.root.glob("*.txt") if (self.root / p.stem).is_dir()}
        if not found:
            _layout(self.name, REALESTATE10K_LAYOUT, self.root / "<clip>.txt")
        out = []
        for n in self._names(list(found)):
            frames = _sorted_files(self.root / n, ("*.png", "*.jpg"), "the clip's frames")
            stamps, intrinsics, c2w = read_realestate10k_cameras(found[n])
            line = {int(t): i for i, t in enumerate(stamps)}
            if all(p.stem.isdigit() and int(p.stem) in line for p in frames):  # named by timestamp
                frames = sorted(frames, key=lambda p: int(p.stem))
                pick = [line[int(p.stem)] for p in frames]
            elif len(frames) == len(stamps):
                pick = list(range(len(frames)))
            else:
                raise ValueError(
                    f"{found[n]}: expected one camera line per frame of {self.root / n} (or frames named "
                    f"by the lines' timestamps), found {len(stamps)} lines for {len(frames)} frames"
                )
            h, w = read_rgb(frames[0]).shape[:2]
            out.append(
                EvalSequence(n, frames, c2w=c2w[pick], K=pixel_intrinsics(intrinsics[pick], h, w), fps=30.0)
            )
        return out


@DATASETS.register("synthetic")
class Synthetic(EvalDataset):
    """Held-out clips of the synthetic generator (seeds from 1,000,000), rendered in memory; the
    i-th clip follows the i-th (cyclically) of ``SYNTHETIC_TRAJECTORIES``."""

    name = "synthetic"
    tasks = ("video-depth", "camera-pose", "prediction", "planning", "camera-control")
    trivial_baselines = True

    def __init__(
        self,
        root: str | Path | None = None,
        sequences: list[str] | None = None,
        num_sequences: int = 4,
        num_frames: int = 17,
        height: int = 64,
        width: int = 96,
    ) -> None:
        self.root, self.only = None, list(sequences) if sequences else None
        if num_sequences < 1 or num_frames < 2:
            raise ValueError(
                "synthetic: expected num_sequences >= 1 and num_frames >= 2, "
                f"received {num_sequences}, {num_frames}"
            )
        self.num_sequences, self.num_frames, self.height, self.width = (
            num_sequences,
            num_frames,
            height,
            width,
        )

    def sequences(self, task: str) -> list[EvalSequence]:
        from aether.data.synthetic import render_clip

        seeds = [SYNTHETIC_SEED_OFFSET + i for i in range(self.num_sequences)]
        names = self._names([f"seed{s}" for s in seeds])
        out = []
        for n in names:
            clip = render_clip(
                int(n.removeprefix("seed")), num_frames=self.num_frames, height=self.height, width=self.width
            )
            arrays = {"rgb": clip.rgb, "depth": clip.depth, "c2w": clip.c2w, "K": clip.K, "fps": clip.fps}
            out.append(_sequence_from_arrays(n, arrays))
        return out


def build_dataset(name: str, root: str | Path | None = None, **kwargs: Any) -> EvalDataset:
    """Instantiate a registered dataset (``sintel``, ``bonn``, ``kitti``, ``tum``, ``scannet``,
    ``realestate10k``, ``clips``, ``synthetic``)."""
    return DATASETS.get(name)(root, **kwargs)
