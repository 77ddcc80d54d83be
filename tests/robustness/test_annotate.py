"""Annotation loses nothing: a bad clip is recorded (clip, file, reason) and the run goes on; clips
sharing a key in two shards are both annotated; folders without masks work; the exit status says
whether anything failed."""

import json
from functools import cache

import cv2
import numpy as np
import pytest

from aether.cli import main
from aether.data.shards import iter_samples, write_shards
from aether.data.synthetic import render_clip

from ._build import within

FAST = ["--slice-config", '{"min_length": 5}', "--no-pictures"]


@cache
def _clip(seed):
    return render_clip(seed, num_frames=12, height=96, width=128, trajectory="strafe", fps=12.0)


def _folder(path, seed, masks=True):
    clip = _clip(seed)
    for sub in ("rgb", "depth", *(("masks",) if masks else ())):
        (path / sub).mkdir(parents=True)
    for t in range(12):
        cv2.imwrite(str(path / "rgb" / f"{t:05d}.png"), cv2.cvtColor(clip.rgb[t], cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(path / "depth" / f"{t:05d}.png"), np.round(clip.depth[t] * 1000).astype(np.uint16))
        if masks:
            cv2.imwrite(str(path / "masks" / f"{t:05d}.png"), clip.dynamic[t].astype(np.uint8) * 255)
    np.savetxt(path / "intrinsics.txt", clip.K[0])
    return path


def _sample(key, seed):
    clip = _clip(seed)
    return {"__key__": key, "rgb": clip.rgb, "depth": clip.depth, "K": clip.K, "c2w": clip.c2w,
            "fps": clip.fps, "dynamic": clip.dynamic}  # fmt: skip


@pytest.mark.slow
def test_a_bad_clip_is_recorded_and_the_run_goes_on(tmp_path, capsys):
    clips, out = tmp_path / "clips", tmp_path / "out"
    _folder(clips / "a_bad", 0)
    _folder(clips / "b_good", 1)
    _folder(clips / "c_no_masks", 2, masks=False)  # masks are optional
    png = clips / "a_bad" / "rgb" / "00003.png"
    good_png = png.read_bytes()
    png.write_bytes(good_png[:40])  # truncated
    with within(120):
        assert main(["annotate", str(clips), "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert f"clip a_bad ({clips / 'a_bad'}) failed: ValueError: cannot read image {png}" in err
    assert "Traceback" not in err
    summary = json.loads((out / "reports" / "summary.json").read_text())
    assert summary["annotated"] == ["b_good", "c_no_masks"]
    assert [f["clip"] for f in summary["failed"]] == ["a_bad"] and str(png) in summary["failed"][0]["error"]
    assert not list(out.glob("a_bad-*"))
    assert sorted(s["__key__"] for s in iter_samples(str(out))) == ["b_good_s00", "c_no_masks_s00"]
    report = json.loads((out / "reports" / "c_no_masks.json").read_text())
    assert report["masks"].startswith("none given")

    # fixed and resumed: only the failed clip runs
    png.write_bytes(good_png)
    with within(120):
        assert main(["annotate", str(clips), "--out", str(out), *FAST, "--resume"]) == 0
    assert "annotated 1 clips" in capsys.readouterr().out
    assert len(list(iter_samples(str(out)))) == 3


def test_fail_fast_stops_with_one_line_naming_clip_and_file(tmp_path, capsys):
    clips = tmp_path / "clips"
    _folder(clips / "a", 0)
    (clips / "a" / "intrinsics.txt").write_text("1 2 3 4 5 6 7 8\n")
    with within(60):
        assert main(["annotate", str(clips), "--out", str(tmp_path / "out"), *FAST, "--fail-fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"aether annotate: error: clip a ({clips / 'a'}): ValueError: intrinsics ")
    assert str(clips / "a" / "intrinsics.txt") in err and "expected 9 values per matrix, got 8" in err


@pytest.mark.slow
def test_clips_sharing_a_key_in_two_shards_are_both_annotated(tmp_path, capsys):
    write_shards([_sample("clip-0", 0)], str(tmp_path / "in" / "a-%06d.tar"))
    write_shards([_sample("clip-0", 1)], str(tmp_path / "in" / "b-%06d.tar"))
    out = tmp_path / "out"
    with within(120), pytest.warns(RuntimeWarning, match="also names a sample"):
        assert main(["annotate", str(tmp_path / "in"), "--out", str(out), *FAST]) == 0
    with within(120):
        keys = sorted(s["__key__"] for s in iter_samples(str(out)))
        assert keys == ["a-000000_clip-0_s00", "b-000000_clip-0_s00"]
        assert main(["annotate", str(tmp_path / "in"), "--out", str(out), *FAST, "--resume"]) == 0
    assert "annotated 0 clips (0 slices), skipped 2 finished clips" in capsys.readouterr().out


def test_a_broken_shard_sample_is_a_failed_clip_named_by_shard_and_key(tmp_path, capsys):
    bad = _sample("broken", 0)
    write_shards([bad, _sample("fine", 1)], str(tmp_path / "in" / "s-%06d.tar"))
    shard = tmp_path / "in" / "s-000000.tar"
    data = shard.read_bytes()
    start = data.index(b"broken.meta.json") + 512  # the member's payload follows its 512-byte header
    shard.write_bytes(data[:start] + b"{garbage" + data[start + 8 :])
    with within(120):
        assert main(["annotate", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *FAST]) == 1
    err = capsys.readouterr().err
    # the shard's index catches the damaged member before it is decoded
    assert (
        f"cannot read sample 'broken' of shard {shard}: meta.json: checksum mismatch with the shard index"
        in err
    )
    assert [s["__key__"] for s in iter_samples(str(tmp_path / "out"))] == ["s-000000_fine_s00"]


@pytest.mark.parametrize("flags", [[], ["--resume", "--overwrite"]])
def test_a_used_output_folder_is_refused(tmp_path, capsys, flags):
    _folder(tmp_path / "clips" / "a", 0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "other-000000.tar").write_bytes(b"")
    assert main(["annotate", str(tmp_path / "clips"), "--out", str(tmp_path / "out"), *FAST, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and ("not empty" in err or "exclude each other" in err)
