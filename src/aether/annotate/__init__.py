"""Automatic 4D annotation of RGB-D videos: dynamic masks, slicing, coarse cameras, bundle adjustment.

``aether annotate INPUT --out SHARDS`` runs :class:`Annotator` over clip folders or shards; each
stage is a small interface with registered backends (``MASKERS``, ``FLOW_BACKENDS``,
``CAMERA_ESTIMATORS``, ``TRACKERS``) so stronger models plug in.
"""

from aether.annotate.bundle import BundleAdjuster, BundleResult, Tracks, reprojection_errors
from aether.annotate.coarse import (
    CAMERA_ESTIMATORS,
    CoarseCameraEstimator,
    CoarseCameras,
    PnPCameraEstimator,
    estimate_focal,
)
from aether.annotate.io import ClipInput, PendingClip, iter_clip_sources, iter_inputs, load_clip_folder
from aether.annotate.masking import MASKERS, DynamicMasker, GroundedSam2Masker, ProvidedMasks
from aether.annotate.pipeline import Annotator, SliceAnnotation, annotate_to_shards
from aether.annotate.slicing import FLOW_BACKENDS, DISFlow, FlowBackend, RAFTFlow, SliceConfig, Slicer
from aether.annotate.tracking import TRACKERS, CoTrackerTracker, LucasKanadeTracker, Tracker

__all__ = [
    "CAMERA_ESTIMATORS",
    "FLOW_BACKENDS",
    "MASKERS",
    "TRACKERS",
    "Annotator",
    "BundleAdjuster",
    "BundleResult",
    "ClipInput",
    "CoTrackerTracker",
    "CoarseCameraEstimator",
    "CoarseCameras",
    "DISFlow",
    "DynamicMasker",
    "FlowBackend",
    "GroundedSam2Masker",
    "LucasKanadeTracker",
    "PendingClip",
    "PnPCameraEstimator",
    "ProvidedMasks",
    "RAFTFlow",
    "SliceAnnotation",
    "SliceConfig",
    "Slicer",
    "Tracker",
    "Tracks",
    "annotate_to_shards",
    "estimate_focal",
    "iter_clip_sources",
    "iter_inputs",
    "load_clip_folder",
    "reprojection_errors",
]
