"""Annotation pipeline benchmark: seconds per stage for a 41-frame 480x720 clip on CPU, and the
camera accuracy table against the synthetic generator's ground truth.

Run: ``.venv/bin/python benchmarks/bench_annotate.py`` → ``benchmarks/results/annotate.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from aether.annotate import Annotator, ClipInput
from aether.data.synthetic import render_clip

OUT = Path(__file__).parent / "results" / "annotate.json"
TRAJECTORIES = ("forward", "strafe", "orbit", "turn", "handheld")


def stage_timing() -> dict:
    clip = render_clip(0, num_frames=41, height=480, width=720, trajectory="forward")
    runs = {}
    for estimate in (False, True):
        start = time.perf_counter()
        _, report = Annotator(estimate_intrinsics=estimate).annotate(ClipInput.from_synthetic(clip, "timing"))
        total = time.perf_counter() - start
        runs["estimated_K" if estimate else "known_K"] = {
            "seconds": {k: round(v, 3) for k, v in report["seconds"].items()},
            "total_seconds": round(total, 3),
            "slices": [s["frames"] for s in report["slices"]],
            "tracks": [s["tracks"] for s in report["slices"]],
            "reprojection_px": [s["reprojection_px"] for s in report["slices"]],
            "ground_truth": [s["ground_truth"] for s in report["slices"]],
        }
    return {"clip": {"frames": 41, "height": 480, "width": 720, "trajectory": "forward", "seed": 0}, **runs}


def accuracy_table(seeds=(0, 1, 2), frames: int = 25, height: int = 120, width: int = 160) -> dict:
    rows = []
    for trajectory in TRAJECTORIES:
        for seed in seeds:
            clip = render_clip(seed, num_frames=frames, height=height, width=width, trajectory=trajectory)
            for estimate in (False, True):
                _, report = Annotator(estimate_intrinsics=estimate).annotate(
                    ClipInput.from_synthetic(clip, f"{trajectory}{seed}")
                )
                for s in report["slices"]:
                    gt = s["ground_truth"]
                    rows.append(
                        {
                            "trajectory": trajectory,
                            "seed": seed,
                            "scene": clip.meta["scene"],
                            "intrinsics": "estimated" if estimate else "known",
                            "frames": s["frames"],
                            "trajectory_length": gt["trajectory_length"],
                            "ate_rel": gt["refined_ate_rel"],
                            "coarse_ate_rel": gt["coarse_ate_rel"],
                            "rpe_rot_deg": gt["refined_rpe_rot_deg"],
                            "coarse_rpe_rot_deg": gt["coarse_rpe_rot_deg"],
                            "focal_rel_err": gt["refined_focal_rel_err"],
                            "reproj_median_px": [
                                s["reprojection_px"]["coarse"]["median"],
                                s["reprojection_px"]["refined"]["median"],
                            ],
                        }
                    )
    summary = {}
    for trajectory in TRAJECTORIES:
        known = [r for r in rows if r["trajectory"] == trajectory and r["intrinsics"] == "known"]
        est = [r for r in rows if r["trajectory"] == trajectory and r["intrinsics"] == "estimated"]
        ate = [r["ate_rel"] for r in known if r["trajectory_length"] > 0]
        summary[trajectory] = {
            "ate_rel_max": max(ate) if ate else None,
            "rpe_rot_deg_max": max(r["rpe_rot_deg"] for r in known),
            "focal_rel_err_max": max(r["focal_rel_err"] for r in est),
            "refinement_lowers_reprojection": all(
                r["reproj_median_px"][1] < r["reproj_median_px"][0]
                for r in rows
                if r["trajectory"] == trajectory
            ),
        }
    return {
        "setting": {"frames": frames, "height": height, "width": width, "seeds": list(seeds)},
        "summary": summary,
        "rows": rows,
    }


def main() -> None:
    torch.set_num_threads(1)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "device": "cpu",
        },
        "stage_seconds_41x480x720": stage_timing(),
        "accuracy": accuracy_table(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=float))
    print(
        json.dumps(
            {"stages": result["stage_seconds_41x480x720"], "summary": result["accuracy"]["summary"]},
            indent=1,
            default=float,
        )
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
