"""The benchmark's per-sequence depth picture: depth panels over the range every depth picture uses."""

import numpy as np


def test_depth_panels_share_the_percentile_range_with_labelled_bars(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from aether.evaluation.pictures import depth_pictures
    from aether.visualize import depth_range

    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 50.0, (3, 8, 12))
    seen = {}
    save = Figure.savefig

    def record(fig, *args, **kwargs):
        seen["bars"] = [(ax.get_ylabel(), ax.get_ylim()) for ax in fig.axes if ax.get_ylabel()]
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    stats = {"scale": 1.0, "shift": 0.0, "abs_rel": 0.0, "delta_1_25": 1.0}
    depth_pictures(tmp_path / "p.png", np.zeros((3, 8, 12, 3), np.uint8), gt, 1.1 * gt, stats)
    near, far = depth_range(gt, gt > 0)
    depth_bars = [lim for label, lim in seen["bars"] if label == "depth (m)"]
    assert len(depth_bars) == 6 and all(np.allclose(lim, (near, far)) for lim in depth_bars)
    assert sum(label == "abs rel" for label, _ in seen["bars"]) == 3
