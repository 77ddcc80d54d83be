"""Rendered synthetic clips shared by the annotation tests (rendered once per session)."""

from functools import cache

import pytest

from aether.annotate import ClipInput
from aether.data.synthetic import SyntheticClip, render_clip


@cache
def synthetic(trajectory: str, seed: int = 0, frames: int = 21, blackout: bool = False) -> SyntheticClip:
    return render_clip(
        seed, num_frames=frames, height=96, width=128, trajectory=trajectory, blackout=blackout
    )


def as_input(clip: SyntheticClip, name: str = "clip") -> ClipInput:
    return ClipInput(
        name=name,
        rgb=clip.rgb,
        depth=clip.depth,
        K=clip.K,
        fps=clip.fps,
        extras={"dynamic": clip.dynamic},
        gt_c2w=clip.c2w,
    )


@pytest.fixture
def render():
    """``render(trajectory, seed=0, frames=21, blackout=False)`` -> SyntheticClip (96x128), cached."""
    return synthetic


@pytest.fixture
def to_input():
    """``to_input(clip, name)`` -> ClipInput with the generator's dynamic masks and ground truth."""
    return as_input
