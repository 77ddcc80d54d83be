"""Writers of the benchmark datasets' on-disk formats, for reader tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

TAG = np.float32(202021.25)


def write_dpt(path: Path, depth: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = depth.shape
    path.write_bytes(TAG.tobytes() + np.array([w, h], "<i4").tobytes() + depth.astype("<f4").tobytes())


def write_cam(path: Path, K: np.ndarray, w2c: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(TAG.tobytes() + K.astype("<f8").tobytes() + w2c[:3].astype("<f8").tobytes())


def write_png_depth(path: Path, depth: np.ndarray, scale: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.round(depth * scale).astype(np.uint16))


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_tum(path: Path, times: np.ndarray, c2w: np.ndarray) -> None:
    q = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()  # x y z w
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    lines += [" ".join(f"{v:.9f}" for v in (t, *p[:3, 3], *qq)) for t, p, qq in zip(times, c2w, q)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def random_trajectory(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(0, 0.05, (n, 3)), 0)).as_matrix()
    c2w[:, :3, 3] = np.cumsum(rng.normal(0, 0.3, (n, 3)), 0)
    return c2w


@pytest.fixture
def formats() -> SimpleNamespace:
    return SimpleNamespace(
        write_dpt=write_dpt,
        write_cam=write_cam,
        write_png_depth=write_png_depth,
        write_rgb=write_rgb,
        write_tum=write_tum,
        random_trajectory=random_trajectory,
    )
