"""Driving a world from one image: each camera step (forward, back, turn, strafe, up, down) generates the
next frames with the loaded model and extends the world, never regenerating what came before.

Camera steps are in OpenCV camera axes (x right, y down, z forward) and the world's units (window 0's
normalised depth: 1 = the first frame's nearest point): forward/back move along the camera z axis by
the step length, left/right along x, up/down along −y, and turns rotate about the camera y axis by the
angle ("turn left" swings the viewing direction toward −x). The poses of one step move at a constant
rate from the last requested camera, one per new frame. The world grows by
:class:`aether.pipeline.rollout.Rollout` (chained windows with the geometric memory).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aether.apps.jobs import read_upload_image, write_scene_glb, zip_folder
from aether.pipeline.presets import default_intrinsics
from aether.visualize import RANDOM_WEIGHTS_BADGE

MOVES = ("forward", "back", "turn left", "turn right", "left", "right", "up", "down")
"""The camera steps ("left"/"right" strafe; the turns rotate)."""
KEYS = {
    "forward": ("W", "↑"),
    "back": ("S", "↓"),
    "turn left": ("A", "←"),
    "turn right": ("D", "→"),
    "left": ("Q",),
    "right": ("E",),
    "up": ("R",),
    "down": ("F",),
}
"""The keyboard keys of each step in the app."""
STEP_LENGTH = 0.25
TURN_DEGREES = 15.0
MEMORY_FRAMES = 8
"""The memory frames a step renders (those seen from the cameras nearest its own): a step's time does
not grow with the world (all frames: 1 s after 12 frames, 6 s after 124 on the tiny model, 2 threads)."""


def move_pose(move: str, step: float = STEP_LENGTH, angle: float = TURN_DEGREES) -> np.ndarray:
    """(4, 4) pose of the camera after ``move`` in the camera's frame before it (``step`` scene units,
    ``angle`` degrees)."""
    if move not in MOVES:
        raise ValueError(f"unknown camera step {move!r}; expected one of {', '.join(MOVES)}")
    pose = np.eye(4)
    if move.startswith("turn"):
        theta = math.radians(angle) * (-1.0 if move == "turn left" else 1.0)
        c, s = math.cos(theta), math.sin(theta)
        pose[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]  # rotation about y: z → (s, 0, c)
        return pose
    axis = {"forward": 2, "back": 2, "left": 0, "right": 0, "up": 1, "down": 1}[move]
    sign = -1.0 if move in ("back", "left", "up") else 1.0  # y points down: up is −y
    pose[axis, 3] = sign * step
    return pose


def step_poses(
    c2w: np.ndarray, move: str, frames: int, step: float = STEP_LENGTH, angle: float = TURN_DEGREES
) -> np.ndarray:
    """Camera-to-world poses (frames, 4, 4) of one camera step from pose ``c2w`` (4, 4) in the world
    frame: frame i of ``frames`` has moved i / frames of the way, the last one the whole ``move``."""
    if frames < 1:
        raise ValueError(f"frames: expected at least 1, got {frames}")
    c2w = np.asarray(c2w, dtype=np.float64)
    parts = [move_pose(move, step * i / frames, angle * i / frames) for i in range(1, frames + 1)]
    return c2w @ np.stack(parts)


@dataclass
class DriveStep:
    """One step: its ``move``, the ``frames`` it added and the ``seconds`` the model took for them."""

    move: str
    frames: int
    seconds: float


@dataclass
class DriveView:
    """What the app shows after a step: the colour|depth ``video`` so far, the 3D ``scene`` (points and
    cameras), the camera-path ``plot``, the last step's latency ``seconds`` and a ``summary``."""

    video: Path
    scene: Path
    plot: Path
    seconds: float
    summary: str


