"""Training losses: the latent diffusion objective.

Stage 1 is the latent diffusion objective whose target follows the scheduler's
``prediction_type`` (v-prediction for the CogVideoX base, ε or sample also
supported). Stage 2 (paper appendix D) decodes the predicted clean latents; each target
codec owns its decoded-space loss (:meth:`aether.modalities.ModalityCodec.stage2_losses`,
built on :mod:`aether.modalities.losses`).
"""

from __future__ import annotations

import torch
from torch import Tensor

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def _alpha_sigma(
    alphas_cumprod: Tensor, timesteps: Tensor, ndim: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """sqrt(ᾱ_t) and sqrt(1 − ᾱ_t), shaped (B, 1, …) to broadcast over ``ndim`` dims."""
    a = alphas_cumprod.to(device=timesteps.device)[timesteps.long()].to(torch.float32)
    shape = (-1,) + (1,) * (ndim - 1)
    return a.sqrt().reshape(shape).to(dtype), (1.0 - a).sqrt().reshape(shape).to(dtype)


def _check_prediction_type(prediction_type: str) -> None:
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")


def add_noise(alphas_cumprod: Tensor, latents: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
    """Forward process z_t = sqrt(ᾱ_t)·z_0 + sqrt(1 − ᾱ_t)·ε.

    Args:
        alphas_cumprod: (N,) the scheduler's cumulative alphas.
        latents: (B, …) clean latents.
        noise: (B, …) standard normal noise.
        timesteps: (B,) integer timesteps in [0, N).
    """
    a, s = _alpha_sigma(alphas_cumprod, timesteps, latents.ndim, latents.dtype)
    return a * latents + s * noise


def diffusion_target(
    prediction_type: str, alphas_cumprod: Tensor, latents: Tensor, noise: Tensor, timesteps: Tensor
) -> Tensor:
    """What the network regresses: ε, v = sqrt(ᾱ)·ε − sqrt(1 − ᾱ)·z_0, or z_0 itself.

    MSE on v equals the CogVideoX fine-tuning loss ``(1 − ᾱ)⁻¹·‖ẑ_0 − z_0‖²``.
    """
    _check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return latents
    a, s = _alpha_sigma(alphas_cumprod, timesteps, latents.ndim, latents.dtype)
    return a * noise - s * latents


def predicted_clean_latents(
    prediction_type: str, alphas_cumprod: Tensor, noisy: Tensor, model_output: Tensor, timesteps: Tensor
) -> Tensor:
    """ẑ_0 from the network output, the inverse of :func:`diffusion_target` given z_t."""
    _check_prediction_type(prediction_type)
    if prediction_type == "sample":
        return model_output
    a, s = _alpha_sigma(alphas_cumprod, timesteps, noisy.ndim, noisy.dtype)
    if prediction_type == "v_prediction":
        return a * noisy - s * model_output
    return (noisy - s * model_output) / a.clamp_min(1e-4)


def channel_mse(pred: Tensor, target: Tensor, slices: dict[str, slice]) -> dict[str, Tensor]:
    """Per-sample MSE of each channel group.

    Args:
        pred: (B, F, C, h, w).
        target: (B, F, C, h, w).
        slices: name → channel slice (e.g. ``ModalityStack.slices``).

    Returns:
        name → (B,) mean squared error over that group's channels.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    err = (pred.float() - target.float()).square()
    return {name: err[:, :, sl].flatten(1).mean(1) for name, sl in slices.items()}
