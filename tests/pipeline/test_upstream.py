"""Upstream mode against a transcription of the reference AetherV1 sampling loop.

The reference below is written directly against diffusers and transformers (tokenizer, T5 encoder,
VAE, DPM scheduler, plain ``CogVideoXTransformer3DModel``), following the reference pipeline's
order of operations: the empty-prompt embedding computed once as the pipeline is built (T5 as
``from_pretrained`` loads it, on the CPU, autograd enabled, then cast to the run's dtype), one
posterior sample per encode, then the initial noise from the same generator, CFG batch
[uncond, cond], guidance in float32 with the dynamic weight in float64, latents cast back to the
run's dtype after each step, and its decode formulas. The reference runs in bfloat16; the float32
run replaces bfloat16 by float32 everywhere. The text length is the tiny transformer's (226 for
CogVideoX). Every transformer input and output and the final rgb / disparity / raymap must equal
ours bit for bit.
"""

import math

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid
from diffusers.utils.torch_utils import randn_tensor
from einops import rearrange
from transformers import AutoTokenizer, T5EncoderModel

from aether.pipeline import AetherPipeline

BF16 = torch.bfloat16


def _reference_embedding(base, length, dtype):
    """The reference's ``encode_prompt("")`` as its pipeline is built: no ``no_grad``, the text
    encoder as ``from_pretrained`` loads it, ids padded to ``length``, no attention mask."""
    tokenizer = AutoTokenizer.from_pretrained(base, subfolder="tokenizer")
    encoder = T5EncoderModel.from_pretrained(base, subfolder="text_encoder")
    ids = tokenizer(
        [""], padding="max_length", max_length=length, truncation=True, add_special_tokens=True,
        return_tensors="pt",
    ).input_ids  # fmt: skip
    embeds = encoder(ids)[0].to(dtype=encoder.dtype)
    embeds = embeds.repeat(1, 1, 1).view(1, length, -1)
    return embeds.to(dtype=dtype)


def _capture(transformer, calls):
    """Hooks recording every call's transformer inputs (latent tokens, text, timestep) and output."""

    def time(module, args):  # the first thing a CogVideoX transformer's forward runs
        calls.append({"timestep": args[0].clone()})

    def patch(module, args):
        calls[-1] |= {"text": args[0].clone(), "hidden": args[1].clone()}

    def out(module, args, output):
        calls[-1]["output"] = (output[0] if isinstance(output, tuple) else output).clone()

    return [
        transformer.patch_embed.register_forward_pre_hook(patch),
        transformer.time_proj.register_forward_pre_hook(time),
        transformer.register_forward_hook(out),
    ]


def _compare_calls(ours, ref):
    assert len(ours) == len(ref) > 0
    for i, (a, b) in enumerate(zip(ours, ref)):
        for key in ("hidden", "text", "timestep", "output"):
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), (i, key)


