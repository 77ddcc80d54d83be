"""WebDataset shards of RGB-D clips: schema, writer and validating reader.

One tar sample per clip (``__key__`` without dots), members:

- ``meta.json``: ``schema_version``, ``fps``, ``num_frames``, ``height``, ``width``, ``rgb_codec``,
  optional ``classes`` (semantic id → name) and ``source`` (provenance);
- ``rgb.NNNN.png`` (one lossless PNG per frame, ``rgb_codec="png"``) or ``rgb.npy`` uint8
  (T,H,W,3) (``rgb_codec="npy"``);
- ``depth.npy`` float32 (T,H,W), metres, invalid = 0;
- ``K.npy`` float64 (T,3,3) pixels, pixel centres at integer coordinates;
- ``c2w.npy`` float64 (T,4,4) OpenCV camera-to-world;
- optional ``dynamic.npy`` bool (T,H,W), ``semantic.npy`` / ``instance.npy`` uint16 or int32
  (T,H,W), ``untextured.npy`` bool (T,).

Shards are written under a temporary name (``<name>.partial``) and renamed when complete, so an
interrupted run never leaves a truncated shard under a name that readers pick up.

Reading never lets one bad sample or source stop a stream: a sample that cannot be decoded, breaks
the schema, disagrees with its ``meta.json`` or falls outside the :class:`Plausibility` bounds is
skipped and reported (``on_error``, counted by :class:`ShardReader` and the DataModule); a source
that fails to open, read or close is reported the same way (key None) and the next one is read.
A key met twice in one shard is yielded once; a key met again in another shard of the same pass
is skipped when its content is the same sample (same fingerprint), and warned about but kept when
it is different data under a colliding key.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PLAUSIBLE",
    "Plausibility",
    "RGB_CODECS",
    "SCHEMA_VERSION",
    "ShardReader",
    "DuplicateKeyError",
    "decode_sample",
    "encode_sample",
    "expand_urls",
    "fingerprint",
    "iter_raw_samples",
    "iter_samples",
    "open_url",
    "prepare_output",
    "shard_keys",
    "check_settings",
    "validate_sample",
    "write_shards",
]

SCHEMA_VERSION = 1
RGB_CODECS = ("png", "npy")
_LABELS = ("dynamic", "semantic", "instance")
_KEY = re.compile(r"^[A-Za-z0-9_\-/]+$")


@dataclass(frozen=True)
class Plausibility:
    """Bounds a sample must meet to be read (else it is skipped and counted like a broken one).

    Attributes:
        min_depth, max_depth: range of valid (> 0) depth values, scene units (metres): 1 mm to 10 km.
        min_focal, max_focal: focal lengths fx, fy relative to the image width / height (0.05: a
            ~170° field of view; 50: ~1°).
        max_skew: |K[0, 1]| relative to fx.
        max_translation: largest |camera position| coordinate, scene units.
        max_dmax: largest per-clip maximum disparity 1 / depth after resizing (checked by the
            DataModule, which computes it).
    """

    min_depth: float = 1e-3
    max_depth: float = 1e4
    min_focal: float = 0.05
    max_focal: float = 50.0
    max_skew: float = 0.05
    max_translation: float = 1e4
    max_dmax: float = 1e3

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ValueError(f"Plausibility.{name}: expected a finite positive number, got {value!r}")
        if self.min_depth >= self.max_depth or self.min_focal >= self.max_focal:
            raise ValueError(f"Plausibility: expected min < max, got {self}")

    def check(self, sample: dict[str, Any]) -> None:
        """Raise ValueError naming the member and the bound a validated sample breaks."""
        depth = sample["depth"]
        valid = depth > 0
        if valid.any():
            low, high = float(depth[valid].min()), float(depth[valid].max())
            if low < self.min_depth or high > self.max_depth:
                raise ValueError(
                    f"depth.npy: expected valid depth in [{self.min_depth:g}, {self.max_depth:g}], "
                    f"got [{low:.3g}, {high:.3g}]"
                )
        K = sample["K"]
        height, width = depth.shape[1:]
        for axis, size, label in ((0, width, "fx / width"), (1, height, "fy / height")):
            rel = K[:, axis, axis] / size
            if rel.min() < self.min_focal or rel.max() > self.max_focal:
                raise ValueError(
                    f"K.npy: expected {label} in [{self.min_focal:g}, {self.max_focal:g}], "
                    f"got [{rel.min():.3g}, {rel.max():.3g}]"
                )
        skew = np.abs(K[:, 0, 1]) / K[:, 0, 0]
        if skew.max() > self.max_skew:
            raise ValueError(f"K.npy: expected |skew| / fx <= {self.max_skew:g}, got {skew.max():.3g}")
        reach = float(np.abs(sample["c2w"][:, :3, 3]).max())
        if reach > self.max_translation:
            raise ValueError(
                f"c2w.npy: expected camera positions within {self.max_translation:g}, got {reach:.3g}"
            )


PLAUSIBLE = Plausibility()


# ---------------------------------------------------------------------------------------------
# encoding


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _png(frame: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def _load_png(data: bytes) -> np.ndarray:
    import cv2

    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError("undecodable PNG")
    return frame[..., ::-1]


def encode_sample(sample: dict[str, Any], rgb_codec: str = "png") -> dict[str, Any]:
    """Encode a clip sample (keys as returned by :func:`decode_sample`) into tar members (bytes)."""
    if rgb_codec not in RGB_CODECS:
        raise ValueError(f"rgb_codec must be one of {RGB_CODECS}, got {rgb_codec!r}")
    key = sample.get("__key__")
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"__key__ must be a string of letters, digits, '_', '-', '/' (no dots), got {key!r}")
    rgb = np.asarray(sample["rgb"])
    meta = dict(sample.get("meta") or {})
    meta.update(
        schema_version=SCHEMA_VERSION,
        fps=float(sample["fps"]),
        num_frames=int(rgb.shape[0]),
        height=int(rgb.shape[1]),
        width=int(rgb.shape[2]),
        rgb_codec=rgb_codec,
    )
    out: dict[str, Any] = {"__key__": key, "meta.json": json.dumps(meta, sort_keys=True).encode()}
    if rgb_codec == "png":
        out.update({f"rgb.{i:04d}.png": _png(frame) for i, frame in enumerate(rgb)})
    else:
        out["rgb.npy"] = _npy(rgb.astype(np.uint8))
    out["depth.npy"] = _npy(np.asarray(sample["depth"], dtype=np.float32))
    out["K.npy"] = _npy(np.asarray(sample["K"], dtype=np.float64))
    out["c2w.npy"] = _npy(np.asarray(sample["c2w"], dtype=np.float64))
    if sample.get("dynamic") is not None:
        out["dynamic.npy"] = _npy(np.asarray(sample["dynamic"], dtype=bool))
    for name in ("semantic", "instance"):
        if sample.get(name) is not None:
            labels = np.asarray(sample[name])
            small = labels.size == 0 or (labels.min() >= 0 and labels.max() < 2**16)
            out[f"{name}.npy"] = _npy(labels.astype(np.uint16 if small else np.int32))
    if sample.get("untextured") is not None:
        out["untextured.npy"] = _npy(np.asarray(sample["untextured"], dtype=bool))
    return out


def _member(raw: dict[str, Any], name: str, load: Callable[[bytes], np.ndarray]) -> np.ndarray:
    """Decode member ``name``; errors name the member."""
    if name not in raw:
        raise ValueError(f"missing member {name}")
    try:
        return load(raw[name])
    except Exception as err:
        raise ValueError(f"{name}: cannot decode ({type(err).__name__}: {err})") from err


def _read_meta(raw: dict[str, Any]) -> dict[str, Any]:
    if "meta.json" not in raw:
        raise ValueError(
            f"missing member meta.json (members: {sorted(k for k in raw if not k.startswith('__'))})"
        )
    try:
        meta = json.loads(raw["meta.json"])
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"meta.json: expected a JSON object, cannot parse it ({err})") from err
    if not isinstance(meta, dict):
        raise ValueError(f"meta.json: expected a JSON object, got {type(meta).__name__}")
    count = meta.get("num_frames")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"meta.json: expected num_frames a positive integer, got {count!r}")
    return meta


def decode_sample(raw: dict[str, Any], frames: slice | None = None) -> dict[str, Any]:
    """Decode tar members (bytes) into arrays: rgb uint8 (T,H,W,3), depth float32 (T,H,W), K (T,3,3),
    c2w (T,4,4) float64, fps float, meta dict, optional dynamic / semantic / instance (T,H,W) and
    untextured (T,); ``__key__`` (and ``__url__`` when present) pass through. Not validated, except
    that every per-frame member must hold ``meta["num_frames"]`` frames (else ValueError naming it).

    ``frames`` keeps only those frames of every per-frame array (PNG frames outside it are not
    decoded); ``meta["num_frames"]`` still counts the stored frames."""
    meta = _read_meta(raw)
    count = meta["num_frames"]
    keep = slice(None) if frames is None else frames

    def per_frame(name: str, array: np.ndarray) -> np.ndarray:
        if array.ndim < 1 or array.shape[0] != count:
            raise ValueError(
                f"{name}: meta.json says num_frames={count}, the member holds "
                f"{array.shape[0] if array.ndim else 'no'} frames (shape {array.shape})"
            )
        return array[keep]

    out: dict[str, Any] = {k: v for k, v in raw.items() if k.startswith("__")}
    codec = meta.get("rgb_codec")
    if codec == "png":
        names = sorted(k for k in raw if k.startswith("rgb.") and k.endswith(".png"))
        if not names:
            raise ValueError("missing rgb.NNNN.png members")
        if len(names) != count:
            raise ValueError(f"meta.json says num_frames={count}, got {len(names)} rgb.NNNN.png members")
        out["rgb"] = np.stack([_member(raw, name, _load_png) for name in names[keep]])
    elif codec == "npy":
        out["rgb"] = per_frame("rgb.npy", _member(raw, "rgb.npy", _load_npy))
    else:
        raise ValueError(f"meta.json rgb_codec must be one of {RGB_CODECS}, got {codec!r}")
    for name in ("depth", "K", "c2w"):
        out[name] = per_frame(f"{name}.npy", _member(raw, f"{name}.npy", _load_npy))
    for name in (*_LABELS, "untextured"):
        if f"{name}.npy" in raw:
            array = per_frame(f"{name}.npy", _member(raw, f"{name}.npy", _load_npy))
            out[name] = array.astype(np.int32) if name in ("semantic", "instance") else array
    out["fps"] = meta.get("fps")
    out["meta"] = meta
    return out


def validate_sample(
    sample: dict[str, Any], atol: float = 1e-4, plausibility: Plausibility | None = PLAUSIBLE
) -> dict[str, Any]:
    """Check a decoded sample against the schema; return it, or raise ValueError naming the problem.

    Checks: schema version; rgb uint8 (T,H,W,3); depth (T,H,W) finite and >= 0; K (T,3,3) valid
    intrinsics with the principal point inside the image; c2w (T,4,4) rigid (rotation orthonormal
    within ``atol``); fps finite > 0; optional labels (T,H,W) and untextured (T,); then the
    ``plausibility`` bounds (None: not checked).
    """
    import torch

    from aether.geometry import check_intrinsics, check_poses

    version = sample["meta"].get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"schema_version must be an int in [1, {SCHEMA_VERSION}], got {version!r}")
    rgb = sample["rgb"]
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.shape[0] < 1:
        raise ValueError(f"rgb must be uint8 (T,H,W,3), got {rgb.dtype} {rgb.shape}")
    frames, height, width = rgb.shape[:3]
    depth = sample["depth"]
    if depth.shape != (frames, height, width) or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(
            f"depth must be float (T,H,W)={(frames, height, width)}, got {depth.dtype} {depth.shape}"
        )
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise ValueError("depth must be finite and >= 0 (invalid = 0), got NaN/inf or negative values")
    K, c2w = sample["K"], sample["c2w"]
    if K.shape != (frames, 3, 3) or c2w.shape != (frames, 4, 4):
        raise ValueError(f"K must be (T,3,3) and c2w (T,4,4) with T={frames}, got {K.shape} and {c2w.shape}")
    check_intrinsics(torch.from_numpy(K.astype(np.float64)), name="K", atol=atol)
    cx, cy = K[:, 0, 2], K[:, 1, 2]
    if ((cx < -0.5) | (cx > width - 0.5) | (cy < -0.5) | (cy > height - 0.5)).any():
        raise ValueError(
            f"K principal point must lie inside the {height}x{width} image, got cx in "
            f"[{cx.min():.1f}, {cx.max():.1f}], cy in [{cy.min():.1f}, {cy.max():.1f}]"
        )
    check_poses(torch.from_numpy(c2w.astype(np.float64)), name="c2w", atol=atol)
    fps = sample["fps"]
    if not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite positive number, got {fps!r}")
    for name in _LABELS:
        if name in sample and sample[name].shape != (frames, height, width):
            raise ValueError(f"{name} must be (T,H,W)={(frames, height, width)}, got {sample[name].shape}")
    if "untextured" in sample and sample["untextured"].shape != (frames,):
        raise ValueError(f"untextured must be (T,)={(frames,)}, got {sample['untextured'].shape}")
    if plausibility is not None:
        plausibility.check(sample)
    return sample


# ---------------------------------------------------------------------------------------------
# writing


class _AtomicOpener:
    """Opens ``<name>.partial`` for each shard and renames it to ``<name>`` once it is complete."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.partial: str | None = None
        self.written: list[str] = []

    def open(self, name: str) -> Any:
        import fsspec

        self.partial = f"{name}.partial"
        self.stream = fsspec.open(self.partial, "wb").open()
        return self.stream

    def commit(self, name: str) -> None:
        import fsspec

        self.stream.close()
        fs, path = fsspec.core.url_to_fs(name)
        fs.mv(fsspec.core.url_to_fs(self.partial)[1], path)
        self.stream, self.partial = None, None
        self.written.append(name)

    def abort(self) -> None:
        import fsspec

        if self.stream is not None:
            self.stream.close()
            fs, path = fsspec.core.url_to_fs(self.partial)
            if fs.exists(path):
                fs.rm(path)
            self.stream, self.partial = None, None


