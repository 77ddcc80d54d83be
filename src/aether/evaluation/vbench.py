"""The six VBench dimensions the paper reports, computed with VBench's backbones and formulas.

Backbones are read from the VBench cache layout (``$VBENCH_CACHE_DIR``, default
``~/.cache/vbench``); a dimension whose weights are absent is reported as missing (None) and
never estimated otherwise. DINO and CLIP are read from a transformers folder (saved with
``save_pretrained``) when there is one, else from the file VBench itself downloads there
(converted by :mod:`aether.evaluation.vbench_weights`):

==========================  ===============================================================
dimension                   files under the cache directory
==========================  ===============================================================
subject_consistency         ``dino_model/dino-vitb16/`` (transformers ViTModel, DINO ViT-B/16)
                            or ``dino_model/dino_vitbase16_pretrain.pth`` (DINO state dict)
background_consistency      ``clip_model/ViT-B-32/`` (transformers CLIPVisionModelWithProjection)
                            or ``clip_model/ViT-B-32.pt`` (OpenAI CLIP TorchScript archive)
motion_smoothness           ``amt_model/amt-s.pth`` (AMT-S, :mod:`aether.evaluation.amt`)
dynamic_degree              ``raft_model/raft_large_C_T_V2-1bb1363a.pth`` (torchvision RAFT)
aesthetic_quality           ``clip_model/ViT-L-14/`` or ``clip_model/ViT-L-14.pt``, and the LAION
                            head ``aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth``
imaging_quality             ``pyiqa_model/musiq_spaq_ckpt-358bb6af.pth`` (needs ``pyiqa``)
==========================  ===============================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2 as T

DIMENSIONS = (
    "subject_consistency",
    "background_consistency",
    "motion_smoothness",
    "dynamic_degree",
    "aesthetic_quality",
    "imaging_quality",
)
WEIGHTS = {
    "subject_consistency": 1.0,
    "background_consistency": 1.0,
    "motion_smoothness": 1.0,
    "dynamic_degree": 0.5,
    "aesthetic_quality": 1.0,
    "imaging_quality": 1.0,
}
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RAFT_FILES = {
    "raft_large_C_T_V2-1bb1363a.pth": "raft_large",
    "raft_small_C_T_V2-01064c6d.pth": "raft_small",
}
# backbone name -> the dimensions that need it
BACKBONES = {
    "dino": ("subject_consistency",),
    "clip_b32": ("background_consistency",),
    "amt": ("motion_smoothness",),
    "raft": ("dynamic_degree",),
    "clip_l14": ("aesthetic_quality",),
    "aesthetic_head": ("aesthetic_quality",),
    "musiq": ("imaging_quality",),
}


def vbench_cache_dir() -> Path:
    """``$VBENCH_CACHE_DIR`` or ``~/.cache/vbench``."""
    return Path(os.environ.get("VBENCH_CACHE_DIR", Path.home() / ".cache" / "vbench")).expanduser()


class VBenchModels:
    """Loads (once) the backbones of each dimension from the cache layout.

    ``overrides`` maps a backbone name (see ``BACKBONES``) to a ready model or callable to use
    instead of the cached weights. ``get`` returns None when the weights are absent.
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else vbench_cache_dir()
        self.device = torch.device(device)
        unknown = set(overrides or {}) - set(BACKBONES)
        if unknown:
            raise ValueError(
                f"overrides: expected keys among {sorted(BACKBONES)}, received {sorted(unknown)}"
            )
        self._cache: dict[str, Any] = dict(overrides or {})

    def get(self, name: str) -> Any:
        if name not in BACKBONES:
            raise ValueError(f"backbone: expected one of {sorted(BACKBONES)}, received {name!r}")
        if name not in self._cache:
            model = getattr(self, f"_load_{name}")()
            if isinstance(model, torch.nn.Module):
                model = model.to(self.device).eval()
            self._cache[name] = model
        return self._cache[name]

    def _hf(self, cls_name: str, rel: str, **kwargs: Any) -> Any:
        path = self.cache_dir / rel
        if not (path / "config.json").is_file():
            return None
        import transformers

        return getattr(transformers, cls_name).from_pretrained(path, **kwargs)

    def _hf_or_original(self, cls_name: str, rel_dir: str, rel_file: str, loader: str, **kwargs: Any) -> Any:
        """The transformers folder ``rel_dir`` when present, else VBench's own file ``rel_file``
        converted by ``vbench_weights.<loader>``; None when neither exists."""
        model = self._hf(cls_name, rel_dir, **kwargs)
        path = self.cache_dir / rel_file
        if model is not None or not path.is_file():
            return model
        from aether.evaluation import vbench_weights

        return getattr(vbench_weights, loader)(path)

    def _load_dino(self) -> Any:
        return self._hf_or_original(
            "ViTModel",
            "dino_model/dino-vitb16",
            "dino_model/dino_vitbase16_pretrain.pth",
            "load_dino",
            add_pooling_layer=False,
        )

    def _load_clip_b32(self) -> Any:
        return self._hf_or_original(
            "CLIPVisionModelWithProjection",
            "clip_model/ViT-B-32",
            "clip_model/ViT-B-32.pt",
            "load_openai_clip",
        )

    def _load_clip_l14(self) -> Any:
        return self._hf_or_original(
            "CLIPVisionModelWithProjection",
            "clip_model/ViT-L-14",
            "clip_model/ViT-L-14.pt",
            "load_openai_clip",
        )

    def _load_aesthetic_head(self) -> Any:
        path = self.cache_dir / "aesthetic_model" / "emb_reader" / "sa_0_4_vit_l_14_linear.pth"
        if not path.is_file():
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
        head = torch.nn.Linear(state["weight"].shape[1], 1)
        head.load_state_dict(state)
        return head

    def _load_amt(self) -> Any:
        from .amt import load_amt_s

        return load_amt_s(self.cache_dir / "amt_model" / "amt-s.pth")

    def _load_raft(self) -> Any:
        from torchvision.models import optical_flow

        for fname, builder in RAFT_FILES.items():
            for path in (
                self.cache_dir / "raft_model" / fname,
                Path(torch.hub.get_dir()) / "checkpoints" / fname,
            ):
                if path.is_file():
                    model = getattr(optical_flow, builder)(weights=None)
                    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                    return model
        return None

    def _load_musiq(self) -> Any:
        path = self.cache_dir / "pyiqa_model" / "musiq_spaq_ckpt-358bb6af.pth"
        if not path.is_file():
            return None
        try:
            from pyiqa.archs.musiq_arch import MUSIQ
        except ImportError:
            return None
        return MUSIQ(pretrained_model_path=str(path))


