"""``aether synth``: render synthetic RGB-D clips into WebDataset shards."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MAX_CLIP_BYTES", "main", "synthesize_shards", "write_preview"]

# memory one rendered clip may take (rgb, depth, labels, masks: about 20 bytes per pixel and frame)
MAX_CLIP_BYTES = 8 * 2**30
_BYTES_PER_PIXEL = 20


def _render_sample(
    clip_seed: int, prefix: str, blackout: float, render_args: dict[str, Any]
) -> dict[str, Any]:
    """The clip of seed ``clip_seed`` as a shard sample."""
    from aether import __version__
    from aether.data.synthetic import render_clip

    dark = bool(np.random.default_rng([clip_seed, 3]).uniform() < blackout)
    clip = render_clip(clip_seed, blackout=dark, **render_args)
    return {
        "__key__": f"{prefix}-{clip_seed:08d}",
        "rgb": clip.rgb,
        "depth": clip.depth,
        "K": clip.K,
        "c2w": clip.c2w,
        "fps": clip.fps,
        "dynamic": clip.dynamic,
        "semantic": clip.semantic,
        "instance": clip.instance,
        "untextured": clip.untextured,
        "meta": {"classes": clip.classes, "source": {**clip.meta, "aether_version": __version__}},
    }


def _render_unit(job: dict[str, Any]) -> dict[str, Any]:
    """One work unit: render the clips of ``job["seeds"]`` into shard ``job["index"]``
    (module level: runs in worker processes and Ray tasks)."""
    from aether.data.shards import write_shards

    out, prefix, seeds = Path(job["out"]), job["prefix"], job["seeds"]
    samples = (_render_sample(s, prefix, job["blackout"], job["render_args"]) for s in seeds)
    if job["preview_below"] > seeds[0]:
        samples = _with_preview(samples, out / "preview", job["preview_below"] - seeds[0])
    shards = write_shards(
        samples, str(out / f"{prefix}-%06d.tar"), maxcount=len(seeds), maxsize=float("inf"),
        rgb_codec=job["rgb_codec"], start=job["index"],
    )  # fmt: skip
    return {"outputs": [Path(s).name for s in shards], "keys": [f"{prefix}-{s:08d}" for s in seeds]}


def synth_plan(clips: int, seed: int, maxcount: int, prefix: str) -> list[tuple[str, int, list[int]]]:
    """The work units of a synth run: (id, shard index, clip seeds), ``maxcount`` seeds per shard."""
    starts = range(seed, seed + clips, maxcount)
    end = seed + clips
    return [(f"{prefix}-{i:06d}", i, list(range(s, min(s + maxcount, end)))) for i, s in enumerate(starts)]


def synthesize_shards(
    out: str | Path,
    clips: int,
    *,
    height: int = 64,
    width: int = 96,
    frames: int = 49,
    seed: int = 0,
    maxcount: int = 64,
    prefix: str = "synth",
    fps: float | None = None,
    scene: str | None = None,
    trajectory: str | list[str] | None = None,
    blackout: float = 0.0,
    rgb_codec: str = "npy",
    preview: int = 0,
    progress: bool = True,
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    executor: Any = None,
    num_shards: int = 1,
    shard_index: int = 0,
    retries: int = 2,
    claim_timeout: float = 600.0,
    run: dict[str, Any] | None = None,
) -> list[str]:
    """Render ``clips`` synthetic clips (seeds ``seed .. seed+clips-1``) into shards
    ``out/<prefix>-NNNNNN.tar`` of ``maxcount`` clips; ``blackout`` is the probability of a
    lights-out event per clip. ``preview`` clips also get a picture under ``out/preview/``. Frames
    are stored as ``rgb_codec`` "npy" (lossless, about 3x faster to stream than "png"; procedural
    noise textures barely compress). Returns the shard paths of the whole plan that are done.

    Each shard is one work unit of a :class:`aether.data.workplan.WorkPlan` in ``out/plan/``: it is
    rendered on ``executor`` (default: ``workers`` local processes, 1 = this process), by every
    process of a job array (``num_shards``, ``shard_index``: each renders its part), retried
    ``retries`` times when it fails (``claim_timeout``: see :mod:`aether.data.workplan`). Runs
    never mix: a non-empty ``out`` is refused unless ``overwrite`` (cleared first) or ``resume``
    (the settings must match the recorded ones; done shards are kept, the others rendered).
    ``run``, when given, receives the :class:`~aether.data.workplan.PlanRun` and the plan (keys
    "run", "plan").
    """
    from aether.data.executors import make_executor
    from aether.data.shards import check_settings
    from aether.data.workplan import WorkUnit, open_plan, run_plan, write_json

    if clips < 1 or frames < 1 or height < 1 or width < 1:
        raise ValueError(f"need clips, frames, height, width >= 1, got {clips}, {frames}, {height}, {width}")
    need = height * width * frames * _BYTES_PER_PIXEL
    if need > MAX_CLIP_BYTES:
        raise ValueError(
            f"a {height}x{width} clip of {frames} frames needs about {need / 2**30:.3g} GiB to render, "
            f"expected at most {MAX_CLIP_BYTES / 2**30:g} GiB (lower --height/--width/--frames)"
        )
    if not 0.0 <= blackout <= 1.0:
        raise ValueError(f"blackout must be a probability in [0, 1], got {blackout}")
    if maxcount < 1:
        raise ValueError(f"maxcount must be >= 1, got {maxcount}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    render_args = {"num_frames": frames, "height": height, "width": width, "fps": fps}
    if trajectory is not None and not isinstance(trajectory, str):
        trajectory = list(trajectory)  # recorded in the plan's settings as JSON
    render_args.update(scene=scene, trajectory=trajectory)
    job = {"prefix": prefix, "blackout": blackout, "render_args": render_args, "rgb_codec": rgb_codec}
    job["preview_below"] = seed + preview
    units = [WorkUnit(uid, {**job, "index": index, "seeds": seeds}) for uid, index, seeds in
             synth_plan(clips, seed, maxcount, prefix)]  # fmt: skip
    plan = open_plan(out, "synth", units, overwrite=overwrite, resume=resume, num_shards=num_shards)
    for unit in units:
        unit.payload["out"] = str(plan.out)
    settings = {"clips": clips, "seed": seed, "prefix": prefix, **render_args}
    settings.update(blackout=blackout, rgb_codec=rgb_codec, maxcount=maxcount)
    check_settings(plan.out / f"{prefix}.settings.json", settings, resume or num_shards > 1)
    result = run_plan(
        plan, _render_unit, executor or make_executor(workers=workers),
        units=plan.part(num_shards, shard_index), retries=retries, claim_timeout=claim_timeout,
        progress=progress, desc="synth",
    )  # fmt: skip
    if run is not None:
        run.update(run=result, plan=plan)
    shards = [str(plan.out / f"{u.id}.tar") for u in units if plan.is_done(u.id)]
    if len(shards) == len(units):  # the whole plan is done: the manifest lists every shard
        manifest = {"clips": clips, "seed": seed, "shards": [Path(s).name for s in shards], **render_args}
        manifest.update(blackout=blackout, rgb_codec=rgb_codec, maxcount=maxcount)
        write_json(plan.out / f"{prefix}.json", manifest)
    return shards


def _with_preview(samples: Iterator[dict[str, Any]], folder: Path, count: int) -> Iterator[dict[str, Any]]:
    for index, sample in enumerate(samples):
        if index < count:
            write_preview(sample, folder / f"{sample['__key__']}.png")
        yield sample


def write_preview(sample: dict[str, Any], path: Path) -> None:
    """A PNG of the first, middle and last frame (columns, titled with the frame index) in labelled
    rows: colour, depth (inverse-depth colours with a colour bar ticked in depth, scene units, over the
    clip's 1st to 99th percentile, as every depth picture) and, when present, semantic labels. Frames
    narrower than :data:`aether.visualize.MIN_PANEL_WIDTH` / 2 are upsampled with nearest neighbours."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from aether.visualize import (
        MIN_PANEL_WIDTH,
        colorize_depth,
        depth_colorbar,
        depth_range,
        upsample_nearest,
    )

    frames = sorted({0, len(sample["rgb"]) // 2, len(sample["rgb"]) - 1})
    depth, valid = sample["depth"], sample["depth"] > 0
    near_far = depth_range(depth, valid)
    rows = {
        "colour": sample["rgb"][frames],
        "depth": colorize_depth(depth[frames], valid[frames], near_far, legend=False),
    }
    if sample.get("semantic") is not None:
        palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
        rows["semantic labels"] = palette[sample["semantic"][frames] % 256]
    height, width = depth.shape[1:]
    scale = max(1, -(-MIN_PANEL_WIDTH // (2 * width)))
    pw, ph = width * scale, height * scale
    left, gap, top, right = 110, 8, 40, 110
    fig_w, fig_h = left + len(frames) * (pw + gap) + right, top + len(rows) * (ph + gap + 16)
    fig = Figure(figsize=(fig_w / 100, fig_h / 100), dpi=100)
    fig.text(0.5, 1 - 6 / fig_h, f"{sample['__key__']}: {len(sample['rgb'])} frames, {width}x{height}",
             ha="center", va="top", fontsize=10)  # fmt: skip
    for r, (name, images) in enumerate(rows.items()):
        y = fig_h - top - (r + 1) * (ph + gap + 16) + gap
        for c, (t, image) in enumerate(zip(frames, images)):
            ax = fig.add_axes(((left + c * (pw + gap)) / fig_w, y / fig_h, pw / fig_w, ph / fig_h))
            ax.imshow(upsample_nearest(image, scale), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {t}", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
        if name == "depth":
            bar = ((left + len(frames) * (pw + gap)) / fig_w, y / fig_h, 12 / fig_w, ph / fig_h)
            depth_colorbar(fig, fig.add_axes(bar), near_far)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def main(argv: list[str], prog: str = "aether synth") -> int:
    """``aether synth --out DIR --clips N [...]``; argv[0] is the command name."""
    from aether.cli import HelpFormatter
    from aether.data.executors import add_executor_arguments, executor_from_args
    from aether.data.synthetic_names import SCENES, TRAJECTORIES

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Render synthetic RGB-D clips into WebDataset shards.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--clips", type=int, required=True, help="number of clips")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--frames", type=int, default=49, help="frames per clip (source length)")
    parser.add_argument("--seed", type=int, default=0, help="clip i uses seed SEED+i")
    parser.add_argument("--maxcount", type=int, default=64, help="clips per shard (a work unit)")
    parser.add_argument("--prefix", default="synth", help="shard and key prefix")
    parser.add_argument("--fps", type=float, default=None, help="source fps (default: drawn per clip)")
    parser.add_argument("--scene", choices=SCENES, default=None)
    parser.add_argument(
        "--trajectory", choices=TRAJECTORIES, nargs="+", default=None, help="camera motions drawn among"
    )
    parser.add_argument(
        "--blackout", type=float, default=0.0, help="probability of a lights-out event per clip"
    )
    parser.add_argument(
        "--rgb-codec", choices=("png", "npy"), default="npy", help="npy: fastest to stream; png: smaller"
    )
    parser.add_argument("--preview", type=int, default=0, help="write preview pictures of the first N clips")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (rendering is per-frame small work)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="clear a non-empty output folder first")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in a non-empty output folder (same settings)"
    )
    add_executor_arguments(parser)
    args = parser.parse_args(argv[1:])  # before the heavy imports: --help stays instant
    from aether.data.workplan import report_run

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    run: dict[str, Any] = {}
    synthesize_shards(
        args.out, args.clips, height=args.height, width=args.width, frames=args.frames, seed=args.seed,
        maxcount=args.maxcount, prefix=args.prefix, fps=args.fps, scene=args.scene,
        trajectory=args.trajectory, blackout=args.blackout, rgb_codec=args.rgb_codec, preview=args.preview,
        progress=not args.quiet, overwrite=args.overwrite, resume=args.resume,
        executor=executor_from_args(args), num_shards=args.num_shards, shard_index=args.shard_index,
        retries=args.retries, claim_timeout=args.claim_timeout, run=run,
    )  # fmt: skip
    return report_run(run["plan"], run["run"], prog)
