"""Benchmark reports: JSON, a markdown table with the paper's AETHER numbers beside ours, plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aether.evaluation.names import direction_arrow

# The paper's numbers: Table 1 (video depth, per alignment), Table 2 (camera pose), and the VBench
# weighted averages of Tables 3-4 (on the paper's own prompt set, as fractions; with and without
# the action); camera control as the field reports it; by (benchmark, dataset or None for any,
# variant or None).
PAPER_NUMBERS: dict[tuple[str, str | None, str | None], dict[str, dict[str, float]]] = {
    ("video-depth", "sintel", "scale"): {"AETHER (paper)": {"abs_rel": 0.324, "delta_1_25": 0.502}},
    ("video-depth", "bonn", "scale"): {"AETHER (paper)": {"abs_rel": 0.273, "delta_1_25": 0.594}},
    ("video-depth", "kitti", "scale"): {"AETHER (paper)": {"abs_rel": 0.056, "delta_1_25": 0.978}},
    ("video-depth", "sintel", "scale&shift"): {"AETHER (paper)": {"abs_rel": 0.314, "delta_1_25": 0.604}},
    ("video-depth", "bonn", "scale&shift"): {"AETHER (paper)": {"abs_rel": 0.308, "delta_1_25": 0.602}},
    ("video-depth", "kitti", "scale&shift"): {"AETHER (paper)": {"abs_rel": 0.054, "delta_1_25": 0.977}},
    ("camera-pose", "sintel", None): {"AETHER (paper)": {"ate": 0.189, "rpe_trans": 0.054, "rpe_rot": 0.694}},
    ("camera-pose", "tum", None): {"AETHER (paper)": {"ate": 0.092, "rpe_trans": 0.012, "rpe_rot": 1.106}},
    ("camera-pose", "scannet", None): {
        "AETHER (paper)": {"ate": 0.176, "rpe_trans": 0.028, "rpe_rot": 1.204}
    },
    # CamI2V's README and evaluation code (RealEstate10K, 16 frames at 256x256; RotErr in radians)
    ("camera-control", "realestate10k", None): {
        "CamI2V (its paper)": {"rot_err": 0.4120, "trans_err": 1.3409, "cammc": 1.5291},
        "CameraCtrl (CamI2V's paper)": {"rot_err": 0.7064, "trans_err": 1.9379, "cammc": 2.3070},
    },
    ("prediction", None, "no action"): {
        "AETHER (paper, its VBench set)": {"total": 0.8004},
        "CogVideoX (paper, its VBench set)": {"total": 0.7851},
    },
    ("prediction", None, "action"): {
        "AETHER (paper, its VBench set)": {"total": 0.8071},
        "CogVideoX (paper, its VBench set)": {"total": 0.7992},
    },
}


def paper_rows(benchmark: str, dataset: str, variant: str | None = None) -> dict[str, dict[str, float]]:
    """The paper's rows for a benchmark on a dataset ({label: {metric: value}}; empty if none)."""
    for key in ((benchmark, dataset, variant), (benchmark, None, variant), (benchmark, dataset, None)):
        if key in PAPER_NUMBERS:
            return PAPER_NUMBERS[key]
    return {}


def _fmt(v: Any) -> str:
    if v is None:
        return "missing"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float):
        return "inf" if math.isinf(v) else f"{v:.4f}"
    return str(v)


def markdown_table(result: Mapping[str, Any]) -> str:
    """Per-sequence rows, the mean, the baselines, and the paper's rows (or a line saying the paper
    reports none for this dataset), then the protocol and every setting departing from it."""
    keys = [k for k in result["mean"] if not isinstance(result["mean"][k], Mapping)]
    arrows = [f"{k} {direction_arrow(k)}" for k in keys]
    settings = result.get("settings", {})
    lines = [
        f"### {result['benchmark']} on {result['dataset']}"
        + (f" ({settings['align']})" if "align" in settings else ""),
        "",
        "| sequence | " + " | ".join(arrows) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for name, row in result["per_sequence"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    lines.append("| **mean (ours)** | " + " | ".join(f"**{_fmt(result['mean'][k])}**" for k in keys) + " |")
    for label, row in (result.get("baselines") or {}).items():
        lines.append(
            f"| {label} (baseline) | " + " | ".join(_fmt(row[k]) if k in row else "–" for k in keys) + " |"
        )
    paper = result.get("paper") or {}
    for label, row in paper.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(row[k]) if k in row else "–" for k in keys) + " |")
    if not paper:
        lines.append("| paper | " + " | ".join("not reported" for _ in keys) + " |")
    skipped = result.get("skipped") or {}
    if skipped:
        lines += [
            "",
            "Skipped (not in the mean): " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + ".",
        ]
    reasons = settings.get("missing_reasons") or {}
    missing = [k for k in keys if result["mean"][k] is None]
    if missing:
        why = [f"{k}: {reasons.get(k, 'no value was computed for any sequence')}" for k in missing]
        lines += ["", "Missing: " + "; ".join(why) + "."]
    if "protocol" in settings:
        departures = settings.get("departures") or {}
        lines += [
            "",
            f"Protocol: {settings['protocol']}"
            + (
                f" ({settings['model_run']['source']})"
                if "source" in (settings.get("model_run") or {})
                else ""
            )
            + "; departures: "
            + (", ".join(f"{k}={v}" for k, v in departures.items()) if departures else "none"),
        ]
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
        for label, row in (result.get("paper") or {}).items():
            if k in row:
                ax.axhline(row[k], color="tab:red", ls=":", lw=1, label=label)
        ax.set_ylabel(k)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


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
    _write_atomic(paths["json"], json.dumps(_jsonable(result), indent=2) + "\n")
    _write_atomic(paths["markdown"], markdown_table(result))
    if plots:
        plot_per_sequence(result, paths["plot"])
    return paths
