import pytest
import torch
import torch.nn.functional as F

from aether.modalities import LATENT_BACKENDS, TinyBackend
from aether.modalities.tiny import block_basis

from ._helpers import psnr, smooth_video


@pytest.mark.parametrize("spatial_factor", [1, 2, 4])
def test_block_basis_is_orthonormal(spatial_factor):
    basis = block_basis(spatial_factor)
    size = 12 * spatial_factor**2
    assert basis.shape == (size, size)
    torch.testing.assert_close(basis @ basis.T, torch.eye(size, dtype=basis.dtype), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("frames", "spatial_factor"), [(9, 4), (17, 2), (5, 8)])
def test_exact_round_trip_and_shapes(frames, spatial_factor):
    backend = TinyBackend(spatial_factor=spatial_factor)
    assert backend.latent_channels == 12 * spatial_factor**2
    video = torch.rand(2, frames, 3, 16, 24) * 2 - 1
    latents = backend.encode(video)
    assert latents.shape == (
        2,
        (frames - 1) // 4 + 1,
        backend.latent_channels,
        16 // spatial_factor,
        24 // spatial_factor,
    )
    decoded = backend.decode(latents)
    assert decoded.shape == video.shape
    assert psnr(decoded, video) > 100
    torch.testing.assert_close(decoded, video, atol=1e-5, rtol=0)


def test_first_channel_is_the_block_mean():
    backend = TinyBackend(spatial_factor=4)
    video = torch.rand(1, 9, 3, 8, 12) * 2 - 1
    grey = video.mean(dim=2)  # (1,T,H,W)
    latent0 = backend.encode(video)[:, :, 0]
    # latent frame 0 = frame 0 alone; latent frame f > 0 = frames 4f-3 ... 4f
    groups = torch.stack([grey[:, 0], grey[:, 1:5].mean(1), grey[:, 5:9].mean(1)], dim=1)
    torch.testing.assert_close(latent0, F.avg_pool2d(groups, 4), atol=1e-6, rtol=0)


def test_temporal_grouping_first_frame_alone_then_fours():
    backend = TinyBackend(spatial_factor=2)
    video = torch.rand(1, 13, 3, 4, 4) * 2 - 1
    base = backend.encode(video)
    for frame, latent_frame in [(0, 0), (1, 1), (4, 1), (5, 2), (8, 2), (9, 3), (12, 3)]:
        changed = video.clone()
        changed[:, frame] = -changed[:, frame]
        diff = (backend.encode(changed) - base).abs().amax(dim=(0, 2, 3, 4))
        assert diff.nonzero().flatten().tolist() == [latent_frame]


@pytest.mark.parametrize(("spatial_factor", "channels"), [(2, 16), (4, 16), (4, 32), (8, 64)])
def test_truncated_basis_keeps_40db_on_smooth_video(spatial_factor, channels):
    backend = TinyBackend(spatial_factor=spatial_factor, latent_channels=channels)
    video = smooth_video(1, 17, 64, 96)
    latents = backend.encode(video)
    assert latents.shape[2] == channels
    assert psnr(backend.decode(latents), video) >= 40


def test_deterministic_and_registered():
    backend = LATENT_BACKENDS.build("tiny", spatial_factor=2, latent_channels=8)
    assert isinstance(backend, TinyBackend)
    video = torch.rand(1, 5, 3, 4, 6) * 2 - 1
    generator = torch.Generator().manual_seed(1)
    torch.testing.assert_close(backend.encode(video, sample=True, generator=generator), backend.encode(video))


def test_scaling_factor_applies_to_latents():
    video = torch.rand(1, 5, 3, 4, 4) * 2 - 1
    unit = TinyBackend(spatial_factor=2, scaling_factor=1.0)
    scaled = TinyBackend(spatial_factor=2, scaling_factor=0.25)
    torch.testing.assert_close(scaled.encode(video), 0.25 * unit.encode(video))
    torch.testing.assert_close(scaled.decode(scaled.encode(video)), video, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "shape", "match"),
    [
        ({}, (1, 8, 3, 16, 16), "4k\\+1"),
        ({}, (1, 9, 3, 18, 16), "multiples of the spatial factor 8"),
        ({"allowed_frames": (17, 25)}, (1, 9, 3, 16, 16), "in \\[17, 25\\], got 9"),
        ({}, (1, 9, 1, 16, 16), "\\(B,T,3,H,W\\)"),
    ],
)
def test_bad_video_raises(kwargs, shape, match):
    backend = TinyBackend(**kwargs)
    with pytest.raises(ValueError, match=match):
        backend.encode(torch.zeros(shape))


def test_bad_values_and_config_raise():
    backend = TinyBackend(spatial_factor=2)
    with pytest.raises(ValueError, match="floating"):
        backend.encode(torch.zeros(1, 5, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="in \\[-1, 1\\]"):
        backend.encode(torch.full((1, 5, 3, 4, 4), 3.0))
    with pytest.raises(ValueError, match="non-finite"):
        backend.encode(torch.full((1, 5, 3, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="\\(B,F,48,h,w\\)"):
        backend.decode(torch.zeros(1, 2, 47, 2, 2))
    with pytest.raises(ValueError, match="latent_channels in \\[1, 48\\]"):
        TinyBackend(spatial_factor=2, latent_channels=49)
    with pytest.raises(ValueError, match="spatial_factor"):
        TinyBackend(spatial_factor=0)
