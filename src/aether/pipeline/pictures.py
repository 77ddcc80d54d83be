"""Pictures of a result for people: one frame's colour beside its depth, large enough to read, with a
colour bar ticked in depth and a badge when the model's weights are random."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

MIN_PANEL_WIDTH = 240
"""Each panel is drawn at least this wide (nearest upsampling), so a picture is at least 480 px wide."""
RANDOM_WEIGHTS_BADGE = "RANDOM WEIGHTS (aether tiny-model): outputs are noise"


def depth_picture(
    path: str | os.PathLike,
    rgb: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    near_far: tuple[float, float],
    *,
    title: str,
    badge: str | None = None,
) -> Path:
    """Write a PNG of ``rgb`` (H, W, 3) uint8 beside ``depth`` (H, W) coloured as every depth picture
    and video of a result (:func:`aether.pipeline.export.colorize_depth`: inverse depth over
    [1/far, 1/near], invalid pixels black), written atomically.

    Frames narrower than :data:`MIN_PANEL_WIDTH` are upsampled by an integer factor with nearest
    neighbours (pixels stay pixels). The colour bar is ticked in depth (scene units: the model's unit,
    1 = the clip's nearest point for a model trained on normalised depth) with ``near_far`` its ends
    (:func:`aether.pipeline.export.depth_range`: the 1st and 99th percentile of the clip's valid
    depth). ``badge`` is printed in red above the panels (e.g. :data:`RANDOM_WEIGHTS_BADGE`).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure

    from aether.pipeline.export import colorize_depth, colormap_lut

    height, width = depth.shape
    if rgb.shape != (height, width, 3) or valid.shape != depth.shape:
        raise ValueError(
            f"expected rgb (H, W, 3) and valid (H, W) for depth {depth.shape}, "
            f"got {rgb.shape} and {valid.shape}"
        )
    scale = max(1, math.ceil(MIN_PANEL_WIDTH / width))
    pw, ph = width * scale, height * scale
    colour = colorize_depth(depth[None], valid[None], near_far, legend=False)[0]
    up = np.ones((scale, scale, 1), np.uint8)
    panels = (np.kron(rgb, up), np.kron(colour, up))  # nearest upsampling, exact
    margin, gap, bar, right = 12, 12, 16, 150
    top = 48 + (26 if badge else 0)
    fig_w, fig_h = margin + 2 * pw + gap + gap + bar + right, top + ph + margin
    dpi = 100
    fig = Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
    fig.patch.set_facecolor("white")

    def axes(x: float, w: float):
        return fig.add_axes((x / fig_w, margin / fig_h, w / fig_w, ph / fig_h))

    near, far = near_far
    names = ("colour", "depth (near = top of the bar)")
    for i, (image, name) in enumerate(zip(panels, names)):
        ax = axes(margin + i * (pw + gap), pw)
        ax.imshow(image, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(name, fontsize=10, pad=4)
    note = "colour bar: the clip's 1st to 99th depth percentile"
    fig.text(margin / fig_w, 1 - 8 / fig_h, f"{title}   ({note})", fontsize=10, va="top")
    if badge:
        fig.text(margin / fig_w, 1 - 32 / fig_h, badge, fontsize=10, va="top", color="#c00000", weight="bold")
    cax = axes(margin + 2 * pw + 2 * gap, bar)
    inverse = Normalize(1 / max(far, 1e-12), 1 / max(near, 1e-12))
    cmap = ListedColormap(colormap_lut("Spectral") / 255.0)
    colorbar = fig.colorbar(ScalarMappable(norm=inverse, cmap=cmap), cax=cax)
    ticks = np.linspace(inverse.vmin, inverse.vmax, 5)
    colorbar.set_ticks(ticks, labels=[f"{1 / t:.3g}" for t in ticks])
    colorbar.ax.tick_params(labelsize=9)
    colorbar.set_label("depth (scene units)", fontsize=9)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=dpi)
    tmp.replace(path)
    return path
