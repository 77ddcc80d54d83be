"""Pictures shared by every command that makes cameras or depth (numpy in, PNG out, matplotlib Agg),
made for people: large enough to read, every mark explained, colour bars ticked in depth with units."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "RANDOM_WEIGHTS_BADGE",
    "depth_colorbar",
    "depth_picture",
    "plot_against_truth",
    "plot_trajectories",
    "upsample_nearest",
]

_STYLES = ("k", "tab:red", "tab:blue", "tab:green")
MIN_PANEL_WIDTH = 240
"""Each panel is drawn at least this wide (nearest upsampling), so a picture is at least 480 px wide."""
RANDOM_WEIGHTS_BADGE = "RANDOM WEIGHTS (aether tiny-model): outputs are noise"


def upsample_nearest(image: np.ndarray, scale: int) -> np.ndarray:
    """``image`` (..., H, W, C) enlarged ``scale`` times with nearest neighbours (each pixel a block)."""
    return np.repeat(np.repeat(image, scale, axis=-3), scale, axis=-2)


def depth_colorbar(
    fig: Any, cax: Any, near_far: tuple[float, float], label: str = "depth (scene units)"
) -> Any:
    """Draw on ``cax`` the colour bar of :func:`aether.visualize.colorize_depth` over ``near_far``:
    linear in inverse depth (near on top), ticked in depth."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    near, far = near_far
    inverse = Normalize(1 / max(far, 1e-12), 1 / max(near, 1e-12))
    cmap = ListedColormap(colormap_lut("Spectral") / 255.0)
    colorbar = fig.colorbar(ScalarMappable(norm=inverse, cmap=cmap), cax=cax)
    ticks = np.linspace(inverse.vmin, inverse.vmax, 5)
    colorbar.set_ticks(ticks, labels=[f"{1 / t:.3g}" for t in ticks])
    colorbar.ax.tick_params(labelsize=8)
    colorbar.set_label(label, fontsize=9)
    return colorbar


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
    and video of a result (:func:`aether.visualize.colorize_depth`: inverse depth over
    [1/far, 1/near], invalid pixels black), written atomically.

    Frames narrower than :data:`MIN_PANEL_WIDTH` are upsampled by an integer factor with nearest
    neighbours (pixels stay pixels). The colour bar is ticked in depth (scene units: the model's unit,
    1 = the clip's nearest point for a model trained on normalised depth) with ``near_far`` its ends
    (:func:`aether.visualize.depth_range`: the 1st and 99th percentile of the clip's valid
    depth). ``badge`` is printed in red above the panels (e.g. :data:`RANDOM_WEIGHTS_BADGE`).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    height, width = depth.shape
    if rgb.shape != (height, width, 3) or valid.shape != depth.shape:
        raise ValueError(
            f"expected rgb (H, W, 3) and valid (H, W) for depth {depth.shape}, "
            f"got {rgb.shape} and {valid.shape}"
        )
    scale = max(1, math.ceil(MIN_PANEL_WIDTH / width))
    pw, ph = width * scale, height * scale
    colour = colorize_depth(depth[None], valid[None], near_far, legend=False)[0]
    panels = (upsample_nearest(rgb, scale), upsample_nearest(colour, scale))
    margin, gap, bar, right = 12, 12, 16, 150
    top = 48 + (26 if badge else 0)
    fig_w, fig_h = margin + 2 * pw + gap + gap + bar + right, top + ph + margin
    dpi = 100
    fig = Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
    fig.patch.set_facecolor("white")

    def axes(x: float, w: float):
        return fig.add_axes((x / fig_w, margin / fig_h, w / fig_w, ph / fig_h))

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
    depth_colorbar(fig, axes(margin + 2 * pw + 2 * gap, bar), near_far)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=dpi)
    tmp.replace(path)
    return path


