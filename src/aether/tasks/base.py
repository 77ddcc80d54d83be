"""The Task base class and the ``TASKS`` registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor

from aether.registry import Registry

from .condition import COLOR_INPUTS, ColorMode, compose_condition, given_frames
from .guidance import dynamic_guidance_scale

TASKS: Registry[type[Task]] = Registry("task", "aether.tasks")


class Task:
    """What a task needs and how it conditions the model.

    A task names its inputs, builds the condition latents [color | action and signals] from
    encoded inputs, builds the unconditional condition of classifier-free guidance (guidance acts
    on the observation, never on the action), and carries its sampling defaults. What generic code
    needs to know about a task is class data (as torchmetrics' ``higher_is_better``): which frames
    it is given, what it requires, how it is scored and what its pictures say.

    Subclasses set ``name``, ``required_inputs``, ``color_mode`` and the defaults.

    Attributes:
        required_inputs: what the task must be given: colour inputs ("video", "observation",
            "goal"; see :data:`~aether.tasks.condition.COLOR_INPUTS`) and clip entries read by the
            model's signal condition modalities (e.g. "depth").
        optional_inputs: what it may be given ("trajectory": the action; "context": the leading
            frames (4(k−1)+1, 3, H, W) a rollout continues from, for tasks that can continue one).
        required_outputs: ``SampleOutput`` fields the model must decode for the task ("disparity",
            "c2w", ...).
        scored_on: "geometry" (the decoded depth and cameras against the truth) or "frames" (the
            generated frames it was not given against the true ones).
        description: what the task's pictures show ("prediction from the first frame").

    Args:
        num_inference_steps: override of the default number of denoising steps.
        guidance_scale: override of the default guidance weight (1 = no guidance).
        dynamic_cfg: override of whether the guidance weight follows the dynamic schedule.
        raymap_channels: condition channels after the colour ones Cr: the action raymap (24 for
            AetherV1) and any signal and memory modalities; 0 for models conditioned on colour only.
        context_frames: leading latent frames given as colour (1: the observation alone; k > 1: also
            the "context" latents' frames 1 … k−1, as a rollout continues from its last frames); only
            for tasks whose inputs include "context".
    """

    name: ClassVar[str] = ""
    required_inputs: ClassVar[tuple[str, ...]] = ()
    optional_inputs: ClassVar[tuple[str, ...]] = ("trajectory",)
    required_outputs: ClassVar[tuple[str, ...]] = ()
    scored_on: ClassVar[str] = "frames"
    description: ClassVar[str] = ""
    color_mode: ClassVar[ColorMode]
    default_num_inference_steps: ClassVar[int] = 50
    default_guidance_scale: ClassVar[float] = 1.0
    default_dynamic_cfg: ClassVar[bool] = False

    def __init__(
        self,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        dynamic_cfg: bool | None = None,
        raymap_channels: int = 24,
        context_frames: int = 1,
    ) -> None:
        steps = self.default_num_inference_steps if num_inference_steps is None else num_inference_steps
        if int(steps) != steps or steps < 1:
            raise ValueError(f"expected num_inference_steps >= 1, got {num_inference_steps!r}")
        scale = self.default_guidance_scale if guidance_scale is None else float(guidance_scale)
        if not scale >= 0:
            raise ValueError(f"expected guidance_scale >= 0, got {guidance_scale!r}")
        if int(context_frames) != context_frames or context_frames < 1:
            raise ValueError(f"expected context_frames >= 1, got {context_frames!r}")
        if context_frames > 1 and not self.takes_context():
            raise ValueError(
                f"{self.name}: takes no context frames (its inputs {list(self.required_inputs)}, optional "
                f"{list(self.optional_inputs)}), got context_frames={context_frames}"
            )
        if raymap_channels < 0:
            raise ValueError(f"expected raymap_channels >= 0, got {raymap_channels}")
        self.num_inference_steps = int(steps)
        self.guidance_scale = scale
        self.dynamic_cfg = self.default_dynamic_cfg if dynamic_cfg is None else bool(dynamic_cfg)
        self.raymap_channels = raymap_channels
        self.context_frames = int(context_frames)

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Whether sampling runs the unconditional branch (guidance_scale > 1)."""
        return self.guidance_scale > 1.0

    @classmethod
    def takes_context(cls) -> bool:
        """Whether the task can continue from leading "context" frames (a rollout's)."""
        return "context" in (*cls.required_inputs, *cls.optional_inputs)

    @classmethod
    def given_frames(cls, num_frames: int, context_frames: int = 1) -> tuple[int, ...]:
        """The frames of a ``num_frames`` clip whose colour the task is given (with ``context_frames``
        leading latent frames of context)."""
        return given_frames(cls.color_mode, num_frames, context_frames)

    def check_inputs(self, inputs: Mapping[str, object]) -> None:
        """ValueError unless ``inputs`` has every required input and nothing unknown."""
        missing = [k for k in self.required_inputs if inputs.get(k) is None]
        unknown = sorted(set(inputs) - set(self.required_inputs) - set(self.optional_inputs))
        if missing or unknown:
            raise ValueError(
                f"{self.name}: expected inputs {list(self.required_inputs)} "
                f"(optional {list(self.optional_inputs)}), got {sorted(inputs)}"
            )

    def build_condition(
        self, color: Mapping[str, Tensor], raymap: Tensor | None, num_latent_frames: int
    ) -> Tensor:
        """Condition latents (B,F,Cc+Cr,h,w).

        Args:
            color: color latents by input name: "video" (B,F,Cc,h,w), "observation" (B,1,Cc,h,w),
                "goal" (B,1,Cc,h,w); those in ``required_inputs`` are used (the others are signals),
                and "context" (B,>=k,Cc,h,w) when ``context_frames`` k > 1.
            raymap: (B,F,Cr,h,w) latents of the action, signals and memory, or None (zeros).
            num_latent_frames: F.
        """
        needed = [k for k in self.required_inputs if k in COLOR_INPUTS]
        if any(color.get(k) is None for k in needed):
            raise ValueError(f"{self.name}: expected color latents {needed}, got {sorted(color)}")
        used = {k: color[k] for k in needed}
        batch_size = next(iter(used.values())).shape[0]
        device = next(iter(used.values())).device
        context = None
        if self.context_frames > 1:
            context = color.get("context")
            if context is None or context.shape[1] < self.context_frames:
                got = None if context is None else tuple(context.shape)
                raise ValueError(
                    f"{self.name}: expected context latents with >= {self.context_frames} frames, got {got}"
                )
            if self.context_frames > num_latent_frames - (self.color_mode == ColorMode.OBSERVATION_GOAL):
                raise ValueError(
                    f"{self.name}: {self.context_frames} context latent frames do not fit a clip of "
                    f"{num_latent_frames} latent frames"
                )
        return compose_condition(
            torch.full((batch_size,), int(self.color_mode), device=device),
            torch.full((batch_size,), raymap is not None, device=device),
            raymap=raymap,
            num_latent_frames=num_latent_frames,
            raymap_channels=self.raymap_channels,
            context=context,
            context_frames=None
            if context is None
            else torch.full((batch_size,), self.context_frames, device=device),
            **used,
        )

    def _check_condition(self, condition: Tensor) -> None:
        if (
            not isinstance(condition, Tensor)
            or condition.ndim != 5
            or condition.shape[2] <= self.raymap_channels
        ):
            shape = tuple(condition.shape) if isinstance(condition, Tensor) else type(condition).__name__
            raise ValueError(
                f"expected a condition (B,F,Cc+{self.raymap_channels},h,w) with Cc > 0, got {shape}"
            )

    def build_unconditional(self, condition: Tensor) -> Tensor:
        """The CFG unconditional condition: a copy with every color condition channel zeroed."""
        self._check_condition(condition)
        out = condition.clone()
        out[:, :, : condition.shape[2] - self.raymap_channels] = 0
        return out

    def guidance_at(self, timestep: float | Tensor, num_inference_steps: int | None = None) -> float:
        """Guidance weight at ``timestep``: the dynamic schedule when ``dynamic_cfg``, else constant."""
        if not self.dynamic_cfg:
            return self.guidance_scale
        steps = self.num_inference_steps if num_inference_steps is None else num_inference_steps
        return dynamic_guidance_scale(self.guidance_scale, timestep, steps)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_inference_steps={self.num_inference_steps}, "
            f"guidance_scale={self.guidance_scale}, dynamic_cfg={self.dynamic_cfg})"
        )
