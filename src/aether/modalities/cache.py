"""Geometric memory as a condition modality ("cache"): a point cloud rendered into every target camera.

The memory is the point cloud of the frames seen so far, each pixel lifted with its depth and camera
(:func:`lift_frames`). Rendering it into a clip's cameras with the z-buffered splatting of
:func:`aether.geometry.splat_points` gives, per frame, a colour image and a validity mask
(:func:`render_memory`). The codec turns them into condition latents (B, F, C + 4, h, w): the colour
render through the latent backend (C channels) and the mask, area-averaged to the latent grid as
``2·coverage − 1`` and folded four frames per latent frame like the raymap (4 channels).

Where a clip carries no rendered memory ("cache_video" (B,T,3,H,W) in [-1, 1] and "cache_mask"
(B,T,H,W)) the codec draws it from the clip's own ground truth: its first ``source_frames`` frames
lifted with their true depth and cameras, rendered into all of its cameras (training). A model
trained with ``drop`` > 0 sees zeros instead (all cache channels) on that fraction of its samples,
so it works with and without a memory; zeros are also what a sampler gives when there is none.
Its ``condition_role`` is "memory": a condition only (never a target), given to a sampler as the
signals ``cache_video`` / ``cache_mask`` (:data:`~aether.modalities.base.MEMORY_INPUTS`) and kept in both
branches of classifier-free guidance.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from aether.geometry import FOLD_LAYOUTS, depth_to_points, fold_frames, splat_points

from .base import MEMORY_INPUTS, MODALITIES, LatentBackend, ModalityCodec
from .validation import check_clip_frames

MAX_SPLAT_ENTRIES = 1 << 24
"""Point-pixel entries splatted at once (frames are rendered in chunks below this many)."""


def lift_frames(
    rgb: Tensor, depth: Tensor, c2w: Tensor, K: Tensor, valid: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Lift frames to one coloured point cloud per batch element.

    Args:
        rgb: (B, S, 3, H, W) colours (any range, e.g. [-1, 1]).
        depth: (B, S, H, W) z-depth; 0 or non-finite is invalid.
        c2w: (B, S, 4, 4) camera-to-world poses; K: (B, S, 3, 3) intrinsics in pixels.
        valid: optional (B, S, H, W) bool, pixels to keep (and'ed with the depth's validity).

    Returns:
        points (B, S·H·W, 3), colours (B, S·H·W, 3), valid (B, S·H·W) bool.
    """
    if not isinstance(rgb, Tensor) or rgb.ndim != 5 or rgb.shape[2] != 3:
        got = tuple(rgb.shape) if isinstance(rgb, Tensor) else type(rgb).__name__
        raise ValueError(f"rgb: expected (B, S, 3, H, W), got {got}")
    b, s, _, h, w = rgb.shape
    if not isinstance(depth, Tensor) or tuple(depth.shape) != (b, s, h, w):
        got = tuple(depth.shape) if isinstance(depth, Tensor) else type(depth).__name__
        raise ValueError(f"depth: expected {(b, s, h, w)}, got {got}")
    depth = depth.float() if not depth.is_floating_point() else depth
    points = depth_to_points(depth, K.to(depth.dtype), c2w.to(depth.dtype)).reshape(b, -1, 3)
    keep = torch.isfinite(depth) & (depth > 0)
    if valid is not None:
        keep = keep & valid.to(torch.bool)
    colors = rgb.to(depth.dtype).permute(0, 1, 3, 4, 2).reshape(b, -1, 3)
    return points, colors, keep.reshape(b, -1)


