"""Random task mix for training: which conditions each sample of a batch keeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .condition import ColorMode, compose_condition

PAPER_PROBABILITIES = {"observation_goal": 0.30, "observation": 0.40, "video": 0.28, "none": 0.02}


class TaskSampler:
    """Draws, for a whole batch at once, the color condition mode and whether the action is kept.

    The paper's mix: color condition observation + goal 30% (planning), observation only 40%
    (prediction), the full video 28% (reconstruction), nothing 2%; the raymap (action) condition
    kept or masked with probability ``action_keep`` = 0.5, independently.

    Args:
        probabilities: the four color-mode probabilities, in ``ColorMode`` order or as a mapping
            with keys "observation_goal", "observation", "video", "none" (missing keys are 0).
        action_keep: probability of keeping the action.
        seed: seed of the sampler's own CPU generator, used when ``sample`` gets none; its state
            is in ``state_dict`` so sampling resumes exactly.
        raymap_channels: raymap condition channels (24 for AetherV1).
        context_probabilities: how many leading latent frames the prediction and planning samples are
            given as colour, ``{k: probability}`` (default ``{1: 1.0}``: the observation alone, the
            paper's; e.g. ``{1: 0.5, 2: 0.5}`` also trains continuing a rollout from its last frames).
    """

    def __init__(
        self,
        probabilities: Sequence[float] | Mapping[str, float] = tuple(PAPER_PROBABILITIES.values()),
        action_keep: float = 0.5,
        seed: int | None = None,
        raymap_channels: int = 24,
        context_probabilities: Mapping[int, float] | None = None,
    ) -> None:
        if isinstance(probabilities, Mapping):
            unknown = sorted(set(probabilities) - set(PAPER_PROBABILITIES))
            if unknown:
                raise ValueError(f"expected probability keys in {list(PAPER_PROBABILITIES)}, got {unknown}")
            probabilities = [float(probabilities.get(k, 0.0)) for k in PAPER_PROBABILITIES]
        probs = torch.as_tensor([float(p) for p in probabilities], dtype=torch.float64)
        if probs.shape != (len(ColorMode),) or not torch.isfinite(probs).all() or (probs < 0).any():
            raise ValueError(
                f"expected {len(ColorMode)} non-negative probabilities, got {list(probabilities)}"
            )
        if abs(probs.sum().item() - 1.0) > 1e-6:
            raise ValueError(f"expected probabilities summing to 1, got sum {probs.sum().item():.6g}")
        if not 0.0 <= action_keep <= 1.0:
            raise ValueError(f"expected action_keep in [0, 1], got {action_keep!r}")
        self.probabilities = probs / probs.sum()
        self.action_keep = float(action_keep)
        self.raymap_channels = raymap_channels
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.context_counts, self.context_probabilities = _context_distribution(context_probabilities)

    @property
    def max_context_frames(self) -> int:
        """The largest number of context latent frames drawn."""
        return int(self.context_counts.max())

    def sample_context(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """(B,) long: the number of context latent frames of each sample (all 1, without a draw, when
        the distribution is ``{1: 1.0}``, so that the other draws are unchanged)."""
        if self.max_context_frames == 1:
            return torch.ones(int(batch_size), dtype=torch.long, device=device)
        generator = generator if generator is not None else self.generator
        draw_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(int(batch_size), generator=generator, dtype=torch.float64, device=draw_device)
        edges = self.context_probabilities.to(draw_device).cumsum(0)
        pick = torch.searchsorted(edges, u.contiguous(), right=True).clamp_max(len(edges) - 1)
        return self.context_counts.to(draw_device)[pick].to(device or draw_device)

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``batch_size`` tasks.

        Returns:
            color_mode (B,) long ``ColorMode`` values and keep_action (B,) bool, on ``device``.
        """
        if int(batch_size) != batch_size or batch_size < 0:
            raise ValueError(f"expected a non-negative integer batch_size, got {batch_size!r}")
        generator = generator if generator is not None else self.generator
        draw_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(int(batch_size), 2, generator=generator, dtype=torch.float64, device=draw_device)
        edges = self.probabilities.to(draw_device).cumsum(0)
        color_mode = torch.searchsorted(edges, u[:, 0].contiguous(), right=True).clamp_max(len(ColorMode) - 1)
        keep_action = u[:, 1] < self.action_keep
        return color_mode.to(device or draw_device), keep_action.to(device or draw_device)

    def build_condition(
        self,
        color_mode: Tensor,
        keep_action: Tensor,
        video_latents: Tensor,
        observation: Tensor | None = None,
        goal: Tensor | None = None,
        raymap: Tensor | None = None,
        context_frames: Tensor | None = None,
    ) -> Tensor:
        """Condition latents (B,F,Cc+Cr,h,w) for the drawn tasks (see ``compose_condition``).

        Args:
            video_latents: (B,F,Cc,h,w) color latents of the clips.
            observation: (B,1,Cc,h,w) latents of the observation image encoded alone; None uses the
                first latent frame of ``video_latents``.
            goal: (B,1,Cc,h,w) latents of the goal image encoded alone; None uses the last latent
                frame of ``video_latents``.
            raymap: (B,F,Cr,h,w) raymap latents, or None.
            context_frames: (B,) context latent frames (from :meth:`sample_context`), or None (1).
        """
        if context_frames is not None:
            context_frames = context_frames.clamp_max(video_latents.shape[1] - 1).clamp_min(1)
        return compose_condition(
            color_mode,
            keep_action,
            video=video_latents,
            observation=observation,
            goal=goal,
            raymap=raymap,
            raymap_channels=self.raymap_channels,
            context_frames=context_frames,
        )

    def state_dict(self) -> dict[str, Any]:
        """The sampler's generator state (None without a generator of its own)."""
        return {"generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the generator state saved by ``state_dict``."""
        saved = state.get("generator")
        if saved is None:
            self.generator = None
            return
        if self.generator is None:
            self.generator = torch.Generator()
        self.generator.set_state(saved)


def _context_distribution(probabilities: Mapping[int, float] | None) -> tuple[Tensor, Tensor]:
    """(counts, probabilities) of the context latent frames, checked."""
    probabilities = {1: 1.0} if not probabilities else dict(probabilities)
    counts = list(probabilities)
    # keys read back from a recipe or a checkpoint's saved hyper-parameters may be digit strings
    keys = [int(k) if isinstance(k, str) and k.strip().isdigit() else k for k in counts]
    if any(isinstance(k, bool) or not isinstance(k, int | float) or int(k) != k or k < 1 for k in keys):
        raise ValueError(f"expected context_probabilities keys >= 1 (latent frames), got {counts}")
    counts = [int(k) for k in keys]
    probs = torch.as_tensor([float(p) for p in probabilities.values()], dtype=torch.float64)
    if not torch.isfinite(probs).all() or (probs < 0).any() or abs(probs.sum().item() - 1.0) > 1e-6:
        raise ValueError(
            f"expected non-negative context_probabilities summing to 1, got {list(probabilities.values())}"
        )
    return torch.as_tensor([int(k) for k in counts]), probs / probs.sum()
