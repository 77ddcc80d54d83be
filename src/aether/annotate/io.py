"""Inputs of the annotation pipeline: RGB-D clip folders and WebDataset shards.

Clip folder layout (one clip per folder; INPUT may be one clip folder or a folder of them)::

    CLIP/rgb/*.png|*.jpg          frames, sorted by name
    CLIP/depth/*.png|*.npy|*.exr  one per frame; 16-bit PNG holds depth · depth_scale (default
                                  1000: millimetres), npy / exr hold metres; 0 = invalid
    CLIP/intrinsics.txt|.json     optional: 3x3 matrix or T lines of 9 values (txt), or
                                  {"K": 3x3 or Tx3x3} / {"fx","fy","cx","cy"} (json)
    CLIP/masks/*.png              optional dynamic masks (nonzero = may move)
    CLIP/meta.json                optional {"fps": ...}

Shards written by ``aether synth`` (or any shard of the data schema) are accepted too: a ``.tar``
file, a brace pattern, or a folder holding ``*.tar``. Their ``c2w`` is kept as ground truth for the
report, never used for estimation.

:func:`iter_clip_sources` lists the clips as :class:`PendingClip` (identity + a loader) so a clip
that fails to load is one failed clip, not the end of the run; each clip's ``uid`` is unique in
the input (a clip folder's name; a shard sample's shard name + key, since two shards may hold the
same key). Errors name the clip and the file.
"""

from __future__ import annotations

import json
import os
import tarfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2

__all__ = ["ClipInput", "PendingClip", "iter_clip_sources", "iter_inputs", "load_clip_folder"]

_IMAGE_EXT = (".png", ".jpg", ".jpeg")
_DEPTH_EXT = (".png", ".npy", ".exr")


