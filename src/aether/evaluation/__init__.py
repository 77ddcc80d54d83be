"""Evaluation with the published protocols: dataset readers, metrics, benchmark runners.

Stable entry points: :func:`camera_pose_metrics`, :func:`video_depth_metrics`,
:func:`video_pixel_metrics`, :func:`camera_control_errors` and :func:`recover_cameras`; the runners
back ``aether bench``.

Names load on first use, so the ``aether bench`` parser imports no torch.
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "DATASETS": "aether.evaluation.datasets",
    "EvalDataset": "aether.evaluation.datasets",
    "EvalSequence": "aether.evaluation.datasets",
    "build_dataset": "aether.evaluation.datasets",
    "aligned_paths": "aether.evaluation.camera_control",
    "camera_control_errors": "aether.evaluation.camera_control",
    "recover_cameras": "aether.evaluation.camera_control",
    "run_camera_control": "aether.evaluation.camera_control_runner",
    "ALIGNMENTS": "aether.evaluation.depth_metrics",
    "VideoDepthMetric": "aether.evaluation.depth_metrics",
    "video_depth_metrics": "aether.evaluation.depth_metrics",
    "VideoPixelMetric": "aether.evaluation.pixel_metrics",
    "load_lpips": "aether.evaluation.pixel_metrics",
    "video_pixel_metrics": "aether.evaluation.pixel_metrics",
    "CameraPoseMetric": "aether.evaluation.pose_metrics",
    "camera_pose_metrics": "aether.evaluation.pose_metrics",
    "BENCHMARKS": "aether.evaluation.names",
    "WINDOWS": "aether.evaluation.runners",
    "CogVideoXBaseline": "aether.evaluation.runners",
    "PipelineSource": "aether.evaluation.runners",
    "SavedPredictions": "aether.evaluation.runners",
    "run_camera_pose": "aether.evaluation.runners",
    "run_planning": "aether.evaluation.runners",
    "run_prediction": "aether.evaluation.runners",
    "run_video_depth": "aether.evaluation.runners",
    "DIMENSIONS": "aether.evaluation.vbench",
    "WEIGHTS": "aether.evaluation.vbench",
    "VBenchModels": "aether.evaluation.vbench",
    "vbench_scores": "aether.evaluation.vbench",
    "weighted_total": "aether.evaluation.vbench",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes("aether.evaluation", _LAZY)
