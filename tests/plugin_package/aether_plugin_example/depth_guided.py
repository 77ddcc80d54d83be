"""``depth_guided``: video prediction from one image along a given depth video (the ``depth_hint``
condition), scored and pictured like prediction."""

from __future__ import annotations

from aether.tasks import ColorMode, Task


class DepthGuided(Task):
    """The observation in latent frame 0 and the depth hint of every frame; 50 steps, guidance 3 on
    the observation (the hint stays in the unconditional branch, like an action)."""

    name = "depth_guided"
    required_inputs = ("observation", "depth")
    scored_on = "frames"
    description = "prediction from the first frame along a depth video"
    color_mode = ColorMode.OBSERVATION
    default_num_inference_steps = 50
    default_guidance_scale = 3.0
    default_dynamic_cfg = True
