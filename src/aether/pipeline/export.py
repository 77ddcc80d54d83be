"""Vectorised exporters of 4D results: point clouds (PLY, GLB), cameras (JSON, TUM), rerun recordings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
)


def point_vertices(
    depth: np.ndarray,
    K: np.ndarray,
    c2w: np.ndarray,
    rgb: np.ndarray,
    valid: np.ndarray,
    stride: int = 1,
) -> np.ndarray:
    """Colored world points of the valid pixels as a PLY vertex array (N,) of :data:`PLY_VERTEX`.

    depth (T, H, W), K (T, 3, 3), c2w (T, 4, 4), rgb (T, H, W, 3) uint8, valid (T, H, W); every
    ``stride``-th pixel in each direction. Evaluates ``c + z · R K⁻¹ [u, v, 1]`` (the back-projection
    of ``aether.geometry.depth_to_points``) one coordinate at a time on the valid pixels only, writing
    straight into the vertex array: no (T, H, W, 3) intermediate and no per-point Python.
    """
    depth = np.asarray(depth)[:, ::stride, ::stride]
    valid = np.asarray(valid)[:, ::stride, ::stride] & np.isfinite(depth) & (depth > 0)
    rgb = np.asarray(rgb)[:, ::stride, ::stride]
    M = (np.asarray(c2w, np.float64)[:, :3, :3] @ np.linalg.inv(np.asarray(K, np.float64))).astype(np.float32)
    centres = np.asarray(c2w, np.float32)[:, :3, 3]
    u = stride * np.arange(depth.shape[2], dtype=np.float32)
    v = stride * np.arange(depth.shape[1], dtype=np.float32)[:, None]
    counts = valid.reshape(len(valid), -1).sum(axis=1)
    z = depth[valid].astype(np.float32)
    vertices = np.empty(int(counts.sum()), dtype=PLY_VERTEX)
    for k, axis in enumerate("xyz"):
        ray = M[:, k, 0, None, None] * u + M[:, k, 1, None, None] * v
        ray += M[:, k, 2, None, None]
        coord = ray[valid]
        coord *= z
        coord += np.repeat(centres[:, k], counts)
        vertices[axis] = coord
    for k, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = rgb[..., k][valid]
    return vertices


def vertices_to_arrays(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) float32, colors (N, 3) uint8) of a PLY vertex array."""
    points = np.stack([vertices[a] for a in "xyz"], axis=1)
    colors = np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1)
    return points, colors


def write_ply(path: str | os.PathLike, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY, written in one block, of points (N, 3) float and colors (N, 3) uint8,
    or of a vertex array (N,) of :data:`PLY_VERTEX` (``colors`` None)."""
    points = np.asarray(points)
    if colors is None and points.dtype == PLY_VERTEX:
        vertices = points
    else:
        colors = np.asarray(colors)
        if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
            raise ValueError(
                f"expected points (N, 3) and colors (N, 3), got {points.shape} and {colors.shape}"
            )
        vertices = np.empty(len(points), dtype=PLY_VERTEX)
        for i, axis in enumerate("xyz"):
            vertices[axis] = points[:, i]
        for i, channel in enumerate(("red", "green", "blue")):
            vertices[channel] = colors[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    path = Path(path)
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(vertices.tobytes())
    return path


def write_glb(path: str | os.PathLike, points: np.ndarray, colors: np.ndarray) -> Path:
    """GLB (binary glTF) point cloud with per-vertex RGBA colors."""
    import trimesh

    rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
    cloud = trimesh.PointCloud(np.asarray(points, dtype=np.float32), colors=rgba)
    path = Path(path)
    path.write_bytes(trimesh.Scene(cloud).export(file_type="glb"))
    return path


def tum_lines(c2w: np.ndarray, timestamps: np.ndarray | None = None) -> str:
    """TUM text (``timestamp tx ty tz qx qy qz qw``) of camera-to-world poses (T, 4, 4)."""
    from scipy.spatial.transform import Rotation

    c2w = np.asarray(c2w, dtype=np.float64)
    stamps = np.arange(len(c2w), dtype=np.float64) if timestamps is None else np.asarray(timestamps)
    quat = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()  # x, y, z, w
    rows = np.concatenate([stamps[:, None], c2w[:, :3, 3], quat], axis=1)
    return "".join(" ".join(f"{v:.9g}" for v in row) + "\n" for row in rows)


def write_trajectory_json(
    path: str | os.PathLike, c2w: np.ndarray, K: np.ndarray, width: int, height: int
) -> Path:
    """The camera trajectory as JSON (OpenCV c2w, K in pixels), readable by ``Trajectory.from_json``."""
    path = Path(path)
    data = {
        "axes": "opencv",
        "kind": "c2w",
        "width": int(width),
        "height": int(height),
        "c2w": np.asarray(c2w, dtype=np.float64).tolist(),
        "K": np.asarray(K, dtype=np.float64).tolist(),
    }
    path.write_text(json.dumps(data))
    return path


def write_rerun(
    path: str | os.PathLike,
    rgb: np.ndarray,
    depth: np.ndarray,
    c2w: np.ndarray,
    K: np.ndarray,
    fps: float,
    points: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """A rerun recording (.rrd): per frame the image, depth and pinhole camera, and a point cloud."""
    import rerun as rr

    path = Path(path)
    rec = rr.RecordingStream("aether")
    rec.save(str(path))
    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Y_DOWN, static=True)
    height, width = rgb.shape[1:3]
    for t in range(len(rgb)):
        rec.set_time("time", duration=t / fps) if hasattr(rec, "set_time") else rec.set_time_seconds(
            "time", t / fps
        )
        rec.log("world/camera", rr.Transform3D(translation=c2w[t, :3, 3], mat3x3=c2w[t, :3, :3]))
        rec.log("world/camera/image", rr.Pinhole(image_from_camera=K[t], width=width, height=height))
        rec.log("world/camera/image/rgb", rr.Image(rgb[t]))
        rec.log("world/camera/image/depth", rr.DepthImage(depth[t], meter=1.0))
    if points is not None:
        rec.log("world/points", rr.Points3D(points[0], colors=points[1]), static=True)
    rec.flush()
    return path
