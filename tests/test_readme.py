"""Every code block of README.md runs as written.

The rule (the README's language tags say which blocks run):

- ```` ```python ```` blocks run, each on its own in a fresh namespace (a reader pastes one block);
- ```` ```bash ```` blocks run in order, in one working folder, as a reader following the README would;
- ```` ```console ```` blocks are shown, not run: the setup commands (``make demo``, ``make test``),
  whole trainings, cluster launches, servers and viewers that run until stopped (``aether app``,
  ``rerun``) and commands that need the released weights from a hub;
- any other tag fails this test, so no block goes unclassified.

The fixture :func:`readme_dir` is the reader's working folder. It holds the small inputs the README
names, rendered from the synthetic world: ``clip.mp4`` (17 frames, 480×720, 12 fps), ``obs.png`` and
``goal.png`` (480×720), ``path.json`` (17 camera poses, the ``Trajectory.from_json`` format),
``traj.txt`` (the same poses in TUM format) and ``my_clips/walk/`` (a 17-frame 120×160 RGB-D clip
folder: ``rgb/``, 16-bit millimetre ``depth/`` and dynamic ``masks/``). Models are made by the
README's own blocks (``aether tiny-model models/tiny``). A bash block whose every command is an
``aether`` command runs those commands in this process through ``aether.cli.main`` (the same code as
the console script, without re-importing torch per line); any other bash block runs in
``bash -euo pipefail``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
RUN, SHOWN = ("python", "bash"), ("console",)
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\s*$", re.S | re.M)


def readme_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language tag, code, line number) of every fenced block of a markdown text."""
    return [(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def bash_commands(code: str) -> list[list[str]] | None:
    """The argv of each command of a bash block when every one is an ``aether`` command, else None."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        if argv[0] != "aether" or any(c in line for c in "|;&$`><"):
            return None
        commands.append(argv[1:])
    return commands


BLOCKS = readme_blocks(README.read_text())


def _write_inputs(root: Path) -> None:
    import cv2
    import imageio.v3 as iio

    from aether.data import render_clip
    from aether.pipeline.export import tum_lines, write_trajectory_json

    big = (720, 480)  # the README's intrinsics (500 500 360 240) are for 720 x 480 images
    scene = render_clip(7, num_frames=17, height=64, width=96, trajectory="orbit", scene="room", fps=12)
    frames = np.stack([cv2.resize(f, big, interpolation=cv2.INTER_LINEAR) for f in scene.rgb])
    iio.imwrite(root / "clip.mp4", frames, plugin="pyav", codec="libx264", fps=12)
    iio.imwrite(root / "obs.png", frames[0])
    iio.imwrite(root / "goal.png", frames[-1])
    c2w = np.linalg.inv(scene.c2w[0]) @ scene.c2w  # relative to the first frame
    K = scene.K * np.array([[7.5], [7.5], [1.0]])
    write_trajectory_json(root / "path.json", c2w, K, *big)
    (root / "traj.txt").write_text(tum_lines(c2w, np.arange(len(c2w)) / 12))
    clip = render_clip(3, num_frames=17, height=120, width=160, trajectory="turn", fps=12)
    folder = root / "my_clips" / "walk"
    for sub in ("rgb", "depth", "masks"):
        (folder / sub).mkdir(parents=True)
    for t in range(len(clip.rgb)):
        iio.imwrite(folder / "rgb" / f"{t:04d}.png", clip.rgb[t])
        depth_mm = np.round(clip.depth[t] * 1000).clip(0, 65535).astype(np.uint16)
        iio.imwrite(folder / "depth" / f"{t:04d}.png", depth_mm)
        iio.imwrite(folder / "masks" / f"{t:04d}.png", clip.dynamic[t].astype(np.uint8) * 255)


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory):
    """The reader's working folder with the inputs the README names (see the module docstring)."""
    root = tmp_path_factory.mktemp("readme")
    _write_inputs(root)
    return root


def test_every_block_is_classified():
    assert BLOCKS, "no code blocks found in README.md"
    unknown = [(line, lang) for lang, _, line in BLOCKS if lang not in RUN + SHOWN]
    assert not unknown, f"README blocks must be tagged {RUN} (run) or {SHOWN} (shown): {unknown}"


def test_blocks_run_as_written(readme_dir, monkeypatch):
    from aether import cli

    monkeypatch.chdir(readme_dir)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(cli.__file__).parents[1]), *sys.path])}
    shim = readme_dir / ".bin"
    shim.mkdir(exist_ok=True)
    (shim / "aether").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aether.cli "$@"\n')
    (shim / "aether").chmod(0o755)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    timings = []
    failures = []
    for lang, code, line in BLOCKS:
        where = f"README.md:{line} ({lang})"
        start = time.perf_counter()
        try:
            _run_block(lang, code, where, env)
        except Exception as err:  # report every failing block, not only the first
            failures.append(f"{where}: {type(err).__name__}: {err}")
        timings.append(f"{where}: {time.perf_counter() - start:.1f} s")
    print("\n".join(timings))
    assert not failures, "\n".join(failures)


def _run_block(lang: str, code: str, where: str, env: dict[str, str]) -> None:
    from aether import cli

    if lang == "python":
        exec(compile(code, where, "exec"), {"__name__": "__readme__"})
    elif lang == "bash":
        commands = bash_commands(code)
        if commands is None:
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code], env=env, capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise RuntimeError(f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
            return
        for argv in commands:
            status = cli.main(argv)
            if status != 0:
                raise RuntimeError(f"`aether {shlex.join(argv)}` exited with {status}")
