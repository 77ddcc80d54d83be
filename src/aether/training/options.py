"""Typed options of :class:`~aether.training.AetherModule`: its recipe sections with a fixed key set.

Each is a frozen dataclass, and ``AetherModule``'s parameters are annotated with them, so the recipe
parser (LightningCLI, through jsonargparse) builds them from the recipe's mappings and refuses a
misspelled key while it parses the recipe; ``aether run`` and ``aether fit -c`` name such a key in one
line before anything is built (:func:`aether.training.cli.check_recipe`). Python callers may pass a
plain mapping of the same keys instead: :func:`coerce_options` turns it into the dataclass (a
ValueError names an unknown key and the expected ones).

The sections whose keys are open by design stay mappings: ``stage2`` (each target codec owns its
options; :func:`aether.training.module.stage2_options` names an unknown one), ``modality_options``
(per modality plug-in), ``backend_kwargs`` (the latent backend's), ``scheduler`` (a diffusers
config), ``transformer`` (one of several specs) and ``context_probabilities`` (keyed by frame count).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aether.training.lora import DEFAULT_LORA, check_lora
from aether.training.timesteps import check_timestep_sampling

__all__ = [
    "OPTIONS",
    "LRSchedulerOptions",
    "LoraOptions",
    "OptimizerOptions",
    "Options",
    "TaskProbabilities",
    "TimestepSampling",
    "ValidationOptions",
    "canonical_hparams",
    "coerce_options",
    "plain_options",
]

T = TypeVar("T")

if TYPE_CHECKING:
    from typing import TypeAlias

    Options: TypeAlias = T | Mapping[str, Any]
else:

    class Options:
        """``Options[X]``: an X, or a mapping of X's fields (Python callers; see :func:`coerce_options`).

        At run time ``Options[X]`` is X itself, so the recipe parser, which reads the annotations,
        accepts exactly X's keys; type checkers see ``X | Mapping[str, Any]``."""

        def __class_getitem__(cls, item: Any) -> Any:
            return item


def _tuples(options: Any) -> None:
    """Store the lists given for the tuple fields of frozen ``options`` as tuples."""
    for f in dataclasses.fields(options):
        if isinstance(getattr(options, f.name), list):
            object.__setattr__(options, f.name, tuple(getattr(options, f.name)))


@dataclass(frozen=True)
class OptimizerOptions:
    """AdamW's settings."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-4
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _tuples(self)


@dataclass(frozen=True)
class LRSchedulerOptions:
    """OneCycle's settings; ``total_steps`` None: the trainer's estimate."""

    pct_start: float = 0.05
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    total_steps: int | None = None


@dataclass(frozen=True)
class TimestepSampling:
    """The training timestep distribution (:mod:`aether.training.timesteps`): ``uniform`` (the
    paper's) or ``logit_normal`` with ``mean`` (default 0) and ``std`` (default 1); ``terminal`` the
    fraction of draws put at the last timestep (default 0). None: not given. ValueError when the
    combination is not valid (e.g. a ``mean`` for ``uniform``)."""

    kind: Literal["uniform", "logit_normal"] = "uniform"
    mean: float | None = None
    std: float | None = None
    terminal: float | None = None

    def __post_init__(self) -> None:
        self.config()

    def config(self) -> dict[str, Any]:
        """The checked sampling config, as :func:`~aether.training.timesteps.sample_timesteps` takes it."""
        return check_timestep_sampling({k: v for k, v in plain_options(self).items() if v is not None})


@dataclass(frozen=True)
class ValidationOptions:
    """What validation samples: registered ``tasks``, ``num_inference_steps`` per task (None: each
    task's own), ``ensemble`` reconstruction samples averaged, ``max_batches`` batches whose images
    are logged."""

    tasks: tuple[str, ...] = ("reconstruction", "prediction", "planning")
    num_inference_steps: dict[str, int] | None = None
    ensemble: int = 1
    max_batches: int = 1

    def __post_init__(self) -> None:
        _tuples(self)


@dataclass(frozen=True)
class TaskProbabilities:
    """The colour-condition mix of ``TaskSampler`` (the paper's: 0.30, 0.40, 0.28, 0.02); a key left
    out is 0, and the four must sum to 1."""

    observation_goal: float = 0.0
    observation: float = 0.0
    video: float = 0.0
    none: float = 0.0


@dataclass(frozen=True)
class LoraOptions:
    """LoRA fine-tuning (:mod:`aether.training.lora`): adapters of ``rank`` and scale ``alpha / rank``
    on the ``targets`` modules, the ``full`` modules trained in full. ValueError for a value
    :func:`~aether.training.lora.check_lora` refuses."""

    rank: int = DEFAULT_LORA["rank"]
    alpha: float = DEFAULT_LORA["alpha"]
    dropout: float = DEFAULT_LORA["dropout"]
    targets: tuple[str, ...] = tuple(DEFAULT_LORA["targets"])
    full: tuple[str, ...] = tuple(DEFAULT_LORA["full"])

    def __post_init__(self) -> None:
        _tuples(self)
        check_lora(plain_options(self))


OPTIONS: dict[str, type] = {
    "task_probabilities": TaskProbabilities,
    "optimizer": OptimizerOptions,
    "lr_scheduler": LRSchedulerOptions,
    "timestep_sampling": TimestepSampling,
    "validation": ValidationOptions,
    "lora": LoraOptions,
}
"""``AetherModule``'s typed parameters and their dataclasses."""


def coerce_options(cls: type[T], value: T | Mapping[str, Any] | None, name: str) -> T | None:
    """``value`` as a ``cls`` (None stays None): a ``cls`` as it is, a mapping of some of its fields
    filled with the defaults. ValueError naming ``name``, the unknown keys and the expected ones."""
    if value is None or isinstance(value, cls):
        return value
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{name}: expected a mapping with keys among {known} (or a {cls.__name__}), "
            f"got {type(value).__name__}"
        )
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown}; expected keys among {known}")
    return cls(**value)


def plain_options(options: Any) -> Any:
    """A dataclass as a dict of its fields (tuples as lists: plain YAML/JSON data); None stays None."""
    if options is None:
        return None
    return {f.name: _plain(getattr(options, f.name)) for f in dataclasses.fields(options)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def canonical_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``AetherModule`` hyper-parameters with each typed option in full, as plain data: the mapping
    of some of its keys that checkpoints written before the options were typed hold compares equal
    to the same options in full. A value that does not coerce is kept as it is."""
    out = dict(hparams)
    for name, cls in OPTIONS.items():
        if name not in out:
            continue
        with contextlib.suppress(ValueError, TypeError):
            out[name] = plain_options(coerce_options(cls, out[name], name))
    return out