@dataclass
class DriveSession:
    """A world driven step by step from ``image``.

    Args:
        pipe: an :class:`~aether.pipeline.AetherPipeline`.
        image: the start image (anything ``AetherPipeline`` takes).
        source: what the image came from (the app restarts when it changes).
        window: frames per generated window (default: the model's smallest trained count, for speed);
            the first step generates a whole window, each later one ``window − 1`` new frames.
        steps, seed: denoising steps (None: the task's default) and the seed of the first window.
    """

    pipe: Any
    image: Any
    source: str | None = None
    window: int | None = None
    steps: int | None = None
    seed: int = 0
    history: list[DriveStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        from aether.pipeline.rollout import Rollout, rollout_window

        frames = self.pipe.spec.frames
        window = self.window or (min(frames) if frames else rollout_window(self.pipe))
        self.rollout = Rollout(
            self.pipe,
            window=window,
            memory_frames=MEMORY_FRAMES,
            num_inference_steps=self.steps,
            seed=self.seed,
        )
        self.rollout.start(self.image)
        self.window = self.rollout.window
        self.K = default_intrinsics(self.pipe.height, self.pipe.width)

    @property
    def num_frames(self) -> int:
        return self.rollout.num_frames

    def step(self, move: str, step: float = STEP_LENGTH, angle: float = TURN_DEGREES) -> DriveStep:
        """Generate the frames of one camera step and add them to the world."""
        if not (math.isfinite(step) and math.isfinite(angle)) or step < 0:
            raise ValueError(f"expected a finite step length >= 0 and a finite angle, got {step}, {angle}")
        state = self.rollout
        if self.num_frames == 0:  # the first window starts at the image's camera
            poses = np.concatenate(
                [np.eye(4)[None], step_poses(np.eye(4), move, self.window - 1, step, angle)]
            )
        else:
            last = state.req_c2w[-1].numpy()
            poses = step_poses(last, move, state.step_frames, step, angle)
        before = self.num_frames
        K = np.repeat(self.K[None], len(poses), axis=0)
        start = time.perf_counter()
        state.extend(poses, K)
        record = DriveStep(move, self.num_frames - before, time.perf_counter() - start)
        self.history.append(record)
        return record

    def world(self) -> Any:
        """The World4D driven so far (``meta["moves"]`` lists the steps, ``meta["step_seconds"]`` their
        latencies)."""
        world = self.rollout.result()
        moves = [s.move for s in self.history]
        seconds = [round(s.seconds, 4) for s in self.history]
        return replace(world, meta={**world.meta, "drive": True, "moves": moves, "step_seconds": seconds})

    def summary(self) -> str:
        last = self.history[-1]
        text = (
            f"drive: {len(self.history)} step(s), {self.num_frames} frames of {self.pipe.width}x"
            f"{self.pipe.height}; the last step ({last.move}) generated {last.frames} frames in "
            f"**{last.seconds:.2f} s**. Step latencies (s): "
            + ", ".join(f"{s.seconds:.2f}" for s in self.history)
            + "."
        )
        if getattr(self.pipe, "random_weights", False):
            text = f"{RANDOM_WEIGHTS_BADGE}. {text}"
        return text

    def show(self, folder: str | os.PathLike) -> DriveView:
        """Write the video so far, the 3D scene and the camera path (requested under generated) into
        ``folder``."""
        folder = Path(folder)
        world = self.world()
        written = world.save(folder / "result", formats=("mp4", "png"))
        scene = write_scene_glb(folder / "scene.glb", world)
        return DriveView(written["mp4"], scene, written["png"], self.history[-1].seconds, self.summary())

    def export(self, folder: str | os.PathLike) -> tuple[Path, Path | None]:
        """Save everything (``World4D.save``'s default formats and the rerun ``.rrd`` when rerun-sdk is
        installed) under ``folder``; returns the zip of it all and the ``.rrd`` (None without rerun)."""
        from aether.pipeline.world import DEFAULT_FORMATS

        folder = Path(folder)
        written = self.world().save(folder / "result", formats=(*DEFAULT_FORMATS, "rrd"))
        archive = zip_folder(folder / "result", folder / "aether-drive.zip")
        return archive, written.get("rrd")


def drive_step(
    runner: Any,
    session: DriveSession | None,
    image: str | os.PathLike | None,
    move: str,
    *,
    step: float = STEP_LENGTH,
    angle: float = TURN_DEGREES,
    steps: int | None = None,
    seed: int = 0,
) -> tuple[DriveSession, DriveView]:
    """One step of the app's Drive tab on an :class:`~aether.apps.jobs.AppRunner`: a new session when
    there is none or the image changed, then the step; returns the session and what to show."""
    if move not in MOVES:
        raise ValueError(f"unknown camera step {move!r}; expected one of {', '.join(MOVES)}")
    source = None if image is None else str(image)
    with runner._lock:
        if session is None or session.source != source:
            session = DriveSession(runner.pipe, read_upload_image(image, "start image"), source, seed=seed)
        session.rollout.sampling["num_inference_steps"] = steps or None
        session.step(move, float(step), float(angle))
        folder = Path(tempfile.mkdtemp(prefix="drive-", dir=runner.workdir))
        return session, session.show(folder)


def drive_export(runner: Any, session: DriveSession | None) -> tuple[Path, Path | None]:
    """The zip and ``.rrd`` of the world driven so far (a ValueError before the first step)."""
    if session is None or not session.history:
        raise ValueError("nothing to export yet: take a step first")
    with runner._lock:
        return session.export(tempfile.mkdtemp(prefix="drive-export-", dir=runner.workdir))
