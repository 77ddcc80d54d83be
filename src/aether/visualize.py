"""Pictures shared by every command that makes cameras or depth (numpy in, PNG out, matplotlib Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["plot_against_truth", "plot_trajectories"]

_STYLES = ("k", "tab:red", "tab:blue", "tab:green")


def plot_trajectories(
    path: str | os.PathLike,
    trajectories: Mapping[str, np.ndarray],
    title: str = "camera trajectory",
) -> Path:
    """PNG of camera paths seen from the top (x-z) and the side (z-y), y pointing down (OpenCV).

    Args:
        path: the PNG to write.
        trajectories: label -> c2w (T,4,4), drawn in order; the first one also shows its frame
            order (colour) and viewing directions (arrows), so pass the reference path first.
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
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (i, j) in zip(axes, [(0, 2), (2, 1)]):
        for (name, c2w), color in zip(paths.items(), _STYLES):
            ax.plot(c2w[:, :3, 3][:, i], c2w[:, :3, 3][:, j], "-", color=color, lw=1, label=name)
        ax.scatter(
            centres[:, i], centres[:, j], c=np.arange(len(first)), cmap="viridis", s=12, zorder=3,
            label=f"{next(iter(paths))}: frames (dark = first)",
        )  # fmt: skip
        ax.quiver(
            centres[:, i], centres[:, j], forward[:, i], forward[:, j],
            angles="xy", scale_units="xy", scale=5.0 / extent, width=0.004, color="tab:orange", alpha=0.6,
            label=f"{next(iter(paths))}: viewing direction",
        )  # fmt: skip
        ax.set_xlabel("xyz"[i])
        ax.set_ylabel("xyz"[j])
        ax.set_aspect("equal", adjustable="datalim")
        if j == 1:
            ax.invert_yaxis()
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
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
