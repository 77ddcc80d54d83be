"""aether: a geometry-aware world model (4D reconstruction, prediction, planning).

Heavy submodules load on first attribute access, so ``import aether`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "geometry": "aether.geometry",
    "modalities": "aether.modalities",
    "tasks": "aether.tasks",
    "models": "aether.models",
    "pipeline": "aether.pipeline",
    "data": "aether.data",
    "annotate": "aether.annotate",
    "training": "aether.training",
    "evaluation": "aether.evaluation",
    "MODALITIES": "aether.modalities",
    "LATENT_BACKENDS": "aether.modalities",
    "TASKS": "aether.tasks",
    "TaskSampler": "aether.tasks",
    "AetherPipeline": "aether.pipeline",
    "World4D": "aether.pipeline",
    "Trajectory": "aether.pipeline",
    "AetherTransformer": "aether.models",
    "AetherDataModule": "aether.data",
    "AetherModule": "aether.training",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'aether' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if _LAZY[name].endswith(name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
