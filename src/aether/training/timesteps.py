"""Training timestep distributions.

The paper's recipe draws diffusion timesteps uniformly. A logit-normal draw (Esser et al.,
2024) concentrates training on the noise levels where the model has to infer structure from
the conditions rather than read it off the noisy input; with a positive mean it favours the
high-noise steps that decide a few-step reconstruction.

Under a zero-terminal-SNR schedule the first sampling step sees pure noise (t = N − 1), a level
neither draw reaches in practice (logit-normal with mean 1 puts 0.02 % of its mass above
t = 0.99 N). Below it, large smooth signals such as the raymap's camera origins survive the noise
and a model learns to read them off the noisy input instead of inferring them from the video.
``terminal`` sends that fraction of the draws to t = N − 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

TIMESTEP_SAMPLINGS = ("uniform", "logit_normal")


def check_timestep_sampling(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The validated sampling config: ``{"kind": "uniform"}`` or
    ``{"kind": "logit_normal", "mean": m, "std": s}`` (defaults m = 0, s = 1), each with an optional
    ``"terminal": p`` in [0, 1) (default 0), the fraction of draws put at the last timestep."""
    cfg = {"kind": "uniform", **dict(config or {})}
    kind = cfg["kind"]
    if kind not in TIMESTEP_SAMPLINGS:
        raise ValueError(f"timestep_sampling kind: expected one of {TIMESTEP_SAMPLINGS}, received {kind!r}")
    allowed = {"kind", "terminal"} if kind == "uniform" else {"kind", "mean", "std", "terminal"}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(f"timestep_sampling {kind!r}: expected keys {sorted(allowed)}, received {unknown}")
    if kind == "logit_normal":
        cfg = {"mean": 0.0, "std": 1.0, **cfg}
        if not (math.isfinite(float(cfg["mean"])) and float(cfg["std"]) > 0):
            raise ValueError(
                f"timestep_sampling logit_normal: expected a finite mean and std > 0, received "
                f"mean={cfg['mean']!r}, std={cfg['std']!r}"
            )
    terminal = cfg.get("terminal", 0.0)
    if not (isinstance(terminal, int | float) and 0.0 <= float(terminal) < 1.0):
        raise ValueError(f"timestep_sampling terminal: expected a fraction in [0, 1), received {terminal!r}")
    return cfg


def sample_timesteps(
    num: int,
    num_train_timesteps: int,
    generator: torch.Generator,
    kind: str = "uniform",
    mean: float = 0.0,
    std: float = 1.0,
    terminal: float = 0.0,
) -> Tensor:
    """``num`` integer timesteps (num,) in [0, num_train_timesteps); the keyword arguments are
    those of a config checked by :func:`check_timestep_sampling`.

    ``uniform``: ``torch.randint``. ``logit_normal``: t = ⌊N·σ(mean + std·n)⌋ with n ~ N(0, 1),
    so P(t < k) = Φ((logit(k/N) − mean)/std). ``terminal`` > 0: each draw is then replaced by
    N − 1 with that probability (one more uniform draw per timestep from ``generator``).
    """
    if kind == "uniform":
        t = torch.randint(0, num_train_timesteps, (num,), generator=generator)
    elif kind == "logit_normal":
        n = torch.randn(num, generator=generator, dtype=torch.float64)
        u = torch.sigmoid(float(mean) + float(std) * n)
        t = (u * num_train_timesteps).long().clamp_(0, num_train_timesteps - 1)
    else:
        raise ValueError(f"timestep sampling kind: expected one of {TIMESTEP_SAMPLINGS}, received {kind!r}")
    if terminal > 0:
        last = torch.rand(num, generator=generator, dtype=torch.float64) < float(terminal)
        t = torch.where(last, num_train_timesteps - 1, t)
    return t
