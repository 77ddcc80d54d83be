"""Cameras (the action) ↔ latents: per-frame raymaps folded into the latent frame grid."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from aether.geometry import (
    FOLD_LAYOUTS,
    RAYMAP_METHODS,
    cameras_to_raymap,
    fold_raymap,
    raymap_to_cameras,
    unfold_raymap,
)
from aether.geometry.depth import disparity_to_depth
from aether.geometry.raymap import raymap_origins

from . import losses
from .base import MODALITIES, LatentBackend, ModalityCodec
from .disparity import check_dmax, resolve_dmax
from .validation import check_clip_frames, check_latents, check_num_frames, check_spatial_size, image_size


@MODALITIES.register("raymap")
class RaymapCodec(ModalityCodec):
    """Cameras (c2w, K) -> raymaps (B,T,6,H/s,W/s) at the backend's spatial factor s -> latents
    (B,F,24,H/s,W/s) by folding 4 frames per latent frame; decoding unfolds and recovers cameras.

    The raymap's origins are scaled by the clip's dmax (clip["dmax"], else computed from
    clip["depth"], else 1). The image size comes from clip["height"]/["width"], else from
    clip["video"], ["depth"] or ["valid"]; decoding falls back to the latent size times s.

    Sampled clips decode into ``raymap``, ``c2w`` and ``K``; as a condition it is the action; its
    stage-2 loss is the depth-weighted point-map loss (``pointmap``, aligned by
    ``pointmap_align``) on the predicted disparity (no gradient through it) when the model also
    decodes disparity.

    Args:
        backend: latent backend (only its spatial/temporal factors and allowed frames are used).
        layout: "aetherv1" (front padding, strided grouping) or "consecutive" (the paper's groups).
        method: camera recovery, "lstsq" (exact) or "mean_ray" (the paper's Algorithm 1).
        direction_scale: factor on the direction channels in the latents (1: AetherV1's raymap).
            A camera turn moves the directions by a few tenths while the origins' signed log moves by
            units, so under an unweighted latent loss a small model learns translation long before
            rotation; a larger factor weighs the directions' errors by its square. Decoding divides
            it out, so cameras and the decoded raymap are unchanged.
    """

    name = "raymap"
    inputs = ("c2w", "K")
    optional_inputs = ("dmax", "depth", "valid", "video", "height", "width")
    outputs = ("raymap", "c2w", "K")
    condition_role = "action"
    stage2_options = {"pointmap": 1.0, "pointmap_align": "scale_shift"}

    def __init__(
        self,
        backend: LatentBackend,
        layout: str = "aetherv1",
        method: str = "lstsq",
        direction_scale: float = 1.0,
    ) -> None:
        super().__init__(backend)
        if not (isinstance(direction_scale, int | float) and 0 < direction_scale < float("inf")):
            raise ValueError(f"direction_scale: expected a finite positive number, got {direction_scale!r}")
        if layout not in FOLD_LAYOUTS:
            raise ValueError(f"expected layout in {FOLD_LAYOUTS}, got {layout!r}")
        if method not in RAYMAP_METHODS:
            raise ValueError(f"expected method in {RAYMAP_METHODS}, got {method!r}")
        if backend.temporal_factor != 4:
            raise ValueError(
                f"expected a backend with temporal factor 4 for raymap folding, got {backend.temporal_factor}"
            )
        self.layout = layout
        self.method = method
        self.direction_scale = float(direction_scale)

    @property
    def channels(self) -> int:
        return 6 * self.backend.temporal_factor

    def raymap(self, clip: Mapping[str, object]) -> Tensor:
        """Per-frame raymaps (B,T,6,H/s,W/s) of clip["c2w"], clip["K"]."""
        batch_size, num_frames = check_clip_frames(clip, ["c2w", "K"])
        check_num_frames(num_frames, self.backend.temporal_factor, self.backend.allowed_frames)
        size = image_size(clip)
        if size is None:
            raise ValueError(
                "expected the image size in the clip ('height'/'width', 'video', 'depth' or 'valid'), "
                f"got keys {sorted(clip)}"
            )
        height, width = size
        check_spatial_size(height, width, self.backend.spatial_factor)
        c2w: Tensor = clip["c2w"]  # type: ignore[assignment]
        dmax = resolve_dmax(clip, batch_size, c2w)
        scale = 1.0 if dmax is None else dmax.to(c2w)[:, None]
        return cameras_to_raymap(
            c2w, clip["K"], height, width, dmax=scale, downsample=self.backend.spatial_factor
        )

    def fold(self, raymap: Tensor) -> Tensor:
        """Per-frame raymaps (B,T,6,h,w) -> latents (B,F,24,h,w) in this codec's layout, directions
        times ``direction_scale`` (the same folding for targets and for the action condition)."""
        return fold_raymap(self._scale_directions(raymap, self.direction_scale), layout=self.layout)

    def unfold(self, latents: Tensor, num_frames: int, layout: str | None = None) -> Tensor:
        """Latents (B,F,24,h,w) -> per-frame raymaps (B,T,6,h,w), the inverse of :meth:`fold`
        (``layout`` overrides this codec's)."""
        raymap = unfold_raymap(latents, num_frames, layout=layout or self.layout)
        return self._scale_directions(raymap, 1.0 / self.direction_scale)

    @staticmethod
    def _scale_directions(raymap: Tensor, factor: float) -> Tensor:
        """Raymaps (..., 6, h, w) with channels 0:3 (directions) times ``factor``."""
        if factor == 1.0:
            return raymap
        return torch.cat([raymap[..., :3, :, :] * factor, raymap[..., 3:, :, :]], -3)

    def encode(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Latents (B,F,24,H/s,W/s) of the clip's cameras (``sample``/``generator`` unused)."""
        return self.fold(self.raymap(clip))

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        """Latents (B,F,24,h,w) -> {"raymap" (B,T,6,h,w), "c2w" (B,T,4,4), "K" (B,T,3,3)}.

        T is taken from the clip's per-frame entries when present, else 4(F-1)+1; translations are
        divided by clip["dmax"] when given (otherwise they are in units of 1/dmax).
        """
        clip = clip or {}
        check_latents(latents, self.channels)
        batch_size, num_latent, _, h, w = latents.shape
        per_frame = [clip[k] for k in ("c2w", "K", "video", "depth") if isinstance(clip.get(k), Tensor)]
        num_frames = (
            int(per_frame[0].shape[1])  # type: ignore[union-attr]
            if per_frame
            else self.backend.temporal_factor * (num_latent - 1) + 1
        )
        height, width = image_size(clip) or (h * self.backend.spatial_factor, w * self.backend.spatial_factor)
        if latents.dtype not in (torch.float32, torch.float64):
            latents = latents.float()
        raymap = self.unfold(latents, num_frames)
        dmax = 1.0 if clip.get("dmax") is None else check_dmax(clip["dmax"], batch_size, raymap)[:, None]
        c2w, K = raymap_to_cameras(
            raymap, height, width, dmax=dmax, method=self.method, downsample=self.backend.spatial_factor
        )
        return {"raymap": raymap, "c2w": c2w, "K": K}

    def sample_outputs(
        self, latents: Tensor, side: Mapping[str, object], num_frames: int, *, reference: bool = False
    ) -> dict[str, Tensor]:
        """{"raymap" (B,T,6,h,w), "c2w" (B,T,4,4), "K" (B,T,3,3)} in float32. ``reference``: the raw
        unfolded latents in AetherV1's layout and cameras without dmax."""
        if reference:
            raymap = self.unfold(latents.float(), num_frames, layout="aetherv1")
            height, width = int(side["height"]), int(side["width"])  # type: ignore[call-overload]
            c2w, K = raymap_to_cameras(raymap, height, width, downsample=int(self.backend.spatial_factor))
        else:
            decoded = self.decode(latents.float(), side)
            raymap, c2w, K = decoded["raymap"], decoded["c2w"], decoded["K"]
        return {"raymap": raymap.float(), "c2w": c2w.float(), "K": K.float()}

    def stage2_losses(self, pred: Tensor, true: Tensor, batch: losses.Stage2Batch) -> dict[str, Tensor]:
        """{"pointmap": (B,)} from the disparity codec's decoded disparity (``batch.shared``; no
        loss without it): points = depth · direction + origin at the raymap's resolution."""
        shared = batch.shared
        if "disparity" not in shared:
            return {}
        side = {"video": batch.clip["video"]}
        rays = self.decode(pred, side)["raymap"]
        true_rays = self.decode(true, side)["raymap"]
        size = rays.shape[-2:]
        # stop-gradient through the disparity: the pointmap loss only trains the raymap
        disparity = losses.area_resize(shared["disparity"].detach(), size)
        depth_pred = 1.0 / disparity.clamp_min(shared["min_disparity"])
        coverage = losses.area_resize(shared["valid"].float(), size)
        true_low = losses.area_resize(shared["true_disparity"], size) / coverage.clamp_min(1e-6)
        low_valid = coverage > 0.999
        true_depth = torch.where(low_valid, disparity_to_depth(true_low, floor=0.0)[0], 0.0)
        pred_points = losses.raymap_points(depth_pred, raymap_origins(rays))
        true_points = losses.raymap_points(true_depth, raymap_origins(true_rays))
        return {
            "pointmap": losses.pointmap_loss(
                pred_points, true_points, true_depth, low_valid, align=batch.options["pointmap_align"]
            )
        }
