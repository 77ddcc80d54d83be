"""The annotation pipeline: masks → slices → coarse cameras → tracks → bundle adjustment → shards.

:class:`Annotator` runs the four stages on one clip and returns shard samples (one per slice, c2w
relative to the slice's first frame) and a JSON-able report. :func:`annotate_to_shards` runs it over
many clips, writing ``OUT/<clip>-NNNNNN.tar`` (atomically, through :func:`aether.data.shards.write_shards`)
and then ``OUT/reports/<clip>.json`` (atomically, last): a clip whose report exists is finished and
skipped when the run is resumed. ``<clip>`` is the clip's uid (a shard sample's shard name + key),
so clips sharing a key in different shards are both annotated. A clip that fails is recorded with
its reason in ``OUT/reports/summary.json`` and the run continues (unless ``fail_fast``); its
shards, if any were written, are removed.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aether.annotate.bundle import BundleAdjuster, Tracks, reprojection_errors
from aether.annotate.coarse import CoarseCameraEstimator, PnPCameraEstimator
from aether.annotate.features import sample_depth, support_mask
from aether.annotate.io import ClipInput, PendingClip
from aether.annotate.masking import DynamicMasker, ProvidedMasks
from aether.annotate.slicing import Slicer
from aether.annotate.tracking import LucasKanadeTracker, Tracker
from aether.visualize import plot_trajectories

__all__ = ["Annotator", "SliceAnnotation", "annotate_to_shards"]


@dataclass
class SliceAnnotation:
    """Cameras of one slice: coarse and refined c2w (S,4,4) (first frame = identity) and K (S,3,3),
    the tracks fed to the solver, and the slice report."""

    coarse_c2w: np.ndarray
    coarse_K: np.ndarray
    c2w: np.ndarray
    K: np.ndarray
    tracks: Tracks
    report: dict[str, Any] = field(default_factory=dict)


def _error_stats(errors: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(errors.mean()),
        "median": float(np.median(errors)),
        "rmse": float(np.sqrt((errors**2).mean())),
    }


class Annotator:
    """The four stages, each swappable.

    Args:
        masker: dynamic masks (default: masks provided with the data).
        slicer: frame dropping and clip cutting (default thresholds, DIS flow).
        estimator: coarse cameras (default: chained PnP with focal by rigid-alignment consistency).
        tracker: long-term tracks (default: pyramidal Lucas–Kanade).
        refiner: bundle adjustment (default: :class:`BundleAdjuster`).
        estimate_intrinsics: ignore intrinsics that come with the data and estimate them.
        mask_margin: dynamic masks are dilated by this many pixels before anything uses the pixels.
    """

    def __init__(
        self,
        masker: DynamicMasker | None = None,
        slicer: Slicer | None = None,
        estimator: CoarseCameraEstimator | None = None,
        tracker: Tracker | None = None,
        refiner: BundleAdjuster | None = None,
        *,
        estimate_intrinsics: bool = False,
        mask_margin: int = 2,
    ) -> None:
        self.masker = masker or ProvidedMasks()
        self.slicer = slicer or Slicer()
        self.estimator = estimator or PnPCameraEstimator()
        self.tracker = tracker or LucasKanadeTracker()
        self.refiner = refiner or BundleAdjuster()
        self.estimate_intrinsics = estimate_intrinsics
        self.mask_margin = mask_margin

    def build_tracks(self, frames: np.ndarray, depth: np.ndarray, support: np.ndarray) -> Tracks:
        """Track, then keep only observations on supported pixels (static, valid depth, no edge)."""
        uv, visible = self.tracker(frames, support)
        S, H, W = support.shape
        u = np.clip(np.round(uv[..., 0]).astype(int), 0, W - 1)
        v = np.clip(np.round(uv[..., 1]).astype(int), 0, H - 1)
        on_support = support[np.arange(S)[None], v, u]
        d = np.stack([sample_depth(depth[t], uv[:, t].astype(np.float64)) for t in range(S)], axis=1)
        return Tracks(uv.astype(np.float64), visible & on_support & (d > 0), np.where(on_support, d, 0.0))

    def annotate_slice(
        self, frames: np.ndarray, depth: np.ndarray, dynamic: np.ndarray, K: np.ndarray | None
    ) -> SliceAnnotation:
        """Cameras of one slice: frames (S,H,W,3) uint8, depth (S,H,W), dynamic (S,H,W) bool, K or None."""
        timing: dict[str, float] = {}
        start = time.perf_counter()
        support = np.stack([support_mask(~m, d, margin=self.mask_margin) for m, d in zip(dynamic, depth)])
        coarse = self.estimator(frames, depth, support, K)
        timing["coarse"] = time.perf_counter() - start
        start = time.perf_counter()
        tracks = self.build_tracks(frames, depth, support)
        timing["tracking"] = time.perf_counter() - start
        if coarse.matches is not None:  # frame-to-frame matches complement the long tracks
            tracks = Tracks.concatenate([tracks, coarse.matches])
        start = time.perf_counter()
        result = self.refiner(coarse.c2w, coarse.K, tracks)
        timing["refinement"] = time.perf_counter() - start
        before = reprojection_errors(coarse.c2w, coarse.K, tracks)
        after = reprojection_errors(result.c2w, result.K, tracks)
        report = {
            "focal_estimated": coarse.focal_estimated,
            "coarse_focal": float(coarse.K[0, 0, 0]),
            "K": result.K[0].tolist(),
            "coarse": coarse.info,
            "tracks": int(len(tracks.visible)),
            "observations": int(tracks.visible.sum()),
            "reprojection_px": {"coarse": _error_stats(before), "refined": _error_stats(after)},
            "bundle": {
                "cost_initial": result.cost_initial,
                "cost_final": result.cost_final,
                "residuals": result.num_residuals,
                "params": result.num_params,
                "nfev": result.nfev,
                "inlier_fraction": float(result.inliers.mean()),
            },
            "seconds": timing,
        }
        return SliceAnnotation(coarse_c2w=coarse.c2w, coarse_K=coarse.K, c2w=result.c2w,
                               K=result.K, tracks=tracks, report=report)  # fmt: skip

    def annotate(self, clip: ClipInput) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Annotate one clip: shard samples (one per kept slice) and the clip report."""
        T = clip.rgb.shape[0]
        if clip.depth.shape != clip.rgb.shape[:3]:
            raise ValueError(
                f"clip {clip.name}: depth {clip.depth.shape} does not match rgb {clip.rgb.shape}"
            )
        start = time.perf_counter()
        dynamic = self.masker(clip.rgb, clip.extras)
        seconds = {"masking": time.perf_counter() - start}
        start = time.perf_counter()
        slicing = self.slicer(clip.rgb, dynamic)
        seconds["slicing"] = time.perf_counter() - start
        K = None if self.estimate_intrinsics or clip.K is None else clip.K
        samples, slice_reports = [], []
        for number, frames in enumerate(slicing.slices):
            idx = np.asarray(frames)
            ann = self.annotate_slice(
                clip.rgb[idx], clip.depth[idx], dynamic[idx], None if K is None else K[idx]
            )
            for stage, sec in ann.report["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + sec
            key = f"{_safe(clip.uid)}_s{number:02d}"  # the uid: unique across a run's shards
            report = {"key": key, "frames": [int(idx[0]), int(idx[-1])], **ann.report}
            if clip.gt_c2w is not None:
                report["ground_truth"] = _ground_truth_errors(ann, clip, idx)
            slice_reports.append(report)
            sample = {
                "__key__": key,
                "rgb": clip.rgb[idx],
                "depth": clip.depth[idx],
                "K": ann.K,
                "c2w": ann.c2w,
                "fps": clip.fps,
                "dynamic": dynamic[idx],
                "meta": {"source": {"clip": clip.name, "path": clip.source, "frames": report["frames"]}},
            }
            for name in ("semantic", "instance"):
                if clip.extras.get(name) is not None:
                    sample[name] = np.asarray(clip.extras[name])[idx]
            if clip.extras.get("classes"):
                sample["meta"]["classes"] = {str(k): v for k, v in clip.extras["classes"].items()}
            samples.append(sample)
        report = {
            "clip": clip.name,
            "source": clip.source,
            "status": "done",
            "num_frames": T,
            "kept_frames": int(sum(len(s) for s in slicing.slices)),
            "frames": slicing.frames,
            "cuts": slicing.cuts,
            "slices": slice_reports,
            "seconds": seconds,
        }
        if isinstance(self.masker, ProvidedMasks) and not (
            clip.extras.get("dynamic") is not None or clip.extras.get("semantic") is not None
        ):
            report["masks"] = "none given: every pixel treated as static"
        if clip.extras.get("untextured") is not None:  # flagged by the data (never used for decisions)
            flagged = np.flatnonzero(clip.extras["untextured"]).tolist()
            report["flagged_untextured"] = flagged
            report["flagged_untextured_dropped"] = all(not slicing.frames[t]["kept"] for t in flagged)
        return samples, report


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)


