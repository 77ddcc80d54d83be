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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aether.geometry import fold_raymap, latent_frame_count
from aether.models import AetherTransformer, empty_prompt_embedding
from aether.models.text import EMPTY_PROMPT_FILE
from aether.pipeline.trajectory import Trajectory
from aether.pipeline.windows import (
    AETHERV1_FRAMES,
    WindowResult,
    cover_size,
    merge_spatial,
    merge_temporal,
    plan_windows,
)
from aether.pipeline.world import World4D

logger = logging.getLogger(__name__)

MODES = ("default", "upstream")
AETHERV1_FPS = (8, 10, 12, 15, 24)
DEFAULT_BASE = "THUDM/CogVideoX-5b-I2V"
MIN_DISPARITY = 1e-3


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
    if isinstance(video, Tensor) and video.ndim == 4 and video.shape[1] == 3 and video.shape[-1] != 3:
        if video.dtype == torch.uint8:
            raise ValueError("channel-first tensors must be float in [-1, 1]; give uint8 as (T, H, W, 3)")
        return video.float()
    array = video.cpu().numpy() if isinstance(video, Tensor) else np.asarray(video)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"video: expected (T, H, W, 3) or (T, 3, H, W), got {array.shape}")
    frames = torch.from_numpy(np.array(array)).permute(0, 3, 1, 2)
    frames = frames.float() / 255.0 if array.dtype == np.uint8 else frames.float()
    return frames * 2 - 1


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
    """Reconstruction, prediction and planning with an Aether transformer.

    Args:
        transformer: the Aether transformer (in 96 / out 56 for AetherV1).
        backend: latent backend (``aether.modalities.CogVideoXBackend`` for AetherV1).
        scheduler: ``CogVideoXDPMScheduler`` (the base model's config).
        prompt_embeds: (1, L, D) empty-prompt embedding.
        mode: "default" or "upstream" (see the module docstring).
        window, stride: temporal sliding windows for long videos.
    """

    def __init__(
        self,
        transformer: AetherTransformer,
        backend: Any,
        scheduler: Any,
        prompt_embeds: Tensor,
        *,
        mode: str = "default",
        window: int = 41,
        stride: int = 24,
    ) -> None:
        from aether.modalities import ModalityStack

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.transformer = transformer.eval().requires_grad_(False)
        self.backend = backend.eval().requires_grad_(False)
        self.scheduler = scheduler
        self.prompt_embeds = prompt_embeds
        self.mode = mode
        self.window, self.stride = window, stride
        self.targets = ModalityStack(
            ["color", "disparity", "raymap"], backend, options={"disparity": {"min_disparity": MIN_DISPARITY}}
        )
        self.progress = True
        self._execution_device: torch.device | None = None
        self._hooks: list[Any] = []

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
        """Load an Aether model (``transformer/``) and the base model's VAE, scheduler and empty-prompt
        embedding (``vae/``, ``scheduler/``, and ``tokenizer/`` + ``text_encoder/`` only to fill the cache).

        Args:
            aether: AetherV1-layout folder or hub id.
            base: CogVideoX-5b-I2V-layout folder or hub id (default: ``aether`` when it has ``vae/``,
                else THUDM/CogVideoX-5b-I2V).
            torch_dtype: dtype of the transformer and VAE (default float32; bfloat16 in upstream mode).
            embedding_cache: where the empty-prompt embedding is cached (default: next to the model
                when it is a local folder, else ``~/.cache/aether/<id>``).
        """
        from diffusers import CogVideoXDPMScheduler

        from aether.modalities import CogVideoXBackend

        if base is None:
            base = aether if Path(aether, "vae").is_dir() else DEFAULT_BASE
        if torch_dtype is None:
            torch_dtype = torch.bfloat16 if mode == "upstream" else torch.float32
        transformer = AetherTransformer.from_pretrained(
            aether, subfolder="transformer", torch_dtype=torch_dtype
        )
        backend = CogVideoXBackend.from_pretrained(base, subfolder="vae", torch_dtype=torch_dtype)
        scheduler = CogVideoXDPMScheduler.from_pretrained(base, subfolder="scheduler")
        if embedding_cache is None:
            if Path(aether).is_dir():
                embedding_cache = Path(aether) / EMPTY_PROMPT_FILE
            else:
                safe = str(aether).replace("/", "--")
                embedding_cache = Path.home() / ".cache" / "aether" / safe / EMPTY_PROMPT_FILE
        prompt = empty_prompt_embedding(
            base, cache=embedding_cache, max_length=int(transformer.config.max_text_seq_length)
        )
        return cls(transformer, backend, scheduler, prompt, mode=mode, **kwargs)

    @property
    def device(self) -> torch.device:
        """Where the denoising runs (the offload device when offloading)."""
        if self._execution_device is not None:
            return self._execution_device
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> AetherPipeline:
        """Move the transformer and the VAE to ``device`` and/or cast them to ``dtype``."""
        kwargs = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        for module in (self.transformer, self.backend):
            module.to(**kwargs)
        return self

    def enable_model_cpu_offload(self, device: torch.device | str = "cuda") -> None:
        """Keep the models on the CPU and move each to ``device`` only while it runs."""
        from accelerate import cpu_offload_with_hook

        self._execution_device = torch.device(device)
        hook = None
        # the diffusers VAE triggers offload hooks from encode/decode, not only forward
        for module in (getattr(self.backend, "vae", self.backend), self.transformer):
            module.to("cpu")
            _, hook = cpu_offload_with_hook(module, self._execution_device, prev_module_hook=hook)
            self._hooks.append(hook)

    def enable_vae_slicing(self) -> None:
        """Decode/encode one batch element at a time."""
        self.backend.enable_slicing()

    def enable_vae_tiling(self) -> None:
        """Decode/encode in overlapping spatial tiles (much less memory at 480×720)."""
        self.backend.enable_tiling()

    # ------------------------------------------------------------------ sizes
    @property
    def height(self) -> int:
        """Model resolution (pixels)."""
        return int(self.transformer.config.sample_height) * int(self.backend.spatial_factor)

    @property
    def width(self) -> int:
        return int(self.transformer.config.sample_width) * int(self.backend.spatial_factor)

    def _check_fps(self, fps: float | None, mode: str) -> float:
        fps = 12.0 if fps is None else float(fps)
        if fps not in AETHERV1_FPS:
            if mode == "upstream":
                raise ValueError(f"fps must be one of {AETHERV1_FPS}, got {fps}")
            logger.warning("fps %s is outside the trained set %s; RoPE is interpolated", fps, AETHERV1_FPS)
        return fps

    # ------------------------------------------------------------------ core sampler
    @torch.no_grad()
    def generate(
        self,
        task: str,
        *,
        video: Tensor | None = None,
        observation: Tensor | None = None,
        goal: Tensor | None = None,
        raymap: Tensor | None = None,
        num_frames: int = 41,
        fps: float = 12.0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        dynamic_cfg: bool | None = None,
        generator: torch.Generator | None = None,
        mode: str | None = None,
        hook: Any = None,
        decode_color: bool = True,
        num_samples: int = 1,
    ) -> dict[str, Tensor]:
        """Denoise one clip at the model's resolution and decode it.

        Args:
            task: "reconstruction", "prediction" or "planning" (any registered task).
            video: (T, 3, H, W) in [-1, 1] for reconstruction.
            observation, goal: (3, H, W) in [-1, 1].
            raymap: (T, 6, H/8, W/8) action raymap, or None.
            decode_color: decode the color latents (rgb is None otherwise).
            num_samples: test-time ensemble size: this many samples are denoised in one batch
                from independent initial noise and their clean latents averaged before decoding
                (a Monte-Carlo estimate of the posterior mean E[z₀ | conditions], which lowers
                the error of depth and cameras; it blurs generated video).
            hook: optional callable ``hook(name, tensor)`` called with the "condition" and
                "unconditional" latents fed to the transformer, the "initial_latents" and the
                "final_latents" (num_samples, F, 56, h, w) before averaging (for inspection).

        Returns:
            rgb (T, H, W, 3) float32 in [0, 1] (None without ``decode_color``); disparity (T, H, W)
            float32; valid (T, H, W) bool; raymap (T, 6, h, w) float32; c2w (T, 4, 4); K (T, 3, 3);
            latents (1, F, 56, h, w).
        """
        from diffusers.utils.torch_utils import randn_tensor

        from aether.tasks import TASKS

        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
        if mode == "upstream":  # upstream: `guidance_scale or default`, `use_dynamic_cfg or default`
            guidance_scale = guidance_scale or None
            dynamic_cfg = dynamic_cfg or None
        task_obj = TASKS.build(
            task,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            dynamic_cfg=dynamic_cfg,
        )
        if num_frames not in AETHERV1_FRAMES and mode == "upstream":
            raise ValueError(f"num_frames must be one of {AETHERV1_FRAMES}, got {num_frames}")
        device = self.device
        tdtype = self.dtype
        ldtype = tdtype if mode == "upstream" else torch.float32
        height, width = self.height, self.width
        sf = int(self.backend.spatial_factor)
        h, w = height // sf, width // sf
        num_latent = latent_frame_count(num_frames)

        # conditions: one posterior sample per encode call in upstream mode (image, goal, video)
        sample = mode == "upstream"
        color: dict[str, Tensor] = {}
        for name, x in (("observation", observation), ("goal", goal), ("video", video)):
            if x is None:
                continue
            # contiguous (1, T, 3, H, W) as upstream: other layouts give other bf16 convolution results
            x = (x[None, None] if x.ndim == 3 else x[None]).contiguous()
            if tuple(x.shape[-2:]) != (height, width):
                raise ValueError(f"{name}: expected {height}x{width} frames, got {tuple(x.shape[-2:])}")
            color[name] = self.backend.encode(
                x.to(device), sample=sample, generator=generator if sample else None
            ).to(ldtype)
        if "video" in color and color["video"].shape[1] != num_latent:
            raise ValueError(f"video: expected {num_frames} frames, got {video.shape[0]}")
        action = None
        if raymap is not None:
            if tuple(raymap.shape) != (num_frames, 6, h, w):
                raise ValueError(f"raymap: expected {(num_frames, 6, h, w)}, got {tuple(raymap.shape)}")
            action = fold_raymap(raymap[None].to(device=device, dtype=ldtype))
        condition = task_obj.build_condition(color, action, num_latent).to(ldtype)
        condition = condition.expand(num_samples, *condition.shape[1:])

        self.scheduler.set_timesteps(task_obj.num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        steps = timesteps.tolist()  # host values for the scheduler: no syncs inside the loop
        shape = (num_samples, num_latent, self.transformer.target_channels, h, w)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=ldtype)
        latents = latents * self.scheduler.init_noise_sigma

        cfg = task_obj.do_classifier_free_guidance
        if cfg:
            unconditional = task_obj.build_unconditional(condition)
            model_condition = torch.cat([unconditional, condition])
            weights = [task_obj.guidance_at(t, task_obj.num_inference_steps) for t in steps]
        else:
            unconditional, model_condition, weights = None, condition, []
        if hook is not None:
            hook("condition", condition)
            if unconditional is not None:
                hook("unconditional", unconditional)
            hook("initial_latents", latents)
        # a contiguous copy per batch row, as upstream: an expanded view takes other bf16 matmul paths
        prompt = self.prompt_embeds.to(device=device, dtype=tdtype).repeat(model_condition.shape[0], 1, 1)
        rope = self.transformer.rotary_embedding(num_latent, h, w, fps, device)
        model_condition = model_condition.to(tdtype)

        old_pred = None
        from tqdm.auto import tqdm

        for i, t in enumerate(tqdm(steps, desc=task, disable=not self.progress, leave=False)):
            x = torch.cat([latents, latents]) if cfg else latents
            v = self.transformer(
                x.to(tdtype), model_condition, timesteps[i], prompt, image_rotary_emb=rope
            ).float()
            if cfg:
                v_uncond, v_cond = v.chunk(2)
                v = v_uncond + weights[i] * (v_cond - v_uncond)
            latents, old_pred = self.scheduler.step(
                v, old_pred, t, steps[i - 1] if i > 0 else None, latents,
                eta=0.0, generator=generator, return_dict=False,
            )  # fmt: skip
            latents = latents.to(ldtype)
        if hook is not None:
            hook("final_latents", latents)
        if num_samples > 1:
            latents = latents.float().mean(0, keepdim=True).to(ldtype)
        return self._decode(latents, num_frames, height, width, mode, decode_color)

    def _upstream_decode(self, latents: Tensor) -> Tensor:
        """VAE decode as upstream writes it: ``vae.decode(1 / scaling_factor * z)`` in the VAE dtype."""
        vae = getattr(self.backend, "vae", None)
        if vae is None:
            return self.backend.decode(latents)
        frames = vae.decode(1 / self.backend.scaling_factor * latents.permute(0, 2, 1, 3, 4)).sample
        return frames.permute(0, 2, 1, 3, 4)

    def _decode(
        self, latents: Tensor, num_frames: int, height: int, width: int, mode: str, decode_color: bool = True
    ) -> dict[str, Tensor]:
        from aether.geometry import raymap_to_cameras, unfold_raymap

        parts = self.targets.split(latents)
        rgb = None
        if mode == "upstream":
            if decode_color:
                rgb = (self._upstream_decode(parts["color"]) / 2 + 0.5).clamp(0, 1).float()
            d = self._upstream_decode(parts["disparity"]).mean(dim=2)
            disparity = torch.square(d * 0.5 + 0.5).float()
            raymap = unfold_raymap(parts["raymap"].float(), num_frames)
            c2w, K = raymap_to_cameras(raymap, height, width, downsample=int(self.backend.spatial_factor))
            valid = disparity >= MIN_DISPARITY
        else:
            size = {"height": height, "width": width}
            codecs = self.targets.codecs
            if decode_color:
                rgb = (codecs["color"].decode(parts["color"].float())["video"].float() / 2 + 0.5).clamp(0, 1)
            out = codecs["disparity"].decode(parts["disparity"].float(), size)
            out.update(codecs["raymap"].decode(parts["raymap"].float(), size))
            disparity, valid, raymap, c2w, K = (out[k] for k in ("disparity", "valid", "raymap", "c2w", "K"))
        return {
            "rgb": None if rgb is None else rgb[0].permute(0, 2, 3, 1).cpu(),
            "disparity": disparity[0].float().cpu(),
            "valid": valid[0].cpu(),
            "raymap": raymap[0].float().cpu(),
            "c2w": c2w[0].float().cpu(),
            "K": K[0].float().cpu(),
            "latents": latents.cpu(),
        }

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
    ) -> World4D:
        """4D reconstruction of a video (path, array or tensor; see :func:`to_frames`).

        Videos longer than the window run in temporal windows (default 41 frames, stride 24); videos
        whose aspect differs from the model's run in spatial windows along the long side. Each window
        draws from a generator reseeded with ``seed`` unless ``generator`` is given. The colors are the
        input frames (resized); upstream mode returns the decoded color latents as the reference does.
        ``ensemble_size`` > 1 averages that many samples per window (see :meth:`generate`'s
        ``num_samples``).
        """
        mode = mode or self.mode
        frames = to_frames(video)
        fps = self._check_fps(fps, mode)
        num_frames = frames.shape[0]
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
            "mode": mode,
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
                out = self.generate(
                    "reconstruction", video=clip, num_frames=size, fps=fps, generator=gen,
                    decode_color=mode == "upstream", **kwargs,
                )  # fmt: skip
                rgb = (
                    out["rgb"] if out["rgb"] is not None else ((clip + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
                )
                results.append(WindowResult(rgb, out["disparity"], out["c2w"], out["K"]))
            spatial.append(merge_temporal(results, starts) if len(results) > 1 else results[0])
        merged = merge_spatial(spatial, offsets, axis, canvas_w if axis == "width" else canvas_h)
        meta = {
            "task": "reconstruction",
            "mode": mode,
            "windows": starts,
            "window": size,
            "spatial_windows": offsets,
        }
        return self._world(merged, fps, meta)

    def predict(
        self,
        image: Any,
        trajectory: Trajectory | None = None,
        **kwargs: Any,
    ) -> World4D:
        """Predict a video from one observation image, following ``trajectory`` when given.

        Keyword arguments: num_frames (default: the trajectory's length, else 41), fps, num_inference_steps,
        guidance_scale, dynamic_cfg, generator, seed, mode, post_reconstruct (re-run reconstruction on
        the predicted video for its depth and cameras).
        """
        return self._generate_task("prediction", {"observation": image}, trajectory, **kwargs)

    def plan(
        self, observation: Any, goal: Any, trajectory: Trajectory | None = None, **kwargs: Any
    ) -> World4D:
        """Plan the video from ``observation`` to ``goal`` (images), following ``trajectory`` when given.

        Keyword arguments as :meth:`predict`.
        """
        return self._generate_task(
            "planning", {"observation": observation, "goal": goal}, trajectory, **kwargs
        )

    def _generate_task(
        self,
        task: str,
        images: dict[str, Any],
        trajectory: Trajectory | None,
        *,
        num_frames: int | None = None,
        fps: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        dynamic_cfg: bool | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = 0,
        mode: str | None = None,
        post_reconstruct: bool = False,
    ) -> World4D:
        mode = mode or self.mode
        fps = self._check_fps(fps, mode)
        if num_frames is None:
            num_frames = len(trajectory) if trajectory is not None else 41
        if num_frames not in AETHERV1_FRAMES:
            raise ValueError(f"num_frames must be one of {AETHERV1_FRAMES}, got {num_frames}")
        if trajectory is not None and len(trajectory) != num_frames:
            raise ValueError(
                f"the trajectory has {len(trajectory)} poses, expected {num_frames} (one per frame)"
            )
        H, W = self.height, self.width
        tensors, crop = {}, None
        for name, image in images.items():
            x = to_image(image)
            ch, cw = cover_size(x.shape[1], x.shape[2], H, W)
            top, left = (ch - H) // 2, (cw - W) // 2
            if (ch, cw) != (H, W):
                logger.info(
                    "%s: %dx%d resized to %dx%d and cropped to the model's %dx%d at (top %d, left %d)",
                    name, x.shape[2], x.shape[1], cw, ch, W, H, top, left,
                )  # fmt: skip
            if crop is None:
                crop = (ch, cw, (top, left, H, W), x.shape[1:])
            tensors[name] = _resize(x[None], ch, cw)[0, :, top : top + H, left : left + W]
        raymap = None
        if trajectory is not None:
            size = (trajectory.height, trajectory.width)
            if size == (None, None) or size == (H, W):
                traj = trajectory
            elif size == tuple(crop[3]):
                traj = trajectory.resized(crop[0], crop[1], crop[2])
            else:
                raise ValueError(
                    f"trajectory intrinsics are for {trajectory.width}x{trajectory.height}; expected "
                    f"the image's {crop[3][1]}x{crop[3][0]} or the model's {W}x{H}"
                )
            raymap = traj.raymap(num_frames, H, W, downsample=int(self.backend.spatial_factor))
        gen = _as_generator(generator, seed, self.device)
        out = self.generate(
            task, num_frames=num_frames, fps=fps, raymap=raymap, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, dynamic_cfg=dynamic_cfg, generator=gen, mode=mode, **tensors,
        )  # fmt: skip
        result = WindowResult(out["rgb"], out["disparity"], out["c2w"], out["K"])
        meta = {"task": task, "mode": mode, "num_frames": num_frames, "action": trajectory is not None}
        if post_reconstruct:
            recon = self.reconstruct(
                out["rgb"].permute(0, 3, 1, 2) * 2 - 1, fps=fps, generator=None, seed=seed, mode=mode
            )
            result = WindowResult(
                out["rgb"],
                torch.from_numpy(recon.disparity),
                torch.from_numpy(recon.c2w),
                torch.from_numpy(recon.K),
            )
            meta["post_reconstruct"] = True
        return self._world(result, fps, meta, raymap=out["raymap"])

    @staticmethod
    def _world(
        result: WindowResult, fps: float, meta: dict[str, Any], raymap: Tensor | None = None
    ) -> World4D:
        """The World4D of a result, cameras made relative to the first frame."""
        from aether.geometry import relative_poses

        disparity = result.disparity.float()
        valid = torch.isfinite(disparity) & (disparity >= MIN_DISPARITY)
        depth = torch.where(valid, 1.0 / torch.where(valid, disparity, 1.0), 0.0)
        return World4D(
            rgb=result.rgb.float().numpy(),
            depth=depth.numpy(),
            disparity=torch.where(valid, disparity, 0.0).numpy(),
            c2w=relative_poses(result.c2w.double()).float().numpy(),
            K=result.K.float().numpy(),
            valid=valid.numpy(),
            fps=fps,
            raymap=None if raymap is None else raymap.numpy(),
            meta=meta,
        )


def load_trajectory(
    path: str | os.PathLike, *, height: int, width: int, K: Sequence[float] | None = None
) -> Trajectory:
    """A trajectory file for a ``height × width`` image: JSON, raymap ``.npy`` (at its own resolution) or
    TUM text (needs ``K`` as fx, fy, cx, cy, for the image)."""
    from aether.pipeline.trajectory import intrinsics_from_values

    suffix = Path(path).suffix
    if suffix == ".npy":  # a raymap holds its own resolution (h, w) = (H/8, W/8)
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such trajectory file: {path}")
        raymap = np.load(path)
        if raymap.ndim != 4:
            raise ValueError(f"{path}: expected a raymap (T, 6, h, w), got shape {raymap.shape}")
        return Trajectory.from_raymap(raymap, 8 * raymap.shape[-2], 8 * raymap.shape[-1])
    if suffix == ".json":
        return Trajectory.load(path)
    if K is None:
        raise ValueError(f"{path}: a TUM trajectory needs intrinsics (fx fy cx cy)")
    return Trajectory.load(path, K=intrinsics_from_values(*K), width=width, height=height)
