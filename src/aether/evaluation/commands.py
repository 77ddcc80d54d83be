"""``aether bench video-depth|camera-pose|prediction|planning``: run a benchmark, write its report.

Examples::

    aether bench video-depth --dataset sintel --root data/sintel \
        --model AetherV1 --base CogVideoX-5b-I2V --out results            # the paper's protocol
    aether bench video-depth --dataset sintel --root data/sintel --model AetherV1 \
        --align 'scale&shift-exact' --protocol library --out results      # our options
    aether bench camera-pose --dataset tum --root data/tum --predictions preds/tum --out results
    aether bench prediction --dataset clips --root val/ \
        --baseline-model CogVideoX-5b-I2V --prompts prompts.json --out results
    aether bench planning --dataset synthetic --predictions preds/ --out results
    aether bench camera-control --dataset realestate10k --root re10k/ --model m/ --out results
    aether bench camera-control --dataset synthetic --ground-truth --out results  # a sanity check
    aether bench rollout --model m/ --out results --steps 2    # worlds longer than one window
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aether.argtypes import torch_device
from aether.cli import HelpFormatter
from aether.evaluation.datasets import DATASETS, build_dataset
from aether.evaluation.names import ALIGNMENTS, BASELINE_BENCHMARKS, BENCHMARKS, PROTOCOLS, SMOOTHING

if TYPE_CHECKING:
    from aether.evaluation.runners import BenchmarkSource


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Benchmarks with the published protocols.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("benchmark", choices=BENCHMARKS)
    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS.names())}")
    p.add_argument("--root", help="dataset directory (not needed for 'synthetic')")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="AETHER model directory or id (runs the pipeline)")
    src.add_argument("--predictions", help="directory of saved <sequence>.npz predictions")
    src.add_argument("--baseline-model", help="CogVideoX image-to-video directory (prediction baseline)")
    src.add_argument(
        "--ground-truth",
        action="store_true",
        help="camera-control: score the clips' own videos (sanity check)",
    )
    p.add_argument("--base", help="CogVideoX base model directory or id for --model")
    p.add_argument(
        "--prompts", help="per-clip prompts for --baseline-model (JSON or 'clip<TAB>prompt' lines)"
    )
    p.add_argument("--out", required=True, help="output directory for JSON, markdown and plots")
    p.add_argument(
        "--protocol",
        default="paper",
        choices=PROTOCOLS,
        help="paper: the published evaluation's model runs; library: AetherPipeline.reconstruct",
    )
    p.add_argument(
        "--align",
        default="scale",
        choices=ALIGNMENTS,
        help="video-depth alignment (scale&shift: the protocol's Adam; scale&shift-exact: exact L1 optimum)",
    )
    p.add_argument("--mask-edge", action="store_true", help="video depth: leave out ground-truth depth edges")
    p.add_argument(
        "--policy",
        choices=("upstream", "default"),
        help="sampling policy for --model (default: upstream with --protocol paper, else default)",
    )
    p.add_argument(
        "--pose-smoothing",
        choices=SMOOTHING,
        help="camera pose with --protocol paper: the reference smoothing (default) or none",
    )
    p.add_argument("--sequences", help="comma-separated subset of sequences")
    p.add_argument(
        "--task",
        help="prediction/planning with --model: run this registered task (a plug-in's) instead, scored "
        "as the benchmark scores its videos",
    )
    p.add_argument(
        "--action", action="store_true", help="condition prediction/planning on the ground-truth trajectory"
    )
    p.add_argument(
        "--vbench-cache", help="VBench weights directory (default: $VBENCH_CACHE_DIR or ~/.cache/vbench)"
    )
    p.add_argument(
        "--device",
        type=torch_device,
        default=None,
        help="torch device for models (default: cuda if available)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="processes to launch with Lightning on --device's type (sequences are split across them)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="default: the protocol's (3407 depth, 42 poses), 0 otherwise"
    )
    p.add_argument("--steps", type=int, default=None, help="denoising steps for --model (default: per task)")
    p.add_argument(
        "--ensemble", type=int, default=1, help="reconstruction samples averaged per window for --model"
    )
    p.add_argument("--num-sequences", type=int, default=4, help="synthetic: held-out clips")
    p.add_argument("--num-frames", type=int, default=17, help="synthetic: frames per clip")
    p.add_argument("--height", type=int, default=64, help="synthetic: frame height")
    p.add_argument("--width", type=int, default=96, help="synthetic: frame width")
    p.add_argument(
        "--vbench", action="store_true", help="planning: also score the planned videos with VBench"
    )
    p.add_argument(
        "--recovery",
        default="annotate",
        choices=("annotate", "model"),
        help="camera-control: recover cameras by the annotation pipeline (tracks + bundle adjustment) "
        "or by the model's reconstruction",
    )
    p.add_argument(
        "--recovery-depth",
        default="auto",
        choices=("auto", "true", "model"),
        help="camera-control, annotate: the clips' depth (true), the model's (model), or true where known",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="camera pose: stop at a sequence with non-finite ground-truth poses or a degenerate "
        "trajectory (default: skip it and list it with its reason, as CUT3R does)",
    )
    return p


def _init_distributed(devices: int, device: str | None) -> tuple[int, str]:
    """Launch ``devices`` processes with Lightning Fabric, or join a torchrun-style launch.

    The processes use the first ``devices`` devices of ``device``'s type (default: cuda when
    available, else cpu): one GPU each over NCCL, or CPU processes over gloo. Returns this
    process's rank and torch device."""
    import torch
    import torch.distributed as dist

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if devices > 1:
        from lightning.fabric import Fabric

        fabric = Fabric(accelerator=torch.device(device).type, devices=devices, strategy="ddp")
        fabric.launch()
        return fabric.global_rank, str(fabric.device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda and torch.device(device).index is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if dist.is_initialized() else 0), device


