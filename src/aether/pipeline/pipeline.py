"""``AetherPipeline``: 4D reconstruction, video prediction and visual planning with an Aether model.

Components follow diffusers: a transformer (:class:`aether.models.AetherTransformer`), a latent
backend (the CogVideoX VAE), a ``CogVideoXDPMScheduler`` and the cached empty-prompt embedding
(the tokenizer and text encoder are only loaded once, to fill the cache).

Two modes
---------
``mode="upstream"`` reproduces the reference AetherV1 implementation output for output given
the same weights, inputs and seed; ``mode="default"`` keeps its science and improves the rest.

====================  ==========================================  ===========================================
aspect                upstream                                    default
====================  ==========================================  ===========================================
dtype                 VAE, transformer, latents, conditions in    latents and scheduler in float32; the
                      the model dtype (bf16); latents cast back   transformer runs in its own dtype (float32
                      to it after every scheduler step            on CPU; ``.to(dtype=bfloat16)`` on GPU)
condition latents     one VAE posterior *sample* per encode       the posterior mode (deterministic)
                      (image, then goal, or the whole video)
random draws          one generator: encode samples, initial      the same generator: initial latents, then
                      latents, then the scheduler's noise         the scheduler's noise
CFG batch / guidance  [uncond, cond] in one forward; u + w(c-u)   same
                      in float32
dynamic CFG weight    float64 schedule; always on for             float64 schedule; per-task default, can be
                      prediction/planning                         switched off (``dynamic_cfg=False``)
``guidance_scale=0``  silently replaced by the task default       honoured (<= 1: conditional branch only)
timesteps             DPM scheduler, trailing (4: 999..249)       same
rgb decode            clamp(x/2 + 0.5, 0, 1) in the VAE dtype     same formula in float32; reconstruction
                                                                  keeps the input frames (no color decode)
disparity decode      (mean_c(x)·0.5 + 0.5)², not clamped, in     the disparity codec in float32 (invalid
                      the VAE dtype                               below 1e-3, like the depth clip upstream)
raymap                raw unfolded latent                         same, plus cameras by exact least squares
other aspect ratios   silent centre crop                          spatial windows (reconstruction); a logged
                                                                  crop for images
long videos           (demo script) windows, fixed stride          windows 41 / stride 24 (configurable),
                                                                  Sim(3)-aligned and blended
====================  ==========================================  ===========================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aether.geometry.framing import cover_size, crop_origin
from aether.models.spec import AETHERV1_FPS, AetherModelSpec
from aether.pipeline.sampler import POLICIES, AetherSampler, SampleOutput, SamplingPolicy, resolve_policy
from aether.pipeline.trajectory import Trajectory
from aether.pipeline.windows import (
    WindowResult,
    merge_spatial,
    merge_temporal,
    plan_windows,
)
from aether.pipeline.world import World4D

logger = logging.getLogger(__name__)

MODES = tuple(POLICIES)
__all__ = ["AETHERV1_FPS", "AetherPipeline", "cover_size", "load_trajectory", "to_frames", "to_image"]


def _as_generator(
    generator: torch.Generator | None, seed: int | None, device: torch.device
) -> torch.Generator | None:
    if generator is not None:
        return generator
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


def to_frames(video: Any) -> Tensor:
    """A video as float32 (T, 3, H, W) in [-1, 1].

    Accepts a path (video file or image folder), numpy or torch (T, H, W, 3) uint8 or float in [0, 1],
    a torch (T, 3, H, W) float tensor in [-1, 1], or a list of PIL images.
    """
    if isinstance(video, (str, os.PathLike)):
        from aether.pipeline.io import read_video

        video = read_video(video)[0]
    if isinstance(video, (list, tuple)):
        video = np.stack([np.asarray(v.convert("RGB") if hasattr(v, "convert") else v) for v in video])
    if isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[1] == 3 and video.shape[-1] != 3:
        video = torch.from_numpy(np.array(video))  # channel-first: the same contract as a tensor
    if isinstance(video, Tensor) and video.ndim == 4 and video.shape[1] == 3 and video.shape[-1] != 3:
        if video.dtype == torch.uint8:
            raise ValueError("channel-first tensors must be float in [-1, 1]; give uint8 as (T, H, W, 3)")
        _check_range(video, (-1.0, 1.0), "video (T, 3, H, W)")
        return video.float()
    array = video.cpu().numpy() if isinstance(video, Tensor) else np.asarray(video)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(
            f"video: expected (T, H, W, 3) (uint8, or float in [0, 1]) or (T, 3, H, W) (float in [-1, 1]), "
            f"got {array.shape}"
        )
    if array.dtype != np.uint8:
        _check_range(torch.from_numpy(np.asarray(array, dtype=np.float64)), (0.0, 1.0), "video (T, H, W, 3)")
    frames = torch.from_numpy(np.array(array)).permute(0, 3, 1, 2)
    frames = frames.float() / 255.0 if array.dtype == np.uint8 else frames.float()
    return frames * 2 - 1


def _check_range(values: Tensor, bounds: tuple[float, float], what: str) -> None:
    """ValueError with the input's own range and shape unless its values are finite and in ``bounds``
    (a small overshoot tolerated, as the modalities do)."""
    if not values.is_floating_point():
        values = values.double()
    lo_ok, hi_ok = bounds[0] - 1e-3, bounds[1] + 1e-3
    finite = bool(torch.isfinite(values).all())
    lo, hi = (values.min().item(), values.max().item()) if values.numel() else (0.0, 0.0)
    if not finite or lo < lo_ok or hi > hi_ok:
        got = "NaN or inf values" if not finite else f"range [{lo:.3g}, {hi:.3g}]"
        raise ValueError(
            f"{what}: expected float values in [{bounds[0]:g}, {bounds[1]:g}], got {got} "
            f"(shape {tuple(values.shape)}, dtype {values.dtype})"
        )


def to_image(image: Any) -> Tensor:
    """An image (path, PIL, (H, W, 3) uint8/float [0, 1] array, (3, H, W) tensor in [-1, 1]) as (3, H, W)."""
    if isinstance(image, (str, os.PathLike)):
        from aether.pipeline.io import read_image

        image = read_image(image)
    if hasattr(image, "convert"):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, Tensor) and image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        return to_frames(image[None])[0]
    array = image.cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"image: expected (H, W, 3), got {array.shape}")
    return to_frames(array[None])[0]


def _resize(frames: Tensor, height: int, width: int) -> Tensor:
    if tuple(frames.shape[-2:]) == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


class AetherPipeline:
    """Reconstruction, prediction and planning with an Aether model: loading, windows and the three
    task front-ends around an :class:`~aether.pipeline.sampler.AetherSampler`.

    Args:
        transformer: the Aether transformer (in 96 / out 56 for AetherV1).
        backend: latent backend (``aether.modalities.CogVideoXBackend`` for AetherV1).
        scheduler: ``CogVideoXDPMScheduler`` (the base model's config).
        prompt_embeds: (1, L, D) empty-prompt embedding.
        spec: the model definition (default: AetherV1's); it decides the target and condition stacks.
        mode: "default" or "upstream" (see the module docstring), or a ``SamplingPolicy``.
        window: frames per temporal sliding window, for long videos.
        stride: frames between the starts of consecutive windows.
    """

    def __init__(
        self,
        transformer: Any,
        backend: Any,
        scheduler: Any,
        prompt_embeds: Tensor,
        *,
        spec: AetherModelSpec | None = None,
        mode: str | SamplingPolicy = "default",
        window: int = 41,
        stride: int = 24,
    ) -> None:
        self.policy = resolve_policy(mode)
        self.sampler = AetherSampler(
            transformer.eval().requires_grad_(False),
            backend.eval().requires_grad_(False),
            scheduler,
            prompt_embeds,
            spec=spec,
        )
        self.window, self.stride = window, stride
        self._hooks: list[Any] = []
        self.random_weights = False  # set for models with untrained weights; their results say so

    # ------------------------------------------------------------------ components
    @property
    def mode(self) -> str:
        return self.policy.name

    @property
    def spec(self) -> AetherModelSpec:
        return self.sampler.spec

    @property
    def transformer(self) -> Any:
        return self.sampler.transformer

    @property
    def backend(self) -> Any:
        return self.sampler.backend

    @property
    def scheduler(self) -> Any:
        return self.sampler.scheduler

    @property
    def prompt_embeds(self) -> Tensor:
        return self.sampler.prompt_embeds

    @property
    def targets(self) -> Any:
        """The target ``ModalityStack`` (what the model decodes)."""
        return self.sampler.targets

    @property
    def progress(self) -> bool:
        return self.sampler.progress

    @progress.setter
    def progress(self, value: bool) -> None:
        self.sampler.progress = bool(value)

    # ------------------------------------------------------------------ loading and placement
    @classmethod
    def from_pretrained(
        cls,
        aether: str | os.PathLike,
        base: str | os.PathLike | None = None,
        *,
        torch_dtype: torch.dtype | None = None,
        mode: str = "default",
        embedding_cache: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> AetherPipeline:
        """Load a model folder or hub id as its spec (``aether_config.json``) says.

        The folder's ``transformer/`` is always loaded; the latent backend, target and condition stacks
        and scheduler follow the spec (a folder without one is the released AetherV1: the CogVideoX
        VAE, scheduler and text encoder of ``base``). See :func:`aether.pipeline.loading.load_components`
        for the checks made before any weight is read.

        Args:
            aether: model folder (written by ``aether export``, or AetherV1's layout) or hub id.
            base: CogVideoX-5b-I2V-layout folder or hub id for models on the CogVideoX backend
                (default: ``aether`` when it has ``vae/``, else the spec's base); refused for models
                whose spec uses no base model.
            torch_dtype: dtype of the transformer and backend (default float32; bfloat16 in upstream mode).
            mode: "default" or "upstream"; upstream computes a missing empty-prompt embedding the
                reference's way (see :func:`aether.models.empty_prompt_embedding`).
            embedding_cache: where the empty-prompt embedding is cached (default: next to the model
                when it is a local folder, else ``~/.cache/aether/<id>``).
        """
        from aether.pipeline.loading import load_components

        policy = resolve_policy(mode)
        if torch_dtype is None:
            torch_dtype = torch.bfloat16 if policy.latents_in_model_dtype else torch.float32
        parts = load_components(
            aether,
            base,
            torch_dtype=torch_dtype,
            embedding_method="reference" if policy.reference_embedding else "float32",
            embedding_cache=embedding_cache,
        )
        pipe = cls(
            parts.transformer,
            parts.backend,
            parts.scheduler,
            parts.prompt_embeds,
            spec=parts.spec,
            mode=policy,
            **kwargs,
        )
        pipe.random_weights = parts.random_weights
        return pipe

    @property
    def device(self) -> torch.device:
        """Where the denoising runs (the offload device when offloading)."""
        return self.sampler.device

    @property
    def dtype(self) -> torch.dtype:
        return self.sampler.dtype

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> AetherPipeline:
        """Move the transformer and the VAE to ``device`` and/or cast them to ``dtype``."""
        kwargs = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        for module in (self.transformer, self.backend):
            module.to(**kwargs)
        return self

    # ------------------------------------------------------------------ speed and memory options
    # (what each does to the results: aether.pipeline.acceleration)
    def enable_model_cpu_offload(self, device: torch.device | str = "cuda") -> None:
        """Keep the models on the CPU and move each to ``device`` only while it runs (bit-identical)."""
        from accelerate import cpu_offload_with_hook

        device = self._offload_to(device)
        hook = None
        # the diffusers VAE triggers offload hooks from encode/decode, not only forward
        for module in (self._vae_module(), self.transformer):
            module.to("cpu")
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
            self._hooks.append(hook)

    def enable_sequential_cpu_offload(self, device: torch.device | str = "cuda") -> None:
        """Keep the weights on the CPU and move each layer's to ``device`` only while that layer runs
        (accelerate hooks; least memory, slowest; bit-identical)."""
        from accelerate import cpu_offload

        device = self._offload_to(device)
        for module in (self._vae_module(), self.transformer):
            cpu_offload(module.to("cpu"), device)

    def _offload_to(self, device: torch.device | str) -> torch.device:
        if self._hooks or self.sampler.execution_device is not None:
            raise ValueError("offloading is already enabled on this pipeline")
        device = torch.device(device)
        self.sampler.execution_device = device
        self.backend.execution_device = device
        return device

    def _vae_module(self) -> torch.nn.Module:
        return getattr(self.backend, "vae", self.backend)

    def enable_vae_slicing(self) -> None:
        """Decode/encode one batch element at a time."""
        self.backend.enable_slicing()

    def enable_vae_tiling(self) -> None:
        """Decode/encode in overlapping spatial tiles (much less memory at 480×720)."""
        self.backend.enable_tiling()

    def enable_compile(self, **options: Any) -> None:
        """``torch.compile`` the transformer (static shapes; ``options`` go to ``torch.compile``, e.g.
        ``mode="max-autotune"``, ``backend=...``). The windows of a video share one compiled graph."""
        from aether.pipeline.acceleration import compile_transformer

        compile_transformer(self.transformer, **options)

    def enable_cache(self, method: str = "fastercache", **options: Any) -> None:
        """Feature caching across denoising steps with diffusers' hooks: ``"fastercache"`` or ``"pab"``
        (``options`` override their config fields). An approximation: results change."""
        from aether.pipeline.acceleration import FeatureCache

        self.disable_cache()
        self.sampler.feature_cache = FeatureCache(method, dict(options))

    def disable_cache(self) -> None:
        """Remove the feature cache (results are again those of the plain transformer)."""
        if self.sampler.feature_cache is not None:
            self.sampler.feature_cache.remove(self.transformer)
            self.sampler.feature_cache = None

    def enable_quantization(self, kind: str = "int8wo") -> None:
        """Quantize the transformer's weights with torchao (``"int8wo"``, ``"int8dq"``, ``"float8wo"``,
        ``"float8dq"``); ImportError naming the package when torchao is not installed."""
        from aether.pipeline.acceleration import quantize_weights

        quantize_weights(self.transformer, kind)

    # ------------------------------------------------------------------ sizes
    @property
    def height(self) -> int:
        """Model resolution (pixels)."""
        return self.sampler.height

    @property
    def width(self) -> int:
        return self.sampler.width

    # ------------------------------------------------------------------ core sampler
    def generate(self, task: str, *, mode: str | SamplingPolicy | None = None, **kwargs: Any) -> SampleOutput:
        """Denoise one clip at the model's resolution and decode it with the pipeline's policy (or
        ``mode``); the keyword arguments are :class:`~aether.pipeline.sampler.AetherSampler`'s."""
        return self.sampler(task, policy=self.policy if mode is None else resolve_policy(mode), **kwargs)

    # ------------------------------------------------------------------ tasks
    def reconstruct(
        self,
        video: Any,
        *,
        fps: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
        window: int | None = None,
        stride: int | None = None,
        mode: str | None = None,
        ensemble_size: int = 1,
        output_size: str | tuple[int, int] = "model",
    ) -> World4D:
        """4D reconstruction of a video (path, array or tensor; see :func:`to_frames`).

        Videos longer than the window run in temporal windows (default 41 frames, stride 24); videos
        whose aspect differs from the model's run in spatial windows along the long side. Each window
        draws from a generator reseeded with ``seed`` unless ``generator`` is given. The colors are the
        input frames (resized); upstream mode returns the decoded color latents as the reference does.
        ``ensemble_size`` > 1 averages that many samples per window (see :meth:`generate`'s
        ``num_samples``). Needs a model with disparity and raymap targets. ``output_size``: "model"
        (the model's resolution, the long side windowed), "input" (the video's), or (height, width);
        see :meth:`World4D.resized`.
        """
        policy = self.policy if mode is None else resolve_policy(mode)
        self._check_outputs("reconstruction")
        frames = to_frames(video)
        fps = self.sampler.check_fps(fps, policy)
        num_frames = frames.shape[0]
        input_size = (int(frames.shape[2]), int(frames.shape[3]))
        H, W = self.height, self.width
        window, stride = self.window if window is None else window, self.stride if stride is None else stride
        plan = plan_windows(num_frames, frames.shape[2], frames.shape[3], H, W, window=window, stride=stride)
        size, starts, offsets, axis = plan.size, plan.starts, plan.offsets, plan.axis
        canvas_h, canvas_w = plan.canvas
        frames = _resize(frames, canvas_h, canvas_w)
        if len(offsets) > 1:
            logger.info(
                "aspect differs from the model's %dx%d: %d spatial windows along the %s",
                W,
                H,
                len(offsets),
                axis,
            )
        kwargs = {
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "num_samples": ensemble_size,
        }
        spatial = []
        for offset in offsets:
            crop = (
                frames[..., offset : offset + H, :] if axis == "height" else frames[..., offset : offset + W]
            )
            results = []
            for start in starts:
                gen = _as_generator(generator, seed, self.device)
                clip = crop[start : start + size]
                out = self.sampler(
                    "reconstruction", policy=policy, video=clip, num_frames=size, fps=fps, generator=gen,
                    decode_color=not policy.keep_input_colors, **kwargs,
                )  # fmt: skip
                rgb = out.rgb if out.rgb is not None else ((clip + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
                results.append(WindowResult(rgb, out.disparity, out.c2w, out.K))
            spatial.append(merge_temporal(results, starts) if len(results) > 1 else results[0])
        merged = merge_spatial(spatial, offsets, axis, canvas_w if axis == "width" else canvas_h)
        meta = {
            "task": "reconstruction",
            "mode": policy.name,
            "windows": starts,
            "window": size,
            "spatial_windows": offsets,
        }
        return _at_size(self._world(merged, fps, meta), output_size, input_size)

    def predict(
        self,
        image: Any,
        trajectory: Trajectory | None = None,
        **kwargs: Any,
    ) -> World4D:
        """Predict a video from one observation image, following ``trajectory`` when given.

        Keyword arguments: preset (instead of ``trajectory``: a camera motion of
        :data:`aether.pipeline.trajectory.PRESETS`, e.g. "orbit left", as in the app), num_frames (default:
        the trajectory's length, else 41), fps, num_inference_steps,
        guidance_scale, dynamic_cfg, generator, seed, mode, post_reconstruct (re-run reconstruction on
        the predicted video for its depth and cameras), output_size ("model", "input": the model's
        centre crop of the image at the image's scale, or (height, width); see :meth:`World4D.resized`),
        image_memory (a model with a memory condition is given the image lifted with its own depth of
        it, rendered along the trajectory: :func:`~aether.pipeline.memory.sample_with_image_memory`;
        default: whenever it can be; False: none).
        """
        return self.run("prediction", {"observation": image}, trajectory, **kwargs)

    def plan(
        self, observation: Any, goal: Any, trajectory: Trajectory | None = None, **kwargs: Any
    ) -> World4D:
        """Plan the video from ``observation`` to ``goal`` (images), following ``trajectory`` when given.

        Keyword arguments as :meth:`predict`.
        """
        return self.run("planning", {"observation": observation, "goal": goal}, trajectory, **kwargs)

    def run(
        self, task: str, inputs: dict[str, Any], trajectory: Trajectory | None = None, **kwargs: Any
    ) -> World4D:
        """Run any registered generating task (given images, not a video to window) on ``inputs``.

        Args:
            task: a ``TASKS`` name ("prediction", "planning" or a plug-in's).
            inputs: the task's ``required_inputs``: images ("observation", "goal"; see
                :func:`to_image`), cropped as :meth:`predict` crops them, and the per-frame clip entries
                the model's signal condition modalities read (e.g. "depth" (T, H, W) at the model's
                size).
            trajectory: the action, or None.
            kwargs: as :meth:`predict`.
        """
        from aether.tasks import COLOR_INPUTS, TASKS

        TASKS.build(task).check_inputs(inputs)
        self._check_outputs(task)
        images = {k: v for k, v in inputs.items() if k in COLOR_INPUTS}
        signals = {k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items() if k not in COLOR_INPUTS}
        for name, value in signals.items():
            if tuple(value.shape[-2:]) != (self.height, self.width):
                raise ValueError(
                    f"{name}: expected frames at the model's size {self.height}x{self.width}, "
                    f"got {tuple(value.shape)}"
                )
        return self._generate_task(task, images, trajectory, signals=signals, **kwargs)

    def _check_outputs(self, task: str) -> None:
        """ValueError unless the model's targets decode every output ``task`` requires."""
        from aether.pipeline.rollout import decoded_outputs
        from aether.tasks import TASKS

        needed = TASKS.get(task).required_outputs
        decoded = decoded_outputs(self)
        missing = [k for k in needed if k not in decoded]
        if missing:
            raise ValueError(
                f"{task} needs a model that decodes {list(needed)}; this model's targets "
                f"{self.targets.names} decode {sorted(decoded)} (no {', '.join(missing)})"
            )

    def rollout(self, image: Any, trajectory: Trajectory, **kwargs: Any) -> World4D:
        """A world of any length along ``trajectory`` from ``image``: chained windows, each continuing
        from the last generated frames, with a geometric memory, stitched into one World4D in one global
        frame and scale. ``goal=`` plans toward a distant goal image. Keyword arguments: see
        :func:`aether.pipeline.rollout.rollout` (window, context_frames, memory, fps, seed, ...)."""
        from aether.pipeline.rollout import rollout

        return rollout(self, image, trajectory, **kwargs)

    def _crop_images(self, images: dict[str, Any]) -> tuple[dict[str, Tensor], tuple[Any, ...]]:
        """The images resized to cover the model's size and centre-cropped to it (a logged crop)."""
        H, W = self.height, self.width
        tensors, crop = {}, None
        for name, image in images.items():
            x = to_image(image)
            ch, cw = cover_size(x.shape[1], x.shape[2], H, W)
            top, left = crop_origin(ch, H), crop_origin(cw, W)
            if (ch, cw) != (H, W):
                logger.info(
                    "%s: %dx%d resized to %dx%d and cropped to the model's %dx%d at (top %d, left %d)",
                    name, x.shape[2], x.shape[1], cw, ch, W, H, top, left,
                )  # fmt: skip
            if crop is None:
                crop = (ch, cw, (top, left, H, W), x.shape[1:])
            tensors[name] = _resize(x[None], ch, cw)[0, :, top : top + H, left : left + W]
        return tensors, crop

    def _model_trajectory(self, trajectory: Trajectory, crop: tuple[Any, ...]) -> Trajectory:
        """The trajectory with intrinsics at the model's size (they follow the images' crop)."""
        H, W = self.height, self.width
        size = (trajectory.height, trajectory.width)
        if size == (None, None) or size == (H, W):
            return trajectory
        if size == tuple(crop[3]):
            return trajectory.resized(crop[0], crop[1], crop[2])
        raise ValueError(
            f"trajectory intrinsics are for {trajectory.width}x{trajectory.height}; expected "
            f"the image's {crop[3][1]}x{crop[3][0]} or the model's {W}x{H}"
        )

    def _uses_image_memory(
        self, image_memory: bool | None, traj: Trajectory | None, tensors: dict[str, Any], signals: Any
    ) -> bool:
        """Whether a generation is given its observation lifted with the model's own depth as its
        memory: by default when the model has a memory condition and decodes disparity, a trajectory
        is given and the caller gave no memory of its own."""
        from aether.modalities.base import MEMORY_INPUTS
        from aether.pipeline.rollout import decoded_outputs

        possible = (
            self.sampler.has_memory
            and "disparity" in decoded_outputs(self)
            and traj is not None
            and "observation" in tensors
            and not any(k in (signals or {}) for k in MEMORY_INPUTS)
        )
        if image_memory and not possible:
            raise ValueError(
                "image_memory: expected a model with a memory condition and a disparity target, a "
                "trajectory and an observation, and no memory given in the inputs"
            )
        return possible if image_memory is None else bool(image_memory)

    def _generate_task(
        self,
        task: str,
        images: dict[str, Any],
        trajectory: Trajectory | None,
        *,
        preset: str | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        dynamic_cfg: bool | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
        mode: str | None = None,
        post_reconstruct: bool = False,
        output_size: str | tuple[int, int] = "model",
        signals: dict[str, Tensor] | None = None,
        image_memory: bool | None = None,
    ) -> World4D:
        policy = self.policy if mode is None else resolve_policy(mode)
        fps = self.sampler.check_fps(fps, policy)
        if num_frames is None:
            num_frames = len(trajectory) if trajectory is not None else 41
        if preset is not None:
            if trajectory is not None:
                raise ValueError(f"give a trajectory or a preset, not both (preset={preset!r})")
            trajectory = Trajectory.preset(preset, num_frames, self.height, self.width)
        self.sampler.check_frames(num_frames, policy, strict=True)
        if trajectory is not None and len(trajectory) != num_frames:
            raise ValueError(
                f"the trajectory has {len(trajectory)} poses, expected {num_frames} (one per frame)"
            )
        tensors, crop = self._crop_images(images)
        traj = None if trajectory is None else self._model_trajectory(trajectory, crop)
        raymap = None
        if traj is not None:
            raymap = traj.raymap(
                num_frames, self.height, self.width, downsample=int(self.backend.spatial_factor)
            )
        sampling = {
            "policy": policy, "num_frames": num_frames, "fps": fps, "raymap": raymap,
            "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale,
            "dynamic_cfg": dynamic_cfg, "generator": _as_generator(generator, seed, self.device),
            "signals": signals,
        }  # fmt: skip
        lifted = self._uses_image_memory(image_memory, traj, tensors, signals)
        if lifted and traj is not None:  # the observation lifted with the model's own depth of it
            from aether.pipeline.memory import sample_with_image_memory

            cameras, K = traj.model_cameras()
            rest = {k: v for k, v in tensors.items() if k != "observation"}
            out, _, _ = sample_with_image_memory(
                self.sampler, task, observation=tensors["observation"], c2w=cameras, K=K,
                **sampling, **rest,
            )  # fmt: skip
        else:
            out = self.sampler(task, **sampling, **tensors)
        result = WindowResult(out.rgb, out.disparity, out.c2w, out.K)
        meta = {"task": task, "mode": policy.name, "num_frames": num_frames, "action": trajectory is not None}
        if lifted:
            meta["image_memory"] = True
        if post_reconstruct:
            recon = self.reconstruct(
                out.rgb.permute(0, 3, 1, 2) * 2 - 1, fps=fps, generator=None, seed=seed, mode=policy.name
            )
            result = WindowResult(
                out.rgb,
                torch.from_numpy(recon.disparity),
                torch.from_numpy(recon.c2w),
                torch.from_numpy(recon.K),
            )
            meta["post_reconstruct"] = True
        world = self._world(result, fps, meta, raymap=out.raymap, extras=out.extras)
        if trajectory is not None:
            world = replace(world, requested_c2w=trajectory.relative().c2w.float().numpy())
        (ch, cw, _, (in_h, in_w)) = crop
        return _at_size(world, output_size, (round(self.height * in_h / ch), round(self.width * in_w / cw)))

    def _world(
        self,
        result: WindowResult,
        fps: float,
        meta: dict[str, Any],
        raymap: Tensor | None = None,
        extras: dict[str, Tensor] | None = None,
    ) -> World4D:
        """The World4D of a result (what the model decodes), cameras made relative to the first frame."""
        from aether.geometry import disparity_to_depth, relative_poses

        depth = disparity = valid = c2w = K = None
        if result.disparity is not None:
            depth, valid = disparity_to_depth(result.disparity.float(), self.sampler.min_disparity)
            disparity = torch.where(valid, result.disparity.float(), 0.0).numpy()
            depth, valid = depth.numpy(), valid.numpy()
        if result.c2w is not None:
            c2w = relative_poses(result.c2w.double()).float().numpy()
            K = result.K.float().numpy()
        return World4D(
            rgb=result.rgb.float().numpy(),
            depth=depth,
            disparity=disparity,
            c2w=c2w,
            K=K,
            valid=valid,
            fps=fps,
            raymap=None if raymap is None else raymap.numpy(),
            modalities={k: v.float().numpy() for k, v in (extras or {}).items()},
            meta={**meta, "random_weights": True} if self.random_weights else meta,
        )


def _at_size(world: World4D, output_size: str | tuple[int, int], input_size: tuple[int, int]) -> World4D:
    """``world`` at ``output_size``: "model" (as it is), "input" (``input_size``) or (height, width)."""
    if output_size == "model":
        return world
    if output_size == "input":
        return world.resized(*input_size)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        return world.resized(int(output_size[0]), int(output_size[1]))
    raise ValueError(f"output_size: expected 'model', 'input' or (height, width), got {output_size!r}")


def load_trajectory(
    path: str | os.PathLike, *, height: int, width: int, K: Sequence[float] | None = None
) -> Trajectory:
    """A trajectory file for a ``height × width`` image: JSON, raymap ``.npy`` (at its own resolution) or
    TUM text (needs ``K`` as fx, fy, cx, cy, for the image)."""
    from aether.pipeline.trajectory import TRAJECTORY_SUFFIXES, intrinsics_from_values

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such trajectory file: {path}")
    if path.suffix.lower() not in TRAJECTORY_SUFFIXES:
        return Trajectory.load(path)  # refused naming the file and the suffixes it reads
    if path.suffix.lower() == ".npy":  # a raymap holds its own resolution (h, w) = (H/8, W/8)
        try:
            raymap = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path}: not a readable .npy array of numbers ({err})") from None
        if raymap.ndim != 4 or raymap.shape[1] != 6:
            raise ValueError(f"{path}: expected a raymap (T, 6, h, w), got shape {raymap.shape}")
        try:
            return Trajectory.from_raymap(raymap, 8 * raymap.shape[-2], 8 * raymap.shape[-1])
        except (ValueError, TypeError, np.linalg.LinAlgError, RuntimeError) as err:
            raise ValueError(f"{path}: not a usable raymap ({err})") from None
    if path.suffix.lower() == ".json":
        return Trajectory.load(path)
    if K is None:
        raise ValueError(f"{path}: a text trajectory (TUM or 4x4 matrices) needs intrinsics (fx fy cx cy)")
    return Trajectory.load(path, K=intrinsics_from_values(*K), width=width, height=height)
