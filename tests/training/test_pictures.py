"""The training report's depth picture: both depth rows on one range, with a colour bar ticked in depth."""

import numpy as np


def test_depth_figure_has_a_depth_colour_bar(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from aether.training.pictures import depth_figure
    from aether.visualize import depth_range

    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 9.0, (5, 8, 12))
    valid = np.ones_like(gt, dtype=bool)
    seen = {}
    save = Figure.savefig

    def record(fig, *args, **kwargs):
        bars = [ax for ax in fig.axes if ax.get_ylabel() == "depth (scene units)"]
        seen["ticks"] = [t.get_text() for t in bars[0].get_yticklabels()] if bars else []
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    depth_figure(tmp_path / "d.png", 2 * gt, gt, valid, np.zeros((*gt.shape, 3)))
    near, far = depth_range(gt, valid)
    assert seen["ticks"][0] == f"{far:.3g}" and seen["ticks"][-1] == f"{near:.3g}"  # far at the bottom
    assert (tmp_path / "d.png").is_file()
