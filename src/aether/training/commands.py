"""``aether run|fit|validate|test|export``.

- ``aether fit|validate|test -c RECIPE [--trainer.max_steps N ...]``: LightningCLI.
- ``aether run RECIPE [--set key=value ...]``: the whole recipe (data preparation,
  fit, evaluation of every task on held-out clips, ``outputs/<run>/report.md``).
- ``aether export CKPT OUT``: an AetherV1-layout model directory the pipeline loads (CKPT: a
  checkpoint file or a sharded checkpoint folder; LoRA adapters merged), or with ``--adapter``
  the LoRA adapter folder that ``aether.training.lora.load_adapter`` puts onto a base model.
"""

from __future__ import annotations

import argparse
import warnings

LIGHTNING_COMMANDS = ("fit", "validate", "test")


def main(argv: list[str], prog: str) -> int:
    """Dispatch on ``argv[0]`` (the command name); returns the exit status."""
    if not argv:
        raise ValueError("expected a command name: run, fit, validate, test or export")
    command, rest = argv[0], list(argv[1:])
    if command in LIGHTNING_COMMANDS:
        return _lightning(command, rest)
    if command == "export":
        return _export(rest, prog)
    if command == "run":
        return _run(rest, prog)
    raise ValueError(f"unknown training command {command!r}; expected run, fit, validate, test or export")


def _lightning(command: str, rest: list[str]) -> int:
    import tempfile

    from aether.training.cli import AetherCLI, resolve_config_args

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        AetherCLI(args=[command, *resolve_config_args(rest, tmp)])
    return 0


def _export(rest: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Export a training checkpoint as an AetherV1-layout model."
    )
    parser.add_argument(
        "ckpt", help="Lightning checkpoint of an AetherModule: a .ckpt file or a sharded checkpoint folder"
    )
    parser.add_argument("out", help="output directory (transformer/, scheduler/, aether_config.json)")
    parser.add_argument(
        "--no-ema", action="store_true", help="export the raw weights even when EMA weights exist"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT whole even when it holds files an export does not write (they are deleted)",
    )
    parser.add_argument(
        "--adapter",
        action="store_true",
        help="write the LoRA adapter (and the parameters trained in full) instead of a merged model",
    )
    args = parser.parse_args(rest)
    if args.adapter:
        from aether.training.export import export_adapter

        out = export_adapter(args.ckpt, args.out)
    else:
        from aether.training.export import export_checkpoint

        out = export_checkpoint(args.ckpt, args.out, use_ema=not args.no_ema, overwrite=args.overwrite)
    print(f"exported {args.ckpt} to {out}")
    return 0


def _run(rest: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a recipe: prepare data, fit, evaluate every task, write a report."
    )
    parser.add_argument("recipe", help="recipe YAML (e.g. recipes/tiny.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set trainer.max_steps=10 (repeatable)",
    )
    parser.add_argument("--name", help="run name (default: run.name of the recipe, else the recipe's stem)")
    args = parser.parse_args(rest)
    from aether.training.runner import run_recipe

    report = run_recipe(args.recipe, overrides=args.overrides, name=args.name)
    print(f"report: {report}")
    return 0
