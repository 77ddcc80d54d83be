"""The constant empty-prompt text embedding, computed once and cached as safetensors.

AetherV1 always conditions on the empty prompt. Its T5 embedding is the encoder
output for the token ids ``[eos=1, pad=0 × (L-1)]`` (L = 226 for CogVideoX), computed
without an attention mask as CogVideoX does. Once cached, inference never loads the
tokenizer or the (4.7B-parameter) text encoder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

EMPTY_PROMPT_FILE = "empty_prompt_embedding.safetensors"


def empty_prompt_token_ids(tokenizer, max_length: int) -> torch.Tensor:
    """(1, max_length) token ids of the empty prompt, padded to ``max_length`` (T5: ``[1, 0, 0, ...]``)."""
    ids = tokenizer(
        "",
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    ).input_ids
    if ids.shape != (1, max_length):
        raise ValueError(f"tokenizer returned ids of shape {tuple(ids.shape)}, expected (1, {max_length})")
    return ids


EMBEDDING_METHODS = ("float32", "reference")
"""How the empty-prompt embedding is computed: "float32" (the encoder in float32 under ``no_grad``,
our default) or "reference" (as the reference AetherV1 pipeline: the encoder in its loaded dtype,
autograd enabled, on the CPU)."""


def encode_empty_prompt(
    base: str | os.PathLike,
    *,
    max_length: int = 226,
    device: torch.device | str | None = None,
    method: str = "float32",
) -> torch.Tensor:
    """Run the base model's tokenizer and T5 encoder on the empty prompt -> (1, L, D).

    ``method="float32"``: the encoder loaded in float32, run under ``no_grad`` on ``device``; float32
    output. ``method="reference"``: the encoder loaded in its checkpoint's dtype and run on the CPU
    with autograd enabled, as the reference pipeline does when it is built; the output keeps that
    dtype (the reference then casts it to bfloat16).
    """
    from transformers import AutoTokenizer, T5EncoderModel

    if method not in EMBEDDING_METHODS:
        raise ValueError(f"method must be one of {EMBEDDING_METHODS}, got {method!r}")
    tokenizer = AutoTokenizer.from_pretrained(base, subfolder="tokenizer")
    ids = empty_prompt_token_ids(tokenizer, max_length)
    if method == "reference":
        encoder = T5EncoderModel.from_pretrained(base, subfolder="text_encoder")
        with torch.enable_grad():
            out = encoder(ids)[0]
        return out.detach()
    encoder = T5EncoderModel.from_pretrained(base, subfolder="text_encoder", dtype=torch.float32)
    encoder = encoder.to(device or "cpu").eval()
    with torch.no_grad():
        return encoder(ids.to(encoder.device))[0].float().cpu()


def _stale_reason(metadata: dict[str, str], method: str, max_length: int) -> str | None:
    """Why a cached embedding cannot serve ``method`` / ``max_length`` (None: it can)."""
    cached = metadata.get("method")
    if cached == "training":  # a trained model's own conditioning, written by `aether export`
        return None
    if cached != method:
        return f"it was computed by method {cached or 'unrecorded'!r}, {method!r} was asked"
    if metadata.get("text_length") not in (None, str(max_length)):
        return f"it was computed for text length {metadata['text_length']}, {max_length} was asked"
    return None


def _read_cached(path: Path, method: str, max_length: int) -> tuple[torch.Tensor | None, str | None]:
    """A cached embedding (1, L, D) and None, or None and why it cannot be used for ``method``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        cached = load_file(str(path))["embedding"]
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: unreadable empty-prompt embedding ({err})") from err
    if cached.ndim != 3 or cached.shape[1] != max_length:
        return None, f"its shape {tuple(cached.shape)} is not (1, {max_length}, D)"
    reason = _stale_reason(metadata, method, max_length)
    return (cached, None) if reason is None else (None, reason)


def empty_prompt_embedding(
    base: str | os.PathLike | None = None,
    *,
    cache: str | os.PathLike | None = None,
    max_length: int = 226,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    method: str = "float32",
    shipped: str | os.PathLike | None = None,
) -> torch.Tensor:
    """The empty-prompt embedding (1, L, D), read from ``shipped`` or ``cache``, or computed from
    ``base`` and written to ``cache``.

    The cache's safetensors metadata records the ``method``, the encoder's ``dtype`` and the
    ``text_length``; a cache made another way or for another length is recomputed (the reason is
    logged) and never reused silently. Files written by ``aether export`` (method "training") are a
    trained model's own conditioning and are used as they are.

    Args:
        base: CogVideoX base folder or hub id holding ``tokenizer/`` and ``text_encoder/``; needed only
            when the cache is missing or stale.
        cache: a ``.safetensors`` file (or a folder, where ``empty_prompt_embedding.safetensors`` is used).
        max_length: text length L (the transformer's ``max_text_seq_length``).
        method: see :data:`EMBEDDING_METHODS`.
        shipped: a model folder's own embedding file, read only: used when it fits ``method`` and
            ``max_length``, never rewritten (a model folder is not a cache).
    """
    path = None if cache is None else Path(cache)
    if path is not None and (path.is_dir() or path.suffix != ".safetensors"):
        path = path / EMPTY_PROMPT_FILE
    embedding = None
    if shipped is not None and Path(shipped).is_file():
        embedding, reason = _read_cached(Path(shipped), method, max_length)
        if reason is not None:
            logger.info("not using %s (left as it is): %s", shipped, reason)
    if embedding is None and path is not None and path.is_file():
        embedding, reason = _read_cached(path, method, max_length)
        if reason is not None and base is None:
            raise ValueError(
                f"cached empty-prompt embedding {path} cannot be used ({reason}) and no base model "
                "is given to recompute it"
            )
        if reason is not None:
            logger.warning("recomputing the empty-prompt embedding cached at %s: %s", path, reason)
    if embedding is None:
        if base is None:
            raise ValueError(f"no cached empty-prompt embedding at {path} and no base model to compute it")
        logger.info("computing the empty-prompt embedding with the text encoder of %s (%s)", base, method)
        embedding = encode_empty_prompt(base, max_length=max_length, device=device, method=method)
        if path is not None:
            metadata = {
                "base": str(base),
                "method": method,
                "dtype": str(embedding.dtype).removeprefix("torch."),
                "text_length": str(max_length),
            }
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                save_file({"embedding": embedding.contiguous()}, str(tmp), metadata=metadata)
                tmp.replace(path)
                logger.info("cached the empty-prompt embedding at %s", path)
            except OSError as err:
                logger.warning("could not cache the empty-prompt embedding at %s: %s", path, err)
    return embedding.to(device=device, dtype=dtype)
