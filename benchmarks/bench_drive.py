"""Drive-step latency of the app's Drive tab (CPU): each camera step of a driven world, end to end.

A :class:`aether.apps.drive.DriveSession` on the trained tiny memory model (``aether run
recipes/tiny_memory.yaml`` writes it) steps a camera through a fixed sequence of moves from a held-out
synthetic image; per step it records the wall time, the frames added, the points in the memory and the
share of time in the transformer and in the memory's splatting, and the time the app then takes to
write what it shows (the video so far, the 3D scene, the camera path). The first step generates a whole
window (and, for a memory model, the first pass that gives the image its depth); later steps add
``window − 1`` frames each.

    .venv/bin/python benchmarks/bench_drive.py [--model outputs/tiny_memory/model] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "drive.json"
MOVES = ("forward", "forward", "turn left", "turn left", "right", "back", "turn right", "forward")


class Timer:
    """Accumulates the wall time of a wrapped callable."""

    def __init__(self, fn):
        self.fn, self.total = fn, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.total += time.perf_counter() - start


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="outputs/tiny_memory/model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (task default if omitted)")
    parser.add_argument("--seed", type=int, default=2_000_001, help="the held-out synthetic view")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not Path(args.model).is_dir():
        raise SystemExit(f"no model at {args.model}: train it with `aether run recipes/tiny_memory.yaml`")
    torch.set_num_threads(args.threads)
    import aether.pipeline.memory as memory_module
    from aether.apps.drive import DriveSession
    from aether.data.synthetic import render_clip
    from aether.pipeline import AetherPipeline

    pipe = AetherPipeline.from_pretrained(args.model)
    pipe.progress = False
    image = render_clip(args.seed, num_frames=1, height=pipe.height, width=pipe.width).rgb[0]
    transformer = Timer(pipe.transformer.forward)
    pipe.transformer.forward = transformer
    splat = Timer(memory_module.render_memory)
    memory_module.render_memory = splat  # the memory's renders (lifting and splatting)
    session = DriveSession(pipe, image, window=None, steps=args.steps)
    rows = []
    shown = Path(tempfile.mkdtemp(prefix="aether-drive-"))
    for move in MOVES:
        before_t, before_s = transformer.total, splat.total
        record = session.step(move)
        start = time.perf_counter()
        session.show(tempfile.mkdtemp(dir=shown))  # a new folder per step, as the app writes
        show_seconds = time.perf_counter() - start
        rows.append(
            {
                "move": move,
                "seconds": record.seconds,
                "frames_added": record.frames,
                "memory_points": len(session.rollout.store) if session.rollout.store is not None else 0,
                "transformer_seconds": transformer.total - before_t,
                "splatting_seconds": splat.total - before_s,
                "show_seconds": show_seconds,
            }
        )
        print(f"{move:>10}: {record.seconds:.2f} s (+{show_seconds:.2f} s to show), +{record.frames} frames")
    later = [r["seconds"] for r in rows[1:]]
    result = {
        "benchmark": "drive",
        "model": str(args.model),
        "size": [pipe.height, pipe.width],
        "window": session.window,
        "denoising_steps": args.steps,
        "memory_condition": bool(pipe.sampler.has_memory),
        "threads": args.threads,
        "device": "cpu",
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "first_step_seconds": rows[0]["seconds"],
        "later_step_seconds_median": float(np.median(later)),
        "later_step_seconds_max": float(np.max(later)),
        "later_show_seconds_median": float(np.median([r["show_seconds"] for r in rows[1:]])),
        "memory_frames": session.rollout.memory_frames,
        "steps": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "steps"}, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
