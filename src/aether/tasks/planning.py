"""Visual planning: the video leading from an observation to a goal."""

from __future__ import annotations

from .base import TASKS, Task
from .condition import ColorMode


@TASKS.register("planning")
class Planning(Task):
    """Observation latent in latent frame 0 and goal latent in frame F-1; 50 steps, guidance 3,
    dynamic CFG. The unconditional condition zeroes all color condition channels."""

    name = "planning"
    required_inputs = ("observation", "goal")
    optional_inputs = ("trajectory", "context")
    scored_on = "frames"
    description = "plan from the first to the last frame"
    color_mode = ColorMode.OBSERVATION_GOAL
    default_num_inference_steps = 50
    default_guidance_scale = 3.0
    default_dynamic_cfg = True
