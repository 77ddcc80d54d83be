"""Several modality codecs side by side along the latent channel axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .base import LATENT_BACKENDS, MODALITIES, LatentBackend, ModalityCodec
from .validation import FRAME_KEYS, check_clip_frames, check_latents

AETHERV1_TARGET = ("color", "disparity", "raymap")
AETHERV1_CONDITION = ("color", "raymap")


class ModalityStack(nn.Module):
    """Codecs concatenated in order along the channel axis of (B,F,C,h,w) latents.

    AetherV1 (CogVideoX backend): target ["color", "disparity", "raymap"] = 16 + 16 + 24 = 56
    channels, condition ["color", "raymap"] = 16 + 24 = 40.

    Args:
        names: modality names (registry ``MODALITIES``), in channel order.
        backend: the shared latent backend, or a ``LATENT_BACKENDS`` name built with defaults.
        options: per-modality constructor keyword arguments, e.g. {"raymap": {"layout": "consecutive"}}.
    """

    def __init__(
        self,
        names: Sequence[str],
        backend: LatentBackend | str,
        options: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        super().__init__()
        names = [names] if isinstance(names, str) else list(names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"expected a non-empty list of distinct modality names, got {names}")
        options = dict(options or {})
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ValueError(f"expected options only for the stacked modalities {names}, got {unknown}")
        if isinstance(backend, str):
            backend = LATENT_BACKENDS.build(backend)
        self.backend = backend
        self.codecs: Mapping[str, ModalityCodec] = nn.ModuleDict(
            {name: MODALITIES.build(name, backend=backend, **options.get(name, {})) for name in names}
        )
        self.slices: dict[str, slice] = {}
        start = 0
        for name, codec in self.codecs.items():
            self.slices[name] = slice(start, start + codec.channels)
            start += codec.channels
        self.channels = start
        self._reads = {k for codec in self.codecs.values() for k in (*codec.inputs, *codec.optional_inputs)}

    @property
    def names(self) -> list[str]:
        return list(self.codecs)

    @property
    def frames(self) -> str | None:
        """The name of the codec whose ``condition_role`` is "frames" (colour), if any."""
        return next((n for n, c in self.codecs.items() if c.condition_role == "frames"), None)

    @property
    def signals(self) -> list[str]:
        """The other codecs' names in channel order: as a condition, the action and the signals,
        given or zeroed together after the frames' channels."""
        return [n for n, c in self.codecs.items() if c.condition_role != "frames"]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Clip keys the stacked codecs require."""
        return tuple(dict.fromkeys(k for codec in self.codecs.values() for k in codec.inputs))

    def prepare(self, clip: Mapping[str, object]) -> dict[str, object]:
        """A shallow copy of ``clip`` with its :class:`ClipGeometry` resolved once (clip["geometry"])
        and "dmax" filled in from it, so that every codec normalises with the same value."""
        from .clip import ClipGeometry

        clip = dict(clip)
        if not any(isinstance(clip.get(k), Tensor) for k in FRAME_KEYS):
            return clip
        geometry = ClipGeometry.of(clip)
        clip["geometry"] = geometry
        if clip.get("dmax") is None and geometry.dmax is not None:
            clip["dmax"] = geometry.dmax
        return clip

    def encode(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Latents (B,F,channels,h,w) in ``dtype`` (default: the backend's dtype).

        Posterior samples (``sample=True``) are drawn from ``generator`` codec by codec, in order.
        """
        frame_keys = [k for k in FRAME_KEYS if k in clip and k in self._reads]
        if frame_keys:
            check_clip_frames(clip, frame_keys)
        clip = self.prepare(clip)
        parts = [codec.encode(clip, sample=sample, generator=generator) for codec in self.codecs.values()]
        ref = parts[0].shape
        for name, part in zip(self.codecs, parts):
            if (part.shape[:2], part.shape[3:]) != (ref[:2], ref[3:]):
                raise ValueError(
                    f"expected every modality's latents to share (B,F,h,w)={(*ref[:2], *ref[3:])}, "
                    f"got {(*part.shape[:2], *part.shape[3:])} for {name!r}"
                )
        dtype = dtype or self.backend.dtype
        return torch.cat([part.to(dtype) for part in parts], dim=2)

    def split(self, latents: Tensor) -> dict[str, Tensor]:
        """{name: latents[:, :, slice]} for (B,F,channels,h,w) latents."""
        check_latents(latents, self.channels)
        return {name: latents[:, :, sl] for name, sl in self.slices.items()}

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        """Decode every modality of (B,F,channels,h,w) latents; the codecs' outputs merged."""
        out: dict[str, Tensor] = {}
        for name, part in self.split(latents).items():
            out.update(self.codecs[name].decode(part, clip))
        return out
