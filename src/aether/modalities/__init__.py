"""Modality codecs (color, disparity, raymap; the condition-only geometric memory "cache") on latent
backends (CogVideoX VAE, tiny).

Registries: ``LATENT_BACKENDS`` ("cogvideox", "tiny") and ``MODALITIES`` ("color", "disparity",
"raymap", "cache"); third-party entries are discovered through the entry-point groups
``aether.latent_backends`` and ``aether.modalities``.
"""

from .base import LATENT_BACKENDS, MEMORY_INPUTS, MODALITIES, LatentBackend, ModalityCodec
from .cache import CacheCodec, lift_frames, render_memory
from .clip import ClipGeometry
from .cogvideox import CogVideoXBackend, load_cogvideox_vae
from .color import ColorCodec
from .disparity import (
    DisparityCodec,
    clip_dmax,
    denormalize_disparity,
    normalize_disparity,
    valid_depth_mask,
)
from .raymap import RaymapCodec
from .stack import AETHERV1_CONDITION, AETHERV1_TARGET, ModalityStack
from .tiny import TinyBackend
from .validation import check_num_frames, check_spatial_size

__all__ = [
    "AETHERV1_CONDITION",
    "AETHERV1_TARGET",
    "CacheCodec",
    "ClipGeometry",
    "LATENT_BACKENDS",
    "MEMORY_INPUTS",
    "MODALITIES",
    "CogVideoXBackend",
    "ColorCodec",
    "DisparityCodec",
    "LatentBackend",
    "ModalityCodec",
    "ModalityStack",
    "RaymapCodec",
    "TinyBackend",
    "check_num_frames",
    "check_spatial_size",
    "clip_dmax",
    "denormalize_disparity",
    "lift_frames",
    "load_cogvideox_vae",
    "normalize_disparity",
    "render_memory",
    "valid_depth_mask",
]
