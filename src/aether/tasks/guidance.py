"""Classifier-free guidance weights."""

from __future__ import annotations

import math

from torch import Tensor


def dynamic_guidance_scale(
    guidance_scale: float, timestep: float | Tensor, num_inference_steps: int
) -> float:
    """CogVideoX's dynamic CFG weight ``1 + w·(1 − cos(π·((S − t)/S)^5))/2``, in float64.

    ``t`` is the timestep value (e.g. 999 … 0), ``S`` the number of inference steps; the cosine
    argument is huge for t ≫ S, so the weight is computed in Python floats (float64) exactly as the
    reference pipelines do.
    """
    if num_inference_steps < 1:
        raise ValueError(f"expected num_inference_steps >= 1, got {num_inference_steps}")
    t = float(timestep.item() if isinstance(timestep, Tensor) else timestep)
    s = num_inference_steps
    return 1 + guidance_scale * ((1 - math.cos(math.pi * ((s - t) / s) ** 5.0)) / 2)
