"""A one-clip training batch of the synthetic world, shared by the plug-in tests."""

from __future__ import annotations

import torch

from aether.data.synthetic import render_clip
from aether.geometry import relative_poses


def synthetic_batch(seed: int = 0, num_frames: int = 17, height: int = 48, width: int = 64) -> dict:
    """A batch of one rendered clip as the DataModule gives it: video (1,T,3,H,W) in [-1, 1], depth and
    valid (1,T,H,W), K (1,T,3,3), c2w (1,T,4,4) relative to the first frame, fps (1,)."""
    clip = render_clip(seed, num_frames=num_frames, height=height, width=width)
    depth = torch.from_numpy(clip.depth)[None].float()
    return {
        "video": torch.from_numpy(clip.rgb)[None].float().div(127.5).sub(1).permute(0, 1, 4, 2, 3),
        "depth": depth,
        "valid": depth > 0,
        "K": torch.from_numpy(clip.K)[None].float(),
        "c2w": relative_poses(torch.from_numpy(clip.c2w)[None].float()),
        "fps": torch.tensor([float(clip.fps)]),
    }