def write_shards(
    samples: Iterable[dict[str, Any]],
    pattern: str,
    maxcount: int = 100,
    maxsize: float = 3e9,
    *,
    rgb_codec: str = "png",
    validate: bool = True,
    progress: Callable[[int], None] | None = None,
    start: int = 0,
) -> list[str]:
    """Write clip samples into WebDataset shards named ``pattern % index`` (e.g. ``out/clips-%06d.tar``),
    indices from ``start``.

    Each shard holds at most ``maxcount`` samples and is closed once it reaches ``maxsize`` bytes.
    Samples are validated first (``validate``). ``progress(n)`` is called after each sample.
    Returns the shard names written, in order; an exception removes the incomplete shard.
    """
    import webdataset as wds

    try:
        pattern % 0
    except TypeError as err:
        raise ValueError(f"pattern must contain one %-format for the shard index, got {pattern!r}") from err
    if maxcount < 1 or maxsize <= 0:
        raise ValueError(f"need maxcount >= 1 and maxsize > 0, got {maxcount} and {maxsize}")
    parent = Path(pattern % 0).parent
    if "://" not in pattern:
        parent.mkdir(parents=True, exist_ok=True)
    opener = _AtomicOpener()
    writer = None
    try:
        for sample in samples:
            if validate:
                try:
                    validate_sample(
                        {**sample, "meta": {**(sample.get("meta") or {}), "schema_version": SCHEMA_VERSION}}
                    )
                except ValueError as err:
                    raise ValueError(f"sample {sample.get('__key__')!r}: {err}") from err
            encoded = encode_sample(sample, rgb_codec=rgb_codec)
            if writer is None:
                writer = wds.ShardWriter(
                    pattern, maxcount=maxcount, maxsize=maxsize, post=opener.commit, opener=opener.open,
                    verbose=0, encoder=False, start_shard=start,
                )  # fmt: skip
            writer.write(encoded)
            if progress is not None:
                progress(1)
    except BaseException:
        if writer is not None and writer.tarstream is not None:
            writer.tarstream.close()  # the tar trailer goes to the .partial file, removed next
        opener.abort()
        raise
    if writer is not None:
        writer.close()
    return opener.written


