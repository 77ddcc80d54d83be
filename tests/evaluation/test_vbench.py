import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aether.evaluation import DIMENSIONS, VBenchModels, vbench_scores, weighted_total
from aether.evaluation.vbench import dynamic_degree, motion_smoothness, vbench_cache_dir


def _tiny_cache(root):
    """Tiny random backbones written in the VBench cache layout (transformers save_pretrained)."""
    from torchvision.models.optical_flow import raft_small
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, ViTConfig, ViTModel

    vit = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    vit["image_size"] = 224
    ViTModel(ViTConfig(patch_size=16, **vit), add_pooling_layer=False).save_pretrained(
        root / "dino_model" / "dino-vitb16"
    )
    for name in ("ViT-B-32", "ViT-L-14"):
        cfg = CLIPVisionConfig(patch_size=32, projection_dim=8, **vit)
        CLIPVisionModelWithProjection(cfg).save_pretrained(root / "clip_model" / name)
    head = root / "aesthetic_model" / "emb_reader"
    head.mkdir(parents=True)
    torch.save(torch.nn.Linear(8, 1).state_dict(), head / "sa_0_4_vit_l_14_linear.pth")
    (root / "raft_model").mkdir()
    torch.save(raft_small(weights=None).state_dict(), root / "raft_model" / "raft_small_C_T_V2-01064c6d.pth")


class Midpoint(torch.nn.Module):
    """A frame interpolator that averages its two inputs."""

    def forward(self, a, b):
        return (a + b) / 2


class ConstantFlow(torch.nn.Module):
    """RAFT-shaped stand-in returning a constant flow (u, 0) for every pair."""

    def __init__(self, u):
        super().__init__()
        self.u = u

    def forward(self, a, b, num_flow_updates=12):
        flow = torch.zeros(a.shape[0], 2, *a.shape[-2:])
        flow[:, 0] = self.u
        return [flow]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("vbench")
    _tiny_cache(root)
    return root


def _video(seed=0, t=5, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path))
    assert vbench_cache_dir() == tmp_path
    monkeypatch.delenv("VBENCH_CACHE_DIR")
    assert vbench_cache_dir().parts[-2:] == (".cache", "vbench")


def test_missing_weights_are_reported_not_invented(tmp_path):
    out = vbench_scores({"a": (_video(), 8.0)}, VBenchModels(tmp_path))
    assert out["missing"] == list(DIMENSIONS)
    assert all(v is None for v in out["dimensions"].values())
    assert out["total"] is None
    with pytest.raises(ValueError, match="overrides"):
        VBenchModels(tmp_path, overrides={"clip": None})


def test_all_dimensions_with_tiny_backbones(cache):
    models = VBenchModels(cache, overrides={"amt": Midpoint(), "musiq": lambda x: x.mean() * 100})
    videos = {"a": (_video(0), 8.0), "b": (_video(1, t=4), 16.0)}
    out = vbench_scores(videos, models)
    assert out["missing"] == []
    for d in DIMENSIONS:
        assert out["dimensions"][d] is not None
    assert out["total"] == pytest.approx(weighted_total(out["dimensions"]))
    # imaging quality with the injected scorer (100 × mean intensity in [0,1]) divided by 100
    assert out["per_video"]["a"]["imaging_quality"] == pytest.approx(videos["a"][0].mean() / 255, rel=1e-5)
    # consistency dimensions are frame-pair weighted over videos (4 pairs and 3 pairs)
    sc = [out["per_video"][k]["subject_consistency"] for k in ("a", "b")]
    assert out["dimensions"]["subject_consistency"] == pytest.approx((4 * sc[0] + 3 * sc[1]) / 7)


def test_subject_consistency_matches_vbench_formula(cache):
    from torchvision.transforms import v2 as T

    models = VBenchModels(cache)
    video = _video(2, t=4)
    got = vbench_scores({"v": (video, 8.0)}, models)["per_video"]["v"]["subject_consistency"]
    dino = models.get("dino")
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float()
    x = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(T.Resize(224, antialias=False)(x) / 255)
    with torch.no_grad():
        feats = [
            dino(pixel_values=x[i : i + 1], interpolate_pos_encoding=True).last_hidden_state[:, 0]
            for i in range(len(x))
        ]
    total = 0.0
    for i in range(1, len(x)):
        sim_prev = max(0.0, F.cosine_similarity(feats[i - 1], feats[i]).item())
        sim_first = max(0.0, F.cosine_similarity(feats[0], feats[i]).item())
        total += (sim_prev + sim_first) / 2
    assert got == pytest.approx(total / (len(x) - 1), rel=1e-5)


