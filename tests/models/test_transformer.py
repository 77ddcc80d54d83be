"""AetherTransformer: widening from a CogVideoX I2V base, fps-aware RoPE, save/load round trips."""

import json

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

from aether.models import AetherTransformer, rotary_embedding_3d, tiny_config
from aether.models.testing import tiny_aether_transformer


def _base(seed: int = 0) -> CogVideoXTransformer3DModel:
    torch.manual_seed(seed)
    model = CogVideoXTransformer3DModel.from_config(tiny_config(in_channels=32, out_channels=16))
    with torch.no_grad():  # non-zero output projection so the comparison is meaningful
        model.proj_out.weight.normal_(0, 0.2)
        model.proj_out.bias.normal_(0, 0.2)
    return model.eval()


def test_widening_keeps_base_behaviour_on_old_channels():
    base = _base()
    wide = AetherTransformer.from_base_model(base).eval()
    assert (wide.config.in_channels, wide.config.out_channels) == (96, 56)
    b, f, h, w = 1, 3, 4, 6
    noisy, image = torch.randn(b, f, 16, h, w), torch.randn(b, f, 16, h, w)
    text = torch.randn(b, 8, 32)
    t = torch.tensor([500])
    rope = rotary_embedding_3d(16, f, h // 2, w // 2, 2, 3)
    with torch.no_grad():
        ref = base(torch.cat([noisy, image], 2), text, t, image_rotary_emb=rope, return_dict=False)[0]
        # new channels hold arbitrary values: their input weights are zero, so nothing changes
        target = torch.cat([noisy, torch.randn(b, f, 40, h, w)], 2)
        condition = torch.cat([image, torch.randn(b, f, 24, h, w)], 2)
        out = wide(target, condition, t, text, fps=12)
    assert torch.allclose(out[:, :, :16], ref, atol=1e-6)
    assert torch.count_nonzero(out[:, :, 16:]) == 0
    w_new, w_old = wide.patch_embed.proj.weight, base.patch_embed.proj.weight
    assert torch.equal(w_new[:, :16], w_old[:, :16]) and torch.equal(w_new[:, 56:72], w_old[:, 16:32])
    assert torch.count_nonzero(w_new[:, 16:56]) == 0 and torch.count_nonzero(w_new[:, 72:]) == 0


def test_from_base_loads_a_saved_base(tmp_path):
    _base(1).save_pretrained(tmp_path / "transformer")
    wide = AetherTransformer.from_base(tmp_path)
    assert isinstance(wide, AetherTransformer) and wide.condition_channels == 40


def test_rope_at_base_fps_matches_cogvideox():
    grid_h, grid_w, frames = 2, 3, 5
    crops = get_resize_crop_region_for_grid((grid_h, grid_w), 3, 2)
    ref = get_3d_rotary_pos_embed(16, crops, (grid_h, grid_w), frames)
    ours = rotary_embedding_3d(16, frames, grid_h, grid_w, 2, 3, fps=12)
    assert torch.allclose(ours[0], ref[0]) and torch.allclose(ours[1], ref[1])


@pytest.mark.parametrize(("fps", "base"), [(8, 12.0), (15, 12.0), (24, 12.0), (8, 24.0), (30, 15.0)])
def test_rope_temporal_positions_scale_with_fps(fps, base):
    head_dim, frames = 16, 5
    cos, sin = rotary_embedding_3d(head_dim, frames, 2, 3, 2, 3, fps=fps, base_fps=base)
    dim_t = head_dim // 4
    inv = 1.0 / (10000 ** (torch.arange(0, dim_t, 2).float() / dim_t))
    positions = torch.arange(frames).float() * base / fps
    expected = torch.cos(positions[:, None] * inv).repeat_interleave(2, dim=1)  # (F, dim_t)
    got = cos.reshape(frames, 2 * 3, head_dim)[:, 0, :dim_t]
    assert torch.allclose(got, expected, atol=1e-6)
    spatial_ref = rotary_embedding_3d(head_dim, frames, 2, 3, 2, 3, fps=12)[1]
    assert torch.allclose(sin[:, dim_t:], spatial_ref[:, dim_t:])  # spatial part unchanged


def test_save_and_load_round_trip_and_plain_diffusers_compatibility(tmp_path):
    model = tiny_aether_transformer(seed=3).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "CogVideoXTransformer3DModel"
    loaded = AetherTransformer.from_pretrained(tmp_path).eval()
    plain = CogVideoXTransformer3DModel.from_pretrained(tmp_path).eval()
    x, c = torch.randn(1, 3, 56, 4, 6), torch.randn(1, 3, 40, 4, 6)
    text, t = torch.randn(1, 8, 32), torch.tensor([999])
    with torch.no_grad():
        ref = model(x, c, t, text, fps=10)
        assert torch.allclose(loaded(x, c, t, text, fps=10), ref, atol=1e-6)
        rope = model.rotary_embedding(3, 4, 6, 10)
        out = plain(torch.cat([x, c], 2), text, t, image_rotary_emb=rope, return_dict=False)[0]
    assert torch.allclose(out, ref, atol=1e-6)


def test_per_sample_fps_groups_the_batch():
    model = tiny_aether_transformer(seed=4).eval()
    x, c = torch.randn(3, 2, 56, 4, 6), torch.randn(3, 2, 40, 4, 6)
    text, t = torch.randn(3, 8, 32), torch.tensor([10, 500, 900])
    with torch.no_grad():
        out = model(x, c, t, text, fps=torch.tensor([12.0, 24.0, 12.0]))
        for i, fps in enumerate([12.0, 24.0, 12.0]):
            single = model(x[i : i + 1], c[i : i + 1], t[i : i + 1], text[i : i + 1], fps=fps)
            assert torch.allclose(out[i : i + 1], single, atol=1e-5)
    assert not torch.allclose(out[1:2], model(x[1:2], c[1:2], t[1:2], text[1:2], fps=12.0), atol=1e-4)


def test_bad_inputs_raise():
    model = tiny_aether_transformer()
    with pytest.raises(ValueError, match="noisy \\+ condition channels"):
        model(
            torch.zeros(1, 2, 56, 4, 6), torch.zeros(1, 2, 16, 4, 6), torch.tensor([1]), torch.zeros(1, 8, 32)
        )
    with pytest.raises(ValueError, match=r"got \(1, 2, 56, 4, 6\) and \(1, 2, 40, 5, 6\)"):
        model(
            torch.zeros(1, 2, 56, 4, 6), torch.zeros(1, 2, 40, 5, 6), torch.tensor([1]), torch.zeros(1, 8, 32)
        )
    with pytest.raises(ValueError, match="cannot widen"):
        AetherTransformer.from_base_model(_base(), target_channels=8)