def _reference_rope(config, grid_h, grid_w, frames, fps):
    p = config.patch_size
    (top, left), (bottom, right) = get_resize_crop_region_for_grid(
        (grid_h, grid_w), config.sample_width // p, config.sample_height // p
    )
    gh = torch.linspace(top, bottom * (grid_h - 1) / grid_h, grid_h)
    gw = torch.linspace(left, right * (grid_w - 1) / grid_w, grid_w)
    gt = torch.linspace(0, frames * (frames - 1) / frames, frames) * (12 / fps)
    d = config.attention_head_dim
    (tc, ts), (hc, hs), (wc, ws) = (
        get_1d_rotary_pos_embed(dim, g, use_real=True)
        for dim, g in ((d // 4, gt), (d // 8 * 3, gh), (d // 8 * 3, gw))
    )

    def combine(t, h, w):
        shape = (frames, grid_h, grid_w)
        parts = [
            t[:, None, None].expand(*shape, -1),
            h[None, :, None].expand(*shape, -1),
            w[None, None].expand(*shape, -1),
        ]
        return torch.cat(parts, -1).reshape(frames * grid_h * grid_w, -1)

    return combine(tc, hc, wc), combine(ts, hs, ws)


@torch.no_grad()
def _reference(
    vae, scheduler, transformer, prompt, image, num_frames, steps, guidance, fps, seed, video=None, dtype=BF16
):
    generator = torch.Generator().manual_seed(seed)
    sf = vae.config.scaling_factor
    F = (num_frames - 1) // 4 + 1
    h, w = (
        (image if video is None else video).shape[-2] // 8,
        (image if video is None else video).shape[-1] // 8,
    )
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    if video is None:  # prediction: the image latent in frame 0
        latents_image = vae.encode(image.to(dtype)[None, :, None]).latent_dist.sample(generator)
        latents_image = sf * latents_image.to(dtype).permute(0, 2, 1, 3, 4)
        condition = torch.cat([latents_image, torch.zeros(1, F - 1, 16, h, w, dtype=dtype)], 1)
    else:  # reconstruction: the whole video
        latents_video = vae.encode(video.to(dtype).permute(1, 0, 2, 3)[None]).latent_dist.sample(generator)
        condition = sf * latents_video.to(dtype).permute(0, 2, 1, 3, 4)
    cfg = guidance > 1
    condition = torch.cat([condition, torch.zeros(1, F, 24, h, w, dtype=dtype)], 2)
    latents = randn_tensor((1, F, 56, h, w), generator=generator, dtype=dtype) * scheduler.init_noise_sigma
    rope = _reference_rope(transformer.config, h // 2, w // 2, F, fps)
    old = None
    for i, t in enumerate(timesteps):
        if cfg:
            uncond = condition.clone()
            uncond[:, :1, :16] = 0
            model_input = torch.cat([torch.cat([latents] * 2), torch.cat([uncond, condition])], 2)
        else:
            model_input = torch.cat([latents, condition], 2)
        n = model_input.shape[0]
        v = transformer(
            hidden_states=model_input, encoder_hidden_states=prompt.repeat(n, 1, 1), timestep=t.expand(n),
            image_rotary_emb=rope, return_dict=False,
        )[0].float()  # fmt: skip
        if cfg:
            weight = 1 + guidance * ((1 - math.cos(math.pi * ((steps - t.item()) / steps) ** 5.0)) / 2)
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + weight * (v_cond - v_uncond)
        latents, old = scheduler.step(
            v,
            old,
            t,
            timesteps[i - 1] if i > 0 else None,
            latents,
            eta=0.0,
            generator=generator,
            return_dict=False,
        )
        latents = latents.to(dtype)

    def decode(z):
        return vae.decode(1 / sf * z.permute(0, 2, 1, 3, 4)).sample  # (B, C, T, H, W)

    rgb = (decode(latents[:, :, :16]) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).float()
    disparity = torch.square(decode(latents[:, :, 16:32]).mean(dim=1) * 0.5 + 0.5).float()
    raymap = rearrange(latents[:, :, 32:], "b t (n c) h w -> b (n t) c h w", n=4)[:, -num_frames:].float()
    return rgb[0], disparity[0], raymap[0]


@pytest.fixture(scope="module", params=[torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def upstream(request, tiny_dirs, tmp_path_factory):
    """Our upstream pipeline (its embedding computed by our loader into a fresh cache), the reference
    transformer and the reference's embedding, in one dtype."""
    base, aether = tiny_dirs
    dtype = request.param
    cache = tmp_path_factory.mktemp("embedding") / "empty_prompt_embedding.safetensors"
    pipe = AetherPipeline.from_pretrained(
        aether, base=base, mode="upstream", torch_dtype=dtype, embedding_cache=cache
    )
    pipe.progress = False
    transformer = CogVideoXTransformer3DModel.from_pretrained(
        aether, subfolder="transformer", torch_dtype=dtype
    )
    prompt = _reference_embedding(base, transformer.config.max_text_seq_length, dtype)
    return pipe, transformer, prompt, dtype


def test_upstream_embedding_is_the_references(upstream):
    pipe, _, prompt, dtype = upstream
    assert torch.equal(pipe.prompt_embeds.to(dtype), prompt)


def test_upstream_mode_reproduces_the_reference_loop(upstream, random_video):
    pipe, transformer, prompt, dtype = upstream
    image = (
        torch.from_numpy(random_video(1, seed=11)[0]).permute(2, 0, 1).float() / 255 * 2 - 1
    ).contiguous()
    ref_calls, our_calls = [], []
    hooks = _capture(transformer, ref_calls) + _capture(pipe.transformer, our_calls)
    ref = _reference(
        pipe.backend.vae, pipe.scheduler, transformer, prompt, image, 17, 3, 3.0, 10, seed=5, dtype=dtype
    )
    ours = pipe.generate(
        "prediction", observation=image, num_frames=17, fps=10, num_inference_steps=3,
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    for hook in hooks:
        hook.remove()
    assert len(our_calls) == 3 and our_calls[0]["hidden"].shape[0] == 2  # CFG: [uncond, cond] per step
    _compare_calls(our_calls, ref_calls)
    assert torch.equal(ours.raymap, ref[2])
    assert torch.equal(ours.disparity, ref[1])
    assert torch.equal(ours.rgb, ref[0])


def test_upstream_reconstruction_reproduces_the_reference_loop(upstream, random_video):
    pipe, transformer, prompt, dtype = upstream
    video = (
        torch.from_numpy(random_video(17, seed=12)).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    ).contiguous()
    ref_calls, our_calls = [], []
    hooks = _capture(transformer, ref_calls) + _capture(pipe.transformer, our_calls)
    ref = _reference(
        pipe.backend.vae, pipe.scheduler, transformer, prompt, None, 17, 4, 1.0, 12, seed=8, video=video,
        dtype=dtype,
    )  # fmt: skip
    ours = pipe.generate(
        "reconstruction", video=video, num_frames=17, generator=torch.Generator().manual_seed(8)
    )
    for hook in hooks:
        hook.remove()
    assert pipe.scheduler.timesteps.tolist() == [999, 749, 499, 249]
    _compare_calls(our_calls, ref_calls)
    for key, expected in zip(("rgb", "disparity", "raymap"), ref):
        assert torch.equal(getattr(ours, key), expected), key


def test_a_cache_made_the_other_way_is_recomputed_with_a_reason(tiny_dirs, tmp_path, caplog):
    from aether.models import empty_prompt_embedding

    base, _ = tiny_dirs
    cache = tmp_path / "empty_prompt_embedding.safetensors"
    empty_prompt_embedding(base, cache=cache, max_length=8, method="float32")
    with caplog.at_level("WARNING"):
        ref = empty_prompt_embedding(base, cache=cache, max_length=8, method="reference")
    assert "computed by method 'float32', 'reference' was asked" in caplog.text
    assert torch.equal(ref.to(BF16), _reference_embedding(base, 8, BF16))
    caplog.clear()
    with caplog.at_level("WARNING"):
        again = empty_prompt_embedding(base, cache=cache, max_length=8, method="reference")
    assert caplog.text == "" and torch.equal(again, ref)  # the matching cache is reused
    from safetensors import safe_open

    with safe_open(str(cache), framework="pt") as f:
        assert f.metadata() | {"base": ""} == {
            "base": "", "method": "reference", "dtype": "float32", "text_length": "8"
        }  # fmt: skip
