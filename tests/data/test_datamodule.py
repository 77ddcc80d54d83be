"""Windows, resizing with K, bucketing, exactly-once validation, bad data, reproducible streams."""

from __future__ import annotations

import itertools
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aether.data.datamodule import (
    AetherDataModule,
    ClipStream,
    choose_window,
    collate_clips,
    prepare_clip,
    resize_and_crop,
)
from aether.data.shards import write_shards


@pytest.fixture
def shards(tmp_path, sample_factory):
    """6 shards of 2 clips each; sources at 24 fps with 33 frames, or 30 fps with 49."""
    samples = []
    for i in range(12):
        fps, frames = (24.0, 33) if i % 2 else (30.0, 49)
        samples.append(sample_factory(f"clip{i:02d}", frames=frames, fps=fps, seed=i))
    return write_shards(samples, str(tmp_path / "s-%03d.tar"), maxcount=2)


def test_windows_respect_allowed_sets_and_source_length():
    rng = np.random.default_rng(0)
    frames, fps = (17, 25, 33, 41), (8, 10, 12, 15, 24)
    seen = set()
    for length, source in itertools.product((17, 20, 33, 49, 80, 121), (24.0, 30.0, 12.0, 60.0, 25.0)):
        for _ in range(40):
            window = choose_window(length, source, frames, fps, rng)
            if window is None:
                continue
            count, stride, start, target = window
            assert count in frames and target in fps
            assert source / stride == pytest.approx(target)
            assert start >= 0 and start + (count - 1) * stride < length
            seen.add((length, source, count, target))
    assert choose_window(16, 24.0, frames, fps, rng) is None  # too short for any T
    assert choose_window(100, 25.0, frames, fps, rng) is None  # 25 fps reaches none of the targets
    assert (121, 24.0, 41, 8.0) in seen and (49, 30.0, 17, 10.0) in seen and (33, 24.0, 17, 12.0) in seen
    assert (49, 30.0, 25, 10.0) not in seen  # would need 73 frames


@pytest.mark.parametrize(
    "size, offset", [((24, 40), (0.5, 0.5)), ((20, 20), (0.0, 1.0)), ((48, 72), (0.5, 0.5))]
)
def test_k_follows_resize_and_crop(size, offset):
    """Colour ramps u, v pass through antialiased bilinear resizing almost unchanged in the interior
    (within 0.15 source pixel; a half-pixel convention error is 0.9 here), so each output pixel shows
    the source coordinate of its ray: K⁻¹ of the output pixel must map to it."""
    src_h, src_w = 48, 72
    v, u = torch.meshgrid(torch.arange(src_h).double(), torch.arange(src_w).double(), indexing="ij")
    video = torch.stack([u, v, u + v])[None].repeat(2, 1, 1, 1)
    depth = (1 + u)[None].repeat(2, 1, 1)
    K = torch.tensor([[60.0, 0, 35.2], [0, 58.0, 23.9], [0, 0, 1]], dtype=torch.float64).repeat(2, 1, 1)
    out, out_depth, K2, _ = resize_and_crop(video, depth, K, *size, offset=offset)
    assert out.shape == (2, 3, *size) and out_depth.shape == (2, *size)
    jj, ii = torch.meshgrid(torch.arange(size[1]).double(), torch.arange(size[0]).double(), indexing="xy")
    rays = torch.stack([jj, ii, torch.ones_like(jj)], -1) @ torch.linalg.inv(K2[0]).T
    source = rays @ K[0].T  # the source pixel seen through each output pixel
    border = 3
    interior = (slice(border, -border), slice(border, -border))
    assert torch.allclose(out[0, 0][interior], source[..., 0][interior], atol=0.15)
    assert torch.allclose(out[0, 1][interior], source[..., 1][interior], atol=0.15)
    # nearest depth picks the source pixel within half a source pixel of the ray
    assert ((out_depth[0] - 1 - source[..., 0]).abs() <= 0.5 + 1e-6).all()


def test_prepare_clip_outputs(sample_factory):
    sample = sample_factory("k", frames=33, height=20, width=30, fps=24.0)
    sample["__url__"] = "x"
    clip = prepare_clip(sample, height=16, width=16, rng=np.random.default_rng(0), frames=(17,), fps=(12,))
    assert clip["video"].shape == (17, 3, 16, 16) and clip["video"].dtype == torch.float32
    assert float(clip["video"].min()) >= -1 and float(clip["video"].max()) <= 1
    assert torch.equal(clip["valid"], clip["depth"] > 0) and clip["fps"] == 12.0
    assert torch.allclose(clip["c2w"][0], torch.eye(4))
    assert clip["dmax"] == pytest.approx(float((1 / clip["depth"][clip["valid"]]).max()))
    # relative poses: frame t relative to the window's first frame (stride 2, any start)
    src = torch.from_numpy(sample["c2w"])
    starts = [
        s
        for s in range(33 - 32)
        if torch.allclose(torch.linalg.inv(src[s]) @ src[s + 2], clip["c2w"][1].double(), atol=1e-6)
    ]
    assert starts == [0]
    batch = collate_clips([clip, clip])
    assert batch["video"].shape == (2, 17, 3, 16, 16) and batch["key"] == ["k", "k"]
    assert batch["dynamic"].dtype == torch.bool and batch["fps"].shape == (2,)


def _keys(stream, workers: int) -> list[str]:
    loader = DataLoader(stream, batch_size=None, num_workers=workers)
    return [key for batch in loader for key in batch["key"]]


