"""Evaluating a memory model: prediction is given the first frame lifted with the model's own depth."""

from __future__ import annotations

import math

import torch

from aether.modalities.clip import ClipGeometry
from aether.pipeline.sampler import SampleOutput
from aether.training.validation import evaluate_clip, sampler_for
from tests.training.conftest import make_module, synthetic_batch


class CopySampler:
    """Stands in for the model: the true disparity of the clip (normalised by its dmax) and the first
    frame copied as the video; records what each call was given."""

    def __init__(self, real, clip):
        self.real, self.clip, self.calls = real, clip, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __call__(self, task, *, observation, num_frames, signals=None, raymap=None, **kwargs):
        self.calls.append({"task": task, "signals": signals, "raymap": raymap})
        depth = self.clip["depth"][0]
        dmax = ClipGeometry.of(self.clip).dmax[0]
        disparity = torch.where(depth > 0, 1 / depth.clamp_min(1e-6), 0.0) / dmax
        rgb = ((observation.cpu() + 1) / 2).permute(1, 2, 0)[None].expand(num_frames, -1, -1, -1)
        return SampleOutput(rgb=rgb, latents=torch.zeros(1), disparity=disparity, valid=depth > 0)


def test_prediction_is_given_the_lifted_first_frame_along_each_trajectory_and_its_render_is_a_baseline():
    # one-pixel splats: frame 0 renders each lifted pixel back onto itself
    module = make_module(
        condition_modalities=["color", "raymap", "cache"], modality_options={"cache": {"radius": 0}}
    )
    clip = module.target_stack.prepare(synthetic_batch(seeds=(0,), frames=17))
    with sampler_for(module) as real:
        fake = CopySampler(real, clip)
        result = evaluate_clip(
            fake, clip, 0, tasks=["prediction"], steps={"prediction": 1}, ablate_camera=True
        )
    metrics, baseline = result["prediction"].metrics, result["prediction"].baseline
    # runs: true (depth pass + memory pass), mirrored (the same), without camera, without memory
    given = [(c["raymap"] is not None, c["signals"] is not None) for c in fake.calls]
    assert given == [(True, False), (True, True), (True, False), (True, True), (False, False), (True, False)]
    true, mirrored = fake.calls[1]["signals"], fake.calls[3]["signals"]
    image = clip["video"][0, 0]
    mask = true["cache_mask"]
    assert torch.equal(mask[0], clip["depth"][0, 0] > 0)  # frame 0 sees the whole lifted image
    assert (true["cache_video"][0] - image).abs()[:, mask[0]].max() < 1e-5
    assert not torch.equal(true["cache_video"][8:], mirrored["cache_video"][8:])  # rendered along each path
    # the copying stand-in scores as the copy baseline whatever it is given
    for suffix in ("", "_mirrored", "_without_camera", "_without_memory"):
        assert abs(metrics[f"psnr{suffix}"] - baseline["psnr"]) < 1e-4
    # the true geometry rendered along the true path: far closer to the truth than copying the first frame
    assert baseline["psnr_render"] > baseline["psnr"] + 1.0
    assert baseline["ssim_render"] > baseline["ssim"]


def test_camera_control_is_scored_only_where_the_recovery_reads_the_true_video(monkeypatch):
    from aether.training import validation

    module = make_module(condition_modalities=["color", "raymap", "cache"])
    clip = module.target_stack.prepare(synthetic_batch(seeds=(0,), frames=17))
    for truth_rot_err, scored in ((0.1, True), (7.6, False)):  # 7.6 rad: a recovery that flipped
        videos = []

        def recovered(rgb, depth, K, requested, truth_rot_err=truth_rot_err, videos=videos):
            videos.append(rgb)
            rot = truth_rot_err if len(videos) == 1 else 2.0  # the first recovery is the true video's
            return {"rot_err": rot, "trans_err": 0.5, "cammc": 1.0}, None

        monkeypatch.setattr(validation, "video_camera_errors", recovered)
        with sampler_for(module) as real:
            result = evaluate_clip(
                CopySampler(real, clip), clip, 0, tasks=["prediction"], steps={"prediction": 1},
                camera_control=True, image_memory=False,
            )["prediction"]  # fmt: skip
        truth = (clip["video"][0] + 1) / 2
        assert torch.allclose(videos[0], truth.permute(0, 2, 3, 1))  # the true frames, (T,H,W,3) in [0,1]
        # the recovery's floor as the baseline, over the clips that are scored
        floor = result.baseline["rot_err"]
        assert floor == truth_rot_err if scored else math.isnan(floor)
        assert result.metrics["camera_control_scored"] == float(scored)
        assert result.metrics["rot_err"] == 2.0 if scored else math.isnan(result.metrics["rot_err"])