def test_constant_video_is_perfectly_consistent(cache):
    video = np.repeat(_video(3, t=1), 4, axis=0)
    dims = vbench_scores({"v": (video, 8.0)}, VBenchModels(cache))["dimensions"]
    assert dims["subject_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert dims["background_consistency"] == pytest.approx(1.0, abs=1e-6)


def test_aesthetic_quality_is_the_linear_head_over_ten(cache):
    models = VBenchModels(cache)
    video = _video(4, t=3)
    got = vbench_scores({"v": (video, 8.0)}, models)["dimensions"]["aesthetic_quality"]
    from torchvision.transforms import v2 as T

    x = torch.from_numpy(video).permute(0, 3, 1, 2).float()
    x = T.CenterCrop(224)(T.Resize(224, interpolation=T.InterpolationMode.BICUBIC, antialias=False)(x)) / 255
    x = T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))(x)
    with torch.no_grad():
        emb = F.normalize(models.get("clip_l14")(pixel_values=x).image_embeds, dim=-1)
        expected = float(models.get("aesthetic_head")(emb).mean() / 10)
    assert got == pytest.approx(expected, rel=1e-5)


def test_motion_smoothness_closed_forms():
    ramp = torch.arange(0, 210, 30.0)[:, None, None, None].expand(7, 3, 8, 8).clone()
    assert motion_smoothness(Midpoint(), ramp, torch.device("cpu")) == pytest.approx(1.0)
    flicker = torch.tensor([0.0, 255.0] * 3 + [0.0])[:, None, None, None].expand(7, 3, 8, 8).clone()
    assert motion_smoothness(Midpoint(), flicker, torch.device("cpu")) == pytest.approx(0.0)
    # VBench truncates the interpolated frame to uint8: the midpoint 1.5 of levels 0 and 3 is 1
    steps = torch.tensor([0.0, 1.0, 3.0])[:, None, None, None].expand(3, 3, 8, 8).clone()
    assert motion_smoothness(Midpoint(), steps, torch.device("cpu")) == pytest.approx(1.0)


def test_amt_s_loaded_from_the_cache_layout(tmp_path):
    from aether.evaluation.amt import AMTS, AMTInterpolator

    assert VBenchModels(tmp_path).get("amt") is None
    (tmp_path / "amt_model").mkdir()
    torch.save({"state_dict": AMTS().state_dict()}, tmp_path / "amt_model" / "amt-s.pth")
    amt = VBenchModels(tmp_path).get("amt")
    assert isinstance(amt, AMTInterpolator) and not amt.training
    frames = torch.from_numpy(_video(3, t=3, h=64, w=96)).permute(0, 3, 1, 2).float()
    assert 0.0 <= motion_smoothness(amt, frames, torch.device("cpu")) <= 1.0


def test_dynamic_degree_threshold_and_count():
    frames = torch.zeros(16, 3, 128, 160)  # short side 128: threshold 6 * 128/256 = 3 px
    cpu = torch.device("cpu")
    assert dynamic_degree(ConstantFlow(3.5), frames, 8.0, cpu) is True
    assert dynamic_degree(ConstantFlow(2.5), frames, 8.0, cpu) is False
    # at 24 fps every 3rd frame is used: 6 frames, round(4*6/16) = 2 moving pairs needed
    assert dynamic_degree(ConstantFlow(3.5), frames, 24.0, cpu) is True
    # small frames are upsampled to RAFT's 128-px minimum and the threshold follows (3 px)
    assert dynamic_degree(ConstantFlow(2.5), torch.zeros(16, 3, 64, 96), 8.0, cpu) is False


def test_raft_loads_from_the_cache_layout(cache):
    raft = VBenchModels(cache).get("raft")
    assert type(raft).__name__ == "RAFT"
    out = dynamic_degree(raft, torch.rand(3, 3, 60, 90) * 255, 8.0, torch.device("cpu"))
    assert isinstance(out, bool)


def test_weighted_total():
    dims = dict.fromkeys(DIMENSIONS, 0.5)
    dims["dynamic_degree"] = 1.0
    assert weighted_total(dims) == pytest.approx((5 * 0.5 + 0.5 * 1.0) / 5.5)
    dims["imaging_quality"] = None
    assert weighted_total(dims) is None
