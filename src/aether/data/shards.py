"""WebDataset shards of RGB-D clips: writing, output folders, and the public names of the stages.

The shard format lives in :mod:`aether.data.schema` (members, codecs, validation, plausibility),
the per-shard checksums in :mod:`aether.data.index`, and reading in :mod:`aether.data.reading`
as webdataset-style stages (open a URL → expand tar members → group them into samples → verify,
deduplicate, decode and validate); their public names are importable from here too.

Shards are written under a temporary name (``<name>.partial``) and renamed when complete, so an
interrupted run never leaves a truncated shard under a name that readers pick up. Beside each shard
its index (``<name>.index.json``: keys, member sizes and SHA-256) is written first, so a shard in
place always has its checksums.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aether.data.index import index_entry, write_index
from aether.data.reading import (
    DuplicateKeyError,
    ShardReader,
    expand_urls,
    fingerprint,
    iter_raw_samples,
    iter_samples,
    open_url,
    split_name,
)
from aether.data.schema import (
    PLAUSIBLE,
    RGB_CODECS,
    SCHEMA_VERSION,
    Plausibility,
    decode_sample,
    encode_sample,
    validate_sample,
)

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

# ---------------------------------------------------------------------------------------------
# writing


class _AtomicOpener:
    """Opens ``<name>.partial`` for each shard and, once it is complete, writes its index
    (``entries``, one per sample written into it) and renames it to ``<name>``."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.partial: str | None = None
        self.written: list[str] = []
        self.entries: list[dict[str, Any]] = []

    def open(self, name: str) -> Any:
        import fsspec

        self.partial = f"{name}.partial"
        self.stream = fsspec.open(self.partial, "wb").open()
        self.entries = []
        return self.stream

    def commit(self, name: str) -> None:
        import fsspec

        self.stream.close()
        write_index(name, self.entries)
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
            writer.write(encoded)  # opens the next shard first when this one is full
            opener.entries.append(index_entry(encoded))
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
            key, _ = split_name(member.name)
            if key is not None and (not keys or keys[-1] != key):
                keys.append(key)
    return keys
