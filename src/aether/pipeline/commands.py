"""``aether reconstruct | predict | plan``: inference from the command line.

Inputs are read (and validated) before the model is loaded, so bad files fail fast with a one-line
error. Results are written by :meth:`aether.pipeline.World4D.save`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from aether.argtypes import positive_float, torch_device
from aether.pipeline.presets import PRESETS

DEFAULT_MODEL = "AetherWorldModel/AetherV1"
DTYPES = ("float32", "bfloat16", "float16")


def _parser(command: str, prog: str) -> argparse.ArgumentParser:
    descriptions = {
        "reconstruct": "4D reconstruction of a video: depth, cameras and point clouds.",
        "predict": "Predict a video (with depth and cameras) from one image, optionally along a trajectory.",
        "plan": "Plan the video from an observation image to a goal image, optionally along a trajectory.",
    }
    parser = argparse.ArgumentParser(
        prog=prog, description=descriptions[command], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    if command == "reconstruct":
        parser.add_argument("video", help="video file (any container pyav reads) or a folder of frames")
        parser.add_argument("--frames", type=int, default=None, help="read at most this many frames")
        parser.add_argument("--window", type=int, default=41, help="temporal window (frames)")
        parser.add_argument("--stride", type=int, default=24, help="temporal window stride (frames)")
        parser.add_argument(
            "--ensemble", type=int, default=1, help="samples averaged per window (test-time ensemble)"
        )
    else:
        parser.add_argument("image", help="observation image (any PIL format)")
        if command == "plan":
            parser.add_argument("goal", help="goal image")
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--trajectory", default=None,
            help="camera trajectory: .json, raymap .npy, TUM or 4x4 .txt (formats: docs/inference.md)",
        )  # fmt: skip
        action.add_argument(
            "--preset", default=None, choices=PRESETS, metavar="NAME",
            help=f"a preset camera motion, as in the app: {', '.join(repr(p) for p in PRESETS)}",
        )  # fmt: skip
        parser.add_argument(
            "--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None,
            help="pixel intrinsics of a TUM trajectory (for the input image's size)",
        )  # fmt: skip
        parser.add_argument("--frames", type=int, default=None, help="frames to generate (17, 25, 33, 41)")
        long = parser.add_argument_group("trajectories longer than one window (a rollout of chained windows)")
        long.add_argument(
            "--context-frames", type=int, default=1,
            help="latent frames each later window continues from (4(k-1)+1 frames)",
        )  # fmt: skip
        long.add_argument("--no-memory", action="store_true", help="no geometric memory of the frames so far")
        long.add_argument(
            "--memory-frames", type=int, default=None,
            help="render only the memory of the N frames seen from the cameras nearest each window "
            "(default: every frame; a window then takes the same time however long the path)",
        )  # fmt: skip
        parser.add_argument("--no-dynamic-cfg", action="store_true", help="constant guidance weight")
        parser.add_argument(
            "--post-reconstruct", action="store_true", help="re-run reconstruction on the generated video"
        )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="Aether model folder (e.g. written by `aether export`; its aether_config.json says how to "
        "build it) or hub id",
    )
    parser.add_argument(
        "--base",
        default=None,
        help="CogVideoX-5b-I2V folder or hub id (vae/, scheduler/, ...) for models on the CogVideoX "
        "backend (default: the one the model's spec names); refused for other backends",
    )
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (task default if omitted)")
    parser.add_argument(
        "--guidance", type=float, default=None, help="guidance scale (task default if omitted)"
    )
    parser.add_argument(
        "--fps", type=positive_float, default=None, help="frame rate given to the model (8/10/12/15/24)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--device", type=torch_device, default=None, help="torch device (default: cuda when available)"
    )
    parser.add_argument(
        "--dtype", choices=DTYPES, default=None, help="default: bfloat16 on GPU, else float32"
    )
    parser.add_argument("--mode", choices=("default", "upstream"), default="default", help="pipeline mode")
    parser.add_argument(
        "--smooth", choices=("none", "kalman", "gaussian"), default="none", help="smooth the camera path"
    )
    speed = parser.add_argument_group("speed and memory (effects on results: aether.pipeline.acceleration)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the transformer")
    speed.add_argument(
        "--cache", choices=("fastercache", "pab"), default=None,
        help="feature cache across denoising steps (an approximation: results change)",
    )  # fmt: skip
    speed.add_argument(
        "--offload", choices=("model", "sequential"), default=None,
        help="keep weights on the CPU: per model or per layer (on --device while they run)",
    )  # fmt: skip
    speed.add_argument("--vae-tiling", action="store_true", help="VAE in overlapping tiles (default on GPU)")
    speed.add_argument("--vae-slicing", action="store_true", help="VAE one batch element at a time")
    speed.add_argument(
        "--quantize", choices=("int8wo", "int8dq", "float8wo", "float8dq"), default=None,
        help="torchao weight quantization of the transformer (needs torchao; results change)",
    )  # fmt: skip
    parser.add_argument(
        "--output-size", choices=("model", "input"), default="model",
        help="results at the model's resolution or at the input's (depth upsampled, K scaled to match)",
    )  # fmt: skip
    parser.add_argument("--out", default="aether_out", help="output folder (new or empty)")
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty --out, replacing its files"
    )
    parser.add_argument(
        "--formats",
        default="mp4,npz,ply,glb,json,tum,png",
        help="comma-separated outputs (add rrd for rerun)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")
    return parser


def _apply_speed_options(pipe, args: argparse.Namespace, device: str) -> None:
    """Place the pipeline on ``device`` with the speed and memory options of the command line."""
    if args.quantize:
        pipe.enable_quantization(args.quantize)
    if args.offload == "model":
        pipe.enable_model_cpu_offload(device)
    elif args.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device)
    else:
        pipe.to(device)
    pipe.progress = not args.quiet
    for flag in ("vae_tiling", "vae_slicing"):
        if getattr(args, flag) and not hasattr(pipe.backend, flag.replace("vae", "enable")):
            name = "--" + flag.replace("_", "-")
            raise ValueError(
                f"{name}: this model's latent backend ({type(pipe.backend).__name__}) has no {name[6:]}"
            )
    if args.vae_tiling or (str(device).startswith("cuda") and hasattr(pipe.backend, "enable_tiling")):
        pipe.enable_vae_tiling()
    if args.vae_slicing:
        pipe.enable_vae_slicing()
    if args.cache:
        pipe.enable_cache(args.cache)
    if args.compile:
        pipe.enable_compile()


def _parse_args(argv: list[str], prog: str) -> tuple[str, argparse.Namespace]:
    """The command (reconstruct, predict or plan) and its parsed options; ValueError for another
    command, an ``--out`` that is a file, or a non-empty ``--out`` without ``--overwrite``."""
    command, rest = argv[0], argv[1:]
    if command not in ("reconstruct", "predict", "plan"):
        raise ValueError(f"unknown command {command!r}; expected reconstruct, predict or plan")
    args = _parser(command, prog).parse_args(rest)  # before the heavy imports: --help stays instant
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out: expected a folder, {args.out} is a file")
    if not args.overwrite and os.path.isdir(args.out) and os.listdir(args.out):
        raise ValueError(
            f"--out: {args.out} is not empty (an earlier result?); choose another or add --overwrite"
        )
    return command, args


def _check_model_ids(args: argparse.Namespace) -> None:
    """Fail now, not after the imports, when ``--model`` (or ``--base``) is a missing folder or a hub
    id that cannot be had."""
    from aether.hub import check_model_id

    check_model_id(args.model)
    if args.base is not None:
        check_model_id(args.base, "vae/config.json", "--base")


def _read_video_input(args: argparse.Namespace) -> tuple[dict[str, Any], float | None]:
    """``{"video": frames}`` from ``args.video`` (at most ``--frames``) and the file's frame rate (None
    when it has none); ValueError under 17 frames."""
    from aether.pipeline.io import read_video

    frames, file_fps = read_video(args.video, max_frames=args.frames)
    if len(frames) < 17:
        raise ValueError(f"{args.video}: {len(frames)} frames, need at least 17")
    return {"video": frames}, file_fps


def _read_image_inputs(command: str, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """``{"image"}`` (and ``"goal"`` for plan: (H,W,3) images of one size) and the ``--trajectory``
    read at the image's size (None without one); ValueError for goal and observation of different
    sizes, or a trajectory whose pose count is not ``--frames``."""
    from aether.pipeline.io import read_image
    from aether.pipeline.pipeline import load_trajectory

    inputs: dict[str, Any] = {"image": read_image(args.image)}
    if command == "plan":
        inputs["goal"] = read_image(args.goal)
        if inputs["goal"].shape != inputs["image"].shape:
            sizes = f"{inputs['image'].shape[:2]} vs {inputs['goal'].shape[:2]}"
            raise ValueError(f"observation and goal differ in size: {sizes}")
    trajectory = None
    if args.trajectory:
        height, width = inputs["image"].shape[:2]
        trajectory = load_trajectory(args.trajectory, height=height, width=width, K=args.intrinsics)
        if args.frames is not None and len(trajectory) != args.frames:
            raise ValueError(f"the trajectory has {len(trajectory)} poses but --frames is {args.frames}")
    return inputs, trajectory


def _device_and_dtype(args: argparse.Namespace) -> tuple[str, Any]:
    """``--device`` (default: cuda when available) and the torch dtype of ``--dtype`` (default:
    bfloat16 on GPU, else float32)."""
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype_name = args.dtype or ("bfloat16" if str(device).startswith("cuda") else "float32")
    return device, getattr(torch, dtype_name)


def _check_quantization(args: argparse.Namespace) -> None:
    """ValueError, before any weights load, when ``--quantize`` needs torchao and it is missing."""
    if args.quantize:
        from aether.pipeline.acceleration import require_torchao

        try:
            require_torchao(args.quantize)
        except ImportError as err:  # a missing optional package is the user's to install: no traceback
            raise ValueError(str(err)) from None


def _load_pipeline(command: str, args: argparse.Namespace, trajectory: Any, file_fps: float | None) -> Any:
    """The ``AetherPipeline`` of ``--model`` on its device with the speed options. ValueError when a
    trajectory (without ``--frames``) has a pose count the model does not generate in one window and
    is not longer than its longest one. Without ``--fps``,
    a video's frame rate sets ``args.fps`` to the nearest one the model was trained at."""
    from aether.pipeline import AetherPipeline

    device, dtype = _device_and_dtype(args)
    _check_quantization(args)
    pipe = AetherPipeline.from_pretrained(args.model, base=args.base, torch_dtype=dtype, mode=args.mode)
    frames = pipe.spec.frames
    given = trajectory if command != "reconstruct" and args.frames is None else None
    # a path longer than the longest window is rolled out (chained windows); a shorter one is one window
    if given is not None and frames is not None and len(given) not in frames and len(given) < max(frames):
        raise ValueError(
            f"{args.trajectory}: {len(given)} poses, but the model generates "
            f"{', '.join(map(str, frames))} frames: expected one pose per frame, or more than "
            f"{max(frames)} for a rollout of chained windows"
        )
    if args.fps is None and file_fps:
        args.fps = pipe.spec.nearest_fps(file_fps)
        logging.getLogger(__name__).info("video at %.3g fps: using the trained fps %g", file_fps, args.fps)
    _apply_speed_options(pipe, args, device)
    return pipe


