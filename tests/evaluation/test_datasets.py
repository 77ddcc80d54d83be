import numpy as np
import pytest

from aether.evaluation import build_dataset
from aether.evaluation.datasets import (
    SINTEL_POSE_SEQUENCES,
    associate,
    read_cam,
    read_dpt,
    read_png_depth,
    read_pose_list,
    read_tum_trajectory,
)


def test_dpt_round_trip_and_errors(tmp_path, formats):
    depth = np.random.default_rng(0).uniform(0.5, 80, (5, 7)).astype(np.float32)
    formats.write_dpt(tmp_path / "a.dpt", depth)
    np.testing.assert_array_equal(read_dpt(tmp_path / "a.dpt"), depth)
    raw = (tmp_path / "a.dpt").read_bytes()
    (tmp_path / "bad_tag.dpt").write_bytes(np.float32(1.0).tobytes() + raw[4:])
    with pytest.raises(ValueError, match=r"bad_tag.dpt: expected .dpt float tag 202021.25"):
        read_dpt(tmp_path / "bad_tag.dpt")
    (tmp_path / "short.dpt").write_bytes(raw[:-4])
    with pytest.raises(ValueError, match=r"short.dpt: expected 152 bytes for 7x5"):
        read_dpt(tmp_path / "short.dpt")
    with pytest.raises(FileNotFoundError, match=r"missing.dpt: missing; expected a Sintel .dpt"):
        read_dpt(tmp_path / "missing.dpt")


def test_cam_round_trip(tmp_path, formats):
    K = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])
    w2c = np.linalg.inv(formats.random_trajectory(3)[2])
    formats.write_cam(tmp_path / "f.cam", K, w2c)
    K2, w2c2 = read_cam(tmp_path / "f.cam")
    np.testing.assert_array_equal(K2, K)
    np.testing.assert_allclose(w2c2, w2c, atol=1e-15)
    (tmp_path / "g.cam").write_bytes((tmp_path / "f.cam").read_bytes()[:-8])
    with pytest.raises(ValueError, match="g.cam: expected 172 bytes"):
        read_cam(tmp_path / "g.cam")


@pytest.mark.parametrize("scale", [5000.0, 256.0])
def test_png_depth_scale(tmp_path, formats, scale):
    depth = np.array([[0.0, 1.0], [2.5, 10.0]])
    formats.write_png_depth(tmp_path / "d.png", depth, scale)
    read = read_png_depth(tmp_path / "d.png", scale)
    assert read.dtype == np.float64 and read[0, 0] == -1.0  # a hole, as the protocol reads it
    np.testing.assert_allclose(read[depth > 0], depth[depth > 0], atol=0.5 / scale)
    formats.write_rgb(tmp_path / "rgb.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="rgb.png: expected a single-channel 16-bit depth png"):
        read_png_depth(tmp_path / "rgb.png", scale)


def test_tum_trajectory_and_association(tmp_path, formats):
    c2w = formats.random_trajectory(6)
    times = 100.0 + 0.1 * np.arange(6)
    formats.write_tum(tmp_path / "gt.txt", times, c2w)
    t, poses = read_tum_trajectory(tmp_path / "gt.txt")
    np.testing.assert_allclose(t, times)
    np.testing.assert_allclose(poses, c2w, atol=1e-8)
    frames = np.array([100.005, 100.31, 100.5, 100.9])
    assert associate(frames, times) == [(0, 0), (1, 3), (2, 5)]  # 100.9 has no pose within 0.02 s
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match="bad.txt: expected lines of 8 numbers"):
        read_tum_trajectory(tmp_path / "bad.txt")


def test_pose_list_formats(tmp_path, formats):
    c2w = formats.random_trajectory(3)
    np.savetxt(tmp_path / "flat.txt", c2w.reshape(3, 16))
    np.savetxt(tmp_path / "blocks.txt", c2w.reshape(12, 4))
    np.testing.assert_allclose(read_pose_list(tmp_path / "flat.txt"), c2w)
    np.testing.assert_allclose(read_pose_list(tmp_path / "blocks.txt"), c2w)
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match="bad.txt: expected lines of 16 numbers"):
        read_pose_list(tmp_path / "bad.txt")


def _rgb(i):
    return np.full((4, 6, 3), 10 * i, np.uint8)


