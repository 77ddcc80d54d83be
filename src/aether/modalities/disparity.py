"""Depth as a VAE-encodable video: AetherV1's normalised, square-rooted disparity."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from aether.geometry.depth import (
    MIN_DISPARITY,
    check_dmax_values,
    depth_to_disparity,
    disparity_to_depth,
    disparity_validity,
)

from . import losses
from .base import MODALITIES, LatentBackend, ModalityCodec
from .validation import check_clip_frames


def valid_depth_mask(depth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Bool mask (B,T,H,W) of usable depth pixels.

    Without ``valid`` a pixel is usable when its depth is finite and > 0. With ``valid``, the
    pixels it marks must hold finite depth > 0 (ValueError otherwise) and the mask is ``valid``.
    """
    if not isinstance(depth, Tensor) or depth.ndim != 4 or not depth.is_floating_point():
        shape = tuple(depth.shape) if isinstance(depth, Tensor) else type(depth).__name__
        raise ValueError(f"expected depth as a float tensor (B,T,H,W), got {shape}")
    usable = (depth > 0) & (depth < torch.inf)  # NaN fails both
    if valid is None:
        return usable
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.shape != depth.shape:
        got = (valid.dtype, tuple(valid.shape)) if isinstance(valid, Tensor) else type(valid).__name__
        raise ValueError(f"expected valid as a bool tensor of shape {tuple(depth.shape)}, got {got}")
    bad = valid & ~usable
    if bad.any():
        raise ValueError(
            f"expected finite depth > 0 at every valid pixel, got {int(bad.sum())} valid pixels with "
            "non-finite or non-positive depth"
        )
    return valid


def _masked_depth(depth: Tensor, mask: Tensor) -> Tensor:
    """Depth with +inf at masked-out pixels (zero disparity)."""
    return torch.where(mask, depth, torch.inf)


def _dmax_of(masked: Tensor) -> Tensor:
    """(B,) max disparity 1/min(depth) of (B,T,H,W) depth with +inf at invalid pixels."""
    nearest = masked.flatten(1).amin(dim=1)
    empty = torch.isinf(nearest)
    if empty.any():
        raise ValueError(
            "expected at least one valid depth pixel per clip, got none in clip(s) "
            f"{empty.nonzero().flatten().tolist()}"
        )
    return nearest.reciprocal()


