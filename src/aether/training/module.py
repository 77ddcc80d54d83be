"""``AetherModule``: the multi-task LightningModule, composed from registry names.

A recipe names the latent backend, the target and condition modality stacks, the
task mix, the transformer and the scheduler; the module wires them into the paper's
two-stage objective (§3.4, appendix D):

- stage 1: encode the clip online (or take precomputed ``latents``), sample a task per
  clip (which colour frames and whether the action are conditions), sample t and
  noise, predict with the transformer and regress the scheduler's target (v or ε);
- stage 2 (from ``stage2_start_step`` on): decode the predicted clean latents and add
  each target codec's decoded-space loss (built in: MS-SSIM on colour, the scale-and-shift-
  invariant loss on disparity and the depth-weighted pointmap loss on the raymap, no gradient
  into the disparity through it).
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, cast

import lightning as L
import torch
from torch import Tensor

from aether.data.batch import ClipBatch
from aether.models.rope import BASE_FPS
from aether.models.spec import COGVIDEOX_SCHEDULER, AetherModelSpec, build_scheduler
from aether.training import losses
from aether.training.checkpoints import RANK_STATES, gather_rank_states, rank_state
from aether.training.lora import add_lora, check_lora, has_lora
from aether.training.options import (
    LoraOptions,
    LRSchedulerOptions,
    OptimizerOptions,
    Options,
    TaskProbabilities,
    TimestepSampling,
    ValidationOptions,
    coerce_options,
    plain_options,
)
from aether.training.timesteps import sample_timesteps

log = logging.getLogger(__name__)

TASK_OF_COLOR_MODE = ("planning", "prediction", "reconstruction", "unconditional")
"""Name of the task each ``TaskSampler`` colour mode trains (0 obs+goal, 1 obs, 2 video, 3 none)."""


def stage2_options(targets: Any, given: dict[str, Any] | None) -> dict[str, Any]:
    """The target codecs' stage-2 options (``stage2_options``) updated with ``given``.

    Options of registered modalities the model does not decode are accepted and unused (a recipe
    may drop a target and keep its weights); a key no registered modality owns is a ValueError
    naming it (a misspelling)."""
    from aether.modalities import MODALITIES

    defaults: dict[str, Any] = {}
    for codec in targets.codecs.values():
        defaults |= codec.stage2_options
    known = set(defaults).union(*(MODALITIES.get(n).stage2_options for n in MODALITIES.names()))
    unknown = sorted(set(given or {}) - known)
    if unknown:
        raise ValueError(f"stage2: unknown options {unknown}; expected keys among {sorted(known)}")
    return {**defaults, **(given or {})}


def build_transformer(spec: dict[str, Any], in_channels: int, out_channels: int) -> torch.nn.Module:
    """The denoiser from a recipe entry.

    Args:
        spec: exactly one of ``{"pretrained": dir}`` (an Aether-layout transformer),
            ``{"base": dir_or_id}`` (widen a CogVideoX I2V transformer, paper §3.4),
            ``{"tiny": {kwargs of tiny_config}}`` or ``{"config": {full config}}``.
        in_channels, out_channels: channel counts implied by the modality stacks,
            imposed on ``tiny`` / ``config`` models and checked on loaded ones.
    """
    from aether.models import AetherTransformer, tiny_config

    keys = {"pretrained", "base", "tiny", "config"} & set(spec)
    if len(keys) != 1:
        raise ValueError(
            f"transformer spec needs exactly one of pretrained/base/tiny/config, got {sorted(spec)}"
        )
    (kind,) = keys
    options = {k: v for k, v in spec.items() if k not in (kind, "prompt_cache")}
    if kind == "pretrained":
        model = AetherTransformer.from_pretrained(spec["pretrained"], **options)
    elif kind == "base":
        options.setdefault("target_channels", out_channels)
        options.setdefault("condition_channels", in_channels - out_channels)
        model = AetherTransformer.from_base(spec["base"], **options)
    else:
        config = tiny_config(**(spec["tiny"] or {})) if kind == "tiny" else dict(spec["config"])
        config.update(in_channels=in_channels, out_channels=out_channels)
        model = AetherTransformer.from_config(config)
    got = (model.config.in_channels, model.config.out_channels)
    if got != (in_channels, out_channels):
        raise ValueError(
            f"transformer channels (in, out) must be {(in_channels, out_channels)} "
            f"for the modalities, got {got}"
        )
    return model


class AetherModule(L.LightningModule):
    """Two-stage multi-task training of the Aether world model.

    Args:
        transformer: see :func:`build_transformer`.
        latent_backend: ``LATENT_BACKENDS`` name ("cogvideox", "tiny").
        backend_kwargs: keyword arguments of the backend (e.g. the VAE directory).
        target_modalities: ``MODALITIES`` names of the denoised latents, in channel order.
        condition_modalities: ``MODALITIES`` names of the condition latents: the frames modality
            (colour) first, then the action and any signal and memory modalities (a memory, e.g.
            "cache", is drawn from each clip's ground truth and dropped with its codec's ``drop``).
        modality_options: per-modality codec options (e.g. ``{"disparity": {"min_disparity": 1e-3}}``).
        rope_base_fps: the RoPE time base recorded in the model spec (12 for AetherV1).
        scheduler: diffusers scheduler config (``_class_name`` + config keys); its
            ``prediction_type`` picks the regression target.
        task_probabilities: colour-condition mix for ``TaskSampler`` (``TaskProbabilities``; default
            the paper's: observation_goal 0.30, observation 0.40, video 0.28, none 0.02).
        action_keep: probability that the raymap condition is kept.
        context_probabilities: ``{k: probability}`` of giving prediction and planning samples k
            leading latent frames as colour (default ``{1: 1.0}``, the paper's; see ``TaskSampler``).
        stage2_start_step: global step from which the stage-2 losses are added (None: never).
        stage2: the target codecs' stage-2 options (``stage2_options``; a key no registered
            modality owns is an error): the loss weights ``color`` (MS-SSIM), ``depth`` (SSI) and
            ``pointmap``, the gradient-term weight ``gradient_alpha``, ``pointmap_align`` and
            ``color_frames`` (frames per clip drawn for MS-SSIM; None: all).
        optimizer: AdamW ``lr``, ``betas``, ``weight_decay``, ``eps`` (``OptimizerOptions``).
        lr_scheduler: OneCycle ``pct_start``, ``div_factor``, ``final_div_factor``,
            ``total_steps`` (None: the trainer's estimate) (``LRSchedulerOptions``).
        gradient_checkpointing: recompute transformer activations in the backward pass.
        ema_decay: keep an exponential moving average of the transformer (None: off).
        timestep_sampling: training timestep distribution (``TimestepSampling``):
            ``{"kind": "uniform"}`` (the paper's, default) or ``{"kind": "logit_normal", "mean": m,
            "std": s}``, optionally with a ``terminal`` fraction.
        validation: ``tasks`` to sample, ``num_inference_steps`` per task (optional),
            ``ensemble`` (reconstruction samples averaged, default 1), ``max_batches`` images
            logged (``ValidationOptions``).
        seed: seed of the task/timestep/noise generator (offset by the rank).
        lora: LoRA fine-tuning settings (``LoraOptions``, see :mod:`aether.training.lora`); None
            trains every transformer parameter.
        sampling_steps: denoising steps per task the exported model is sampled with when a caller
            gives none (recorded in its spec; see :class:`~aether.models.spec.AetherModelSpec`); the
            recipe's evaluation uses them too unless ``run.evaluate.steps`` names others.

    The options with a fixed key set are frozen dataclasses (:mod:`aether.training.options`): a
    recipe key that is not theirs fails while the recipe is parsed, naming it. Python callers may
    pass a mapping of some of their keys instead (a ValueError names an unknown one). The sections
    whose keys are open by design stay mappings: ``stage2`` (the codec plug-ins own its keys),
    ``modality_options`` (per plug-in), ``backend_kwargs``, ``scheduler``, ``transformer`` and
    ``context_probabilities``.
    """

    def __init__(
        self,
        transformer: dict[str, Any],
        latent_backend: str = "tiny",
        backend_kwargs: dict[str, Any] | None = None,
        target_modalities: list[str] | None = None,
        condition_modalities: list[str] | None = None,
        modality_options: dict[str, dict[str, Any]] | None = None,
        rope_base_fps: float = BASE_FPS,
        scheduler: dict[str, Any] | None = None,
        task_probabilities: Options[TaskProbabilities] | None = None,
        action_keep: float = 0.5,
        context_probabilities: dict[int, float] | None = None,
        stage2_start_step: int | None = None,
        stage2: dict[str, Any] | None = None,
        optimizer: Options[OptimizerOptions] | None = None,
        lr_scheduler: Options[LRSchedulerOptions] | None = None,
        gradient_checkpointing: bool = False,
        ema_decay: float | None = None,
        timestep_sampling: Options[TimestepSampling] | None = None,
        validation: Options[ValidationOptions] | None = None,
        seed: int = 0,
        lora: Options[LoraOptions] | None = None,
        sampling_steps: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        mix = coerce_options(TaskProbabilities, task_probabilities, "task_probabilities")
        adamw = coerce_options(OptimizerOptions, optimizer, "optimizer")
        onecycle = coerce_options(LRSchedulerOptions, lr_scheduler, "lr_scheduler")
        timesteps = coerce_options(TimestepSampling, timestep_sampling, "timestep_sampling")
        sampled = coerce_options(ValidationOptions, validation, "validation")
        adapters = coerce_options(LoraOptions, lora, "lora")
        # The hyper-parameters (saved in checkpoints) hold the options as plain data in full, as
        # LightningCLI records them: save_hyperparameters reads the arguments' current values.
        task_probabilities, optimizer, lr_scheduler = map(plain_options, (mix, adamw, onecycle))
        timestep_sampling, validation, lora = map(plain_options, (timesteps, sampled, adapters))
        self.save_hyperparameters()
        from aether.tasks import TaskSampler

        self.noise_scheduler = build_scheduler(scheduler or COGVIDEOX_SCHEDULER)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        self.spec = AetherModelSpec(
            latent_backend=latent_backend,
            backend_kwargs=backend_kwargs or {},
            target_modalities=tuple(target_modalities or ("color", "disparity", "raymap")),
            condition_modalities=tuple(condition_modalities or ("color", "raymap")),
            modality_options=modality_options or {},
            prediction_type=self.prediction_type,
            frames=None,  # any 4k + 1 frames and any rate: the data module decides what is trained
            fps=None,
            rope_base_fps=rope_base_fps,
            sampling_steps=sampling_steps,
        )
        self.target_modalities = list(self.spec.target_modalities)
        self.condition_modalities = list(self.spec.condition_modalities)
        backend = self.spec.build_backend().requires_grad_(False).eval()
        target_stack, condition_stack = self.spec.build_stacks(backend)
        # The frozen codecs are kept out of the module tree: they are not sharded by FSDP (each
        # rank runs the VAE encoder on its own batch, as in DDP) and not stored in checkpoints.
        self._frozen = {"backend": backend, "target": target_stack, "condition": condition_stack}
        self.transformer = build_transformer(
            transformer,
            self.target_stack.channels + self.condition_stack.channels,
            self.target_stack.channels,
        )
        self.transformer.base_fps = self.spec.rope_base_fps
        if gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.register_buffer(
            "alphas_cumprod",
            torch.as_tensor(self.noise_scheduler.alphas_cumprod, dtype=torch.float32),
            persistent=False,
        )
        frames = self.condition_stack.codecs[self.condition_stack.frames]
        self.task_sampler = TaskSampler(
            **({"probabilities": task_probabilities} if task_probabilities is not None else {}),
            action_keep=action_keep,
            raymap_channels=self.condition_stack.channels - frames.channels,
            context_probabilities=context_probabilities,
        )
        self.register_buffer("prompt_embedding", self._prompt_embedding(transformer), persistent=True)
        self.stage2 = stage2_options(self.target_stack, stage2)
        self.optimizer_config = adamw or OptimizerOptions()
        self.lr_scheduler_config = onecycle or LRSchedulerOptions()
        self.timestep_sampling = (timesteps or TimestepSampling()).config()
        self.validation_config = sampled or ValidationOptions()
        self.ema = None
        if ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(
                self.transformer, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            )
            self.ema.requires_grad_(False)
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.lora_config = check_lora(lora)  # the settings as a dict, defaults filled in

    # ----------------------------------------------------------------- components
    @property
    def backend(self) -> torch.nn.Module:
        """The frozen latent backend (VAE or tiny codec)."""
        return self._frozen["backend"]

    @property
    def target_stack(self) -> Any:
        """``ModalityStack`` of the denoised target latents."""
        return self._frozen["target"]

    @property
    def condition_stack(self) -> Any:
        """``ModalityStack`` of the condition latents."""
        return self._frozen["condition"]

    def _apply(self, fn: Any, recurse: bool = True) -> AetherModule:
        super()._apply(fn, recurse)
        self.backend._apply(fn, recurse)  # the stacks share this backend
        return self

    def _frozen_to_device(self) -> None:
        self.backend.to(self.device)

    def on_fit_start(self) -> None:
        self._frozen_to_device()

    def on_validation_start(self) -> None:
        self._frozen_to_device()

    def on_test_start(self) -> None:
        self._frozen_to_device()

    def _prompt_embedding(self, spec: dict[str, Any]) -> Tensor:
        """(1, L, D) text embedding: the cached empty-prompt T5 embedding for models derived
        from CogVideoX, zeros for models trained without text (tiny/config)."""
        from pathlib import Path

        from aether.models import EMPTY_PROMPT_FILE, empty_prompt_embedding

        cfg = self.transformer.config
        if "pretrained" not in spec and "base" not in spec:
            return torch.zeros(1, cfg.max_text_seq_length, cfg.text_embed_dim)
        cache = spec.get("prompt_cache")
        if (
            cache is None
            and "pretrained" in spec
            and (Path(spec["pretrained"]) / EMPTY_PROMPT_FILE).is_file()
        ):
            cache = Path(spec["pretrained"]) / EMPTY_PROMPT_FILE
        embedding = empty_prompt_embedding(spec.get("base"), cache=cache, max_length=cfg.max_text_seq_length)
        return embedding.float().cpu()

    @property
    def generator(self) -> torch.Generator:
        """The CPU generator behind task, timestep and noise draws (its state is checkpointed)."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.global_rank)
        return self._generator

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # every rank's generator: each resumes its own draws (a collective, called on all ranks)
        checkpoint[RANK_STATES] = gather_rank_states({"generator": self.generator.get_state()})
        if self._trainer is not None and self.trainer.training:
            _record_consumed_batches(
                checkpoint, self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = self._trainer
        world, path = (trainer.world_size, trainer.ckpt_path) if trainer is not None else (1, None)
        state = rank_state(checkpoint, self.global_rank, world, path)
        if state is not None:
            self.generator.set_state(state["generator"])
        elif "aether_generator_state" in checkpoint:  # single-process checkpoints of earlier versions
            self.generator.set_state(checkpoint["aether_generator_state"])

    def configure_model(self) -> None:
        """Attach the LoRA adapters (``lora``), then shard the transformer when the trainer's
        strategy is :class:`~aether.training.sharding.FSDP2Strategy` (Lightning calls this once
        the process group and device mesh exist; ``load_from_checkpoint`` calls it too)."""
        from aether.training.sharding import FSDP2Strategy, is_sharded

        if self.lora_config is not None and not has_lora(self.transformer):
            if self.ema is not None:
                raise ValueError("ema_decay is not supported with lora: set one of them to null")
            add_lora(self.transformer, self.lora_config)
        strategy = self._trainer.strategy if self._trainer is not None else None
        if isinstance(strategy, FSDP2Strategy) and not is_sharded(self.transformer):
            if self.ema is not None:
                raise ValueError("ema_decay is not supported with FSDP2Strategy: set model.ema_decay to null")
            strategy.parallelize(self.transformer)

    # ----------------------------------------------------------------- latents
    def encode_clip(self, clip: ClipBatch, keep_memory: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Target latents (B,F,Ct,h,w), the colour latents of the first and last frames and, by
        name, the latents of the signal condition modalities that are not targets.

        ``clip["latents"]`` (precomputed targets), ``clip["observation_latents"]`` and
        ``clip["goal_latents"]`` are used when present. A memory modality named in ``keep_memory``
        ({name: (B,) bool}, :meth:`draw_memory`) is encoded on the kept samples only and is zero on
        the others (what :meth:`condition` gives a dropped memory): a dropped memory is never rendered.
        """
        with torch.no_grad():
            target = clip.get("latents")
            if target is None:
                target = self.target_stack.encode(clip)
            obs = clip.get("observation_latents")
            goal = clip.get("goal_latents")
            if obs is None or goal is None:
                video = clip["video"]
                ends = self.backend.encode(torch.cat([video[:, :1], video[:, -1:]], 0))
                obs, goal = ends.chunk(2, 0)
            others = {
                name: self._encode_signal(name, clip, (keep_memory or {}).get(name))
                for name in self.condition_stack.signals
                if name not in self.target_stack.slices
            }
        return {"target": target.float(), "observation": obs.float(), "goal": goal.float(), **others}

    def _encode_signal(self, name: str, clip: ClipBatch, keep: Tensor | None) -> Tensor:
        """Latents (B,F,C,h,w) of one condition signal, computed on the rows where ``keep`` (B,) only."""
        codec = self.condition_stack.codecs[name]
        if keep is None or bool(keep.all()):
            return codec.encode(clip).float()
        batch = len(keep)
        rows = keep.nonzero().flatten()
        if not len(rows):  # every memory dropped: one row encoded for the shape only
            rows, keep = rows.new_zeros(1), torch.zeros_like(keep)
        kept = {
            k: v[rows.to(v.device)] if isinstance(v, Tensor) and v.ndim and v.shape[0] == batch else v
            for k, v in clip.items()
        }
        part = codec.encode(kept).float()
        out = part.new_zeros(batch, *part.shape[1:])
        out[rows.to(out.device)] = part * keep[rows].to(part)[:, None, None, None, None]
        return out

    def condition(
        self,
        latents: dict[str, Tensor],
        color_mode: Tensor,
        keep_action: Tensor,
        context_frames: Tensor | None = None,
        keep_memory: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Task-masked condition latents (B,F,Cc,h,w) from :meth:`encode_clip`'s output: the colour
        by task (with ``context_frames`` (B,) leading latent frames, see ``TaskSampler.sample_context``),
        then the action and signal latents (kept or zeroed together) and the memory latents, each
        kept where ``keep_memory[name]`` (B,) (:meth:`draw_memory`; everywhere when not given)."""
        stack = self.condition_stack
        parts = self.target_stack.split(latents["target"])
        given = [parts[n] if n in parts else latents[n] for n in stack.signals]
        signals = None if not given else given[0] if len(given) == 1 else torch.cat(given, dim=2)
        condition = self.task_sampler.build_condition(
            color_mode,
            keep_action,
            parts[stack.frames],
            latents["observation"],
            latents["goal"],
            signals,
            context_frames=context_frames,
        )
        for name in stack.signals:
            if stack.codecs[name].condition_role != "memory":
                continue
            memory = latents[name].to(condition)
            keep = (keep_memory or {}).get(name)
            if keep is not None:
                memory = torch.where(keep.to(memory.device)[:, None, None, None, None], memory, 0.0)
            sl = stack.slices[name]  # the condition's channels are the stack's: frames first
            condition = torch.cat([condition[:, :, : sl.start], memory, condition[:, :, sl.stop :]], dim=2)
        return condition

    def draw_memory(
        self, batch_size: int, generator: torch.Generator | None = None, color_mode: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Per memory condition modality (channel order), (B,) bool: whether a sample keeps its memory,
        with probability 1 − the codec's ``drop``; no draw without one (default trainings' draws
        stay as they are). With the samples' ``color_mode`` (B,), whole-video (reconstruction) samples
        never keep one: they are given every frame, and a sampler gives reconstruction no memory."""
        from aether.tasks import ColorMode

        keep = {}
        for name in self.condition_stack.signals:
            codec = self.condition_stack.codecs[name]
            if codec.condition_role == "memory":
                keep[name] = torch.rand(int(batch_size), generator=generator) >= codec.drop
                if color_mode is not None:
                    keep[name] &= color_mode.cpu() != int(ColorMode.VIDEO)
        return keep

    def denoise(self, noisy: Tensor, condition: Tensor, timesteps: Tensor, fps: Tensor) -> Tensor:
        """Transformer output (B,F,Ct,h,w) for noisy targets and conditions."""
        ehs = self.prompt_embedding.to(noisy.dtype).expand(noisy.shape[0], -1, -1)
        return self.transformer(noisy, condition, timesteps, ehs, fps)

    # ----------------------------------------------------------------- stage 2
    def stage2_losses(self, clean_pred: Tensor, clip: ClipBatch, target: Tensor) -> dict[str, Tensor]:
        """Per-sample stage-2 losses from predicted clean latents: each target codec's, in order.

        Args:
            clean_pred: (B,F,Ct,h,w) predicted z_0.
            clip: the batch (video, depth, valid, …).
            target: (B,F,Ct,h,w) true z_0 (the raymap part is the exact true raymap).

        Returns:
            {loss name: (B,)}; built in: ``color`` (1 − MS-SSIM), ``depth`` (SSI on normalised
            disparity, with a disparity target) and ``pointmap`` (with disparity and raymap targets).
        """
        from aether.modalities.losses import Stage2Batch

        parts = self.target_stack.split(clean_pred)
        true_parts = self.target_stack.split(target)
        batch = Stage2Batch(clip, self.stage2, self.generator)
        out: dict[str, Tensor] = {}
        for name, codec in self.target_stack.codecs.items():
            out |= codec.stage2_losses(parts[name], true_parts[name], batch)
        return out

    def in_stage2(self) -> bool:
        start = self.hparams.stage2_start_step
        return start is not None and self.global_step >= start

    # ----------------------------------------------------------------- training
    def full_precision(self) -> torch.autocast:
        """A context in which autocast is off: the frozen codecs, the camera and depth geometry, the
        decoded-space losses and evaluation compute in their own dtypes under any trainer precision
        (``bf16-mixed`` autocasts only the transformer)."""
        return torch.autocast(self.device.type, enabled=False)

    def training_step(self, batch: ClipBatch, batch_idx: int) -> Tensor:
        g = self.generator
        b = len(batch["fps"])
        color_mode, keep_action = self.task_sampler.sample(b, generator=g)
        context_frames = self.task_sampler.sample_context(b, generator=g, device=self.device)
        keep_memory = self.draw_memory(b, generator=g, color_mode=color_mode)
        color_mode, keep_action = color_mode.to(self.device), keep_action.to(self.device)
        with self.full_precision():
            batch = cast(ClipBatch, self.target_stack.prepare(batch))  # the same keys, geometry resolved
            latents = self.encode_clip(batch, keep_memory)
        z0 = latents["target"]
        timesteps = sample_timesteps(b, len(self.alphas_cumprod), g, **self.timestep_sampling).to(self.device)
        noise = torch.randn(z0.shape, generator=g).to(self.device, z0.dtype)
        condition = self.condition(latents, color_mode, keep_action, context_frames, keep_memory)
        noisy = losses.add_noise(self.alphas_cumprod, z0, noise, timesteps)
        fps = torch.as_tensor(batch["fps"], device=self.device, dtype=torch.float32)
        pred = self.denoise(noisy, condition, timesteps, fps).float()
        target = losses.diffusion_target(self.prediction_type, self.alphas_cumprod, z0, noise, timesteps)
        per_modality = losses.channel_mse(pred, target, self.target_stack.slices)
        counts = {k: sl.stop - sl.start for k, sl in self.target_stack.slices.items()}
        per_sample = sum(per_modality[k] * counts[k] for k in counts) / sum(counts.values())
        loss = per_sample.mean()
        logs = {"train/loss_latent": loss}
        logs |= {f"train/loss_latent_{k}": v.mean() for k, v in per_modality.items()}
        for mode, name in enumerate(TASK_OF_COLOR_MODE):
            sel = color_mode == mode
            if bool(sel.any()):
                logs[f"train/loss_{name}"] = per_sample[sel].mean()
        if self.in_stage2():
            clean = losses.predicted_clean_latents(
                self.prediction_type, self.alphas_cumprod, noisy, pred, timesteps
            )
            with self.full_precision():
                stage2 = self.stage2_losses(clean, batch, z0)
            for name, value in stage2.items():
                weight = float(self.stage2[name])
                logs[f"train/loss_{name}"] = value.mean()
                loss = loss + weight * value.mean()
        logs["train/loss"] = loss
        self.log_dict(logs, prog_bar=False, batch_size=b)
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=b)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.transformer)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optimizer_config
        params = [p for p in self.transformer.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, eps=cfg.eps
        )
        sch = self.lr_scheduler_config
        total = sch.total_steps or self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total <= 0:
            raise ValueError(
                f"OneCycle needs a finite number of steps: set max_steps or total_steps, got {total}"
            )
        pct_start = float(sch.pct_start)
        if pct_start * int(total) == 1:  # a one-step warm-up divides by zero inside OneCycleLR
            pct_start = 2.0 / int(total)
            log.info("OneCycle: a warm-up of one step is lengthened to two (pct_start %.4g)", pct_start)
        onecycle = torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=cfg.lr,
            total_steps=int(total),
            pct_start=pct_start,
            div_factor=sch.div_factor,
            final_div_factor=sch.final_div_factor,
            cycle_momentum=False,
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": onecycle, "interval": "step"}}

    # ----------------------------------------------------------------- validation
    def inference_transformer(self) -> torch.nn.Module:
        """The weights used for sampling and export: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.transformer

    def validation_step(self, batch: ClipBatch, batch_idx: int) -> None:
        from aether.training.validation import evaluate_batch

        with self.full_precision():
            results = evaluate_batch(
                self,
                batch,
                tasks=list(self.validation_config.tasks),
                steps=self.validation_config.num_inference_steps,
                ensemble=int(self.validation_config.ensemble),
            )
        b = batch["video"].shape[0]
        for task, res in results.items():
            scores = {f"val/{task}/{k}": float(v) for k, v in res.metrics.items()}
            scores |= {f"val/{task}/baseline_{k}": float(v) for k, v in res.baseline.items()}
            self.log_dict(scores, batch_size=b, sync_dist=True)
            if batch_idx < self.validation_config.max_batches:
                from aether.training.validation import log_images

                log_images(self, task, res, batch, batch_idx)

    def test_step(self, batch: ClipBatch, batch_idx: int) -> None:
        """Same evaluation as :meth:`validation_step`, on the test shards (logged under ``val/``)."""
        self.validation_step(batch, batch_idx)

    def export_copy(self) -> torch.nn.Module:
        """A detached CPU copy of the inference transformer, for saving."""
        return copy.deepcopy(self.inference_transformer()).cpu()


def _record_consumed_batches(checkpoint: dict[str, Any], processed: int) -> None:
    """Make resumable data-stream states count the batches trained on, not those fetched.

    Lightning fetches one batch ahead, so a loader that counts the batches it handed out
    (``{"epoch", "batches"}`` states, e.g. ``ClipLoader``) is one ahead when a checkpoint is
    written inside a training step; resuming from that count would skip a batch.
    """

    def fix(state: Any) -> None:
        if isinstance(state, dict) and {"epoch", "batches"} <= set(state) and state["batches"] > processed:
            state["batches"] = int(processed)

    for value in checkpoint.values():
        fix(value)
    loader_states = (
        checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {}).get("combined_loader", [])
    )
    for state in loader_states:
        fix(state)
