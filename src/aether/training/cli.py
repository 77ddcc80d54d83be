"""LightningCLI glue: recipes are LightningCLI YAML files with one extra ``run`` section.

``run`` holds what ``aether run`` does around the fit (data preparation, evaluation,
report); ``aether fit|validate|test`` accept and ignore it, so one file serves both.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningCLI

from aether.training.module import AetherModule


class AetherCLI(LightningCLI):
    """LightningCLI over :class:`AetherModule` and any LightningDataModule (``data.class_path``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(AetherModule, LightningDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument(
            "--run", type=dict | None, default=None, help="aether run section (ignored by fit)"
        )

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        """The trainer, with :class:`StepProgressBar` unless the recipe disables or picks a bar."""
        from lightning.pytorch.callbacks import ProgressBar

        from aether.training.progress import StepProgressBar

        given = config.get("callbacks") or []
        chosen = [*(given if isinstance(given, list) else [given]), *callbacks]
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in chosen
        ):
            callbacks = [*callbacks, StepProgressBar()]
        return super()._instantiate_trainer(config, callbacks)


def load_recipe(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe YAML into a dict.

    A recipe may start from another with ``extends: other.yaml`` (relative to its own
    folder): mappings merge recursively, everything else is replaced.
    FileNotFoundError / ValueError naming the path otherwise (unparsable YAML, an ``extends`` loop).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} does not exist")
    if path.resolve() in _chain:
        loop = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise ValueError(f"recipe {path}: its `extends` chain loops ({loop})")
    try:
        recipe = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"recipe {path} is not valid YAML: {' '.join(str(err).split())}") from err
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe {path} must be a YAML mapping, got {type(recipe).__name__}")
    parent = recipe.pop("extends", None)
    if parent is not None:
        recipe = _merge(load_recipe(path.parent / parent, (*_chain, path.resolve())), recipe)
    return recipe


# the keys of a recipe's ``run`` section (``aether run``), with their nested sections
RUN_KEYS: dict[str, Any] = {
    "name": None, "output_dir": None, "threads": None, "resume": None, "checkpoint_every": None,
    "prepare": {"synth": None},
    "evaluate": dict.fromkeys(
        ("clips", "tasks", "steps", "ensemble", "action", "pictures", "seed", "guidance", "smooth",
         "ablate_camera", "camera_control", "image_memory", "following")
    ),
}  # fmt: skip
# settings that must be integers of at least the bound (None allowed where the recipe may omit them)
_INTEGERS = {
    ("run", "threads"): 1, ("run", "checkpoint_every"): 1, ("run", "evaluate", "clips"): 1,
    ("run", "evaluate", "ensemble"): 1, ("run", "evaluate", "pictures"): 0, ("trainer", "max_steps"): -1,
    ("trainer", "max_epochs"): -1, ("model", "stage2_start_step"): 0,
    ("model", "init_args", "stage2_start_step"): 0,
}  # fmt: skip


def _unknown(section: dict[str, Any], known: dict[str, Any], where: str, source: str) -> None:
    import difflib

    for key, value in section.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean {where}{close[0]}?)" if close else ""
            raise ValueError(
                f"recipe {source}: unknown key {where}{key}{hint}; "
                f"expected one of {', '.join(map(str, known))}"
            )
        if isinstance(known[key], dict) and isinstance(value, dict):
            _unknown(value, known[key], f"{where}{key}.", source)


# the top-level sections of a recipe (LightningCLI's, and ``run``)
RECIPE_SECTIONS = (
    "seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler", "ckpt_path", "run",
)  # fmt: skip


def _parameters(target: Any) -> dict[str, Any] | None:
    """The keyword parameters ``target`` (a class) takes, or None when it takes any (``**kwargs``)."""
    import inspect

    params = inspect.signature(target.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return dict.fromkeys(k for k in params if k != "self")


def _option_fields(target: Any) -> dict[str, dict[str, Any]]:
    """The field names of each ``__init__`` parameter of ``target`` (a class) typed with a dataclass
    (alone or with None; see :mod:`aether.training.options`); empty when the hints do not resolve."""
    import dataclasses
    import types
    import typing

    try:
        hints = typing.get_type_hints(target.__init__)
    except (NameError, TypeError, AttributeError):
        return {}
    out = {}
    for name, hint in hints.items():
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        classes = [t for t in (typing.get_args(hint) if union else (hint,)) if dataclasses.is_dataclass(t)]
        if len(classes) == 1:
            out[name] = dict.fromkeys(f.name for f in dataclasses.fields(classes[0]))
    return out


def _class_section(recipe: dict[str, Any], section: str, default: Any, source: str) -> None:
    """Unknown keys of a ``model`` / ``data`` section: its own keys (or its ``init_args`` under a
    ``class_path``) against the class's ``__init__`` parameters, and the keys of a parameter typed
    with a dataclass against its fields."""
    import importlib

    value = recipe.get(section)
    if value is None:
        return
    if not isinstance(value, dict):
        raise ValueError(f"recipe {source}: {section} must be a mapping, got {type(value).__name__}")
    where, args, cls = f"{section}.", value, default
    if "class_path" in value:
        _unknown(value, dict.fromkeys(("class_path", "init_args", "dict_kwargs")), where, source)
        module_name, _, name = str(value["class_path"]).rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError) as err:
            raise ValueError(
                f"recipe {source}: {section}.class_path {value['class_path']!r} names no importable "
                f"class ({err})"
            ) from err
        where, args = f"{section}.init_args.", value.get("init_args") or {}
        if not isinstance(args, dict):
            raise ValueError(f"recipe {source}: {where[:-1]} must be a mapping, got {type(args).__name__}")
    if cls is None:
        return
    known = _parameters(cls)
    if known is not None:
        _unknown(dict.fromkeys(args), known, where, source)
    for name, fields in _option_fields(cls).items():
        if isinstance(args.get(name), dict):
            _unknown(args[name], fields, f"{where}{name}.", source)


