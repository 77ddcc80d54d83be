"""RGB video ↔ latents through the latent backend."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from .base import MODALITIES, ModalityCodec
from .validation import check_clip_frames


@MODALITIES.register("color")
class ColorCodec(ModalityCodec):
    """Encodes clip["video"] (B,T,3,H,W) in [-1, 1]; the latents are the backend's (scaled)."""

    name = "color"
    inputs = ("video",)

    @property
    def channels(self) -> int:
        return self.backend.latent_channels

    def encode(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Latents (B,F,C,h,w) of clip["video"]; ``sample`` draws a posterior sample (VAEs)."""
        check_clip_frames(clip, ["video"])
        return self.backend.encode(clip["video"], sample=sample, generator=generator)  # type: ignore[arg-type]

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        """Latents (B,F,C,h,w) -> {"video": (B,T,3,H,W)}, approximately in [-1, 1] (not clamped)."""
        return {"video": self.backend.decode(latents)}