def _ground_truth_errors(ann: SliceAnnotation, clip: ClipInput, idx: np.ndarray) -> dict[str, float]:
    """Errors against ground truth after Sim(3) alignment: ATE (absolute and / trajectory length),
    RPE rotation (degrees, RMSE over consecutive frames) and relative focal error."""
    from aether.evaluation.pose_metrics import DegenerateTrajectoryError, camera_pose_metrics

    gt = np.linalg.inv(clip.gt_c2w[idx[0]]) @ clip.gt_c2w[idx]
    length = float(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum())
    out: dict[str, float] = {"trajectory_length": length}
    for name, c2w in (("coarse", ann.coarse_c2w), ("refined", ann.c2w)):
        try:  # a camera that only rotates has no Sim(3) scale: ATE and RPE translation are NaN
            m = camera_pose_metrics(c2w, gt, sequence=clip.name, static_gt="nan")
        except DegenerateTrajectoryError:  # the estimate does not move while the truth does
            m = {"ate": float("nan"), "rpe_rot": float("nan")}
        out[f"{name}_ate"] = m["ate"]
        out[f"{name}_ate_rel"] = m["ate"] / length if length > 0 else float("nan")
        out[f"{name}_rpe_rot_deg"] = m["rpe_rot"]
    if clip.K is not None:
        true_f = float(clip.K[idx[0], 0, 0])
        out["coarse_focal_rel_err"] = abs(float(ann.coarse_K[0, 0, 0]) - true_f) / true_f
        out["refined_focal_rel_err"] = abs(float(ann.K[0, 0, 0]) - true_f) / true_f
    return out


