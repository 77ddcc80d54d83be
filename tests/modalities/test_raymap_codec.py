import math

import pytest
import torch

from aether.modalities import MODALITIES, RaymapCodec, TinyBackend


def trajectory(frames: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative poses turning about y and moving, plus off-centre intrinsics: (B,T,4,4), (B,T,3,3)."""
    angle = torch.linspace(0, 0.4, frames)[None].repeat(batch, 1) * torch.arange(1, batch + 1)[:, None]
    c, s = torch.cos(angle), torch.sin(angle)
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[..., 0, 0], c2w[..., 0, 2], c2w[..., 2, 0], c2w[..., 2, 2] = c, s, -s, c
    c2w[..., 0, 3] = 0.3 * angle
    c2w[..., 2, 3] = torch.linspace(0, 1.5, frames)
    K = torch.tensor([[30.0, 0.0, 11.0], [0.0, 28.0, 9.0], [0.0, 0.0, 1.0]]).repeat(batch, frames, 1, 1)
    return c2w, K


@pytest.fixture
def codec():
    return RaymapCodec(TinyBackend(spatial_factor=4))


def test_raymap_values_on_the_latent_grid(codec):
    c2w, K = trajectory(9)
    c2w[1, 3, :3, 3] = torch.tensor([1.0, -2.0, 0.5])
    raymap = codec.raymap({"c2w": c2w, "K": K, "height": 16, "width": 24, "dmax": torch.tensor([1.0, 2.0])})
    assert raymap.shape == (2, 9, 6, 4, 6)
    # frame 0 has the identity rotation: directions ((4j + 1.5 - cx)/fx, (4i + 1.5 - cy)/fy, 1)
    for i, j in [(0, 0), (2, 5), (3, 1)]:
        expected = torch.tensor([(4 * j + 1.5 - 11.0) / 30.0, (4 * i + 1.5 - 9.0) / 28.0, 1.0])
        torch.testing.assert_close(raymap[0, 0, :3, i, j], expected)
    # origins: sign(x)·log1p(|10·dmax·x|), dmax = 2 for clip 1
    expected = torch.tensor([math.log1p(20.0), -math.log1p(40.0), math.log1p(10.0)])
    torch.testing.assert_close(raymap[1, 3, 3:, 2, 2], expected)


def test_aetherv1_and_consecutive_layouts(codec):
    c2w, K = trajectory(9)
    clip = {"c2w": c2w, "K": K, "height": 16, "width": 24}
    raymap = codec.raymap(clip)
    strided = codec.encode(clip)
    assert strided.shape == (2, 3, 24, 4, 6) and codec.channels == 24
    # T = 9: frames 0, 1, 2 repeated in front -> padded [0, 1, 2, 0, 1, ..., 8]; latent t holds
    # padded frames t, t + 3, t + 6, t + 9.
    for latent, slot, frame in [(0, 0, 0), (0, 1, 0), (0, 2, 3), (0, 3, 6), (1, 0, 1), (2, 1, 2), (2, 3, 8)]:
        torch.testing.assert_close(strided[:, latent, 6 * slot : 6 * slot + 6], raymap[:, frame])
    consecutive = RaymapCodec(codec.backend, layout="consecutive").encode(clip)
    for latent, slot, frame in [(0, 0, 0), (0, 3, 0), (1, 0, 1), (1, 3, 4), (2, 0, 5), (2, 3, 8)]:
        torch.testing.assert_close(consecutive[:, latent, 6 * slot : 6 * slot + 6], raymap[:, frame])


@pytest.mark.parametrize("layout", ["aetherv1", "consecutive"])
def test_round_trip_recovers_cameras(codec, layout):
    codec = RaymapCodec(codec.backend, layout=layout)
    c2w, K = trajectory(17)
    dmax = torch.tensor([0.5, 3.0])
    clip = {"c2w": c2w, "K": K, "video": torch.zeros(2, 17, 3, 16, 24), "dmax": dmax}
    out = codec.decode(codec.encode(clip), clip)
    assert out["raymap"].shape == (2, 17, 6, 4, 6)
    torch.testing.assert_close(out["c2w"], c2w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["K"], K, atol=1e-3, rtol=1e-4)
    # without side information: T from F, size from the latent grid, translations in units of 1/dmax
    bare = codec.decode(codec.encode(clip).to(torch.bfloat16).float())
    assert bare["c2w"].shape == (2, 17, 4, 4)
    torch.testing.assert_close(bare["K"], K, atol=0.5, rtol=0.02)


def test_direction_scale_multiplies_only_the_directions_and_decodes_to_the_same_cameras(codec):
    c2w, K = trajectory(9)
    dmax = torch.tensor([0.5, 3.0])
    clip = {"c2w": c2w, "K": K, "video": torch.zeros(2, 9, 3, 16, 24), "dmax": dmax}
    scaled = RaymapCodec(codec.backend, layout="consecutive", direction_scale=4.0)
    plain = RaymapCodec(codec.backend, layout="consecutive").encode(clip)
    latents = scaled.encode(clip)
    for slot in range(4):  # each folded frame: 3 direction channels x4, 3 origin channels as they were
        torch.testing.assert_close(
            latents[:, :, 6 * slot : 6 * slot + 3], 4.0 * plain[:, :, 6 * slot : 6 * slot + 3]
        )
        torch.testing.assert_close(
            latents[:, :, 6 * slot + 3 : 6 * slot + 6], plain[:, :, 6 * slot + 3 : 6 * slot + 6]
        )
    out = scaled.decode(latents, clip)
    torch.testing.assert_close(out["raymap"], scaled.raymap(clip))
    torch.testing.assert_close(out["c2w"], c2w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["K"], K, atol=1e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="direction_scale: expected a finite positive number, got 0"):
        RaymapCodec(codec.backend, direction_scale=0)


def test_dmax_comes_from_depth_when_not_given(codec):
    c2w, K = trajectory(5)
    depth = torch.full((2, 5, 16, 24), 2.0)
    depth[1] = 0.25
    from_depth = codec.encode({"c2w": c2w, "K": K, "depth": depth})
    given = codec.encode({"c2w": c2w, "K": K, "height": 16, "width": 24, "dmax": torch.tensor([0.5, 4.0])})
    torch.testing.assert_close(from_depth, given)


def test_registered_with_options():
    codec = MODALITIES.build(
        "raymap", backend=TinyBackend(spatial_factor=2), layout="consecutive", method="mean_ray"
    )
    assert isinstance(codec, RaymapCodec) and codec.layout == "consecutive" and codec.method == "mean_ray"


def test_bad_input_raises(codec):
    c2w, K = trajectory(9)
    with pytest.raises(ValueError, match="\\(B,T\\)=\\(2, 9\\) like clip\\['c2w'\\], got \\(2, 5\\)"):
        codec.encode({"c2w": c2w, "K": K[:, :5], "height": 16, "width": 24})
    with pytest.raises(ValueError, match="image size"):
        codec.encode({"c2w": c2w, "K": K})
    with pytest.raises(ValueError, match="4k\\+1"):
        codec.encode({"c2w": c2w[:, :8], "K": K[:, :8], "height": 16, "width": 24})
    with pytest.raises(ValueError, match="multiples of the spatial factor 4, got 18x24"):
        codec.encode({"c2w": c2w, "K": K, "height": 18, "width": 24})
    with pytest.raises(ValueError, match="clip key 'K'"):
        codec.encode({"c2w": c2w, "height": 16, "width": 24})
    with pytest.raises(ValueError, match="\\(B,F,24,h,w\\)"):
        codec.decode(torch.zeros(2, 3, 16, 4, 6))
    with pytest.raises(ValueError, match="layout"):
        RaymapCodec(codec.backend, layout="strided")
    with pytest.raises(ValueError, match="method"):
        RaymapCodec(codec.backend, method="svd")
    not_a_rotation = c2w.clone()
    not_a_rotation[0, 2, :3, :3] *= 2
    with pytest.raises(ValueError):
        codec.encode({"c2w": not_a_rotation, "K": K, "height": 16, "width": 24})
