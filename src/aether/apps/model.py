"""Making and loading the models the newcomer commands run: a tiny random-weight model written
with no download, the model ``make demo`` exports, an AetherV1 folder or hub id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEMO_MODEL_DIR = Path("outputs") / "tiny" / "model"
"""Where ``make demo`` (``aether run recipes/tiny.yaml``) exports its trained model."""


def save_tiny_model(path: str | os.PathLike, *, height: int = 32, width: int = 48, seed: int = 0) -> Path:
    """Write a tiny random-weight model at ``path`` that every inference entry point loads offline.

    The folder holds an AetherV1-layout transformer (96 → 56 channels, 2 blocks) and, beside it, a
    tiny CogVideoX-I2V-layout base (``vae/``, ``scheduler/``, ``tokenizer/``, ``text_encoder/``), all
    from :mod:`aether.models.testing`, so ``AetherPipeline.from_pretrained(path)`` needs no ``base``.
    The empty-prompt embedding is computed once and written into the folder. Its outputs are noise: it
    exists so the commands, the viewer and the app can be tried in seconds on a CPU.

    Args:
        path: the folder to write (created; an existing model there is overwritten).
        height, width: the model's frame size in pixels (multiples of 16).
        seed: seed of the random weights.
    """
    from aether.models.testing import save_tiny_aether, save_tiny_base
    from aether.models.text import EMPTY_PROMPT_FILE
    from aether.pipeline.loading import RANDOM_WEIGHTS_FILE

    if height % 16 or width % 16 or height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive multiples of 16, got {height}x{width}")
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} exists and is not a folder")
    save_tiny_base(root, height=height, width=width, seed=seed)
    save_tiny_aether(root, height=height, width=width, seed=seed + 1)  # replaces the base transformer/
    (root / RANDOM_WEIGHTS_FILE).write_text(
        "This model's weights are random (aether tiny-model): its outputs are noise, and every picture made "
        "with it says so. It exists to try the commands, the viewer and the app offline.\n"
    )
    load_model(root, embedding_cache=root / EMPTY_PROMPT_FILE)  # ships the embedding; proves it loads
    return root


def load_model(model: str | os.PathLike, **kwargs: Any) -> Any:
    """An :class:`~aether.pipeline.AetherPipeline` for a model folder or hub id: a folder written by
    ``aether export`` (built from its model spec), an AetherV1 folder or hub id, or an ``aether
    tiny-model`` folder. ``kwargs`` go to ``AetherPipeline.from_pretrained`` (``torch_dtype``, ``mode``).
    """
    from aether.pipeline import AetherPipeline

    return AetherPipeline.from_pretrained(model, **kwargs)


def default_model() -> Path:
    """The model the app runs when none is given: ``make demo``'s export.

    Raises:
        FileNotFoundError: with the two ways to make one, when it does not exist.
    """
    if DEMO_MODEL_DIR.is_dir():
        return DEMO_MODEL_DIR
    raise FileNotFoundError(
        f"no model given and no {DEMO_MODEL_DIR}/ (the model `make demo` trains); make one with "
        "`make demo` (about 12 min on a CPU) or `aether tiny-model models/tiny` (random weights, seconds), "
        "then pass it with --model"
    )
