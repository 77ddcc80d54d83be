"""VBench's original DINO and OpenAI CLIP files, converted, against reference forwards of the
original architectures (written here from the authors' designs, independently of transformers)."""

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms as T1

from aether.evaluation import VBenchModels, vbench_scores
from aether.evaluation.vbench_weights import read_state_dict

DINO_FILE = "dino_model/dino_vitbase16_pretrain.pth"
CLIP_FILES = {"clip_b32": "clip_model/ViT-B-32.pt", "clip_l14": "clip_model/ViT-L-14.pt"}


# ------------------------------------------------------------------ facebookresearch/dino ViT
class DinoAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class DinoMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DinoBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), DinoAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), DinoMlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DinoPatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoViT(nn.Module):
    """DINO's VisionTransformer (num_classes=0): the class token after the final norm."""

    def __init__(self, dim=128, depth=2, heads=2, patch=16, image=224):
        super().__init__()
        self.patch_embed = DinoPatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(DinoBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


# ------------------------------------------------------------------ OpenAI CLIP
class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, 4 * width)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(4 * width, width)),
                ]
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (L, N, D)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, image: int, patch: int, width: int, layers: int, heads: int, out: int):
        super().__init__()
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class TinyCLIP(nn.Module):
    """OpenAI CLIP's module layout (image tower ``visual`` and a text tower)."""

    def __init__(self, width=128, layers=2, patch=32, image=224, embed=16):
        super().__init__()
        self.visual = VisionTransformer(image, patch, width, layers, width // 64, embed)
        self.transformer = Transformer(64, 1, 1)
        self.token_embedding = nn.Embedding(50, 64)
        self.positional_embedding = nn.Parameter(torch.randn(8, 64))
        self.ln_final = nn.LayerNorm(64)
        self.text_projection = nn.Parameter(torch.randn(64, embed))
        self.logit_scale = nn.Parameter(torch.tensor(4.6))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial norms and biases (default inits make them 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or "norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _write_dino(root, seed=0, **kw) -> DinoViT:
    torch.manual_seed(seed)
    ref = _randomise(DinoViT(**kw), seed)
    (root / DINO_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ref.state_dict(), root / DINO_FILE)
    return ref


def _write_clip(root, rel, seed=0, **kw) -> VisionTransformer:
    """Saves a half-precision TorchScript archive as OpenAI ships; returns the float32 reference
    tower with the same (fp16-representable) weights."""
    torch.manual_seed(seed)
    model = _randomise(TinyCLIP(**kw), seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(copy.deepcopy(model).half()).save(str(root / rel))
    return model.visual


def _images(n=2, size=224, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("vbench_original")
    refs = {"dino": _write_dino(root)}
    refs.update(
        {name: _write_clip(root, rel, seed=i + 1) for i, (name, rel) in enumerate(CLIP_FILES.items())}
    )
    return root, refs


def test_dino_file_gives_dinos_class_token(cache):
    root, refs = cache
    model = VBenchModels(cache_dir=root).get("dino")
    assert type(model).__name__ == "ViTModel"
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (
        128,
        2,
        2,
    )
    assert (model.config.patch_size, model.config.image_size, model.config.layer_norm_eps) == (16, 224, 1e-6)
    x = _images()
    with torch.no_grad():
        got = model(pixel_values=x).last_hidden_state[:, 0]
        expected = refs["dino"](x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CLIP_FILES))
def test_openai_clip_archive_gives_encode_image(cache, name):
    root, refs = cache
    assert isinstance(torch.jit.load(str(root / CLIP_FILES[name])), torch.jit.ScriptModule)
    assert "transformer.resblocks.0.attn.in_proj_weight" in read_state_dict(root / CLIP_FILES[name])
    model = VBenchModels(cache_dir=root).get(name)
    assert type(model).__name__ == "CLIPVisionModelWithProjection"
    assert next(model.parameters()).dtype == torch.float32  # the archive is half precision
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.patch_size, cfg.image_size) == (128, 2, 32, 224)
    assert (cfg.projection_dim, cfg.hidden_act) == (16, "quick_gelu")
    x = _images(seed=1)
    with torch.no_grad():
        got = model(pixel_values=x).image_embeds
        expected = refs[name](x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def _vbench_consistency(features):
    """VBench's loop: mean over frames i ≥ 1 of (max(0, cos to i-1) + max(0, cos to 0)) / 2."""
    f = F.normalize(features, dim=-1)
    total = 0.0
    for i in range(1, len(f)):
        sim_pre = max(0.0, F.cosine_similarity(f[i - 1 : i], f[i : i + 1]).item())
        sim_fir = max(0.0, F.cosine_similarity(f[0:1], f[i : i + 1]).item())
        total += (sim_pre + sim_fir) / 2
    return total / (len(f) - 1)


def test_consistency_scores_with_original_files_follow_vbench(cache):
    """VBench's preprocessing (torchvision < 0.16: tensor resizes without antialiasing) and
    formulas on the reference forwards, against vbench_scores with the converted files."""
    root, refs = cache
    rng = np.random.default_rng(0)
    square = rng.integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)  # DINO at its native grid
    wide = rng.integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    out = vbench_scores({"square": (square, 8.0), "wide": (wide, 8.0)}, VBenchModels(cache_dir=root))
    dino_t = T1.Compose(
        [
            T1.Resize(224, antialias=False),
            T1.Lambda(lambda x: x.float().div(255.0)),
            T1.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    clip_t = T1.Compose(
        [
            T1.Resize(224, interpolation=T1.InterpolationMode.BICUBIC, antialias=False),
            T1.CenterCrop(224),
            T1.Lambda(lambda x: x.float().div(255.0)),
            T1.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    with torch.no_grad():
        for name, video in (("square", square), ("wide", wide)):
            frames = torch.Tensor(video).permute(0, 3, 1, 2)
            background = _vbench_consistency(refs["clip_b32"](clip_t(frames)))
            assert out["per_video"][name]["background_consistency"] == pytest.approx(background, abs=1e-6)
        subject = _vbench_consistency(refs["dino"](dino_t(torch.Tensor(square).permute(0, 3, 1, 2))))
    assert out["per_video"]["square"]["subject_consistency"] == pytest.approx(subject, abs=1e-6)


def test_transformers_folder_takes_precedence(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, ViTConfig, ViTModel

    _write_dino(tmp_path)
    _write_clip(tmp_path, CLIP_FILES["clip_b32"])
    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    ViTModel(ViTConfig(**small), add_pooling_layer=False).save_pretrained(
        tmp_path / "dino_model" / "dino-vitb16"
    )
    CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=8, **small)).save_pretrained(
        tmp_path / "clip_model" / "ViT-B-32"
    )
    models = VBenchModels(cache_dir=tmp_path)
    assert models.get("dino").config.hidden_size == 32
    assert models.get("clip_b32").config.hidden_size == 32
    assert models.get("clip_l14") is None  # neither a folder nor a file


def test_truncated_files_raise_value_errors_naming_them(tmp_path):
    _write_dino(tmp_path)
    _write_clip(tmp_path, CLIP_FILES["clip_l14"])
    for rel in (DINO_FILE, CLIP_FILES["clip_l14"]):
        data = (tmp_path / rel).read_bytes()
        (tmp_path / rel).write_bytes(data[: len(data) // 2])
    models = VBenchModels(cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"dino_vitbase16_pretrain\.pth: unreadable"):
        models.get("dino")
    with pytest.raises(ValueError, match=r"ViT-L-14\.pt: unreadable"):
        models.get("clip_l14")


def test_mismatched_tensors_raise_value_errors_naming_file_and_key(tmp_path):
    _write_dino(tmp_path, depth=3)
    state = torch.load(tmp_path / DINO_FILE)
    state["blocks.1.mlp.fc2.weight"] = state["blocks.1.mlp.fc2.weight"][:, :-1]
    torch.save(state, tmp_path / DINO_FILE)
    with pytest.raises(
        ValueError, match=r"dino_vitbase16_pretrain\.pth: tensor 'blocks\.1\.mlp\.fc2\.weight'"
    ):
        VBenchModels(cache_dir=tmp_path).get("dino")
    del state["blocks.2.attn.qkv.bias"]
    state["blocks.1.mlp.fc2.weight"] = torch.zeros(128, 512)
    torch.save(state, tmp_path / DINO_FILE)
    with pytest.raises(ValueError, match=r"missing tensor 'blocks\.2\.attn\.qkv\.bias'"):
        VBenchModels(cache_dir=tmp_path).get("dino")

    # a plain (non-TorchScript) CLIP state dict is read too; a missing tensor is named
    _write_clip(tmp_path, CLIP_FILES["clip_b32"])
    clip_state = read_state_dict(tmp_path / CLIP_FILES["clip_b32"])
    del clip_state["visual.ln_post.bias"]
    torch.save(clip_state, tmp_path / CLIP_FILES["clip_b32"])
    with pytest.raises(ValueError, match=r"ViT-B-32\.pt \(visual\.\): missing tensor 'ln_post\.bias'"):
        VBenchModels(cache_dir=tmp_path).get("clip_b32")
    clip_state["visual.ln_post.bias"] = torch.zeros(128)
    clip_state["visual.proj"] = torch.zeros(127, 16)
    torch.save(clip_state, tmp_path / CLIP_FILES["clip_b32"])
    with pytest.raises(ValueError, match=r"tensor 'proj': expected shape \(128, 16\), received \(127, 16\)"):
        VBenchModels(cache_dir=tmp_path).get("clip_b32")
