"""A deterministic, weight-free latent backend with CogVideoX's temporal geometry."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .base import LATENT_BACKENDS, LatentBackend
from .validation import check_latents


def dct_matrix(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Orthonormal DCT-II matrix (n, n): row k is the k-th cosine basis vector."""
    k = torch.arange(n, dtype=dtype)[:, None]
    i = torch.arange(n, dtype=dtype)[None, :]
    basis = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    basis[0] = math.sqrt(1.0 / n)
    return basis


# Orthonormal colour transform: luma, then two opponent channels.
_COLOUR = torch.tensor(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
        [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)],
    ],
    dtype=torch.float64,
)


def block_basis(spatial_factor: int, temporal_factor: int = 4) -> Tensor:
    """Orthonormal basis (D, D) of a colour space-time block, D = 3·temporal·spatial², rows
    ordered from smooth to detailed.

    Block vectors are flattened as (colour, t, y, x). Rows are Kronecker products of the colour
    transform and DCT-II bases along t, y and x, sorted by total frequency ``kt + ky + kx``, then
    colour (luma first), then ``kt``, ``ky``, ``kx``.
    """
    s, n = spatial_factor, temporal_factor
    full = torch.kron(torch.kron(torch.kron(_COLOUR, dct_matrix(n)), dct_matrix(s)), dct_matrix(s))
    c, kt, ky, kx = torch.meshgrid(
        torch.arange(3), torch.arange(n), torch.arange(s), torch.arange(s), indexing="ij"
    )
    freq = kt + ky + kx
    key = (((freq * 3 + c) * n + kt) * s + ky) * s + kx
    return full[torch.argsort(key.flatten())]


@LATENT_BACKENDS.register("tiny")
class TinyBackend(LatentBackend):
    """Invertible space-to-depth and time-to-channel fold with an optional smooth truncation.

    Frames are grouped like CogVideoX's VAE: latent frame 0 holds frame 0 (repeated 4 times),
    latent frame f > 0 holds frames 4f-3 … 4f. Each colour block of 4 frames × s × s pixels
    (D = 3·4·s² values) is expressed in a fixed orthonormal basis (colour transform ⊗ DCT-II in t, y
    and x, ordered from smooth to detailed) and the first ``latent_channels`` coefficients are kept.

    Channels: ``latent_channels`` defaults to D = 12·s² (exact round trip up to float rounding);
    a smaller value keeps the smoothest components only (lossy, good for smooth images).
    ``scaling_factor`` defaults to 1/√D so that the first (luma DC) channel equals the block's mean
    grey value.

    Args:
        spatial_factor: s, the spatial downsampling (H and W must be divisible by it).
        latent_channels: coefficients kept per block, 1 … 12·s²; None keeps all (exact).
        scaling_factor: latent multiplier; None for 1/√D.
        allowed_frames: frame counts accepted, or None for any 4k + 1.
    """

    temporal_factor = 4

    def __init__(
        self,
        spatial_factor: int = 8,
        latent_channels: int | None = None,
        scaling_factor: float | None = None,
        allowed_frames: Sequence[int] | None = None,
    ) -> None:
        super().__init__(allowed_frames)
        if int(spatial_factor) != spatial_factor or spatial_factor < 1:
            raise ValueError(f"expected a positive integer spatial_factor, got {spatial_factor!r}")
        self.spatial_factor = int(spatial_factor)
        block = 3 * self.temporal_factor * self.spatial_factor**2
        if latent_channels is None:
            latent_channels = block
        if int(latent_channels) != latent_channels or not 1 <= latent_channels <= block:
            raise ValueError(
                f"expected latent_channels in [1, {block}] for spatial_factor {spatial_factor}, "
                f"got {latent_channels!r}"
            )
        self.latent_channels = int(latent_channels)
        self.scaling_factor = float(1.0 / math.sqrt(block) if scaling_factor is None else scaling_factor)
        if not math.isfinite(self.scaling_factor) or self.scaling_factor <= 0:
            raise ValueError(f"expected a positive finite scaling_factor, got {scaling_factor!r}")
        basis = block_basis(self.spatial_factor, self.temporal_factor)[: self.latent_channels]
        self.register_buffer("basis", basis.to(torch.float32), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.basis.dtype

    @property
    def device(self) -> torch.device:
        return self.basis.device

    def encode(
        self, video: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """(B,T,3,H,W) in [-1, 1] -> (B,F,latent_channels,H/s,W/s); deterministic (``sample`` and
        ``generator`` are accepted for interface parity and ignored)."""
        num_latent, h, w = self.check_video(video)
        b, s, n = video.shape[0], self.spatial_factor, self.temporal_factor
        video = video.to(self.dtype)
        # Latent frame 0 is frame 0 repeated n times: its coefficients use the basis summed over t.
        first = video[:, :1].reshape(b, 1, 3, h, s, w, s).permute(0, 1, 3, 5, 2, 4, 6)
        coeffs = [first.reshape(b, 1, h, w, -1) @ self.basis.unflatten(1, (3, n, s * s)).sum(2).flatten(1).T]
        if num_latent > 1:
            rest = video[:, 1:].reshape(b, num_latent - 1, n, 3, h, s, w, s).permute(0, 1, 4, 6, 3, 2, 5, 7)
            coeffs.append(rest.reshape(b, num_latent - 1, h, w, -1) @ self.basis.T)
        return (torch.cat(coeffs, dim=1) * self.scaling_factor).permute(0, 1, 4, 2, 3)

    def decode(self, latents: Tensor) -> Tensor:
        """(B,F,latent_channels,h,w) -> (B,4(F-1)+1,3,h·s,w·s)."""
        check_latents(latents, self.latent_channels)
        b, num_latent, _, h, w = latents.shape
        s, n = self.spatial_factor, self.temporal_factor
        coeffs = latents.to(self.dtype).permute(0, 1, 3, 4, 2) / self.scaling_factor
        # Frame 0 is the mean of latent frame 0's n copies: the basis averaged over t.
        first = coeffs[:, :1] @ self.basis.unflatten(1, (3, n, s * s)).mean(2).flatten(1)
        first = first.reshape(b, 1, h, w, 3, s, s).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, 1, 3, h * s, w * s)
        rest = (coeffs[:, 1:] @ self.basis).reshape(b, num_latent - 1, h, w, 3, n, s, s)
        rest = rest.permute(0, 1, 5, 4, 2, 6, 3, 7).reshape(b, (num_latent - 1) * n, 3, h * s, w * s)
        return torch.cat([first, rest], dim=1)
