"""aether: a geometry-aware world model (4D reconstruction, prediction, planning).

Heavy submodules load on first attribute access, so ``import aether`` is cheap.
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

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
    "AetherModelSpec": "aether.models",
    "AetherDataModule": "aether.data",
    "AetherModule": "aether.training",
}

__all__ = ["__version__", *_LAZY]

__getattr__, __dir__ = lazy_attributes("aether", _LAZY)