def render_memory(
    points: Tensor,
    colors: Tensor,
    valid: Tensor,
    c2w: Tensor,
    K: Tensor,
    height: int,
    width: int,
    *,
    radius: int = 1,
    depth_tolerance: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """Render point clouds (B, N, 3) with colours (B, N, 3) into cameras c2w (B, T, 4, 4), K (B, T, 3, 3)
    (splats of ``radius``; points within ``depth_tolerance`` of the nearest compete on placement).

    Returns:
        video (B, T, 3, H, W) (zeros where nothing is drawn) and mask (B, T, H, W) bool.
    """
    b, t = c2w.shape[:2]
    if tuple(c2w.shape) != (b, t, 4, 4) or tuple(K.shape) != (b, t, 3, 3) or points.shape[0] != b:
        raise ValueError(
            f"expected cameras c2w (B, T, 4, 4), K (B, T, 3, 3) for {points.shape[0]} clouds, "
            f"got {tuple(c2w.shape)} and {tuple(K.shape)}"
        )
    per_frame = max(1, points.shape[1] * (2 * radius + 1) ** 2)
    chunk = max(1, MAX_SPLAT_ENTRIES // per_frame)
    videos, masks = [], []
    for start in range(0, t, chunk):  # a few chunks of whole frames, never a loop over points
        n = min(chunk, t - start)
        out = splat_points(
            points.repeat_interleave(n, 0),
            colors.repeat_interleave(n, 0),
            c2w[:, start : start + n].reshape(-1, 4, 4),
            K[:, start : start + n].reshape(-1, 3, 3),
            height,
            width,
            valid=valid.repeat_interleave(n, 0),
            radius=radius,
            depth_tolerance=depth_tolerance,
        )
        videos.append(out.color.reshape(b, n, 3, height, width))
        masks.append(out.mask.reshape(b, n, height, width))
    return torch.cat(videos, 1), torch.cat(masks, 1)


@MODALITIES.register("cache")
class CacheCodec(ModalityCodec):
    """Condition latents of a rendered geometric memory: colour (C) and folded coverage (4) channels.

    Args:
        backend: the latent backend.
        layout: how the coverage masks fold into latent frames ("aetherv1" or "consecutive"; use the
            raymap's).
        source_frames: leading frames of a clip lifted with their true depth when the memory is drawn
            from the ground truth.
        drop: training probability that a sample's memory is dropped (all cache channels zero).
        radius: splat radius in pixels (each point covers (2r+1)² pixels).
        depth_tolerance: relative depth within which splats compete on placement (see
            :func:`aether.geometry.splat_points`).
    """

    name = "cache"
    inputs = MEMORY_INPUTS
    optional_inputs = ("video", "depth", "valid", "c2w", "K")
    condition_role = "memory"

    def __init__(
        self,
        backend: LatentBackend,
        layout: str = "aetherv1",
        source_frames: int = 1,
        drop: float = 0.5,
        radius: int = 1,
        depth_tolerance: float = 0.2,
    ) -> None:
        super().__init__(backend)
        if layout not in FOLD_LAYOUTS:
            raise ValueError(f"expected layout in {FOLD_LAYOUTS}, got {layout!r}")
        if int(source_frames) != source_frames or source_frames < 1:
            raise ValueError(f"expected source_frames >= 1, got {source_frames!r}")
        if not 0.0 <= float(drop) <= 1.0:
            raise ValueError(f"expected drop in [0, 1], got {drop!r}")
        if int(radius) != radius or radius < 0:
            raise ValueError(f"expected radius >= 0, got {radius!r}")
        if backend.temporal_factor != 4:
            raise ValueError(f"expected a backend with temporal factor 4, got {backend.temporal_factor}")
        if not float(depth_tolerance) >= 0:
            raise ValueError(f"expected depth_tolerance >= 0, got {depth_tolerance!r}")
        self.layout, self.source_frames, self.drop = layout, int(source_frames), float(drop)
        self.radius, self.depth_tolerance = int(radius), float(depth_tolerance)

    @property
    def channels(self) -> int:
        return self.backend.latent_channels + self.backend.temporal_factor

    def memory(self, clip: Mapping[str, object]) -> tuple[Tensor, Tensor]:
        """The rendered memory (B,T,3,H,W), mask (B,T,H,W): clip["cache_video"] / ["cache_mask"], else
        the clip's first ``source_frames`` frames lifted with true depth and rendered into its cameras."""
        if isinstance(clip.get("cache_video"), Tensor) and isinstance(clip.get("cache_mask"), Tensor):
            video, mask = clip["cache_video"], clip["cache_mask"]
            if (
                video.ndim != 5
                or video.shape[2] != 3
                or tuple(mask.shape) != (*video.shape[:2], *video.shape[3:])
            ):  # type: ignore[union-attr]
                raise ValueError(
                    f"expected cache_video (B,T,3,H,W) and cache_mask (B,T,H,W), got "
                    f"{tuple(video.shape)} and {tuple(mask.shape)}"  # type: ignore[union-attr]
                )
            return video, mask.to(torch.bool)  # type: ignore[union-attr,return-value]
        need = ("video", "depth", "c2w", "K")
        missing = [k for k in need if not isinstance(clip.get(k), Tensor)]
        if missing:
            raise ValueError(
                f"cache: expected 'cache_video' and 'cache_mask', or the ground truth {list(need)} to draw "
                f"the memory from; missing {missing}"
            )
        check_clip_frames(clip, list(need))
        video, depth, c2w, K = (clip[k] for k in need)
        n = min(self.source_frames, video.shape[1])  # type: ignore[union-attr]
        valid = clip.get("valid")
        points, colors, keep = lift_frames(
            video[:, :n], depth[:, :n], c2w[:, :n], K[:, :n],  # type: ignore[index]
            None if not isinstance(valid, Tensor) else valid[:, :n],
        )  # fmt: skip
        height, width = video.shape[-2:]  # type: ignore[union-attr]
        return render_memory(
            points, colors, keep, c2w, K, height, width,  # type: ignore[arg-type]
            radius=self.radius, depth_tolerance=self.depth_tolerance,
        )  # fmt: skip

    def encode_memory(self, video: Tensor, mask: Tensor) -> Tensor:
        """Latents (B,F,C+4,h,w) of a rendered memory video (B,T,3,H,W) in [-1, 1] and mask (B,T,H,W)."""
        s = int(self.backend.spatial_factor)
        video = torch.where(mask[:, :, None], video.clamp(-1, 1), 0.0).to(self.backend.dtype)
        color = self.backend.encode(video.to(self.backend.device))
        b, t, h, w = mask.shape
        coverage = F.avg_pool2d(mask.reshape(b * t, 1, h, w).float(), s).reshape(b, t, 1, h // s, w // s)
        folded = fold_frames(coverage * 2 - 1, self.layout).to(color)
        return torch.cat([color, folded], dim=2)

    def encode(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Latents (B,F,C+4,h,w) of the clip's memory (see :meth:`memory`)."""
        video, mask = self.memory(clip)
        return self.encode_memory(video, mask)

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        raise ValueError(
            "cache is a condition modality: it is rendered, never decoded (use it as a condition)"
        )
