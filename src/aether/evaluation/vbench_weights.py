"""VBench's original backbone files read as transformers models.

VBench stores its backbones in the formats of their authors:

- ``dino_model/dino_vitbase16_pretrain.pth``: a plain state dict of facebookresearch/dino's
  ``VisionTransformer`` (``cls_token``, ``pos_embed``, ``patch_embed.proj.*``,
  ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``);
- ``clip_model/ViT-B-32.pt`` and ``clip_model/ViT-L-14.pt``: OpenAI CLIP TorchScript archives
  (half-precision weights) whose ``visual.*`` entries hold the image tower.

:func:`vit_from_dino` and :func:`clip_vision_from_openai` map those tensors onto a transformers
``ViTModel`` (DINO: pre-norm blocks, exact GELU, LayerNorm eps 1e-6, class token after the final
norm) and ``CLIPVisionModelWithProjection`` (QuickGELU, LayerNorm eps 1e-5, ``image_embeds`` =
``ln_post(class token) @ proj``). The architecture is inferred from the tensors (width, depth,
heads = width / 64, patch size, image size, projection size); every expected tensor is checked,
and a missing, unexpected or mis-shaped one raises a ValueError naming the file and the key.
The models are returned in float32 and in eval mode.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

HEAD_DIM = 64  # DINO and CLIP ViTs use 64-channel attention heads

DINO_BLOCK = {  # DINO block tensor -> transformers ViT layer tensor (qkv is split separately)
    "norm1": "layernorm_before",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
CLIP_BLOCK = {  # OpenAI CLIP residual block tensor -> transformers CLIP encoder layer tensor
    "ln_1": "layer_norm1",
    "attn.out_proj": "self_attn.out_proj",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a TorchScript archive (``torch.jit.load(...).state_dict()``) or of a
    ``torch.save``'d state dict, on the CPU. Unreadable files raise a ValueError naming them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; expected a checkpoint file")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is how OpenAI ships CLIP
            warnings.simplefilter("ignore", FutureWarning)
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except RuntimeError:
        pass  # not a TorchScript archive: a plain state dict, as OpenAI's clip.load also falls back to
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(
            f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            "expected a TorchScript archive or a torch.save'd state dict"
        ) from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, received {type(state).__name__}")
    return dict(state)


def _check(state: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]], source: str) -> None:
    """Exactly the keys of ``shapes`` with those shapes, else a ValueError naming the key."""
    for key, shape in shapes.items():
        if key not in state:
            raise ValueError(f"{source}: missing tensor {key!r} (expected shape {shape})")
        if tuple(state[key].shape) != shape:
            raise ValueError(
                f"{source}: tensor {key!r}: expected shape {shape}, received {tuple(state[key].shape)}"
            )
    unexpected = sorted(set(state) - set(shapes))
    if unexpected:
        raise ValueError(f"{source}: unexpected tensors {unexpected[:5]} for this architecture")


def _first(state: Mapping[str, torch.Tensor], key: str, ndim: int, source: str) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"{source}: missing tensor {key!r}")
    if state[key].ndim != ndim:
        raise ValueError(
            f"{source}: tensor {key!r}: expected {ndim} dimensions, received shape {tuple(state[key].shape)}"
        )
    return state[key]


def _depth(state: Mapping[str, torch.Tensor], prefix: str, source: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    blocks = {int(m.group(1)) for k in state if (m := pattern.match(k))}
    if not blocks:
        raise ValueError(f"{source}: no tensors '{prefix}N.*'; expected a vision transformer")
    return max(blocks) + 1


def _heads(width: int, source: str) -> int:
    if width % HEAD_DIM:
        raise ValueError(f"{source}: width {width} is not a multiple of the {HEAD_DIM}-channel head size")
    return width // HEAD_DIM


def _grid(positions: int, key: str, source: str) -> int:
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise ValueError(
            f"{source}: tensor {key!r}: expected 1 + a square number of positions, received {positions}"
        )
    return grid


def _split3(w: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A fused (3D, ...) query/key/value tensor -> its three (D, ...) parts, in q, k, v order."""
    return tuple(t.contiguous() for t in w.chunk(3, dim=0))


def _float32(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}


