"""Condition and unconditional latents fed to the transformer, per task, on hand-checked examples."""

import numpy as np
import pytest
import torch

from aether.pipeline import Trajectory

HEIGHT, WIDTH = 32, 48


def _capture(pipe, task, **kwargs):
    seen = {}
    out = pipe.generate(task, hook=lambda name, x: seen.__setitem__(name, x.clone()), **kwargs)
    return seen, out


def _vae_mode(pipe, frames):
    """Scaled posterior mode straight from the diffusers VAE: frames (N, 3, H, W) in [-1, 1] as one clip."""
    vae = pipe.backend.vae
    with torch.no_grad():
        z = vae.encode(frames.permute(1, 0, 2, 3)[None]).latent_dist.mode()
    return (z * vae.config.scaling_factor).permute(0, 2, 1, 3, 4)


def test_reconstruction_condition_is_the_video_latents(pipe, random_video):
    frames = torch.from_numpy(random_video(17)).permute(0, 3, 1, 2).float() / 127.5 - 1
    seen, _ = _capture(pipe, "reconstruction", video=frames, num_frames=17, num_inference_steps=1)
    condition = seen["condition"]
    assert condition.shape == (1, 5, 40, HEIGHT // 8, WIDTH // 8)
    assert torch.allclose(condition[:, :, :16], _vae_mode(pipe, frames), atol=1e-5)
    assert torch.count_nonzero(condition[:, :, 16:]) == 0
    assert "unconditional" not in seen  # guidance 1: no CFG branch


def test_prediction_condition_and_unconditional(pipe, random_video):
    image = torch.from_numpy(random_video(1)[0]).permute(2, 0, 1).float() / 127.5 - 1
    seen, _ = _capture(pipe, "prediction", observation=image, num_frames=17, num_inference_steps=1)
    cond, uncond = seen["condition"], seen["unconditional"]
    assert torch.allclose(cond[:, :1, :16], _vae_mode(pipe, image[None]), atol=1e-5)
    assert torch.count_nonzero(cond[:, 1:]) == 0 and torch.count_nonzero(cond[:, :, 16:]) == 0
    assert torch.count_nonzero(uncond) == 0


def test_planning_condition_with_action_raymap(pipe, random_video):
    obs, goal = (torch.from_numpy(f).permute(2, 0, 1).float() / 127.5 - 1 for f in random_video(2, seed=5))
    T = 17
    c2w = np.tile(np.eye(4), (T, 1, 1))
    c2w[:, 0, 3] = np.arange(T) * 0.1  # strafe right by 0.1 per frame
    fx, fy, cx, cy = 40.0, 42.0, 24.0, 16.0
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    raymap = Trajectory.from_poses(c2w, K).raymap(T, HEIGHT, WIDTH)
    seen, _ = _capture(
        pipe, "planning", observation=obs, goal=goal, raymap=raymap, num_frames=T, num_inference_steps=1
    )
    cond, uncond = seen["condition"], seen["unconditional"]
    F, h, w = 5, HEIGHT // 8, WIDTH // 8
    assert torch.allclose(cond[:, 0, :16], _vae_mode(pipe, obs[None])[:, 0], atol=1e-5)
    assert torch.allclose(cond[:, F - 1, :16], _vae_mode(pipe, goal[None])[:, 0], atol=1e-5)
    assert torch.count_nonzero(cond[:, 1 : F - 1, :16]) == 0
    # hand-built AetherV1 raymap latents: 3 frames repeated at the front (17 % 4 = 1), then latent frame f,
    # block n holds padded frame n * F + f
    padded = [0, 1, 2, *range(T)]
    u = 8 * torch.arange(w) + 3.5
    v = 8 * torch.arange(h) + 3.5
    for f in range(F):
        for n in range(4):
            frame = padded[n * F + f]
            block = cond[0, f, 16 + 6 * n : 16 + 6 * (n + 1)]
            assert torch.allclose(block[0], ((u - cx) / fx).expand(h, w), atol=1e-5)
            assert torch.allclose(block[1], ((v - cy) / fy)[:, None].expand(h, w), atol=1e-5)
            assert torch.allclose(block[2], torch.ones(h, w))
            origin = np.log1p(10 * 0.1 * frame)
            assert torch.allclose(block[3], torch.full((h, w), origin, dtype=block.dtype), atol=1e-5)
            assert torch.count_nonzero(block[4:]) == 0
    assert torch.count_nonzero(uncond[:, :, :16]) == 0  # CFG drops the images, keeps the action
    assert torch.equal(uncond[:, :, 16:], cond[:, :, 16:])


def test_upstream_mode_draws_posterior_samples_then_noise_from_one_generator(upstream_pipe, random_video):
    pipe = upstream_pipe
    image = torch.from_numpy(random_video(1, seed=2)[0]).permute(2, 0, 1).float() / 127.5 - 1
    seen, out = _capture(
        pipe, "prediction", observation=image, num_frames=17, num_inference_steps=1,
        generator=torch.Generator().manual_seed(7),
    )  # fmt: skip
    vae = pipe.backend.vae
    assert vae.dtype == torch.bfloat16
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        sample = vae.encode(image.to(torch.bfloat16)[None, :, None]).latent_dist.sample(g)
    expected = (sample * vae.config.scaling_factor).permute(0, 2, 1, 3, 4)
    assert seen["condition"].dtype == torch.bfloat16
    assert torch.equal(seen["condition"][:, :1, :16], expected)
    noise = torch.randn((1, 5, 56, HEIGHT // 8, WIDTH // 8), generator=g, dtype=torch.bfloat16)
    assert torch.equal(seen["initial_latents"], noise)
    assert out.latents.dtype == torch.bfloat16


@pytest.mark.parametrize("task,batches", [("reconstruction", [1]), ("prediction", [2])])
def test_cfg_runs_both_branches_in_one_forward(pipe, task, batches, monkeypatch):
    calls = []
    forward = pipe.transformer.forward

    def spy(noisy, condition, *args, **kwargs):
        calls.append(noisy.shape[0])
        return forward(noisy, condition, *args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    frames = torch.zeros(17, 3, HEIGHT, WIDTH)
    inputs = {"video": frames} if task == "reconstruction" else {"observation": frames[0]}
    pipe.generate(task, num_frames=17, num_inference_steps=3, **inputs)
    assert calls == batches * 3
