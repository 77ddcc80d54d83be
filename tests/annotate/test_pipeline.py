"""``aether annotate``: synthetic shards in, annotated shards and reports out; resume; clip folders."""

import json

import cv2
import numpy as np
import pytest

from aether.annotate import load_clip_folder
from aether.annotate.commands import main
from aether.data.shards import iter_samples, write_shards


def _synthetic_shards(render, path, names=("a", "b")):
    samples = []
    for i, name in enumerate(names):
        clip = render("strafe", seed=i, frames=12)
        samples.append(
            {"__key__": name, "rgb": clip.rgb, "depth": clip.depth, "K": clip.K, "c2w": clip.c2w,
             "fps": clip.fps, "dynamic": clip.dynamic, "semantic": clip.semantic,
             "meta": {"classes": {str(k): v for k, v in clip.classes.items()}}}
        )  # fmt: skip
    return write_shards(samples, str(path / "synth-%06d.tar"))


@pytest.mark.slow
def test_annotate_shards_and_resume(render, tmp_path, capsys, monkeypatch):
    import aether.annotate.pipeline as annotate_pipeline

    truth_plots = []
    real_plot = annotate_pipeline.plot_against_truth
    monkeypatch.setattr(
        annotate_pipeline,
        "plot_against_truth",
        lambda path, c2w, true, **kw: truth_plots.append((c2w, true)) or real_plot(path, c2w, true, **kw),
    )
    _synthetic_shards(render, tmp_path / "in")
    out = tmp_path / "out"
    assert (
        main(["annotate", str(tmp_path / "in"), "--out", str(out), "--slice-config", '{"min_length": 5}'])
        == 0
    )
    samples = list(iter_samples(str(out)))
    # outputs are named by source shard + key
    assert sorted(s["__key__"] for s in samples) == ["synth-000000_a_s00", "synth-000000_b_s00"]
    for sample in samples:
        np.testing.assert_allclose(sample["c2w"][0], np.eye(4), atol=1e-9)
        assert sample["rgb"].shape == (12, 96, 128, 3) and sample["dynamic"].any()
    reports = {p.stem: json.loads(p.read_text()) for p in (out / "reports").glob("*.json")}
    assert set(reports) == {"synth-000000_a", "synth-000000_b", "summary"}
    assert reports.pop("summary")["failed"] == []
    for report in reports.values():
        assert report["status"] == "done" and report["kept_frames"] == 12
        ba = report["slices"][0]["reprojection_px"]
        assert ba["refined"]["median"] < ba["coarse"]["median"]
        assert "refined_ate" in report["slices"][0]["ground_truth"]
    pictures = sorted(p.name for p in (out / "reports").glob("*.png"))
    assert pictures == ["synth-000000_a_s00_trajectory.png", "synth-000000_b_s00_trajectory.png"]
    # the plots draw the true cameras (relative to the slice's first frame) under the annotation
    assert len(truth_plots) == 2
    for seed, (c2w, true) in zip((0, 1), truth_plots):
        gt = render("strafe", seed=seed, frames=12).c2w
        np.testing.assert_allclose(true, np.linalg.inv(gt[0]) @ gt, atol=1e-9)
        assert c2w.shape == true.shape == (12, 4, 4)

    # rerun into the used folder: refused without --resume / --overwrite
    with pytest.raises(ValueError, match="not empty"):
        main(["annotate", str(tmp_path / "in"), "--out", str(out), "--slice-config", '{"min_length": 5}'])
    # resumed: everything is finished, nothing is rewritten but the summary
    stamps = {
        p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"
    }
    capsys.readouterr()
    args = [
        "annotate",
        str(tmp_path / "in"),
        "--out",
        str(out),
        "--slice-config",
        '{"min_length": 5}',
        "--resume",
    ]
    assert main(args) == 0
    assert "annotated 0 clips" in capsys.readouterr().out
    assert stamps == {
        p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"
    }
    # resuming with other settings is refused
    with pytest.raises(ValueError, match="settings differ.*slice_config"):
        main(["annotate", str(tmp_path / "in"), "--out", str(out), "--resume"])

    # a crash before "b" was recorded as done in the plan: only "b" is redone
    (out / "plan" / "done" / "synth-000000_b.json").unlink()
    assert main(args) == 0
    assert "annotated 1 clips" in capsys.readouterr().out
    assert (out / "reports" / "synth-000000_a.json").stat().st_mtime_ns == stamps["synth-000000_a.json"]
    assert (out / "reports" / "synth-000000_b.json").is_file()
    assert not list(out.rglob("*.partial"))


