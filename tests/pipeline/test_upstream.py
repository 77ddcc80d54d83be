"""Upstream mode against a transcription of the reference AetherV1 sampling loop.

The reference below is written directly against diffusers (VAE, DPM scheduler, plain
``CogVideoXTransformer3DModel``), following the reference pipeline's order of operations: bf16
everywhere, one posterior sample per encode, then the initial noise from the same generator, CFG batch
[uncond, cond], guidance in float32 with the dynamic weight in float64, latents cast back to bf16
after each step, and its decode formulas.
"""

import math

import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid
from diffusers.utils.torch_utils import randn_tensor
from einops import rearrange

BF16 = torch.bfloat16


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
    vae, scheduler, transformer, prompt, image, num_frames, steps, guidance, fps, seed, video=None
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
        latents_image = vae.encode(image.to(BF16)[None, :, None]).latent_dist.sample(generator)
        latents_image = sf * latents_image.to(BF16).permute(0, 2, 1, 3, 4)
        condition = torch.cat([latents_image, torch.zeros(1, F - 1, 16, h, w, dtype=BF16)], 1)
    else:  # reconstruction: the whole video
        latents_video = vae.encode(video.to(BF16).permute(1, 0, 2, 3)[None]).latent_dist.sample(generator)
        condition = sf * latents_video.to(BF16).permute(0, 2, 1, 3, 4)
    cfg = guidance > 1
    condition = torch.cat([condition, torch.zeros(1, F, 24, h, w, dtype=BF16)], 2)
    latents = randn_tensor((1, F, 56, h, w), generator=generator, dtype=BF16) * scheduler.init_noise_sigma
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
        latents = latents.to(BF16)

    def decode(z):
        return vae.decode(1 / sf * z.permute(0, 2, 1, 3, 4)).sample  # (B, C, T, H, W)

    rgb = (decode(latents[:, :, :16]) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).float()
    disparity = torch.square(decode(latents[:, :, 16:32]).mean(dim=1) * 0.5 + 0.5).float()
    raymap = rearrange(latents[:, :, 32:], "b t (n c) h w -> b (n t) c h w", n=4)[:, -num_frames:].float()
    return rgb[0], disparity[0], raymap[0]


def test_upstream_mode_reproduces_the_reference_loop(upstream_pipe, tiny_dirs, random_video):
    pipe = upstream_pipe
    _, aether = tiny_dirs
    transformer = CogVideoXTransformer3DModel.from_pretrained(
        aether, subfolder="transformer", torch_dtype=BF16
    )
    image = (
        torch.from_numpy(random_video(1, seed=11)[0]).permute(2, 0, 1).float() / 255 * 2 - 1
    ).contiguous()
    prompt = pipe.prompt_embeds.to(BF16)
    ref = _reference(pipe.backend.vae, pipe.scheduler, transformer, prompt, image, 17, 3, 3.0, 10, seed=5)
    ours = pipe.generate(
        "prediction", observation=image, num_frames=17, fps=10, num_inference_steps=3,
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    assert torch.equal(ours.raymap, ref[2])
    assert torch.equal(ours.disparity, ref[1])
    assert torch.equal(ours.rgb, ref[0])


def test_upstream_reconstruction_reproduces_the_reference_loop(upstream_pipe, tiny_dirs, random_video):
    pipe = upstream_pipe
    _, aether = tiny_dirs
    transformer = CogVideoXTransformer3DModel.from_pretrained(
        aether, subfolder="transformer", torch_dtype=BF16
    )
    video = (
        torch.from_numpy(random_video(17, seed=12)).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    ).contiguous()
    prompt = pipe.prompt_embeds.to(BF16)
    ref = _reference(
        pipe.backend.vae, pipe.scheduler, transformer, prompt, None, 17, 4, 1.0, 12, seed=8, video=video
    )
    ours = pipe.generate(
        "reconstruction", video=video, num_frames=17, generator=torch.Generator().manual_seed(8)
    )
    assert pipe.scheduler.timesteps.tolist() == [999, 749, 499, 249]
    for key, expected in zip(("rgb", "disparity", "raymap"), ref):
        assert torch.equal(getattr(ours, key), expected), key
