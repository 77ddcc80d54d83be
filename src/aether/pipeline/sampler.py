"""The denoising loop of an Aether model, as small named steps, and the sampling policies.

:class:`AetherSampler` samples one clip at the model's resolution:

1. ``make_task``: the registered task with its defaults and the caller's overrides;
2. ``encode_conditions``: the colour inputs (observation, goal, video, context) through the latent backend;
3. ``prepare_conditions``: the task's condition latents [colour | action, signals and memory] and its CFG
   unconditional;
4. ``prepare_latents``: the scheduler's timesteps and the initial noise;
5. ``guidance_weights``: the per-step guidance weights (dynamic CFG or constant);
6. ``denoise``: the scheduler loop;
7. ``decode``: the clean latents through the model's own target stack (whatever modalities it has:
   each codec decodes its slice into the fields it declares).

The difference between reproducing the reference AetherV1 implementation and our default is one
frozen :class:`SamplingPolicy` object (:data:`UPSTREAM` or :data:`DEFAULT`); the sampler never
tests a mode string. The sampler is shared by :class:`~aether.pipeline.AetherPipeline` and by the
training module's validation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from aether.geometry import latent_frame_count
from aether.geometry.depth import MIN_DISPARITY
from aether.modalities.base import SIGNAL_ROLES
from aether.modalities.clip import ClipGeometry
from aether.models.spec import AETHERV1_SPEC, DEFAULT_FPS, AetherModelSpec
from aether.tasks.condition import COLOR_INPUTS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingPolicy:
    """How a sampler treats dtypes, random draws, user defaults and decoding.

    Attributes:
        name: "upstream" or "default" (recorded in results).
        latents_in_model_dtype: latents and conditions in the transformer's dtype, cast back to it
            after every scheduler step (the reference) instead of float32.
        posterior_sample: the colour conditions are one VAE posterior sample per encode call drawn
            from the sampling generator (the reference) instead of the posterior mode.
        zero_means_default: ``guidance_scale=0`` and ``dynamic_cfg=False`` fall back to the task
            defaults (the reference's ``x or default``) instead of being honoured.
        reference_decode: every codec decodes with its ``reference`` formula (colour and disparity in
            the VAE's dtype: rgb = clamp(x/2 + 0.5), disparity = (mean_c(x)·0.5 + 0.5)²) instead of
            its float32 decode.
        trained_sizes_only: frame counts and frame rates outside the model's trained sets are
            errors (the reference) instead of logged warnings.
        keep_input_colors: reconstruction returns the input frames instead of decoding colour.
        reference_embedding: a missing (or differently made) empty-prompt embedding is computed as the
            reference does (T5 in its loaded dtype, autograd enabled) instead of in float32 under
            ``no_grad`` (see :func:`aether.models.empty_prompt_embedding`).
    """

    name: str
    latents_in_model_dtype: bool
    posterior_sample: bool
    zero_means_default: bool
    reference_decode: bool
    trained_sizes_only: bool
    keep_input_colors: bool
    reference_embedding: bool


UPSTREAM = SamplingPolicy(
    name="upstream",
    latents_in_model_dtype=True,
    posterior_sample=True,
    zero_means_default=True,
    reference_decode=True,
    trained_sizes_only=True,
    keep_input_colors=False,
    reference_embedding=True,
)
DEFAULT = SamplingPolicy(
    name="default",
    latents_in_model_dtype=False,
    posterior_sample=False,
    zero_means_default=False,
    reference_decode=False,
    trained_sizes_only=False,
    keep_input_colors=True,
    reference_embedding=False,
)
POLICIES: dict[str, SamplingPolicy] = {"default": DEFAULT, "upstream": UPSTREAM}


def resolve_policy(policy: SamplingPolicy | str) -> SamplingPolicy:
    """A policy object from itself or its name ("default", "upstream")."""
    if isinstance(policy, SamplingPolicy):
        return policy
    if policy not in POLICIES:
        raise ValueError(f"mode must be one of {tuple(POLICIES)}, got {policy!r}")
    return POLICIES[policy]


@dataclass
class SampleOutput:
    """One sampled clip, decoded by the model's target stack (None where no codec fills the field).

    Attributes:
        rgb: (T, H, W, 3) float32 in [0, 1], or None when colour was not decoded.
        disparity: (T, H, W) float32 normalised disparity (with a disparity target).
        valid: (T, H, W) bool, disparity at or above the floor (with a disparity target).
        raymap: (T, 6, h, w) float32 decoded raymap (with a raymap target).
        c2w: (T, 4, 4) and K: (T, 3, 3) cameras recovered from the raymap (with a raymap target).
        latents: (1, F, C, h, w) clean latents.
        extras: decoded outputs of the other target modalities, ``{"name.key": (T, ...) tensor}``.
    """

    rgb: Tensor | None
    latents: Tensor
    disparity: Tensor | None = None
    valid: Tensor | None = None
    raymap: Tensor | None = None
    c2w: Tensor | None = None
    K: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingPlan:
    """The sizes and dtypes of one sampling call."""

    num_frames: int
    num_latent: int
    height: int
    width: int
    latent_dtype: torch.dtype
    model_dtype: torch.dtype
    device: torch.device


class AetherSampler:
    """Denoise and decode clips with an Aether transformer.

    Args:
        transformer: the Aether transformer (in = targets + conditions, out = targets).
        backend: the latent backend the stacks share.
        scheduler: a diffusers scheduler (``CogVideoXDPMScheduler`` for AetherV1).
        prompt_embeds: (1, L, D) empty-prompt embedding.
        spec: the model definition (default: AetherV1); it builds the target and condition stacks.
        targets: an already built target ``ModalityStack`` on ``backend`` (default: built from ``spec``).
    """

    def __init__(
        self,
        transformer: Any,
        backend: Any,
        scheduler: Any,
        prompt_embeds: Tensor,
        *,
        spec: AetherModelSpec | None = None,
        targets: Any = None,
    ) -> None:
        self.spec = spec or AETHERV1_SPEC
        self.transformer = transformer
        self.backend = backend
        self.scheduler = scheduler
        self.prompt_embeds = prompt_embeds
        if targets is None:
            targets, conditions = self.spec.build_stacks(backend)
        else:
            conditions = self.spec.build_stacks(backend)[1]
        self.targets = targets
        self.conditions = conditions
        self.raymap_channels = int(conditions.channels - conditions.codecs[conditions.frames].channels)
        self.spec.check_transformer(transformer.config, targets.channels, conditions.channels)
        transformer.base_fps = self.spec.rope_base_fps
        self.progress = True
        self.execution_device: torch.device | None = None
        self.feature_cache: Any = None  # an aether.pipeline.acceleration.FeatureCache, or None
        self.current_timestep: int | None = None  # the step being denoised (read by feature caches)

    # ------------------------------------------------------------------ sizes
    @property
    def device(self) -> torch.device:
        if self.execution_device is not None:
            return self.execution_device
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    @property
    def height(self) -> int:
        return int(self.transformer.config.sample_height) * int(self.backend.spatial_factor)

    @property
    def width(self) -> int:
        return int(self.transformer.config.sample_width) * int(self.backend.spatial_factor)

    @property
    def min_disparity(self) -> float:
        """The disparity floor of the target codec that owns one (the shared default otherwise)."""
        floors = [getattr(c, "min_disparity", None) for c in self.targets.codecs.values()]
        return float(next((f for f in floors if f is not None), MIN_DISPARITY))

    @property
    def takes_action(self) -> bool:
        """Whether the model is conditioned on a camera trajectory (a condition codec of role "action")."""
        return any(c.condition_role == "action" for c in self.conditions.codecs.values())

    @property
    def input_names(self) -> frozenset[str]:
        """What the model can be given: the colour inputs, "trajectory" with an action, and the clip
        entries its signal and memory condition modalities read."""
        names = set(COLOR_INPUTS) | ({"trajectory"} if self.takes_action else set())
        for codec in self.conditions.codecs.values():
            if codec.condition_role in SIGNAL_ROLES:
                names |= set(codec.inputs)
        return frozenset(names)

    def check_fps(self, fps: float | None, policy: SamplingPolicy) -> float:
        """The frame rate (default :data:`~aether.models.spec.DEFAULT_FPS`), checked against the
        model's trained set."""
        fps = DEFAULT_FPS if fps is None else float(fps)
        if self.spec.fps is not None and fps not in self.spec.fps:
            if policy.trained_sizes_only:
                raise ValueError(f"fps must be one of {self.spec.fps}, got {fps}")
            logger.warning("fps %s is outside the trained set %s; RoPE is interpolated", fps, self.spec.fps)
        return fps

    def check_frames(self, num_frames: int, policy: SamplingPolicy, *, strict: bool = False) -> None:
        """ValueError for a frame count outside the trained set (always when ``strict``)."""
        allowed = self.spec.frames
        if allowed is not None and num_frames not in allowed and (strict or policy.trained_sizes_only):
            raise ValueError(f"num_frames must be one of {allowed}, got {num_frames}")

    # ------------------------------------------------------------------ steps
    def make_task(
        self,
        task: str,
        policy: SamplingPolicy,
        num_inference_steps: int | None,
        guidance_scale: float | None,
        dynamic_cfg: bool | None,
        context_frames: int = 1,
    ) -> Any:
        """1. The registered task with its defaults (the model spec's ``sampling_steps`` first) and the
        caller's overrides."""
        from aether.tasks import TASKS

        if policy.zero_means_default:  # the reference: `guidance_scale or default`, `dynamic or default`
            guidance_scale = guidance_scale or None
            dynamic_cfg = dynamic_cfg or None
        if num_inference_steps is None:  # the model's own choice, else the task's default
            num_inference_steps = (self.spec.sampling_steps or {}).get(task)
        return TASKS.build(
            task,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            dynamic_cfg=dynamic_cfg,
            raymap_channels=self.raymap_channels,
            **({"context_frames": context_frames} if context_frames != 1 else {}),
        )

    def encode_conditions(
        self,
        inputs: Mapping[str, Tensor | None],
        plan: SamplingPlan,
        policy: SamplingPolicy,
        generator: torch.Generator | None,
    ) -> dict[str, Tensor]:
        """2. Colour latents of "observation", "goal" (3, H, W), "video" (T, 3, H, W) and "context"
        (4(k−1)+1, 3, H, W), in this order (the reference draws one posterior sample per encode call,
        in this order)."""
        color: dict[str, Tensor] = {}
        for name in COLOR_INPUTS:
            x = inputs.get(name)
            if x is None:
                continue
            # contiguous (1, T, 3, H, W) as the reference: other layouts give other bf16 conv results
            x = (x[None, None] if x.ndim == 3 else x[None]).contiguous()
            if tuple(x.shape[-2:]) != (plan.height, plan.width):
                raise ValueError(
                    f"{name}: expected {plan.height}x{plan.width} frames, got {tuple(x.shape[-2:])}"
                )
            sample = policy.posterior_sample
            color[name] = self.backend.encode(
                x.to(plan.device), sample=sample, generator=generator if sample else None
            ).to(plan.latent_dtype)
        if "video" in color and color["video"].shape[1] != plan.num_latent:
            raise ValueError(f"video: expected {plan.num_frames} frames, got {inputs['video'].shape[0]}")
        return color

    def prepare_conditions(
        self,
        task: Any,
        color: dict[str, Tensor],
        raymap: Tensor | None,
        plan: SamplingPlan,
        signals: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """3. The condition latents (1, F, Cc, h, w) and the CFG unconditional (None without CFG)."""
        given = self.condition_signals(raymap, signals or {}, plan)
        condition = task.build_condition(color, given, plan.num_latent).to(plan.latent_dtype)
        unconditional = task.build_unconditional(condition) if task.do_classifier_free_guidance else None
        return condition, unconditional

    @property
    def has_memory(self) -> bool:
        """Whether the model is conditioned on a geometric memory (a condition codec of role "memory",
        given as the signals :data:`~aether.modalities.base.MEMORY_INPUTS`)."""
        return any(c.condition_role == "memory" for c in self.conditions.codecs.values())

    def condition_signals(
        self, raymap: Tensor | None, signals: Mapping[str, Tensor], plan: SamplingPlan
    ) -> Tensor | None:
        """The condition latents after the colour channels (1, F, Cr, h, w): the action's raymap folded
        by its codec, each signal and memory modality encoded from ``signals`` (per-frame clip entries
        without the batch axis, e.g. "depth" (T, H, W), or a memory's "cache_video" (T, 3, H, W) and
        "cache_mask" (T, H, W)), zeros for those not given; None when nothing is given."""
        sf = int(self.backend.spatial_factor)
        h, w = plan.height // sf, plan.width // sf
        if raymap is not None and not self.takes_action:
            raise ValueError("this model has no raymap condition: give no trajectory")
        unread = sorted(set(signals) - (self.input_names - set(COLOR_INPUTS)))
        if unread:
            raise ValueError(
                f"no condition modality of this model reads {unread}; it reads {sorted(self.input_names)}"
            )
        clip: dict[str, object] = {k: v[None].to(plan.device) for k, v in signals.items()}
        clip |= {"height": plan.height, "width": plan.width}
        parts: list[Tensor | None] = []
        for name in self.conditions.signals:
            codec = self.conditions.codecs[name]
            part = None
            if codec.condition_role == "action" and raymap is not None:
                expected = (plan.num_frames, 6, h, w)
                if tuple(raymap.shape) != expected:
                    raise ValueError(f"raymap: expected {expected}, got {tuple(raymap.shape)}")
                # folded in the model's own layout, the one its training conditions had
                part = codec.fold(raymap[None].to(device=plan.device, dtype=plan.latent_dtype))
            elif codec.condition_role in SIGNAL_ROLES and all(k in clip for k in codec.inputs):
                part = codec.encode(clip).to(device=plan.device, dtype=plan.latent_dtype)
                expected = (1, plan.num_latent, codec.channels, h, w)
                if tuple(part.shape) != expected:
                    raise ValueError(
                        f"{name}: expected latents {expected} of the {plan.num_frames} frames at "
                        f"{plan.height}x{plan.width} given as {list(codec.inputs)}, got {tuple(part.shape)}"
                    )
            parts.append(part)
        if all(p is None for p in parts):
            return None
        filled = [
            p if p is not None else torch.zeros(1, plan.num_latent, self.conditions.codecs[n].channels, h, w)
            for n, p in zip(self.conditions.signals, parts)
        ]
        if len(filled) == 1:
            return filled[0]
        return torch.cat([p.to(device=plan.device, dtype=plan.latent_dtype) for p in filled], dim=2)

    def prepare_latents(
        self, task: Any, plan: SamplingPlan, num_samples: int, generator: torch.Generator | None
    ) -> tuple[Tensor, list[int], Tensor]:
        """4. Timesteps (tensor and host list) and the initial latents (S, F, Ct, h, w)."""
        from diffusers.utils.torch_utils import randn_tensor

        self.scheduler.set_timesteps(task.num_inference_steps, device=plan.device)
        timesteps = self.scheduler.timesteps
        sf = int(self.backend.spatial_factor)
        shape = (num_samples, plan.num_latent, self.targets.channels, plan.height // sf, plan.width // sf)
        latents = randn_tensor(shape, generator=generator, device=plan.device, dtype=plan.latent_dtype)
        return timesteps, timesteps.tolist(), latents * self.scheduler.init_noise_sigma

    @staticmethod
    def guidance_weights(task: Any, steps: list[int]) -> list[float]:
        """5. The guidance weight of each step (empty without CFG)."""
        if not task.do_classifier_free_guidance:
            return []
        return [task.guidance_at(t, task.num_inference_steps) for t in steps]

    def denoise(
        self,
        latents: Tensor,
        condition: Tensor,
        unconditional: Tensor | None,
        timesteps: Tensor,
        weights: list[float],
        plan: SamplingPlan,
        fps: float,
        generator: torch.Generator | None,
        desc: str = "",
    ) -> Tensor:
        """6. The scheduler loop from ``latents`` to clean latents (same shape and dtype)."""
        from tqdm.auto import tqdm

        cfg = unconditional is not None
        model_condition = torch.cat([unconditional, condition]) if cfg else condition
        # a contiguous copy per batch row, as the reference: an expanded view takes other bf16 paths
        prompt = self.prompt_embeds.to(device=plan.device, dtype=plan.model_dtype)
        prompt = prompt.repeat(model_condition.shape[0], 1, 1)
        sf = int(self.backend.spatial_factor)
        rope = self.transformer.rotary_embedding(
            plan.num_latent, plan.height // sf, plan.width // sf, fps, plan.device
        )
        model_condition = model_condition.to(plan.model_dtype)
        steps = timesteps.tolist()  # host values for the scheduler: no syncs inside the loop
        if self.feature_cache is not None:
            self.feature_cache.prepare(self.transformer, cfg, lambda: self.current_timestep)
        old_pred = None
        for i, t in enumerate(tqdm(steps, desc=desc, disable=not self.progress, leave=False)):
            self.current_timestep = t
            x = torch.cat([latents, latents]) if cfg else latents
            # every tensor argument carries the CFG batch (timestep too) and the text is passed by name:
            # feature caches recognise a CFG call by it and may split the batch
            v = self.transformer(
                x.to(plan.model_dtype), model_condition, timesteps[i].expand(x.shape[0]),
                encoder_hidden_states=prompt, image_rotary_emb=rope,
            ).float()  # fmt: skip
            if cfg:
                v_uncond, v_cond = v.chunk(2)
                v = v_uncond + weights[i] * (v_cond - v_uncond)
            latents, old_pred = self.scheduler.step(
                v, old_pred, t, steps[i - 1] if i > 0 else None, latents,
                eta=0.0, generator=generator, return_dict=False,
            )  # fmt: skip
            latents = latents.to(plan.latent_dtype)
        self.current_timestep = None
        return latents

    def decode(
        self, latents: Tensor, plan: SamplingPlan, policy: SamplingPolicy, decode_color: bool = True
    ) -> SampleOutput:
        """7. (1, F, Ct, h, w) clean latents through the target stack's codecs (batch element 0): each
        fills the ``SampleOutput`` fields it declares (``outputs``), the rest go to ``extras``."""
        size = ClipGeometry(plan.num_frames, plan.height, plan.width).side()
        out = SampleOutput(rgb=None, latents=latents.cpu())
        for name, part in self.targets.split(latents).items():
            codec = self.targets.codecs[name]
            if not decode_color and "rgb" in codec.outputs:
                continue
            decoded = codec.sample_outputs(part, size, plan.num_frames, reference=policy.reference_decode)
            for key, value in decoded.items():
                if key in codec.outputs:
                    setattr(out, key, value[0].cpu())
                else:
                    out.extras[key] = value[0].cpu()
        return out

    # ------------------------------------------------------------------ the whole loop
    @torch.no_grad()
    def __call__(
        self,
        task: str,
        *,
        policy: SamplingPolicy | str = DEFAULT,
        video: Tensor | None = None,
        observation: Tensor | None = None,
        goal: Tensor | None = None,
        raymap: Tensor | None = None,
        num_frames: int = 41,
        fps: float = DEFAULT_FPS,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        dynamic_cfg: bool | None = None,
        generator: torch.Generator | None = None,
        hook: Callable[[str, Tensor], Any] | None = None,
        decode_color: bool = True,
        num_samples: int = 1,
        context: Tensor | None = None,
        signals: Mapping[str, Tensor] | None = None,
    ) -> SampleOutput:
        """Denoise one clip at the model's resolution and decode it.

        Args:
            task: "reconstruction", "prediction" or "planning" (any registered task).
            policy: :data:`DEFAULT`, :data:`UPSTREAM` or their names.
            video: (T, 3, H, W) in [-1, 1] for reconstruction.
            observation: (3, H, W) in [-1, 1].
            goal: (3, H, W) in [-1, 1].
            raymap: (T, 6, H/8, W/8) action raymap, or None.
            signals: per-frame clip entries read by the model's signal and memory condition
                modalities, without the batch axis (e.g. "depth" (T, H, W); a memory's "cache_video"
                (T, 3, H, W) in [-1, 1] and "cache_mask" (T, H, W)); the task's required inputs among them.
            decode_color: decode the color latents (``rgb`` is None otherwise).
            num_samples: test-time ensemble size: this many samples are denoised in one batch from
                independent initial noise and their clean latents averaged before decoding (a
                Monte-Carlo estimate of E[z₀ | conditions]; it blurs generated video).
            context: (4(k−1)+1, 3, H, W) in [-1, 1]: the leading frames a rollout continues from; its k
                latent frames condition frames 0 … k−1 (frame 0 is ``observation``, default its first);
                for tasks that take a "context" input.
            hook: optional ``hook(name, tensor)`` called with the "condition" and "unconditional"
                latents, the "initial_latents" and the "final_latents" (num_samples, F, Ct, h, w)
                before averaging (for inspection).
        """
        policy = resolve_policy(policy)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
        context_frames = 1
        if context is not None:
            if context.ndim != 4 or (context.shape[0] - 1) % 4 or context.shape[1] != 3:
                raise ValueError(f"context: expected (4(k-1)+1, 3, H, W) frames, got {tuple(context.shape)}")
            context_frames = latent_frame_count(int(context.shape[0]))
            if observation is None:
                observation = context[0]
        task_obj = self.make_task(
            task, policy, num_inference_steps, guidance_scale, dynamic_cfg, context_frames=context_frames
        )
        self.check_frames(num_frames, policy)
        model_dtype = self.dtype
        plan = SamplingPlan(
            num_frames=num_frames,
            num_latent=latent_frame_count(num_frames),
            height=self.height,
            width=self.width,
            latent_dtype=model_dtype if policy.latents_in_model_dtype else torch.float32,
            model_dtype=model_dtype,
            device=self.device,
        )
        inputs = {"observation": observation, "goal": goal, "video": video, **(signals or {})}
        if context_frames > 1:
            inputs["context"] = context
        missing = [k for k in task_obj.required_inputs if inputs.get(k) is None]
        if missing:
            raise ValueError(f"{task}: expected inputs {list(task_obj.required_inputs)}, missing {missing}")
        color = self.encode_conditions(inputs, plan, policy, generator)
        condition, unconditional = self.prepare_conditions(task_obj, color, raymap, plan, signals)
        condition = condition.expand(num_samples, *condition.shape[1:])
        if unconditional is not None:
            unconditional = unconditional.expand(num_samples, *unconditional.shape[1:])
        timesteps, steps, latents = self.prepare_latents(task_obj, plan, num_samples, generator)
        weights = self.guidance_weights(task_obj, steps)
        if hook is not None:
            hook("condition", condition)
            if unconditional is not None:
                hook("unconditional", unconditional)
            hook("initial_latents", latents)
        latents = self.denoise(
            latents, condition, unconditional, timesteps, weights, plan, fps, generator, desc=task
        )
        if hook is not None:
            hook("final_latents", latents)
        if num_samples > 1:
            latents = latents.float().mean(0, keepdim=True).to(plan.latent_dtype)
        return self.decode(latents, plan, policy, decode_color)
