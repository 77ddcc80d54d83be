"""Evaluation with the published protocols: dataset readers, metrics, benchmark runners.

Stable entry points: :func:`camera_pose_metrics`, :func:`video_depth_metrics` and
:func:`video_pixel_metrics`; the runners back ``aether bench``.
"""

from aether.evaluation.datasets import DATASETS, EvalDataset, EvalSequence, build_dataset
from aether.evaluation.depth_metrics import ALIGNMENTS, VideoDepthMetric, video_depth_metrics
from aether.evaluation.pixel_metrics import VideoPixelMetric, load_lpips, video_pixel_metrics
from aether.evaluation.pose_metrics import CameraPoseMetric, camera_pose_metrics
from aether.evaluation.runners import (
    BENCHMARKS,
    WINDOWS,
    CogVideoXBaseline,
    PipelineSource,
    SavedPredictions,
    run_camera_pose,
    run_planning,
    run_prediction,
    run_video_depth,
)
from aether.evaluation.vbench import DIMENSIONS, WEIGHTS, VBenchModels, vbench_scores, weighted_total

__all__ = [
    "ALIGNMENTS",
    "BENCHMARKS",
    "DATASETS",
    "DIMENSIONS",
    "WEIGHTS",
    "WINDOWS",
    "CameraPoseMetric",
    "CogVideoXBaseline",
    "EvalDataset",
    "EvalSequence",
    "PipelineSource",
    "SavedPredictions",
    "VBenchModels",
    "VideoDepthMetric",
    "VideoPixelMetric",
    "build_dataset",
    "camera_pose_metrics",
    "load_lpips",
    "run_camera_pose",
    "run_planning",
    "run_prediction",
    "run_video_depth",
    "vbench_scores",
    "video_depth_metrics",
    "video_pixel_metrics",
    "weighted_total",
]
