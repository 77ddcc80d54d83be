"""Test helpers for the modality tests."""

from __future__ import annotations

import math

import torch


def smooth_video(batch: int, frames: int, height: int, width: int) -> torch.Tensor:
    """A smooth moving colour pattern (B,T,3,H,W) in [-0.8, 0.8]."""
    t = torch.arange(frames, dtype=torch.float32)[:, None, None, None]
    c = torch.arange(3, dtype=torch.float32)[None, :, None, None]
    y = torch.arange(height, dtype=torch.float32)[None, None, :, None] / height
    x = torch.arange(width, dtype=torch.float32)[None, None, None, :] / width
    video = 0.5 * torch.sin(2 * math.pi * (0.7 * x + 0.5 * y + 0.02 * t) + c) + 0.3 * torch.cos(
        2 * math.pi * (0.8 * y - 0.01 * t) + 2 * c
    )
    phase = torch.arange(batch, dtype=torch.float32)[:, None, None, None, None] * 0.1
    return (video[None] + phase).clamp(-0.8, 0.8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of signals in [-1, 1] (peak-to-peak 2)."""
    mse = (a.double() - b.double()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
