"""RGB video ↔ latents through the latent backend."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from . import losses
from .base import MODALITIES, ModalityCodec
from .validation import check_clip_frames


@MODALITIES.register("color")
class ColorCodec(ModalityCodec):
    """Encodes clip["video"] (B,T,3,H,W) in [-1, 1]; the latents are the backend's (scaled).

    Sampled clips decode into ``rgb``; as a condition it holds the frames a task is given; its
    stage-2 loss is 1 − MS-SSIM (``color``) on ``color_frames`` random frames (None: all).
    """

    name = "color"
    inputs = ("video",)
    outputs = ("rgb",)
    condition_role = "frames"
    stage2_options = {"color": 1.0, "color_frames": None}

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

    def sample_outputs(
        self, latents: Tensor, side: Mapping[str, object], num_frames: int, *, reference: bool = False
    ) -> dict[str, Tensor]:
        """{"rgb": (B,T,H,W,3) float32 in [0, 1]}: clamp(x/2 + 0.5, 0, 1) of the decoded video (the
        reference's formula; with ``reference`` in the backend's dtype, decoded its way)."""
        video = self.backend.reference_decode(latents) if reference else self.decode(latents.float())["video"]
        return {"rgb": (video / 2 + 0.5).clamp(0, 1).float().permute(0, 1, 3, 4, 2)}

    def stage2_losses(self, pred: Tensor, true: Tensor, batch: losses.Stage2Batch) -> dict[str, Tensor]:
        """{"color": (B,) 1 − MS-SSIM} of the decoded prediction against clip["video"]."""
        video_pred, video_true = self.decode(pred)["video"], batch.clip["video"]
        frames = batch.options["color_frames"]
        if frames is not None and frames < video_true.shape[1]:  # a random subset of frames
            pick = torch.randperm(video_true.shape[1], generator=batch.generator)[: int(frames)].to(
                video_true.device
            )
            video_pred, video_true = video_pred[:, pick], video_true[:, pick]
        return {"color": losses.ms_ssim_loss(video_pred, video_true)}