@dataclass
class ClipInput:
    """One clip to annotate: rgb uint8 (T,H,W,3), depth float32 metres (T,H,W), K (T,3,3) or None,
    fps, ``extras`` (dynamic / semantic / instance / classes / untextured when known), ground-truth
    c2w (T,4,4) or None, and a provenance string."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray | None
    fps: float
    extras: dict[str, Any] = field(default_factory=dict)
    gt_c2w: np.ndarray | None = None
    source: str = ""
    uid: str = ""  # unique among the inputs of a run (default: the name)

    def __post_init__(self) -> None:
        self.uid = self.uid or self.name

    @classmethod
    def from_synthetic(cls, clip: Any, name: str = "clip") -> ClipInput:
        """A clip of :func:`aether.data.synthetic.render_clip` with its dynamic masks, K and ground-truth
        poses (the poses only score the result, they never feed the estimation)."""
        return cls(
            name=name,
            rgb=clip.rgb,
            depth=clip.depth,
            K=clip.K,
            fps=clip.fps,
            extras={"dynamic": clip.dynamic},
            gt_c2w=clip.c2w,
            source="synthetic",
        )


@dataclass
class PendingClip:
    """A clip not read yet: ``name``, ``uid`` (unique in the run), ``source`` (its file or folder)
    and ``load()`` returning the :class:`ClipInput` (or raising ValueError naming the file)."""

    name: str
    uid: str
    source: str
    load: Callable[[], ClipInput]

    @classmethod
    def of(cls, clip: ClipInput) -> PendingClip:
        return cls(clip.name, clip.uid, clip.source, partial(_given, clip))


def _given(clip: ClipInput) -> ClipInput:
    return clip


def _sorted_files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts)


def _read_image(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise ValueError(f"cannot read image {path} (missing, truncated or not an image)")
    return image


def _read_rgb(path: Path) -> np.ndarray:
    image = _read_image(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: expected JSON, cannot parse it ({err})") from err


def _read_depth(path: Path, depth_scale: float) -> np.ndarray:
    if path.suffix == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"cannot read depth array {path} ({err})") from err
        if depth.ndim != 2:
            raise ValueError(f"depth array {path}: expected shape (H,W), got {depth.shape}")
    else:
        depth = _read_image(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_UNCHANGED)
        if depth.ndim == 3:
            depth = depth[..., 0]
        if path.suffix.lower() == ".png":
            if depth.dtype != np.uint16:
                raise ValueError(f"PNG depth must be 16-bit, got {depth.dtype} in {path}")
            depth = depth.astype(np.float32) / depth_scale
    depth = np.asarray(depth, dtype=np.float32)
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def _read_intrinsics(folder: Path, frames: int) -> np.ndarray | None:
    txt, js = folder / "intrinsics.txt", folder / "intrinsics.json"
    try:
        if txt.is_file():
            values = np.loadtxt(txt, dtype=np.float64, ndmin=1)
            if values.size % 9:
                raise ValueError(f"expected 9 values per matrix, got {values.size} values")
            K = values.reshape(-1, 3, 3)
        elif js.is_file():
            data = _read_json(js)
            if "K" in data:
                K = np.asarray(data["K"], dtype=np.float64)
                if K.size % 9:
                    raise ValueError(f'expected "K" a 3x3 or Tx3x3 matrix, got shape {K.shape}')
                K = K.reshape(-1, 3, 3)
            else:
                K = np.array(
                    [[[data["fx"], 0, data["cx"]], [0, data["fy"], data["cy"]], [0, 0, 1]]], np.float64
                )
        else:
            return None
    except (ValueError, KeyError, TypeError) as err:
        path = txt if txt.is_file() else js
        raise ValueError(
            f"intrinsics {path}: {err if not isinstance(err, KeyError) else f'missing {err}'}"
        ) from err
    if K.shape[0] not in (1, frames):
        raise ValueError(f"intrinsics of {folder}: expected 1 or {frames} matrices, got {K.shape[0]}")
    return np.broadcast_to(K, (frames, 3, 3)).copy()


def _positive(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x) and x > 0


def _stack(frames: list[np.ndarray], files: list[Path]) -> np.ndarray:
    """Stack per-frame arrays; a frame whose size differs from the first is named."""
    for frame, path in zip(frames, files):
        if frame.shape != frames[0].shape:
            raise ValueError(
                f"{path}: expected size {frames[0].shape} like {files[0].name}, got {frame.shape}"
            )
    return np.stack(frames)


def load_clip_folder(folder: str | Path, *, depth_scale: float = 1000.0, fps: float = 24.0) -> ClipInput:
    """Read a clip folder (layout in the module docstring); ``fps`` is used when meta.json has none."""
    folder = Path(folder)
    rgb_files = _sorted_files(folder / "rgb", _IMAGE_EXT) if (folder / "rgb").is_dir() else []
    depth_files = _sorted_files(folder / "depth", _DEPTH_EXT) if (folder / "depth").is_dir() else []
    if not rgb_files or len(rgb_files) != len(depth_files):
        raise ValueError(
            f"clip folder {folder} needs rgb/ and depth/ with one file per frame, "
            f"got {len(rgb_files)} rgb and {len(depth_files)} depth files"
        )
    rgb = _stack([_read_rgb(p) for p in rgb_files], rgb_files)
    depth = _stack([_read_depth(p, depth_scale) for p in depth_files], depth_files)
    if depth.shape != rgb.shape[:3]:
        raise ValueError(f"depth {depth.shape} does not match frames {rgb.shape[:3]} in {folder}")
    extras: dict[str, Any] = {}
    if (folder / "masks").is_dir():
        mask_files = _sorted_files(folder / "masks", (".png",))
        if len(mask_files) != len(rgb_files):
            raise ValueError(f"{folder}/masks: expected {len(rgb_files)} masks, got {len(mask_files)}")
        extras["dynamic"] = _stack([_read_image(p, cv2.IMREAD_GRAYSCALE) > 0 for p in mask_files], mask_files)
        if extras["dynamic"].shape != rgb.shape[:3]:
            raise ValueError(
                f"{folder}/masks: expected (T,H,W)={rgb.shape[:3]}, got {extras['dynamic'].shape}"
            )
    meta = _read_json(folder / "meta.json") if (folder / "meta.json").is_file() else {}
    if not isinstance(meta, dict) or not _positive(meta.get("fps", fps)):
        raise ValueError(f'{folder / "meta.json"}: expected {{"fps": a positive number}}, got {meta!r}')
    return ClipInput(
        name=folder.name,
        rgb=rgb,
        depth=depth,
        K=_read_intrinsics(folder, len(rgb)),
        fps=float(meta.get("fps", fps)),
        extras=extras,
        source=str(folder),
    )


def _shard_uid(sample: dict[str, Any]) -> str:
    """Shard name (without .tar) + key: unique even when two shards hold the same key."""
    shard = Path(str(sample.get("__url__", "shard"))).name.removesuffix(".tar")
    return f"{shard}_{sample['__key__']}".replace("/", "_")


def _from_sample(sample: dict[str, Any]) -> ClipInput:
    extras = {k: sample[k] for k in ("dynamic", "semantic", "instance", "untextured") if k in sample}
    classes = sample["meta"].get("classes")
    if classes:
        extras["classes"] = {int(k): v for k, v in classes.items()}
    return ClipInput(
        name=sample["__key__"].replace("/", "_"),
        rgb=sample["rgb"],
        depth=sample["depth"].astype(np.float32),
        K=sample["K"],
        fps=float(sample["fps"]),
        extras=extras,
        gt_c2w=sample["c2w"],
        source=str(sample.get("__url__", "")),
        uid=_shard_uid(sample),
    )


def iter_clip_sources(
    path: str | Path, *, depth_scale: float = 1000.0, fps: float = 24.0
) -> Iterator[PendingClip]:
    """Clips under ``path`` (a clip folder, a folder of clip folders, or shards: file, pattern,
    folder), in a deterministic order, not loaded yet; their ``load`` is picklable (it can run in
    another process). Shards are listed from their member headers; a shard that cannot be listed
    comes as one PendingClip whose ``load`` raises the reason."""
    p = Path(path)

    def folder_clip(folder: Path) -> PendingClip:
        load = partial(load_clip_folder, folder, depth_scale=depth_scale, fps=fps)
        return PendingClip(folder.name, folder.name, str(folder), load)

    # the input is checked now, before the caller writes anything; clips are read lazily
    if p.is_dir() and (p / "rgb").is_dir():
        return iter([folder_clip(p)])
    local = "://" not in str(path) and not str(path).startswith("pipe:")
    if local and str(path).endswith(".tar") and not p.is_file():
        raise FileNotFoundError(f"annotation input not found: {path}")
    if (p.is_dir() and any(p.glob("*.tar"))) or str(path).endswith(".tar") or "{" in str(path):
        return _shard_clips(str(path))
    if p.is_dir():
        clips = sorted(c for c in p.iterdir() if (c / "rgb").is_dir())
        if not clips:
            raise ValueError(f"{p} holds no clip folders (with rgb/ and depth/) and no *.tar shards")
        return map(folder_clip, clips)
    raise FileNotFoundError(f"annotation input not found: {path}")


# where a sample's members lie in a local shard: (extension, data offset, size) per member
Members = tuple[tuple[str, int, int], ...]


def _shard_samples(url: str) -> list[tuple[str, Members | None]]:
    """The samples of a shard in reading order, as :func:`aether.data.shards.iter_raw_samples`
    splits them: (key, members). A local shard is listed from its member headers without reading
    the data, and each sample's members are located (so loading one reads only its bytes); for
    other URLs members is None."""
    from aether.data.reading import iter_raw_samples, split_name

    if "://" in url or url.startswith("pipe:"):
        found: list[tuple[str, Members | None]] = []
        for raw in iter_raw_samples(url):
            if "__error__" in raw:
                if raw["__key__"] is None:
                    raise ValueError(f"cannot read shard {url}: {raw['__error__']}")
                found.append((raw["__key__"], None))  # its load reports the error
                break
            found.append((raw["__key__"], None))
        return found
    samples: list[tuple[str, list[tuple[str, int, int]]]] = []
    try:
        with tarfile.open(url, "r:") as tar:
            for member in tar:
                key, ext = split_name(member.name) if member.isfile() else (None, None)
                if key is None:
                    continue
                if not samples or samples[-1][0] != key or ext in {e for e, _, _ in samples[-1][1]}:
                    samples.append((key, []))
                samples[-1][1].append((ext, member.offset_data, member.size))
    except (tarfile.TarError, OSError, EOFError):
        if not samples:
            raise
        # a damaged tail: the samples before it stand; the last one is read through the shard
        # reader, whose error its load reports
        return [(key, tuple(m)) for key, m in samples[:-1]] + [(samples[-1][0], None)]
    return [(key, tuple(members)) for key, members in samples]


def _load_shard_sample(url: str, index: int, key: str, members: Members | None = None) -> ClipInput:
    """Sample ``index`` (key ``key``) of shard ``url``, decoded and validated (as the shard reader
    does); with ``members`` (a local shard) only the sample's own bytes are read."""
    from aether.data.index import index_url, load_index, verify_members
    from aether.data.shards import PLAUSIBLE, decode_sample, iter_samples, validate_sample

    if members is not None:
        raw: dict[str, Any] = {"__key__": key, "__url__": url}
        try:
            with open(url, "rb") as stream:
                for ext, offset, size in members:
                    stream.seek(offset)
                    raw[ext] = stream.read(size)
                    if len(raw[ext]) != size:
                        raise ValueError(f"member {key}.{ext} truncated: {len(raw[ext])} of {size} bytes")
            index = load_index(url)
            if index is not None:  # checksums of a shard written with its index
                verify_members(raw, index.get(key), index_url(url))
            return _from_sample(validate_sample(decode_sample(raw), plausibility=PLAUSIBLE))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read sample {key!r} of shard {url}: {err}") from err
    errors: list[str] = []

    def on_error(_: str, at: str | None, error: Exception) -> None:
        errors.append(str(error))

    for sample in iter_samples(url, select=lambda i: i == index, on_error=on_error):
        if sample["__key__"] == key:
            return _from_sample(sample)
    reason = errors[0] if errors else "not found where the plan listed it (the shard changed?)"
    raise ValueError(f"cannot read sample {key!r} of shard {url}: {reason}")


