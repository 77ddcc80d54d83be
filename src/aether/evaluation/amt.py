"""AMT-S frame interpolation (Li et al., CVPR 2023, "AMT: All-Pairs Multi-Field Transforms").

VBench's motion smoothness re-interpolates every dropped odd frame from its even neighbours
with AMT-S. This module implements the AMT-S network with the parameter names and shapes of the
released ``amt-s.pth`` (a ``{"state_dict": ...}`` checkpoint, found at
``$VBENCH_CACHE_DIR/amt_model/amt-s.pth``), so the file loads strictly, and VBench's
preprocessing around it (replicate padding to a multiple of 16, interpolation time 0.5).

Architecture, coarse to fine. A context encoder (bottleneck residual blocks, instance norm)
maps both frames to 84-channel features at 1/8 resolution; their all-pairs correlation volume,
average-pooled into 4 levels, is looked up in both directions in a (2·3+1)² window. A 4-level
pyramid encoder (20, 32, 44, 56 channels at 1/2 … 1/16) feeds three decoders that predict the
bidirectional flows from the intermediate time to each frame plus an intermediate feature; after
each of them a small update block refines flows and feature from correlations looked up at the
positions the flows point to (scaled to frame-to-frame motion under a linear-motion assumption).
The last decoder predicts 3 flow pairs at full resolution with blending masks and residuals;
the 3 warped-and-blended candidates are averaged and corrected by a small convolution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CORR_RADIUS = 3
CORR_LEVELS = 4
NUM_FLOWS = 3
CHANNELS = (20, 32, 44, 56)
SKIP_CHANNELS = 20
CONTEXT_CHANNELS = 84
PAD_DIVISOR = 16


# ----------------------------------------------------------------------------- sampling helpers


def resize(x: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Bilinear rescale (B,C,H,W) -> (B,C,⌊H·s⌋,⌊W·s⌋), half-pixel centres."""
    return F.interpolate(x, scale_factor=scale_factor, mode="bilinear", align_corners=False)


def coords_grid(batch: int, height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel coordinates (B,2,H,W): channel 0 is x (column), channel 1 is y (row)."""
    y, x = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([x, y])[None].expand(batch, 2, height, width)


def sample_at(img: torch.Tensor, xy: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Bilinear samples of ``img`` (N,C,H,W) at pixel coordinates ``xy`` (N,h,w,2) (x, y; pixel
    centres at integers) -> (N,C,h,w). Outside the image: zeros or the border value."""
    size = xy.new_tensor([img.shape[-1], img.shape[-2]])
    grid = (2 * xy + 1) / size - 1  # pixel x lands on x under align_corners=False
    return F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def backward_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: output (B,C,H,W) at p is ``img`` (B,C,H,W) sampled at p + flow(p), flow
    (B,2,H,W) in pixels (x, y); positions outside repeat the border."""
    b, _, h, w = flow.shape
    xy = (coords_grid(b, h, w, flow.device, flow.dtype) + flow).permute(0, 2, 3, 1)
    return sample_at(img, xy, padding_mode="border")


# ----------------------------------------------------------------------------- correlation


def all_pairs_correlation(fmap0: torch.Tensor, fmap1: torch.Tensor) -> torch.Tensor:
    """Dot products of every feature pair over √C: (B,C,H,W) × (B,C,H,W) -> (B,H,W,H,W), entry
    [b,i,j,k,l] = <fmap0[b,:,i,j], fmap1[b,:,k,l]> / √C."""
    b, c, h, w = fmap0.shape
    corr = fmap0.flatten(2).transpose(1, 2) @ fmap1.flatten(2)
    return corr.view(b, h, w, h, w) / c**0.5


def _window_offsets(radius: int, device, dtype) -> torch.Tensor:
    """(2r+1,2r+1,2) offsets (dx, dy) of the lookup window. The x offset varies along the first
    axis: the trained update blocks expect their correlation channels in this order."""
    d = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1)


class BidirectionalCorrelation:
    """All-pairs correlation pyramid of two feature maps (B,C,h,w), looked up both ways.

    Level ``l`` average-pools the target axes of the volume by 2**l. ``__call__(coords0,
    coords1)`` with (B,2,h,w) pixel positions returns two (B, levels·(2r+1)², h, w) tensors:
    frame-0 features correlated with frame-1 features around ``coords0``, and frame-1 features
    correlated with frame-0 features around ``coords1``.
    """

    def __init__(self, fmap0: torch.Tensor, fmap1: torch.Tensor, num_levels: int, radius: int) -> None:
        self.radius = radius
        corr = all_pairs_correlation(fmap0, fmap1)
        b, h, w = corr.shape[:3]
        forward = corr.reshape(b * h * w, 1, h, w)
        backward = corr.permute(0, 3, 4, 1, 2).reshape(b * h * w, 1, h, w)
        self.pyramids: tuple[list[torch.Tensor], list[torch.Tensor]] = ([forward], [backward])
        for _ in range(num_levels - 1):
            for pyramid in self.pyramids:
                pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))

    def _lookup(self, pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        b, _, h, w = coords.shape
        centres = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
        offsets = _window_offsets(self.radius, coords.device, coords.dtype)
        out = [
            sample_at(volume, centres / 2**level + offsets).view(b, h, w, -1)
            for level, volume in enumerate(pyramid)
        ]
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()

    def __call__(self, coords0: torch.Tensor, coords1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if coords0.shape != coords1.shape:
            raise ValueError(
                f"coords: expected equal shapes, received {tuple(coords0.shape)} and {tuple(coords1.shape)}"
            )
        return self._lookup(self.pyramids[0], coords0), self._lookup(self.pyramids[1], coords1)


# ----------------------------------------------------------------------------- building blocks


def conv_prelu(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Sequential:
    """Convolution followed by a per-channel PReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.PReLU(cout))