@pytest.mark.parametrize("shard_count", [6, 3])
def test_validation_sees_every_clip_exactly_once_on_2_ranks_x_2_workers(shards, shard_count):
    urls = shards[:shard_count]
    keys = []
    for rank in range(2):
        stream = ClipStream(urls, height=8, width=12, batch_size=2, train=False, rank=rank, world_size=2)
        keys += _keys(stream, workers=2)
    expected = [f"clip{i:02d}" for i in range(2 * shard_count)]
    assert sorted(keys) == expected  # none lost, none duplicated


def test_batches_hold_one_t_from_the_allowed_sets(shards):
    stream = ClipStream(shards, height=8, width=12, batch_size=3, train=True, shuffle_buffer=4, seed=1)
    counts = set()
    for batch in itertools.islice(iter(stream), 12):
        count = batch["video"].shape[1]
        counts.add(count)
        assert count in (17, 25, 33, 41) and batch["video"].shape[0] == 3
        assert set(batch["fps"].tolist()) <= {8.0, 10.0, 12.0, 15.0, 24.0}
        for name in ("depth", "valid", "dynamic"):
            assert batch[name].shape == (3, count, 8, 12)
        assert batch["K"].shape == (3, count, 3, 3) and batch["c2w"].shape == (3, count, 4, 4)
        assert torch.allclose(batch["c2w"][:, 0], torch.eye(4).expand(3, 4, 4), atol=1e-6)
    assert len(counts) > 1  # several buckets in use


def test_bad_samples_are_skipped_counted_and_the_rest_streams(tmp_path, bad_shards):
    bad_shards(tmp_path)
    dm = AetherDataModule(val_urls=str(tmp_path), height=8, width=8, frames=(17,), fps=(24,), num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = sorted(k for batch in dm.val_dataloader() for k in batch["key"])
    assert keys == ["a0", "a1", "b0", "b2", "c0"]
    assert dm.skipped_samples == 2


def _stream(dm, n):
    return [
        (tuple(b["key"]), b["video"].shape[1], tuple(b["fps"].tolist()))
        for b in itertools.islice(dm.train_dataloader(), n)
    ]


def test_training_stream_is_reproducible_and_resumable(shards):
    def make(seed=0):
        return AetherDataModule(
            train_urls=shards, height=8, width=8, batch_size=2, num_workers=2, seed=seed, shuffle_buffer=4
        )

    first = make()
    run = _stream(first, 6)
    state = first.state_dict()
    assert state["epoch"] == 0 and state["batches"] == 6 and state["seed"] == 0
    assert _stream(make(), 6) == run  # same seed, same stream
    assert _stream(make(seed=1), 6) != run
    resumed = make()
    resumed.load_state_dict({**state, "batches": 4})
    assert _stream(resumed, 2) == run[4:6]  # resumes mid-epoch
    loader = first.train_dataloader()
    again = [tuple(b["key"]) for b in itertools.islice(loader, 6)]  # a new pass: a new epoch, a new draw
    assert again != [keys for keys, _, _ in run] and first.state_dict() == {**state, "epoch": 1}
    assert [tuple(b["key"]) for b in itertools.islice(loader, 1)] != again[:1]  # and again
    assert first.state_dict()["epoch"] == 2


class _Probe(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[str] = []

    def training_step(self, batch, _):
        assert batch["video"].ndim == 5 and batch["c2w"].shape[-2:] == (4, 4)
        return (self.weight * batch["video"].mean()).sum() + self.weight.square().sum()

    def validation_step(self, batch, _):
        self.seen += batch["key"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_and_checkpoint_state(shards, tmp_path):
    dm = AetherDataModule(train_urls=shards, val_urls=shards, height=8, width=8, batch_size=2, seed=3)
    model = _Probe()
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=2, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert sorted(model.seen) == sorted(
        2 * [f"clip{i:02d}" for i in range(12)]
    )  # a full validation pass per epoch
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=False)["AetherDataModule"]
    assert state["seed"] == 3 and state["epoch"] == 1 and state["batches"] >= 2  # the trainer's epoch


def test_clips_too_short_for_any_window_are_skipped_and_named(tmp_path, sample_factory):
    samples = [sample_factory("short", frames=12), sample_factory("long", frames=17)]
    write_shards(samples, str(tmp_path / "s-%03d.tar"))
    stream = ClipStream(str(tmp_path), height=8, width=8, frames=(17,), fps=(24,), train=False)
    with pytest.warns(RuntimeWarning, match="'short'.*s-000.tar.*no window"):
        keys = [k for batch in stream for k in batch["key"]]
    assert keys == ["long"] and stream.skipped.value == 1


class _Recorder(_Probe):
    def training_step(self, batch, index):
        self.seen.append(tuple(batch["key"]))
        return super().training_step(batch, index)


def _fit(shards, root, epochs, ckpt=None):
    dm = AetherDataModule(train_urls=shards, height=8, width=8, batch_size=2, seed=5, shuffle_buffer=4)
    model = _Recorder()
    trainer = L.Trainer(
        max_epochs=epochs, limit_train_batches=2, limit_val_batches=0, accelerator="cpu", logger=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root, num_sanity_val_steps=0,
        enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return trainer, model.seen


def test_resumed_lightning_run_streams_what_the_uninterrupted_run_streamed(shards, tmp_path):
    _, uninterrupted = _fit(shards, tmp_path, epochs=2)
    trainer, first = _fit(shards, tmp_path, epochs=1)
    trainer.save_checkpoint(tmp_path / "epoch1.ckpt")
    _, second = _fit(shards, tmp_path, epochs=2, ckpt=str(tmp_path / "epoch1.ckpt"))
    assert first + second == uninterrupted and first != second
