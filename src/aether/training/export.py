"""Export a training checkpoint as a model folder that every loader reads.

Layout written (the released AetherV1 holds ``transformer/`` only; the rest makes a model trained
on another latent backend or modality set load without guessing)::

    OUT/transformer/config.json, diffusion_pytorch_model.safetensors
    OUT/scheduler/scheduler_config.json
    OUT/empty_prompt_embedding.safetensors      the text embedding used in training
    OUT/aether_config.json                      the model spec (AetherModelSpec) + the training recipe

``AetherPipeline.from_pretrained(OUT)`` (and ``aether reconstruct|predict|plan --model OUT``,
``aether bench --model OUT``) builds the backend, modality stacks and scheduler from the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from aether.models import EMPTY_PROMPT_FILE


def export_module(module: Any, out: str | Path, *, use_ema: bool = True) -> Path:
    """Write ``module`` (an :class:`~aether.training.AetherModule`) to ``out``; returns ``out``.

    Args:
        module: the trained module.
        out: destination directory (created; existing files are overwritten).
        use_ema: export the EMA weights when the module keeps them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = module.inference_transformer() if use_ema else module.transformer
    model.save_pretrained(out / "transformer")
    module.noise_scheduler.save_pretrained(out / "scheduler")
    embedding = module.prompt_embedding.detach().float().cpu().contiguous()
    tmp = out / (EMPTY_PROMPT_FILE + ".tmp")
    save_file({"embedding": embedding}, str(tmp), metadata={"method": "training"})
    tmp.replace(out / EMPTY_PROMPT_FILE)
    module.spec.save(out, extra={"training": _jsonable(dict(module.hparams))})
    return out


def export_checkpoint(ckpt: str | Path, out: str | Path, *, use_ema: bool = True) -> Path:
    """Load a Lightning checkpoint of an AetherModule on CPU and :func:`export_module` it."""
    from aether.training.module import AetherModule

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
    module = AetherModule.load_from_checkpoint(str(ckpt), map_location="cpu", weights_only=False)
    return export_module(module, out, use_ema=use_ema)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)
