"""Data benchmark: synthetic rendering, shard write / read, and DataModule throughput.

- render: frames per second of ``render_clip`` at 64x96 and 480x720 (one clip per scene kind);
- shards: write and read throughput (clips/s, MB/s) of 49-frame clips, PNG and npy frame codecs;
- loader: training samples per second of ``AetherDataModule`` with 2 workers at 64x96, T = 17
  (the tiny recipe's resolution), next to the tiny recipe model's training step time (forward,
  backward, AdamW; one thread) on the same batches;
- annotate: ``aether annotate`` throughput (clips per minute) on the same synthetic clips with
  1 and 2 local workers and on a local Ray instance with 2 CPUs (wall time of the whole command,
  worker start-up included; the Ray instance is started before the clock starts), with the median
  and largest seconds one clip took where it ran (a worker's first clip pays its imports).

    .venv/bin/python benchmarks/bench_data.py [--threads 1] [--device cpu] [--out PATH]
        [--only render,shards,loader,annotate]   # --only updates those sections of an existing JSON
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from aether.data import AetherDataModule, ShardReader, render_clip, write_shards
from aether.data.commands import synthesize_shards
from aether.data.synthetic import SCENES

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("render", "shards", "loader", "annotate")


def bench_render(height: int, width: int, frames: int, device: str, repeats: int = 2) -> dict:
    """Frames per second per scene kind: best of ``repeats`` (the machine may be shared)."""
    render_clip(0, num_frames=1, height=height, width=width, device=device)  # warm-up
    per_scene = {}
    for seed, scene in enumerate(SCENES):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            render_clip(seed, num_frames=frames, height=height, width=width, scene=scene, device=device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        per_scene[scene] = frames / best
    return {
        "height": height,
        "width": width,
        "frames_per_clip": frames,
        "fps": len(per_scene) / sum(1 / fps for fps in per_scene.values()),
        "fps_per_scene": per_scene,
    }


def _folder_bytes(paths: list[str]) -> int:
    return sum(Path(p).stat().st_size for p in paths)


def bench_shards(folder: Path, clips: int, height: int, width: int, frames: int) -> dict:
    rendered = [
        render_clip(seed, num_frames=frames, height=height, width=width) for seed in range(min(4, clips))
    ]
    samples = []
    for index in range(clips):
        clip = rendered[index % len(rendered)]
        fields = ("rgb", "depth", "K", "c2w", "fps", "dynamic", "semantic", "instance", "untextured")
        sample = {name: getattr(clip, name) for name in fields}
        samples.append({**sample, "__key__": f"clip-{index:06d}", "meta": {"classes": clip.classes}})
    raw_mb = sum(s["rgb"].nbytes + s["depth"].nbytes for s in samples) / 1e6
    out = {"clips": clips, "height": height, "width": width, "frames": frames, "rgb_depth_raw_mb": raw_mb}
    for codec in ("png", "npy"):
        start = time.perf_counter()
        pattern = str(folder / f"{codec}-{height}-%06d.tar")
        shards = write_shards(samples, pattern, maxcount=8, rgb_codec=codec)
        write_s = time.perf_counter() - start
        size_mb = _folder_bytes(shards) / 1e6
        start = time.perf_counter()
        count = sum(1 for _ in ShardReader(shards))
        read_s = time.perf_counter() - start
        out[codec] = {
            "shard_mb": size_mb,
            "write_clips_per_s": clips / write_s,
            "write_mb_per_s": size_mb / write_s,
            "read_clips_per_s": count / read_s,
            "read_mb_per_s": size_mb / read_s,
        }
    return out


def bench_loader(folder: Path, batches: int, workers: int) -> dict:
    result = {
        "height": 64,
        "width": 96,
        "frames": 17,
        "batch_size": 8,
        "num_workers": workers,
        "batches": batches,
    }
    for codec in ("npy", "png"):
        shards = synthesize_shards(folder / codec, 16, frames=41, maxcount=4, progress=False, rgb_codec=codec)
        dm = AetherDataModule(
            train_urls=shards, height=64, width=96, frames=(17,), batch_size=8, num_workers=workers,
            shuffle_buffer=32,
        )  # fmt: skip
        iterator = iter(dm.train_dataloader())
        next(iterator)  # workers started, buffers filled
        start = time.perf_counter()
        for _ in itertools.islice(iterator, batches):
            pass
        elapsed = time.perf_counter() - start
        result[codec] = {"samples_per_s": 8 * batches / elapsed, "batch_s": elapsed / batches}
        del iterator
    result["tiny_train_step_s"] = tiny_step_time(shards)
    return result


def tiny_step_time(shards: list[str], steps: int = 5) -> float:
    """Median seconds of one optimisation step (forward, backward, AdamW) of the tiny recipe's model on
    its batches (8 clips, T = 17, 64x96), built from ``recipes/tiny.yaml`` through the training CLI."""
    from aether.training.cli import AetherCLI, resolve_config_args

    recipe = Path(__file__).parents[1] / "recipes" / "tiny.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "-c",
            str(recipe),
            "--data.init_args.train_urls",
            shards[0],
            "--data.init_args.num_workers",
            "0",
        ]
        cli = AetherCLI(args=resolve_config_args(args, tmp), run=False)
    model = cli.model.train()
    batches = list(itertools.islice(cli.datamodule.train_dataloader(), steps + 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for index, batch in enumerate(batches):
        start = time.perf_counter()
        out = model.training_step(batch, index)
        (out["loss"] if isinstance(out, dict) else out).backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench_annotate(folder: Path, clips: int, frames: int, height: int, width: int) -> dict:
    """Clips per minute of ``aether annotate`` on ``clips`` strafing synthetic clips: 1 and 2 local
    workers, and Ray with 2 CPUs (when installed)."""

    from aether.annotate.commands import main as annotate

    source = folder / "annotate-input"
    synthesize_shards(source, clips, frames=frames, height=height, width=width, trajectory="strafe",
                      fps=12.0, maxcount=clips, progress=False)  # fmt: skip
    args = [str(source), "--slice-config", '{"min_length": 5}', "--no-pictures", "--retries", "0"]
    result = {"clips": clips, "frames": frames, "height": height, "width": width}
    runs = {"local_1_worker": ["--workers", "1"], "local_2_workers": ["--workers", "2"]}
    runs["ray_2_cpus"] = ["--executor", "ray"]
    for name, extra in runs.items():
        if name == "ray_2_cpus":  # started after the local runs, so its idle processes do not load them
            try:
                import ray
            except ImportError:
                result[name] = "not measured: ray is not installed"
                continue
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        status = annotate(["annotate", *args, "--out", str(folder / f"annotate-{name}"), *extra])
        elapsed = time.perf_counter() - start
        if name == "ray_2_cpus":
            ray.shutdown()
        if status != 0:
            raise RuntimeError(f"annotate {name} exited with status {status}")
        done = (folder / f"annotate-{name}" / "plan" / "done").glob("*.json")
        units = [json.loads(p.read_text())["seconds"] for p in done]
        result[name] = {
            "seconds": elapsed,
            "clips_per_min": 60 * clips / elapsed,
            "load_average_1min": load,
            "unit_seconds_median": statistics.median(units),
            "unit_seconds_max": max(units),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--large-frames", type=int, default=3, help="frames per clip at 480x720")
    parser.add_argument("--out", type=Path, default=RESULTS / "data.json")
    parser.add_argument("--only", default="render,shards,loader,annotate", help="sections to run")
    parser.add_argument("--annotate-clips", type=int, default=12)
    parser.add_argument("--annotate-frames", type=int, default=17)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sections = set(args.only.split(","))
    report = json.loads(args.out.read_text()) if args.out.is_file() and sections != {*SECTIONS} else {}
    report.update({
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": args.threads,
            "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(args.device),
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15min": os.getloadavg(),
        },
    })  # fmt: skip
    if "render" in sections:
        report["render"] = [
            bench_render(64, 96, 17, args.device),
            bench_render(480, 720, args.large_frames, args.device),
        ]
        print(json.dumps(report["render"], indent=1), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "shards" in sections:
            report["shards"] = [
                bench_shards(Path(tmp), 16, 64, 96, 49),
                bench_shards(Path(tmp), 2, 480, 720, 5),
            ]
            print(json.dumps(report["shards"], indent=1), flush=True)
        if "loader" in sections:
            report["loader"] = bench_loader(Path(tmp), batches=20, workers=2)
            print(json.dumps(report["loader"], indent=1), flush=True)
        if "annotate" in sections:
            report["annotate"] = bench_annotate(Path(tmp), args.annotate_clips, args.annotate_frames, 96, 128)
            print(json.dumps(report["annotate"], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
