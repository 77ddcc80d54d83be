"""The work behind the web app, without the web: checking uploads, preset camera motions, running a
task and packaging its result (colour|depth video, 3D scene with cameras, trajectory plot, archive).

Every problem with an upload raises a ValueError whose message the app shows as it is.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

PRESETS = (
    "none",
    "forward",
    "backward",
    "left",
    "right",
    "up",
    "down",
    "turn left",
    "turn right",
    "orbit left",
    "orbit right",
)
"""Preset camera motions for prediction and planning ("none": no action, the model chooses)."""

FRAME_CHOICES = (17, 25, 33, 41)
MAX_IMAGE_PIXELS = 6000 * 4000
"""Larger uploads are refused before decoding (a 24-megapixel photo is the largest accepted)."""
MAX_VIDEO_FRAMES = 600
MIN_VIDEO_FRAMES = 9


@dataclass
class AppResult:
    """Files of one run: ``video`` colour|depth mp4, ``scene`` GLB (points and camera frustums),
    ``plot`` trajectory PNG, ``archive`` zip of everything ``World4D.save`` wrote, ``folder`` those
    files, and a one-paragraph ``summary``."""

    video: Path
    scene: Path
    plot: Path
    archive: Path
    folder: Path
    summary: str


def default_intrinsics(height: int, width: int, fov_degrees: float = 60.0) -> np.ndarray:
    """(3, 3) pinhole K of a ``width × height`` image with a horizontal field of view ``fov_degrees``
    and the principal point at the image centre (pixel centres at integer coordinates)."""
    focal = 0.5 * width / math.tan(math.radians(fov_degrees) / 2)
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def preset_poses(name: str, num_frames: int, distance: float = 0.5, angle: float = 30.0) -> np.ndarray | None:
    """Camera-to-world poses (T, 4, 4) of a preset motion, the first camera at the origin (OpenCV: x
    right, y down, z forward); None for "none".

    Translations move ``distance`` scene units over the clip (the model's depth unit: 1 = nearest
    point); turns rotate ``angle`` degrees about the camera's y axis; orbits move ``angle`` degrees
    around the point 1 unit ahead, keeping it in view.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown camera motion {name!r}; expected one of {', '.join(PRESETS)}")
    if name == "none":
        return None
    s = np.linspace(0.0, 1.0, num_frames)
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    moves = {
        "forward": (2, 1),
        "backward": (2, -1),
        "left": (0, -1),
        "right": (0, 1),
        "up": (1, -1),
        "down": (1, 1),
    }
    if name in moves:
        axis, sign = moves[name]
        c2w[:, axis, 3] = sign * distance * s
        return c2w
    sign = -1.0 if name.endswith("left") else 1.0
    theta = sign * math.radians(angle) * s
    c, n = np.cos(theta), np.sin(theta)
    c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = c, n, -n, c
    if name.startswith("orbit"):  # the centre stays 1 unit ahead of the rotated camera's axis
        c2w[:, 0, 3] = -n
        c2w[:, 2, 3] = 1.0 - c
    return c2w


def read_upload_image(path: str | os.PathLike | None, what: str = "image") -> np.ndarray:
    """An uploaded image as uint8 (H, W, 3), refusing missing, non-image and oversized files."""
    from PIL import Image, UnidentifiedImageError

    from aether.pipeline.io import read_image

    if not path:
        raise ValueError(f"no {what} given: upload one")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"the {what} ({Path(path).name}) is not an image PIL can read: {err}") from None
    except Image.DecompressionBombError:
        width = height = math.inf
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"the {what} is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels "
            "are accepted (the model runs at a much smaller size anyway): downscale it first"
        )
    return read_image(path)