def _raise(message: str) -> ClipInput:
    raise ValueError(message)


def _shard_clips(urls: str) -> Iterator[PendingClip]:
    from aether.data.shards import expand_urls

    first: dict[str, str] = {}  # key -> the shard it was first met in
    for url in expand_urls(urls):
        shard = Path(url).name.removesuffix(".tar")
        try:
            listed = _shard_samples(url)
        except (OSError, ValueError, tarfile.TarError, EOFError) as err:
            load = partial(_raise, f"cannot read shard {url}: {type(err).__name__}: {err}")
            yield PendingClip(shard, shard.replace("/", "_"), url, load)
            continue
        seen: set[str] = set()
        for index, (key, members) in enumerate(listed):
            if key in seen:  # a key repeated in a shard is read once (as the reader does)
                continue
            seen.add(key)
            if first.setdefault(key, url) != url:
                warnings.warn(
                    f"key {key!r} of {url} also names a sample of {first[key]}; both are annotated "
                    "(outputs are named by shard and key)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            uid = f"{shard}_{key}".replace("/", "_")
            load = partial(_load_shard_sample, url, index, key, members)
            yield PendingClip(key.replace("/", "_"), uid, url, load)


def iter_inputs(path: str | Path, *, depth_scale: float = 1000.0, fps: float = 24.0) -> Iterator[ClipInput]:
    """Clips under ``path``, loaded (see :func:`iter_clip_sources`); the first that fails raises."""
    for pending in iter_clip_sources(path, depth_scale=depth_scale, fps=fps):
        yield pending.load()
