"""``aether tiny-model | view | app``: a runnable model without downloads, the interactive viewer of
saved results, and the web app. Heavy imports happen only after the arguments parse."""

from __future__ import annotations

import argparse
import sys

from aether.argtypes import torch_device

COMMANDS = ("examples", "tiny-model", "view", "app")


def _parser(command: str, prog: str) -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    if command == "examples":
        parser = argparse.ArgumentParser(
            prog=prog,
            formatter_class=formatter,
            description="Write small example inputs rendered from the synthetic world (no download): "
            "clip.mp4 (17 frames, 480x720), obs.png, goal.png, path.json and traj.txt (its cameras) "
            "and my_clips/walk/ (an RGB-D clip folder for `aether annotate`).",
        )
        parser.add_argument("out", help="folder to write them to (created; other files are left alone)")
        parser.add_argument("--overwrite", action="store_true", help="replace example files already there")
    elif command == "tiny-model":
        parser = argparse.ArgumentParser(
            prog=prog,
            formatter_class=formatter,
            description="Write a tiny random-weight model (no download) that reconstruct, predict, plan, "
            "view and app run on a CPU in seconds. Its outputs are noise: it shows the commands work.",
        )
        parser.add_argument("out", help="folder to write the model to")
        parser.add_argument("--height", type=int, default=32, help="model frame height (multiple of 16)")
        parser.add_argument("--width", type=int, default=48, help="model frame width (multiple of 16)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    elif command == "view":
        parser = argparse.ArgumentParser(
            prog=prog,
            formatter_class=formatter,
            description="Open a saved result (the folder `aether reconstruct|predict|plan --out` wrote) in "
            "the rerun viewer: per-frame point clouds, cameras with frustums, the colour and depth videos on "
            "one timeline. Needs the optional rerun SDK (pip install 'aether[rerun]').",
        )
        parser.add_argument("source", help="result folder (with world.npz) or the world.npz file")
        parser.add_argument(
            "--save",
            default=None,
            metavar="FILE.rrd",
            help="write the recording here instead of opening a viewer",
        )
        parser.add_argument("--stride", type=int, default=1, help="keep every n-th pixel of each point cloud")
        parser.add_argument("--max-points", type=int, default=50_000, help="points per frame at most")
    elif command == "app":
        parser = argparse.ArgumentParser(
            prog=prog,
            formatter_class=formatter,
            description="Start the web app (Gradio): reconstruct a video, predict from an image, plan "
            "between two images, with a 3D view of the result. Needs the optional gradio "
            "(pip install 'aether[app]').",
        )
        parser.add_argument(
            "--model",
            default=None,
            help="model folder or hub id (default: outputs/tiny/model, the model `make demo` trains)",
        )
        parser.add_argument(
            "--base",
            default=None,
            help="CogVideoX-5b-I2V folder or hub id (vae/, scheduler/, ...) for a model on the CogVideoX "
            "backend, e.g. a local base for the released layout (default: the one the model's spec names)",
        )
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)"
        )
        parser.add_argument("--port", type=int, default=7860, help="port to listen on")
        parser.add_argument(
            "--device", type=torch_device, default=None, help="torch device (default: cuda when available)"
        )
        parser.add_argument(
            "--share", action="store_true", help="also open a temporary public gradio.live link"
        )
    return parser


def main(argv: list[str], prog: str = "aether") -> int:
    """Run ``argv[0]`` (one of :data:`COMMANDS`) with the options in ``argv[1:]``."""
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    args = _parser(command, prog).parse_args(rest)
    if command == "examples":
        from aether.apps.examples import write_examples

        written, K = write_examples(args.out, overwrite=args.overwrite)
        for path in written.values():
            print(f"wrote {path}")
        fx, fy, cx, cy = (f"{v:.1f}" for v in K[[0, 1, 0, 1], [0, 1, 2, 2]])
        print(f"the images' intrinsics (for traj.txt): --intrinsics {fx} {fy} {cx} {cy}")
    elif command == "tiny-model":
        from aether.apps.model import save_tiny_model

        out = save_tiny_model(args.out, height=args.height, width=args.width, seed=args.seed)
        print(f"wrote a tiny random-weight model to {out}; try: aether reconstruct VIDEO --model {out}")
    elif command == "view":
        from aether.apps.viewer import view

        written = view(args.source, save=args.save, stride=args.stride, max_points=args.max_points)
        if written is not None:
            print(f"wrote {written}; open it with: rerun {written}")
    elif command == "app":
        from aether.apps.web import serve

        serve(
            args.model, base=args.base, host=args.host, port=args.port, device=args.device, share=args.share
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
