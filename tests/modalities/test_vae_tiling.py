"""Spatial VAE tiling on the latent grid: frames smaller than, equal to and larger than one tile encode
and decode to the untiled shapes; untiled frames are bit-identical; tiled frames are exactly the
independently coded tiles placed on the grid and blended linearly over the overlap."""

import copy

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX

from aether.modalities import CogVideoXBackend
from aether.modalities.vae_tiling import aligned_overlap
from aether.models.testing import tiny_vae_config

TILE_H, TILE_W = 32, 48  # half the VAE's sample size, diffusers' default tile


@pytest.fixture(scope="module")
def backends():
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**tiny_vae_config(2 * TILE_H, 2 * TILE_W))
    plain = CogVideoXBackend(vae)
    tiled = CogVideoXBackend(copy.deepcopy(vae))
    tiled.enable_tiling()
    return plain, tiled


def _video(height: int, width: int, frames: int = 9) -> torch.Tensor:
    g = torch.Generator().manual_seed(height * 1000 + width)
    return torch.rand(1, frames, 3, height, width, generator=g) * 2 - 1


def _blend(prev: torch.Tensor, tile: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """Linear cross-fade of ``prev``'s last ``extent`` cells into ``tile``'s first along ``dim``."""
    extent = min(extent, prev.shape[dim], tile.shape[dim])
    tile = tile.clone()
    for k in range(extent):
        w = k / extent
        mixed = prev.select(dim, prev.shape[dim] - extent + k) * (1 - w) + tile.select(dim, k) * w
        tile.select(dim, k).copy_(mixed)
    return tile


def _reference_tiling(code, x: torch.Tensor, tile: tuple[int, int], blend: tuple[int, int], scale: float):
    """Tiled ``code`` of x (B, T, C, H, W): tiles of ``tile`` input cells placed every ``tile - blend``
    output cells (in input cells: that over ``scale``), coded alone, cross-faded in raster order over
    ``blend`` output cells with the (already cross-faded) tile above and to the left, each tile keeping
    its first ``tile·scale - blend`` cells."""
    out_tile = [int(t * scale) for t in tile]
    keep = [o - b for o, b in zip(out_tile, blend)]
    step = [int(k / scale) for k in keep]
    rows = [
        [code(x[..., i : i + tile[0], j : j + tile[1]]) for j in range(0, x.shape[-1], step[1])]
        for i in range(0, x.shape[-2], step[0])
    ]
    out_rows = []
    for i, row in enumerate(rows):
        kept = []
        for j, t in enumerate(row):
            if i > 0:
                t = _blend(rows[i - 1][j], t, blend[0], dim=3)
            if j > 0:
                t = _blend(row[j - 1], t, blend[1], dim=4)
            row[j] = t
            kept.append(t[..., : keep[0], : keep[1]])
        out_rows.append(torch.cat(kept, dim=4))
    return torch.cat(out_rows, dim=3)


def test_overlap_factors_are_exact_on_the_grid():
    for tile in (16, 24, 32, 48, 240, 360, 480, 720):
        for requested in (1 / 6, 1 / 5, 0.25, 0.0):
            f = aligned_overlap(tile, 8, requested)
            latent = tile // 8
            blend = int(latent * f)
            assert blend == round(latent * requested) or blend == latent - 1
            assert int(tile * (1 - f)) == (latent - blend) * 8  # encode stride = kept latent cells
            assert int(latent * (1 - f)) * 8 == tile - int(tile * f)  # decode stride = kept pixels
    with pytest.raises(ValueError, match="multiple of 8"):
        aligned_overlap(30, 8, 0.2)


@pytest.mark.parametrize(
    ("height", "width"),
    [(16, 24), (TILE_H, TILE_W), (64, 96), (40, 56), (96, 48)],
    ids=["smaller", "one-tile", "2x2-tiles", "ragged", "tall"],
)
def test_tiled_encode_decode_matches_untiled_shapes_and_the_reference(backends, height, width):
    plain, tiled = backends
    video = _video(height, width)
    with torch.no_grad():
        z_plain, z_tiled = plain.encode(video), tiled.encode(video)
        x_plain, x_tiled = plain.decode(z_plain), tiled.decode(z_plain)
    assert z_tiled.shape == z_plain.shape == (1, 3, 16, height // 8, width // 8)
    assert x_tiled.shape == x_plain.shape == video.shape
    if height <= TILE_H and width <= TILE_W:  # one tile: not tiled, bit-identical
        assert torch.equal(z_tiled, z_plain) and torch.equal(x_tiled, x_plain)
        return
    vae = tiled.vae
    latent_blend = (
        int(TILE_H // 8 * vae.tile_overlap_factor_height),
        int(TILE_W // 8 * vae.tile_overlap_factor_width),
    )
    pixel_blend = (int(TILE_H * vae.tile_overlap_factor_height), int(TILE_W * vae.tile_overlap_factor_width))
    with torch.no_grad():
        z_ref = _reference_tiling(plain.encode, video, (TILE_H, TILE_W), latent_blend, 1 / 8)
        x_ref = _reference_tiling(plain.decode, z_plain, (TILE_H // 8, TILE_W // 8), pixel_blend, 8)
    torch.testing.assert_close(z_tiled, z_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x_tiled, x_ref, atol=1e-5, rtol=1e-5)


def test_pipeline_reconstructs_with_tiling_on_frames_larger_than_a_tile(tmp_path):
    import numpy as np

    from aether.apps.model import load_model, save_tiny_model

    model = save_tiny_model(tmp_path / "m", height=64, width=96)  # VAE tiles of 32 x 48 pixels
    pipe = load_model(model)
    pipe.progress = False
    video = np.random.default_rng(0).integers(0, 256, (17, 64, 96, 3), dtype=np.uint8)
    plain = pipe.reconstruct(video, num_inference_steps=2)
    pipe.enable_vae_tiling()
    tiled = pipe.reconstruct(video, num_inference_steps=2)
    assert tiled.depth.shape == plain.depth.shape == (17, 64, 96)
    assert np.isfinite(tiled.depth).all() and np.isfinite(tiled.c2w).all()


def test_tiles_at_480x720_are_diffusers_own():
    """The reference evaluation calls ``vae.enable_tiling()`` on CogVideoX-5b-I2V's VAE (sample size
    480×720): diffusers' defaults, 240×360-pixel tiles with overlap factors 1/6 and 1/5. The library's
    grid-aligned tiling picks the same tiles there, so its tiled codes equal diffusers' own bit for bit."""
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**tiny_vae_config(480, 720))
    reference = copy.deepcopy(vae)
    reference.enable_tiling()
    ours = CogVideoXBackend(vae)
    ours.enable_tiling()
    names = ("tile_sample_min_height", "tile_sample_min_width", "tile_latent_min_height")
    names += ("tile_latent_min_width", "tile_overlap_factor_height", "tile_overlap_factor_width")
    assert [getattr(vae, n) for n in names] == [240, 360, 30, 45, 1 / 6, 1 / 5]
    assert [getattr(vae, n) for n in names] == [getattr(reference, n) for n in names]
    x = _video(480, 720, frames=1)
    with torch.no_grad():
        z_ref = reference.encode(x.permute(0, 2, 1, 3, 4)).latent_dist.mode()
        z_ours = vae.encode(x.permute(0, 2, 1, 3, 4)).latent_dist.mode()
        untiled = copy.deepcopy(vae)
        untiled.disable_tiling()
        z_untiled = untiled.encode(x.permute(0, 2, 1, 3, 4)).latent_dist.mode()
    assert torch.equal(z_ours, z_ref)
    assert not torch.allclose(z_ours, z_untiled, atol=1e-4)  # per-tile statistics: tiling matters here
