"""Benchmark reports: JSON, a markdown table with the paper's AETHER numbers beside ours, plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# The AETHER numbers the paper states in its text, by (benchmark, dataset).
PAPER_NUMBERS: dict[tuple[str, str], dict[str, float]] = {
    ("camera-pose", "sintel"): {"ate": 0.189, "rpe_trans": 0.054, "rpe_rot": 0.694},
    ("camera-pose", "tum"): {"rpe_trans": 0.012},
}
LOWER_IS_BETTER = {"abs_rel", "ate", "rpe_trans", "rpe_rot", "lpips"}


def _fmt(v: Any) -> str:
    if v is None:
        return "missing"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float):
        return "inf" if math.isinf(v) else f"{v:.4f}"
    return str(v)


def markdown_table(result: Mapping[str, Any]) -> str:
    """Per-sequence rows, the mean, and the paper's AETHER row where it states numbers."""
    keys = list(result["mean"])
    arrows = [f"{k} {'↓' if k in LOWER_IS_BETTER else '↑'}" for k in keys]
    lines = [
        f"### {result['benchmark']} on {result['dataset']}"
        + (f" ({result['settings']['align']})" if "align" in result.get("settings", {}) else ""),
        "",
        "| sequence | " + " | ".join(arrows) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for name, row in result["per_sequence"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    lines.append("| **mean (ours)** | " + " | ".join(f"**{_fmt(result['mean'][k])}**" for k in keys) + " |")
    paper = result.get("paper") or {}
    if paper:
        lines.append(
            "| AETHER (paper) | " + " | ".join(_fmt(paper[k]) if k in paper else "–" for k in keys) + " |"
        )
    return "\n".join(lines) + "\n"


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def plot_per_sequence(result: Mapping[str, Any], path: Path) -> None:
    """One bar chart per metric over the sequences."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        k
        for k in result["mean"]
        if isinstance(result["mean"][k], int | float) and math.isfinite(result["mean"][k])
    ]
    names = list(result["per_sequence"])
    if not keys or not names:
        return
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(max(4.0, 0.5 * len(names) + 2), 2.2 * len(keys)), squeeze=False
    )
    for ax, k in zip(axes[:, 0], keys):
        vals = [result["per_sequence"][n].get(k) for n in names]
        ax.bar(range(len(names)), [np.nan if v is None else float(v) for v in vals], color="tab:blue")
        ax.axhline(result["mean"][k], color="k", ls="--", lw=1, label="mean")
        if k in (result.get("paper") or {}):
            ax.axhline(result["paper"][k], color="tab:red", ls=":", lw=1, label="AETHER (paper)")
        ax.set_ylabel(k)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(result: Mapping[str, Any], out_dir: str | Path, plots: bool = True) -> dict[str, Path]:
    """Write ``<benchmark>_<dataset>.json``, ``.md`` and (with ``plots``) ``_per_sequence.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result['benchmark']}_{result['dataset']}"
    paths = {
        "json": out / f"{stem}.json",
        "markdown": out / f"{stem}.md",
        "plot": out / f"{stem}_per_sequence.png",
    }
    paths["json"].write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    paths["markdown"].write_text(markdown_table(result))
    if plots:
        plot_per_sequence(result, paths["plot"])
    return paths
