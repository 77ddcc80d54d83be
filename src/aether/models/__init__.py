"""The Aether transformer (a widened, fps-aware CogVideoX transformer) and its text conditioning."""

from aether.models.rope import BASE_FPS, rotary_embedding_3d
from aether.models.spec import AETHERV1_SPEC, AetherModelSpec
from aether.models.text import EMPTY_PROMPT_FILE, empty_prompt_embedding, encode_empty_prompt
from aether.models.transformer import AetherTransformer, tiny_config

__all__ = [
    "AETHERV1_SPEC",
    "BASE_FPS",
    "AetherModelSpec",
    "EMPTY_PROMPT_FILE",
    "AetherTransformer",
    "empty_prompt_embedding",
    "encode_empty_prompt",
    "rotary_embedding_3d",
    "tiny_config",
]
