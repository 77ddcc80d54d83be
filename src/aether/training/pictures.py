"""Pictures of evaluated clips: depth frames, trajectories and generated frames (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aether.data.batch import ClipBatch
from aether.visualize import plot_against_truth

FRAMES_SHOWN = 5


def _frames(num_frames: int, count: int = FRAMES_SHOWN) -> list[int]:
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(count, num_frames))})


def _figure(rows: int, cols: int, size: float = 1.8) -> tuple[Any, np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cols * size * 1.5, rows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def depth_figure(path: Path, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, rgb: np.ndarray) -> Path:
    """Input frames, true depth and predicted depth (scaled by the median ratio) of a few frames, both
    depth rows coloured as every depth picture (:func:`aether.visualize.colorize_depth` over the
    true depth's 1st to 99th percentile) with one colour bar ticked in depth.

    pred, gt: (T,H,W) depth; valid: (T,H,W) bool; rgb: (T,H,W,3) in [0,1].
    """
    import matplotlib.pyplot as plt

    from aether.visualize import colorize_depth, depth_colorbar, depth_range

    idx = _frames(gt.shape[0])
    scale = np.median(gt[valid]) / max(np.median(pred[valid]), 1e-9) if valid.any() else 1.0
    near_far = depth_range(gt, valid)
    scaled = pred[idx] * scale
    rows = (
        ("input", np.clip(rgb[idx], 0, 1)),
        ("true", colorize_depth(gt[idx], valid[idx], near_far, legend=False)),
        ("predicted", colorize_depth(scaled, np.isfinite(scaled) & (scaled > 0), near_far, legend=False)),
    )
    fig, axes = _figure(3, len(idx))
    for r, (name, images) in enumerate(rows):
        for j, t in enumerate(idx):
            axes[r, j].imshow(images[j], interpolation="nearest")
            if r == 0:
                axes[r, j].set_title(f"frame {t}", fontsize=8)
        axes[r, 0].text(-0.1, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right")
    fig.suptitle("depth: input, true, predicted (scaled by the median ratio)", fontsize=9)
    fig.subplots_adjust(left=0.05, right=0.86, top=0.88, bottom=0.03, wspace=0.05, hspace=0.12)
    low, high = axes[2, -1].get_position(), axes[1, -1].get_position()
    depth_colorbar(fig, fig.add_axes((0.88, low.y0, 0.015, high.y1 - low.y0)), near_far)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def trajectory_figure(path: Path, pred_c2w: np.ndarray, gt_c2w: np.ndarray) -> Path:
    """The true and the Sim(3)-aligned predicted camera paths (a static prediction stays as it is)."""
    return plot_against_truth(path, pred_c2w, gt_c2w)


def frames_figure(path: Path, pred: np.ndarray, gt: np.ndarray, title: str) -> Path:
    """True frames above generated frames; pred, gt (T,H,W,3) in [0,1]."""
    import matplotlib.pyplot as plt

    idx = _frames(gt.shape[0])
    fig, axes = _figure(2, len(idx))
    for j, t in enumerate(idx):
        axes[0, j].imshow(np.clip(gt[t], 0, 1))
        axes[0, j].set_title(f"frame {t}", fontsize=8)
        axes[1, j].imshow(np.clip(pred[t], 0, 1))
    axes[0, 0].text(-0.1, 0.5, "true", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right")
    axes[1, 0].text(
        -0.1, 0.5, "generated", transform=axes[1, 0].transAxes, rotation=90, va="center", ha="right"
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def task_pictures(
    root: Path, task: str, result: Any, batch: ClipBatch, index: int, prefix: str
) -> list[Path]:
    """The pictures of one evaluated task on clip ``index`` of ``batch`` (as the task's ``scored_on``
    says: depth and trajectory, or generated frames titled with its ``description``); returns their
    paths."""
    from aether.tasks import TASKS

    spec = TASKS.get(task)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rgb = ((batch["video"][index].float().cpu() + 1) / 2).permute(0, 2, 3, 1).numpy()
    if spec.scored_on == "geometry":
        paths = []
        if "depth" in result.outputs:  # models with a disparity target
            depth = batch["depth"][index].float().cpu().numpy()
            valid = (batch["valid"][index].cpu() & (batch["depth"][index].cpu() > 0)).numpy()
            path = root / f"{prefix}_{task}_depth.png"
            paths.append(depth_figure(path, result.outputs["depth"], depth, valid, rgb))
        if "c2w" in result.outputs:  # models with a raymap target
            path = root / f"{prefix}_{task}_trajectory.png"
            paths.append(trajectory_figure(path, result.outputs["c2w"], batch["c2w"][index].cpu().numpy()))
        return paths
    return [frames_figure(root / f"{prefix}_{task}_frames.png", result.outputs["rgb"], rgb, spec.description)]
