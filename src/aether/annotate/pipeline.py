"""The annotation pipeline: masks → slices → coarse cameras → tracks → bundle adjustment → shards.

:class:`Annotator` runs the four stages on one clip and returns shard samples (one per slice, c2w
relative to the slice's first frame) and a JSON-able report. :func:`annotate_to_shards` runs it over
many clips, writing ``OUT/<clip>-NNNNNN.tar`` (atomically, through
:func:`aether.data.shards.write_shards`) and then ``OUT/reports/<clip>.json`` (atomically). Each
clip is a work unit of the plan in ``OUT/plan/`` (:mod:`aether.data.workplan`), recorded as done
last and skipped when the run is resumed; clips run in this process, in local worker processes, on
Ray, or split over a job array. ``<clip>`` is the clip's uid (a shard sample's shard name + key),
so clips sharing a key in different shards are both annotated. A clip that fails is retried, then
recorded with its reason (``OUT/plan/failed/``, ``OUT/reports/summary.json``) and the run
continues (unless ``fail_fast``); its shards, if any were written, are removed.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterable
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
from aether.data.workplan import write_json
from aether.visualize import plot_against_truth, plot_trajectories

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
        require_observable_focal: refuse slices whose estimated focal length the motion does not
            determine (``focal_observable`` false: e.g. a camera that only translates). Such slices
            are always warned about and recorded; with this flag they are not written.
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
        require_observable_focal: bool = False,
    ) -> None:
        self.masker = masker or ProvidedMasks()
        self.slicer = slicer or Slicer()
        self.estimator = estimator or PnPCameraEstimator()
        self.tracker = tracker or LucasKanadeTracker()
        self.refiner = refiner or BundleAdjuster()
        self.estimate_intrinsics = estimate_intrinsics
        self.mask_margin = mask_margin
        self.require_observable_focal = require_observable_focal

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
            # None: the focal length was given, not estimated
            "focal_observable": bool(coarse.info["focal_observable"]) if coarse.focal_estimated else None,
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
            if report["focal_observable"] is False:
                curvature = ann.report["coarse"]["focal_curvature"]
                reason = (
                    f"focal length unobservable (focal_curvature {curvature:.3g}): the camera motion does "
                    "not determine it; give the intrinsics"
                )
                action = "refused (--require-observable-focal)" if self.require_observable_focal else "kept"
                warnings.warn(
                    f"clip {clip.name}, slice {key}: {reason}; {action}", RuntimeWarning, stacklevel=2
                )
                report["focal_warning"] = reason
                if self.require_observable_focal:
                    report["refused"] = reason
                    continue
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
            "refused_slices": [r["key"] for r in slice_reports if "refused" in r],
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


def annotate_to_shards(
    clips: Iterable[ClipInput | PendingClip],
    out: str | Path,
    annotator: Annotator | Callable[[], Annotator] | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    fail_fast: bool = False,
    settings: dict[str, Any] | None = None,
    maxcount: int = 100,
    progress: bool = True,
    pictures: bool = True,
    executor: Any = None,
    num_shards: int = 1,
    shard_index: int = 0,
    retries: int = 0,
    claim_timeout: float = 600.0,
) -> dict[str, Any]:
    """Annotate ``clips`` into ``out``: shards ``<uid>-NNNNNN.tar`` and ``reports/<uid>.json``.

    Each clip is one work unit of a :class:`aether.data.workplan.WorkPlan` in ``out/plan/`` (id:
    its uid), run on ``executor`` (default: this process; worker processes and Ray need picklable
    clips and an ``annotator`` given as a picklable factory, e.g. a ``functools.partial``), or by
    every member of a job array (``num_shards``, ``shard_index``: each annotates its part).
    A non-empty ``out`` is refused unless ``overwrite`` (cleared first) or ``resume`` (done clips
    are skipped; ``settings``, when given, must equal the recorded ones). A clip that fails to load
    or annotate is tried ``retries`` more times, then recorded with its reason and the run goes on
    (``fail_fast``: ValueError naming the clip instead); nothing of it stays readable. With
    ``pictures``, each slice's camera path is drawn to ``reports/<slice key>_trajectory.png``.
    Returns (and writes to ``reports/summary.json``) the clips annotated now, skipped as done,
    failed (clip, uid, source, error), the shards written, the slice count, and the run's
    :class:`~aether.data.workplan.PlanRun` and plan (keys "run", "plan").
    """
    from aether.data.executors import InProcessExecutor
    from aether.data.shards import check_settings
    from aether.data.workplan import UnitFailed, WorkUnit, open_plan, run_plan

    pending = [item if isinstance(item, PendingClip) else PendingClip.of(item) for item in clips]
    job = {"annotator": annotator or Annotator(), "maxcount": maxcount, "pictures": pictures}
    units = [WorkUnit(_safe(p.uid), {**job, "clip": p}) for p in pending]
    plan = open_plan(out, "annotate", units, overwrite=overwrite, resume=resume, num_shards=num_shards)
    for unit in units:
        unit.payload["out"] = str(plan.out)
    if settings is not None:
        check_settings(plan.out / "settings.json", settings, resume or num_shards > 1)
    try:
        run = run_plan(
            plan, annotate_unit, executor or InProcessExecutor(), units=plan.part(num_shards, shard_index),
            retries=retries, claim_timeout=claim_timeout, fail_fast=fail_fast, progress=progress,
            desc="annotate",
        )  # fmt: skip
    except UnitFailed as err:  # fail_fast: name the clip
        clip = next(u.payload["clip"] for u in units if u.id == err.unit_id)
        raise ValueError(f"clip {clip.name} ({clip.source}): {err.reason}") from err
    by_id = {u.id: u.payload["clip"] for u in units}
    summary: dict[str, Any] = {
        "annotated": run.done,
        "skipped": run.skipped,
        "failed": [
            {"clip": by_id[i].name, "uid": i, "source": by_id[i].source, "error": errors[-1]}
            for i, errors in run.failed.items()
        ],
        "shards": [
            str(plan.out / f) for r in run.records.values() for f in r["outputs"] if f.endswith(".tar")
        ],
        "slices": sum(r["slices"] for r in run.records.values()),
    }
    write_json(plan.out / "reports" / "summary.json", summary)
    return {**summary, "run": run, "plan": plan}


def _remove_outputs(out: Path, name: str) -> None:
    """The shards (and their ``.partial`` files) of clip ``name``: an earlier attempt's leftovers."""
    pattern = re.compile(rf"{re.escape(name)}-\d{{6}}\.tar(\.partial)?")
    for stale in out.glob(f"{name}-*.tar*"):
        if pattern.fullmatch(stale.name):
            stale.unlink()


