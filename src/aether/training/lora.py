"""LoRA fine-tuning of the Aether transformer with ``peft``, as diffusers trains CogVideoX LoRAs.

The recipe key ``model.lora`` turns it on::

    lora:
      rank: 64                      # LoRA rank r (> 0)
      alpha: 64                     # scale alpha / r
      dropout: 0.0
      targets: [to_q, to_k, to_v, to_out.0, ff.net.0.proj, ff.net.2]   # attention and feed-forward
      full: [patch_embed.proj, proj_out]     # the widened input/output projections, trained in full

Only the adapters and the ``full`` modules receive gradients. A trained model is exported merged
(:func:`merge_lora`: ``W + alpha/r · B A`` folded into each base weight, a plain Aether model) or
as an adapter folder (:func:`save_adapter`) that :func:`load_adapter` puts onto a loaded base
Aether transformer (``pipe.transformer``)::

    ADAPTER/pytorch_lora_weights.safetensors   diffusers' LoRA layout, the LoraConfig in its metadata
    ADAPTER/full_weights.safetensors           the parameters trained in full
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

DEFAULT_LORA = {
    "rank": 64,
    "alpha": 64.0,
    "dropout": 0.0,
    "targets": ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2"],
    "full": ["patch_embed.proj", "proj_out"],
}
LORA_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"  # diffusers' name
FULL_WEIGHTS_FILE = "full_weights.safetensors"


def check_lora(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The LoRA settings with defaults filled in (None: full fine-tuning); ValueError naming the
    offending value otherwise."""
    if config is None:
        return None
    unknown = set(config) - set(DEFAULT_LORA)
    if unknown:
        raise ValueError(f"unknown lora keys {sorted(unknown)}; expected some of {sorted(DEFAULT_LORA)}")
    out = {**DEFAULT_LORA, **config}
    rank = out["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise ValueError(f"lora.rank must be a positive integer, got {rank!r}")
    if not float(out["alpha"]) > 0:
        raise ValueError(f"lora.alpha must be positive, got {out['alpha']!r}")
    if not 0 <= float(out["dropout"]) < 1:
        raise ValueError(f"lora.dropout must be in [0, 1), got {out['dropout']!r}")
    for key in ("targets", "full"):
        if isinstance(out[key], str) or not all(isinstance(t, str) and t for t in out[key]):
            raise ValueError(f"lora.{key} must be a list of module names, got {out[key]!r}")
    if not out["targets"]:
        raise ValueError("lora.targets must name at least one module")
    both = set(out["targets"]) & set(out["full"])
    if both:
        raise ValueError(f"lora.targets and lora.full overlap: {sorted(both)}")
    return {**out, "alpha": float(out["alpha"]), "dropout": float(out["dropout"])}


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def has_lora(transformer: torch.nn.Module) -> bool:
    """True when LoRA adapters are attached."""
    return bool(getattr(transformer, "peft_config", None))


def add_lora(transformer: torch.nn.Module, config: dict[str, Any]) -> None:
    """Attach LoRA adapters to ``config['targets']`` and freeze all but them and ``config['full']``.

    ValueError naming a target or full module that matches no module of ``transformer``.
    """
    from peft import LoraConfig

    names = [n for n, _ in transformer.named_modules()]
    for key in ("targets", "full"):
        for target in config[key]:
            if not any(_matches(n, target) for n in names):
                raise ValueError(
                    f"lora.{key} entry {target!r} matches no module of {type(transformer).__name__}"
                )
    lora_config = LoraConfig(
        r=config["rank"],
        lora_alpha=config["alpha"],
        lora_dropout=config["dropout"],
        target_modules=list(config["targets"]),
        init_lora_weights=True,  # B = 0: training starts from the base model
    )
    transformer.add_adapter(lora_config)
    for name, param in transformer.named_parameters():
        param.requires_grad_(is_trained(name, config))


def is_trained(name: str, config: dict[str, Any]) -> bool:
    """Whether parameter ``name`` of a LoRA transformer is trained: an adapter or a ``full`` module's."""
    module = name.rpartition(".")[0]
    return ".lora_" in name or any(_matches(module, f) for f in config["full"])


def merge_lora(transformer: torch.nn.Module) -> torch.nn.Module:
    """Fold the adapters into the base weights and remove them (in place): a plain transformer."""
    if has_lora(transformer):
        transformer.fuse_lora()
        transformer.unload_lora()
    return transformer


def save_adapter(transformer: torch.nn.Module, out: str | Path, config: dict[str, Any]) -> Path:
    """Write the adapters and the ``full`` parameters of a LoRA transformer to the folder ``out``."""
    from safetensors.torch import save_file

    if not has_lora(transformer):
        raise ValueError("the transformer has no LoRA adapters to save")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    transformer.save_lora_adapter(out, weight_name=LORA_WEIGHTS_FILE)
    full = {
        n: p.detach().cpu().contiguous()
        for n, p in transformer.named_parameters()
        if is_trained(n, config) and ".lora_" not in n
    }
    save_file(full, str(out / FULL_WEIGHTS_FILE), metadata={"full": json.dumps(config["full"])})
    return out


def load_adapter(
    transformer: torch.nn.Module, adapter: str | Path, *, merge: bool = False
) -> torch.nn.Module:
    """Put an adapter folder written by :func:`save_adapter` onto a base Aether transformer.

    Args:
        transformer: e.g. ``pipe.transformer`` of a loaded base model.
        adapter: the adapter folder.
        merge: fold the adapters into the weights (faster sampling, no way back).

    Returns the same transformer. FileNotFoundError / ValueError naming the folder or the
    parameters that do not fit.
    """
    from safetensors.torch import load_file

    adapter = Path(adapter)
    for name in (LORA_WEIGHTS_FILE, FULL_WEIGHTS_FILE):
        if not (adapter / name).is_file():
            raise FileNotFoundError(
                f"{adapter / name} does not exist: not an adapter written by save_adapter"
            )
    params = dict(transformer.named_parameters())
    full = load_file(str(adapter / FULL_WEIGHTS_FILE))
    wrong = {k: tuple(v.shape) for k, v in full.items() if k not in params or params[k].shape != v.shape}
    if wrong:
        raise ValueError(
            f"{adapter} does not fit this transformer: parameters {wrong} are absent or shaped otherwise"
        )
    transformer.load_lora_adapter(str(adapter), prefix=None, weight_name=LORA_WEIGHTS_FILE)
    with torch.no_grad():
        for name, value in full.items():
            params[name].copy_(value)
    return merge_lora(transformer) if merge else transformer
