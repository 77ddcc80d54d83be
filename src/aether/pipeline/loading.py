"""Loading an Aether model folder (or hub id) into pipeline components, composed from its spec.

A model folder holds ``transformer/`` (config + weights) and, when written by ``aether export``,
``aether_config.json`` (the :class:`~aether.models.spec.AetherModelSpec`), ``scheduler/`` and the
empty-prompt embedding. A folder without a spec is the released AetherV1: CogVideoX VAE,
scheduler and text encoder from the base model (THUDM/CogVideoX-5b-I2V unless ``base`` is given).

Folders are validated before any weight is read: a missing subfolder, truncated or unreadable
weights, a spec naming unknown registry entries, channel counts that disagree with the
transformer's config, a ``base`` the spec contradicts, or a file (the spec included) whose SHA-256
differs from what ``aether export`` recorded are each refused with a message naming the file, what
was expected and what was found.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aether.hub import (
    cache_dir,
    cached_model_spec,
    check_hub_source,
    hub_missing_message,
    hub_unreachable,
    require_local,
)
from aether.models.spec import (
    AETHERV1_BASE,
    AETHERV1_SPEC,
    SPEC_FILE,
    AetherModelSpec,
    build_scheduler,
    verify_checksums,
)

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class ModelComponents:
    """What a pipeline is built from."""

    spec: AetherModelSpec
    transformer: Any
    backend: Any
    scheduler: Any
    prompt_embeds: Tensor
    random_weights: bool = False  # the folder holds RANDOM_WEIGHTS_FILE (``aether tiny-model``)


RANDOM_WEIGHTS_FILE = "RANDOM_WEIGHTS.txt"
"""A model folder holding this file has untrained weights; results made with it carry a badge."""


def check_weights_file(path: Path) -> None:
    """ValueError unless ``path`` is a complete safetensors file (its header's tensors fit the file)."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise ValueError(f"its header claims {header_len} bytes")
            header = json.loads(f.read(header_len))
    except (struct.error, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: unreadable safetensors weights ({err})") from err
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise ValueError(f"{path}: truncated weights: expected {expected} bytes, the file has {size}")


def check_model_folder(path: str | os.PathLike, subfolders: tuple[str, ...] = ("transformer",)) -> None:
    """Validate a local model folder's ``subfolders``: config.json readable, weights complete."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such model folder")
    for sub in subfolders:
        folder = root / sub
        if not folder.is_dir():
            found = sorted(p.name for p in root.iterdir())
            raise FileNotFoundError(f"{root}: missing {sub}/ (expected {list(subfolders)}, found {found})")
        config = folder / "config.json"
        try:
            json.loads(config.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{config}: unreadable config ({err})") from err
        weights = [p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES]
        if not weights:
            raise FileNotFoundError(f"{folder}: no weights (expected *.safetensors)")
        for file in weights:
            if file.suffix == ".safetensors":
                check_weights_file(file)


def load_spec(aether: str | os.PathLike) -> AetherModelSpec:
    """The spec of a local folder or hub id (AetherV1's when the model has none)."""
    if Path(aether).is_dir():
        return AetherModelSpec.load(aether)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    repo_id = str(aether)
    why = hub_unreachable()
    if why is not None:  # from the local cache only: a cached model without a spec is AetherV1
        spec_dir = cached_model_spec(repo_id, why)
        return AETHERV1_SPEC if spec_dir is None else AetherModelSpec.load(spec_dir)
    try:
        file = hf_hub_download(repo_id, SPEC_FILE)
    except LocalEntryNotFoundError as err:  # the hub went away while asking
        raise FileNotFoundError(hub_missing_message(repo_id, f"its {SPEC_FILE}", str(err))) from err
    except EntryNotFoundError:
        return AETHERV1_SPEC  # the released AetherV1 has no spec
    except Exception as err:  # offline, unknown repository, network: the hub's own error types
        raise FileNotFoundError(
            f"{aether}: not a local model folder, and its {SPEC_FILE} could not be read from the hub ({err})"
        ) from err
    return AetherModelSpec.load(Path(file).parent)


def _vae_source(spec: AetherModelSpec, aether: str | os.PathLike, base: str | os.PathLike | None) -> Any:
    """Where the CogVideoX VAE (and the base scheduler / text encoder) come from."""
    if base is not None:
        return base
    if Path(aether, "vae").is_dir():
        return aether
    return spec.backend_kwargs.get("path_or_id") or AETHERV1_BASE


def load_components(
    aether: str | os.PathLike,
    base: str | os.PathLike | None = None,
    *,
    torch_dtype: torch.dtype = torch.float32,
    embedding_method: str = "float32",
    embedding_cache: str | os.PathLike | None = None,
) -> ModelComponents:
    """Validate and load a model folder (or hub id) as its spec says.

    Args:
        aether: model folder (``transformer/``, optionally ``aether_config.json``, ``scheduler/``,
            the embedding) or hub id.
        base: CogVideoX-5b-I2V-layout folder or hub id for models on the "cogvideox" backend (default:
            the folder itself when it has ``vae/``, else the spec's ``backend_kwargs.path_or_id``).
            Refused for models whose backend uses no base model.
        torch_dtype: dtype of the transformer and the backend.
        embedding_method: how a missing empty-prompt embedding is computed ("float32" or "reference").
        embedding_cache: where a computed embedding is cached (default: the user cache,
            :func:`aether.hub.cache_dir`, per model and method); a local folder's own embedding is
            read when it fits and never rewritten.
    """
    from aether.models import AetherTransformer
    from aether.models.text import EMPTY_PROMPT_FILE, empty_prompt_embedding

    require_local(aether, "model")
    local = Path(aether).is_dir()
    if local:
        check_model_folder(aether)
    spec = load_spec(aether)
    spec.check_registered()
    uses_base = spec.latent_backend == "cogvideox"
    if base is not None and not uses_base:
        raise ValueError(
            f"base={base!s} contradicts the model spec of {aether!s}: its latent backend is "
            f"{spec.latent_backend!r} with {spec.backend_kwargs}, which takes no CogVideoX base model; "
            "drop base"
        )
    if uses_base:
        from aether.modalities import CogVideoXBackend

        source = _vae_source(spec, aether, base)
        if (
            base is not None
            and not Path(base).is_dir()
            and (Path(base).is_absolute() or str(base)[:1] == ".")
        ):
            raise FileNotFoundError(f"base {base!s}: no such folder (a path, not a hub id)")
        if not Path(source).is_dir():
            check_hub_source(str(source), "the CogVideoX VAE (vae/)", "vae/config.json")
        kwargs = {"subfolder": "vae", **spec.backend_kwargs, "torch_dtype": torch_dtype}
        kwargs.pop("path_or_id", None)
        try:
            backend = CogVideoXBackend.from_pretrained(source, **kwargs)
        except OSError as err:  # a hub id offline, or a folder without vae/
            raise FileNotFoundError(f"the CogVideoX VAE of {source!s} could not be loaded ({err})") from err
    else:
        source = None
        backend = spec.build_backend()
        if torch_dtype != torch.float32:
            backend = backend.to(dtype=torch_dtype)
    targets, conditions = spec.build_stacks(backend)
    if local:  # before reading any transformer weight
        config = json.loads(Path(aether, "transformer", "config.json").read_text())
        spec.check_transformer(config, targets.channels, conditions.channels)
        verify_checksums(aether)  # what `aether export` recorded: every file, and the spec itself
    try:
        transformer = AetherTransformer.from_pretrained(
            aether, subfolder="transformer", torch_dtype=torch_dtype
        )
    except OSError as err:
        raise FileNotFoundError(f"the transformer of {aether!s} could not be loaded ({err})") from err
    if not local:
        spec.check_transformer(transformer.config, targets.channels, conditions.channels)
    scheduler = _load_scheduler(spec, aether, source)
    if embedding_cache is None:
        key = str(Path(aether).resolve()) if local else str(aether)
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        folder = f"{Path(key).name}-{digest}" if local else key.replace("/", "--")
        embedding_cache = cache_dir("embeddings", folder, embedding_method) / EMPTY_PROMPT_FILE
    prompt = empty_prompt_embedding(
        source,
        cache=embedding_cache,
        shipped=Path(aether) / EMPTY_PROMPT_FILE if local else None,
        max_length=int(transformer.config.max_text_seq_length),
        method=embedding_method,
    )
    random = local and Path(aether, RANDOM_WEIGHTS_FILE).is_file()
    return ModelComponents(spec, transformer, backend, scheduler, prompt, random_weights=random)


def _load_scheduler(spec: AetherModelSpec, aether: str | os.PathLike, base: Any) -> Any:
    """The model folder's ``scheduler/``, else the base's; its prediction type must be the spec's."""
    from aether.models.spec import COGVIDEOX_SCHEDULER

    config = None
    for root in (aether, base):
        if root is None:
            continue
        path = Path(root, "scheduler", "scheduler_config.json")
        if path.is_file():
            config = json.loads(path.read_text())
            break
    if config is None and base is not None and not Path(base).is_dir():
        from diffusers import CogVideoXDPMScheduler

        scheduler = CogVideoXDPMScheduler.from_pretrained(base, subfolder="scheduler")
    else:
        scheduler = build_scheduler(
            config or {**COGVIDEOX_SCHEDULER, "prediction_type": spec.prediction_type}
        )
    got = scheduler.config.prediction_type
    if got != spec.prediction_type:
        raise ValueError(
            f"the scheduler of {aether!s} predicts {got!r} but the model spec says {spec.prediction_type!r}"
        )
    return scheduler
