"""The geometric memory condition ("cache"): rendering from ground truth and its latent layout."""

import pytest
import torch

from aether.geometry import fold_frames
from aether.modalities import MODALITIES, TinyBackend, lift_frames, render_memory
from aether.training.module import AetherModule
from tests.training.conftest import make_module, synthetic_batch


@pytest.fixture(scope="module")
def clip():
    return synthetic_batch(seeds=(3,), frames=9, height=32, width=48)


def _codec(**options):
    return MODALITIES.build("cache", backend=TinyBackend(spatial_factor=8, latent_channels=16), **options)


def test_memory_from_ground_truth_reproduces_the_lifted_frame_and_moves_with_the_camera(clip):
    video, mask = _codec(radius=0).memory(clip)
    assert video.shape == clip["video"].shape and mask.shape == clip["depth"].shape
    valid = clip["depth"][:, 0] > 0
    assert torch.equal(mask[:, 0], valid)  # frame 0 sees every lifted point exactly where it was
    torch.testing.assert_close(
        video[:, 0][valid[:, None].expand_as(video[:, 0])],
        clip["video"][:, 0][valid[:, None].expand_as(video[:, 0])],
    )
    # a later frame: each drawn pixel shows the frame-0 point that projects there (checked by projection)
    points, colors, keep = lift_frames(
        clip["video"][:, :1], clip["depth"][:, :1], clip["c2w"][:, :1], clip["K"][:, :1]
    )
    direct, direct_mask = render_memory(
        points, colors, keep, clip["c2w"][:, -1:], clip["K"][:, -1:], 32, 48, radius=0
    )
    torch.testing.assert_close(video[:, -1:], direct)
    assert torch.equal(mask[:, -1:], direct_mask)
    assert not torch.equal(video[:, -1], video[:, 0])


def test_memory_latents_are_the_colour_latents_then_the_folded_coverage(clip):
    codec = _codec()
    assert codec.channels == 16 + 4
    video, mask = codec.memory(clip)
    latents = codec.encode(clip)
    assert latents.shape == (1, 3, 20, 4, 6)
    torch.testing.assert_close(
        latents[:, :, :16], codec.backend.encode(torch.where(mask[:, :, None], video, 0.0))
    )
    full = codec.encode({"cache_video": video, "cache_mask": torch.ones_like(mask)})
    empty = codec.encode({"cache_video": video, "cache_mask": torch.zeros_like(mask)})
    assert (full[:, :, 16:] == 1).all() and (empty[:, :, 16:] == -1).all() and (empty[:, :, :16] == 0).all()
    half = torch.zeros_like(mask)
    half[..., torch.arange(32) % 8 < 4, :] = True  # the top half of each 8-pixel latent row
    coverage = codec.encode({"cache_video": video, "cache_mask": half})[:, :, 16:]
    torch.testing.assert_close(coverage, fold_frames(torch.zeros(1, 9, 1, 4, 6), "aetherv1"))


def test_memory_needs_a_render_or_the_ground_truth():
    with pytest.raises(
        ValueError, match="cache: expected 'cache_video' and 'cache_mask'.*missing \\['depth', 'c2w', 'K'\\]"
    ):
        _codec().memory({"video": torch.zeros(1, 5, 3, 16, 16)})
    with pytest.raises(ValueError, match="drop"):
        _codec(drop=1.5)
    with pytest.raises(ValueError, match="never decoded"):
        _codec().decode(torch.zeros(1, 2, 20, 2, 2))


def test_the_memory_is_a_condition_role_not_a_target():
    from aether.models.spec import AetherModelSpec

    assert MODALITIES.get("cache").condition_role == "memory"
    spec = AetherModelSpec(latent_backend="tiny", condition_modalities=("color", "raymap", "cache"))
    spec.check_registered()
    AetherModelSpec(latent_backend="tiny", condition_modalities=("color", "cache")).check_registered()
    bad = AetherModelSpec(latent_backend="tiny", target_modalities=("color", "cache"))
    with pytest.raises(ValueError, match=r"\['cache'\] are 'memory' conditions"):
        bad.check_registered()


def test_training_draws_the_memory_drops_it_and_samples_context_frames():
    batch = synthetic_batch(seeds=(0, 1), frames=17)
    kwargs = {"condition_modalities": ["color", "raymap", "cache"], "context_probabilities": {1: 0.5, 3: 0.5}}
    kept = make_module(modality_options={"cache": {"drop": 0.0}}, **kwargs)
    dropped = make_module(modality_options={"cache": {"drop": 1.0}}, **kwargs)
    assert isinstance(kept, AetherModule)
    assert kept.transformer.config.in_channels == (16 + 16 + 24) + (16 + 24 + 20)
    latents = kept.encode_clip(kept.target_stack.prepare(batch))
    cache = latents["cache"]
    assert cache.shape == (2, 5, 20, 6, 8) and cache[:, :, 16:].max() == 1.0
    mode, keep_action = torch.tensor([1, 0]), torch.tensor([False, True])
    g = torch.Generator().manual_seed(0)
    assert kept.draw_memory(2, g)["cache"].all() and not dropped.draw_memory(2, g)["cache"].any()
    modes = torch.tensor([0, 1, 2, 3, 2])  # whole-video (reconstruction) samples are given every frame
    assert kept.draw_memory(5, g, color_mode=modes)["cache"].tolist() == [True, True, False, True, False]
    # the memory is the last 20 condition channels, kept or dropped on its own (not with the action)
    for keep in (kept.draw_memory(2), dropped.draw_memory(2)):
        condition = kept.condition(latents, mode, keep_action, keep_memory=keep)
        assert condition.shape == (2, 5, 16 + 24 + 20, 6, 8)
        expected = torch.where(keep["cache"][:, None, None, None, None], cache, 0.0)
        assert torch.equal(condition[:, :, 40:], expected)
        assert not condition[0, :, 16:40].any() and condition[1, :, 16:40].any()
    draws = kept.task_sampler.sample_context(4000, generator=torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) == {1, 3} and abs((draws == 3).float().mean().item() - 0.5) < 0.03
    loss = kept.training_step(batch, 0)
    assert torch.isfinite(loss)
    loss.backward()


def test_a_dropped_memory_is_never_rendered_and_kept_rows_match_the_full_encoding(monkeypatch):
    from aether.modalities import cache as cache_module

    batch = synthetic_batch(seeds=(0, 1, 2), frames=9)
    module = make_module(condition_modalities=["color", "raymap", "cache"])
    clip = module.target_stack.prepare(batch)
    full = module.encode_clip(clip)["cache"]
    rendered = []
    render = cache_module.render_memory

    def counted(points, *args, **kwargs):
        rendered.append(len(points))
        return render(points, *args, **kwargs)

    monkeypatch.setattr(cache_module, "render_memory", counted)
    keep = torch.tensor([True, False, True])
    part = module.encode_clip(clip, {"cache": keep})["cache"]
    assert rendered == [2]  # the two kept clips only
    assert torch.allclose(part[keep], full[keep], atol=1e-6) and not part[1].any()
    none = module.encode_clip(clip, {"cache": torch.zeros(3, dtype=torch.bool)})["cache"]
    assert none.shape == full.shape and not none.any()