def vit_from_dino(state: Mapping[str, torch.Tensor], source: str = "DINO state dict") -> Any:
    """A transformers ``ViTModel`` (no pooler) from a facebookresearch/dino ViT state dict.

    ``last_hidden_state[:, 0]`` of the result is DINO's output (the class token after the final
    norm). ``source`` names the checkpoint in error messages.
    """
    from transformers import ViTConfig, ViTModel

    cls = _first(state, "cls_token", 3, source)
    conv = _first(state, "patch_embed.proj.weight", 4, source)
    pos = _first(state, "pos_embed", 3, source)
    fc1 = _first(state, "blocks.0.mlp.fc1.weight", 2, source)
    d, c, p, inter = cls.shape[-1], conv.shape[1], conv.shape[-1], fc1.shape[0]
    depth, grid = _depth(state, "blocks.", source), _grid(pos.shape[1], "pos_embed", source)
    config = ViTConfig(
        hidden_size=d,
        num_hidden_layers=depth,
        num_attention_heads=_heads(d, source),
        intermediate_size=inter,
        hidden_act="gelu",
        layer_norm_eps=1e-6,
        image_size=grid * p,
        patch_size=p,
        num_channels=c,
        qkv_bias=True,
    )
    vec, mat = (d,), (d, d)
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, d),
        "pos_embed": (1, grid * grid + 1, d),
        "patch_embed.proj.weight": (d, c, p, p),
        "patch_embed.proj.bias": vec,
        "norm.weight": vec,
        "norm.bias": vec,
    }
    block = {
        "norm1.weight": vec,
        "norm1.bias": vec,
        "attn.qkv.weight": (3 * d, d),
        "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": mat,
        "attn.proj.bias": vec,
        "norm2.weight": vec,
        "norm2.bias": vec,
        "mlp.fc1.weight": (inter, d),
        "mlp.fc1.bias": (inter,),
        "mlp.fc2.weight": (d, inter),
        "mlp.fc2.bias": vec,
    }
    shapes.update({f"blocks.{i}.{k}": s for i in range(depth) for k, s in block.items()})
    _check(state, shapes, source)
    s = _float32(state)
    out = {
        "embeddings.cls_token": s["cls_token"],
        "embeddings.position_embeddings": s["pos_embed"],
        "embeddings.patch_embeddings.projection.weight": s["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": s["patch_embed.proj.bias"],
        "layernorm.weight": s["norm.weight"],
        "layernorm.bias": s["norm.bias"],
    }
    for i in range(depth):
        src, dst = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            qkv = _split3(s[f"{src}attn.qkv.{kind}"])
            for name, t in zip(("query", "key", "value"), qkv):
                out[f"{dst}attention.attention.{name}.{kind}"] = t
            for a, b in DINO_BLOCK.items():
                out[f"{dst}{b}.{kind}"] = s[f"{src}{a}.{kind}"]
    return ViTModel.from_pretrained(None, config=config, state_dict=out, add_pooling_layer=False).eval()


def clip_vision_from_openai(state: Mapping[str, torch.Tensor], source: str = "CLIP state dict") -> Any:
    """A transformers ``CLIPVisionModelWithProjection`` from an OpenAI CLIP state dict.

    Only the ``visual.*`` tensors are used (the text tower is ignored); ResNet CLIPs are
    rejected. ``image_embeds`` of the result is OpenAI's ``encode_image``. ``source`` names the
    checkpoint in error messages.
    """
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    v = {k[len("visual.") :]: t for k, t in state.items() if k.startswith("visual.")}
    if not v:
        raise ValueError(f"{source}: no 'visual.*' tensors; expected an OpenAI CLIP checkpoint")
    conv = _first(v, "conv1.weight", 4, f"{source} (visual.)")
    pos = _first(v, "positional_embedding", 2, f"{source} (visual.)")
    proj = _first(v, "proj", 2, f"{source} (visual.)")
    fc = _first(v, "transformer.resblocks.0.mlp.c_fc.weight", 2, f"{source} (visual.)")
    w, c, p, inter, emb = conv.shape[0], conv.shape[1], conv.shape[-1], fc.shape[0], proj.shape[1]
    depth = _depth(v, "transformer.resblocks.", source)
    grid = _grid(pos.shape[0], "visual.positional_embedding", source)
    config = CLIPVisionConfig(
        hidden_size=w,
        intermediate_size=inter,
        num_hidden_layers=depth,
        num_attention_heads=_heads(w, source),
        image_size=grid * p,
        patch_size=p,
        num_channels=c,
        projection_dim=emb,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    vec = (w,)
    shapes: dict[str, tuple[int, ...]] = {
        "conv1.weight": (w, c, p, p),
        "class_embedding": vec,
        "positional_embedding": (grid * grid + 1, w),
        "ln_pre.weight": vec,
        "ln_pre.bias": vec,
        "ln_post.weight": vec,
        "ln_post.bias": vec,
        "proj": (w, emb),
    }
    block = {
        "attn.in_proj_weight": (3 * w, w),
        "attn.in_proj_bias": (3 * w,),
        "attn.out_proj.weight": (w, w),
        "attn.out_proj.bias": vec,
        "ln_1.weight": vec,
        "ln_1.bias": vec,
        "mlp.c_fc.weight": (inter, w),
        "mlp.c_fc.bias": (inter,),
        "mlp.c_proj.weight": (w, inter),
        "mlp.c_proj.bias": vec,
        "ln_2.weight": vec,
        "ln_2.bias": vec,
    }
    shapes.update({f"transformer.resblocks.{i}.{k}": s for i in range(depth) for k, s in block.items()})
    _check(v, shapes, f"{source} (visual.)")
    s = _float32(v)
    out = {
        "vision_model.embeddings.class_embedding": s["class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": s["conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": s["positional_embedding"],
        "vision_model.pre_layrnorm.weight": s["ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": s["ln_pre.bias"],
        "vision_model.post_layernorm.weight": s["ln_post.weight"],
        "vision_model.post_layernorm.bias": s["ln_post.bias"],
        "visual_projection.weight": s["proj"].t().contiguous(),
    }
    for i in range(depth):
        src, dst = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            qkv = _split3(s[f"{src}attn.in_proj_{kind}"])
            for name, t in zip("qkv", qkv):
                out[f"{dst}self_attn.{name}_proj.{kind}"] = t
            for a, b in CLIP_BLOCK.items():
                out[f"{dst}{b}.{kind}"] = s[f"{src}{a}.{kind}"]
    return CLIPVisionModelWithProjection.from_pretrained(None, config=config, state_dict=out).eval()


def load_dino(path: str | Path) -> Any:
    """``ViTModel`` from a DINO checkpoint file such as ``dino_vitbase16_pretrain.pth``."""
    return vit_from_dino(read_state_dict(path), source=str(path))


def load_openai_clip(path: str | Path) -> Any:
    """``CLIPVisionModelWithProjection`` from an OpenAI CLIP file such as ``ViT-B-32.pt``."""
    return clip_vision_from_openai(read_state_dict(path), source=str(path))
