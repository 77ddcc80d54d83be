import pytest
import torch

from aether.modalities import (
    AETHERV1_CONDITION,
    AETHERV1_TARGET,
    CogVideoXBackend,
    ModalityStack,
    TinyBackend,
)

from .test_raymap_codec import trajectory


def make_clip(frames=9, height=16, width=24):
    depth = 1.0 + 4.0 * torch.rand(2, frames, height, width)
    valid = torch.ones(2, frames, height, width, dtype=torch.bool)
    valid[:, :, :2, :3] = False
    depth[~valid] = 0.0
    c2w, K = trajectory(frames)
    video = torch.rand(2, frames, 3, height, width) * 2 - 1
    return {"video": video, "depth": depth, "valid": valid, "c2w": c2w, "K": K}


def test_aetherv1_channel_layout_on_cogvideox(tiny_vae_dir):
    backend = CogVideoXBackend(tiny_vae_dir)
    target = ModalityStack(AETHERV1_TARGET, backend)
    condition = ModalityStack(AETHERV1_CONDITION, backend)
    assert target.channels == 56 and condition.channels == 40
    assert target.slices == {"color": slice(0, 16), "disparity": slice(16, 32), "raymap": slice(32, 56)}
    assert condition.slices == {"color": slice(0, 16), "raymap": slice(16, 40)}
    clip = make_clip(frames=17)
    with torch.no_grad():
        latents = target.encode(clip)
        assert latents.shape == (2, 5, 56, 2, 3)
        out = target.decode(latents, target.prepare(clip))
    assert out["video"].shape == (2, 17, 3, 16, 24)
    assert out["depth"].shape == (2, 17, 16, 24)
    torch.testing.assert_close(out["c2w"], clip["c2w"], atol=1e-4, rtol=1e-4)


def test_round_trip_on_the_tiny_backend():
    stack = ModalityStack(AETHERV1_TARGET, TinyBackend(spatial_factor=4))
    clip = make_clip()
    latents = stack.encode(clip)
    assert latents.shape == (2, 3, stack.channels, 4, 6)
    assert stack.channels == 192 + 192 + 24
    prepared = stack.prepare(clip)
    torch.testing.assert_close(
        prepared["dmax"], 1.0 / clip["depth"].where(clip["valid"], 100.0).amin(dim=(1, 2, 3))
    )
    out = stack.decode(latents, prepared)
    torch.testing.assert_close(out["video"], clip["video"], atol=1e-5, rtol=0)
    assert torch.equal(out["valid"], clip["valid"])
    torch.testing.assert_close(out["depth"], clip["depth"], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(out["c2w"], clip["c2w"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["K"], clip["K"], atol=1e-3, rtol=1e-4)


def test_encode_is_the_concatenation_of_the_codecs_with_one_dmax():
    stack = ModalityStack(["disparity", "raymap"], "tiny", options={"raymap": {"layout": "consecutive"}})
    assert stack.codecs["raymap"].layout == "consecutive"
    assert stack.inputs == ("depth", "c2w", "K")
    clip = make_clip(height=16, width=16)
    clip = {k: v[..., :16] if k in ("video", "depth", "valid") else v for k, v in clip.items()}
    clip["K"] = clip["K"].clone()
    latents = stack.encode(clip)
    parts = stack.split(latents)
    dmax = stack.prepare(clip)["dmax"]
    torch.testing.assert_close(parts["disparity"], stack.codecs["disparity"].encode({**clip, "dmax": dmax}))
    torch.testing.assert_close(parts["raymap"], stack.codecs["raymap"].encode({**clip, "dmax": dmax}))
    torch.testing.assert_close(torch.cat([parts["disparity"], parts["raymap"]], dim=2), latents)
    assert stack.encode(clip, dtype=torch.float64).dtype == torch.float64


def test_bad_input_raises():
    backend = TinyBackend(spatial_factor=4)
    known = "cache, color, disparity, raymap"
    with pytest.raises(ValueError, match=f"unknown modality 'normals'; known: {known}"):
        ModalityStack(["color", "normals"], backend)
    with pytest.raises(ValueError, match="distinct"):
        ModalityStack(["color", "color"], backend)
    with pytest.raises(ValueError, match="options only for the stacked modalities"):
        ModalityStack(["color"], backend, options={"raymap": {}})
    stack = ModalityStack(AETHERV1_TARGET, backend)
    clip = make_clip()
    with pytest.raises(
        ValueError,
        match="clip\\['c2w'\\] to have \\(B,T\\)=\\(2, 9\\) like clip\\['video'\\], got \\(2, 5\\)",
    ):
        stack.encode({**clip, "c2w": clip["c2w"][:, :5], "K": clip["K"][:, :5]})
    with pytest.raises(ValueError, match="\\(B,F,408,h,w\\)"):
        stack.split(torch.zeros(2, 3, 56, 4, 6))
    with pytest.raises(
        ValueError, match="share \\(B,F,h,w\\)=\\(2, 3, 4, 6\\), got \\(2, 3, 2, 3\\) for 'raymap'"
    ):
        stack.encode({**clip, "height": 8, "width": 12})
