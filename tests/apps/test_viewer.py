"""``aether view``: a saved World4D as a rerun recording, read back with rerun's own reader."""

import sys

import numpy as np
import pytest

from aether import cli
from aether.pipeline import World4D

rerun = pytest.importorskip("rerun", reason="rerun-sdk (the 'rerun' extra) is not installed")


def _world(num_frames: int = 5, height: int = 16, width: int = 24) -> World4D:
    """A camera moving along x in front of a slanted plane, with an invalid corner."""
    rng = np.random.default_rng(0)
    v = np.arange(height, dtype=np.float32)[:, None]
    depth = np.broadcast_to(2.0 + 0.05 * v + 0.0 * np.arange(width), (num_frames, height, width)).copy()
    valid = np.ones_like(depth, dtype=bool)
    valid[:, :4, :4] = False
    c2w = np.tile(np.eye(4, dtype=np.float32), (num_frames, 1, 1))
    c2w[:, 0, 3] = 0.1 * np.arange(num_frames)
    K = np.tile(np.array([[20, 0, 11.5], [0, 22, 7.5], [0, 0, 1]], np.float32), (num_frames, 1, 1))
    rgb = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    return World4D(rgb=rgb, depth=depth, disparity=1 / depth, c2w=c2w, K=K, valid=valid, fps=8.0)


def _chunks(path):
    from rerun.chunk import RrdReader

    reader = RrdReader(path)
    assert len(reader.recordings()) == 1 and len(reader.blueprints()) == 1
    by_entity: dict[str, list] = {}
    for chunk in reader.stream():
        by_entity.setdefault(chunk.entity_path, []).append(chunk)
    return by_entity


def _column(chunks, name):
    values = []
    for chunk in chunks:
        batch = chunk.to_record_batch()
        values += batch.column(batch.schema.names.index(name)).to_pylist()
    return values


def test_view_writes_a_recording_with_every_entity_per_frame(tmp_path, capsys):
    world = _world()
    world.save(tmp_path / "out", formats=("npz",))
    rrd = tmp_path / "view" / "world.rrd"
    assert cli.main(["view", str(tmp_path / "out"), "--save", str(rrd), "--stride", "1"]) == 0
    assert f"rerun {rrd}" in capsys.readouterr().out
    assert not list(rrd.parent.glob("*.partial"))
    chunks = _chunks(rrd)
    from aether.apps.viewer import ENTITIES

    for entity in ENTITIES:
        assert f"/{entity}" in chunks, entity
    for entity in ("world/points", "world/camera", "world/camera/image", "world/camera/image/rgb"):
        frames = sorted(_column(chunks[f"/{entity}"], "frame"))
        assert frames == list(range(world.num_frames)), entity

    # frame 3's cloud: the valid pixels back-projected with K and c2w (independent closed form)
    positions = _column(chunks["/world/points"], "Points3D:positions")
    frames = _column(chunks["/world/points"], "frame")
    got = np.asarray(positions[frames.index(3)], dtype=np.float64)
    v, u = np.nonzero(world.valid[3])
    z = world.depth[3][v, u]
    expected = np.stack([(u - 11.5) / 20 * z + 0.3, (v - 7.5) / 22 * z, z], axis=1)
    assert got.shape == expected.shape == (16 * 24 - 16, 3)
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(expected, axis=0), atol=1e-5)

    translations = _column(chunks["/world/camera"], "Transform3D:translation")
    np.testing.assert_allclose(np.asarray(translations).reshape(-1, 3)[:, 0], 0.1 * np.arange(5), atol=1e-6)
    strips = _column(chunks["/world/trajectory"], "LineStrips3D:strips")
    assert len(strips[0][0]) == world.num_frames


def test_view_subsamples_to_max_points(tmp_path):
    _world().save(tmp_path / "out", formats=("npz",))
    rrd = tmp_path / "w.rrd"
    assert (
        cli.main(["view", str(tmp_path / "out" / "world.npz"), "--save", str(rrd), "--max-points", "50"]) == 0
    )
    positions = _column(_chunks(rrd)["/world/points"], "Points3D:positions")
    assert [len(p) for p in positions] == [50] * 5


def test_view_errors_are_one_line(tmp_path, capsys, monkeypatch):
    assert cli.main(["view", str(tmp_path / "missing")]) == 2
    assert "no saved World4D" in capsys.readouterr().err
    _world().save(tmp_path / "out", formats=("npz",))
    assert cli.main(["view", str(tmp_path / "out"), "--save", str(tmp_path / "x.txt")]) == 2
    assert "expects a .rrd file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "rerun", None)  # as if rerun-sdk were not installed
    assert cli.main(["view", str(tmp_path / "out"), "--save", str(tmp_path / "x.rrd")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'aether[rerun]'" in err and len(err.strip().splitlines()) == 1
