"""The shard reader and the DataModule: implausible or inconsistent samples are skipped and counted
with a message naming the member; duplicates are yielded once; failing sources never end a stream."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aether.data import AetherDataModule
from aether.data.datamodule import ClipStream
from aether.data.shards import Plausibility, ShardReader, iter_samples

from ._build import clip_sample, raw_sample, set_meta, within, write_tar

FRAMES, H, W = 17, 8, 12


def _read(urls, **kwargs):
    errors = []
    with within(20):
        keys = [s["__key__"] for s in iter_samples(urls, on_error=lambda *e: errors.append(e), **kwargs)]
    return keys, errors


def _intrinsics(fx=10.0, skew=0.0):
    return np.tile(np.array([[fx, skew, W / 2 - 0.5], [0, fx, H / 2 - 0.5], [0, 0, 1]]), (FRAMES, 1, 1))


def _depth(value):
    depth = np.full((FRAMES, H, W), 2.0, np.float32)
    depth[3, 4, 5] = value
    return depth


def _moving(reach):
    c2w = np.tile(np.eye(4), (FRAMES, 1, 1))
    c2w[:, 0, 3] = np.linspace(0, reach, FRAMES)
    return c2w


@pytest.mark.parametrize(
    ("over", "member", "bound"),
    [
        ({"depth": _depth(1e30)}, "depth.npy", "expected valid depth in"),
        ({"depth": _depth(2.7e-26)}, "depth.npy", "expected valid depth in"),
        ({"K": _intrinsics(fx=1e-9)}, "K.npy", "fx / width in"),
        ({"K": _intrinsics(fx=1e6)}, "K.npy", "fx / width in"),
        ({"K": _intrinsics(skew=50.0)}, "K.npy", "skew"),
        ({"c2w": _moving(1e300)}, "c2w.npy", "camera positions within"),
    ],
)
def test_implausible_samples_are_skipped_and_counted(tmp_path, over, member, bound):
    url = write_tar(tmp_path / "a.tar", [raw_sample("bad", **over), raw_sample("good", seed=1)])
    reader = ShardReader(url)
    with within(20):
        assert [s["__key__"] for s in reader] == ["good"]
    assert reader.skipped == 1
    (where, key, message) = reader.errors[0]
    assert where == url and key == "bad" and message.startswith(member) and bound in message


def test_bounds_are_settings(tmp_path):
    url = write_tar(tmp_path / "a.tar", [raw_sample("far", depth=_depth(5e4))])
    assert _read(url)[0] == []
    assert _read(url, plausibility=Plausibility(max_depth=1e5))[0] == ["far"]
    assert _read(url, plausibility=None)[0] == ["far"]
    with pytest.raises(ValueError, match="min < max"):
        Plausibility(min_depth=10, max_depth=1)
    with pytest.raises(ValueError, match="unknown bounds"):
        AetherDataModule(train_urls=url, plausibility={"max_dept": 1.0})


def test_datamodule_bounds_the_clip_dmax(tmp_path):
    # depth 2 mm is a plausible sample but a clip dmax of 500 > 100 is refused by this setting
    url = write_tar(tmp_path / "a.tar", [raw_sample("near", depth=_depth(2e-3))])
    dm = AetherDataModule(
        val_urls=url, height=H, width=W, frames=(FRAMES,), fps=(12,), plausibility={"max_dmax": 100.0}
    )
    with within(30):
        assert list(dm.val_dataloader()) == []
    assert dm.skipped_samples == 1


@pytest.mark.parametrize("count", [9, 41])
def test_meta_frame_count_must_match_the_arrays(tmp_path, count):
    url = write_tar(tmp_path / "a.tar", [set_meta(raw_sample("c0"), num_frames=count)])
    keys, errors = _read(url)
    assert keys == [] and len(errors) == 1
    assert f"meta.json says num_frames={count}, the member holds 17 frames" in str(errors[0][2])
    stream = ClipStream(url, height=H, width=W, frames=(FRAMES,), fps=(12,), train=False)
    with within(20):
        assert list(stream) == []
    assert stream.skipped.value == 1


@pytest.mark.parametrize(
    ("member", "data", "named"),
    [
        ("K.npy", b"\x93NUMPY garbage", "K.npy: cannot decode"),
        ("depth.npy", b"", "depth.npy: cannot decode"),
        ("meta.json", b"{not json", "meta.json: expected a JSON object"),
        ("meta.json", b"[1, 2]", "meta.json: expected a JSON object"),
    ],
)
def test_undecodable_members_are_named(tmp_path, member, data, named):
    url = write_tar(tmp_path / "a.tar", [{**raw_sample("c0"), member: data}])
    keys, errors = _read(url)
    assert keys == [] and named in str(errors[0][2]) and errors[0][1] == "c0"


def test_duplicate_key_in_one_shard_is_yielded_once(tmp_path):
    a, b = raw_sample("clip-0"), raw_sample("clip-1", seed=1)
    keys, errors = _read(write_tar(tmp_path / "a.tar", [a, b, a]))
    assert keys == ["clip-0", "clip-1"]
    assert [e[1] for e in errors] == ["clip-0"] and "appears twice" in str(errors[0][2])
    # the same key twice in a row (members repeated) is a duplicate too, not one merged sample
    keys, errors = _read(write_tar(tmp_path / "b.tar", [a, a]))
    assert keys == ["clip-0"] and len(errors) == 1


def test_duplicate_key_across_shards(tmp_path):
    a = raw_sample("clip-0")
    keys, errors = _read([write_tar(tmp_path / "a.tar", [a]), write_tar(tmp_path / "b.tar", [a])])
    assert keys == ["clip-0"] and "same sample as key 'clip-0'" in str(errors[0][2])
    # a different sample under a used key is data: both are read, with a warning
    other = raw_sample("clip-0", seed=5)
    with pytest.warns(RuntimeWarning, match="also names a different sample"):
        keys, errors = _read([str(tmp_path / "a.tar"), write_tar(tmp_path / "c.tar", [other])])
    assert keys == ["clip-0", "clip-0"] and errors == []


@pytest.mark.parametrize(
    "failing", ["pipe:false", "pipe:cat /nonexistent/x.tar", "memory://missing/x.tar", "/nonexistent/x.tar"]
)
def test_a_failing_source_is_counted_and_the_next_one_read(tmp_path, failing):
    good = write_tar(tmp_path / "g.tar", [raw_sample("c0")])
    keys, errors = _read([failing, good])
    assert keys == ["c0"]
    assert [(e[0], e[1]) for e in errors] == [(failing, None)]
    stream = ClipStream([failing, good], height=H, width=W, frames=(FRAMES,), fps=(12,), train=False)
    with pytest.warns(RuntimeWarning, match=f"skipping source {failing}"), within(20):
        batches = list(stream)
    assert [b["key"] for b in batches] == [["c0"]] and stream.skipped.value == 1


def test_a_source_failing_at_close_after_its_samples(tmp_path, monkeypatch):
    import io

    from aether.data import reading

    good = write_tar(tmp_path / "g.tar", [raw_sample("c0")])

    class FailsAtClose(io.BytesIO):  # like a pipe: whose command exits non-zero at the end
        def close(self):
            super().close()
            raise OSError("exit 3")

    monkeypatch.setattr(reading, "open_url", lambda url, timeout: FailsAtClose(Path(good).read_bytes()))
    keys, errors = _read(["pipe:cat g.tar; exit 3"])
    assert keys == ["c0"]  # every sample was whole: kept; the exit status is counted
    assert [e[1] for e in errors] == [None] and "closing the source failed: OSError: exit 3" in str(
        errors[0][2]
    )


@pytest.mark.parametrize("train", [True, False])
def test_a_stream_whose_every_source_fails_ends_with_one_error_listing_them(tmp_path, train):
    urls = ["pipe:false", str(tmp_path / "missing.tar")]
    stream = ClipStream(urls, height=H, width=W, frames=(FRAMES,), fps=(12,), train=train)
    error = pytest.raises(RuntimeError, match="no readable sample from any of 2 source")
    with error as info, pytest.warns(RuntimeWarning), within(20):
        list(stream)
    assert all(url in str(info.value) for url in urls) and "FileNotFoundError" in str(info.value)


@pytest.mark.parametrize("frames", [[-3], [0], [17.5], []])
def test_frame_counts_must_be_positive_integers(frames):
    with pytest.raises(ValueError, match="frames"):
        AetherDataModule(train_urls="x", frames=frames)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_member_bytes_never_crash_nor_reach_a_batch_non_finite(tmp_path, data):
    raw = raw_sample("c0", frames=FRAMES)
    member = data.draw(st.sampled_from(sorted(k for k in raw if not k.startswith("__"))), label="member")
    payload = bytearray(raw[member])
    if data.draw(st.booleans(), label="truncate"):
        payload = payload[: data.draw(st.integers(0, len(payload)), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            at = data.draw(st.integers(0, len(payload) - 1), label="at")
            payload[at] = data.draw(st.integers(0, 255), label="byte")
    url = write_tar(tmp_path / "fuzz.tar", [{**raw, member: bytes(payload)}])
    stream = ClipStream(url, height=H, width=W, frames=(FRAMES,), fps=(12,), train=False)
    with within(20):
        batches = list(stream)
    assert len(batches) + stream.skipped.value == 1  # the sample is read or counted, never lost
    for batch in batches:
        for name in ("video", "depth", "K", "c2w", "dmax", "fps"):
            assert bool(np.isfinite(batch[name].numpy()).all()), name
        assert float(batch["dmax"].max()) <= Plausibility().max_dmax


def test_a_valid_sample_passes_every_bound(tmp_path):
    sample = clip_sample("ok", frames=FRAMES)
    url = write_tar(tmp_path / "a.tar", [raw_sample("ok")])
    (read,) = ShardReader(url)
    np.testing.assert_array_equal(read["depth"], sample["depth"])