def _as_frames(video: Any) -> torch.Tensor:
    """uint8 (T,H,W,3) array/tensor -> float (T,3,H,W) in [0,255]."""
    v = torch.as_tensor(np.asarray(video)) if not isinstance(video, torch.Tensor) else video
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"video: expected uint8 shape (T,H,W,3), received {tuple(v.shape)}")
    if v.shape[0] < 2:
        raise ValueError(f"video: expected at least 2 frames, received {v.shape[0]}")
    return v.permute(0, 3, 1, 2).float()


def _consistency(features: torch.Tensor) -> tuple[float, int]:
    """VBench's consistency: Σ over frames i≥1 of (max(0,cos(f_i,f_{i-1})) + max(0,cos(f_i,f_0)))/2."""
    f = F.normalize(features.double(), dim=-1)
    prev = (f[1:] * f[:-1]).sum(-1).clamp(min=0)
    first = (f[1:] * f[:1]).sum(-1).clamp(min=0)
    return float(((prev + first) / 2).sum()), f.shape[0] - 1


def _clip_input(frames: torch.Tensor) -> torch.Tensor:
    x = T.Resize(224, interpolation=T.InterpolationMode.BICUBIC, antialias=False)(frames)
    x = T.CenterCrop(224)(x) / 255.0
    return T.Normalize(CLIP_MEAN, CLIP_STD)(x)


def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device, batch: int = 32
) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])


