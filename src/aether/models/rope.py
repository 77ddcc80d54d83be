"""fps-aware 3D rotary position embeddings for CogVideoX transformers.

AetherV1 keeps the CogVideoX 1.0 scheme (spatial positions on a ``linspace`` grid
cropped to the base resolution ``sample_h/w // patch``) and multiplies the
temporal positions by ``base_fps / fps`` (base 12), so a clip at 24 fps advances
half as fast in RoPE time as one at 12 fps.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import get_1d_rotary_pos_embed

BASE_FPS = 12.0


def resize_crop_region_for_grid(
    grid: tuple[int, int], base_width: int, base_height: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Top-left and bottom-right of a ``grid`` (h, w) fitted inside the base grid (CogVideoX 1.0)."""
    height, width = grid
    if height / width > base_height / base_width:
        resize_height = base_height
        resize_width = int(round(base_height / height * width))
    else:
        resize_width = base_width
        resize_height = int(round(base_width / width * height))
    top = int(round((base_height - resize_height) / 2.0))
    left = int(round((base_width - resize_width) / 2.0))
    return (top, left), (top + resize_height, left + resize_width)


def rotary_embedding_3d(
    head_dim: int,
    num_frames: int,
    grid_height: int,
    grid_width: int,
    base_height: int,
    base_width: int,
    fps: float = BASE_FPS,
    *,
    base_fps: float = BASE_FPS,
    theta: float = 10000.0,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real-valued 3D RoPE (cos, sin), each ``(num_frames * grid_height * grid_width, head_dim)`` float32.

    Args:
        head_dim: attention head dimension (split t : h : w = 1/4 : 3/8 : 3/8).
        num_frames: latent frames F.
        grid_height, grid_width: token grid (latent h, w divided by the patch size).
        base_height, base_width: the model's base token grid (``sample_height // patch`` ...).
        fps: frames per second of the clip; temporal positions are scaled by ``base_fps / fps``.
        base_fps: the frame rate at which temporal positions advance by one per latent frame (12 for
            AetherV1; a model's spec records its own).
    """
    if fps <= 0 or base_fps <= 0:
        raise ValueError(f"fps and base_fps must be positive, got fps={fps}, base_fps={base_fps}")
    (top, left), (bottom, right) = resize_crop_region_for_grid(
        (grid_height, grid_width), base_width, base_height
    )
    f32 = torch.float32
    grid_h = torch.linspace(
        top, bottom * (grid_height - 1) / grid_height, grid_height, device=device, dtype=f32
    )
    grid_w = torch.linspace(left, right * (grid_width - 1) / grid_width, grid_width, device=device, dtype=f32)
    grid_t = torch.linspace(
        0, num_frames * (num_frames - 1) / num_frames, num_frames, device=device, dtype=f32
    )
    grid_t = grid_t * (base_fps / fps)

    dim_t, dim_hw = head_dim // 4, head_dim // 8 * 3
    t_cos, t_sin = get_1d_rotary_pos_embed(dim_t, grid_t, theta=theta, use_real=True)
    h_cos, h_sin = get_1d_rotary_pos_embed(dim_hw, grid_h, theta=theta, use_real=True)
    w_cos, w_sin = get_1d_rotary_pos_embed(dim_hw, grid_w, theta=theta, use_real=True)

    def combine(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        shape = (num_frames, grid_height, grid_width)
        parts = [
            t[:, None, None, :].expand(*shape, -1),
            h[None, :, None, :].expand(*shape, -1),
            w[None, None, :, :].expand(*shape, -1),
        ]
        return torch.cat(parts, dim=-1).reshape(num_frames * grid_height * grid_width, -1)

    return combine(t_cos, h_cos, w_cos), combine(t_sin, h_sin, w_sin)
