"""Procedural solid textures of the synthetic world: value noise, checkers, stripes, gradients."""

from __future__ import annotations

import math

import torch

from aether.data.synthetic.raycast import Scene

# texture patterns
NOISE, CHECKER, STRIPES, GRADIENT = 0, 1, 2, 3


def _hash(ix: torch.Tensor, iy: torch.Tensor, iz: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    h = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791) ^ (seed * 2654435761)
    h = h & 0x7FFFFFFF
    h = ((h >> 13) ^ h) * 1274126177 & 0x7FFFFFFF
    h = ((h >> 16) ^ h) * 668265263 & 0x7FFFFFFF
    return (h & 0xFFFF).to(torch.float32) / 65535.0


def value_noise(p: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Smooth lattice value noise in [0,1] at points p (M,3) with per-point seeds (M,) long."""
    base = torch.floor(p)
    f = p - base
    f = f * f * (3 - 2 * f)
    i = base.long()
    out = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
    for corner in range(8):
        ox, oy, oz = corner & 1, (corner >> 1) & 1, (corner >> 2) & 1
        w = (
            (f[:, 0] if ox else 1 - f[:, 0])
            * (f[:, 1] if oy else 1 - f[:, 1])
            * (f[:, 2] if oz else 1 - f[:, 2])
        )
        out = out + w * _hash(i[:, 0] + ox, i[:, 1] + oy, i[:, 2] + oz, seed).to(p.dtype)
    return out


def _fbm(p: torch.Tensor, seed: torch.Tensor, octaves: int = 3) -> torch.Tensor:
    total, amp, norm = torch.zeros_like(p[:, 0]), 1.0, 0.0
    for octave in range(octaves):
        total = total + amp * value_noise(p * (2.0**octave), seed + octave)
        norm += amp
        amp *= 0.5
    return total / norm


def _face_id(normal: torch.Tensor) -> torch.Tensor:
    """Index 0..5 of the dominant signed axis of local normals (M,3), so box faces differ."""
    axis = normal.abs().argmax(-1)
    positive = normal.gather(1, axis[:, None])[:, 0] > 0
    return axis + 3 * positive.long()


def _albedo(scene: Scene, index: torch.Tensor, local: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Texture colour (M,3) in [0,1] at local surface points (M,3) of primitives ``index``."""
    scale = scene.scale[index][:, None]
    seed = scene.tex_seed[index] + 7919 * face
    pattern = (scene.pattern[index] + face) % 4
    q = local / scale
    noise = _fbm(q, seed)
    checker = ((torch.floor(q).long().sum(-1) % 2) == 0).to(q.dtype)
    stripes = (torch.sin(2 * math.pi * (q[:, 0] + 0.6 * q[:, 1] + 0.3 * q[:, 2])) > 0).to(q.dtype)
    gradient = torch.frac(0.25 * (q[:, 2] + q[:, 0]))
    mix = torch.where(pattern == NOISE, noise, checker)
    mix = torch.where(pattern == STRIPES, stripes, mix)
    mix = torch.where(pattern == GRADIENT, gradient, mix)
    mix = (0.8 * mix + 0.2 * noise).clamp(0, 1)
    detail = _fbm(local * 9.0, seed + 101, octaves=2)
    color = scene.color_a[index] * (1 - mix[:, None]) + scene.color_b[index] * mix[:, None]
    return color * (0.65 + 0.55 * detail[:, None])