def plot_trajectories(
    path: str | os.PathLike,
    trajectories: Mapping[str, np.ndarray],
    title: str = "camera trajectory",
) -> Path:
    """PNG of camera paths seen from the top (x-z) and the side (z-y), y pointing down (OpenCV).

    Args:
        path: the PNG to write.
        trajectories: label -> c2w (T,4,4), drawn in order as lines; the first one also shows its
            camera centres (dots coloured by frame, with a colour bar) and viewing directions (arrows),
            so pass the reference path first. A legend below the views says what each mark is.
        title: the figure title.

    Returns:
        ``path`` as a Path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {name: np.asarray(c2w, dtype=np.float64) for name, c2w in trajectories.items()}
    for name, c2w in paths.items():
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
            raise ValueError(f"trajectory {name!r}: expected c2w of shape (T, 4, 4), got {c2w.shape}")
    first = next(iter(paths.values()))
    centres, forward = first[:, :3, 3], first[:, :3, 2]
    extent = max(float(np.ptp(centres, axis=0).max()), 1e-6)
    first_name = next(iter(paths))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    views = ("top view (x right, z forward)", "side view (z forward, y down)")
    for ax, (i, j), view in zip(axes, [(0, 2), (2, 1)], views):
        for (name, c2w), color in zip(paths.items(), _STYLES):
            ax.plot(c2w[:, :3, 3][:, i], c2w[:, :3, 3][:, j], "-", color=color, lw=1, label=f"path: {name}")
        dots = ax.scatter(
            centres[:, i], centres[:, j], c=np.arange(len(first)), cmap="viridis", s=12, zorder=3,
            label=f"dots: {first_name} camera centres, coloured by frame",
        )  # fmt: skip
        ax.quiver(
            centres[:, i], centres[:, j], forward[:, i], forward[:, j],
            angles="xy", scale_units="xy", scale=5.0 / extent, width=0.004, color="tab:orange", alpha=0.6,
            label=f"arrows: {first_name} viewing direction (camera z axis)",
        )  # fmt: skip
        ax.set_title(view, fontsize=10)
        ax.set_xlabel(f"{'xyz'[i]} (scene units)")
        ax.set_ylabel(f"{'xyz'[j]} (scene units)")
        ax.set_aspect("equal", adjustable="datalim")
        if j == 1:
            ax.invert_yaxis()
        ax.grid(alpha=0.3)
    fig.colorbar(dots, cax=fig.add_axes((0.9, 0.27, 0.015, 0.59)), label="frame")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.86, top=0.86, bottom=0.27, wspace=0.35)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_against_truth(
    path: str | os.PathLike,
    c2w: np.ndarray,
    true_c2w: np.ndarray,
    label: str = "predicted",
    title: str = "camera trajectory",
) -> Path:
    """:func:`plot_trajectories` of the true path (T, 4, 4) and ``c2w`` (T, 4, 4) Sim(3)-aligned onto
    it (a static ``c2w`` is drawn as it is: no alignment scale exists)."""
    import torch

    from aether.geometry.alignment import align_trajectory_sim3

    true = torch.as_tensor(np.asarray(true_c2w), dtype=torch.float64)
    pred = torch.as_tensor(np.asarray(c2w), dtype=torch.float64)
    moving = float(pred[:, :3, 3].var(0).sum()) > 1e-20
    aligned = align_trajectory_sim3(pred, true).numpy() if moving else pred.numpy()
    return plot_trajectories(path, {"true": true.numpy(), f"{label} (Sim(3)-aligned)": aligned}, title)


def colorize(
    values: np.ndarray,
    valid: np.ndarray | None = None,
    cmap: str = "Spectral",
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Map values (...,) to uint8 RGB (..., 3) with a matplotlib colormap: ``value_range`` (lo, hi) to
    the colormap's ends (default: the 1st and 99th percentile of the valid values); invalid pixels
    are black."""
    values = np.asarray(values, dtype=np.float32)
    valid = np.isfinite(values) if valid is None else (valid & np.isfinite(values))
    out = np.zeros((*values.shape, 3), np.uint8)
    if not valid.any():
        return out
    lo, hi = np.percentile(values[valid], [1, 99]) if value_range is None else value_range
    norm = np.clip((values - lo) / max(hi - lo, 1e-12), 0, 1)
    out[valid] = colormap_lut(cmap)[(norm[valid] * 255).astype(np.int64)]
    return out


