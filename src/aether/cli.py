"""The ``aether`` command. Subcommands only dispatch: each lives in the package
that owns it and is imported on use, so ``aether --help`` stays instant.

A subcommand module exposes ``main(argv: list[str], prog: str) -> int``.

User errors never print a traceback: :class:`UserError` (and the ``ValueError``,
``FileNotFoundError``, ... that input validation raises) become one line
``aether COMMAND: error: ...`` and exit status 2; ``--debug`` (anywhere on the command line)
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tarfile
import zipfile

__all__ = ["COMMANDS", "USER_ERRORS", "HelpFormatter", "UserError", "main"]

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
    "data": ("aether.data.verify", "data tools: `aether data verify OUT` checks a synth/annotate output"),
    "bench": (
        "aether.evaluation.commands",
        "benchmarks: video-depth, camera-pose, prediction, planning, camera-control, rollout",
    ),
    "examples": (
        "aether.apps.commands",
        "write small example inputs (clip, images, trajectories, an RGB-D clip)",
    ),
    "tiny-model": ("aether.apps.commands", "write a tiny random-weight model (no download)"),
    "view": ("aether.apps.commands", "open a saved result in the rerun viewer (or write an .rrd)"),
    "app": ("aether.apps.commands", "start the web app: reconstruct, predict and plan in a browser"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, unless it is None or False or the help text already
    says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


class UserError(ValueError):
    """A mistake in what the user gave (a path, a file, an option): the message says what was
    expected, what came, and where. The CLI prints it as one line, without a traceback."""


# raised by our input validation; everything else is a bug and keeps its traceback
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    ValueError,
    OSError,  # missing, unreadable or truncated files; FileNotFoundError, PermissionError, ...
    EOFError,
    MemoryError,
    zipfile.BadZipFile,
    tarfile.TarError,
)


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: aether COMMAND [ARGS...] [--debug]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `aether COMMAND --help` for a command's options; --debug shows tracebacks."]
    return "\n".join(lines)


def _one_line(err: BaseException) -> str:
    """The error as one line: its message (the first line for multi-line ones), else its type."""
    text = str(err)
    if isinstance(err, MemoryError):
        text = f"out of memory{': ' + text if text else ''} (is a size option too large?)"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} (+{len(lines) - 1} more lines; --debug shows all)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aether`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
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
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"aether {name}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"aether {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
