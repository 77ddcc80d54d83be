import pytest
import torch
from diffusers import AutoencoderKLCogVideoX

from aether.modalities import LATENT_BACKENDS, CogVideoXBackend

from .conftest import TINY_VAE_SCALING


@pytest.fixture(scope="module")
def backend(tiny_vae_dir):
    return CogVideoXBackend.from_pretrained(tiny_vae_dir)


def test_loads_geometry_and_scaling_from_config(backend):
    assert backend.spatial_factor == 8
    assert backend.temporal_factor == 4
    assert backend.latent_channels == 16
    assert backend.scaling_factor == pytest.approx(TINY_VAE_SCALING)
    assert backend.dtype == torch.float32


@pytest.mark.parametrize(("frames", "latent_frames"), [(17, 5), (41, 11)])
def test_encode_decode_shapes(backend, frames, latent_frames):
    video = torch.rand(1, frames, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        latents = backend.encode(video)
        decoded = backend.decode(latents)
    assert latents.shape == (1, latent_frames, 16, 2, 3)
    assert decoded.shape == (1, frames, 3, 16, 24)
    assert torch.isfinite(decoded).all()


def test_latents_are_the_scaled_posterior(backend, tiny_vae_dir):
    vae = AutoencoderKLCogVideoX.from_pretrained(tiny_vae_dir / "vae")
    video = torch.rand(1, 9, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        posterior = vae.encode(video.permute(0, 2, 1, 3, 4)).latent_dist
        expected_mode = posterior.mode().permute(0, 2, 1, 3, 4) * TINY_VAE_SCALING
        torch.testing.assert_close(backend.encode(video), expected_mode)

        noise = torch.randn(
            expected_mode.permute(0, 2, 1, 3, 4).shape, generator=torch.Generator().manual_seed(3)
        )
        expected_sample = (posterior.mean + posterior.std * noise).permute(0, 2, 1, 3, 4) * TINY_VAE_SCALING
        sample = backend.encode(video, sample=True, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(sample, expected_sample)
        assert not torch.allclose(sample, expected_mode)

        expected_video = vae.decode(expected_mode.permute(0, 2, 1, 3, 4) / TINY_VAE_SCALING).sample
        torch.testing.assert_close(backend.decode(expected_mode), expected_video.permute(0, 2, 1, 3, 4))


def test_loads_the_vae_folder_itself_and_through_the_registry(tiny_vae_dir):
    direct = CogVideoXBackend(tiny_vae_dir / "vae")
    built = LATENT_BACKENDS.build("cogvideox", path_or_id=str(tiny_vae_dir), torch_dtype="float64")
    assert isinstance(built, CogVideoXBackend)
    assert built.dtype == torch.float64
    video = torch.rand(1, 5, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(built.encode(video).float(), direct.encode(video), atol=1e-4, rtol=1e-4)


def test_slicing_and_tiling(tiny_vae_dir, backend):
    sliced = CogVideoXBackend(tiny_vae_dir, enable_slicing=True)
    sliced.enable_tiling(tile_sample_min_height=16, tile_sample_min_width=24)
    assert sliced.vae.use_slicing and sliced.vae.use_tiling
    video = torch.rand(2, 5, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(sliced.encode(video), backend.encode(video), atol=1e-5, rtol=1e-5)


def test_bfloat16(tiny_vae_dir):
    half = CogVideoXBackend(tiny_vae_dir, torch_dtype=torch.bfloat16)
    video = torch.rand(1, 5, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        latents = half.encode(video)
        assert latents.dtype == torch.bfloat16
        assert half.decode(latents.float()).dtype == torch.bfloat16


def test_bad_input_raises(backend, tmp_path, tiny_vae_dir):
    with pytest.raises(ValueError, match="4k\\+1"):
        backend.encode(torch.zeros(1, 16, 3, 16, 24))
    with pytest.raises(ValueError, match="multiples of the spatial factor 8, got 20x24"):
        backend.encode(torch.zeros(1, 17, 3, 20, 24))
    with pytest.raises(ValueError, match="\\(B,F,16,h,w\\)"):
        backend.decode(torch.zeros(1, 5, 8, 2, 3))
    with pytest.raises(ValueError, match="in \\[17, 41\\], got 9"):
        CogVideoXBackend(tiny_vae_dir, allowed_frames=(17, 41)).encode(torch.zeros(1, 9, 3, 16, 24))
    with pytest.raises(ValueError, match="exactly one of vae"):
        CogVideoXBackend()
    with pytest.raises(ValueError, match="dtype name"):
        CogVideoXBackend(tiny_vae_dir, torch_dtype="float99")
    file = tmp_path / "weights.bin"
    file.write_bytes(b"")
    with pytest.raises(ValueError, match="model directory or hub id"):
        CogVideoXBackend(file)
