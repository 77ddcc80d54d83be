"""Clips of input shards are listed from member headers and load alone (picklable, only their own
bytes); a damaged shard tail keeps the samples before it."""

import pickle
import tarfile

import numpy as np
import pytest

from aether.annotate.io import iter_clip_sources
from aether.data.shards import iter_samples, write_shards


def _sample(key, clip):
    return {"__key__": key, "rgb": clip.rgb, "depth": clip.depth, "K": clip.K, "c2w": clip.c2w,
            "fps": clip.fps, "dynamic": clip.dynamic}  # fmt: skip


def test_shard_clips_load_alone_and_a_damaged_tail_keeps_the_samples_before_it(render, tmp_path):
    clips = [render(trajectory, frames=12) for trajectory in ("strafe", "turn", "orbit")]
    write_shards([_sample(k, c) for k, c in zip("abc", clips)], str(tmp_path / "s-%06d.tar"))
    shard = tmp_path / "s-000000.tar"
    pending = list(iter_clip_sources(shard))
    assert [(p.name, p.uid) for p in pending] == [(k, f"s-000000_{k}") for k in "abc"]
    for item, reference in zip(pending, iter_samples(str(shard)), strict=True):
        clip = pickle.loads(pickle.dumps(item)).load()  # runs in another process as well
        np.testing.assert_array_equal(clip.rgb, reference["rgb"])
        np.testing.assert_array_equal(clip.depth, reference["depth"])
        np.testing.assert_array_equal(clip.K, reference["K"])
        np.testing.assert_array_equal(clip.gt_c2w, reference["c2w"])
        assert clip.uid == item.uid and clip.extras["dynamic"].shape == clip.depth.shape

    with tarfile.open(shard) as tar:
        cut = max(m.offset_data for m in tar.getmembers() if m.name.startswith("c.")) + 100
    shard.write_bytes(shard.read_bytes()[:cut])  # the end of the last sample is lost
    pending = list(iter_clip_sources(shard))
    assert [p.name for p in pending] == ["a", "b", "c"]
    np.testing.assert_array_equal(pending[1].load().rgb, clips[1].rgb)
    with pytest.raises(ValueError, match=f"cannot read sample 'c' of shard {shard}"):
        pending[2].load()
