"""The ``aether`` command. Subcommands only dispatch: each lives in the package
that owns it and is imported on use, so ``aether --help`` stays instant.

A subcommand module exposes ``main(argv: list[str], prog: str) -> int``.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("aether.training.commands", "run a whole recipe: data, fit, evaluation, report"),
    "fit": ("aether.training.commands", "train with a LightningCLI recipe (-c RECIPE)"),
    "validate": ("aether.training.commands", "validate a checkpoint with a recipe"),
    "test": ("aether.training.commands", "test a checkpoint with a recipe"),
    "export": ("aether.training.commands", "export a training checkpoint as an AetherV1-layout model"),
    "reconstruct": ("aether.pipeline.commands", "4D reconstruction of a video: depth, cameras, points"),
    "predict": ("aether.pipeline.commands", "predict a future video from an image (and a trajectory)"),
    "plan": ("aether.pipeline.commands", "plan the video from an observation to a goal image"),
    "synth": ("aether.data.commands", "render synthetic RGB-D clips into WebDataset shards"),
    "annotate": ("aether.annotate.commands", "annotate RGB-D clips with cameras into shards"),
    "bench": ("aether.evaluation.commands", "benchmarks: video-depth, camera-pose, prediction, planning"),
    "tiny-model": ("aether.apps.commands", "write a tiny random-weight model (no download)"),
    "view": ("aether.apps.commands", "open a saved result in the rerun viewer (or write an .rrd)"),
    "app": ("aether.apps.commands", "start the web app: reconstruct, predict and plan in a browser"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: aether COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `aether COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aether`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from aether import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"aether: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main([name, *rest], prog=f"aether {name}") or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        print(f"aether {name}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
