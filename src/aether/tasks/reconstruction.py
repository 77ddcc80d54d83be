"""4D reconstruction: depth and cameras of a given video."""

from __future__ import annotations

from .base import TASKS, Task
from .condition import ColorMode


@TASKS.register("reconstruction")
class Reconstruction(Task):
    """Conditioned on the whole video's latents; 4 steps, no guidance by default.

    Its unconditional condition (used only with guidance_scale > 1) zeroes the color condition.
    """

    name = "reconstruction"
    required_inputs = ("video",)
    required_outputs = ("disparity", "c2w")
    scored_on = "geometry"
    description = "4D reconstruction of the video"
    color_mode = ColorMode.VIDEO
    default_num_inference_steps = 4
    default_guidance_scale = 1.0
    default_dynamic_cfg = False
