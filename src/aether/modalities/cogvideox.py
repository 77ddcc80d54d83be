"""The CogVideoX video VAE as a latent backend (diffusers ``AutoencoderKLCogVideoX``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .base import LATENT_BACKENDS, LatentBackend
from .validation import check_latents

if TYPE_CHECKING:
    from diffusers import AutoencoderKLCogVideoX


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype from a dtype, its name ("bfloat16", "torch.float16") or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"expected a torch dtype name such as 'bfloat16' or 'float32', got {dtype!r}")
    return resolved


def load_cogvideox_vae(
    path_or_id: str | os.PathLike, subfolder: str | None = "vae", torch_dtype: torch.dtype | str | None = None
) -> AutoencoderKLCogVideoX:
    """Load ``AutoencoderKLCogVideoX`` from a hub id or a local directory.

    A local directory may be the full model (with a ``subfolder``) or the VAE folder itself.
    """
    from diffusers import AutoencoderKLCogVideoX

    path = os.fspath(path_or_id)
    if (
        subfolder
        and os.path.isdir(path)
        and not os.path.isdir(os.path.join(path, subfolder))
        and os.path.isfile(os.path.join(path, "config.json"))
    ):
        subfolder = None
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"expected a model directory or hub id, got the file {path!r}")
    return AutoencoderKLCogVideoX.from_pretrained(
        path, subfolder=subfolder, torch_dtype=resolve_dtype(torch_dtype)
    )


@LATENT_BACKENDS.register("cogvideox")
class CogVideoXBackend(LatentBackend):
    """CogVideoX's causal 3D VAE: spatial factor 2^(levels-1) (8), temporal factor 4.

    Latents are ``(z - shift_factor) * scaling_factor`` with both read from the VAE config
    (CogVideoX has no shift). Inputs are cast to the VAE's dtype; latents and decoded videos come
    out in the VAE's dtype (bf16 when loaded so, as the released pipeline runs).

    Args:
        vae: an ``AutoencoderKLCogVideoX``, or a hub id / local directory to load it from.
        path_or_id: alternatively (keyword), the hub id / local directory to load from.
        subfolder: folder of the VAE inside ``vae`` when loading ("vae"; ignored when the directory
            is the VAE folder itself).
        torch_dtype: dtype to load or cast the VAE to (a dtype or its name).
        enable_slicing: encode/decode one batch element at a time.
        enable_tiling: encode/decode in overlapping spatial tiles.
        allowed_frames: frame counts accepted (AetherV1: 17, 25, 33, 41), or None for any 4k + 1.
    """

    def __init__(
        self,
        vae: AutoencoderKLCogVideoX | str | os.PathLike | None = None,
        subfolder: str | None = "vae",
        torch_dtype: torch.dtype | str | None = None,
        enable_slicing: bool = False,
        enable_tiling: bool = False,
        allowed_frames: Sequence[int] | None = None,
        *,
        path_or_id: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(allowed_frames)
        if (vae is None) == (path_or_id is None):
            raise ValueError(
                "expected exactly one of vae (a model, hub id or directory) or path_or_id, "
                f"got vae={vae!r}, path_or_id={path_or_id!r}"
            )
        vae = path_or_id if vae is None else vae
        if isinstance(vae, (str, os.PathLike)):
            vae = load_cogvideox_vae(vae, subfolder=subfolder, torch_dtype=torch_dtype)
        elif torch_dtype is not None:
            vae = vae.to(resolve_dtype(torch_dtype))
        self.vae = vae.eval().requires_grad_(False)
        config = vae.config
        self.latent_channels = int(config.latent_channels)
        self.spatial_factor = 2 ** (len(config.block_out_channels) - 1)
        self.temporal_factor = int(config.temporal_compression_ratio)
        self.scaling_factor = float(config.scaling_factor)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)
        if enable_slicing:
            self.enable_slicing()
        if enable_tiling:
            self.enable_tiling()

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike,
        subfolder: str | None = "vae",
        torch_dtype: torch.dtype | str | None = None,
        **kwargs: object,
    ) -> CogVideoXBackend:
        """Load the VAE from a hub id or local directory (``subfolder`` "vae" of a CogVideoX model)."""
        return cls(path_or_id, subfolder=subfolder, torch_dtype=torch_dtype, **kwargs)  # type: ignore[arg-type]

    def enable_slicing(self) -> None:
        """Process one batch element at a time (less memory)."""
        self.vae.enable_slicing()

    def enable_tiling(self, **kwargs: Any) -> None:
        """Process overlapping spatial tiles (less memory at high resolution) that fall on the latent
        grid; kwargs (diffusers' tile sizes and overlap factors) go to
        :func:`~aether.modalities.vae_tiling.configure_tiling`."""
        from .vae_tiling import configure_tiling

        configure_tiling(self.vae, self.spatial_factor, **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    @property
    def device(self) -> torch.device:
        """Where the VAE computes: the offload device when offloaded (see ``execution_device``)."""
        return self.execution_device or self.vae.device

    def encode(
        self, video: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """(B,T,3,H,W) in [-1, 1] -> scaled latents (B,F,C,H/8,W/8) in the VAE's dtype.

        ``sample=True`` draws one posterior sample (with ``generator``); otherwise the posterior mode.
        """
        self.check_video(video)
        x = video.to(device=self.device, dtype=self.dtype).permute(0, 2, 1, 3, 4)
        posterior = self.vae.encode(x).latent_dist
        z = posterior.sample(generator=generator) if sample else posterior.mode()
        return ((z - self.shift_factor) * self.scaling_factor).permute(0, 2, 1, 3, 4)

    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents (B,F,C,h,w) -> video (B,4(F-1)+1,3,8h,8w), approximately in [-1, 1]."""
        check_latents(latents, self.latent_channels)
        z = latents.to(device=self.device, dtype=self.dtype).permute(0, 2, 1, 3, 4)
        video = self.vae.decode(z / self.scaling_factor + self.shift_factor).sample
        return video.permute(0, 2, 1, 3, 4)

    def reference_decode(self, latents: Tensor) -> Tensor:
        """Decode as the reference writes it: ``vae.decode(1 / scaling_factor * z)`` in the VAE dtype."""
        frames = self.vae.decode(1 / self.scaling_factor * latents.permute(0, 2, 1, 3, 4)).sample
        return frames.permute(0, 2, 1, 3, 4)
