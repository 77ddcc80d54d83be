"""Training: the multi-task LightningModule, both stages of losses, the LightningCLI glue,
FSDP2 sharding, sharded checkpoints and LoRA.

Submodules load on first attribute access so ``import aether.training`` stays light.
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

_LAZY = {
    "AetherModule": "aether.training.module",
    "export_checkpoint": "aether.training.export",
    "FSDP2Strategy": "aether.training.sharding",
    "load_adapter": "aether.training.lora",
    "losses": "aether.training.losses",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes("aether.training", _LAZY)