class SideResBlock(nn.Module):
    """Residual block (B,C,H,W) -> (B,C,H,W) whose last ``side`` channels get two extra
    convolutions in between the full-width ones."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.conv1 = conv_prelu(channels, channels)
        self.conv2 = conv_prelu(side, side)
        self.conv3 = conv_prelu(channels, channels)
        self.conv4 = conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu = nn.PReLU(channels)

    def _side(self, x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        return torch.cat([x[:, : -self.side], conv(x[:, -self.side :])], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._side(self.conv1(x), self.conv2)
        out = self._side(self.conv3(out), self.conv4)
        return self.prelu(x + self.conv5(out))


class PyramidEncoder(nn.Module):
    """(B,3,H,W) -> features at 1/2, 1/4, 1/8, 1/16 with ``channels`` channels."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        self.levels = len(channels)
        for idx, (cin, cout) in enumerate(zip((3, *channels[:-1]), channels), 1):
            self.add_module(
                f"pyramid{idx}", nn.Sequential(conv_prelu(cin, cout, 3, 2, 1), conv_prelu(cout, cout))
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for idx in range(1, self.levels + 1):
            x = getattr(self, f"pyramid{idx}")(x)
            feats.append(x)
        return feats


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided) → 1×1 residual block with instance norm and ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1)
        self.conv3 = nn.Conv2d(mid, cout, 1)
        self.norm1, self.norm2, self.norm3 = (nn.InstanceNorm2d(c) for c in (mid, mid, cout))
        self.relu = nn.ReLU()
        self.downsample = (
            None if stride == 1 else nn.Sequential(nn.Conv2d(cin, cout, 1, stride), nn.InstanceNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.relu(self.norm3(self.conv3(y)))
        return self.relu((x if self.downsample is None else self.downsample(x)) + y)


class ContextEncoder(nn.Module):
    """Correlation features (B,3,H,W) -> (B,out,H/8,W/8)."""

    def __init__(self, out_channels: int = CONTEXT_CHANNELS) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, 2, 3)
        self.norm1 = nn.InstanceNorm2d(32)
        self.relu1 = nn.ReLU()
        self.layer1 = nn.Sequential(Bottleneck(32, 32), Bottleneck(32, 32))
        self.layer2 = nn.Sequential(Bottleneck(32, 64, 2), Bottleneck(64, 64))
        self.layer3 = nn.Sequential(Bottleneck(64, 96, 2), Bottleneck(96, 96))
        self.conv2 = nn.Conv2d(96, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


class InitDecoder(nn.Module):
    """Coarsest decoder: features (B,C,h,w) of both frames and the time t -> flows t→0, t→1
    (B,2,2h,2w) each and an intermediate feature (B,out,2h,2w)."""

    def __init__(self, cin: int, cout: int, side: int) -> None:
        super().__init__()
        self.convblock = nn.Sequential(
            conv_prelu(2 * cin + 1, 2 * cin),
            SideResBlock(2 * cin, side),
            nn.ConvTranspose2d(2 * cin, cout + 4, 4, 2, 1),
        )

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, embt: torch.Tensor):
        t = embt.expand(f0.shape[0], 1, *f0.shape[2:])
        out = self.convblock(torch.cat([f0, f1, t], dim=1))
        return out[:, 0:2], out[:, 2:4], out[:, 4:]


class IntermediateDecoder(nn.Module):
    """Decoder (B,C,h,w) level -> flows (B,2,2h,2w) refined from the 2× upsampled input flows and
    an intermediate feature (B,out,2h,2w); the frame features are warped by the input flows."""

    def __init__(self, cin: int, cout: int, side: int) -> None:
        super().__init__()
        self.convblock = nn.Sequential(
            conv_prelu(3 * cin + 4, 3 * cin),
            SideResBlock(3 * cin, side),
            nn.ConvTranspose2d(3 * cin, cout + 4, 4, 2, 1),
        )

    def forward(
        self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow0: torch.Tensor, flow1: torch.Tensor
    ):
        x = torch.cat([ft, backward_warp(f0, flow0), backward_warp(f1, flow1), flow0, flow1], dim=1)
        out = self.convblock(x)
        return out[:, 0:2] + 2 * resize(flow0, 2.0), out[:, 2:4] + 2 * resize(flow1, 2.0), out[:, 4:]


class MultiFlowDecoder(nn.Module):
    """Finest decoder: ``num_flows`` flow pairs (B,2n,2h,2w) each, blending masks (B,n,2h,2w) in
    (0,1) and colour residuals (B,3n,2h,2w)."""

    def __init__(self, cin: int, side: int, num_flows: int = NUM_FLOWS) -> None:
        super().__init__()
        self.num_flows = num_flows
        self.convblock = nn.Sequential(
            conv_prelu(3 * cin + 4, 3 * cin),
            SideResBlock(3 * cin, side),
            nn.ConvTranspose2d(3 * cin, 8 * num_flows, 4, 2, 1),
        )

    def forward(
        self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow0: torch.Tensor, flow1: torch.Tensor
    ):
        n = self.num_flows
        x = torch.cat([ft, backward_warp(f0, flow0), backward_warp(f1, flow1), flow0, flow1], dim=1)
        delta0, delta1, mask, residual = torch.split(self.convblock(x), [2 * n, 2 * n, n, 3 * n], dim=1)
        flow0 = delta0 + 2 * resize(flow0, 2.0).repeat(1, n, 1, 1)
        flow1 = delta1 + 2 * resize(flow1, 2.0).repeat(1, n, 1, 1)
        return flow0, flow1, torch.sigmoid(mask), residual


class UpdateBlock(nn.Module):
    """Residual update from correlations at 1/8 resolution. ``forward(feat (B,cdim,H,W), flow
    (B,4,h,w), corr (B,2·levels·(2r+1)²,h,w))`` with (h,w) = (H,W)/``scale_factor`` -> (delta
    feature (B,cdim,H,W), delta flows (B,4,H,W))."""

    def __init__(
        self,
        cdim: int,
        scale_factor: int | None = None,
        hidden_dim: int = 76,
        flow_dim: int = 20,
        corr_dim: int = 64,
        fc_dim: int = 68,
        corr_levels: int = CORR_LEVELS,
        radius: int = CORR_RADIUS,
    ) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.convc1 = nn.Conv2d(2 * corr_levels * (2 * radius + 1) ** 2, corr_dim, 1)
        self.convf1 = nn.Conv2d(4, 2 * flow_dim, 7, padding=3)
        self.convf2 = nn.Conv2d(2 * flow_dim, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)
        self.gru = self._head(fc_dim + 4 + cdim, hidden_dim, hidden_dim)
        self.feat_head = self._head(hidden_dim, hidden_dim, cdim)
        self.flow_head = self._head(hidden_dim, hidden_dim, 4)
        self.lrelu = nn.LeakyReLU(0.1)

    @staticmethod
    def _head(cin: int, hidden: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, hidden, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(hidden, cout, 3, padding=1)
        )

    def forward(self, feat: torch.Tensor, flow: torch.Tensor, corr: torch.Tensor):
        s = self.scale_factor
        if s is not None:
            feat = resize(feat, 1 / s)
        motion = torch.cat(
            [self.lrelu(self.convc1(corr)), self.lrelu(self.convf2(self.lrelu(self.convf1(flow))))], 1
        )
        hidden = self.gru(torch.cat([self.lrelu(self.conv(motion)), flow, feat], dim=1))
        delta_feat, delta_flow = self.feat_head(hidden), self.flow_head(hidden)
        if s is not None:
            delta_feat = resize(delta_feat, s)
            delta_flow = s * resize(delta_flow, s)
        return delta_feat, delta_flow


# ----------------------------------------------------------------------------- the network


def combine_flows(
    comb_block: nn.Module,
    img0: torch.Tensor,
    img1: torch.Tensor,
    flow0: torch.Tensor,
    flow1: torch.Tensor,
    mask: torch.Tensor,
    residual: torch.Tensor,
    mean: torch.Tensor,
) -> torch.Tensor:
    """Blend n candidate frames and fuse them: images (B,3,H,W), flows (B,2n,H,W), masks
    (B,n,H,W), residuals (B,3n,H,W), mean (B,1,1,1) -> (B,3,H,W). Candidate k is
    ``mask_k·warp(img0, flow0_k) + (1 − mask_k)·warp(img1, flow1_k) + mean + residual_k``; the
    output is their average plus ``comb_block`` of all candidates stacked on channels."""
    b, c2, h, w = flow0.shape
    n = c2 // 2

    def per_flow(x: torch.Tensor, ch: int) -> torch.Tensor:
        return x.reshape(b * n, ch, h, w)

    def repeat(x: torch.Tensor) -> torch.Tensor:
        return x[:, None].expand(b, n, *x.shape[1:]).reshape(b * n, *x.shape[1:])

    warped0 = backward_warp(repeat(img0), per_flow(flow0, 2))
    warped1 = backward_warp(repeat(img1), per_flow(flow1, 2))
    m = per_flow(mask, 1)
    candidates = (m * warped0 + (1 - m) * warped1 + repeat(mean) + per_flow(residual, 3)).view(b, n, 3, h, w)
    return candidates.mean(1) + comb_block(candidates.view(b, 3 * n, h, w))


def _check_frames(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
        raise ValueError(
            "frames: expected two (B,3,H,W) tensors of one shape, "
            f"received {tuple(a.shape)} and {tuple(b.shape)}"
        )


class AMTS(nn.Module):
    """AMT-S. ``forward(img0, img1, embt, scale_factor=1.0)``: frames (B,3,H,W) in [0,1] with
    H and W multiples of 16/``scale_factor`` (see :class:`InputPadder`), time ``embt`` in (0,1)
    (float or (B,1,1,1)) -> the frame at that time (B,3,H,W) clamped to [0,1]. The flow estimation
    runs on the frames rescaled by ``scale_factor``; warping and blending at full size."""

    def __init__(
        self,
        corr_radius: int = CORR_RADIUS,
        corr_levels: int = CORR_LEVELS,
        num_flows: int = NUM_FLOWS,
        channels: tuple[int, ...] = CHANNELS,
        skip_channels: int = SKIP_CHANNELS,
    ) -> None:
        super().__init__()
        self.radius = corr_radius
        self.corr_levels = corr_levels
        self.num_flows = num_flows
        c = channels
        self.feat_encoder = ContextEncoder(CONTEXT_CHANNELS)
        self.encoder = PyramidEncoder(channels)
        self.decoder4 = InitDecoder(c[3], c[2], skip_channels)
        self.decoder3 = IntermediateDecoder(c[2], c[1], skip_channels)
        self.decoder2 = IntermediateDecoder(c[1], c[0], skip_channels)
        self.decoder1 = MultiFlowDecoder(c[0], skip_channels, num_flows)
        block = {"corr_levels": corr_levels, "radius": corr_radius}
        self.update4 = UpdateBlock(c[2], None, **block)
        self.update3 = UpdateBlock(c[1], 2, **block)
        self.update2 = UpdateBlock(c[0], 4, **block)
        self.comb_block = nn.Sequential(
            nn.Conv2d(3 * num_flows, 6 * num_flows, 3, 1, 1),
            nn.PReLU(6 * num_flows),
            nn.Conv2d(6 * num_flows, 3, 3, 1, 1),
        )

    @staticmethod
    def _refine(update, corr_fn, coords, flow0, flow1, feat, embt, downsample: int):
        """Correlation lookup at the positions the flows point to and the residual update."""
        small0, small1 = flow0, flow1
        if downsample != 1:
            small0 = resize(flow0, 1 / downsample) / downsample
            small1 = resize(flow1, 1 / downsample) / downsample
        # flows from time t scaled to frame-to-frame motion (exact for linear motion at t = 0.5)
        corr0, corr1 = corr_fn(coords + small1 / embt, coords + small0 / (1 - embt))
        delta_feat, delta_flow = update(feat, torch.cat([small0, small1], 1), torch.cat([corr0, corr1], 1))
        return flow0 + delta_flow[:, 0:2], flow1 + delta_flow[:, 2:4], feat + delta_feat

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, embt: torch.Tensor | float, scale_factor: float = 1.0
    ) -> torch.Tensor:
        _check_frames(img0, img1)
        embt = torch.as_tensor(embt, dtype=img0.dtype, device=img0.device).reshape(-1, 1, 1, 1)
        mean = torch.cat([img0, img1], dim=2).mean(dim=(1, 2, 3), keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        small0 = resize(img0, scale_factor) if scale_factor != 1.0 else img0
        small1 = resize(img1, scale_factor) if scale_factor != 1.0 else img1
        b, _, h, w = small0.shape
        coords = coords_grid(b, h // 8, w // 8, img0.device, img0.dtype)
        fmap0, fmap1 = self.feat_encoder(torch.cat([small0, small1])).chunk(2)
        corr_fn = BidirectionalCorrelation(fmap0, fmap1, self.corr_levels, self.radius)
        f0, f1 = self.encoder(small0), self.encoder(small1)

        flow0, flow1, feat = self.decoder4(f0[3], f1[3], embt)
        flow0, flow1, feat = self._refine(self.update4, corr_fn, coords, flow0, flow1, feat, embt, 1)
        for decoder, update, level, downsample in (
            (self.decoder3, self.update3, 2, 2),
            (self.decoder2, self.update2, 1, 4),
        ):
            flow0, flow1, feat = decoder(feat, f0[level], f1[level], flow0, flow1)
            flow0, flow1, feat = self._refine(update, corr_fn, coords, flow0, flow1, feat, embt, downsample)
        flow0, flow1, mask, residual = self.decoder1(feat, f0[0], f1[0], flow0, flow1)

        if scale_factor != 1.0:
            inv = 1.0 / scale_factor
            flow0, flow1 = resize(flow0, inv) * inv, resize(flow1, inv) * inv
            mask, residual = resize(mask, inv), resize(residual, inv)
        out = combine_flows(self.comb_block, img0, img1, flow0, flow1, mask, residual, mean)
        return out.clamp(0, 1)


# ----------------------------------------------------------------------------- VBench preprocessing


class InputPadder:
    """Replicate padding of (…,H,W) tensors to multiples of ``divisor``, split evenly (the extra
    pixel at the bottom/right), and the exact inverse crop."""

    def __init__(self, shape: tuple[int, ...] | torch.Size, divisor: int = PAD_DIVISOR) -> None:
        if divisor < 1:
            raise ValueError(f"divisor: expected a positive integer, received {divisor}")
        self.height, self.width = int(shape[-2]), int(shape[-1])
        ph, pw = -self.height % divisor, -self.width % divisor
        self.pad_widths = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # left, right, top, bottom

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) -> (B,C,H',W') with H', W' multiples of the divisor."""
        if tuple(x.shape[-2:]) != (self.height, self.width):
            raise ValueError(f"pad: expected (…,{self.height},{self.width}), received {tuple(x.shape)}")
        return F.pad(x, self.pad_widths, mode="replicate")

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """(…,H',W') -> (…,H,W)."""
        left, _, top, _ = self.pad_widths
        return x[..., top : top + self.height, left : left + self.width]


def amt_scale(height: int, width: int, memory_bytes: int | None = None) -> float:
    """VBench's working scale of AMT-S for (H,W) frames given the accelerator's memory (bytes).

    ``None``: no rescaling, VBench's CPU branch. VBench's ``evaluate.py`` and command line take
    this branch on GPUs too (they pass a ``torch.device`` where the rule tests for the string
    ``"cuda"``), so None reproduces published scores. Otherwise
    s = min(1, 1024·512/(H·W) · √((memory − 2500 MiB)/1500 MiB)), snapped to 16/⌊16/√s⌋; the
    padding divisor is then ``int(16 / scale)``.
    """
    if memory_bytes is None:
        return 1.0
    mib = 1024**2
    scale = 1024 * 512 / (height * width) * np.sqrt(max(memory_bytes - 2500 * mib, 0) / (1500 * mib))
    scale = min(scale, 1.0)
    if scale <= 0:  # at most 2500 MiB: the coarsest snapping step
        return 1.0 / 16
    return float(1 / np.floor(1 / np.sqrt(scale) * 16) * 16)  # VBench's float expression


class AMTInterpolator(nn.Module):
    """The middle frame between two frames, as VBench computes it: ``forward(a, b)`` with frames
    (B,3,H,W) in [0,1] -> (B,3,H,W) in [0,1] (time 0.5, replicate padding to a multiple of
    16/scale, see :func:`amt_scale`). This is the ``interpolate`` callable of
    :func:`aether.evaluation.vbench.motion_smoothness`."""

    def __init__(self, model: AMTS, memory_bytes: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.memory_bytes = memory_bytes

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _check_frames(a, b)
        scale = amt_scale(a.shape[-2], a.shape[-1], self.memory_bytes)
        padder = InputPadder(a.shape, int(16 / scale))
        embt = torch.full((a.shape[0], 1, 1, 1), 0.5, dtype=a.dtype, device=a.device)
        return padder.unpad(self.model(padder.pad(a), padder.pad(b), embt, scale_factor=scale))


def load_amt_s(path: str | Path) -> AMTInterpolator | None:
    """AMT-S from a ``{"state_dict": ...}`` checkpoint (VBench's ``amt_model/amt-s.pth``),
    wrapped in :class:`AMTInterpolator`, in eval mode on the CPU. None when the file does not
    exist; ValueError naming the file when it is not such a checkpoint or its parameters differ."""
    path = Path(path).expanduser()
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors have no common base class
        raise ValueError(
            f"{path}: expected a torch checkpoint of tensors, could not read it ({err})"
        ) from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        keys = sorted(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: expected a dict with a 'state_dict' entry, received {keys}")
    model = AMTS()
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: the state dict does not match AMT-S: {err}") from err
    return AMTInterpolator(model.eval()).eval()
