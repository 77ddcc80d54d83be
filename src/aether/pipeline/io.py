"""Reading videos and images from files (any container imageio/pyav reads, any PIL image format)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB."""
    from PIL import Image, UnidentifiedImageError

    path = _existing(path)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"cannot read {path} as an image: {err}") from None


def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> tuple[np.ndarray, float | None]:
    """A video file (or a folder of images, sorted by name) as uint8 (T, H, W, 3) and its fps (or None)."""
    path = _existing(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path} holds no image files")
        files = files[:max_frames] if max_frames else files
        frames = [read_image(p) for p in files]
        if len({f.shape for f in frames}) != 1:
            raise ValueError(f"the images in {path} differ in size")
        return np.stack(frames), None
    import imageio.v3 as iio

    try:
        frames = []
        for frame in iio.imiter(path, plugin="pyav"):
            frames.append(frame[..., :3] if frame.ndim == 3 else np.repeat(frame[..., None], 3, -1))
            if max_frames and len(frames) >= max_frames:
                break
        meta = iio.immeta(path, plugin="pyav")
    except Exception as err:  # pyav raises many types for corrupt or non-video files
        raise ValueError(f"cannot read {path} as a video: {err}") from None
    if not frames:
        raise ValueError(f"{path} holds no video frames")
    fps = meta.get("fps")
    return np.stack(frames).astype(np.uint8), (float(fps) if fps else None)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float) -> Path:
    """Write uint8 (T, H, W, 3) frames as an H.264 mp4 (odd sizes are padded by one pixel)."""
    import imageio.v3 as iio

    path = Path(path)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    iio.imwrite(path, np.ascontiguousarray(frames), plugin="pyav", codec="libx264", fps=float(fps))
    return path


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 (H, W, 3) image (format from the suffix, e.g. PNG), atomically."""
    from PIL import Image

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    Image.fromarray(np.ascontiguousarray(image)).save(
        tmp, format=Image.registered_extensions()[path.suffix.lower()]
    )
    tmp.replace(path)
    return path
