"""Shared pictures: trajectory plots."""

import numpy as np
import pytest
from PIL import Image

from aether.visualize import plot_trajectories


def _circle(n: int, radius: float) -> np.ndarray:
    angle = np.linspace(0, np.pi, n)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3], c2w[:, 2, 3] = radius * np.cos(angle), radius * np.sin(angle)
    return c2w


def test_writes_a_png_with_one_or_several_paths(tmp_path):
    one = plot_trajectories(tmp_path / "one.png", {"camera": _circle(12, 1.0)})
    two = plot_trajectories(tmp_path / "two.png", {"true": _circle(12, 1.0), "predicted": _circle(12, 1.1)})
    for path in (one, two):
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape == (460, 1000, 3)
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # something was drawn
    assert not np.array_equal(np.asarray(Image.open(one)), np.asarray(Image.open(two)))


def test_rejects_non_pose_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"expected c2w of shape \(T, 4, 4\), got \(5, 3, 4\)"):
        plot_trajectories(tmp_path / "bad.png", {"camera": np.zeros((5, 3, 4))})


def test_every_mark_is_explained(tmp_path, monkeypatch):
    """The legend says what the lines, dots and arrows are; a colour bar says what the dots' colour is."""
    from matplotlib.figure import Figure

    seen = {}
    save = Figure.savefig

    def record(fig, *args, **kwargs):
        seen["legend"] = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        seen["labels"] = [ax.get_ylabel() for ax in fig.axes]
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    plot_trajectories(tmp_path / "two.png", {"requested": _circle(12, 1.0), "generated": _circle(12, 1.1)})
    assert seen["legend"] == [
        "path: requested",
        "path: generated",
        "dots: requested camera centres, coloured by frame",
        "arrows: requested viewing direction (camera z axis)",
    ]
    assert "frame" in seen["labels"] and "z (scene units)" in seen["labels"]