def test_clip_folder_round_trip(render, tmp_path):
    clip = render("turn", frames=12)  # a turning camera: the focal length is observable
    folder = tmp_path / "clips" / "kitchen"
    for sub in ("rgb", "depth", "masks"):
        (folder / sub).mkdir(parents=True)
    for t in range(12):
        cv2.imwrite(str(folder / "rgb" / f"{t:05d}.png"), cv2.cvtColor(clip.rgb[t], cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(folder / "depth" / f"{t:05d}.png"), np.round(clip.depth[t] * 1000).astype(np.uint16))
        cv2.imwrite(str(folder / "masks" / f"{t:05d}.png"), clip.dynamic[t].astype(np.uint8) * 255)
    np.savetxt(folder / "intrinsics.txt", clip.K[0])
    (folder / "meta.json").write_text(json.dumps({"fps": 12}))
    loaded = load_clip_folder(folder)
    np.testing.assert_array_equal(loaded.rgb, clip.rgb)
    np.testing.assert_allclose(loaded.depth, clip.depth, atol=5.1e-4)  # millimetre PNG
    np.testing.assert_array_equal(loaded.extras["dynamic"], clip.dynamic)
    np.testing.assert_allclose(loaded.K, clip.K)
    assert loaded.fps == 12 and loaded.gt_c2w is None

    out = tmp_path / "out"
    assert main(["annotate", str(tmp_path / "clips"), "--out", str(out), "--estimate-intrinsics"]) == 0
    (sample,) = iter_samples(str(out))
    assert sample["__key__"] == "kitchen_s00" and sample["fps"] == 12
    assert abs(sample["K"][0, 0, 0] / clip.K[0, 0, 0] - 1) < 0.02


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["annotate", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no clip folders"):
        main(["annotate", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="raft-weights"):
        main(["annotate", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--flow", "raft"])


def test_unobservable_focal_is_warned_recorded_and_refused_on_request(render, to_input):
    from aether.annotate import Annotator, SliceConfig, Slicer
    from aether.annotate.commands import _BUILD, build_annotator, build_parser

    clip = to_input(render("forward", frames=12), "ahead")  # pure forward motion: f is not determined
    slicer = Slicer(SliceConfig(min_length=5))
    with pytest.warns(RuntimeWarning, match="ahead.*focal length unobservable.*kept"):
        samples, report = Annotator(slicer=slicer, estimate_intrinsics=True).annotate(clip)
    (part,) = report["slices"]
    assert part["focal_observable"] is False and part["coarse"]["focal_curvature"] < 0.02
    assert "unobservable" in part["focal_warning"] and len(samples) == 1 and report["refused_slices"] == []
    strict = Annotator(slicer=slicer, estimate_intrinsics=True, require_observable_focal=True)
    with pytest.warns(RuntimeWarning, match="refused"):
        samples, report = strict.annotate(clip)
    assert samples == [] and report["refused_slices"] == [part["key"]]
    assert "unobservable" in report["slices"][0]["refused"]
    # given intrinsics: nothing estimated, nothing to warn about
    given = Annotator(slicer=slicer, require_observable_focal=True)
    samples, report = given.annotate(clip)
    assert len(samples) == 1 and report["slices"][0]["focal_observable"] is None
    args = build_parser("aether annotate").parse_args(["in", "--out", "o", "--require-observable-focal"])
    spec = json.dumps({name: getattr(args, name) for name in _BUILD})
    assert build_annotator(spec).require_observable_focal is True
