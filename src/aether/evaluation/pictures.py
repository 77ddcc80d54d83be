"""Depth pictures of a scored sequence: input, true depth, aligned prediction and its error map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aether.evaluation.depth_metrics import as_depth_tensor, resize_depth
from aether.visualize import depth_range


def depth_pictures(
    path: str | Path,
    rgb: np.ndarray,
    gt: Any,
    pred: Any,
    stats: dict[str, Any],
    max_depth: float | None = None,
    post_clip_max: float | None = None,
    num_frames: int = 3,
) -> Path:
    """Write one PNG: for the first, middle and last frame, the input (T,H,W,3) uint8, the true
    depth gt (T,H,W), the prediction (T,h,w) resized to gt and aligned with the sequence's
    ``stats["scale"]`` / ``stats["shift"]`` (clipped to ``post_clip_max``), and the absolute
    relative error on the valid pixels; one colour bar per panel, depth panels on a shared range: the
    true depth's 1st to 99th percentile (:func:`aether.visualize.depth_range`, as every depth
    picture), in metres (or the dataset's unit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = as_depth_tensor(gt, "gt").double()
    p = resize_depth(as_depth_tensor(pred, "pred"), tuple(g.shape[-2:])).double()
    p = stats["scale"] * p + stats["shift"]
    if post_clip_max is not None:
        p = p.clamp(max=post_clip_max)
    valid = (g > 0) & torch.isfinite(g)
    if max_depth is not None:
        valid &= g < max_depth
    err = torch.where(valid, (p - g).abs() / g.clamp_min(1e-12), torch.nan)
    g_show = torch.where(valid, g, torch.nan)
    lo, hi = depth_range(g.numpy(), valid.numpy())
    frames = sorted({0, len(g) // 2, len(g) - 1})[:num_frames]
    fig, axes = plt.subplots(len(frames), 4, figsize=(14, 2.8 * len(frames)), squeeze=False)
    err_hi = float(np.nanpercentile(err.numpy(), 99)) if bool(valid.any()) else 1.0
    for row, t in zip(axes, frames):
        panels = [
            ("input", rgb[t] if rgb is not None and len(rgb) == len(g) else None, None),
            ("true depth", g_show[t].numpy(), ("Spectral_r", lo, hi)),
            ("prediction (aligned)", p[t].numpy(), ("Spectral_r", lo, hi)),
            ("abs rel error", err[t].numpy(), ("magma", 0.0, err_hi)),
        ]
        for ax, (title, image, cmap) in zip(row, panels):
            ax.set_axis_off()
            ax.set_title(f"{title}, frame {t}", fontsize=8)
            if image is None:
                continue
            if cmap is None:
                ax.imshow(image)
                continue
            im = ax.imshow(image, cmap=cmap[0], vmin=cmap[1], vmax=cmap[2], interpolation="nearest")
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            bar.set_label("abs rel" if cmap[0] == "magma" else "depth (m)", fontsize=7)
    fig.suptitle(f"abs rel {stats['abs_rel']:.4f}, δ<1.25 {stats['delta_1_25']:.3f}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
    return path
