"""The declared clip and batch layouts (``aether.data.batch``) are what the data pipeline produces:
the keys (required and optional) and each entry's stated shape and dtype."""

from __future__ import annotations

import re
import typing

import numpy as np
import pytest
import torch

from aether.data.batch import Clip, ClipBatch
from aether.data.commands import synthesize_shards
from aether.data.datamodule import AetherDataModule, prepare_clip
from aether.data.shards import write_shards
from aether.data.synthetic import clips_batch, render_clip

_DTYPES = {"float32": torch.float32, "bool": torch.bool}
_LAYOUT = re.compile(r"^\(([^)]*)\) (\w+)")  # "(B, T, 3, H, W) float32, ..."


def _layouts(cls: type) -> dict[str, tuple[list[str], str]]:
    """{key: (dims, dtype)} of the entries whose ``Annotated`` metadata states a shape."""
    out = {}
    for key, hint in typing.get_type_hints(cls, include_extras=True).items():
        (doc,) = hint.__metadata__
        match = _LAYOUT.match(doc)
        if match:
            out[key] = ([d.strip() for d in match.group(1).split(",") if d.strip()], match.group(2))
    return out


def check_layout(cls: type, value: dict) -> None:
    """AssertionError unless ``value`` holds every required key of the TypedDict ``cls``, no key it
    does not declare, and entries of the declared shapes (one size per symbol: B, T, H, W) and types."""
    keys = set(value)
    assert cls.__required_keys__ <= keys, f"missing {sorted(cls.__required_keys__ - keys)}"
    declared = cls.__required_keys__ | cls.__optional_keys__
    assert keys <= declared, f"undeclared {sorted(keys - declared)}"
    sizes: dict[str, int] = {}
    for key, (dims, dtype) in _layouts(cls).items():
        if key not in value:
            continue
        entry = value[key]
        if dtype == "str":
            assert isinstance(entry, list) and all(isinstance(s, str) for s in entry), key
            shape: tuple[int, ...] = (len(entry),)
        else:
            assert isinstance(entry, torch.Tensor), key
            if dtype == "float":
                assert entry.is_floating_point(), key
            else:
                assert entry.dtype == _DTYPES[dtype], f"{key}: {entry.dtype}, declared {dtype}"
            shape = tuple(entry.shape)
        assert len(shape) == len(dims), f"{key}: shape {shape}, declared {dims}"
        for dim, size in zip(dims, shape):
            expected = int(dim) if dim.isdigit() else sizes.setdefault(dim, size)
            assert size == expected, f"{key}: shape {shape}, declared {dims} ({dim} = {expected})"
    plain = typing.get_type_hints(cls)
    for key in keys:
        if plain[key] in (float, str):
            assert isinstance(value[key], plain[key]), f"{key}: {type(value[key]).__name__}"


def test_datamodule_batch_of_synthetic_shards_is_a_clip_batch(tmp_path) -> None:
    synthesize_shards(tmp_path, 3, frames=17, height=24, width=32, fps=24.0, maxcount=2, progress=False)
    data = AetherDataModule(
        val_urls=str(tmp_path), height=16, width=24, frames=[17], fps=[24], batch_size=2, num_workers=0
    )
    batches = list(data.val_dataloader())
    assert [len(b["key"]) for b in batches] == [2, 1]
    for batch in batches:
        check_layout(ClipBatch, batch)
        assert "dynamic" in batch  # the synthetic shards carry the moving-object masks
        assert batch["video"].shape == (len(batch["key"]), 17, 3, 16, 24)


def test_batch_without_optional_keys_and_a_prepared_clip(tmp_path, sample_factory) -> None:
    samples = [sample_factory(f"clip{i}", frames=17, fps=24.0, seed=i) for i in range(2)]
    for sample in samples:
        del sample["dynamic"]
    write_shards(samples, str(tmp_path / "s-%03d.tar"), maxcount=2)
    data = AetherDataModule(val_urls=str(tmp_path), height=8, width=8, frames=[17], fps=[24], batch_size=2)
    (batch,) = list(data.val_dataloader())
    check_layout(ClipBatch, batch)
    assert "dynamic" not in batch
    sample = {**sample_factory("one", frames=17, fps=24.0), "__url__": "x"}
    clip = prepare_clip(sample, height=8, width=8, rng=np.random.default_rng(0), frames=(17,), fps=(24,))
    check_layout(Clip, clip)


def test_rendered_clips_batch_is_a_clip_batch() -> None:
    clips = [render_clip(seed, num_frames=5, height=16, width=24, fps=10.0) for seed in (0, 1)]
    check_layout(ClipBatch, clips_batch(clips))


def test_the_check_catches_drift() -> None:
    clips = [render_clip(0, num_frames=5, height=16, width=24, fps=10.0)]
    batch = clips_batch(clips)
    with pytest.raises(AssertionError, match="undeclared"):
        check_layout(ClipBatch, {**batch, "extra": torch.zeros(1)})
    with pytest.raises(AssertionError, match="missing"):
        check_layout(ClipBatch, {k: v for k, v in batch.items() if k != "dmax"})
    with pytest.raises(AssertionError, match="declared float32"):
        check_layout(ClipBatch, {**batch, "video": batch["video"].double()})
    with pytest.raises(AssertionError, match="T = 5"):
        check_layout(ClipBatch, {**batch, "depth": batch["depth"][:, :3]})
