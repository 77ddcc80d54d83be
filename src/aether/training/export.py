"""Export a training checkpoint as an AetherV1-layout model directory.

Layout written (the released AetherV1 holds ``transformer/`` only; the rest lets a
model trained on another latent backend or modality set load without guessing)::

    OUT/transformer/config.json, diffusion_pytorch_model.safetensors
    OUT/scheduler/scheduler_config.json
    OUT/empty_prompt_embedding.safetensors      the text embedding used in training
    OUT/aether_config.json                      latent backend, modalities, training recipe
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from aether.models import EMPTY_PROMPT_FILE

EXPORT_CONFIG_FILE = "aether_config.json"


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
    save_file({"embedding": embedding}, str(out / EMPTY_PROMPT_FILE))
    hp = dict(module.hparams)
    config = {
        "latent_backend": hp.get("latent_backend"),
        "backend_kwargs": hp.get("backend_kwargs") or {},
        "target_modalities": list(module.target_modalities),
        "condition_modalities": list(module.condition_modalities),
        "prediction_type": module.prediction_type,
        "training": _jsonable(hp),
    }
    (out / EXPORT_CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def export_checkpoint(ckpt: str | Path, out: str | Path, *, use_ema: bool = True) -> Path:
    """Load a Lightning checkpoint of an AetherModule on CPU and :func:`export_module` it.

    ``ckpt`` is a file or a sharded checkpoint folder (consolidated on CPU, whatever world size
    wrote it); LoRA adapters are merged into the exported weights.
    """
    from aether.training.checkpoints import load_module
    from aether.training.lora import merge_lora

    module = load_module(ckpt)
    merge_lora(module.transformer)
    return export_module(module, out, use_ema=use_ema)


def load_pipeline(model_dir: str | Path, **kwargs: Any) -> Any:
    """An :class:`~aether.pipeline.AetherPipeline` for an exported directory.

    Models on the CogVideoX backend load through ``AetherPipeline.from_pretrained`` (the base
    comes from ``backend_kwargs.path_or_id`` unless ``base=`` is given); models on other
    backends (e.g. ``tiny``) are rebuilt from ``aether_config.json``.
    """
    from safetensors.torch import load_file

    from aether.modalities import LATENT_BACKENDS
    from aether.models import AetherTransformer
    from aether.pipeline import AetherPipeline
    from aether.training.module import build_scheduler

    model_dir = Path(model_dir)
    config_path = model_dir / EXPORT_CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist: not a directory written by `aether export`")
    config = json.loads(config_path.read_text())
    backend_kwargs = dict(config.get("backend_kwargs") or {})
    if config["latent_backend"] == "cogvideox":
        kwargs.setdefault("base", backend_kwargs.get("path_or_id"))
        return AetherPipeline.from_pretrained(model_dir, **kwargs)
    transformer = AetherTransformer.from_pretrained(model_dir, subfolder="transformer")
    backend = LATENT_BACKENDS.build(config["latent_backend"], **backend_kwargs)
    scheduler_config = json.loads((model_dir / "scheduler" / "scheduler_config.json").read_text())
    scheduler = build_scheduler(scheduler_config)
    embedding = load_file(str(model_dir / EMPTY_PROMPT_FILE))["embedding"]
    return AetherPipeline(transformer, backend, scheduler, embedding, **kwargs)


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
