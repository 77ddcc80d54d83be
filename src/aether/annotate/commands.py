"""``aether annotate INPUT --out SHARDS``: cameras for RGB-D clips, written as training shards."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

from aether.argtypes import positive_float, torch_device
from aether.cli import HelpFormatter
from aether.data.executors import add_executor_arguments

__all__ = ["main"]


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("input", help="clip folder, folder of clip folders, or shards (.tar, pattern, folder)")
    p.add_argument("--out", required=True, help="output folder for shards and reports/")
    p.add_argument(
        "--depth-scale", type=positive_float, default=1000.0, help="16-bit PNG depth units per metre"
    )
    p.add_argument(
        "--fps", type=positive_float, default=24.0, help="frame rate when a clip does not state one"
    )
    p.add_argument(
        "--estimate-intrinsics", action="store_true", help="ignore given intrinsics, estimate them"
    )
    p.add_argument(
        "--refine-intrinsics", action="store_true", help="also refine intrinsics in bundle adjustment"
    )
    p.add_argument("--masker", default="provided", choices=["provided", "grounded_sam2"])
    p.add_argument("--detector", default="IDEA-Research/grounding-dino-tiny", help="Grounding DINO id or dir")
    p.add_argument("--segmenter", default="facebook/sam2.1-hiera-tiny", help="SAM 2 video id or dir")
    p.add_argument("--categories", default=None, help="comma-separated dynamic categories")
    p.add_argument("--flow", default="dis", choices=["dis", "raft"])
    p.add_argument(
        "--raft-weights", default=None, help="local torchvision RAFT state dict (with --flow raft)"
    )
    p.add_argument("--tracker", default="lucas_kanade", choices=["lucas_kanade", "cotracker"])
    p.add_argument(
        "--cotracker-repo", default=None, help="local co-tracker checkout (with --tracker cotracker)"
    )
    p.add_argument("--cotracker-checkpoint", default=None)
    p.add_argument("--slice-config", default=None, help="JSON object overriding slicing thresholds")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in a non-empty --out (same settings)"
    )
    p.add_argument("--overwrite", action="store_true", help="clear a non-empty --out first")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first clip that fails")
    p.add_argument("--maxcount", type=int, default=100, help="samples per shard")
    p.add_argument("--no-pictures", action="store_true", help="skip the per-slice trajectory PNGs")
    p.add_argument(
        "--require-observable-focal", action="store_true",
        help="refuse slices whose estimated focal length the camera motion does not determine (recorded "
        "in the reports); without it they are kept with a warning",
    )  # fmt: skip
    p.add_argument(
        "--device", type=torch_device, default="cpu", help="torch device of the model stages (e.g. cuda)"
    )
    add_executor_arguments(p)
    return p


# options that change what is written (checked to match when a run is resumed)
_SETTINGS = ("depth_scale", "fps", "estimate_intrinsics", "refine_intrinsics", "masker", "detector")
_SETTINGS += (
    "segmenter",
    "categories",
    "flow",
    "tracker",
    "slice_config",
    "maxcount",
    "require_observable_focal",
)
# options that build the annotator (the settings above plus where models load from and run)
_BUILD = ("estimate_intrinsics", "refine_intrinsics", "masker", "detector", "segmenter", "categories")
_BUILD += ("flow", "raft_weights", "tracker", "cotracker_repo", "cotracker_checkpoint", "slice_config")
_BUILD += ("device", "require_observable_focal")


@functools.lru_cache(maxsize=2)
def build_annotator(spec: str) -> Any:
    """The :class:`~aether.annotate.pipeline.Annotator` of the JSON options ``spec`` (the ``_BUILD``
    options of the command line); built once per process, so models load once per worker."""
    from aether.annotate.bundle import BundleAdjuster
    from aether.annotate.masking import DEFAULT_CATEGORIES, GroundedSam2Masker, ProvidedMasks
    from aether.annotate.pipeline import Annotator
    from aether.annotate.slicing import DISFlow, RAFTFlow, SliceConfig, Slicer
    from aether.annotate.tracking import CoTrackerTracker, LucasKanadeTracker

    args = argparse.Namespace(**json.loads(spec))
    categories = tuple(args.categories.split(",")) if args.categories else DEFAULT_CATEGORIES
    if args.masker == "provided":
        masker = ProvidedMasks(categories)
    else:
        masker = GroundedSam2Masker(args.detector, args.segmenter, categories=categories, device=args.device)
    flow = RAFTFlow(args.raft_weights, device=args.device) if args.flow == "raft" else DISFlow()
    config = SliceConfig(**json.loads(args.slice_config)) if args.slice_config else SliceConfig()
    if args.tracker == "cotracker":
        tracker = CoTrackerTracker(
            repo=args.cotracker_repo, checkpoint=args.cotracker_checkpoint, device=args.device
        )
    else:
        tracker = LucasKanadeTracker()
    return Annotator(
        masker,
        Slicer(config, flow),
        tracker=tracker,
        refiner=BundleAdjuster(optimize_intrinsics=args.refine_intrinsics),
        estimate_intrinsics=args.estimate_intrinsics,
        require_observable_focal=args.require_observable_focal,
    )


def main(argv: list[str], prog: str = "aether annotate") -> int:
    args = build_parser(prog).parse_args(argv[1:])
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: expected a folder, {out} is a file")
    from aether.annotate.io import iter_clip_sources
    from aether.annotate.pipeline import annotate_to_shards
    from aether.annotate.slicing import SliceConfig
    from aether.data.executors import executor_from_args
    from aether.data.workplan import report_run

    if args.flow == "raft" and not args.raft_weights:
        raise ValueError("--flow raft needs --raft-weights (a local torchvision RAFT state dict)")
    try:
        SliceConfig(**json.loads(args.slice_config)) if args.slice_config else None
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"--slice-config must be a JSON object of SliceConfig fields: {err}") from err
    clips = iter_clip_sources(args.input, depth_scale=args.depth_scale, fps=args.fps)  # checked now
    spec = json.dumps({name: getattr(args, name) for name in _BUILD}, sort_keys=True)
    annotator: Any = functools.partial(build_annotator, spec)
    if args.executor == "local" and args.workers == 1:
        annotator = build_annotator(spec)  # here: models load now, errors show before any work
    uses_gpu = args.device != "cpu" and (
        args.masker == "grounded_sam2" or args.flow == "raft" or args.tracker == "cotracker"
    )
    summary = annotate_to_shards(
        clips,
        args.out,
        annotator,
        resume=args.resume,
        overwrite=args.overwrite,
        fail_fast=args.fail_fast,
        settings={name: getattr(args, name) for name in _SETTINGS},
        maxcount=args.maxcount,
        pictures=not args.no_pictures,
        executor=executor_from_args(args, gpu=uses_gpu),
        num_shards=args.num_shards,
        shard_index=args.shard_index,
        retries=0 if args.fail_fast else args.retries,
        claim_timeout=args.claim_timeout,
    )
    print(
        f"annotated {len(summary['annotated'])} clips ({summary['slices']} slices), "
        f"skipped {len(summary['skipped'])} finished clips, {len(summary['failed'])} failed; "
        f"shards in {args.out}"
    )
    clips = {f["uid"]: f"clip {f['clip']} ({f['source']})" for f in summary["failed"]}
    return report_run(summary["plan"], summary["run"], prog, lambda uid: clips.get(uid, uid))
