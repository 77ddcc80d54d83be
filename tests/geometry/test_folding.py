import pytest
import torch

from aether.geometry import fold_raymap, latent_frame_count, unfold_raymap


@pytest.mark.parametrize("layout", ["aetherv1", "consecutive"])
@pytest.mark.parametrize("num_frames", [17, 25, 33, 41])
def test_fold_is_an_exact_inverse(num_frames, layout):
    raymap = torch.randn(2, num_frames, 6, 3, 5)
    latents = fold_raymap(raymap, layout=layout)
    assert latents.shape == (2, latent_frame_count(num_frames), 24, 3, 5)
    assert torch.equal(unfold_raymap(latents, num_frames, layout=layout), raymap)


def _labelled(num_frames):
    """Raymap (1, T, 6, 1, 1) whose value is 10 * frame + channel."""
    frame = torch.arange(num_frames, dtype=torch.float64)[:, None]
    channel = torch.arange(6, dtype=torch.float64)[None, :]
    return (10 * frame + channel)[None, :, :, None, None]


def test_aetherv1_strided_layout_by_hand():
    # T = 17: F = 5, the first 3 frames are repeated at the front: p = [0, 1, 2, 0, 1, ..., 16]
    # latent t holds p[t], p[t + 5], p[t + 10], p[t + 15] as channel blocks of 6.
    latents = fold_raymap(_labelled(17), layout="aetherv1")[0, :, :, 0, 0]
    frames_of = latents[:, ::6] / 10  # first channel of each block = 10 * frame
    expected = torch.tensor(
        [[0, 2, 7, 12], [1, 3, 8, 13], [2, 4, 9, 14], [0, 5, 10, 15], [1, 6, 11, 16]], dtype=torch.float64
    )
    assert torch.equal(frames_of, expected)
    assert torch.equal(latents[3, 6:12], 10 * 5 + torch.arange(6, dtype=torch.float64))


def test_consecutive_layout_by_hand():
    # latent 0 is frame 0 four times, latent t >= 1 holds frames 4t - 3 ... 4t
    latents = fold_raymap(_labelled(9), layout="consecutive")[0, :, ::6, 0, 0] / 10
    expected = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]], dtype=torch.float64)
    assert torch.equal(latents, expected)


def test_latent_frame_count():
    assert [latent_frame_count(t) for t in (1, 17, 25, 33, 41, 44)] == [1, 5, 7, 9, 11, 11]
    assert latent_frame_count(9, temporal_factor=2) == 5


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="layout"):
        fold_raymap(torch.zeros(1, 17, 6, 2, 2), layout="interleaved")
    with pytest.raises(ValueError, match=r"\(B, T, 6, h, w\)"):
        fold_raymap(torch.zeros(17, 6, 2, 2))
    with pytest.raises(ValueError, match=r"\(B, F, 24, h, w\)"):
        unfold_raymap(torch.zeros(1, 5, 6, 2, 2), 17)
    with pytest.raises(ValueError, match="5 latent frames, got T = 21"):
        unfold_raymap(torch.zeros(1, 5, 24, 2, 2), 21)
    with pytest.raises(ValueError, match="positive integer"):
        latent_frame_count(0)
