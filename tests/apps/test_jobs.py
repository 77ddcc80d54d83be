"""The app's work without the web: preset motions, upload checks, the packaged result."""

import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
import trimesh

from aether.apps.jobs import AppRunner, read_upload_image, read_upload_video, write_scene_glb
from aether.pipeline import World4D
from aether.pipeline.presets import PRESETS, default_intrinsics, preset_poses


def test_preset_translations_and_turns():
    fwd = preset_poses("forward", 5, distance=0.5)
    np.testing.assert_allclose(fwd[:, :3, 3], np.c_[np.zeros(5), np.zeros(5), np.linspace(0, 0.5, 5)])
    np.testing.assert_allclose(fwd[:, :3, :3], np.tile(np.eye(3), (5, 1, 1)))
    assert preset_poses("left", 3)[-1, 0, 3] < 0 and preset_poses("up", 3)[-1, 1, 3] < 0  # y points down
    turn = preset_poses("turn left", 9, angle=30)
    forward_axis = turn[-1, :3, 2]  # the camera's z axis in the world
    np.testing.assert_allclose(forward_axis, [-np.sin(np.pi / 6), 0, np.cos(np.pi / 6)], atol=1e-12)
    np.testing.assert_allclose(turn[:, :3, 3], 0)
    assert preset_poses("none", 17) is None
    with pytest.raises(ValueError, match="unknown camera motion 'sideways'"):
        preset_poses("sideways", 17)


@pytest.mark.parametrize("name", ["orbit left", "orbit right"])
def test_orbits_keep_the_centre_on_the_optical_axis(name):
    c2w = preset_poses(name, 7, angle=40)
    centre = np.array([0.0, 0.0, 1.0, 1.0])
    in_camera = np.linalg.inv(c2w) @ centre
    np.testing.assert_allclose(in_camera[:, :3], np.tile([0, 0, 1.0], (7, 1)), atol=1e-12)
    for pose in c2w:
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    assert len(PRESETS) == len(set(PRESETS))


def test_default_intrinsics_centre_and_field_of_view():
    K = default_intrinsics(64, 96, fov_degrees=90)
    np.testing.assert_allclose(K, [[48, 0, 47.5], [0, 48, 31.5], [0, 0, 1]])


def test_bad_uploads_get_messages(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(ValueError, match=r"\(notes.txt\) is not a readable video"):
        read_upload_video(text)
    with pytest.raises(ValueError, match="is not an image"):
        read_upload_image(text, "image")
    one = tmp_path / "one.mp4"
    iio.imwrite(one, np.zeros((1, 32, 48, 3), np.uint8), plugin="pyav", codec="libx264", fps=12)
    with pytest.raises(ValueError, match=r"1 frame\(s\); reconstruction needs at least 9"):
        read_upload_video(one)
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("1", (8000, 4000)).save(huge)  # 32 megapixels, a few kB on disk
    with pytest.raises(ValueError, match="8000x4000 pixels; at most 24 megapixels"):
        read_upload_image(huge, "image")
    with pytest.raises(ValueError, match="no image given"):
        read_upload_image(None, "image")


def _world(num_frames=3, height=8, width=12):
    depth = np.full((num_frames, height, width), 2.0, np.float32)
    c2w = np.tile(np.eye(4, dtype=np.float32), (num_frames, 1, 1))
    c2w[:, 0, 3] = np.arange(num_frames)
    K = np.tile(default_intrinsics(height, width).astype(np.float32), (num_frames, 1, 1))
    rgb = np.full((num_frames, height, width, 3), 200, np.uint8)
    return World4D(rgb=rgb, depth=depth, disparity=1 / depth, c2w=c2w, K=K, valid=depth > 0, fps=12)


def test_scene_glb_holds_the_points_and_one_frustum_per_camera(tmp_path):
    world = _world()
    scene = trimesh.load(write_scene_glb(tmp_path / "s.glb", world), force="scene")
    clouds = [g for g in scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    assert len(clouds) == 1 and len(clouds[0].vertices) == 3 * 8 * 12
    assert len(meshes) == 3
    apexes = sorted(np.asarray(m.vertices)[0, 0] for m in meshes)  # the camera centres, x = 0, 1, 2
    np.testing.assert_allclose(apexes, [0, 1, 2], atol=1e-6)
    for mesh in meshes:  # the frustum's far corners lie a tenth of the median depth ahead
        np.testing.assert_allclose(np.asarray(mesh.vertices)[1:, 2], 0.2, atol=1e-6)


def test_package_writes_every_saved_file_into_the_archive(tmp_path):
    runner = AppRunner(pipe=None, workdir=tmp_path)
    result = runner.package(_world(), "reconstruction")
    assert result.video.name == "video.mp4" and result.video.is_file()
    with zipfile.ZipFile(result.archive) as zf:
        names = set(zf.namelist())
    saved = {p.name for p in result.folder.iterdir()}
    assert names == saved >= {"world.npz", "video.mp4", "points.ply", "points.glb", "trajectory.json"}
    assert "3 frames of 12x8" in result.summary


@pytest.mark.parametrize(("trained", "recorded", "expected"), [((9.0, 30.0), 25.0, 30.0), (None, 25.0, 25.0)])
def test_reconstruct_samples_at_the_loaded_models_nearest_trained_fps(tmp_path, trained, recorded, expected):
    """The snap follows the loaded model's spec, not AetherV1's rates (which would give 24)."""
    from types import SimpleNamespace

    from aether.models.spec import AetherModelSpec

    calls = []

    def reconstruct(frames, **kwargs):
        calls.append(kwargs["fps"])
        return _world()

    spec = AetherModelSpec(fps=trained)
    runner = AppRunner(pipe=SimpleNamespace(spec=spec, reconstruct=reconstruct), workdir=tmp_path)
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.zeros((17, 32, 48, 3), np.uint8), fps=recorded, codec="libx264")
    runner.reconstruct(str(video))
    assert calls == [expected]
    assert spec.nearest_fps(None) == 12.0
