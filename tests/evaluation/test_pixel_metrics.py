import math

import lpips
import pytest
import torch
from pytorch_msssim import ssim

from aether.evaluation import VideoPixelMetric, load_lpips, video_pixel_metrics
from aether.evaluation.pixel_metrics import lpips_backbone_path, ms_ssim_window


@pytest.fixture(scope="module")
def random_lpips():
    # LPIPS's code path with its shipped (non-negative) linear heads on an untrained AlexNet backbone:
    # the ImageNet backbone weights are not available offline
    return lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()


def test_identical_videos_are_perfect(random_lpips):
    video = torch.rand(3, 3, 40, 48)
    m = video_pixel_metrics(video, video.clone(), random_lpips)
    assert math.isinf(m["psnr"]) and m["psnr"] > 0
    assert m["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert m["ms_ssim"] == pytest.approx(1.0, abs=1e-6)
    assert m["lpips"] == pytest.approx(0.0, abs=1e-7)


def test_known_psnr_and_ssim_reference():
    target = torch.full((2, 3, 40, 48), 0.5)
    pred = target + 0.1  # MSE 0.01 -> 20 dB
    m = video_pixel_metrics(pred, target)
    assert m["psnr"] == pytest.approx(20.0, abs=1e-4)
    noisy = (target + 0.2 * torch.rand_like(target)).clamp(0, 1)
    ref = ssim(noisy, target, data_range=1.0, size_average=False).mean()
    assert video_pixel_metrics(noisy, target)["ssim"] == pytest.approx(float(ref), rel=1e-6)
    assert "lpips" not in m


def test_different_videos_score_worse(random_lpips):
    a, b = torch.rand(2, 3, 40, 48), torch.rand(2, 3, 40, 48)
    m = video_pixel_metrics(a, b, random_lpips)
    assert m["psnr"] < 15 and m["ssim"] < 0.5 and m["lpips"] > 0


def test_ms_ssim_window_shrinks_for_small_frames():
    assert ms_ssim_window(480, 720) == 11
    assert ms_ssim_window(64, 96) == 3
    assert ms_ssim_window(32, 48) is None
    assert video_pixel_metrics(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))["ms_ssim"] is None


def test_lpips_missing_without_cached_backbone(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert lpips_backbone_path("alex").startswith(str(tmp_path))
    assert load_lpips("alex") is None
    with pytest.raises(ValueError, match="net"):
        load_lpips("squeezenet")


def test_metric_means_over_videos(random_lpips):
    metric = VideoPixelMetric(random_lpips)
    a, b = torch.rand(2, 3, 40, 48), torch.rand(2, 3, 40, 48)
    metric.update(a, b)
    metric.update(b, a)
    out = metric.compute()
    one = video_pixel_metrics(a, b, random_lpips)
    assert out["psnr"] == pytest.approx(one["psnr"], rel=1e-6)
    assert out["lpips"] == pytest.approx(one["lpips"], rel=1e-5)
    assert VideoPixelMetric().compute()["psnr"] is None


def test_shape_validation():
    with pytest.raises(ValueError, match=r"\(T,3,H,W\)"):
        video_pixel_metrics(torch.rand(3, 40, 48), torch.rand(3, 40, 48))
    with pytest.raises(ValueError, match="target"):
        video_pixel_metrics(torch.rand(1, 3, 40, 48), torch.rand(1, 3, 40, 40))