def colormap_lut(cmap: str) -> np.ndarray:
    """The 256-entry uint8 RGB table (256, 3) of a matplotlib colormap, low values first."""
    import matplotlib

    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def depth_range(depth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(near, far): the 1st and 99th percentile of the valid depth (``depth``, ``valid`` (...,)),
    the range every depth picture and video of a result is coloured over."""
    values = np.asarray(depth, dtype=np.float64)[np.asarray(valid, dtype=bool)]
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return 1.0, 1.0
    near, far = np.percentile(values, [1, 99])
    return float(near), float(far)


def colorize_depth(
    depth: np.ndarray,
    valid: np.ndarray,
    near_far: tuple[float, float] | None = None,
    cmap: str = "Spectral",
    legend: bool = True,
) -> np.ndarray:
    """Depth (T, H, W) as uint8 RGB (T, H, W + L, 3): inverse depth over [1/far, 1/near] (default
    ``near_far``: :func:`depth_range`) through ``cmap`` (near at the colormap's high end), invalid
    pixels black, with a :func:`depth_legend` strip L pixels wide on the right (``legend``)."""
    import torch

    from aether.geometry.depth import depth_to_disparity

    depth = np.asarray(depth, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(depth) & (depth > 0)
    near, far = depth_range(depth, valid) if near_far is None else near_far
    inverse = depth_to_disparity(torch.from_numpy(depth), torch.from_numpy(valid)).numpy()
    image = colorize(inverse, valid, cmap, (1 / max(far, 1e-12), 1 / max(near, 1e-12)))
    if not legend:
        return image
    strip = depth_legend(depth.shape[-2], (near, far), cmap)
    return np.concatenate([image, np.broadcast_to(strip, (*image.shape[:-3], *strip.shape))], axis=-2)


def legend_bar_width(height: int) -> int:
    """Width in pixels of the colour bar in a legend of ``height`` rows."""
    return max(4, height // 16)


def depth_legend(height: int, near_far: tuple[float, float], cmap: str = "Spectral") -> np.ndarray:
    """A colour bar with its near/far labels, uint8 (height, L, 3) on black.

    Columns [1, 1 + :func:`legend_bar_width`) are the bar: row r has the colormap entry
    ``255 - round(255 r / (height - 1))`` (near, the high end, on top; far at the bottom, linear in
    inverse depth as the picture is). Right of the bar, ``near`` and ``far`` are written at the top
    and bottom, and the unit ("scene units") below ``near`` when the strip has room for it.
    """
    from PIL import Image, ImageDraw, ImageFont

    near, far = near_far
    labels = (f"near {near:.3g}", f"far {far:.3g}", "scene units")
    font = ImageFont.load_default(size=max(8, min(24, height // 12)))
    text_w = max(int(np.ceil(font.getlength(text))) for text in labels) + 6
    bar_w = legend_bar_width(height)
    strip = Image.new("RGB", (1 + bar_w + text_w, height))
    draw = ImageDraw.Draw(strip)
    top = draw.textbbox((0, 0), labels[0], font=font)
    draw.text((bar_w + 3, -top[1]), labels[0], fill=(255, 255, 255), font=font)
    bottom = draw.textbbox((0, 0), labels[1], font=font)
    draw.text((bar_w + 3, height - bottom[3]), labels[1], fill=(255, 255, 255), font=font)
    line = top[3] - top[1]
    if height >= 5 * line:
        draw.text((bar_w + 3, 1.5 * line - top[1]), "scene units", fill=(200, 200, 200), font=font)
    out = np.array(strip)
    rows = 255 - np.rint(255 * np.arange(height) / max(height - 1, 1)).astype(np.int64)
    out[:, 1 : 1 + bar_w] = colormap_lut(cmap)[rows][:, None]
    return out


def frame_grid(
    path: str | os.PathLike,
    rows: Sequence[tuple[str, np.ndarray]],
    columns: Sequence[int],
    column_titles: Sequence[str],
    title: str,
    width_px: int = 960,
) -> Path:
    """A labelled grid of video frames as a PNG: one row per ``(label, frames (T, H, W, 3) in [0, 1])``,
    the frames ``columns`` of each, titled ``column_titles``; ``width_px`` wide (small frames are shown
    enlarged, pixels kept sharp)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = rows[0][1].shape[1:3]
    fig_w = width_px / 100
    fig, axes = plt.subplots(
        len(rows),
        len(columns),
        figsize=(fig_w, fig_w * len(rows) * height / (len(columns) * width) + 0.8),
        squeeze=False,
    )
    for r, (label, frames) in enumerate(rows):
        for c, t in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(np.clip(frames[t], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_titles[c], fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
