"""Video prediction from one observation, optionally following a camera trajectory."""

from __future__ import annotations

from torch import Tensor

from .base import TASKS, Task
from .condition import ColorMode


@TASKS.register("prediction")
class Prediction(Task):
    """Observation latent in latent frame 0, zeros elsewhere; 50 steps, guidance 3, dynamic CFG.

    The unconditional condition zeroes the color condition of latent frame 0 (of the context frames
    0 … k−1 when ``context_frames`` k > 1).
    """

    name = "prediction"
    required_inputs = ("observation",)
    optional_inputs = ("trajectory", "context")
    scored_on = "frames"
    description = "prediction from the first frame"
    color_mode = ColorMode.OBSERVATION
    default_num_inference_steps = 50
    default_guidance_scale = 3.0
    default_dynamic_cfg = True

    def build_unconditional(self, condition: Tensor) -> Tensor:
        """A copy of ``condition`` with the color channels of the context latent frames zeroed."""
        self._check_condition(condition)
        out = condition.clone()
        out[:, : self.context_frames, : condition.shape[2] - self.raymap_channels] = 0
        return out