def read_upload_video(path: str | os.PathLike | None) -> tuple[np.ndarray, float | None]:
    """An uploaded video as uint8 (T, H, W, 3) and its fps, with at least :data:`MIN_VIDEO_FRAMES`."""
    from aether.pipeline.io import read_video

    if not path:
        raise ValueError("no video given: upload one (or pick the example)")
    try:
        frames, fps = read_video(path, max_frames=MAX_VIDEO_FRAMES)
    except ValueError as err:
        raise ValueError(f"the upload ({Path(path).name}) is not a readable video: {err}") from None
    if len(frames) < MIN_VIDEO_FRAMES:
        raise ValueError(
            f"the video has {len(frames)} frame(s); reconstruction needs at least {MIN_VIDEO_FRAMES} "
            "(a moving camera over a second or more)"
        )
    height, width = frames.shape[1:3]
    if height * width > MAX_IMAGE_PIXELS:
        raise ValueError(f"the video frames are {width}x{height} pixels; downscale the video first")
    return frames, fps


class AppRunner:
    """One loaded pipeline serving the app's three tasks, one run at a time.

    Args:
        pipe: an :class:`~aether.pipeline.AetherPipeline`.
        workdir: where each run's files go (a temporary folder by default).
    """

    def __init__(self, pipe: Any, workdir: str | os.PathLike | None = None) -> None:
        self.pipe = pipe
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="aether-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ inputs
    def trajectory(
        self, path: str | os.PathLike | None, preset: str, num_frames: int, image: np.ndarray
    ) -> Any:
        """The action: an uploaded trajectory file (JSON, raymap .npy, TUM .txt with a 60° field of view
        for the image), else the preset motion at the model's resolution, else None."""
        from aether.pipeline import Trajectory
        from aether.pipeline.pipeline import load_trajectory

        if path:
            height, width = image.shape[:2]
            K = default_intrinsics(height, width)
            try:
                traj = load_trajectory(path, height=height, width=width, K=K[[0, 1, 0, 1], [0, 1, 2, 2]])
            except (ValueError, KeyError, OSError) as err:
                raise ValueError(f"the trajectory file ({Path(path).name}) cannot be read: {err}") from None
            if len(traj) not in FRAME_CHOICES:
                raise ValueError(f"the trajectory has {len(traj)} poses; expected one of {FRAME_CHOICES}")
            return traj
        c2w = preset_poses(preset, num_frames)
        if c2w is None:
            return None
        return Trajectory(c2w=c2w, K=default_intrinsics(self.pipe.height, self.pipe.width))

    # ------------------------------------------------------------------ tasks
    def reconstruct(
        self, video: str | os.PathLike | None, *, steps: int | None = None, seed: int = 0
    ) -> AppResult:
        frames, fps = read_upload_video(video)
        with self._lock:
            world = self.pipe.reconstruct(
                frames, num_inference_steps=steps or None, seed=seed, fps=self.pipe.spec.nearest_fps(fps)
            )
        return self.package(world, "reconstruction")

    def predict(self, image: str | os.PathLike | None, **options: Any) -> AppResult:
        """Prediction from an uploaded image; ``options`` as :meth:`generate`."""
        return self.generate("prediction", [read_upload_image(image, "image")], **options)

    def plan(
        self, observation: str | os.PathLike | None, goal: str | os.PathLike | None, **options: Any
    ) -> AppResult:
        """Planning between two uploaded images of one size; ``options`` as :meth:`generate`."""
        obs = read_upload_image(observation, "observation image")
        target = read_upload_image(goal, "goal image")
        if obs.shape != target.shape:
            sizes = f"{obs.shape[1]}x{obs.shape[0]} and {target.shape[1]}x{target.shape[0]}"
            raise ValueError(f"the observation and goal images must have the same size, got {sizes}")
        return self.generate("planning", [obs, target], **options)

    def generate(
        self,
        task: str,
        images: list[np.ndarray],
        *,
        trajectory: str | os.PathLike | None = None,
        preset: str = "none",
        num_frames: int = 17,
        steps: int | None = None,
        seed: int = 0,
        signals: dict[str, np.ndarray] | None = None,
    ) -> AppResult:
        """Run a generating task ("prediction", "planning" or a plug-in's) on ``images`` (its colour
        inputs, in its ``required_inputs`` order) and ``signals`` (its other inputs, e.g. "depth"),
        along the trajectory file, else the preset motion (``num_frames`` frames; a file sets its own
        length); ``steps`` 0 or None: the task's default."""
        from aether.tasks import COLOR_INPUTS, TASKS

        colour = [k for k in TASKS.get(task).required_inputs if k in COLOR_INPUTS]
        inputs = {**dict(zip(colour, images)), **(signals or {})}
        traj = self.trajectory(trajectory, preset, int(num_frames), images[0])
        frames = len(traj) if traj is not None else int(num_frames)
        with self._lock:
            world = self.pipe.run(
                task, inputs, traj, num_frames=frames, num_inference_steps=steps or None, seed=seed
            )
        return self.package(world, task)

    # ------------------------------------------------------------------ outputs
    def package(self, world: Any, task: str) -> AppResult:
        """Save ``world`` (every default format of ``World4D.save``, whose trajectory plot draws the
        requested path under the generated one), then add the 3D scene with cameras and a zip of the
        saved files."""
        run = Path(tempfile.mkdtemp(prefix=f"{task}-", dir=self.workdir))
        folder = run / "result"
        written = world.save(folder)
        scene = write_scene_glb(run / "scene.glb", world)
        plot = written["png"]
        archive = run / f"aether-{task}.zip"
        partial = archive.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder).as_posix())
        os.replace(partial, archive)
        valid = world.depth[world.valid]
        summary = (
            f"{task}: {world.num_frames} frames of {world.width}x{world.height} at {world.fps:g} fps; "
            f"depth {np.percentile(valid, 5):.3g} to {np.percentile(valid, 95):.3g} (5th to 95th percentile, "
            f"model units); camera path length {_path_length(world.c2w):.3g}."
            if valid.size
            else f"{task}: {world.num_frames} frames; no valid depth"
        )
        return AppResult(written["mp4"], scene, plot, archive, folder, summary)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def write_scene_glb(
    path: str | os.PathLike, world: Any, *, max_points: int = 150_000, max_cameras: int = 17
) -> Path:
    """GLB of the clip's coloured point cloud and its cameras as frustum pyramids (first camera red,
    the rest from yellow to blue in time), for three.js / Gradio's Model3D.

    The frustums' depth is a tenth of the median valid depth; at most ``max_cameras`` evenly spaced
    cameras are drawn.
    """
    import trimesh
    from matplotlib import colormaps

    points, colors = world.point_cloud(stride=1, max_points=max_points)
    scene = trimesh.Scene()
    if len(points):
        rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
        scene.add_geometry(trimesh.PointCloud(points, colors=rgba), geom_name="points")
    depth = world.depth[world.valid]
    size = 0.1 * float(np.median(depth)) if depth.size else 0.1
    picks = np.unique(
        np.linspace(0, world.num_frames - 1, min(max_cameras, world.num_frames)).round().astype(int)
    )
    corners_px = np.array(
        [[0, 0, 1], [world.width, 0, 1], [world.width, world.height, 1], [0, world.height, 1]], float
    )
    cmap = colormaps["plasma"]
    for rank, t in enumerate(picks):
        rays = corners_px @ np.linalg.inv(world.K[t].astype(np.float64)).T  # (4, 3) at z = 1
        local = np.concatenate([np.zeros((1, 3)), rays * size], axis=0)
        vertices = local @ world.c2w[t, :3, :3].T.astype(np.float64) + world.c2w[t, :3, 3]
        faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
        color = (
            [255, 0, 0, 255]
            if t == 0
            else (np.array(cmap(rank / max(len(picks) - 1, 1))) * 255).astype(np.uint8)
        )
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        mesh.visual.face_colors = np.tile(color, (len(faces), 1))
        scene.add_geometry(mesh, geom_name=f"camera_{t:04d}")
    path = Path(path)
    path.write_bytes(scene.export(file_type="glb"))
    return path


def _path_length(c2w: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1).sum())
