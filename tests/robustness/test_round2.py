"""Round two of bad inputs: duplicates across ranks × workers, hangs, silent wrong numbers."""

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from aether.data import AetherDataModule, ClipStream
from aether.data.shards import ShardReader, write_shards
from aether.evaluation import camera_pose_metrics
from aether.evaluation.depth_metrics import video_depth_metrics
from aether.evaluation.pose_metrics import DegenerateTrajectoryError
from aether.training.cli import check_recipe, load_recipe

from ._build import clip_sample, within

H, W, FRAMES = 8, 12, 17
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _shard(tmp_path, name, keys, **over):
    samples = [clip_sample(k, frames=FRAMES, seed=i, **over) for i, k in enumerate(keys)]
    return write_shards(samples, str(tmp_path / f"{name}-%06d.tar"), rgb_codec="npy", validate=not over)[0]


def _keys(batches):
    return sorted(k for batch in batches for k in batch["key"])


@pytest.mark.parametrize("with_index", [True, False])
@pytest.mark.parametrize("layout", ["copy", "truncated copy"])
def test_each_clip_once_across_two_ranks_with_duplicate_shards(tmp_path, with_index, layout):
    a = _shard(tmp_path, "a", ["k0", "k1", "k2"])
    b = tmp_path / "b.tar"
    data = Path(a).read_bytes()
    b.write_bytes(data if layout == "copy" else data[: len(data) * 2 // 3])
    if with_index:
        shutil.copy(f"{a}.index.json", f"{b}.index.json")
    keys = []
    for rank in range(2):
        stream = ClipStream([a, str(b)], height=H, width=W, frames=(FRAMES,), fps=(12,), train=False)
        stream.rank, stream.world_size = rank, 2
        with within(30):
            keys += _keys(stream)
    assert sorted(keys) == ["k0", "k1", "k2"]


def test_each_clip_once_across_two_workers_with_good_and_bad_shards(tmp_path):
    a = _shard(tmp_path, "a", ["k0", "k1", "k2"])
    data = Path(a).read_bytes()
    (tmp_path / "t.tar").write_bytes(data[: len(data) * 2 // 3])
    c = _shard(tmp_path, "c", ["k3"])
    dm = AetherDataModule(
        val_urls=[a, str(tmp_path / "t.tar"), c], frames=[FRAMES], fps=[12], num_workers=2, height=H, width=W
    )
    with within(60):
        assert _keys(dm.val_dataloader()) == ["k0", "k1", "k2", "k3"]


@pytest.mark.parametrize("member", ["rgb.npy", "depth.npy"])
def test_flipped_bytes_that_still_decode_fail_the_checksum(tmp_path, member):
    url = _shard(tmp_path, "a", ["k0"])
    data = bytearray(Path(url).read_bytes())
    with tarfile.open(url) as tar:
        info = tar.getmember(f"k0.{member}")
    data[info.offset_data + info.size - 40] ^= 1  # a low bit of the last values: still decodes
    Path(url).write_bytes(bytes(data))
    reader = ShardReader(url)
    assert list(reader) == [] and reader.skipped == 1
    assert f"{member}: checksum mismatch with the shard index {url}.index.json" in reader.errors[0][2]


def test_a_stream_of_unusable_samples_raises_instead_of_looping(tmp_path):
    url = _shard(tmp_path, "z", ["k0", "k1"], depth=np.zeros((FRAMES, H, W), np.float32))
    stream = ClipStream(url, height=H, width=W, frames=(FRAMES,), fps=(12,), max_consecutive_skips=5)
    with (
        pytest.raises(RuntimeError, match=r"5 samples in a row were skipped .*no valid depth pixel"),
        within(30),
    ):
        next(iter(stream))


def test_a_silent_pipe_times_out_and_is_killed(tmp_path):
    reader = ShardReader("pipe:sleep 1000", read_timeout=0.5)
    with within(10):
        assert list(reader) == []
    assert reader.skipped == 1 and "no data for 0.5 s" in reader.errors[0][2]


def test_an_empty_tar_is_reported(tmp_path):
    tarfile.open(tmp_path / "e.tar", "w").close()
    reader = ShardReader(str(tmp_path / "e.tar"))
    assert list(reader) == [] and "empty tar" in reader.errors[0][2]


def test_depth_metrics_compute_in_float64_and_refuse_non_numbers():
    rng = np.random.default_rng(0)
    gt = rng.uniform(100, 600, (2, 16, 16))
    pred = gt * rng.uniform(0.5, 1.5, gt.shape)
    half = video_depth_metrics(pred.astype(np.float16), gt.astype(np.float16), "metric")
    exact = video_depth_metrics(
        pred.astype(np.float16).astype(np.float64), gt.astype(np.float16).astype(np.float64), "metric"
    )
    assert half == exact and np.isfinite(half["rmse"])  # float16 squares overflow: inf before
    for dtype in (bool, np.complex128):
        with pytest.raises(ValueError, match=f"pred_depth: expected real .*{np.dtype(dtype)}"):
            video_depth_metrics(gt.astype(dtype), gt)
    with pytest.raises(ValueError, match="pred_depth's scale .* times the ground truth's"):
        video_depth_metrics((1e-30 * gt).astype(np.float32), gt.astype(np.float32), "scale&shiftl2")


def test_static_ground_truth_with_jitter_is_degenerate():
    rng = np.random.default_rng(0)
    gt = np.tile(np.eye(4), (20, 1, 1))
    gt[:, :3, 3] = rng.normal(0, 1e-4, (20, 3))
    pred = np.tile(np.eye(4), (20, 1, 1))
    pred[:, :3, 3] = np.cumsum(rng.normal(0, 0.1, (20, 3)), 0)
    with pytest.raises(DegenerateTrajectoryError, match="does not move"):
        camera_pose_metrics(pred, gt)
    gt[:, 0, 3] += np.linspace(0, 1, 20)  # a metre of motion with the same jitter is scored
    assert camera_pose_metrics(pred, gt)["ate"] > 0


@pytest.mark.parametrize(
    "recipe, message",
    [
        ({"run": {"evalute": {}}}, r"unknown key run\.evalute \(did you mean run\.evaluate\?\)"),
        (
            {"run": {"checkpoint_evry": 5}},
            r"unknown key run\.checkpoint_evry \(did you mean run\.checkpoint_every\?\)",
        ),
        (
            {"run": {"evaluate": {"clip": 3}}},
            r"unknown key run\.evaluate\.clip \(did you mean run\.evaluate\.clips\?\)",
        ),
        (
            {"model": {"transfomer_typo": {}}},
            r"unknown key model\.transfomer_typo \(did you mean model\.transformer\?\)",
        ),
        (
            {"model": {"class_path": "aether.training.AetherModule", "init_args": {"seeed": 1}}},
            r"unknown key model\.init_args\.seeed \(did you mean model\.init_args\.seed\?\)",
        ),
        (
            {"data": {"class_path": "aether.data.AetherDataModule", "init_args": {"batch_sise": 2}}},
            r"unknown key data\.init_args\.batch_sise \(did you mean data\.init_args\.batch_size\?\)",
        ),
        ({"data": {"class_path": "aether.data.Nothing"}}, r"data\.class_path .* names no importable class"),
        ({"trainer": {"max_step": 3}}, r"unknown key trainer\.max_step \(did you mean trainer\.max_steps"),
        ({"traner": {}}, r"unknown key traner \(did you mean trainer\?\)"),
        ({"model": {"stage2_start_step": -3}}, r"model\.stage2_start_step must be an integer >= 0, got -3"),
        ({"trainer": {"max_steps": -5}}, r"trainer\.max_steps must be an integer >= -1, got -5"),
        ({"trainer": {"accelerator": "cpu", "devices": 4096}}, r"trainer\.devices=4096 CPU processes"),
    ],
)
def test_recipe_mistakes_are_named(recipe, message):
    with pytest.raises(ValueError, match=f"recipe r.yaml: {message}"):
        check_recipe(recipe, "r.yaml")


@pytest.mark.parametrize("name", ["tiny", "aether", "aether_lora", "aether_no_depth"])
def test_the_shipped_recipes_pass_the_key_checks(name):
    path = Path(__file__).parents[2] / "recipes" / f"{name}.yaml"
    check_recipe(load_recipe(path), path)


@pytest.mark.parametrize(
    "text, message", [("a: [1,\n", "is not valid YAML"), ("extends: r.yaml\n", "`extends` chain loops")]
)
def test_unreadable_recipes_name_the_file(tmp_path, text, message):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ValueError, match=f"r.yaml.*{message}"):
        load_recipe(tmp_path / "r.yaml")


def test_bad_files_and_settings_are_refused_naming_them(tmp_path):
    import argparse

    import cv2

    from aether.argtypes import positive_float, torch_device
    from aether.evaluation.datasets import read_png_depth, read_tum_trajectory

    cv2.imwrite(str(tmp_path / "d.png"), np.full((4, 4), 1000, np.uint16))
    with pytest.raises(ValueError, match=r"d\.png: depth scale: expected a finite number > 0.*got 0"):
        read_png_depth(tmp_path / "d.png", 0)
    (tmp_path / "gt.txt").write_text("1.0 0 0 0 0 0 0 1\n1.0 1 0 0 0 0 0 1\n")
    with pytest.raises(ValueError, match=r"gt\.txt: timestamp 1\.0 appears 2 times"):
        read_tum_trajectory(tmp_path / "gt.txt")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a finite number > 0, got '-5'"):
        positive_float("-5")
    with pytest.raises(argparse.ArgumentTypeError, match="'cuda:4096' does not exist"):
        torch_device("cuda:4096")


@pytest.mark.parametrize("damage", ["nan depth", "scaled rotation"])
def test_a_damaged_saved_world_is_refused_naming_the_file(tmp_path, damage):
    from aether.pipeline import World4D

    depth = np.ones((3, 8, 8), np.float32)
    K = np.tile(np.array([[10.0, 0, 4], [0, 10, 4], [0, 0, 1]]), (3, 1, 1))
    world = World4D(rgb=np.zeros((3, 8, 8, 3), np.uint8), depth=depth, disparity=depth, valid=depth > 0,
                    c2w=np.tile(np.eye(4), (3, 1, 1)), K=K)  # fmt: skip
    world._save_npz(tmp_path / "world.npz")
    arrays = dict(np.load(tmp_path / "world.npz"))
    if damage == "nan depth":
        arrays["depth"][0, 0, 0] = np.nan
    else:
        arrays["c2w"][1, :3, :3] *= 3
    np.savez(tmp_path / "world.npz", **arrays)
    field = "depth" if damage == "nan depth" else "c2w"
    with pytest.raises(ValueError, match=f"world.npz: not a readable saved World4D .*{field}"):
        World4D.load(tmp_path)
