"""Splatting benchmark: seconds per call of ``aether.geometry.splat_points`` on CPU (one thread by default).

Two cases, on synthetic clips (``render_clip``) lifted with their true depth as ``render_memory`` does:

* ``training``: the memory condition of a training step (``CacheCodec.memory``): two 17-frame clips at
  64 x 96, each clip's first frame lifted (N = 6144 points, float32) and rendered into the clip's 17
  cameras in one call (B = 34), radius 1, depth tolerance 0.2;
* ``drive``: a larger cloud, as the Drive app's memory renders it (float64): the first 8 frames of one
  17-frame clip (N = 49152 points) rendered into its 17 cameras, radius 1, depth tolerance 0.2.

Each run is stored under its ``--label`` in the result file, beside the runs of other labels, with a
SHA-256 digest of each case's outputs (colour, depth and mask): run it with ``--label before`` on one
implementation and ``--label after`` on another, and equal digests mean bitwise identical outputs. A run
labelled other than "before" also records its speed-up over the "before" run (median over median).

    .venv/bin/python benchmarks/bench_splat.py [--label after] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from aether.data.synthetic import render_clip
from aether.geometry import splat_points
from aether.modalities.cache import lift_frames

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_geometry import timed

RESULTS = Path(__file__).resolve().parent / "results" / "splat.json"
HEIGHT, WIDTH, FRAMES, RADIUS, DEPTH_TOLERANCE = 64, 96, 17, 1, 0.2
CASES = {  # name: (clip seeds, lifted frames per clip, dtype)
    "training": ((11, 12), 1, torch.float32),
    "drive": ((13,), 8, torch.float64),
}


def case_inputs(seeds: tuple[int, ...], sources: int, dtype: torch.dtype) -> dict[str, object]:
    """splat_points' arguments: each clip's first ``sources`` frames lifted, seen by all its cameras."""
    points, colors, valid, c2w, K = [], [], [], [], []
    for seed in seeds:
        clip = render_clip(seed, num_frames=FRAMES, height=HEIGHT, width=WIDTH)
        rgb = torch.from_numpy(clip.rgb).permute(0, 3, 1, 2).to(dtype)[None] / 127.5 - 1
        depth, pose, intr = (torch.from_numpy(a).to(dtype)[None] for a in (clip.depth, clip.c2w, clip.K))
        p, c, v = lift_frames(rgb[:, :sources], depth[:, :sources], pose[:, :sources], intr[:, :sources])
        points.append(p.repeat_interleave(FRAMES, 0))
        colors.append(c.repeat_interleave(FRAMES, 0))
        valid.append(v.repeat_interleave(FRAMES, 0))
        c2w.append(pose[0])
        K.append(intr[0])
    return {
        "points": torch.cat(points),
        "colors": torch.cat(colors),
        "c2w": torch.cat(c2w),
        "K": torch.cat(K),
        "height": HEIGHT,
        "width": WIDTH,
        "valid": torch.cat(valid),
        "radius": RADIUS,
        "depth_tolerance": DEPTH_TOLERANCE,
    }


def digest(outputs: tuple[torch.Tensor, ...]) -> str:
    """SHA-256 of the outputs' values (dtype, shape and bytes), whatever their memory layout."""
    sha = hashlib.sha256()
    for tensor in outputs:
        sha.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        sha.update(tensor.contiguous().numpy().tobytes())
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="name of this run in the result file")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    inputs = {name: case_inputs(*case) for name, case in CASES.items()}
    calls = {name: (lambda kw=kw: splat_points(**kw)) for name, kw in inputs.items()}
    seconds = timed(calls, args.repeats)
    run = {
        "seconds_per_call": seconds,
        "output_sha256": {name: digest(call()) for name, call in calls.items()},
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15min": os.getloadavg(),
        "torch": torch.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "repeats": args.repeats,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    before = result.get("runs", {}).get("before")
    if before is not None and args.label != "before":
        run["speedup_over_before_median"] = {
            name: before["seconds_per_call"][name]["median"] / t["median"] for name, t in seconds.items()
        }
        run["outputs_equal_to_before"] = run["output_sha256"] == before["output_sha256"]
    cases = {
        name: {
            "batch": kw["points"].shape[0],
            "points": kw["points"].shape[1],
            "dtype": str(kw["points"].dtype).removeprefix("torch."),
            "height": HEIGHT,
            "width": WIDTH,
            "radius": RADIUS,
            "depth_tolerance": DEPTH_TOLERANCE,
        }
        for name, kw in inputs.items()
    }
    result = {
        "benchmark": "splat",
        "device": "cpu",
        "cases": cases,
        "runs": {**result.get("runs", {}), args.label: run},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps({"cases": cases, args.label: run}, indent=2))


if __name__ == "__main__":
    main()
