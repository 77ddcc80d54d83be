import math

import pytest
import torch

from aether.modalities import MODALITIES, DisparityCodec, TinyBackend, clip_dmax

INF, NAN = float("inf"), float("nan")

# One 2x4 depth frame: 0, inf and nan are invalid; the nearest valid depth is 0.5 (dmax = 2).
DEPTH = [[0.5, 1.0, 2.0, 0.0], [4.0, 8.0, 16.0, INF]]
VALID = [[True, True, True, False], [True, True, True, False]]
# x = sqrt((1/depth)/dmax)*2 - 1 with dmax = 2, -1 where invalid, written out by hand.
X = [
    [1.0, math.sqrt(0.5) * 2 - 1, 0.0, -1.0],
    [math.sqrt(0.125) * 2 - 1, -0.5, math.sqrt(1 / 32) * 2 - 1, -1.0],
]


def make_clip(frames=5):
    depth = torch.tensor(DEPTH).expand(1, frames, 2, 4).clone()
    depth[0, 1, 1, 0] = NAN  # another invalid pixel in frame 1
    valid = torch.tensor(VALID).expand(1, frames, 2, 4).clone()
    valid[0, 1, 1, 0] = False
    return {"depth": depth, "valid": valid}


def expected_x(frames=5):
    x = torch.tensor(X).expand(1, frames, 2, 4).clone()
    x[0, 1, 1, 0] = -1.0
    return x


@pytest.fixture
def codec():
    return DisparityCodec(TinyBackend(spatial_factor=2))


def test_normalisation_matches_closed_form(codec):
    x, mask, dmax = codec.normalize(make_clip())
    torch.testing.assert_close(dmax, torch.tensor([2.0]))
    torch.testing.assert_close(x, expected_x(), atol=1e-6, rtol=0)
    assert torch.equal(mask, make_clip()["valid"])


def test_valid_mask_is_inferred_from_depth(codec):
    clip = make_clip()
    x, mask, _ = codec.normalize({"depth": clip["depth"]})
    assert torch.equal(mask, clip["valid"])
    torch.testing.assert_close(x, expected_x(), atol=1e-6, rtol=0)


def test_encoded_latents_are_three_equal_channels_of_x(codec):
    latents, dmax = codec.encode_with_dmax(make_clip())
    assert latents.shape == (1, 2, codec.channels, 1, 2)
    torch.testing.assert_close(dmax, torch.tensor([2.0]))
    decoded = codec.backend.decode(latents)
    for channel in range(3):
        torch.testing.assert_close(decoded[:, :, channel], expected_x(), atol=1e-5, rtol=0)


def test_decode_recovers_disparity_and_depth_with_invalid_pixels_masked(codec):
    clip = make_clip()
    latents = codec.encode(clip)
    valid = clip["valid"]
    expected_disparity = torch.where(valid, 1.0 / clip["depth"], 0.0)

    # dmax known, no valid mask given: invalid pixels decode to x = -1 and stay masked.
    out = codec.decode(latents, {"dmax": torch.tensor([2.0])})
    assert torch.equal(out["valid"], valid)
    torch.testing.assert_close(out["disparity"], expected_disparity, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["depth"], torch.where(valid, clip["depth"], 0.0), atol=1e-3, rtol=1e-4)
    assert (out["depth"][~valid] == 0).all() and (out["disparity"][~valid] == 0).all()

    # dmax unknown: normalised disparity only.
    out = codec.decode(latents)
    assert "depth" not in out
    torch.testing.assert_close(out["disparity"], expected_disparity / 2.0, atol=1e-4, rtol=1e-4)


def test_given_valid_mask_and_dmax_are_used(codec):
    clip = make_clip()
    clip["valid"][0, :, 0, 1] = False  # a finite pixel marked invalid
    clip["dmax"] = torch.tensor([0.5])  # ratio clipped to 1 for depth < 2
    x, mask, dmax = codec.normalize(clip)
    torch.testing.assert_close(dmax, torch.tensor([0.5]))
    assert (x[0, :, 0, 1] == -1).all()
    assert (x[0, :, 0, 0] == 1).all() and (x[0, :, 0, 2] == 1).all()
    torch.testing.assert_close(x[0, 0, 1, 0], torch.tensor(math.sqrt(0.5) * 2 - 1))  # depth 4: (1/4)/0.5
    out = codec.decode(codec.encode(clip), clip)
    assert torch.equal(out["valid"], mask)


def test_decode_is_differentiable(codec):
    latents = codec.encode(make_clip()).requires_grad_(True)
    out = codec.decode(latents, {"dmax": torch.tensor([2.0])})
    (out["disparity"].sum() + out["depth"].sum()).backward()
    assert torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0


def test_clip_dmax_per_clip():
    depth = torch.full((3, 5, 2, 2), 4.0)
    depth[1, 2, 0, 0] = 0.25
    depth[2, 4, 1, 1] = 0.0  # invalid, ignored
    torch.testing.assert_close(clip_dmax(depth), torch.tensor([0.25, 4.0, 0.25]))
    valid = depth > 0
    valid[1, 2, 0, 0] = False
    torch.testing.assert_close(clip_dmax(depth, valid), torch.tensor([0.25, 0.25, 0.25]))


def test_registered():
    assert isinstance(MODALITIES.build("disparity", backend=TinyBackend(spatial_factor=2)), DisparityCodec)


def test_bad_depth_raises(codec):
    clip = make_clip()
    with pytest.raises(
        ValueError, match="at least one valid depth pixel per clip, got none in clip\\(s\\) \\[1\\]"
    ):
        clip_dmax(torch.stack([clip["depth"][0], torch.zeros(5, 2, 4)]))
    bad = make_clip()
    bad["valid"][0, 0, 0, 3] = True  # depth 0 marked valid
    with pytest.raises(ValueError, match="finite depth > 0 at every valid pixel, got 1"):
        codec.encode(bad)
    bad = make_clip()
    bad["depth"][0, 0, 0, 0] = NAN  # non-finite depth at a valid pixel
    with pytest.raises(ValueError, match="finite depth > 0"):
        codec.encode(bad)
    with pytest.raises(ValueError, match="\\(B,T\\)=\\(1, 5\\)"):
        codec.encode({"depth": clip["depth"], "valid": clip["valid"][:, :3]})
    with pytest.raises(ValueError, match="4k\\+1"):
        codec.encode({"depth": clip["depth"][:, :4]})
    with pytest.raises(ValueError, match=r"dmax: expected finite values > 0, got \[-1.0\]"):
        codec.encode({**clip, "dmax": torch.tensor([-1.0])})
    with pytest.raises(ValueError, match="dmax as a number or a \\(1,\\) tensor"):
        codec.encode({**clip, "dmax": torch.tensor([1.0, 2.0])})
    with pytest.raises(ValueError, match="bool tensor"):
        codec.encode({"depth": clip["depth"], "valid": clip["valid"].float()})
    with pytest.raises(ValueError, match="min_disparity"):
        DisparityCodec(codec.backend, min_disparity=0)