def annotate_unit(job: dict[str, Any]) -> dict[str, Any]:
    """One work unit: annotate ``job["clip"]`` (a PendingClip) into ``job["out"]``; the record of
    its outputs (module level: runs in worker processes and Ray tasks)."""
    out, pending = Path(job["out"]), job["clip"]
    annotator = job["annotator"]
    if callable(annotator):  # a factory (built once per worker process where it caches)
        annotator = annotator()
    name = _safe(pending.uid)
    _remove_outputs(out, name)
    try:
        samples, report, shards = _annotate_one(
            pending, name, out, annotator, job["maxcount"], job["pictures"]
        )
    except BaseException:
        _remove_outputs(out, name)  # nothing of a failed clip stays readable
        raise
    write_json(out / "reports" / f"{name}.json", report)
    return {
        "outputs": [Path(s).name for s in shards] + [f"reports/{name}.json"],
        "keys": [sample["__key__"] for sample in samples],
        "slices": len(samples),
    }


def _annotate_one(
    pending: PendingClip, name: str, out: Path, annotator: Annotator, maxcount: int, pictures: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    from aether.data.shards import write_shards

    clip = pending.load()
    samples, report = annotator.annotate(clip)
    shards = write_shards(samples, str(out / f"{name}-%06d.tar"), maxcount=maxcount) if samples else []
    report["shards"] = [Path(s).name for s in shards]
    if pictures:
        parts = {part["key"]: part for part in report["slices"]}
        for sample in samples:
            part = parts[sample["__key__"]]
            picture = out / "reports" / f"{sample['__key__']}_trajectory.png"
            title = f"{sample['__key__']}: annotated cameras"
            if clip.gt_c2w is None:
                plot_trajectories(picture, {"annotated": sample["c2w"]}, title=title)
            else:  # slices are runs of consecutive frames
                first, last = part["frames"]
                true = np.linalg.inv(clip.gt_c2w[first]) @ clip.gt_c2w[first : last + 1]
                plot_against_truth(picture, sample["c2w"], true, label="annotated", title=title)
    return samples, report, shards
