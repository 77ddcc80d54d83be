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


@torch.no_grad()
def encode_empty_prompt(
    base: str | os.PathLike, *, max_length: int = 226, device: torch.device | str | None = None
) -> torch.Tensor:
    """Run the base model's tokenizer and T5 encoder (float32) on the empty prompt -> (1, L, D) float32."""
    from transformers import AutoTokenizer, T5EncoderModel

    tokenizer = AutoTokenizer.from_pretrained(base, subfolder="tokenizer")
    encoder = T5EncoderModel.from_pretrained(base, subfolder="text_encoder", dtype=torch.float32)
    encoder = encoder.to(device or "cpu").eval()
    ids = empty_prompt_token_ids(tokenizer, max_length).to(encoder.device)
    return encoder(ids)[0].float().cpu()


def empty_prompt_embedding(
    base: str | os.PathLike | None = None,
    *,
    cache: str | os.PathLike | None = None,
    max_length: int = 226,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The empty-prompt embedding (1, L, D), read from ``cache`` or computed from ``base`` and cached.

    Args:
        base: CogVideoX base folder or hub id holding ``tokenizer/`` and ``text_encoder/``; needed only
            when the cache is missing.
        cache: a ``.safetensors`` file (or a folder, where ``empty_prompt_embedding.safetensors`` is used).
        max_length: text length L (the transformer's ``max_text_seq_length``).
    """
    path = None if cache is None else Path(cache)
    if path is not None and (path.is_dir() or path.suffix != ".safetensors"):
        path = path / EMPTY_PROMPT_FILE
    if path is not None and path.is_file():
        embedding = load_file(str(path))["embedding"]
        if embedding.ndim != 3 or embedding.shape[1] != max_length:
            raise ValueError(
                f"cached embedding {path} has shape {tuple(embedding.shape)}, expected (1, {max_length}, D)"
            )
    else:
        if base is None:
            raise ValueError(f"no cached empty-prompt embedding at {path} and no base model to compute it")
        logger.info("computing the empty-prompt embedding with the text encoder of %s", base)
        embedding = encode_empty_prompt(base, max_length=max_length, device=device)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({"embedding": embedding.contiguous()}, str(path), metadata={"base": str(base)})
                logger.info("cached the empty-prompt embedding at %s", path)
            except OSError as err:
                logger.warning("could not cache the empty-prompt embedding at %s: %s", path, err)
    return embedding.to(device=device, dtype=dtype)
