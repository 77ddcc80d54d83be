"""Registries and base classes of the latent backends and modality codecs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from aether.registry import Registry

from .validation import check_num_frames, check_spatial_size, check_video

LATENT_BACKENDS: Registry[type[LatentBackend]] = Registry("latent backend", "aether.latent_backends")
MODALITIES: Registry[type[ModalityCodec]] = Registry("modality", "aether.modalities")


class LatentBackend(nn.Module):
    """A video autoencoder with CogVideoX's temporal geometry.

    A clip of T = 4k + 1 frames (B,T,3,H,W) in [-1, 1] maps to latents (B,F,C,h,w) with
    F = (T - 1) // 4 + 1 (the first frame alone, then groups of 4), h = H / spatial_factor and
    w = W / spatial_factor. Latents are returned already multiplied by ``scaling_factor``.

    Attributes:
        latent_channels: C.
        spatial_factor: H / h.
        temporal_factor: frames per latent frame after the first (4).
        scaling_factor: multiplier applied to the raw latents.
        allowed_frames: frame counts accepted, or None for any 4k + 1.
    """

    latent_channels: int
    spatial_factor: int
    temporal_factor: int = 4
    scaling_factor: float = 1.0
    execution_device: torch.device | None = None
    """Set while the backend's weights are offloaded to the CPU: the device it computes on."""

    def __init__(self, allowed_frames: Sequence[int] | None = None) -> None:
        super().__init__()
        self.allowed_frames = None if allowed_frames is None else tuple(int(t) for t in allowed_frames)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the backend computes in (latents come out in it)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def check_video(self, video: Tensor, name: str = "video") -> tuple[int, int, int]:
        """Validate a video (B,T,3,H,W) for this backend; return (F, h, w)."""
        check_video(video, name)
        num_latent = check_num_frames(video.shape[1], self.temporal_factor, self.allowed_frames)
        h, w = check_spatial_size(video.shape[-2], video.shape[-1], self.spatial_factor)
        return num_latent, h, w

    def encode(
        self, video: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Encode (B,T,3,H,W) in [-1, 1] to scaled latents (B,F,C,h,w)."""
        raise NotImplementedError

    def decode(self, latents: Tensor) -> Tensor:
        """Decode scaled latents (B,F,C,h,w) to a video (B,T,3,H,W), T = 4(F - 1) + 1."""
        raise NotImplementedError


class ModalityCodec(nn.Module):
    """Encodes one modality of a clip dict to latents (B,F,channels,h,w) and back.

    Attributes:
        name: registry name.
        channels: latent channels the modality occupies.
        inputs: clip keys it reads.
        optional_inputs: clip keys it reads when present.
    """

    name: str = ""
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()

    def __init__(self, backend: LatentBackend) -> None:
        super().__init__()
        self.backend = backend

    @property
    def channels(self) -> int:
        raise NotImplementedError

    def encode(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Encode the modality's inputs in ``clip`` to latents (B,F,channels,h,w)."""
        raise NotImplementedError

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        """Decode latents (B,F,channels,h,w); ``clip`` supplies known side information."""
        raise NotImplementedError