def test_sintel_layout(tmp_path, formats):
    root = tmp_path / "sintel" / "training"
    c2w = formats.random_trajectory(3)
    K = np.array([[100.0, 0, 3], [0, 100, 2], [0, 0, 1]])
    for seq in ("alley_2", "extra_1"):
        for i in range(3):
            formats.write_rgb(root / "final" / seq / f"frame_{i + 1:04d}.png", _rgb(i))
            formats.write_dpt(root / "depth" / seq / f"frame_{i + 1:04d}.dpt", np.full((4, 6), i + 1.0))
            formats.write_cam(
                root / "camdata_left" / seq / f"frame_{i + 1:04d}.cam", K, np.linalg.inv(c2w[i])
            )
    ds = build_dataset("sintel", tmp_path / "sintel")
    assert ds.max_depth == 70 and ds.post_clip_max == 70
    seqs = ds.sequences("video-depth")
    assert [s.name for s in seqs] == ["alley_2", "extra_1"]
    assert seqs[0].depth()[:, 0, 0].tolist() == [1.0, 2.0, 3.0]
    assert seqs[0].rgb().shape == (3, 4, 6, 3) and seqs[0].rgb()[2, 0, 0, 0] == 20
    np.testing.assert_allclose(seqs[0].c2w, c2w, atol=1e-12)
    np.testing.assert_array_equal(seqs[0].K[1], K)
    # camera pose uses the 14-sequence list: the others are missing here
    with pytest.raises(FileNotFoundError, match="missing sequences"):
        ds.sequences("camera-pose")
    assert len(SINTEL_POSE_SEQUENCES) == 14
    only = build_dataset("sintel", tmp_path / "sintel", sequences=["alley_2"]).sequences("camera-pose")
    assert [s.name for s in only] == ["alley_2"]
    (root / "camdata_left" / "alley_2" / "frame_0002.cam").unlink()
    with pytest.raises(FileNotFoundError, match=r"frame_0002.cam: missing; expected a Sintel .cam"):
        ds.sequences("video-depth")


def test_bonn_layout(tmp_path, formats):
    base = tmp_path / "rgbd_bonn_dataset" / "rgbd_bonn_balloon2"
    times = 1548266469.0 + 0.033 * np.arange(4)
    c2w = formats.random_trajectory(4)
    for i, t in enumerate(times[:3]):
        formats.write_rgb(base / "rgb_110" / f"{t:.6f}.png", _rgb(i))
        formats.write_png_depth(base / "depth_110" / f"{t:.6f}.png", np.full((4, 6), 1.0 + i), 5000.0)
    formats.write_tum(base / "groundtruth_110.txt", times, c2w)
    ds = build_dataset("bonn", tmp_path, sequences=["balloon2"])
    (seq,) = ds.sequences("camera-pose")
    np.testing.assert_allclose(seq.c2w, c2w[:3], atol=1e-8)
    np.testing.assert_allclose(seq.depth()[:, 0, 0], [1.0, 2.0, 3.0])
    assert seq.depth().dtype == np.float64 and ds.max_depth == 70 and ds.post_clip_max is None
    with pytest.raises(FileNotFoundError, match="missing sequences"):
        build_dataset("bonn", tmp_path).sequences("video-depth")  # the five default sequences


def test_kitti_gathered_layout(tmp_path, formats):
    base = tmp_path / "depth_selection" / "val_selection_cropped"
    with pytest.raises(
        FileNotFoundError, match=r"expected the layout .*image_gathered.*first missing path: .*image_gathered"
    ):
        build_dataset("kitti", tmp_path).sequences("video-depth")
    for drive in ("2011_09_26_drive_0002_sync_02", "2011_09_26_drive_0005_sync_02"):
        for idx in (7, 5, 6):
            formats.write_rgb(base / "image_gathered" / drive / f"{idx:010d}.png", _rgb(idx))
            depth = np.full((4, 6), float(idx))
            depth[0, 1] = 0.0  # a hole
            formats.write_png_depth(
                base / "groundtruth_depth_gathered" / drive / f"{idx:010d}.png", depth, 256.0
            )
    ds = build_dataset("kitti", tmp_path)
    assert ds.max_depth is None and ds.post_clip_max is None
    seqs = ds.sequences("video-depth")
    assert [s.name for s in seqs] == ["2011_09_26_drive_0002_sync_02", "2011_09_26_drive_0005_sync_02"]
    depth = seqs[0].depth()
    assert depth.dtype == np.float64 and depth.shape == (3, 4, 6)  # uncropped, every gathered frame
    np.testing.assert_array_equal(depth[:, 0, 0], [5.0, 6.0, 7.0])  # sorted by frame name
    assert (depth[:, 0, 1] == -1.0).all()  # holes read as -1, as the protocol
    assert seqs[0].rgb()[0, 0, 0, 0] == _rgb(5)[0, 0, 0]
    (base / "groundtruth_depth_gathered" / "2011_09_26_drive_0002_sync_02" / "0000000006.png").unlink()
    with pytest.raises(ValueError, match="unmatched: \\['0000000006.png'\\]"):
        ds.sequences("video-depth")


