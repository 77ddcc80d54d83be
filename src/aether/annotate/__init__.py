"""Automatic 4D annotation of RGB-D videos: dynamic masks, slicing, coarse cameras, bundle adjustment.

``aether annotate INPUT --out SHARDS`` runs :class:`Annotator` over clip folders or shards; each
stage is a small interface with registered backends (``MASKERS``, ``FLOW_BACKENDS``,
``CAMERA_ESTIMATORS``, ``TRACKERS``) so stronger models plug in.

Names load on first use, so the ``aether annotate`` parser imports no torch.
"""

from __future__ import annotations

from aether.lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "BundleAdjuster": "aether.annotate.bundle",
    "BundleResult": "aether.annotate.bundle",
    "Tracks": "aether.annotate.bundle",
    "reprojection_errors": "aether.annotate.bundle",
    "CAMERA_ESTIMATORS": "aether.annotate.coarse",
    "CoarseCameraEstimator": "aether.annotate.coarse",
    "CoarseCameras": "aether.annotate.coarse",
    "PnPCameraEstimator": "aether.annotate.coarse",
    "estimate_focal": "aether.annotate.coarse",
    "ClipInput": "aether.annotate.io",
    "PendingClip": "aether.annotate.io",
    "iter_clip_sources": "aether.annotate.io",
    "iter_inputs": "aether.annotate.io",
    "load_clip_folder": "aether.annotate.io",
    "MASKERS": "aether.annotate.masking",
    "DynamicMasker": "aether.annotate.masking",
    "GroundedSam2Masker": "aether.annotate.masking",
    "ProvidedMasks": "aether.annotate.masking",
    "Annotator": "aether.annotate.pipeline",
    "SliceAnnotation": "aether.annotate.pipeline",
    "annotate_to_shards": "aether.annotate.pipeline",
    "FLOW_BACKENDS": "aether.annotate.slicing",
    "DISFlow": "aether.annotate.slicing",
    "FlowBackend": "aether.annotate.slicing",
    "RAFTFlow": "aether.annotate.slicing",
    "SliceConfig": "aether.annotate.slicing",
    "Slicer": "aether.annotate.slicing",
    "TRACKERS": "aether.annotate.tracking",
    "CoTrackerTracker": "aether.annotate.tracking",
    "LucasKanadeTracker": "aether.annotate.tracking",
    "Tracker": "aether.annotate.tracking",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes("aether.annotate", _LAZY)
