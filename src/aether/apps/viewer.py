"""A saved :class:`~aether.pipeline.World4D` as a rerun recording: the interactive 4D viewer.

Entities (OpenCV axes, ``world`` is right-handed, y down)::

    world/points             Points3D    per frame: that frame's valid pixels, coloured
    world/trajectory         LineStrips3D static: the camera centres in frame order
    world/camera             Transform3D per frame: the camera-to-world pose
    world/camera/image       Pinhole     per frame: K and the frame size (drawn as a frustum)
    world/camera/image/rgb   Image       per frame: the colour frame (also drawn inside the frustum)
    depth                    DepthImage  per frame: the depth map (scene units; outside the camera, so
                                         rerun shows it as a picture, not as a second point cloud)

on the timelines ``frame`` (index) and ``time`` (seconds at the world's fps), with a layout of a 3D
view beside the colour and depth videos.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

ENTITIES = (
    "world/points",
    "world/trajectory",
    "world/camera",
    "world/camera/image",
    "world/camera/image/rgb",
    "depth",
)


def log_world(rec: Any, world: Any, *, stride: int = 1, max_points: int = 50_000) -> None:
    """Log ``world`` to the rerun recording stream ``rec``.

    Args:
        rec: a ``rerun.RecordingStream``.
        world: the :class:`~aether.pipeline.World4D`.
        stride: keep every ``stride``-th pixel in each direction of the per-frame point clouds.
        max_points: at most this many points per frame (random subset, fixed seed).
    """
    import rerun as rr

    if stride < 1 or max_points < 1:
        raise ValueError(f"stride and max_points must be >= 1, got {stride} and {max_points}")
    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Y_DOWN, static=True)
    centres = world.c2w[:, :3, 3]
    rec.log("world/trajectory", rr.LineStrips3D([centres], colors=[[255, 160, 0]]), static=True)
    extent = float(np.ptp(centres, axis=0).max()) if len(centres) > 1 else 0.0
    near = world.depth_range()[0]  # the near end of every depth picture's colour bar
    frustum = max(0.1 * near, 0.05 * extent, 1e-3)
    for t in range(world.num_frames):
        rec.set_time("frame", sequence=t)
        rec.set_time("time", duration=t / world.fps)
        points, colors = world.point_cloud(frames=t, stride=stride, max_points=max_points, seed=t)
        rec.log("world/points", rr.Points3D(points, colors=colors, radii=rr.Radius.ui_points(2.0)))
        rec.log("world/camera", rr.Transform3D(translation=world.c2w[t, :3, 3], mat3x3=world.c2w[t, :3, :3]))
        rec.log(
            "world/camera/image",
            rr.Pinhole(
                image_from_camera=world.K[t],
                width=world.width,
                height=world.height,
                camera_xyz=rr.ViewCoordinates.RDF,
                image_plane_distance=frustum,
            ),
        )
        rec.log("world/camera/image/rgb", rr.Image(world.rgb[t]))
        rec.log("depth", rr.DepthImage(np.where(world.valid[t], world.depth[t], 0), meter=1.0))


def blueprint() -> Any:
    """The layout: the 3D scene on the left, the colour and depth videos stacked on the right."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(origin="world", name="4D scene"),
            rrb.Vertical(
                rrb.Spatial2DView(origin="world/camera/image", contents="$origin/rgb", name="colour"),
                rrb.Spatial2DView(origin="depth", name="depth"),
            ),
            column_shares=[3, 2],
        ),
        collapse_panels=True,
    )


VIEWER = "rerun"
"""The viewer executable ``rerun.spawn`` starts (installed by rerun-sdk)."""


def view(
    source: str | os.PathLike,
    *,
    save: str | os.PathLike | None = None,
    stride: int = 1,
    max_points: int = 50_000,
) -> Path | None:
    """Open the World4D saved at ``source`` (a folder with ``world.npz`` or the npz) in the rerun viewer,
    or write it to the recording ``save`` (.rrd) instead; returns the written path or None."""
    from aether.apps.extras import require
    from aether.pipeline import World4D

    world = World4D.load(source)
    rr = require("rerun", "aether view")
    rec = rr.RecordingStream("aether", recording_id=f"aether-{Path(source).name}")
    if save is not None:
        path = Path(save)
        if path.suffix != ".rrd":
            raise ValueError(f"--save expects a .rrd file, got {path}")
        partial = path.with_name(path.name + ".partial")
        try:  # a folder we cannot write to fails here, with the path, not inside rerun
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.open("wb").close()
        except OSError as err:
            raise OSError(f"--save {path}: cannot write there ({err.strerror or err})") from None
        rec.save(str(partial), default_blueprint=blueprint())
        log_world(rec, world, stride=stride, max_points=max_points)
        rec.flush()
        rec.disconnect()
        os.replace(partial, path)
        return path
    save = Path(source).parent / "world.rrd" if Path(source).is_file() else Path(source) / "world.rrd"
    if shutil.which(VIEWER) is None:
        raise OSError(
            f"no rerun viewer: the `{VIEWER}` executable is not on PATH (it comes with rerun-sdk: put its "
            f"bin folder on PATH), or write a recording with --save {save} and open it where a viewer is"
        )
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise ValueError(
            "no display to open the viewer on (DISPLAY and WAYLAND_DISPLAY are unset): write a recording "
            f"with --save {save} and open it where there is a screen (rerun FILE.rrd)"
        )
    try:
        rec.spawn(default_blueprint=blueprint())
    except RuntimeError as err:  # the viewer could not start (no display, ...)
        raise OSError(
            f"the rerun viewer could not start ({err}); write a recording with --save OUT.rrd"
        ) from None
    log_world(rec, world, stride=stride, max_points=max_points)
    rec.flush()
    return None
