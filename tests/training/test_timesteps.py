import math

import pytest
import torch

from aether.training.timesteps import check_timestep_sampling, sample_timesteps


def test_uniform_is_randint_with_the_same_generator():
    got = sample_timesteps(64, 1000, torch.Generator().manual_seed(3))
    want = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(got, want)


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (1.0, 1.0), (-0.5, 0.5)])
def test_logit_normal_matches_its_cdf(mean, std):
    n, num = 200_000, 1000
    cfg = {"kind": "logit_normal", "mean": mean, "std": std}
    t = sample_timesteps(n, num, torch.Generator().manual_seed(0), **check_timestep_sampling(cfg))
    assert t.dtype == torch.int64 and int(t.min()) >= 0 and int(t.max()) <= num - 1
    for k in (100, 250, 500, 750, 900):
        z = (math.log(k / (num - k)) - mean) / std
        expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))  # P(t < k) = Φ((logit(k/N) − m)/s)
        assert float((t < k).double().mean()) == pytest.approx(expected, abs=4e-3)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="expected one of"):
        check_timestep_sampling({"kind": "cosine"})
    with pytest.raises(ValueError, match="std > 0"):
        check_timestep_sampling({"kind": "logit_normal", "std": 0.0})
    with pytest.raises(ValueError, match="expected keys"):
        check_timestep_sampling({"kind": "uniform", "mean": 1.0})
    assert check_timestep_sampling(None) == {"kind": "uniform"}
    with pytest.raises(ValueError, match="expected one of"):
        sample_timesteps(4, 1000, torch.Generator(), kind="cosine")
    with pytest.raises(ValueError, match=r"terminal: expected a fraction in \[0, 1\)"):
        check_timestep_sampling({"kind": "uniform", "terminal": 1.0})


@pytest.mark.parametrize("kind", ["uniform", "logit_normal"])
def test_terminal_puts_its_fraction_at_the_last_step_and_keeps_the_rest(kind):
    n, num, p = 100_000, 1000, 0.25
    cfg = check_timestep_sampling({"kind": kind, "terminal": p})
    t = sample_timesteps(n, num, torch.Generator().manual_seed(1), **cfg)
    # the draws not moved are the plain draws of the same generator
    plain = sample_timesteps(n, num, torch.Generator().manual_seed(1), **{**cfg, "terminal": 0.0})
    moved = t != plain
    assert bool((t[moved] == num - 1).all())
    # P(t = N-1) = p + (1 - p)·P_plain(t = N-1)
    expected = p + (1 - p) * float((plain == num - 1).double().mean())
    assert float((t == num - 1).double().mean()) == pytest.approx(expected, abs=5e-3)
    kept_plain = float((plain != num - 1).double().mean())
    assert float(moved.double().mean()) == pytest.approx(p * kept_plain, abs=5e-3)
