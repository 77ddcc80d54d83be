"""Pictures of evaluated clips: depth frames, trajectories and generated frames (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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
    """Input frames, true depth and predicted depth (scale-aligned, same colour range) of a few frames.

    pred, gt: (T,H,W) depth; valid: (T,H,W) bool; rgb: (T,H,W,3) in [0,1].
    """
    import matplotlib.pyplot as plt

    idx = _frames(gt.shape[0])
    scale = np.median(gt[valid]) / max(np.median(pred[valid]), 1e-9) if valid.any() else 1.0
    disp_gt = np.where(valid, 1.0 / np.maximum(gt, 1e-6), 0.0)
    disp_pred = 1.0 / np.maximum(pred * scale, 1e-6)
    vmax = float(np.percentile(disp_gt[valid], 99)) if valid.any() else 1.0
    fig, axes = _figure(3, len(idx))
    for j, t in enumerate(idx):
        axes[0, j].imshow(np.clip(rgb[t], 0, 1))
        axes[0, j].set_title(f"frame {t}", fontsize=8)
        axes[1, j].imshow(disp_gt[t], cmap="Spectral", vmin=0, vmax=vmax)
        axes[2, j].imshow(disp_pred[t], cmap="Spectral", vmin=0, vmax=vmax)
    axes[1, 0].text(-0.1, 0.5, "true", transform=axes[1, 0].transAxes, rotation=90, va="center", ha="right")
    axes[2, 0].text(
        -0.1, 0.5, "predicted", transform=axes[2, 0].transAxes, rotation=90, va="center", ha="right"
    )
    fig.suptitle("inverse depth: input, true, predicted (per-sequence scale)", fontsize=9)
    fig.tight_layout()
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
    root: Path, task: str, result: Any, batch: dict[str, Any], index: int, prefix: str
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
