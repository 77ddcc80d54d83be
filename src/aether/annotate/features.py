"""Image-level helpers shared by the annotation stages: grey images, SIFT, support masks, depth lookup."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["detect_sift", "match_sift", "sample_depth", "support_mask", "to_gray"]


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 (H,W,3) to grey uint8 (H,W)."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def support_mask(
    static: np.ndarray, depth: np.ndarray, *, margin: int = 2, edge_rtol: float = 0.02
) -> np.ndarray:
    """Pixels that may feed camera estimation: static, valid depth, away from depth edges and masks.

    Depth edges are found on inverse depth, which is affine in the pixel coordinates on any plane: a
    pixel is an edge when the horizontal or vertical second difference of inverse depth exceeds
    ``edge_rtol`` times its inverse depth (slanted planes are not edges, creases and jumps are).

    Args:
        static: (H,W) bool, False on dynamic pixels.
        depth: (H,W) metric depth, invalid = 0 or non-finite.
        margin: the dynamic mask, invalid depth and edges are dilated by this many pixels.
        edge_rtol: relative second difference of inverse depth that marks an edge.

    Returns:
        (H,W) bool.
    """
    valid = np.isfinite(depth) & (depth > 0)
    inv = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0).astype(np.float32)
    second = [cv2.filter2D(inv, -1, k, borderType=cv2.BORDER_REPLICATE) for k in _SECOND_DIFF]
    edge = np.maximum(np.abs(second[0]), np.abs(second[1])) > edge_rtol * np.maximum(inv, 1e-12)
    good = (static & valid & ~edge).astype(np.uint8)
    good = cv2.erode(good, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) if margin > 0 else good
    return good.astype(bool)


_SECOND_DIFF = (np.array([[1.0, -2.0, 1.0]], np.float32), np.array([[1.0], [-2.0], [1.0]], np.float32))


def sample_depth(depth: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Depth (H,W) at sub-pixel positions uv (N,2) by bilinear interpolation of inverse depth.

    Inverse depth is affine in the pixel coordinates on planes, so it interpolates exactly there.
    Returns (N,) with 0 where the point is outside the image or a neighbour has invalid depth.
    """
    h, w = depth.shape
    u, v = uv[:, 0], uv[:, 1]  # pixel centres at integer coordinates (OpenCV convention)
    inside = (u >= 0) & (v >= 0) & (u <= w - 1) & (v <= h - 1)
    u0 = np.clip(np.floor(u).astype(int), 0, max(w - 2, 0))
    v0 = np.clip(np.floor(v).astype(int), 0, max(h - 2, 0))
    du, dv = u - u0, v - v0
    d = np.stack([depth[v0, u0], depth[v0, u0 + 1], depth[v0 + 1, u0], depth[v0 + 1, u0 + 1]], axis=1)
    ok = inside & np.all(np.isfinite(d) & (d > 0), axis=1)
    inv = 1.0 / np.where(d > 0, d, 1.0)
    wts = np.stack([(1 - du) * (1 - dv), du * (1 - dv), (1 - du) * dv, du * dv], axis=1)
    interp = (inv * wts).sum(axis=1)
    return np.where(ok, 1.0 / np.maximum(interp, 1e-12), 0.0)


def detect_sift(
    gray: np.ndarray, mask: np.ndarray | None = None, max_features: int = 2000, contrast: float = 0.01
):
    """SIFT keypoints and descriptors: (uv (N,2) float32, descriptors (N,128) float32).

    ``contrast`` is OpenCV's contrastThreshold (0.04 there); the lower default keeps keypoints on dim
    rendered frames.
    """
    sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=contrast)
    keypoints, desc = sift.detectAndCompute(gray, None if mask is None else mask.astype(np.uint8))
    if not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    uv = np.array([k.pt for k in keypoints], np.float32)
    return uv, desc


def match_sift(desc_a: np.ndarray, desc_b: np.ndarray, ratio: float = 0.8) -> np.ndarray:
    """Mutual nearest-neighbour matches passing Lowe's ratio test: (M,2) indices into a and b."""
    if len(desc_a) < 2 or len(desc_b) < 2:
        return np.zeros((0, 2), int)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    knn = matcher.knnMatch(desc_a, desc_b, k=2)
    pairs = np.array([(m.queryIdx, m.trainIdx, m.distance, n.distance) for m, n in knn])
    good = pairs[:, 2] < ratio * pairs[:, 3]
    back = np.array([m.trainIdx for m, _ in matcher.knnMatch(desc_b, desc_a, k=2)])
    idx = pairs[good, :2].astype(int)
    mutual = back[idx[:, 1]] == idx[:, 0]
    return idx[mutual]