def test_tum_layout_associates_timestamps(tmp_path, formats):
    d = tmp_path / "rgbd_dataset_freiburg3_walking_xyz"
    gt_times = 1341846647.0 + 0.01 * np.arange(40)
    c2w = formats.random_trajectory(40)
    frame_times = gt_times[[3, 10, 17]] + 0.004
    for i, t in enumerate(frame_times):
        formats.write_rgb(d / "rgb_90" / f"{t:.6f}.png", _rgb(i))
    formats.write_tum(d / "groundtruth_90.txt", gt_times, c2w)
    (seq,) = build_dataset("tum", tmp_path).sequences("camera-pose")
    assert seq.name == "walking_xyz"
    np.testing.assert_allclose(seq.c2w, c2w[[3, 10, 17]], atol=1e-8)
    formats.write_tum(d / "groundtruth_90.txt", gt_times[:5], c2w[:5])
    with pytest.raises(ValueError, match="groundtruth_90.txt: expected a pose within 0.02 s"):
        build_dataset("tum", tmp_path).sequences("camera-pose")


def test_scannet_layout(tmp_path, formats):
    d = tmp_path / "scene0707_00"
    c2w = formats.random_trajectory(3)
    for i in range(3):
        formats.write_rgb(d / "color_90" / f"{i}.jpg", _rgb(i))
    np.savetxt(d / "pose_90.txt", c2w.reshape(3, 16))
    (seq,) = build_dataset("scannet", tmp_path).sequences("camera-pose")
    np.testing.assert_allclose(seq.c2w, c2w)
    np.savetxt(d / "pose_90.txt", c2w[:2].reshape(2, 16))
    with pytest.raises(ValueError, match="pose_90.txt: expected 3 poses"):
        build_dataset("scannet", tmp_path).sequences("camera-pose")


def test_clips_and_root_errors(tmp_path):
    rgb = np.zeros((3, 4, 6, 3), np.uint8)
    np.savez(tmp_path / "a.npz", rgb=rgb, c2w=np.tile(np.eye(4), (3, 1, 1)), fps=10.0)
    (seq,) = build_dataset("clips", tmp_path).sequences("planning")
    assert seq.fps == 10.0 and len(seq) == 3 and seq.depth() is None
    np.savez(tmp_path / "b.npz", video=rgb)
    with pytest.raises(ValueError, match="b.npz: expected an 'rgb' array"):
        build_dataset("clips", tmp_path).sequences("planning")
    with pytest.raises(FileNotFoundError, match="nowhere: missing; expected the sintel dataset directory"):
        build_dataset("sintel", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="expected --root"):
        build_dataset("bonn", None)
    with pytest.raises(ValueError, match="unknown evaluation dataset"):
        build_dataset("nyu", tmp_path)


def test_synthetic_is_held_out_and_deterministic():
    a = build_dataset("synthetic", num_sequences=2, num_frames=5, height=16, width=24).sequences(
        "camera-pose"
    )
    b = build_dataset("synthetic", num_sequences=2, num_frames=5, height=16, width=24).sequences(
        "camera-pose"
    )
    assert [s.name for s in a] == ["seed1000000", "seed1000001"]
    np.testing.assert_array_equal(a[1].rgb(), b[1].rgb())
    assert a[0].depth().shape == (5, 16, 24) and a[0].c2w.shape == (5, 4, 4)
    assert all(np.ptp(s.c2w[:, :3, 3], axis=0).max() > 0 for s in a)  # moving cameras


@pytest.mark.parametrize(
    "name,expected",
    [
        ("sintel", r"training/\{final.*first missing path: \S*/training$"),
        ("bonn", r"rgbd_bonn_<seq>.*first missing path: .*rgbd_bonn_balloon2"),
        ("tum", r"rgb_90.*first missing path: .*rgbd_dataset_freiburg3_"),
        ("scannet", r"color_90.*first missing path: .*scene"),
    ],
)
def test_wrong_layout_names_the_expected_layout_and_first_missing_path(tmp_path, name, expected):
    (tmp_path / "something_else").mkdir()
    task = "camera-pose" if name in ("tum", "scannet") else "video-depth"
    with pytest.raises(FileNotFoundError, match=expected):
        build_dataset(name, tmp_path).sequences(task)


def test_sintel_layout_error_below_training_names_the_missing_folder(tmp_path):
    (tmp_path / "training" / "final").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"first missing path: \S*/training/depth$"):
        build_dataset("sintel", tmp_path).sequences("video-depth")
