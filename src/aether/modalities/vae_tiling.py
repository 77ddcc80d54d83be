"""Spatial tiling of the CogVideoX VAE on tiles that fall on the latent grid.

diffusers' ``AutoencoderKLCogVideoX`` tiles with ``stride = int(tile · (1 - overlap))`` pixels but keeps
``tile/8 - int(tile/8 · overlap)`` latent rows per tile (and the mirror image when decoding). The two
agree only when the overlap factor makes both products whole numbers of latent cells; otherwise the
tiles are misplaced and the stitched latents come out one cell too large or small (a 64-pixel frame
encoded in 32-pixel tiles with the default 1/6 overlap gives 9 latent rows instead of 8). This module
picks the tile size and overlap factors so that diffusers' own arithmetic lands on the grid.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_OVERLAP = (1 / 6, 1 / 5)
"""diffusers' default overlap factors (height, width) of the CogVideoX VAE."""


def _consistent(tile: int, factor: int, overlap: float) -> bool:
    """Whether diffusers' encode and decode strides (float products truncated by ``int``) match the
    rows each tile keeps, for a ``tile``-pixel tile of a VAE with spatial ``factor``."""
    latent = tile // factor
    encode_ok = int(tile * (1 - overlap)) == (latent - int(latent * overlap)) * factor
    decode_ok = int(latent * (1 - overlap)) * factor == tile - int(tile * overlap)
    return encode_ok and decode_ok


def aligned_overlap(tile: int, factor: int, overlap: float) -> float:
    """The overlap factor nearest ``overlap`` whose blend is a whole number of latent cells and on which
    diffusers' tiling arithmetic is exact, for a ``tile``-pixel tile (a multiple of ``factor``).

    Returns a factor in [0, 1) leaving at least one latent cell of stride.
    """
    if tile % factor or tile < factor:
        raise ValueError(f"tile size must be a positive multiple of {factor}, got {tile}")
    latent = tile // factor
    blend = min(max(round(latent * overlap), 0), latent - 1)
    exact = blend / latent
    for candidate in (exact, math.nextafter(exact, 1.0), math.nextafter(exact, 0.0)):
        if int(latent * candidate) == blend and _consistent(tile, factor, candidate):
            return candidate
    raise ValueError(f"no exact overlap factor for a {tile}-pixel tile at blend {blend}")  # pragma: no cover


def configure_tiling(
    vae: Any,
    factor: int,
    *,
    tile_sample_min_height: int | None = None,
    tile_sample_min_width: int | None = None,
    tile_overlap_factor_height: float | None = None,
    tile_overlap_factor_width: float | None = None,
) -> None:
    """Enable spatial tiling on an ``AutoencoderKLCogVideoX`` with grid-aligned tiles.

    Tile sizes default to diffusers' (half the VAE's ``sample_height`` / ``sample_width``) and are
    rounded down to a multiple of ``factor`` (at least two latent cells); overlap factors default to
    diffusers' (1/6, 1/5) and are moved to the nearest exact value (:func:`aligned_overlap`). Frames no
    larger than one tile are not tiled (diffusers' rule), so they encode and decode exactly as untiled.
    """
    config = vae.config
    sizes = []
    for given, sample in (
        (tile_sample_min_height, config.sample_height),
        (tile_sample_min_width, config.sample_width),
    ):
        tile = int(given if given is not None else int(sample / 2))
        sizes.append(max(tile // factor, 2) * factor)
    overlaps = [
        aligned_overlap(tile, factor, default if given is None else float(given))
        for tile, given, default in zip(
            sizes, (tile_overlap_factor_height, tile_overlap_factor_width), DEFAULT_OVERLAP
        )
    ]
    vae.enable_tiling(tile_sample_min_height=sizes[0], tile_sample_min_width=sizes[1])
    # set directly: diffusers reads a factor of 0 as "keep the previous one"
    vae.tile_overlap_factor_height, vae.tile_overlap_factor_width = overlaps