def _atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


def annotate_to_shards(
    clips: Iterable[ClipInput | PendingClip],
    out: str | Path,
    annotator: Annotator | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    fail_fast: bool = False,
    settings: dict[str, Any] | None = None,
    maxcount: int = 100,
    progress: bool = True,
    pictures: bool = True,
) -> dict[str, Any]:
    """Annotate ``clips`` into ``out``: shards ``<uid>-NNNNNN.tar`` and ``reports/<uid>.json``.

    A non-empty ``out`` is refused unless ``overwrite`` (cleared first) or ``resume`` (clips
    whose report exists are skipped; ``settings``, when given, must equal the recorded ones).
    A clip that fails to load or annotate is recorded in the summary with its reason and the run
    goes on; ``fail_fast`` raises instead (ValueError naming the clip and its source). With
    ``pictures``, each slice's camera path is drawn to ``reports/<slice key>_trajectory.png``.
    Returns (and writes to ``reports/summary.json``) the clips annotated now, skipped as
    finished, failed (clip, source, error), the shards written and the slice count.
    """
    from tqdm import tqdm

    from aether.data.shards import check_settings, prepare_output

    out = prepare_output(out, overwrite=overwrite, resume=resume)
    if settings is not None:
        check_settings(out / "settings.json", settings, resume)
    annotator = annotator or Annotator()
    summary: dict[str, Any] = {"annotated": [], "skipped": [], "failed": [], "shards": [], "slices": 0}
    for item in tqdm(clips, desc="annotate", unit="clip", disable=not progress):
        pending = item if isinstance(item, PendingClip) else PendingClip.of(item)
        name = _safe(pending.uid)
        report_path = out / "reports" / f"{name}.json"
        if report_path.is_file():
            summary["skipped"].append(name)
            continue
        try:
            samples, report, shards = _annotate_one(pending, name, out, annotator, maxcount, pictures)
        except Exception as err:
            for stale in out.glob(f"{name}-*.tar"):  # nothing of a failed clip stays readable
                if re.fullmatch(rf"{re.escape(name)}-\d{{6}}\.tar", stale.name):
                    stale.unlink()
            reason = f"{type(err).__name__}: {err}"
            if fail_fast:
                raise ValueError(f"clip {pending.name} ({pending.source}): {reason}") from err
            summary["failed"].append(
                {"clip": pending.name, "uid": name, "source": pending.source, "error": reason}
            )
            continue
        _atomic_write_json(report_path, report)
        summary["annotated"].append(name)
        summary["shards"] += shards
        summary["slices"] += len(samples)
    _atomic_write_json(out / "reports" / "summary.json", summary)
    return summary


def _annotate_one(
    pending: PendingClip, name: str, out: Path, annotator: Annotator, maxcount: int, pictures: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    from aether.data.shards import write_shards

    clip = pending.load()
    samples, report = annotator.annotate(clip)
    shards = write_shards(samples, str(out / f"{name}-%06d.tar"), maxcount=maxcount) if samples else []
    report["shards"] = [Path(s).name for s in shards]
    if pictures:
        for sample in samples:
            plot_trajectories(
                out / "reports" / f"{sample['__key__']}_trajectory.png",
                {"annotated": sample["c2w"]},
                title=f"{sample['__key__']}: annotated cameras",
            )
    return samples, report, shards