def _generate(
    command: str, args: argparse.Namespace, pipe: Any, inputs: dict[str, Any], trajectory: Any, common: dict
) -> Any:
    """The ``World4D`` that predict or plan generates from ``inputs`` (along ``trajectory``, a preset or
    neither); a trajectory longer than one window (without ``--frames``) is a rollout of chained
    windows."""
    extra = {
        "num_frames": args.frames,
        "dynamic_cfg": False if args.no_dynamic_cfg else None,
        "post_reconstruct": args.post_reconstruct,
    }
    if args.preset not in (None, "none"):
        extra["preset"] = args.preset
    from aether.pipeline.rollout import rollout_window

    if trajectory is not None and args.frames is None and len(trajectory) > rollout_window(pipe):
        goal = inputs.get("goal")
        rollout = {
            "context_frames": args.context_frames, "memory": not args.no_memory, "goal": goal,
            "memory_frames": args.memory_frames,
        }  # fmt: skip
        return pipe.rollout(inputs["image"], trajectory, dynamic_cfg=extra["dynamic_cfg"], **rollout, **{
            k: v for k, v in common.items() if k != "output_size"
        })  # fmt: skip
    if command == "predict":
        return pipe.predict(inputs["image"], trajectory, **common, **extra)
    return pipe.plan(inputs["image"], inputs["goal"], trajectory, **common, **extra)