def check_recipe(recipe: dict[str, Any], source: str | Path) -> None:
    """ValueError naming the recipe ``source`` and the key for an unknown key (with the closest valid
    spelling): a top-level section, a ``run`` key, a ``model`` key (``AetherModule``'s parameters), a
    key of a typed ``model`` option (e.g. ``model.optimizer``, :mod:`aether.training.options`), a
    ``data`` key (its DataModule's parameters) or a ``trainer`` key (``lightning.Trainer``'s); a count
    that is not an integer of its minimum; or more ``trainer.devices`` with ``accelerator: cpu`` than
    this machine has cores (the processes would wait for each other forever)."""
    import os

    from lightning.pytorch import Trainer

    _unknown(dict.fromkeys(recipe), dict.fromkeys(RECIPE_SECTIONS), "", str(source))
    run = recipe.get("run") or {}
    if not isinstance(run, dict):
        raise ValueError(f"recipe {source}: run must be a mapping, got {type(run).__name__}")
    _unknown(run, RUN_KEYS, "run.", str(source))
    _class_section(recipe, "model", AetherModule, str(source))
    _class_section(recipe, "data", None, str(source))
    trainer_section = recipe.get("trainer")
    if isinstance(trainer_section, dict):
        _unknown(dict.fromkeys(trainer_section), _parameters(Trainer) or {}, "trainer.", str(source))
    for keys, low in _INTEGERS.items():
        node: Any = recipe
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            continue
        if isinstance(node, bool) or not isinstance(node, int) or node < low:
            raise ValueError(f"recipe {source}: {'.'.join(keys)} must be an integer >= {low}, got {node!r}")
    trainer = recipe.get("trainer") or {}
    devices = trainer.get("devices") if isinstance(trainer, dict) else None
    cpus = os.cpu_count() or 1
    on_cpu = isinstance(trainer, dict) and trainer.get("accelerator") == "cpu"
    if on_cpu and isinstance(devices, int) and not isinstance(devices, bool) and devices > cpus:
        raise ValueError(
            f"recipe {source}: trainer.devices={devices} CPU processes, but this machine has {cpus} CPU "
            f"core(s); expected at most {cpus} (or an accelerator)"
        )


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def resolve_config_args(args: list[str], tmpdir: str | Path) -> list[str]:
    """Replace each ``-c/--config FILE`` by a file with its ``extends`` chain merged."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in ("-c", "--config") and Path(out[i + 1]).is_file():
            merged = Path(tmpdir) / f"recipe{i}.yaml"
            recipe = load_recipe(out[i + 1])
            check_recipe(recipe, out[i + 1])
            merged.write_text(yaml.safe_dump(recipe, sort_keys=False))
            out[i + 1] = str(merged)
    return out


def apply_overrides(recipe: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``recipe`` with ``a.b.c=value`` overrides applied (values parsed as YAML).

    ``data.batch_size`` also reaches ``data.init_args.batch_size`` when the data section
    uses ``class_path``/``init_args``.
    """
    recipe = copy.deepcopy(recipe)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override must look like key.sub=value, got {item!r}")
        parts = key.split(".")
        node = recipe
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"override {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
            if "init_args" in nxt and parts[i + 1] not in ("init_args", "class_path"):
                nxt = nxt["init_args"]
            node = nxt
        node[parts[-1]] = yaml.safe_load(raw)
    return recipe


def build_cli(recipe: dict[str, Any], **kwargs: Any) -> AetherCLI:
    """Instantiate model, data and trainer from a recipe dict without running anything."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        return AetherCLI(args=recipe, run=False, **kwargs)
