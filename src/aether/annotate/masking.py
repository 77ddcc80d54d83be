"""Dynamic masking: pixels of things that may move, consistent over the clip.

``MASKERS`` holds the backends:

- ``"provided"``: masks shipped with the data (a ``dynamic`` array, or ``semantic`` labels whose
  class names are among the dynamic categories) — the synthetic generator supplies both;
- ``"grounded_sam2"``: open-vocabulary detection of the categories with Grounding DINO on key
  frames, then SAM 2 video segmentation of every detected box through the clip (``transformers``),
  models loaded from hub ids or local directories.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aether.registry import Registry

__all__ = ["DEFAULT_CATEGORIES", "MASKERS", "DynamicMasker", "GroundedSam2Masker", "ProvidedMasks"]

MASKERS: Registry = Registry("dynamic masker", "aether.annotate.maskers")
DEFAULT_CATEGORIES = ("person", "car", "animal", "bicycle", "motorcycle", "bus", "truck", "dog", "cat")


class DynamicMasker:
    """Interface: ``masker(frames (T,H,W,3) uint8, extras: dict) -> (T,H,W) bool`` (True = may move).

    ``extras`` carries whatever the clip provides (``dynamic``, ``semantic``, ``classes``, ...).
    """

    def __call__(self, frames: np.ndarray, extras: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError


@MASKERS.register("provided")
class ProvidedMasks(DynamicMasker):
    """Masks supplied with the data: ``extras["dynamic"]`` (T,H,W), else ``extras["semantic"]`` (T,H,W)
    labels with ``extras["classes"]`` {id: name}: pixels whose class is in ``categories``.

    Masks are optional: a clip with neither gets no dynamic pixels (``missing="static"``, the
    report says so) or is refused (``missing="error"``)."""

    def __init__(self, categories: Sequence[str] = DEFAULT_CATEGORIES, missing: str = "static") -> None:
        if missing not in ("static", "error"):
            raise ValueError(f"missing: expected 'static' or 'error', got {missing!r}")
        self.categories = tuple(categories)
        self.missing = missing

    def __call__(self, frames: np.ndarray, extras: dict[str, Any]) -> np.ndarray:
        shape = frames.shape[:3]
        if extras.get("dynamic") is not None:
            mask = np.asarray(extras["dynamic"], dtype=bool)
        elif extras.get("semantic") is not None and extras.get("classes"):
            ids = [int(i) for i, name in extras["classes"].items() if name in self.categories]
            mask = np.isin(extras["semantic"], ids)
        elif self.missing == "static":
            mask = np.zeros(shape, dtype=bool)
        else:
            raise ValueError(
                "the 'provided' masker needs 'dynamic' masks or 'semantic' labels with 'classes'"
            )
        if mask.shape != shape:
            raise ValueError(f"provided masks must be (T,H,W)={shape}, got {mask.shape}")
        return mask


@MASKERS.register("grounded_sam2")
class GroundedSam2Masker(DynamicMasker):
    """Grounding DINO boxes for ``categories`` on key frames, propagated by SAM 2 video.

    Args:
        detector: hub id or local directory of a Grounding DINO checkpoint (model + processor).
        segmenter: hub id or local directory of a SAM 2 video checkpoint (model + processor).
        categories: text prompts of things that may move.
        box_threshold, text_threshold: Grounding DINO post-processing thresholds.
        detect_every: run the detector every this many frames (new objects entering the view are
            picked up there); every box becomes one tracked object.
        mask_threshold: logit threshold of SAM 2 masks.
        device: torch device.
    """

    def __init__(
        self,
        detector: str | Path = "IDEA-Research/grounding-dino-tiny",
        segmenter: str | Path = "facebook/sam2.1-hiera-tiny",
        *,
        categories: Sequence[str] = DEFAULT_CATEGORIES,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        detect_every: int = 8,
        mask_threshold: float = 0.0,
        device: str = "cpu",
    ) -> None:
        from transformers import (
            AutoModelForZeroShotObjectDetection,
            AutoProcessor,
            Sam2VideoModel,
            Sam2VideoProcessor,
        )

        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.det_processor = AutoProcessor.from_pretrained(str(detector))
        self.detector = AutoModelForZeroShotObjectDetection.from_pretrained(str(detector)).to(device).eval()
        self.seg_processor = Sam2VideoProcessor.from_pretrained(str(segmenter))
        self.segmenter = Sam2VideoModel.from_pretrained(str(segmenter)).to(device).eval()
        self.categories = tuple(categories)
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.detect_every = detect_every
        self.mask_threshold = mask_threshold
        self.device = device

    @torch.no_grad()
    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Boxes (N,4) (x0, y0, x1, y1) in pixels of the categories in one frame (H,W,3) uint8."""
        text = ". ".join(self.categories) + "."
        inputs = self.det_processor(images=frame, text=text, return_tensors="pt").to(self.device)
        outputs = self.detector(**inputs)
        result = self.det_processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            target_sizes=[frame.shape[:2]],
        )[0]
        return result["boxes"].cpu().numpy().reshape(-1, 4)

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, extras: dict[str, Any]) -> np.ndarray:
        T, H, W = frames.shape[:3]
        prompts: dict[int, np.ndarray] = {}
        for t in range(0, T, self.detect_every):
            boxes = self.detect(frames[t])
            if len(boxes):
                prompts[t] = boxes
        mask = np.zeros((T, H, W), dtype=bool)
        if not prompts:
            return mask
        session = self.seg_processor.init_video_session(
            video=list(frames), inference_device=self.device, dtype=torch.float32
        )
        next_id = 1
        for t, boxes in prompts.items():
            ids = list(range(next_id, next_id + len(boxes)))
            next_id += len(boxes)
            self.seg_processor.add_inputs_to_inference_session(
                inference_session=session, frame_idx=t, obj_ids=ids, input_boxes=[boxes.tolist()]
            )
            self.segmenter(inference_session=session, frame_idx=t)
        for output in self.segmenter.propagate_in_video_iterator(session, start_frame_idx=0):
            masks = self.seg_processor.post_process_masks(
                [output.pred_masks],
                original_sizes=[[H, W]],
                mask_threshold=self.mask_threshold,
                binarize=True,
            )[0]
            mask[output.frame_idx] = masks.reshape(-1, H, W).any(0).cpu().numpy()
        return mask
