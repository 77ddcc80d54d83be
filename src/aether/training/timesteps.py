"""Training timestep distributions.

The paper's recipe draws diffusion timesteps uniformly. A logit-normal draw (Esser et al.,
2024) concentrates training on the noise levels where the model has to infer structure from
the conditions rather than read it off the noisy input; with a positive mean it favours the
high-noise steps that decide a few-step reconstruction.
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
    ``{"kind": "logit_normal", "mean": m, "std": s}`` (defaults m = 0, s = 1)."""
    cfg = {"kind": "uniform", **dict(config or {})}
    kind = cfg["kind"]
    if kind not in TIMESTEP_SAMPLINGS:
        raise ValueError(f"timestep_sampling kind: expected one of {TIMESTEP_SAMPLINGS}, received {kind!r}")
    allowed = {"kind"} if kind == "uniform" else {"kind", "mean", "std"}
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
    return cfg


def sample_timesteps(
    num: int,
    num_train_timesteps: int,
    generator: torch.Generator,
    kind: str = "uniform",
    mean: float = 0.0,
    std: float = 1.0,
) -> Tensor:
    """``num`` integer timesteps (num,) in [0, num_train_timesteps); the keyword arguments are
    those of a config checked by :func:`check_timestep_sampling`.

    ``uniform``: ``torch.randint``. ``logit_normal``: t = ⌊N·σ(mean + std·n)⌋ with n ~ N(0, 1),
    so P(t < k) = Φ((logit(k/N) − mean)/std).
    """
    if kind == "uniform":
        return torch.randint(0, num_train_timesteps, (num,), generator=generator)
    if kind != "logit_normal":
        raise ValueError(f"timestep sampling kind: expected one of {TIMESTEP_SAMPLINGS}, received {kind!r}")
    n = torch.randn(num, generator=generator, dtype=torch.float64)
    u = torch.sigmoid(float(mean) + float(std) * n)
    return (u * num_train_timesteps).long().clamp_(0, num_train_timesteps - 1)
