"""Inference speed and memory options: compiled transformer, feature caches, CPU offload, weight quantization.

Each is one :class:`~aether.pipeline.AetherPipeline` call (``enable_compile``, ``enable_cache``,
``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``, ``enable_vae_slicing`` /
``enable_vae_tiling``, ``enable_quantization``) and one CLI flag of ``aether reconstruct | predict |
plan``. What each does to the results:

==================  ==========================================================================================
option              effect on results
==================  ==========================================================================================
compile             same graph, fused kernels: equal to eager to float rounding (tests: 1e-5 in float32);
                    static shapes, so the windows of one video reuse one compiled graph; with a cache
                    the graphs break at the cache hooks and still serve every window (tested)
cache fastercache   an approximation (FasterCache): some steps reuse attention outputs of earlier steps and,
                    with CFG, estimate the unconditional branch from the conditional one in frequency space;
                    outputs change (tests bound the change on a tiny model), cost per step drops
cache pab           an approximation (Pyramid Attention Broadcast): attention outputs are reused every other
                    step inside the timestep range (100, 800); outputs change, bounded as above
offload model       bit-identical: each model is moved to the device while it runs
offload sequential  bit-identical: each layer's weights are moved while it runs (slowest, least memory)
vae slicing         bit-identical for one clip (batch elements decoded one at a time)
vae tiling          overlapping tiles blended linearly: differs from untiled decoding near tile seams
quantize            weights rounded to int8 / float8 (torchao): outputs change; not measured here
==================  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

CACHE_METHODS = ("fastercache", "pab")
OFFLOAD_MODES = ("model", "sequential")
QUANTIZATIONS = ("int8wo", "int8dq", "float8wo", "float8dq")


@dataclass
class FeatureCache:
    """A diffusers feature cache applied to the transformer before each denoising loop.

    The hooks keep per-step state, so they are reset at the start of every loop (every window), and they
    depend on whether the loop runs a CFG batch ([unconditional, conditional]): FasterCache's
    unconditional-branch estimate only exists with CFG, so the hooks are re-applied when that changes.

    Args:
        method: "fastercache" or "pab".
        options: fields of ``FasterCacheConfig`` / ``PyramidAttentionBroadcastConfig`` overriding the
            defaults below (diffusers' recommended values for CogVideoX).
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    applied_cfg: bool | None = None

    def __post_init__(self) -> None:
        if self.method not in CACHE_METHODS:
            raise ValueError(f"cache: expected one of {CACHE_METHODS}, got {self.method!r}")

    def config(self, cfg: bool, timestep: Callable[[], int]) -> Any:
        """The diffusers cache config for a loop with (``cfg``) or without a CFG batch."""
        from diffusers import FasterCacheConfig, PyramidAttentionBroadcastConfig

        if self.method == "pab":
            settings = {
                "spatial_attention_block_skip_range": 2,
                "spatial_attention_timestep_skip_range": (100, 800),
                "spatial_attention_block_identifiers": ("transformer_blocks",),
            }
            return PyramidAttentionBroadcastConfig(
                **{**settings, **self.options}, current_timestep_callback=timestep
            )
        settings = {
            "spatial_attention_block_skip_range": 2,
            "spatial_attention_timestep_skip_range": (-1, 681),
            "low_frequency_weight_update_timestep_range": (99, 641),
            "high_frequency_weight_update_timestep_range": (-1, 301),
            "spatial_attention_block_identifiers": ("transformer_blocks",),
            "attention_weight_callback": lambda _: 0.3,
        }
        return FasterCacheConfig(
            **{**settings, **self.options},
            tensor_format="BFCHW",  # the transformer's output (B, F, C, h, w)
            is_guidance_distilled=not cfg,
            current_timestep_callback=timestep,
        )

    def prepare(self, transformer: Any, cfg: bool, timestep: Callable[[], int]) -> None:
        """Apply (or re-apply, when ``cfg`` changed) the hooks and reset their state."""
        if self.applied_cfg is not cfg:
            if getattr(transformer, "is_cache_enabled", False):
                transformer.disable_cache()
            transformer.enable_cache(self.config(cfg, timestep))
            self.applied_cfg = cfg
        transformer._reset_stateful_cache()

    def remove(self, transformer: Any) -> None:
        if getattr(transformer, "is_cache_enabled", False):
            transformer.disable_cache()
        self.applied_cfg = None


def compile_transformer(transformer: torch.nn.Module, **options: Any) -> None:
    """``torch.compile`` the transformer in place (``nn.Module.compile``) with static shapes by default.

    Every window of a video has the same latent shape, timestep shape and RoPE tensors, so one graph
    serves them all; another task (CFG doubles the batch) or size compiles once more.
    """
    options.setdefault("dynamic", False)
    transformer.compile(**options)


def quantize_weights(transformer: torch.nn.Module, kind: str = "int8wo") -> None:
    """Quantize the transformer's linear weights in place with torchao.

    ``kind``: "int8wo" (int8 weights), "int8dq" (int8 weights and dynamic int8 activations),
    "float8wo" / "float8dq" (float8 weights / and activations; GPUs with float8 support).
    """
    tq, config_cls = require_torchao(kind)
    tq.quantize_(transformer, config_cls())


_TORCHAO_CONFIGS = {
    "int8wo": "Int8WeightOnlyConfig",
    "int8dq": "Int8DynamicActivationInt8WeightConfig",
    "float8wo": "Float8WeightOnlyConfig",
    "float8dq": "Float8DynamicActivationFloat8WeightConfig",
}


def require_torchao(kind: str) -> tuple[Any, Any]:
    """torchao's quantization module and the config class of ``kind``; ImportError naming the missing
    package (or config) otherwise, ValueError for an unknown kind."""
    if kind not in QUANTIZATIONS:
        raise ValueError(f"quantize: expected one of {QUANTIZATIONS}, got {kind!r}")
    try:
        from torchao import quantization as tq
    except ImportError as err:
        raise ImportError(
            f"quantize {kind!r} needs torchao, which is not installed: pip install torchao "
            "(the 'quantization' extra), or run without weight quantization"
        ) from err
    config_cls = getattr(tq, _TORCHAO_CONFIGS[kind], None)
    if config_cls is None:
        raise ImportError(f"quantize {kind!r}: this torchao has no {_TORCHAO_CONFIGS[kind]}; upgrade torchao")
    return tq, config_cls
