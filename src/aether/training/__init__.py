"""Training: the multi-task LightningModule, both stages of losses, the LightningCLI glue.

Submodules load on first attribute access so ``import aether.training`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AetherModule": "aether.training.module",
    "EMACallback": "aether.training.ema",
    "export_checkpoint": "aether.training.export",
    "losses": "aether.training.losses",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'aether.training' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if name == "losses" else getattr(module, name)
    globals()[name] = value
    return value
