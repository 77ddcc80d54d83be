import numpy as np
import pytest
import torch

from aether.tasks import Prediction, dynamic_guidance_scale


def reference(w: float, t: float, steps: int) -> float:
    """w_t = 1 + w·(1 − cos(π·((S − t)/S)^5))/2 in numpy float64."""
    ratio = (np.float64(steps) - np.float64(t)) / np.float64(steps)
    return float(1.0 + np.float64(w) * (1.0 - np.cos(np.pi * np.power(ratio, 5.0))) / 2.0)


@pytest.mark.parametrize("t", [999, 979, 500, 249, 61, 1, 0])
@pytest.mark.parametrize("steps", [4, 50])
def test_dynamic_weight_matches_the_formula_in_float64(t, steps):
    value = dynamic_guidance_scale(3.0, torch.tensor(t), steps)
    assert value == pytest.approx(reference(3.0, t, steps), rel=1e-12, abs=1e-12)
    assert 1.0 <= value <= 4.0


def test_closed_form_end_points():
    # t = 0: ((S - 0)/S)^5 = 1, cos(pi) = -1, so w_t = 1 + w
    assert dynamic_guidance_scale(3.0, 0, 50) == pytest.approx(4.0, abs=1e-15)
    # t = S: cos(0) = 1, so w_t = 1
    assert dynamic_guidance_scale(3.0, 50, 50) == 1.0


def test_float32_would_differ_for_large_timesteps():
    # (50 - 999)/50 = -18.98 -> ^5 ~ -2.5e6, cos of ~-7.8e6: float32 rounding of the argument changes it
    ratio32 = np.float32((50 - 999) / 50) ** np.float32(5)
    in_float32 = 1 + 3.0 * (1 - np.cos(np.float32(np.pi) * ratio32, dtype=np.float32)) / 2
    assert abs(in_float32 - dynamic_guidance_scale(3.0, 999, 50)) > 1e-3


def test_task_guidance_schedule():
    task = Prediction()
    assert task.guidance_at(torch.tensor(749)) == dynamic_guidance_scale(3.0, 749, 50)
    assert task.guidance_at(749, num_inference_steps=4) == dynamic_guidance_scale(3.0, 749, 4)
    with pytest.raises(ValueError, match="num_inference_steps >= 1"):
        dynamic_guidance_scale(3.0, 1, 0)
