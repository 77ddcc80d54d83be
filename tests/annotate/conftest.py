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


@pytest.fixture
def render():
    """``render(trajectory, seed=0, frames=21, blackout=False)`` -> SyntheticClip (96x128), cached."""
    return synthetic


@pytest.fixture
def to_input():
    """``to_input(clip, name)`` -> ClipInput with the generator's dynamic masks and ground truth."""
    return ClipInput.from_synthetic
