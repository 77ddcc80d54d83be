import pytest
import torch

from aether.tasks import TASKS, ColorMode, TaskSampler


def test_frequencies_match_the_paper_over_100k_draws():
    sampler = TaskSampler(seed=0)
    mode, keep = sampler.sample(100_000)
    assert mode.dtype == torch.long and keep.dtype == torch.bool
    freq = torch.bincount(mode, minlength=4).double() / 100_000
    for got, want in zip(freq.tolist(), [0.30, 0.40, 0.28, 0.02]):
        assert abs(got - want) < 0.01
    assert abs(keep.double().mean().item() - 0.5) < 0.01
    # action kept independently of the color mode
    for m in range(4):
        assert abs(keep[mode == m].double().mean().item() - 0.5) < 0.03


def test_custom_probabilities():
    mode, keep = TaskSampler({"video": 1.0}, action_keep=0.0, seed=1).sample(1000)
    assert (mode == ColorMode.VIDEO).all() and not keep.any()
    mode, _ = TaskSampler([0.0, 0.0, 0.0, 1.0], seed=1).sample(1000)
    assert (mode == ColorMode.NONE).all()
    mode, _ = TaskSampler([0.5, 0.0, 0.5, 0.0], seed=1).sample(10_000)
    assert set(mode.unique().tolist()) == {0, 2}


def test_reproducible_and_resumable():
    a = TaskSampler(seed=7)
    first = a.sample(64)
    state = a.state_dict()
    second = a.sample(64)
    b = TaskSampler(seed=123)
    b.load_state_dict(state)
    resumed = b.sample(64)
    assert all(torch.equal(x, y) for x, y in zip(second, resumed))
    assert not torch.equal(first[0], second[0])
    # an explicit generator wins over the sampler's own
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = TaskSampler(seed=0).sample(32, generator=g1)
    y = TaskSampler().sample(32, generator=g2)
    assert all(torch.equal(u, v) for u, v in zip(x, y))
    assert TaskSampler().state_dict() == {"generator": None}


def test_batched_condition_matches_the_task_conditions():
    batch, frames, cc, cr, h, w = 8, 3, 2, 4, 2, 2
    video = torch.randn(batch, frames, cc, h, w)
    observation = torch.randn(batch, 1, cc, h, w)
    goal = torch.randn(batch, 1, cc, h, w)
    raymap = torch.randn(batch, frames, cr, h, w)
    mode = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    keep = torch.tensor([True, False] * 4)
    sampler = TaskSampler(raymap_channels=cr)
    condition = sampler.build_condition(mode, keep, video, observation, goal, raymap)
    assert condition.shape == (batch, frames, cc + cr, h, w)
    color = {"video": video, "observation": observation, "goal": goal}
    for b in range(batch):
        one = {k: v[b : b + 1] for k, v in color.items()}
        action = raymap[b : b + 1] if keep[b] else None
        if mode[b] == ColorMode.NONE:
            want = torch.zeros(1, frames, cc + cr, h, w)
            if action is not None:
                want[:, :, cc:] = action
        else:
            name = {0: "planning", 1: "prediction", 2: "reconstruction"}[int(mode[b])]
            want = TASKS.build(name, raymap_channels=cr).build_condition(one, action, frames)
        assert torch.equal(condition[b : b + 1], want), b


def test_observation_and_goal_default_to_the_first_and_last_latent_frames():
    video = torch.randn(2, 3, 2, 1, 1)
    sampler = TaskSampler(raymap_channels=1)
    condition = sampler.build_condition(torch.tensor([0, 1]), torch.tensor([False, False]), video)
    assert torch.equal(condition[0, 0, :2], video[0, 0]) and torch.equal(condition[0, 2, :2], video[0, 2])
    assert (condition[0, 1] == 0).all() and (condition[1, 1:] == 0).all()
    assert torch.equal(condition[1, 0, :2], video[1, 0])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="summing to 1, got sum 0.9"):
        TaskSampler([0.3, 0.3, 0.28, 0.02])
    with pytest.raises(ValueError, match="4 non-negative probabilities"):
        TaskSampler([0.5, 0.5])
    with pytest.raises(ValueError, match="probability keys"):
        TaskSampler({"depth": 1.0})
    with pytest.raises(ValueError, match="action_keep"):
        TaskSampler(action_keep=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        TaskSampler().sample(-1)
    sampler = TaskSampler(raymap_channels=1)
    with pytest.raises(ValueError, match="color_mode of shape \\(2,\\)"):
        sampler.build_condition(torch.tensor([0]), torch.tensor([True, True]), torch.zeros(2, 3, 1, 1, 1))
    with pytest.raises(ValueError, match="keep_action of shape \\(2,\\) bool"):
        sampler.build_condition(torch.tensor([0, 1]), torch.tensor([1, 1]), torch.zeros(2, 3, 1, 1, 1))
