"""Tasks as data: reconstruction, prediction and planning (registry ``TASKS``), the training
``TaskSampler`` and the guidance schedule. Third-party tasks are discovered through the entry-point
group ``aether.tasks``."""

from .base import TASKS, Task
from .condition import COLOR_INPUTS, ColorMode, color_inputs, compose_condition, given_frames
from .guidance import dynamic_guidance_scale
from .planning import Planning
from .prediction import Prediction
from .reconstruction import Reconstruction
from .sampler import PAPER_PROBABILITIES, TaskSampler

__all__ = [
    "COLOR_INPUTS",
    "PAPER_PROBABILITIES",
    "TASKS",
    "ColorMode",
    "Planning",
    "Prediction",
    "Reconstruction",
    "Task",
    "TaskSampler",
    "color_inputs",
    "compose_condition",
    "dynamic_guidance_scale",
    "given_frames",
]
