"""World4D: closed-form points, exporters read back by independent readers, save/load round trip."""

import json

import numpy as np
import pytest
import trimesh
from plyfile import PlyData

from aether.pipeline import Trajectory, World4D
from aether.pipeline.io import read_video


def _world(T=3, H=8, W=12, seed=0) -> World4D:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1, 3, (T, H, W)).astype(np.float32)
    valid = rng.random((T, H, W)) > 0.2
    depth[~valid] = 0
    c2w = np.tile(np.eye(4), (T, 1, 1))
    c2w[:, 0, 3] = np.arange(T) * 0.5
    K = np.tile(np.array([[10.0, 0, 6], [0, 11.0, 4], [0, 0, 1]]), (T, 1, 1))
    rgb = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    disparity = np.where(valid, 1 / np.where(valid, depth, 1), 0)
    return World4D(rgb, depth, disparity, c2w, K, valid, fps=12, meta={"task": "test"})


def test_points_closed_form():
    world = _world()
    pts = world.points()
    t, i, j = 2, 5, 7
    z = world.depth[t, i, j]
    expected = [(j - 6) / 10 * z + 1.0, (i - 4) / 11 * z, z]
    np.testing.assert_allclose(pts[t, i, j], expected, rtol=1e-5)


def test_ply_and_glb_load_back_with_counts_and_colors(tmp_path):
    world = _world()
    paths = world.save(tmp_path, formats=("ply", "glb"), stride=1, max_points=None, per_frame=True)
    points, colors = world.point_cloud()
    assert len(points) == world.valid.sum()
    vertex = PlyData.read(str(paths["ply"]))["vertex"]
    got = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    np.testing.assert_allclose(got, points, rtol=1e-6)
    np.testing.assert_array_equal(np.stack([vertex["red"], vertex["green"], vertex["blue"]], 1), colors)
    frame = PlyData.read(str(tmp_path / "points" / "frame_0001.ply"))["vertex"]
    assert frame.count == world.valid[1].sum()
    cloud = trimesh.load(paths["glb"], force="scene").geometry
    (geometry,) = cloud.values()
    assert len(geometry.vertices) == len(points)
    order = np.lexsort(points.T)
    order_glb = np.lexsort(np.asarray(geometry.vertices).T)
    np.testing.assert_allclose(np.asarray(geometry.vertices)[order_glb], points[order], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(geometry.colors)[order_glb, :3], colors[order])


def test_subsampled_point_cloud(tmp_path):
    world = _world(T=2, H=16, W=24)
    pts, cols = world.point_cloud(stride=2, max_points=50)
    assert len(pts) == 50 and cols.dtype == np.uint8
    full = world.points()[:, ::2, ::2][world.valid[:, ::2, ::2]]
    nearest = np.linalg.norm(pts[:, None] - full[None], axis=-1).min(axis=1)
    assert nearest.max() < 1e-4  # every kept point is a strided grid point


