"""``aether bench camera-control``: do the cameras of generated videos follow the requested ones?

For every clip of a dataset with cameras (synthetic, RealEstate10K, clips), the scored video is
either the model's prediction from the clip's first frame along the clip's trajectory
(``source`` = :class:`~aether.evaluation.runners.PipelineSource`) or the clip's own video
(``source=None``: a sanity check, errors ≈ 0 up to recovery noise). Its cameras are recovered
(:func:`~aether.evaluation.camera_control.recover_cameras`) and scored against the requested
trajectory (:func:`~aether.evaluation.camera_control.camera_control_errors`). Beside it, with the
same recovery, the rows that bound the metric: the clip's own video, a static video (the first
frame copied), the clip's own video against the opposite request, and, with a model, the same
prediction sampled without a trajectory.

Depth for the annotation recovery (an RGB-D pipeline): ``depth="true"`` uses the clip's depth
(synthetic clips; for a generated video it is the depth the video has where it follows the request;
the static video gets the first frame's), ``"model"`` the depth the model decodes with a generated
video, or its reconstruction's for any other video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from aether.evaluation.camera_control import (
    aligned_paths,
    camera_control_errors,
    recover_cameras,
)
from aether.evaluation.datasets import EvalDataset, EvalSequence
from aether.evaluation.report import paper_rows
from aether.evaluation.runners import (
    BenchmarkSource,
    _sequences,
    gather_dicts,
    split_for_rank,
    to_uint8_video,
)
from aether.geometry import reverse_poses

DEPTHS = ("auto", "true", "model")
KEYS = ("rot_err", "rot_err_deg", "trans_err", "cammc")
ROWS = {
    "truth": "ground-truth video",
    "static": "static video (first frame copied)",
    "opposite": "ground-truth video, opposite request",
    "unconditioned": "prediction without trajectory",
}

__all__ = ["DEPTHS", "run_camera_control"]


def _generated(
    source: BenchmarkSource, seq: EvalSequence, trajectory: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's prediction of ``seq`` from its first frame (with or without its trajectory):
    video (T,H,W,3) uint8 at the model's size, its decoded depth (T,H,W) and the intrinsics (T,3,3)
    of the requested cameras at that size (the pipeline's resize and centre crop applied)."""
    from aether.pipeline.windows import cover_size

    pipe, rgb = source.pipe, seq.rgb()
    traj = source.trajectory(seq)
    if traj is None:
        raise ValueError("source: expected a PipelineSource with action=True (it passes the trajectories)")
    world = pipe.predict(
        rgb[0],
        trajectory=traj if trajectory else None,
        num_frames=len(rgb),
        seed=source.seed or 0,
        **source.steps,
    )
    H, W = pipe.height, pipe.width
    (h, w), K = rgb.shape[1:3], seq.K
    if (h, w) != (H, W):
        ch, cw = cover_size(h, w, H, W)
        K = traj.resized(ch, cw, ((ch - H) // 2, (cw - W) // 2, H, W)).K.numpy()
    return to_uint8_video(world.rgb), world.depth, K


def _scores(requested: np.ndarray, recovered: np.ndarray | str, align: str) -> dict[str, Any]:
    if isinstance(recovered, str):  # the recovery failed: the reason, NaN scores
        return {**dict.fromkeys(KEYS, float("nan")), "failed": recovered}
    return camera_control_errors(requested, recovered, align=align)


def _mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Means over sequences of each metric, leaving out NaN (a failed recovery, a static request)."""
    out = {}
    for k in KEYS:
        vals = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = float(vals[np.isfinite(vals)].mean()) if np.isfinite(vals).any() else float("nan")
    return out


def _recover(
    seq: EvalSequence, video: np.ndarray, K: np.ndarray, depth: np.ndarray | None, method: str, pipeline: Any
) -> np.ndarray | str:
    """The recovered cameras (T,4,4), or why the recovery failed (e.g. nothing to track)."""
    if depth is not None and depth.shape != video.shape[:3]:
        raise ValueError(
            f"{seq.name}: the clip's depth is {depth.shape[1:]}, the video {video.shape[1:3]}; true depth "
            "needs the clips at the model's size (--height/--width) or --recovery-depth model"
        )
    try:
        return recover_cameras(video, K, method, pipeline=pipeline, depth=depth, fps=seq.fps)
    except ValueError as err:
        return f"{type(err).__name__}: {err}"


def _score_sequence(
    seq: EvalSequence,
    source: BenchmarkSource,
    method: str,
    true_depth: np.ndarray | None,
    align: str,
    pipeline: Any,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray | str]]:
    """Scores of one clip per row ("main" and the keys of ``ROWS``) and the recovered paths.
    ``true_depth``: the clip's depth (T,H,W) for the annotation recovery, or None for the model's."""
    rgb = seq.rgb()
    first_depth = None if true_depth is None else np.repeat(true_depth[:1], len(rgb), 0)
    truth = _recover(seq, rgb, seq.K, true_depth, method, pipeline)
    static = _recover(seq, np.repeat(rgb[:1], len(rgb), 0), seq.K, first_depth, method, pipeline)
    scores = {
        "truth": _scores(seq.c2w, truth, align),
        "static": _scores(seq.c2w, static, align),
        "opposite": _scores(_reversed(seq.c2w), truth, align),
    }
    paths = {"ground-truth video": truth}
    if source is None:
        return {**scores, "main": scores["truth"]}, paths
    for key, follow in (("main", True), ("unconditioned", False)):
        video, generated_depth, K = _generated(source, seq, follow)
        known = true_depth if true_depth is not None or method == "model" else generated_depth
        cameras = _recover(seq, video, K, known, method, pipeline)
        scores[key] = _scores(seq.c2w, cameras, align)
        if follow:
            paths["generated video"] = cameras
    return scores, paths


def _picture(
    path: Path, seq: EvalSequence, recovered: dict[str, np.ndarray | str], method: str, align: str
) -> None:
    """Top-down and side views of the requested path and the recovered ones, as the metric compares
    them (first camera at the origin, largest distance from it 1)."""
    from aether.visualize import plot_trajectories

    paths = {"requested": aligned_paths(seq.c2w, seq.c2w, align=align)[0]}
    for label, c2w in recovered.items():
        if not isinstance(c2w, str):
            paths[f"recovered from the {label} ({method})"] = aligned_paths(seq.c2w, c2w, align=align)[1]
    plot_trajectories(path, paths, title=f"{seq.name}: requested and recovered cameras ({align} alignment)")


def run_camera_control(
    dataset: EvalDataset,
    source: BenchmarkSource | None = None,
    *,
    method: str = "annotate",
    depth: str = "auto",
    align: str = "first-frame",
    pipeline: Any = None,
    picture_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Camera-control errors per clip and their means, beside the bounding rows (module docstring).

    Args:
        dataset: clips with cameras (``c2w`` and ``K``).
        source: a :class:`~aether.evaluation.runners.PipelineSource` (the model's predictions), or
            None to score the clips' own videos.
        method: camera recovery, "annotate" or "model" (:func:`recover_cameras`).
        depth: depth for "annotate": "true", "model", or "auto" (true where the dataset has depth).
        align: the metric's alignment (:func:`camera_control_errors`).
        pipeline: the model for "model" recovery or depth (default: the source's).
        picture_dir: where to draw each clip's requested and recovered camera paths.

    Returns:
        The benchmark result (``per_sequence``, ``mean``, ``baselines``, ``settings``, ``paper``).
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth: expected one of {', '.join(DEPTHS)}, received {depth!r}")
    pipeline = pipeline if pipeline is not None else getattr(source, "pipe", None)
    rows: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in ("main", *ROWS)}
    used: set[str] = set()
    for seq in tqdm(
        split_for_rank(_sequences(dataset, "camera-control")), desc="camera control", disable=not progress
    ):
        if seq.c2w is None or seq.K is None:
            raise ValueError(f"{dataset.name}/{seq.name}: expected cameras (c2w and K), found none")
        true_depth = seq.depth()
        use_true = method == "annotate" and (depth == "true" or (depth == "auto" and true_depth is not None))
        if use_true and true_depth is None:
            raise ValueError(
                f"{dataset.name}/{seq.name}: --recovery-depth true needs the clip's depth, found none"
            )
        if method == "annotate" and not use_true and pipeline is None:
            raise ValueError(
                f"{dataset.name}/{seq.name}: the annotation recovery needs depth; expected the clip's depth "
                "or a model for it (--model), received neither"
            )
        used.add("true" if use_true else "model")
        scores, paths = _score_sequence(
            seq, source, method, true_depth if use_true else None, align, pipeline
        )
        for key, row in scores.items():
            rows[key][seq.name] = row
        if picture_dir is not None:
            _picture(
                Path(picture_dir) / f"camera_control_{dataset.name}_{seq.name}.png", seq, paths, method, align
            )
    rows = {key: gather_dicts(value) for key, value in rows.items()}
    baselines = {ROWS[key]: _mean(list(rows[key].values())) for key in ROWS if rows[key]}
    if source is None:
        baselines.pop(ROWS["truth"])
    return {
        "benchmark": "camera-control",
        "dataset": dataset.name,
        "settings": {
            "video": "generated (model prediction along the clip's trajectory)" if source else "ground truth",
            "recovery": method,
            "depth": sorted(used) if method == "annotate" else "none (the model's reconstruction)",
            "align": align,
            "model_run": source.run_settings("prediction")[0] if source is not None else {},
            "rot_err": "radians (CamI2V's unit); rot_err_deg the same sum in degrees",
        },
        "per_sequence": {k: rows["main"][k] for k in sorted(rows["main"])},
        "mean": _mean(list(rows["main"].values())),
        "baselines": baselines,
        "paper": paper_rows("camera-control", dataset.name),
    }


def _reversed(c2w: np.ndarray) -> np.ndarray:
    """The opposite camera motion of a (T,4,4) path (:func:`aether.geometry.reverse_poses`)."""
    return reverse_poses(torch.as_tensor(c2w, dtype=torch.float64)).numpy()
