"""Small example inputs for every command of the README and the docs, rendered from the synthetic
world, so the quickstart runs on an empty folder with no download.

``write_examples(folder)`` writes:

- ``clip.mp4``: 17 frames, 480×720, 12 fps, a camera orbiting in a room (``reconstruct``);
- ``obs.png`` and ``goal.png``: its first and last frames (``predict``, ``plan``);
- ``path.json``: the clip's 17 cameras relative to the first, OpenCV camera-to-world, with K for
  720×480 (the :meth:`aether.Trajectory.from_json` format);
- ``traj.txt``: the same poses in TUM format (``timestamp tx ty tz qx qy qz qw``; TUM holds no
  intrinsics: :func:`write_examples` returns them);
- ``my_clips/walk/``: a 17-frame 120×160 RGB-D clip folder (``rgb/``, 16-bit millimetre ``depth/``,
  dynamic ``masks/``) for ``aether annotate``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

EXAMPLE_FILES = ("clip.mp4", "obs.png", "goal.png", "path.json", "traj.txt", "my_clips")
EXAMPLE_SIZE = (480, 720)
"""Height and width of the example video and images (AetherV1's resolution)."""
EXAMPLE_FPS = 12


def _render_to(root: Path) -> np.ndarray:
    """Write every example into the empty folder ``root``; returns K (3, 3) of the example images."""
    import cv2
    import torch

    from aether.data import render_clip
    from aether.geometry import resize_intrinsics
    from aether.pipeline.export import tum_lines, write_trajectory_json
    from aether.pipeline.io import write_image, write_video

    height, width = EXAMPLE_SIZE
    scene = render_clip(7, num_frames=17, height=64, width=96, trajectory="orbit", scene="room", fps=12)
    frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in scene.rgb])
    write_video(root / "clip.mp4", frames, EXAMPLE_FPS)
    write_image(root / "obs.png", frames[0])
    write_image(root / "goal.png", frames[-1])
    c2w = np.linalg.inv(scene.c2w[0]) @ scene.c2w  # relative to the first frame
    K = resize_intrinsics(torch.from_numpy(scene.K[0]), (64, 96), (height, width)).numpy()
    write_trajectory_json(root / "path.json", c2w, K, width, height)
    (root / "traj.txt").write_text(tum_lines(c2w, np.arange(len(c2w)) / EXAMPLE_FPS))

    clip = render_clip(3, num_frames=17, height=120, width=160, trajectory="turn", fps=EXAMPLE_FPS)
    folder = root / "my_clips" / "walk"
    for sub in ("rgb", "depth", "masks"):
        (folder / sub).mkdir(parents=True)
    depth_mm = np.round(clip.depth * 1000).clip(0, 65535).astype(np.uint16)
    for t in range(len(clip.rgb)):
        cv2.imwrite(str(folder / "rgb" / f"{t:04d}.png"), clip.rgb[t][..., ::-1])
        cv2.imwrite(str(folder / "depth" / f"{t:04d}.png"), depth_mm[t])
        cv2.imwrite(str(folder / "masks" / f"{t:04d}.png"), clip.dynamic[t].astype(np.uint8) * 255)
    return K


def write_examples(
    folder: str | os.PathLike, *, overwrite: bool = False
) -> tuple[dict[str, Path], np.ndarray]:
    """Write the example inputs (:data:`EXAMPLE_FILES`, see the module docstring) into ``folder``.

    Each file is rendered into a temporary folder beside them and moved into place only when all are
    written, so a failure leaves nothing half-written.

    Args:
        folder: where to write (created when missing; other files in it are left alone).
        overwrite: replace example files already there; without it they are refused.

    Returns:
        The written paths by name, and K (3, 3) in pixels of the example images (480×720).

    Raises:
        FileExistsError: naming the example files already in ``folder`` (without ``overwrite``).
        NotADirectoryError: when ``folder`` is a file.
    """
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"expected a folder to write the examples to, {root} is a file")
    present = [name for name in EXAMPLE_FILES if (root / name).exists()]
    if present and not overwrite:
        raise FileExistsError(
            f"{root} already holds {', '.join(present)}; pass --overwrite (overwrite=True) to replace them"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".aether-examples-", dir=root))
    try:
        K = _render_to(staging)
        written = {}
        for name in EXAMPLE_FILES:
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(staging / name, target)
            written[name] = target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written, K
