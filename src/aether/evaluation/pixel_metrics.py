"""Pixel metrics for planning: PSNR, SSIM, MS-SSIM (pytorch-msssim) and LPIPS (``lpips``).

LPIPS needs its ImageNet backbone (torchvision AlexNet/VGG) from the local torch hub cache; when
the weights are absent LPIPS is reported as missing (``None``), never estimated otherwise.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from pytorch_msssim import ms_ssim, ssim
from torchmetrics import Metric

from aether.evaluation.depth_metrics import as_tensor

LPIPS_BACKBONE_URLS = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def lpips_backbone_path(net: str = "alex") -> str:
    """Where torchvision keeps the LPIPS backbone's ImageNet weights (the torch hub cache)."""
    if net not in LPIPS_BACKBONE_URLS:
        raise ValueError(f"net: expected one of {sorted(LPIPS_BACKBONE_URLS)}, received {net!r}")
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(LPIPS_BACKBONE_URLS[net]))


def lpips_missing_reason(net: str = "alex") -> str:
    """Why LPIPS is reported as missing: where its backbone weights were looked for."""
    return (
        f"no LPIPS backbone weights at {lpips_backbone_path(net)} (torchvision's {net}; put the file "
        f"{os.path.basename(LPIPS_BACKBONE_URLS[net])} there, or run once with the hub reachable)"
    )


def load_lpips(net: str = "alex") -> torch.nn.Module | None:
    """The pretrained LPIPS model, or None when its backbone weights are not cached locally."""
    if not os.path.isfile(lpips_backbone_path(net)):
        return None
    import lpips

    return lpips.LPIPS(net=net, pretrained=True, verbose=False).eval()


def ms_ssim_window(height: int, width: int, preferred: int = 11) -> int | None:
    """Largest odd Gaussian window ≤ ``preferred`` that MS-SSIM's 5 scales allow, or None."""
    side = min(height, width)
    win = preferred
    while win >= 3 and side <= (win - 1) * 16:
        win -= 2
    return win if win >= 3 else None


# values allowed outside [0, 1] (resampling round-off); beyond it the video is on another scale
RANGE_TOLERANCE = 1e-3


def _check_pair(pred: torch.Tensor, target: torch.Tensor, sequence: str | None = None) -> None:
    """Shapes (T,3,H,W) alike, finite values in [0, 1]: a NaN would score PSNR = inf and a video in
    [0, 255] or [-1, 1] would score silently wrong numbers."""
    where = "" if sequence is None else f"{sequence}: "
    if pred.ndim != 4 or pred.shape[1] != 3:
        raise ValueError(f"{where}pred: expected shape (T,3,H,W), received {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"{where}target: expected shape {tuple(pred.shape)} like pred, received {tuple(target.shape)}"
        )
    for name, x in (("pred", pred), ("target", target)):
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            frames = (~finite.flatten(1).all(1)).nonzero()[:, 0].tolist()
            raise ValueError(
                f"{where}{name}: expected finite values, received NaN/inf in frames {frames[:10]}"
            )
        low, high = float(x.min()), float(x.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise ValueError(
                f"{where}{name}: expected values in [0, 1], received [{low:.4g}, {high:.4g}] "
                "(convert uint8 with /255, [-1, 1] with (x + 1) / 2)"
            )


def video_pixel_metrics(
    pred: Any, target: Any, lpips_model: torch.nn.Module | None = None, *, sequence: str | None = None
) -> dict[str, Any]:
    """PSNR (dB), SSIM, MS-SSIM and LPIPS of a predicted video against the target.

    pred, target: (T,3,H,W) finite, in [0,1] (else ValueError; ``sequence`` names the video in
    the message). A frame identical to its target scores PSNR = inf. Frame scores are averaged
    over the video. MS-SSIM uses the standard 11-pixel window, shrunk for videos too small for
    5 scales (reported in ``ms_ssim_window``; MS-SSIM is None below 33 pixels). ``lpips`` is
    present only when an LPIPS model is given (see :func:`load_lpips`).
    """
    p = as_tensor(pred, "pred", torch.float32)
    t = as_tensor(target, "target", torch.float32).to(p.device)
    _check_pair(p, t, sequence)
    mse = (p - t).square().flatten(1).mean(1)
    psnr = torch.where(mse > 0, -10 * torch.log10(mse), torch.full_like(mse, math.inf))
    out: dict[str, Any] = {
        "psnr": float(psnr.mean()),
        "ssim": float(ssim(p, t, data_range=1.0, size_average=False).mean()),
    }
    win = ms_ssim_window(*p.shape[-2:])
    out["ms_ssim"] = None if win is None else float(ms_ssim(p, t, data_range=1.0, win_size=win).mean())
    out["ms_ssim_window"] = win
    if lpips_model is not None:
        dev = next(lpips_model.parameters()).device
        with torch.no_grad():
            out["lpips"] = float(lpips_model(p.to(dev) * 2 - 1, t.to(dev) * 2 - 1).mean())
    return out


class VideoPixelMetric(Metric):
    """Mean over videos of PSNR, SSIM, MS-SSIM and (when a model is given) LPIPS.
    ``sequence_stats`` keeps this process's per-video results in update order."""

    full_state_update = False
    KEYS = ("psnr", "ssim", "ms_ssim", "lpips")

    def __init__(self, lpips_model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lpips_model = lpips_model
        for key in self.KEYS:
            self.add_state(f"{key}_sum", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{key}_count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.sequence_stats: list[dict[str, Any]] = []

    def update(self, pred: Any, target: Any, sequence: str | None = None) -> None:  # type: ignore[override]
        """Score one video pair (T,3,H,W) in [0,1]; ``sequence`` names it in error messages."""
        m = video_pixel_metrics(pred, target, self.lpips_model, sequence=sequence)
        for key in self.KEYS:
            if m.get(key) is not None:
                setattr(self, f"{key}_sum", getattr(self, f"{key}_sum") + m[key])
                setattr(self, f"{key}_count", getattr(self, f"{key}_count") + 1)
        self.sequence_stats.append({key: m.get(key) for key in self.KEYS})

    def reset(self) -> None:
        super().reset()
        self.sequence_stats = []

    def compute(self) -> dict[str, float | None]:
        return {
            key: (
                float(getattr(self, f"{key}_sum") / getattr(self, f"{key}_count"))
                if getattr(self, f"{key}_count") > 0
                else None
            )
            for key in self.KEYS
        }
