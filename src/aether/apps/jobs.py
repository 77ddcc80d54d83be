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

from aether.pipeline.presets import default_intrinsics
from aether.visualize import RANDOM_WEIGHTS_BADGE

logger = logging.getLogger(__name__)

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


def frame_count(value: Any) -> int:
    """A frame count from the app (the API schema offers strings, "17"; Python clients may send 17),
    one of :data:`FRAME_CHOICES`."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = None
    if count not in FRAME_CHOICES:
        raise ValueError(f"frames: expected one of {', '.join(map(str, FRAME_CHOICES))}, got {value!r}")
    return count


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
        return Trajectory.preset(preset, num_frames, self.pipe.height, self.pipe.width)

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
        length); ``steps`` 0 or None: the model's sampling_steps, else the task's default."""
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
        archive = zip_folder(folder, run / f"aether-{task}.zip")
        summary = f"{task}: {world.num_frames} frames of {world.width}x{world.height} at {world.fps:g} fps; "
        if world.valid.any():
            near, far = world.depth_range()
            summary += f"depth {near:.3g} to {far:.3g} (1st to 99th percentile, scene units); "
        else:
            summary += "no valid depth; "
        summary += f"camera path length {_path_length(world.c2w):.3g}."
        if world.meta.get("random_weights"):
            summary = f"{RANDOM_WEIGHTS_BADGE}. {summary}"
        return AppResult(written["mp4"], scene, plot, archive, folder, summary)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def zip_folder(folder: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Zip every file under ``folder`` (paths relative to it) into ``archive``, written whole or not
    at all."""
    folder, archive = Path(folder), Path(archive)
    partial = archive.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    os.replace(partial, archive)
    return archive


def write_scene_glb(
    path: str | os.PathLike, world: Any, *, max_points: int = 150_000, max_cameras: int = 17
) -> Path:
    """GLB of the clip's coloured point cloud and its cameras as frustum pyramids (first camera red,
    the rest from yellow to blue in time), for three.js / Gradio's Model3D.

    The frustums' depth is a tenth of the median valid depth; at most ``max_cameras`` evenly spaced
    cameras are drawn. Points are those within the depth range of the pictures
    (:meth:`~aether.pipeline.World4D.depth_range`, 1st to 99th percentile), so a few far outliers do
    not shrink the view to a dot; the saved ``points.ply`` / ``points.glb`` hold them all.
    """
    from dataclasses import replace

    import trimesh
    from matplotlib import colormaps

    near, far = world.depth_range()
    shown = replace(world, valid=world.valid & (world.depth >= near) & (world.depth <= far))
    points, colors = shown.point_cloud(stride=1, max_points=max_points)
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
