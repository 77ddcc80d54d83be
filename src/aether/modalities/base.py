"""Registries and base classes of the latent backends and modality codecs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from aether.registry import Registry

from .validation import check_num_frames, check_spatial_size, check_video

LATENT_BACKENDS: Registry[type[LatentBackend]] = Registry("latent backend", "aether.latent_backends")
MODALITIES: Registry[type[ModalityCodec]] = Registry("modality", "aether.modalities")
SIGNAL_ROLES = ("signal", "memory")
"""The condition roles encoded from clip entries given to a sampler ("signals"; zeros when absent)."""
MEMORY_INPUTS = ("cache_video", "cache_mask")
"""The clip entries a "memory" condition is encoded from: the render (B,T,3,H,W) in [-1, 1] of what was
seen so far in the clip's cameras and its coverage mask (B,T,H,W) bool."""


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

    def reference_decode(self, latents: Tensor) -> Tensor:
        """:meth:`decode` as the reference AetherV1 implementation writes it (same by default)."""
        return self.decode(latents)


class ModalityCodec(nn.Module):
    """Encodes one modality of a clip dict to latents (B,F,channels,h,w) and back.

    What a codec is, generic code reads from its class data and never from its name (as diffusers'
    pipelines declare ``model_cpu_offload_seq``): where a sampled clip's decode goes (``outputs``),
    what it is as a condition (``condition_role``) and which stage-2 options it owns
    (``stage2_options``).

    Attributes:
        name: registry name.
        channels: latent channels the modality occupies.
        inputs: clip keys it reads.
        optional_inputs: clip keys it reads when present.
        outputs: the ``SampleOutput`` / ``World4D`` fields :meth:`sample_outputs` fills; a codec
            without any decodes into ``World4D.modalities`` (under its name, or ``name.key``).
        condition_role: in a condition stack, "frames" (the colour latents a task places in the
            frames it is given), "action" (the camera trajectory, given as per-frame raymaps and
            folded by ``fold``), "signal" (encoded from clip entries given to the sampler;
            zeros when absent; in training kept or zeroed with the action) or "memory" (the
            geometric memory: what was seen so far rendered into the clip's cameras, given to the
            sampler as the clip entries :data:`MEMORY_INPUTS`, zeros when absent; a condition only;
            in training the codec draws it from the clip's ground truth and a sample's memory is
            zeroed with probability ``drop``, independently of the action).
        drop: as a "memory" condition, the training probability that a sample's latents are zeroed.
        stage2_options: the stage-2 options this codec's loss reads, with their defaults (loss
            weights are keyed by the loss names :meth:`stage2_losses` returns).
    """

    name: str = ""
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    condition_role: ClassVar[str] = "signal"
    drop: float = 0.0
    stage2_options: ClassVar[Mapping[str, Any]] = {}

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

    def sample_outputs(
        self, latents: Tensor, side: Mapping[str, object], num_frames: int, *, reference: bool = False
    ) -> dict[str, Tensor]:
        """A sampled clip's latents (B,F,channels,h,w) decoded into named outputs (B,T,...).

        Keys in ``outputs`` fill those ``SampleOutput`` fields; other keys go to
        ``SampleOutput.extras`` (and ``World4D.modalities``).

        Args:
            latents: in the sampler's latent dtype.
            side: side information ("height", "width", "dmax" when known).
            num_frames: T.
            reference: decode as the reference AetherV1 implementation does (codecs without a
                reference formula decode as usual).
        """
        decoded = self.decode(latents.float(), side)
        return {(self.name if key == self.name else f"{self.name}.{key}"): v for key, v in decoded.items()}

    def stage2_losses(self, pred: Tensor, true: Tensor, batch: Any) -> dict[str, Tensor]:
        """Per-sample (B,) decoded-space losses of stage 2, by loss name (none by default).

        Args:
            pred: (B,F,channels,h,w) predicted clean latents of this modality.
            true: (B,F,channels,h,w) the true latents.
            batch: an :class:`aether.modalities.losses.Stage2Batch`.
        """
        return {}