def _run(command: str, args: argparse.Namespace, pipe: Any, inputs: dict[str, Any], trajectory: Any) -> Any:
    """The ``World4D`` of the command (its cameras smoothed with ``--smooth`` unless none)."""
    common = {
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "fps": args.fps,
        "seed": args.seed,
        "output_size": args.output_size,
    }
    if command == "reconstruct":
        world = pipe.reconstruct(
            inputs["video"], window=args.window, stride=args.stride, ensemble_size=args.ensemble, **common
        )
    else:
        world = _generate(command, args, pipe, inputs, trajectory, common)
    if args.smooth != "none":
        world = world.smooth(args.smooth)
    return world


def _write_results(world: Any, args: argparse.Namespace, formats: tuple[str, ...]) -> None:
    """Save ``world`` under ``--out`` in ``formats`` and print one line per file written."""
    written = world.save(args.out, formats=formats, overwrite=args.overwrite)
    for kind, path in written.items():
        print(f"{kind:>4}: {path}")


def main(argv: list[str], prog: str = "aether") -> int:
    """Run ``argv[0]`` (reconstruct, predict or plan) with the options in ``argv[1:]``."""
    command, args = _parse_args(argv, prog)
    _check_model_ids(args)  # a hub id that cannot be had fails now, not after the imports
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    formats = tuple(f for f in args.formats.split(",") if f)
    # read and validate inputs before loading any weights
    trajectory, file_fps = None, None
    if command == "reconstruct":
        inputs, file_fps = _read_video_input(args)
    else:
        inputs, trajectory = _read_image_inputs(command, args)
    pipe = _load_pipeline(command, args, trajectory, file_fps)
    world = _run(command, args, pipe, inputs, trajectory)
    _write_results(world, args, formats)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