def prepare_output(out: str | Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Make ``out`` ready for a run's outputs, so runs never mix: a new or empty folder is used as
    is; a non-empty one is cleared with ``overwrite``, continued with ``resume``, refused otherwise.
    A path that is a file is refused. Errors are ValueError naming the path. ``.partial`` leftovers
    of an interrupted run (never read by anything) are removed first and do not count."""
    import shutil

    out = Path(out)
    if overwrite and resume:
        raise ValueError("--overwrite and --resume exclude each other: clear the folder or continue it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder: expected a folder, {out} is a file")
    for stale in out.glob("*.partial") if out.is_dir() else ():  # an interrupted run's incomplete files
        stale.unlink()
    if out.is_dir() and any(out.iterdir()):
        if overwrite:
            for entry in out.iterdir():
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        elif not resume:
            entries = sum(1 for _ in out.iterdir())
            raise ValueError(
                f"output folder {out} is not empty ({entries} entries): pass --overwrite to clear it "
                "or --resume to continue the run that wrote it"
            )
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_settings(path: str | Path, settings: dict[str, Any], resume: bool) -> None:
    """Record a run's ``settings`` at ``path`` (JSON, atomically); on ``resume`` first check that
    they equal the recorded ones (ValueError listing the differences)."""
    import os

    path = Path(path)
    if resume and path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except ValueError as err:
            raise ValueError(f"{path}: cannot parse the recorded settings ({err})") from err
        current = json.loads(json.dumps(settings))
        changed = {k: (recorded.get(k), current.get(k)) for k in sorted(set(recorded) | set(current))}
        changed = {k: v for k, v in changed.items() if v[0] != v[1]}
        if changed:
            listed = ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in changed.items())
            raise ValueError(f"--resume: the settings differ from the run recorded in {path}: {listed}")
        return
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
    os.replace(tmp, path)


def shard_keys(path: str | Path) -> list[str]:
    """Sample keys of a local tar shard, in order (member headers only)."""
    keys: list[str] = []
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            key, _ = _split_name(member.name)
            if key is not None and (not keys or keys[-1] != key):
                keys.append(key)
    return keys


# ---------------------------------------------------------------------------------------------
# reading


def expand_urls(urls: str | Sequence[str]) -> list[str]:
    """Expand shard URLs: brace patterns (``a-{000..009}.tar``), ``::``-separated lists, local
    directories (all ``*.tar`` inside, sorted) and local glob patterns; other URLs (``pipe:``,
    fsspec URLs such as ``s3://``) pass through."""
    import braceexpand

    items = [urls] if isinstance(urls, str) else list(urls)
    out: list[str] = []
    for item in items:
        for part in str(item).split("::"):
            for url in braceexpand.braceexpand(part):
                if url.startswith("pipe:") or "://" in url:
                    out.append(url)
                elif Path(url).is_dir():
                    out.extend(sorted(str(p) for p in Path(url).glob("*.tar")))
                elif any(c in url for c in "*?["):
                    out.extend(sorted(str(p) for p in Path("/").glob(str(Path(url).resolve())[1:])))
                else:
                    out.append(url)
    return out


def open_url(url: str) -> Any:
    """A binary read stream for a local path, a ``pipe:`` command or an fsspec URL."""
    if url.startswith("pipe:"):
        from webdataset.gopen import gopen

        return gopen(url, "rb")
    if "://" not in url or url.startswith("file://"):
        return open(url.removeprefix("file://"), "rb")
    import fsspec

    return fsspec.open(url, "rb").open()


def _split_name(name: str) -> tuple[str | None, str | None]:
    match = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", name)
    return (match.group(1), match.group(2)) if match else (None, None)


def _close(stream: Any) -> Exception | None:
    """Close a source; the error it raises (a ``pipe:`` command's exit status, an fsspec flush)."""
    try:
        stream.close()
    except Exception as err:
        return err
    return None


def iter_raw_samples(url: str) -> Iterator[dict[str, Any]]:
    """Raw samples (member name → bytes, plus ``__key__``, ``__url__``) of one tar shard.

    A read error (unopenable source, truncated member, a ``pipe:`` command failing at close) ends
    the shard with one record holding ``__error__`` (the exception) and the key being read, if any
    (None for an error of the source itself). A member name met twice in a row starts a new
    sample (a duplicated key, reported by :func:`iter_samples`).
    """
    current: dict[str, Any] | None = None
    stream = None
    error: Exception | None = None
    try:
        stream = open_url(url)
        seekable = getattr(stream, "seekable", lambda: False)()
        mode = "r:*" if seekable else "r|*"  # random access reads members without stream copies
        with tarfile.open(fileobj=stream, mode=mode, bufsize=1 << 20) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = _split_name(member.name)
                if key is None:
                    continue
                if current is not None and (current["__key__"] != key or ext in current):
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key, "__url__": url}
                data = tar.extractfile(member).read()
                if len(data) != member.size:
                    raise tarfile.ReadError(
                        f"member {member.name} truncated: {len(data)} of {member.size} bytes"
                    )
                current[ext] = data
    except Exception as err:
        error = err
    finally:
        closing = None if stream is None else _close(stream)
    if error is not None:  # the sample being read is incomplete
        where = None if current is None else current["__key__"]
        yield {"__key__": where, "__url__": url, "__error__": error}
        return
    if current is not None:
        yield current
    if closing is not None:  # every sample was read whole; the source itself reports a failure
        error = OSError(f"closing the source failed: {type(closing).__name__}: {closing}")
        yield {"__key__": None, "__url__": url, "__error__": error}


class DuplicateKeyError(ValueError):
    """A sample key met again: in the same shard, or with the same content in another shard."""


def fingerprint(raw: dict[str, Any], sample_bytes: int = 1 << 16) -> str:
    """A content hash of a raw sample (key and source excluded): every member's name and size,
    ``meta.json`` whole, and ``sample_bytes`` from the start, middle and end of the other members
    (cheap on large members, and two different clips agree on all of it only by accident)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(k for k in raw if not k.startswith("__")):
        data = raw[name]
        digest.update(f"{name}:{len(data)};".encode())
        if name == "meta.json" or len(data) <= 3 * sample_bytes:
            digest.update(data)
        else:
            middle = (len(data) - sample_bytes) // 2
            for begin in (0, middle, len(data) - sample_bytes):
                digest.update(data[begin : begin + sample_bytes])
    return digest.hexdigest()


def iter_samples(
    urls: str | Sequence[str],
    *,
    on_error: Callable[[str, str | None, Exception], None] | None = None,
    select: Callable[[int], bool] | None = None,
    window: Callable[[dict[str, Any], str], slice] | None = None,
    plausibility: Plausibility | None = PLAUSIBLE,
) -> Iterator[dict[str, Any]]:
    """Decoded, validated samples from shards ``urls`` (expanded with :func:`expand_urls`).

    Bad samples (unreadable, truncated, failing :func:`validate_sample` or the ``plausibility``
    bounds) and failing sources are skipped and reported through ``on_error(url, key, error)``
    (default: a warning; key None for a source error). Duplicates are reported as
    :class:`DuplicateKeyError` and yielded once: a key repeated within a shard, or repeated in a
    later shard with identical content; a later shard's different sample under a used key is
    yielded, with a warning. ``select(i)`` keeps only the i-th samples (counted over all samples
    read, good or bad) for which it returns True; unselected samples are not decoded.
    ``window(meta, key)`` returns the frames to decode (a slice; it may raise ValueError to skip
    the sample); only those are decoded and validated.
    """
    report = on_error or _warn
    index = 0
    seen: dict[str, tuple[str, str]] = {}  # key -> (url, fingerprint) of its first sample
    for url in expand_urls(urls):
        in_shard: set[str] = set()
        for raw in iter_raw_samples(url):
            keep = select is None or select(index)
            index += 1
            if not keep:
                continue
            if "__error__" in raw:
                report(url, raw["__key__"], raw["__error__"])
                continue
            key = raw["__key__"]
            if key in in_shard:
                report(url, key, DuplicateKeyError(f"key {key!r} appears twice in the shard; kept the first"))
                continue
            in_shard.add(key)
            if key in seen:
                first_url, first_print = seen[key]
                if fingerprint(raw) == first_print:
                    report(
                        url,
                        key,
                        DuplicateKeyError(f"same sample as key {key!r} of {first_url}; kept that one"),
                    )
                    continue
                warnings.warn(
                    f"key {key!r} of {url} also names a different sample of {first_url}; both are read",
                    RuntimeWarning,
                    stacklevel=2,
                )
            else:
                seen[key] = (url, fingerprint(raw))
            try:
                frames = None
                if window is not None:
                    frames = window(_read_meta(raw), key)
                yield validate_sample(decode_sample(raw, frames), plausibility=plausibility)
            except Exception as err:
                report(url, key, err)


def _warn(url: str, key: str | None, error: Exception) -> None:
    what = f"source {url}" if key is None else f"sample {key!r} of shard {url}"
    warnings.warn(f"skipping {what}: {error}", RuntimeWarning, stacklevel=3)


class ShardReader:
    """Iterate validated samples of shards, counting the bad ones (``skipped``).

    Example: ``for sample in ShardReader("data/clips-{000000..000009}.tar"): ...``
    """

    def __init__(self, urls: str | Sequence[str], plausibility: Plausibility | None = PLAUSIBLE) -> None:
        self.urls = expand_urls(urls)
        self.plausibility = plausibility
        self.skipped = 0
        self.errors: list[tuple[str, str | None, str]] = []  # (url, key, message) of each skip

    def _report(self, url: str, key: str | None, error: Exception) -> None:
        self.skipped += 1
        self.errors.append((url, key, str(error)))
        _warn(url, key, error)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter_samples(self.urls, on_error=self._report, plausibility=self.plausibility)
