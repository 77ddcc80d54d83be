"""The trivial predictors generated videos are scored against."""

from __future__ import annotations

import math

import pytest
import torch

from aether.evaluation.baselines import blurred_copies


def test_blurred_copies_keep_constants_and_spread_an_impulse_as_the_gaussian() -> None:
    flat = torch.full((3, 20, 30), 0.25)
    torch.testing.assert_close(blurred_copies(flat, (1.0, 2.0)), flat.expand(2, -1, -1, -1))
    impulse = torch.zeros(3, 41, 41)
    impulse[:, 20, 20] = 1.0
    (blurred,) = blurred_copies(impulse, (2.0,))
    x = torch.arange(-3, 4, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / 8)  # σ = 2 px, truncated at ±6 px and normalised over ±6
    full = torch.exp(-(torch.arange(-6, 7, dtype=torch.float32) ** 2) / 8).sum()
    expected = (kernel[:, None] * kernel[None]) / full**2
    torch.testing.assert_close(blurred[1, 17:24, 17:24], expected, atol=1e-6, rtol=1e-5)
    assert float(blurred.sum()) == pytest.approx(3.0, rel=1e-5)  # mass is kept (away from borders)
    assert math.isclose(float(blurred[0, 20, 20]), float(1 / full**2), rel_tol=1e-5)


def test_blurred_copies_refuse_a_video() -> None:
    with pytest.raises(ValueError, match=r"expected \(3,H,W\), got \(2, 3, 8, 8\)"):
        blurred_copies(torch.zeros(2, 3, 8, 8))
