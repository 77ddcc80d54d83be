"""The AetherV1 transformer: a CogVideoX transformer with widened input/output and fps-aware RoPE.

Per latent frame the input is the noisy target (``out_channels``, 56 for AetherV1:
color 0:16, disparity 16:32, raymap 32:56) followed by the condition
(``in_channels - out_channels``, 40: color 0:16, raymap 16:40).

The class is a :class:`diffusers.CogVideoXTransformer3DModel` with the same config
and parameter names, so an AetherV1 ``transformer/`` folder loads directly and what
:meth:`AetherTransformer.save_pretrained` writes loads back into plain diffusers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from diffusers import CogVideoXTransformer3DModel

from aether.models.rope import BASE_FPS, rotary_embedding_3d

AETHERV1_TARGET_CHANNELS = 56
AETHERV1_CONDITION_CHANNELS = 40


def tiny_config(
    *,
    in_channels: int = AETHERV1_TARGET_CHANNELS + AETHERV1_CONDITION_CHANNELS,
    out_channels: int = AETHERV1_TARGET_CHANNELS,
    sample_height: int = 4,
    sample_width: int = 6,
    sample_frames: int = 41,
    num_layers: int = 2,
    num_attention_heads: int = 2,
    attention_head_dim: int = 16,
    text_embed_dim: int = 32,
    max_text_seq_length: int = 8,
    **overrides: Any,
) -> dict[str, Any]:
    """Config of a small CogVideoX-1.0-style transformer for CPU tests and tiny trainings.

    ``sample_height``/``sample_width`` are latent sizes (pixels / 8 for the CogVideoX VAE).
    Rotary and learned positional embeddings are on, as in CogVideoX-5b-I2V.
    """
    config = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "num_layers": num_layers,
        "num_attention_heads": num_attention_heads,
        "attention_head_dim": attention_head_dim,
        "text_embed_dim": text_embed_dim,
        "time_embed_dim": 32,
        "max_text_seq_length": max_text_seq_length,
        "sample_height": sample_height,
        "sample_width": sample_width,
        "sample_frames": sample_frames,
        "patch_size": 2,
        "use_rotary_positional_embeddings": True,
        "use_learned_positional_embeddings": True,
    }
    config.update(overrides)
    return config


class AetherTransformer(CogVideoXTransformer3DModel):
    """CogVideoX transformer taking ``(noisy target, condition)`` and the clip's fps.

    ``base_fps`` is the RoPE time base (12 for AetherV1); the model spec sets it on the loaded instance.
    """

    base_fps = BASE_FPS

    @property
    def target_channels(self) -> int:
        """Channels of the noisy target and of the output (56 for AetherV1)."""
        return int(self.config.out_channels)

    @property
    def condition_channels(self) -> int:
        """Condition channels appended to the noisy target (40 for AetherV1)."""
        return int(self.config.in_channels) - int(self.config.out_channels)

    def rotary_embedding(
        self, num_frames: int, height: int, width: int, fps: float | None = None, device=None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """RoPE (cos, sin) for latents ``(F=num_frames, h=height, w=width)`` at ``fps`` (default: the
        base fps); None without RoPE.

        Cached per (F, h, w, fps, device): computing it once before a denoising loop keeps the loop free
        of host work.
        """
        if not self.config.use_rotary_positional_embeddings:
            return None
        if self.config.patch_size_t is not None:
            raise ValueError("only CogVideoX 1.0 transformers (patch_size_t=None) are supported")
        p = self.config.patch_size
        fps = self.base_fps if fps is None else float(fps)
        key = (num_frames, height, width, fps, float(self.base_fps), str(device))
        cache = self.__dict__.setdefault("_rope_cache", {})
        if key not in cache:
            cache[key] = rotary_embedding_3d(
                self.config.attention_head_dim,
                num_frames,
                height // p,
                width // p,
                self.config.sample_height // p,
                self.config.sample_width // p,
                fps,
                base_fps=float(self.base_fps),
                device=device,
            )
        return cache[key]

    def forward(  # type: ignore[override]
        self,
        noisy: torch.Tensor,
        condition: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        fps: float | torch.Tensor | None = None,
        *,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """Predict the target (v-prediction for AetherV1).

        Args:
            noisy: (B, F, out_channels, h, w) noisy target latents.
            condition: (B, F, in_channels - out_channels, h, w) condition latents.
            timestep: (B,) or scalar diffusion timesteps.
            encoder_hidden_states: (B, L, D) text embedding (the empty prompt for AetherV1).
            fps: a float (default: the base fps), or (B,) per-sample fps (samples are grouped by fps).
            image_rotary_emb: precomputed RoPE, overriding ``fps``.

        Returns:
            (B, F, out_channels, h, w).
        """
        same_grid = noisy.shape[:2] + noisy.shape[3:] == condition.shape[:2] + condition.shape[3:]
        if noisy.ndim != 5 or condition.ndim != 5 or not same_grid:
            raise ValueError(
                f"expected noisy (B,F,{self.target_channels},h,w) and condition "
                f"(B,F,{self.condition_channels},h,w), got {tuple(noisy.shape)} and {tuple(condition.shape)}"
            )
        if noisy.shape[2] + condition.shape[2] != self.config.in_channels:
            raise ValueError(
                f"noisy + condition channels must be {self.config.in_channels}, "
                f"got {noisy.shape[2]} + {condition.shape[2]}"
            )
        batch, frames, _, height, width = noisy.shape
        timestep = torch.as_tensor(timestep, device=noisy.device).expand(batch)
        if image_rotary_emb is None and isinstance(fps, torch.Tensor) and fps.numel() > 1:
            values = fps.detach().flatten().cpu()
            if not bool((values == values[0]).all()):
                out = None  # allocated with the groups' output dtype (bfloat16 under autocast)
                for value in values.unique().tolist():
                    idx = (values == value).nonzero().flatten().to(noisy.device)
                    group = self.forward(
                        noisy[idx], condition[idx], timestep[idx], encoder_hidden_states[idx], value
                    )
                    out = group.new_empty(noisy.shape) if out is None else out
                    out[idx] = group
                return out
            fps = float(values[0])
        if image_rotary_emb is None:
            image_rotary_emb = self.rotary_embedding(frames, height, width, fps, noisy.device)
        hidden = torch.cat([noisy, condition], dim=2)
        return super().forward(
            hidden_states=hidden,
            encoder_hidden_states=encoder_hidden_states,
            timestep=timestep,
            image_rotary_emb=image_rotary_emb,
            attention_kwargs=attention_kwargs,
            return_dict=False,
        )[0]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """diffusers' ``from_pretrained``, with a missing local folder named as such (never a hub
        connection error for a path: :func:`aether.hub.require_local`)."""
        from aether.hub import require_local

        require_local(pretrained_model_name_or_path, "transformer")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_base(
        cls,
        base: str | os.PathLike,
        *,
        subfolder: str | None = "transformer",
        target_channels: int = AETHERV1_TARGET_CHANNELS,
        condition_channels: int = AETHERV1_CONDITION_CHANNELS,
        torch_dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> AetherTransformer:
        """Widen a CogVideoX (I2V) transformer into an Aether transformer.

        The base input is ``[noisy (C_out), image latents (C_in - C_out)]`` per frame (32 = 16 + 16 for
        CogVideoX-5b-I2V). The new input is ``[noisy target (target_channels), condition
        (condition_channels)]``: the old noisy channels go to the first target channels (color), the old
        image channels to the first condition channels (color condition); every other input channel and
        every new output channel is zero, so on zero new channels the widened model computes exactly what
        the base did (the new outputs are zero).
        """
        from aether.hub import require_local

        require_local(base, "base transformer")
        base_model = CogVideoXTransformer3DModel.from_pretrained(base, subfolder=subfolder, **kwargs)
        return cls.from_base_model(
            base_model,
            target_channels=target_channels,
            condition_channels=condition_channels,
            torch_dtype=torch_dtype,
        )

    @classmethod
    def from_base_model(
        cls,
        base_model: CogVideoXTransformer3DModel,
        *,
        target_channels: int = AETHERV1_TARGET_CHANNELS,
        condition_channels: int = AETHERV1_CONDITION_CHANNELS,
        torch_dtype: torch.dtype | None = None,
    ) -> AetherTransformer:
        """:meth:`from_base` for an already loaded base model."""
        old_in, old_out = int(base_model.config.in_channels), int(base_model.config.out_channels)
        old_image = old_in - old_out
        if old_out > target_channels or old_image > condition_channels or old_image < 0:
            raise ValueError(
                f"cannot widen a base with in={old_in}/out={old_out} to target={target_channels}/"
                f"condition={condition_channels}"
            )
        if base_model.config.patch_size_t is not None:
            raise ValueError("only CogVideoX 1.0 bases (patch_size_t=None) are supported")
        config = dict(base_model.config)
        config.update(in_channels=target_channels + condition_channels, out_channels=target_channels)
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        model = cls.from_config(config)

        state = base_model.state_dict()
        new_state = model.state_dict()
        w_in = state.pop("patch_embed.proj.weight")  # (D, C_in, p, p)
        new_w_in = torch.zeros_like(new_state["patch_embed.proj.weight"], dtype=w_in.dtype)
        new_w_in[:, :old_out] = w_in[:, :old_out]
        new_w_in[:, target_channels : target_channels + old_image] = w_in[:, old_out:]
        state["patch_embed.proj.weight"] = new_w_in

        p2 = base_model.config.patch_size**2  # proj_out rows are laid out (C_out, p, p)
        w_out, b_out = state.pop("proj_out.weight"), state.pop("proj_out.bias")
        new_w_out = torch.zeros(target_channels, p2, w_out.shape[1], dtype=w_out.dtype)
        new_w_out[:old_out] = w_out.reshape(old_out, p2, -1)
        new_b_out = torch.zeros(target_channels, p2, dtype=b_out.dtype)
        new_b_out[:old_out] = b_out.reshape(old_out, p2)
        state["proj_out.weight"] = new_w_out.reshape(target_channels * p2, -1)
        state["proj_out.bias"] = new_b_out.reshape(-1)
        model.load_state_dict(state, strict=True)
        if torch_dtype is not None:
            model = model.to(torch_dtype)
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Save in the diffusers layout, with a config that plain ``CogVideoXTransformer3DModel`` loads."""
        super().save_pretrained(save_directory, *args, **kwargs)
        config_path = Path(save_directory) / "config.json"
        config = json.loads(config_path.read_text())
        config["_class_name"] = CogVideoXTransformer3DModel.__name__
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