def subject_features(model: Any, frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """DINO class tokens (T,D) of frames resized to short side 224 (no crop)."""
    x = T.Resize(224, antialias=False)(frames) / 255.0
    x = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(x)
    return _batched(
        lambda b: model(pixel_values=b, interpolate_pos_encoding=True).last_hidden_state[:, 0], x, device
    )


def clip_features(model: Any, frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CLIP image embeddings (T,E) of 224-centre-cropped frames."""
    return _batched(lambda b: model(pixel_values=b).image_embeds, _clip_input(frames), device)


def motion_smoothness(
    interpolate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    frames: torch.Tensor,
    device: torch.device,
) -> float:
    """Odd frames dropped and re-interpolated from their even neighbours:
    (255 − mean |original − interpolated|) / 255 in uint8 units, the interpolated frames
    truncated to uint8 as VBench does. ``interpolate`` maps two (1,3,H,W) frames in [0,1] to the
    middle one."""
    even = frames[0::2] / 255.0
    odd = frames[1 : 2 * (len(even) - 1) : 2]
    with torch.no_grad():
        mids = [
            interpolate(a[None].to(device), b[None].to(device))[0].cpu() for a, b in zip(even[:-1], even[1:])
        ]
    pred = (torch.stack(mids) * 255).clamp(0, 255).floor()
    return (255.0 - float((odd.round() - pred).abs().mean())) / 255.0


def _pad8(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], mode="replicate")


RAFT_MIN_SIDE = 128  # RAFT's correlation pyramid needs feature maps of at least 16 px


def dynamic_degree(raft: torch.nn.Module, frames: torch.Tensor, fps: float, device: torch.device) -> bool:
    """RAFT (20 updates) on frames sampled at about 8 fps; a pair moves when the mean of its top
    5% flow magnitudes exceeds 6·(short side/256); dynamic if ≥ round(4·n/16) pairs move.
    Frames with a short side below 128 px are first upsampled to it (RAFT's minimum), the
    threshold following the upsampled size."""
    sampled = frames[:: max(1, round(fps / 8))]
    if min(sampled.shape[-2:]) < RAFT_MIN_SIDE:
        sampled = T.Resize(RAFT_MIN_SIDE, antialias=False)(sampled)
    thres = 6.0 * (min(sampled.shape[-2:]) / 256.0)
    count_num = round(4 * (len(sampled) / 16.0))
    x = _pad8(sampled / 127.5 - 1.0)
    moving = 0
    with torch.no_grad():
        for a, b in zip(x[:-1], x[1:]):
            flow = raft(a[None].to(device), b[None].to(device), num_flow_updates=20)[-1][0]
            rad = flow.norm(dim=0).flatten()
            top = torch.sort(rad, descending=True).values[: int(rad.numel() * 0.05)]
            moving += int(float(top.mean()) > thres)
            if moving >= count_num:
                return True
    return False


def aesthetic_quality(clip: Any, head: torch.nn.Module, frames: torch.Tensor, device: torch.device) -> float:
    """Mean over frames of the LAION linear head on normalised CLIP ViT-L/14 embeddings, /10."""
    feats = F.normalize(clip_features(clip, frames, device), dim=-1)
    with torch.no_grad():
        return float(head(feats.to(device)).squeeze(-1).float().mean() / 10)


def imaging_quality(
    musiq: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor, device: torch.device
) -> float:
    """Mean MUSIQ-SPAQ score of frames (short side reduced to 512 when larger), /100."""
    h, w = frames.shape[-2:]
    x = frames
    if min(h, w) > 512:
        s = 512.0 / min(h, w)
        x = T.Resize((int(s * h), int(s * w)), antialias=False)(x)
    x = x / 255.0
    with torch.no_grad():
        scores = [float(musiq(f[None].to(device))) for f in x]
    return float(np.mean(scores)) / 100.0


def weighted_total(dimensions: Mapping[str, float | None]) -> float | None:
    """Σ w_d·score_d / Σ w_d over the six dimensions (weights 1,1,1,0.5,1,1); None if any is missing."""
    if any(dimensions.get(d) is None for d in DIMENSIONS):
        return None
    return sum(WEIGHTS[d] * float(dimensions[d]) for d in DIMENSIONS) / sum(WEIGHTS.values())


def _score_video(
    m: dict[str, Any], frames: torch.Tensor, fps: float, dev: torch.device
) -> dict[str, tuple[float, int] | None]:
    """Per-dimension (sum, count) of one video; None where the backbones are missing."""
    out: dict[str, tuple[float, int] | None] = dict.fromkeys(DIMENSIONS)
    if m["dino"] is not None:
        out["subject_consistency"] = _consistency(subject_features(m["dino"], frames, dev))
    if m["clip_b32"] is not None:
        out["background_consistency"] = _consistency(clip_features(m["clip_b32"], frames, dev))
    if m["amt"] is not None:
        out["motion_smoothness"] = (motion_smoothness(m["amt"], frames, dev), 1)
    if m["raft"] is not None:
        out["dynamic_degree"] = (float(dynamic_degree(m["raft"], frames, fps, dev)), 1)
    if m["clip_l14"] is not None and m["aesthetic_head"] is not None:
        out["aesthetic_quality"] = (aesthetic_quality(m["clip_l14"], m["aesthetic_head"], frames, dev), 1)
    if m["musiq"] is not None:
        out["imaging_quality"] = (imaging_quality(m["musiq"], frames, dev), 1)
    return out


def vbench_scores(videos: Mapping[str, tuple[Any, float]], models: VBenchModels) -> dict[str, Any]:
    """Score videos {name: (uint8 (T,H,W,3), fps)} on the six dimensions.

    Returns ``{"per_video": {name: {dim: score | None}}, "dimensions": {dim: score | None},
    "total": weighted total | None, "missing": [dims without weights]}``. The consistency
    dimensions are frame-weighted over all videos as in VBench; the others average videos.
    """
    m = {name: models.get(name) for name in BACKBONES}
    per_video: dict[str, dict[str, float | None]] = {}
    sums: dict[str, list[float]] = {d: [0.0, 0.0] for d in DIMENSIONS}
    for name, (video, fps) in videos.items():
        scores = _score_video(m, _as_frames(video), fps, models.device)
        per_video[name] = {d: (None if v is None else v[0] / v[1]) for d, v in scores.items()}
        for d, v in scores.items():
            if v is not None:
                sums[d][0] += v[0]
                sums[d][1] += v[1]
    dims = {d: (sums[d][0] / sums[d][1] if sums[d][1] else None) for d in DIMENSIONS}
    return {
        "per_video": per_video,
        "dimensions": dims,
        "total": weighted_total(dims),
        "missing": [d for d in DIMENSIONS if dims[d] is None],
    }
