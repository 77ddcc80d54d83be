"""Shard round trips, atomic writing, schema validation, and skipping of bad samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aether.data.shards import (
    ShardReader,
    decode_sample,
    encode_sample,
    expand_urls,
    iter_samples,
    validate_sample,
    write_shards,
)
from aether.data.synthetic import render_clip

ARRAYS = ("rgb", "depth", "K", "c2w", "dynamic", "semantic", "instance", "untextured")


def _rendered(seed: int) -> dict:
    clip = render_clip(seed, num_frames=3, height=16, width=24, blackout=True)
    sample = {name: getattr(clip, name) for name in ARRAYS}
    return {**sample, "__key__": f"clip-{seed}", "fps": clip.fps, "meta": {"classes": clip.classes}}


@pytest.mark.parametrize("codec", ["png", "npy"])
def test_round_trip_every_array_equal_every_clip_once(tmp_path, sample_factory, codec):
    samples = [_rendered(0)] + [sample_factory(f"fake-{i}", seed=i) for i in range(4)]
    shards = write_shards(iter(samples), str(tmp_path / "s-%03d.tar"), maxcount=2, rgb_codec=codec)
    assert [Path(s).name for s in shards] == ["s-000.tar", "s-001.tar", "s-002.tar"]
    assert not list(tmp_path.glob("*.partial"))
    reader = ShardReader(str(tmp_path / "s-{000..002}.tar"))
    got = {s["__key__"]: s for s in reader}
    assert sorted(got) == sorted(s["__key__"] for s in samples) and reader.skipped == 0
    for want in samples:
        have = got[want["__key__"]]
        for name in ARRAYS:
            if name in want:
                assert np.array_equal(have[name], want[name]), name
                assert have[name].dtype == np.asarray(want[name]).dtype or name in ("semantic", "instance")
        assert have["fps"] == want["fps"]
        assert have["meta"]["schema_version"] == 1 and have["meta"]["rgb_codec"] == codec
    assert got["clip-0"]["meta"]["classes"]["10"] == "person"


def test_crash_never_leaves_a_truncated_shard_under_a_valid_name(tmp_path, sample_factory):
    def samples():
        for i in range(3):
            yield sample_factory(f"k{i}", seed=i)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        write_shards(samples(), str(tmp_path / "s-%03d.tar"), maxcount=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "s-000.tar",
        "s-000.tar.index.json",
    ]  # complete shard (and its index) only
    assert [s["__key__"] for s in ShardReader(str(tmp_path))] == ["k0", "k1"]


def test_maxsize_splits_shards(tmp_path, sample_factory):
    shards = write_shards(
        (sample_factory(f"k{i}") for i in range(4)), str(tmp_path / "s-%03d.tar"), maxsize=1
    )
    assert len(shards) == 4


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda s: s["depth"].__setitem__((0, 1, 1), np.nan), "depth must be finite"),
        (lambda s: s["depth"].__setitem__((0, 1, 1), -1.0), "depth must be finite"),
        (lambda s: s["c2w"].__setitem__((2, 0, 0), 1.5), "orthonormal"),
        (lambda s: s["K"].__setitem__((0, 0, 2), 500.0), "principal point"),
        (lambda s: s["K"].__setitem__((1, 1, 1), -3.0), "focal"),
        (lambda s: s.__setitem__("depth", s["depth"][:, :-1]), "depth must be"),
        (lambda s: s.__setitem__("fps", float("nan")), "fps"),
        (lambda s: s.__setitem__("dynamic", s["dynamic"][:-1]), "dynamic"),
    ],
)
def test_validation_rejects_schema_violations(sample_factory, corrupt, message):
    sample = decode_sample(encode_sample(sample_factory("k")))
    validate_sample(sample)
    corrupt(sample)
    with pytest.raises(ValueError, match=message):
        validate_sample(sample)


def test_writer_validates_and_rejects_dotted_keys(tmp_path, sample_factory):
    bad = sample_factory("k")
    bad["depth"][0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="depth"):
        write_shards([bad], str(tmp_path / "s-%03d.tar"))
    with pytest.raises(ValueError, match="no dots"):
        write_shards([sample_factory("a.b")], str(tmp_path / "t-%03d.tar"))
    with pytest.raises(ValueError, match="pattern"):
        write_shards([sample_factory("k")], str(tmp_path / "plain.tar"))
    assert not list(tmp_path.glob("*.tar*"))


@pytest.mark.parametrize("access", ["file", "pipe"])  # random access and streaming reads
def test_truncated_member_and_nan_depth_are_skipped_and_counted(tmp_path, bad_shards, access):
    shards = bad_shards(tmp_path)
    reader = ShardReader(shards if access == "file" else [f"pipe:cat {s}" for s in shards])
    with pytest.warns(RuntimeWarning) as caught:
        keys = [s["__key__"] for s in reader]
    assert keys == ["a0", "a1", "b0", "b2", "c0"]
    assert reader.skipped == 2
    messages = [str(w.message) for w in caught]
    assert any("'nan'" in m and "bad1-000.tar" in m and "finite" in m for m in messages)
    assert any("'c1'" in m and "bad2-000.tar" in m for m in messages)


def test_urls_pipe_file_brace_directory_and_glob(tmp_path, sample_factory):
    write_shards((sample_factory(f"k{i}") for i in range(4)), str(tmp_path / "s-%03d.tar"), maxcount=1)
    local = sorted(str(p) for p in tmp_path.glob("*.tar"))
    assert expand_urls(str(tmp_path)) == local
    assert expand_urls(str(tmp_path / "s-00*.tar")) == local
    assert expand_urls(str(tmp_path / "s-{000..003}.tar")) == local
    assert expand_urls(f"{local[0]}::{local[1]}") == local[:2]
    urls = [f"pipe:cat {local[0]}", f"file://{local[1]}", local[2]]
    assert [s["__key__"] for s in iter_samples(urls)] == ["k0", "k1", "k2"]
    selected = iter_samples(str(tmp_path), select=lambda i: i % 2 == 1)
    assert [s["__key__"] for s in selected] == ["k1", "k3"]


def test_fsspec_urls_stream(tmp_path, sample_factory):
    import fsspec

    write_shards([sample_factory("m0"), sample_factory("m1")], str(tmp_path / "s-%03d.tar"))
    with fsspec.open("memory://shards/s-000.tar", "wb") as f:
        f.write((tmp_path / "s-000.tar").read_bytes())
    assert [s["__key__"] for s in iter_samples("memory://shards/s-000.tar")] == ["m0", "m1"]
    written = write_shards([sample_factory("w0")], "memory://out/w-%03d.tar")
    assert written == ["memory://out/w-000.tar"] and not fsspec.filesystem("memory").exists(
        "/out/w-000.tar.partial"
    )
    assert [s["__key__"] for s in iter_samples(written)] == ["w0"]


@pytest.mark.parametrize("codec", ["png", "npy"])
def test_window_decoding_equals_slicing(sample_factory, codec):
    raw = encode_sample(sample_factory("k", frames=9), rgb_codec=codec)
    full = decode_sample(raw)
    part = decode_sample(raw, slice(2, 9, 3))
    for name in ("rgb", "depth", "K", "c2w", "dynamic", "semantic"):
        assert np.array_equal(part[name], full[name][2:9:3]), name
    assert part["meta"]["num_frames"] == 9 and len(part["rgb"]) == 3
