"""Context latent frames: a rollout continues from the last generated frames."""

import pytest
import torch

from aether.tasks import ColorMode, Prediction, TaskSampler, compose_condition


def _latents(frames, fill):
    return (
        torch.arange(frames, dtype=torch.float32).reshape(1, frames, 1, 1, 1).expand(2, frames, 3, 2, 2)
        + fill
    )


def test_context_frames_fill_the_leading_latents_of_prediction_and_planning_only():
    video = _latents(5, 10.0)
    mode = torch.tensor([ColorMode.OBSERVATION, ColorMode.OBSERVATION_GOAL])
    cond = compose_condition(
        mode,
        torch.tensor([False, False]),
        video=video,
        context_frames=torch.tensor([1, 3]),
        raymap_channels=0,
    )
    color = cond[:, :, 0, 0, 0]
    assert color[0].tolist() == [10.0, 0.0, 0.0, 0.0, 0.0]  # one context frame: the observation alone
    assert color[1].tolist() == [10.0, 11.0, 12.0, 0.0, 14.0]  # three, then the goal
    recon = compose_condition(
        torch.tensor([ColorMode.VIDEO, ColorMode.NONE]), torch.tensor([False, False]), video=video,
        context_frames=torch.tensor([3, 3]), raymap_channels=0,
    )  # fmt: skip
    assert recon[:, :, 0, 0, 0].tolist() == [[10.0, 11.0, 12.0, 13.0, 14.0], [0.0] * 5]
    with pytest.raises(ValueError, match=r"context_frames in \[1, 5\], got \[1, 6\]"):
        compose_condition(
            mode, torch.tensor([False, False]), video=video, context_frames=torch.tensor([1, 6])
        )


def test_prediction_with_context_uses_its_latents_and_guides_on_all_of_them():
    task = Prediction(context_frames=2, raymap_channels=0)
    obs, context = _latents(1, 5.0)[:1], _latents(2, 20.0)[:1]
    cond = task.build_condition({"observation": obs, "context": context}, None, 4)
    assert cond[0, :, 0, 0, 0].tolist() == [5.0, 21.0, 0.0, 0.0]
    assert (task.build_unconditional(cond)[:, :2] == 0).all()
    with pytest.raises(ValueError, match="expected context latents with >= 2 frames, got None"):
        task.build_condition({"observation": obs}, None, 4)


def test_the_default_context_distribution_draws_nothing():
    sampler = TaskSampler(seed=3)
    before = sampler.generator.get_state()
    assert sampler.sample_context(5).tolist() == [1] * 5
    assert torch.equal(sampler.generator.get_state(), before)
    with pytest.raises(ValueError, match="context_probabilities keys >= 1"):
        TaskSampler(context_probabilities={0: 1.0})


def test_context_is_an_input_only_tasks_that_continue_from_it_declare():
    from aether.tasks import Planning, Reconstruction

    assert Prediction.takes_context() and Planning.takes_context() and not Reconstruction.takes_context()
    with pytest.raises(ValueError, match="reconstruction: takes no context frames"):
        Reconstruction(context_frames=2)
    assert Prediction.given_frames(17) == (0,) and Prediction.given_frames(17, 2) == (0, 1, 2, 3, 4)
    assert Planning.given_frames(17, 2) == (0, 1, 2, 3, 4, 16) and Planning.given_frames(17) == (0, 16)
