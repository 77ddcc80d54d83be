"""Rollouts longer than one window: stitching, memory, units and the errors of bad paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aether.data.paths import out_and_back, revisits
from aether.data.synthetic import render_clip
from aether.geometry import invert_pose, raymap_to_cameras, relative_poses
from aether.pipeline import AetherPipeline
from aether.pipeline.rollout import rollout_starts
from aether.pipeline.sampler import SampleOutput
from aether.pipeline.trajectory import Trajectory
from tests.training.conftest import make_module

H, W, WINDOW, OUT = 48, 64, 17, 21


def _pipe(**module_overrides) -> AetherPipeline:
    module = make_module(**module_overrides)
    pipe = AetherPipeline(
        module.transformer, module.backend, module.noise_scheduler, module.prompt_embedding, spec=module.spec
    )
    pipe.progress = False
    return pipe


@pytest.fixture(scope="module")
def truth():
    outward = render_clip(5, num_frames=OUT, height=H, width=W, trajectory="orbit").c2w
    return render_clip(5, num_frames=2 * OUT - 1, height=H, width=W, c2w=out_and_back(outward))


class TruthSampler:
    """Stands in for the model: returns the true window, each in its own units (its first frame's
    nearest point at depth 1, cameras relative to its first frame), and records what it was given."""

    def __init__(self, real, clip, starts):
        self.real, self.clip, self.starts, self.calls = real, clip, list(starts), []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __call__(self, task, *, num_frames, raymap=None, signals=None, **kwargs):
        start = self.starts[len(self.calls)]
        self.calls.append({"task": task, "raymap": raymap, "signals": signals, **kwargs})
        sel = slice(start, start + num_frames)
        depth = torch.from_numpy(self.clip.depth[sel]).double()
        disparity = torch.where(depth > 0, 1 / depth, 0.0)
        dmax = disparity[0].max()
        c2w = relative_poses(torch.from_numpy(self.clip.c2w[sel]))
        c2w[:, :3, 3] *= dmax
        return SampleOutput(
            rgb=torch.from_numpy(self.clip.rgb[sel]).float() / 255,
            latents=torch.zeros(1),
            disparity=(disparity / dmax).float(),
            valid=depth > 0,
            c2w=c2w.float(),
            K=torch.from_numpy(self.clip.K[sel]).float(),
        )


def test_windows_start_every_window_minus_overlap_and_the_last_ends_at_the_end():
    assert rollout_starts(41, 17, 1) == [0, 16, 24]
    assert rollout_starts(33, 17, 1) == [0, 16]
    assert rollout_starts(45, 17, 5) == [0, 12, 24, 28]
    with pytest.raises(ValueError, match="overlap"):
        rollout_starts(41, 17, 17)


def test_true_windows_stitch_into_the_true_world_in_one_frame_and_scale(truth):
    pipe = _pipe()
    starts = rollout_starts(len(truth.rgb), WINDOW, 1)
    fake = pipe.sampler = TruthSampler(pipe.sampler, truth, starts)
    depth0 = torch.from_numpy(truth.depth[0]).double()
    dmax0 = float((1 / depth0[depth0 > 0]).max())
    traj = Trajectory(truth.c2w, truth.K, width=W, height=H, dmax=dmax0)
    world = pipe.rollout(truth.rgb[0], traj, memory_stride=1)
    assert world.meta["windows"] == starts == [0, 16, 24]
    assert np.array_equal(world.rgb, truth.rgb)
    valid = truth.depth > 0
    np.testing.assert_allclose(world.depth[valid], truth.depth[valid] * dmax0, rtol=1e-4)
    expected = relative_poses(torch.from_numpy(truth.c2w))
    expected[:, :3, 3] *= dmax0
    np.testing.assert_allclose(world.c2w, expected.numpy(), atol=2e-4)
    np.testing.assert_allclose(world.requested_c2w, expected.numpy(), atol=1e-5)
    # each window's action is the path relative to its first frame, in that window's units
    for call, start in zip(fake.calls, starts):
        c2w, _ = raymap_to_cameras(call["raymap"].double(), H, W, dmax=1.0)
        sel = slice(start, start + WINDOW)
        disparity = 1 / torch.from_numpy(truth.depth[start]).double()
        want = relative_poses(torch.from_numpy(truth.c2w[sel]))
        want[:, :3, 3] *= disparity[torch.isfinite(disparity)].max()
        torch.testing.assert_close(c2w, want, atol=1e-3, rtol=1e-3)
    # later windows start on the last generated frame; the model has no cache condition: none given
    assert all(call["signals"] is None for call in fake.calls)
    torch.testing.assert_close(
        fake.calls[1]["observation"], torch.from_numpy(truth.rgb[16]).permute(2, 0, 1).float() / 127.5 - 1
    )


def test_the_memory_renders_the_earlier_frames_where_the_camera_returns(truth):
    # one-pixel splats: the earlier frame at the same pose projects each of its points back onto its pixel
    pipe = _pipe(condition_modalities=["color", "raymap", "cache"], modality_options={"cache": {"radius": 0}})
    starts = rollout_starts(len(truth.rgb), WINDOW, 1)
    fake = pipe.sampler = TruthSampler(pipe.sampler, truth, starts)
    traj = Trajectory(truth.c2w, truth.K, width=W, height=H)
    world = pipe.rollout(truth.rgb[0], traj, image_memory=False)
    assert fake.calls[0]["signals"] is None
    assert all(set(c["signals"]) == {"cache_video", "cache_mask"} for c in fake.calls[1:])
    memory, mask = world.modalities["memory.rgb"], world.modalities["memory.mask"].astype(bool)
    assert not mask[:17].any()  # window 0 has no memory yet
    pairs = revisits(OUT)
    returning = pairs[pairs[:, 0] >= 24]  # frames of the last window, which revisit the outward ones
    errors = []
    for later, _ in returning:
        assert mask[later].mean() > 0.9
        error = np.abs(memory[later] - truth.rgb[later] / 255.0).max(-1)[mask[later]]
        assert (error < 1.5 / 255).mean() > 0.3  # a third of the pixels or more: the exact colour
        errors.append(error)
    assert np.median(np.concatenate(errors)) < 1 / 255


def test_window_0_is_given_the_image_lifted_with_the_models_own_depth(truth):
    # the stand-in model's first pass gives the true depth of frame 0: its memory renders the image
    # back onto itself exactly and onto the next frames where they see the same surfaces
    pipe = _pipe(condition_modalities=["color", "raymap", "cache"], modality_options={"cache": {"radius": 0}})
    starts = rollout_starts(len(truth.rgb), WINDOW, 1)
    fake = pipe.sampler = TruthSampler(pipe.sampler, truth, [0, *starts])
    depth0 = torch.from_numpy(truth.depth[0]).double()
    dmax0 = float((1 / depth0[depth0 > 0]).max())
    world = pipe.rollout(truth.rgb[0], Trajectory(truth.c2w, truth.K, width=W, height=H, dmax=dmax0))
    assert fake.calls[0]["signals"] is None  # the first pass, for the depth
    assert all(set(c["signals"]) == {"cache_video", "cache_mask"} for c in fake.calls[1:])
    video, mask = fake.calls[1]["signals"]["cache_video"], fake.calls[1]["signals"]["cache_mask"]
    image = torch.from_numpy(truth.rgb[0]).permute(2, 0, 1).float() / 255 * 2 - 1
    assert torch.equal(mask[0], torch.from_numpy(truth.depth[0] > 0))
    assert (video[0] - image).abs().max() < 1e-5
    memory, seen = world.modalities["memory.rgb"], world.modalities["memory.mask"].astype(bool)
    assert np.array_equal(seen[:WINDOW], mask.numpy())
    for t in (1, 4, 8):
        assert seen[t].mean() > 0.5
        error = np.abs(memory[t] - truth.rgb[t] / 255.0).max(-1)[seen[t]]
        assert np.median(error) < 4 / 255
    with pytest.raises(ValueError, match="image_memory: expected memory=True"):
        _pipe().rollout(truth.rgb[0], Trajectory(truth.c2w, truth.K, width=W, height=H), image_memory=True)


def test_bad_paths_get_one_clear_error(truth):
    pipe = _pipe()
    good = Trajectory(truth.c2w, truth.K, width=W, height=H)
    with pytest.raises(
        ValueError, match="rollout trajectory: expected at least 17 .* got 9 poses, fewer than one window"
    ):
        pipe.rollout(truth.rgb[0], Trajectory(truth.c2w[:9], truth.K[:9], width=W, height=H))
    nan = Trajectory(truth.c2w.copy(), truth.K, width=W, height=H)
    nan.c2w[3, 0, 3] = float("nan")
    with pytest.raises(ValueError, match=r"rollout trajectory: .* got non-finite values \(poses \[3\]\)"):
        pipe.rollout(truth.rgb[0], nan)
    skew = Trajectory(truth.c2w.copy(), truth.K, width=W, height=H)
    skew.c2w[5, :3, :3] *= 1.5
    with pytest.raises(ValueError, match="rollout trajectory: .* got not rigid"):
        pipe.rollout(truth.rgb[0], skew)
    with pytest.raises(ValueError, match="context_frames"):
        pipe.rollout(truth.rgb[0], good, context_frames=5)


def test_a_real_tiny_model_rolls_out_with_context_frames_and_memory(truth):
    pipe = _pipe(condition_modalities=["color", "raymap", "cache"])
    traj = Trajectory(truth.c2w[:33], truth.K[:33], width=W, height=H)
    world = pipe.rollout(truth.rgb[0], traj, context_frames=2, num_inference_steps=1)
    assert world.rgb.shape == (33, H, W, 3) and world.c2w.shape == (33, 4, 4)
    assert world.meta["windows"] == [0, 12, 16] and world.meta["memory_condition"]
    np.testing.assert_allclose(world.c2w[0], np.eye(4), atol=1e-5)
    assert np.isfinite(world.depth).all()
    moved = invert_pose(torch.from_numpy(world.requested_c2w[-1]).double())
    assert torch.isfinite(moved).all()


def test_the_memory_is_given_to_the_sampler_as_signals_and_kept_in_both_guidance_branches(truth):
    pipe = _pipe(condition_modalities=["color", "raymap", "cache"])
    image = torch.from_numpy(truth.rgb[0]).permute(2, 0, 1).float() / 127.5 - 1
    video = torch.rand(WINDOW, 3, H, W) * 2 - 1
    mask = torch.rand(WINDOW, H, W) > 0.5
    seen = {}
    context = torch.from_numpy(truth.rgb[:5]).permute(0, 3, 1, 2).float() / 127.5 - 1
    pipe.sampler(
        "prediction", observation=image, context=context, num_frames=WINDOW, num_inference_steps=1,
        guidance_scale=3.0, signals={"cache_video": video, "cache_mask": mask},
        hook=lambda name, x: seen.setdefault(name, x),
    )  # fmt: skip
    memory = pipe.sampler.conditions.codecs["cache"].encode_memory(video[None], mask[None])
    cc = pipe.sampler.conditions.slices["cache"]
    assert cc == slice(40, 60)
    torch.testing.assert_close(seen["condition"][:, :, cc], memory)
    torch.testing.assert_close(seen["unconditional"][:, :, cc], memory)
    assert seen["condition"][:, :2, :16].abs().sum() > 0 and not seen["unconditional"][:, :2, :16].any()
    with pytest.raises(ValueError, match=r"cache: expected latents \(1, 5, 20, 6, 8\)"):
        pipe.sampler(
            "prediction", observation=image, num_frames=WINDOW, num_inference_steps=1,
            signals={"cache_video": video[:9], "cache_mask": mask[:9]},
        )  # fmt: skip
    with pytest.raises(ValueError, match="reconstruction: takes no context frames"):
        pipe.sampler("reconstruction", video=video, context=context, num_frames=WINDOW)
    with pytest.raises(ValueError, match=r"no condition modality of this model reads \['cache_mask'"):
        _pipe().sampler(
            "prediction", observation=image, num_frames=WINDOW, num_inference_steps=1,
            signals={"cache_video": video, "cache_mask": mask},
        )  # fmt: skip


def test_a_bounded_memory_renders_the_frames_seen_from_the_nearest_cameras():
    from aether.pipeline.memory import Memory

    store = Memory(radius=0, max_frames=2)
    eye = torch.eye(4, dtype=torch.float64)
    poses = eye.repeat(4, 1, 1)
    poses[:, 0, 3] = torch.tensor([0.0, 1.0, 5.0, 6.0])  # two cameras at x = 0, 1 and two at x = 5, 6
    K = torch.tensor([[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]], dtype=torch.float64).repeat(4, 1, 1)
    rgb = torch.rand(4, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    store.add(rgb, torch.full((4, 8, 8), 2.0), poses, K)
    assert len(store) == 4 * 64 and store.frame.tolist() == [f for f in range(4) for _ in range(64)]
    target = poses[3:].clone()
    target[0, 0, 3] = 5.5
    chosen = store.retrieve(target)
    assert torch.equal(chosen, store.frame >= 2)  # the frames seen from x = 5 and 6
    video, mask = store.render(target, K[:1], 8, 8)
    full = Memory(radius=0)
    full.add(rgb[2:], torch.full((2, 8, 8), 2.0), poses[2:], K[2:])
    assert torch.equal(video, full.render(target, K[:1], 8, 8)[0])  # as if only they had been added
    assert Memory(max_frames=None).retrieve(target).numel() == 0
    with pytest.raises(ValueError, match="max_frames"):
        Memory(max_frames=0)


def test_predict_gives_a_memory_model_the_image_lifted_with_its_own_depth(truth):
    pipe = _pipe(condition_modalities=["color", "raymap", "cache"], modality_options={"cache": {"radius": 0}})
    fake = pipe.sampler = TruthSampler(pipe.sampler, truth, [0, 0, 0])
    depth0 = torch.from_numpy(truth.depth[0]).double()
    dmax0 = float((1 / depth0[depth0 > 0]).max())
    traj = Trajectory(truth.c2w[:WINDOW], truth.K[:WINDOW], width=W, height=H, dmax=dmax0)
    world = pipe.predict(truth.rgb[0], traj, num_inference_steps=1)
    assert world.meta["image_memory"] and [not c["signals"] for c in fake.calls] == [True, False]
    video, mask = fake.calls[1]["signals"]["cache_video"], fake.calls[1]["signals"]["cache_mask"]
    seen = mask[8].numpy()  # frame 8 sees the lifted image where the true scene does
    error = np.abs(((video[8] + 1) / 2).permute(1, 2, 0).numpy() - truth.rgb[8] / 255).max(-1)[seen]
    assert seen.mean() > 0.5 and np.median(error) < 4 / 255
    plain = pipe.predict(truth.rgb[0], traj, num_inference_steps=1, image_memory=False)
    assert "image_memory" not in plain.meta and not fake.calls[2]["signals"]
    with pytest.raises(ValueError, match="image_memory: expected a model with a memory condition"):
        _pipe().predict(truth.rgb[0], traj, num_inference_steps=1, image_memory=True)