def _source(args: argparse.Namespace, device: str) -> object:
    from aether.evaluation import runners

    if args.ground_truth != (args.benchmark == "camera-control" and not args.model):
        raise ValueError(
            "expected --ground-truth only with camera-control, and camera-control with --model or "
            f"--ground-truth; received {args.benchmark} without them"
            if not args.ground_truth
            else f"expected --ground-truth only with camera-control; received {args.benchmark}"
        )
    if args.ground_truth:
        if args.recovery == "model":
            raise ValueError(
                "--recovery model: expected --model (the model recovers the cameras), received none"
            )
        return None
    if args.predictions:
        return runners.SavedPredictions(args.predictions)
    if args.baseline_model:
        if args.benchmark not in BASELINE_BENCHMARKS:
            raise ValueError(
                f"--baseline-model: expected the prediction benchmark, received {args.benchmark!r}"
            )
        if not args.prompts:
            raise ValueError("--baseline-model: expected --prompts FILE with per-clip prompts, received none")
        return runners.CogVideoXBaseline(
            args.baseline_model, args.prompts, device=device, seed=0 if args.seed is None else args.seed
        )
    return runners.PipelineSource(
        args.model,
        base=args.base,
        device=device,
        action=args.action or args.benchmark == "camera-control",
        seed=args.seed,
        num_inference_steps=args.steps,
        ensemble=args.ensemble,
        protocol=args.protocol,
        # the protocol's policy for the reconstruction benchmarks; prediction and planning keep ours
        policy=args.policy or (None if args.benchmark in ("video-depth", "camera-pose") else "default"),
        smoothing=args.pose_smoothing,
        task=args.task,
    )


def _video_depth(
    args: argparse.Namespace, dataset: Any, source: BenchmarkSource, out: Path, device: str, progress: bool
) -> dict[str, Any]:
    from aether.evaluation import runners

    return runners.run_video_depth(
        dataset, source, align=args.align, progress=progress, mask_edge=args.mask_edge,
        picture_dir=None if args.no_plots else out / "pictures",
    )  # fmt: skip


def _camera_pose(
    args: argparse.Namespace, dataset: Any, source: BenchmarkSource, out: Path, device: str, progress: bool
) -> dict[str, Any]:
    from aether.evaluation import runners

    plots = None if args.no_plots else out / "plots"
    return runners.run_camera_pose(
        dataset, source, plot_dir=plots, progress=progress, fail_fast=args.fail_fast
    )


def _camera_control(
    args: argparse.Namespace, dataset: Any, source: BenchmarkSource, out: Path, device: str, progress: bool
) -> dict[str, Any]:
    from aether.evaluation.camera_control_runner import run_camera_control

    return run_camera_control(
        dataset, source, method=args.recovery, depth=args.recovery_depth, progress=progress,
        picture_dir=None if args.no_plots else out / "pictures",
    )  # fmt: skip


def _prediction(
    args: argparse.Namespace, dataset: Any, source: BenchmarkSource, out: Path, device: str, progress: bool
) -> dict[str, Any]:
    from aether.evaluation import runners
    from aether.evaluation.vbench import VBenchModels

    models = VBenchModels(args.vbench_cache, device=device)
    return runners.run_prediction(dataset, source, models, progress=progress)


def _planning(
    args: argparse.Namespace, dataset: Any, source: BenchmarkSource, out: Path, device: str, progress: bool
) -> dict[str, Any]:
    from aether.evaluation import runners
    from aether.evaluation.pixel_metrics import load_lpips
    from aether.evaluation.vbench import VBenchModels

    lpips_model = load_lpips()
    if lpips_model is not None:
        lpips_model = lpips_model.to(device)
    models = VBenchModels(args.vbench_cache, device=device) if args.vbench else None
    return runners.run_planning(dataset, source, lpips_model, models, progress=progress)


RUNNERS = {
    "video-depth": _video_depth,
    "camera-pose": _camera_pose,
    "camera-control": _camera_control,
    "prediction": _prediction,
    "planning": _planning,
}
"""The runner of each benchmark (``BENCHMARKS``)."""


def main(argv: list[str], prog: str = "aether bench") -> int:
    """Entry point: ``argv[0]`` is ``bench``."""
    if len(argv) > 1 and argv[1] == "rollout":  # its own options: model worlds, not a dataset
        from aether.evaluation.rollout import main as rollout_main

        return rollout_main(argv[2:], prog=f"{prog} rollout")
    args = _parser(prog).parse_args(argv[1:])  # before the heavy imports: --help stays instant
    from aether.evaluation.report import markdown_table, write_report

    rank, device = _init_distributed(args.devices, args.device)
    options: dict[str, object] = {"sequences": args.sequences.split(",") if args.sequences else None}
    if args.dataset == "synthetic":
        options.update(
            num_sequences=args.num_sequences, num_frames=args.num_frames, height=args.height, width=args.width
        )
    dataset = build_dataset(args.dataset, args.root, **options)
    source = _source(args, device)
    out = Path(args.out)
    progress = rank == 0
    result = RUNNERS[args.benchmark](args, dataset, source, out, device, progress)
    if rank == 0:
        paths = write_report(result, out, plots=not args.no_plots)
        print(markdown_table(result))
        print(f"wrote {paths['json']} and {paths['markdown']}")
    return 0
