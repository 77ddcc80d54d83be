"""``depth_hint``: a depth video as a one-channel latent, usable as a condition and as a target.

Encoding: AetherV1's normalised disparity ``sqrt(clip((1/depth)/dmax, 0, 1))·2 − 1`` of the last
frame of each latent frame's group (frames 0, 4, 8, …), area-averaged over the backend's spatial
factor: (B,T,H,W) depth -> (B,F,1,h,w). Decoding repeats each latent frame over its group:
(B,F,1,h,w) -> {"depth_hint": (B,T,h,w)}, T = 4(F − 1) + 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from aether.modalities import ModalityCodec, clip_dmax, normalize_disparity, valid_depth_mask


class DepthHintCodec(ModalityCodec):
    """A signal condition (its role by default) whose stage-2 loss is the L1 distance of the decoded
    hints (``depth_hint``, weight 1)."""

    name = "depth_hint"
    inputs = ("depth",)
    optional_inputs = ("valid", "dmax")
    stage2_options = {"depth_hint": 1.0}

    @property
    def channels(self) -> int:
        return 1

    def encode(
        self, clip: Mapping[str, object], *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        depth: Tensor = clip["depth"]  # type: ignore[assignment]
        valid = valid_depth_mask(depth.float(), clip.get("valid"))  # type: ignore[arg-type]
        dmax = clip.get("dmax")
        dmax = clip_dmax(depth.float(), valid) if dmax is None else torch.as_tensor(dmax).expand(len(depth))
        x = normalize_disparity(depth.float(), valid, dmax.float())[:, :: self.backend.temporal_factor]
        pooled = F.avg_pool2d(x.flatten(0, 1)[:, None], self.backend.spatial_factor)
        return pooled.unflatten(0, x.shape[:2])

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        step = self.backend.temporal_factor
        frames = torch.arange(step * (latents.shape[1] - 1) + 1, device=latents.device)
        return {"depth_hint": latents[:, (frames + step - 1) // step, 0]}

    def stage2_losses(self, pred: Tensor, true: Tensor, batch: object) -> dict[str, Tensor]:
        error = self.decode(pred)["depth_hint"] - self.decode(true)["depth_hint"]
        return {"depth_hint": error.abs().flatten(1).mean(1)}
