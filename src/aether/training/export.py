"""Export a training checkpoint as a model folder that every loader reads.

Layout written (the released AetherV1 holds ``transformer/`` only; the rest makes a model trained
on another latent backend or modality set load without guessing)::

    OUT/transformer/config.json, diffusion_pytorch_model.safetensors
    OUT/scheduler/scheduler_config.json
    OUT/empty_prompt_embedding.safetensors      the text embedding used in training
    OUT/aether_config.json                      the model spec (AetherModelSpec) + the training recipe
                                                + the size and SHA-256 of every file (verified on load)

``AetherPipeline.from_pretrained(OUT)`` (and ``aether reconstruct|predict|plan --model OUT``,
``aether bench --model OUT``) builds the backend, modality stacks and scheduler from the spec.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from aether.models import EMPTY_PROMPT_FILE
from aether.models.spec import SPEC_FILE
from aether.training.checkpoints import check_weights, is_sharded_checkpoint, module_kwargs, read_checkpoint
from aether.training.lora import merge_lora, save_adapter
from aether.training.module import AetherModule

EXPORTED = ("transformer", "scheduler", EMPTY_PROMPT_FILE, SPEC_FILE)
"""What :func:`export_module` writes: a folder holding only these is replaced by a new export."""


def export_module(module: Any, out: str | Path, *, use_ema: bool = True, overwrite: bool = False) -> Path:
    """Write ``module`` (an :class:`~aether.training.AetherModule`) to ``out``; returns ``out``.

    The model is written into a new folder beside ``out`` with the SHA-256 of every file recorded in
    ``aether_config.json`` (verified on load), then swapped in: a previous export at ``out`` is
    replaced whole, never mixed with the new files.

    Args:
        module: the trained module.
        out: destination directory: absent, empty or a previous export (else see ``overwrite``).
        use_ema: export the EMA weights when the module keeps them.
        overwrite: replace ``out`` even when it holds other files (they are deleted).
    """
    out = Path(out)
    _check_destination(out, overwrite)
    model = module.inference_transformer() if use_ema else module.transformer
    check_weights(model.state_dict(), "the exported transformer")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        model.save_pretrained(tmp / "transformer")
        module.noise_scheduler.save_pretrained(tmp / "scheduler")
        embedding = module.prompt_embedding.detach().float().cpu().contiguous()
        save_file({"embedding": embedding}, str(tmp / EMPTY_PROMPT_FILE), metadata={"method": "training"})
        module.spec.save(tmp, extra={"training": _jsonable(dict(module.hparams))}, checksums=True)
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_destination(out: Path, overwrite: bool) -> None:
    """ValueError unless ``out`` is absent, an empty folder, a previous export, or ``overwrite``."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; expected a folder to export the model into")
    others = sorted(p.name for p in out.iterdir() if p.name not in EXPORTED)
    if others and not overwrite:
        raise ValueError(
            f"{out}: not empty and not a previous export (it holds {others[:5]}"
            f"{' …' if len(others) > 5 else ''}); choose another folder, or pass --overwrite to replace it "
            "whole (its files are deleted)"
        )


def _swap_in(new: Path, out: Path) -> None:
    """Replace ``out`` by the folder ``new`` (two renames; the old folder is deleted after)."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    try:
        new.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_checkpoint(
    ckpt: str | Path, out: str | Path, *, use_ema: bool = True, overwrite: bool = False
) -> Path:
    """Load a Lightning checkpoint of an AetherModule on CPU and :func:`export_module` it.

    ``ckpt`` is a file or a sharded checkpoint folder (consolidated on CPU, whatever world size
    wrote it); LoRA adapters are merged into the exported weights.
    """
    _check_destination(Path(out), overwrite)  # before the (long) load
    module = load_module(ckpt)
    merge_lora(module.transformer)
    return export_module(module, out, use_ema=use_ema, overwrite=overwrite)


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
    check_weights(checkpoint["state_dict"], str(path))
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:  # missing / unexpected keys, shape mismatches
        text = " ".join(str(err).split())
        raise ValueError(
            f"{path}: its weights do not fit the AetherModule its hyper-parameters describe ({text[:300]})"
        ) from err
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