def clip_dmax(depth: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-clip maximum disparity: max of 1/depth over the valid pixels.

    Args:
        depth: (B,T,H,W) depth, invalid pixels 0 or non-finite.
        valid: optional bool (B,T,H,W); default: finite depth > 0.

    Returns:
        dmax (B,) in depth's dtype. ValueError when a clip has no valid pixel.
    """
    return _dmax_of(_masked_depth(depth, valid_depth_mask(depth, valid)))


def check_dmax(dmax: object, batch_size: int, like: Tensor) -> Tensor:
    """A (B,) tensor of finite positive ``dmax`` values from a number or tensor; ValueError otherwise."""
    value = torch.as_tensor(dmax, dtype=like.dtype if like.is_floating_point() else torch.float32)
    value = value.to(like.device)
    if value.ndim == 0:
        value = value.expand(batch_size)
    if value.shape != (batch_size,):
        raise ValueError(
            f"expected dmax as a number or a ({batch_size},) tensor, got shape {tuple(value.shape)}"
        )
    return check_dmax_values(value)


def resolve_dmax(clip: Mapping[str, object], batch_size: int, like: Tensor) -> Tensor | None:
    """The clip's dmax (B,): clip["dmax"] when given, else computed from "depth"/"valid", else None."""
    if clip.get("dmax") is not None:
        return check_dmax(clip["dmax"], batch_size, like)
    depth = clip.get("depth")
    if isinstance(depth, Tensor):
        return clip_dmax(depth, clip.get("valid"))  # type: ignore[arg-type]
    return None


def _normalized(masked: Tensor, dmax: Tensor) -> Tensor:
    """sqrt(clip(1/(depth·dmax), 0, 1))·2 − 1 of depth with +inf at invalid pixels (-> −1 there)."""
    ratio = (masked * dmax.to(masked)[:, None, None, None]).reciprocal()
    return ratio.clamp(max=1.0).sqrt() * 2.0 - 1.0


def normalize_disparity(depth: Tensor, mask: Tensor, dmax: Tensor) -> Tensor:
    """AetherV1 normalisation: x = sqrt(clip((1/depth)/dmax, 0, 1))·2 − 1 on valid pixels.

    Invalid pixels get −1 (zero disparity, as if infinitely far).

    Args:
        depth: (B,T,H,W); mask: bool (B,T,H,W); dmax: (B,).

    Returns:
        (B,T,H,W) in [-1, 1].
    """
    return _normalized(_masked_depth(depth, mask), dmax)


def denormalize_disparity(x: Tensor) -> Tensor:
    """Inverse map ((x + 1) / 2)², the disparity divided by dmax (not clamped, as upstream)."""
    return ((x + 1.0) / 2.0).square()


@MODALITIES.register("disparity")
class DisparityCodec(ModalityCodec):
    """Depth ↔ latents through the AetherV1 disparity normalisation and the latent backend.

    Encoding: d = 1/depth on valid pixels, dmax per clip (clip["dmax"] when given, else
    :func:`clip_dmax`), x = sqrt(clip(d/dmax, 0, 1))·2 − 1, invalid pixels −1, replicated to 3
    channels and encoded by the backend.

    Decoding: mean over the 3 decoded channels, ((x + 1)/2)², times dmax when known. Pixels whose
    decoded value ``(x + 1)/2`` is below ``sqrt(min_disparity)`` (or that clip["valid"] marks
    invalid) are invalid: disparity 0 and depth 0 there.

    Sampled clips decode into ``disparity`` and ``valid``; its stage-2 loss is the scale-and-shift-
    invariant loss on the normalised disparity (``depth``, gradient term weighted by
    ``gradient_alpha``).

    Args:
        backend: latent backend.
        min_disparity: smallest normalised disparity decoded as valid depth (the shared floor
            :data:`aether.geometry.depth.MIN_DISPARITY` by default).
    """

    name = "disparity"
    inputs = ("depth",)
    optional_inputs = ("valid", "dmax")
    outputs = ("disparity", "valid")
    stage2_options = {"depth": 1.0, "gradient_alpha": 0.5}

    def __init__(self, backend: LatentBackend, min_disparity: float = MIN_DISPARITY) -> None:
        super().__init__(backend)
        if not min_disparity > 0:
            raise ValueError(f"expected min_disparity > 0, got {min_disparity!r}")
        self.min_disparity = float(min_disparity)

    @property
    def channels(self) -> int:
        return self.backend.latent_channels

    def normalize(self, clip: Mapping[str, object]) -> tuple[Tensor, Tensor, Tensor]:
        """The normalised disparity (B,T,H,W) in [-1, 1], the valid mask (B,T,H,W) and dmax (B,)."""
        keys = ["depth", "valid"] if clip.get("valid") is not None else ["depth"]
        batch_size, _ = check_clip_frames(clip, keys)
        depth: Tensor = clip["depth"]  # type: ignore[assignment]
        mask = valid_depth_mask(depth, clip.get("valid"))  # type: ignore[arg-type]
        dmax = resolve_dmax(clip, batch_size, depth)
        return _normalized(_masked_depth(depth, mask), dmax), mask, dmax

    def target_disparity(self, clip: Mapping[str, object]) -> tuple[Tensor, Tensor]:
        """The true disparity divided by dmax (B,T,H,W), 0 at invalid pixels, and the valid mask
        (B,T,H,W): what a decoded disparity is compared with in training."""
        keys = ["depth", "valid"] if clip.get("valid") is not None else ["depth"]
        batch_size, _ = check_clip_frames(clip, keys)
        depth: Tensor = clip["depth"]  # type: ignore[assignment]
        mask = valid_depth_mask(depth, clip.get("valid"))  # type: ignore[arg-type]
        dmax = resolve_dmax(clip, batch_size, depth)
        return depth_to_disparity(depth, mask) / dmax[:, None, None, None], mask

    def encode_with_dmax(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Latents (B,F,C,h,w) and the dmax (B,) used to normalise."""
        x, _, dmax = self.normalize(clip)
        video = x.unsqueeze(2).expand(-1, -1, 3, -1, -1)
        return self.backend.encode(video, sample=sample, generator=generator), dmax

    def encode(
        self,
        clip: Mapping[str, object],
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Latents (B,F,C,h,w) of clip["depth"] (with "valid" and "dmax" when present)."""
        return self.encode_with_dmax(clip, sample=sample, generator=generator)[0]

    def decode(self, latents: Tensor, clip: Mapping[str, object] | None = None) -> dict[str, Tensor]:
        """Latents (B,F,C,h,w) -> {"disparity", "valid"} and "depth" when dmax is known, all (B,T,H,W).

        "disparity" is the normalised disparity in [0, 1], times dmax when clip["dmax"] is given
        (then "depth" = 1/disparity); invalid pixels hold 0.
        """
        clip = clip or {}
        x = self.backend.decode(latents).float().mean(dim=2)
        valid = x >= 2.0 * self.min_disparity**0.5 - 1.0  # (x + 1) / 2 >= sqrt(min_disparity)
        if isinstance(clip.get("valid"), Tensor):
            if clip["valid"].shape != valid.shape:  # type: ignore[union-attr]
                raise ValueError(
                    f"expected clip['valid'] of shape {tuple(valid.shape)}, got {tuple(clip['valid'].shape)}"  # type: ignore[union-attr]
                )
            valid = valid & clip["valid"].to(valid.device)  # type: ignore[union-attr]
        # out of place throughout: decoded disparity is differentiated in training
        disparity = torch.where(valid, denormalize_disparity(x), 0.0)
        out = {"valid": valid}
        if clip.get("dmax") is not None:
            dmax = check_dmax(clip["dmax"], x.shape[0], x)
            disparity = disparity * dmax[:, None, None, None]
            out["depth"] = torch.where(valid, disparity_to_depth(disparity, floor=0.0)[0], 0.0)
        out["disparity"] = disparity
        return out

    def sample_outputs(
        self, latents: Tensor, side: Mapping[str, object], num_frames: int, *, reference: bool = False
    ) -> dict[str, Tensor]:
        """{"disparity", "valid"} (B,T,H,W): the normalised disparity (float32) and where it is at or
        above the floor. ``reference``: (mean_c(x)·0.5 + 0.5)² of the backend's reference decode,
        not clamped (invalid pixels keep their values)."""
        if reference:
            d = self.backend.reference_decode(latents).mean(dim=2)
            disparity = torch.square(d * 0.5 + 0.5).float()
            return {"disparity": disparity, "valid": disparity_validity(disparity, self.min_disparity)}
        decoded = self.decode(latents.float(), side)
        return {"disparity": decoded["disparity"].float(), "valid": decoded["valid"]}

    def stage2_losses(self, pred: Tensor, true: Tensor, batch: losses.Stage2Batch) -> dict[str, Tensor]:
        """{"depth": (B,) SSI loss} of the decoded normalised disparity against the true one; leaves
        "disparity", "true_disparity", "valid" and "min_disparity" in ``batch.shared``."""
        side = {"video": batch.clip["video"]}  # frame count and size, no dmax: normalised outputs
        disparity = self.decode(pred, side)["disparity"]
        true_disparity, valid = self.target_disparity(batch.clip)
        batch.shared.update(
            disparity=disparity, true_disparity=true_disparity, valid=valid, min_disparity=self.min_disparity
        )
        alpha = batch.options["gradient_alpha"]
        return {"depth": losses.ssi_loss(disparity, true_disparity, valid, alpha=alpha)}
