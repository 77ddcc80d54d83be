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
from aether.training.checkpoints import is_sharded_checkpoint, module_kwargs, read_checkpoint
from aether.training.lora import merge_lora, save_adapter
from aether.training.module import AetherModule


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
    """Load a Lightning checkpoint of an AetherModule on CPU and :func:`export_module` it.

    ``ckpt`` is a file or a sharded checkpoint folder (consolidated on CPU, whatever world size
    wrote it); LoRA adapters are merged into the exported weights.
    """
    module = load_module(ckpt)
    merge_lora(module.transformer)
    return export_module(module, out, use_ema=use_ema)


def export_adapter(ckpt: str | Path, out: str | Path) -> Path:
    """:func:`~aether.training.lora.save_adapter` of a LoRA training checkpoint (a file or a sharded
    folder), on CPU."""
    module = load_module(ckpt)
    if module.lora_config is None:
        raise ValueError(f"{ckpt} was trained without lora: export it as a model (without --adapter)")
    return save_adapter(module.transformer, out, module.lora_config)


def load_module(path: str | Path) -> AetherModule:
    """An unsharded :class:`~aether.training.AetherModule` on CPU with a checkpoint's weights.

    Works on a file or a sharded folder (consolidated here, in one process, whatever world size
    wrote it). LoRA adapters stay attached (see :func:`aether.training.lora.merge_lora`).
    """
    checkpoint = read_checkpoint(path)
    if "hyper_parameters" not in checkpoint:
        raise ValueError(f"{path} holds no hyper_parameters: not a checkpoint of an AetherModule")
    module = AetherModule(**module_kwargs(AetherModule, checkpoint["hyper_parameters"]))
    module.configure_model()
    if is_sharded_checkpoint(path):
        import torch.distributed.checkpoint as dcp

        state = {"state_dict": module.state_dict()}
        dcp.load(state, checkpoint_id=str(path))
        checkpoint["state_dict"] = state["state_dict"]
    module.load_state_dict(checkpoint["state_dict"])
    return module


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