def test_save_load_round_trip_and_trajectory_files(tmp_path):
    world = _world()
    paths = world.save(tmp_path)
    loaded = World4D.load(tmp_path)
    for name in ("rgb", "depth", "disparity", "c2w", "K", "valid"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(world, name))
    assert loaded.fps == world.fps and loaded.meta == {"task": "test"}
    traj = Trajectory.from_json(paths["json"])
    np.testing.assert_allclose(traj.c2w.numpy(), world.c2w, atol=1e-6)
    tum = Trajectory.from_tum(paths["tum"], K=world.K[0])
    np.testing.assert_allclose(tum.c2w.numpy(), world.c2w, atol=1e-6)
    frames, fps = read_video(paths["mp4"])
    scale = -(-240 // world.width)  # small results are enlarged to panels at least 240 px wide
    assert frames.shape[:2] == (3, 8 * scale) and frames.shape[2] >= 2 * 240 and fps == 12
    assert paths["png"].stat().st_size > 1000
    assert json.loads(paths["json"].read_text())["axes"] == "opencv"


def test_smoothing_and_bad_inputs():
    world = _world(T=9)
    smooth = world.smooth("gaussian", sigma=1.0)
    assert smooth.c2w.shape == world.c2w.shape
    interior = slice(3, -3)  # linear motion is kept away from the ends
    np.testing.assert_allclose(smooth.c2w[interior, 0, 3], world.c2w[interior, 0, 3], atol=1e-3)
    with pytest.raises(ValueError, match="unknown smoothing"):
        world.smooth("median")
    with pytest.raises(ValueError, match="depth: expected"):
        World4D(world.rgb, world.depth[:, :4], world.disparity, world.c2w, world.K, world.valid)
    with pytest.raises(ValueError, match="unknown formats"):
        world.save("unused", formats=("obj",))


@pytest.mark.parametrize("stride", [1, 2])
def test_fused_point_export_matches_geometry_backprojection(stride):
    world = _world(T=2, H=16, W=24, seed=4)
    world.c2w[1, :3, :3] = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # a rotated camera
    points, colors = world.point_cloud(stride=stride)
    sel = (slice(None), slice(None, None, stride), slice(None, None, stride))
    mask = world.valid[sel]
    np.testing.assert_allclose(points, world.points()[sel][mask], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(colors, world.rgb[sel][mask])


def test_rerun_recording_holds_frames_cameras_and_points(tmp_path):
    pytest.importorskip("rerun")
    chunk = pytest.importorskip("rerun.chunk")
    world = _world()
    path = world.save(tmp_path, formats=("rrd",))["rrd"]
    store = chunk.RrdReader(path).store()
    paths = set(store.schema().entity_paths())
    assert {"/world/camera", "/world/camera/image/rgb", "/world/camera/image/depth", "/world/points"} <= paths
    assert f"/world/camera/image/rgb rows={world.num_frames}" in str(store.summary())


def test_depth_pictures_carry_a_colour_bar_over_the_valid_depth_percentiles(tmp_path):
    from aether.visualize import colormap_lut, legend_bar_width

    world = _world(T=3, H=48, W=64, seed=2)
    valid_depth = world.depth[world.valid]
    near, far = world.depth_range()
    np.testing.assert_allclose((near, far), np.percentile(valid_depth, [1, 99]), rtol=1e-6)

    video = world.depth_video()
    h, w = world.height, world.width
    lut = colormap_lut("Spectral")
    bar = video[0, :, w + 1 : w + 1 + legend_bar_width(h)]
    rows = 255 - np.rint(255 * np.arange(h) / (h - 1)).astype(int)  # near (top) to far (bottom)
    np.testing.assert_array_equal(bar, np.broadcast_to(lut[rows][:, None], bar.shape))
    labels = video[0, :, w + 1 + legend_bar_width(h) :]
    assert labels[: h // 3].max() > 128 and labels[-h // 3 :].max() > 128  # near and far written
    # the picture itself uses the same range: the nearest and farthest pixels hit the bar's ends
    t, i, j = np.unravel_index(np.argmin(np.where(world.valid, world.depth, np.inf)), world.depth.shape)
    np.testing.assert_array_equal(video[t, i, j], lut[255])
    t, i, j = np.unravel_index(np.argmax(world.depth), world.depth.shape)
    np.testing.assert_array_equal(video[t, i, j], lut[0])
    assert (video[:, :, :w][~world.valid] == 0).all()

    paths = world.save(tmp_path, formats=("mp4", "png"))
    frames, _ = read_video(paths["mp4"])
    mp4 = world.video_frames()  # colour | depth | bar, enlarged with nearest neighbours
    scale = mp4.shape[1] // h
    assert scale * w >= 240 and frames.shape[1:3] == (
        mp4.shape[1] + mp4.shape[1] % 2,
        mp4.shape[2] + mp4.shape[2] % 2,
    )
    np.testing.assert_array_equal(mp4[:, ::scale, w * scale : 2 * w * scale : scale], video[:, :, :w])
    strip = mp4[0, :, 2 * w * scale :]
    assert strip.shape[1] > legend_bar_width(h * scale) and strip[: h * scale // 3].max() > 128  # near, units
    from PIL import Image

    from aether.visualize import MIN_PANEL_WIDTH

    picture = np.asarray(Image.open(paths["depth_png"]).convert("RGB"))
    assert picture.shape[1] >= 2 * MIN_PANEL_WIDTH >= 480  # readable: small frames are upsampled
    scale = -(-MIN_PANEL_WIDTH // w)
    # the depth panel is the video's depth frame upsampled with nearest neighbours (an s x s block per
    # depth pixel), placed right of the colour panel (within a pixel of the layout's rounding)
    depth_frame = np.kron(video[1, :, :w], np.ones((scale, scale, 1), np.uint8))
    inner = depth_frame[2:-2, 2:-2]
    y0, x0 = 48, 12 + w * scale + 12  # header, margin, colour panel, gap
    found = [
        (y, x)
        for y in range(y0 - 2, y0 + 3)
        for x in range(x0 - 2, x0 + 3)
        if np.array_equal(picture[y + 2 : y + 2 + inner.shape[0], x + 2 : x + 2 + inner.shape[1]], inner)
    ]
    assert len(found) == 1, "the depth panel is the upsampled depth frame, pixel for pixel"


def _plane_world(H=24, W=32) -> World4D:
    """A tilted plane n·X = d seen by one camera: inverse depth is affine in the pixel coordinates."""
    K = np.array([[30.0, 0, 15.5], [0, 28.0, 11.5], [0, 0, 1]])
    n, d = np.array([0.3, -0.2, 1.0]), 2.0
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T
    depth = (d / (rays @ n))[None].astype(np.float32)
    valid = np.ones_like(depth, dtype=bool)
    rgb = np.zeros((1, H, W, 3), np.uint8)
    return World4D(rgb, depth, 1 / depth, np.eye(4)[None], K[None], valid), n, d


def test_resized_depth_reprojects_with_the_scaled_intrinsics_onto_the_same_plane():
    world, n, d = _plane_world()
    model_points = world.points()[0].reshape(-1, 3)
    np.testing.assert_allclose(model_points @ n, d, rtol=1e-5)  # the model-resolution points
    big = world.resized(60, 80)  # 2.5x, the input resolution
    assert big.depth.shape == big.valid.shape == (1, 60, 80) and big.rgb.shape == (1, 60, 80, 3)
    assert big.valid.all()
    np.testing.assert_allclose(big.disparity, 1 / big.depth, rtol=1e-6)
    # interior: bilinear interpolation of depth on a gently curved inverse depth is second order
    points = big.points()[0, 3:-3, 3:-3].reshape(-1, 3)
    off_plane = np.abs(points @ n - d) / d
    assert off_plane.max() < 2e-3
    # the same scaling with pixel corners at integers puts the points off the plane: the test sees K
    naive = big.K.copy()
    naive[0, :2, 2] = world.K[0, :2, 2] * 2.5
    wrong = World4D(big.rgb, big.depth, big.disparity, big.c2w, naive, big.valid).points()
    assert (np.abs(wrong[0, 3:-3, 3:-3].reshape(-1, 3) @ n - d) / d).max() > 5 * off_plane.max()
    # at 3x, input pixel 3i + 1 has model pixel i's centre: the same depth, so the same 3D point
    three = world.resized(72, 96).points()[0, 1::3, 1::3]
    np.testing.assert_allclose(three[1:-1, 1:-1], world.points()[0, 1:-1, 1:-1], rtol=1e-5, atol=1e-6)


def test_resized_keeps_invalid_pixels_out_of_the_interpolation():
    world, _, _ = _plane_world()
    world.valid[0, :, :8] = False
    world.depth[0, :, :8] = 0
    big = world.resized(48, 64)
    assert not big.valid[0, :, :14].any() and big.valid[0, :, 18:].all()
    reference = _plane_world()[0].resized(48, 64)
    np.testing.assert_allclose(big.depth[big.valid], reference.depth[big.valid], rtol=1e-2)
    with pytest.raises(ValueError, match="positive"):
        world.resized(0, 10)
