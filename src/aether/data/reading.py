"""Reading shards as webdataset-style stages, each a plain generator, composed by
:func:`iter_samples`:

``open_url`` (a local path, a ``pipe:`` command with a read timeout, an fsspec URL) →
``tar_file_expander`` (member name, bytes) → ``group_by_keys`` (raw samples: member → bytes) →
``verified`` (checksums against the shard index) → ``deduplicated`` → decode and validate
(:mod:`aether.data.schema`).

Reading never lets one bad sample or source stop a stream: a sample that cannot be decoded, fails
its checksum, breaks the schema, disagrees with its ``meta.json`` or falls outside the
:class:`~aether.data.schema.Plausibility` bounds is skipped and reported (``on_error``, counted by
:class:`ShardReader` and the DataModule); a source that fails to open, read (no byte for
``read_timeout`` seconds from a ``pipe:`` command) or close is reported the same way (key None)
and the next one is read. A ``pipe:`` command still running when its source is closed is killed.

Each sample content (key and members' bytes) is read once per pass: a key met twice in one shard
is yielded once; a key met again in another shard with the same content is skipped; the same key
with different content is warned about and both are read. A pass split between ranks × workers
(``part``) keeps that guarantee: with every shard indexed, duplicate groups are assigned from the
indices before the shards are split; otherwise every part reads every sample's bytes, deduplicates
the same way and keeps its share of the records.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import tarfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aether.data.index import INDEX_SUFFIX, content_key, index_url, load_index, member_digests, verify_members
from aether.data.schema import PLAUSIBLE, Plausibility, decode_sample, read_meta, validate_sample

__all__ = [
    "PIPE_READ_TIMEOUT",
    "DuplicateKeyError",
    "ShardReader",
    "expand_urls",
    "fingerprint",
    "group_by_keys",
    "iter_raw_samples",
    "iter_samples",
    "open_url",
    "split_name",
    "tar_file_expander",
]

PIPE_READ_TIMEOUT = 120.0  # seconds a ``pipe:`` command may stay silent before its source fails


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


class PipeSource:
    """The standard output of a shell command as a binary read stream: a read that gets no byte
    for ``timeout`` seconds raises TimeoutError; ``close`` kills the command (its process group)
    when it still runs and raises OSError when it ended with a non-zero status by itself."""

    def __init__(self, command: str, timeout: float = PIPE_READ_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"read_timeout: expected a positive number of seconds, got {timeout!r}")
        self.command, self.timeout = command, timeout
        self.process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, start_new_session=True)
        self.fd = self.process.stdout.fileno()

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        size = 1 << 20 if size is None or size < 0 else size
        deadline = time.monotonic() + self.timeout
        while True:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                return os.read(self.fd, size)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"pipe:{self.command}: no data for {self.timeout:g} s (read_timeout)")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=min(self.timeout, 1.0))  # a command finishing its output
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                self.process.stdout.close()
                return
        self.process.stdout.close()
        if self.process.returncode != 0:
            raise OSError(f"pipe:{self.command} exited with status {self.process.returncode}")


def open_url(url: str, read_timeout: float = PIPE_READ_TIMEOUT) -> Any:
    """A binary read stream for a local path, a ``pipe:`` command (see :class:`PipeSource`) or an
    fsspec URL."""
    if url.startswith("pipe:"):
        return PipeSource(url.removeprefix("pipe:"), read_timeout)
    if "://" not in url or url.startswith("file://"):
        return open(url.removeprefix("file://"), "rb")
    import fsspec

    return fsspec.open(url, "rb").open()


def split_name(name: str) -> tuple[str | None, str | None]:
    """A tar member name split into (sample key, member), or (None, None) without a dot."""
    match = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", name)
    return (match.group(1), match.group(2)) if match else (None, None)


def _close(stream: Any) -> Exception | None:
    """Close a source; the error it raises (a ``pipe:`` command's exit status, an fsspec flush)."""
    try:
        stream.close()
    except Exception as err:
        return err
    return None


def tar_file_expander(stream: Any) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of the regular files of a tar stream; a truncated member raises
    tarfile.ReadError."""
    seekable = getattr(stream, "seekable", lambda: False)()
    mode = "r:*" if seekable else "r|*"  # random access reads members without stream copies
    with tarfile.open(fileobj=stream, mode=mode, bufsize=1 << 20) as tar:
        for member in tar:
            if not member.isfile():
                continue
            data = tar.extractfile(member).read()
            if len(data) != member.size:
                raise tarfile.ReadError(f"member {member.name} truncated: {len(data)} of {member.size} bytes")
            yield member.name, data


def group_by_keys(
    members: Iterable[tuple[str, bytes]], url: str, state: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Raw samples (member → bytes, plus ``__key__``, ``__url__``) from consecutive members of one
    key; a member met twice in a row starts a new sample (a duplicated key). ``state["current"]``
    holds the sample being assembled (for error reports)."""
    for name, data in members:
        key, ext = split_name(name)
        if key is None:
            continue
        current = state.get("current")
        if current is not None and (current["__key__"] != key or ext in current):
            state["current"] = None
            yield current
        if state.get("current") is None:
            state["current"] = {"__key__": key, "__url__": url}
        state["current"][ext] = data
    if state.get("current") is not None:
        current, state["current"] = state["current"], None
        yield current


def iter_raw_samples(url: str, read_timeout: float = PIPE_READ_TIMEOUT) -> Iterator[dict[str, Any]]:
    """Raw samples of one tar shard (see :func:`group_by_keys`).

    A read error (unopenable source, truncated member, a silent ``pipe:`` command, one failing at
    close) ends the shard with one record holding ``__error__`` (the exception) and the key being
    read, if any (None for an error of the source itself). An empty shard yields one record whose
    ``__error__`` says so. Closing the generator early closes (kills) the source.
    """
    state: dict[str, Any] = {}
    stream = None
    error: Exception | None = None
    count = 0
    try:
        stream = open_url(url, read_timeout)
        for raw in group_by_keys(tar_file_expander(stream), url, state):
            count += 1
            yield raw
    except Exception as err:
        error = err
    finally:
        closing = None if stream is None else _close(stream)
    if error is not None:  # the sample being read is incomplete
        where = None if state.get("current") is None else state["current"]["__key__"]
        yield {"__key__": where, "__url__": url, "__error__": error}
        return
    if closing is not None:  # every sample was read whole; the source itself reports a failure
        error = OSError(f"closing the source failed: {type(closing).__name__}: {closing}")
        yield {"__key__": None, "__url__": url, "__error__": error}
    elif count == 0:
        yield {
            "__key__": None,
            "__url__": url,
            "__error__": ValueError("the shard holds no sample (empty tar)"),
        }


class DuplicateKeyError(ValueError):
    """A sample key met again: in the same shard, or with the same content in another shard."""


def fingerprint(raw: dict[str, Any]) -> str:
    """The content key of a raw sample (:func:`aether.data.index.content_key` of its members'
    sizes and SHA-256; key and source excluded)."""
    return content_key(member_digests(raw))


def verified(
    raws: Iterable[dict[str, Any]], index: dict[str, Any] | None, url: str
) -> Iterator[dict[str, Any]]:
    """Raw samples with ``__content__`` (their content key) set; with the shard's ``index``, a
    sample whose members differ from it becomes an ``__error__`` record naming the member."""
    where = index_url(url)
    for raw in raws:
        if "__error__" in raw:
            yield raw
            continue
        try:
            if index is None:
                raw["__content__"] = fingerprint(raw)
            else:
                raw["__content__"] = verify_members(raw, index.get(raw["__key__"]), where)
        except ValueError as err:
            raw = {"__key__": raw["__key__"], "__url__": url, "__error__": err}
        yield raw


def deduplicated(
    records: Iterable[dict[str, Any]], skip: set[tuple[str, str]] | None = None
) -> Iterator[dict[str, Any]]:
    """Records of several shards in reading order, duplicates turned into ``__error__`` records
    (:class:`DuplicateKeyError`): a key repeated within a shard, a (key, content) met in an
    earlier shard, and the (url, key) pairs in ``skip`` (duplicates planned from the indices).
    Different content under a used key is kept, with a warning."""
    seen: dict[str, tuple[str, str]] = {}  # key -> (url, content key) of its first sample
    in_shard: tuple[str | None, set[str]] = (None, set())
    for raw in records:
        if "__error__" in raw:
            yield raw
            continue
        url, key = raw["__url__"], raw["__key__"]
        if in_shard[0] != url:
            in_shard = (url, set())
        duplicate = None
        if key in in_shard[1]:
            duplicate = DuplicateKeyError(f"key {key!r} appears twice in the shard; kept the first")
        elif skip is not None and (url, key) in skip:
            duplicate = DuplicateKeyError(f"same sample as key {key!r} of an earlier shard; kept that one")
        elif key in seen and seen[key][1] == raw["__content__"]:
            duplicate = DuplicateKeyError(f"same sample as key {key!r} of {seen[key][0]}; kept that one")
        in_shard[1].add(key)
        if duplicate is not None:
            yield {"__key__": key, "__url__": url, "__error__": duplicate}
            continue
        if key in seen and seen[key][0] != url:
            warnings.warn(
                f"key {key!r} of {url} also names a different sample of {seen[key][0]}; both are read",
                RuntimeWarning,
                stacklevel=2,
            )
        seen.setdefault(key, (url, raw["__content__"]))
        yield raw


def planned_duplicates(urls: Sequence[str]) -> set[tuple[str, str]] | None:
    """(url, key) of every sample whose content an earlier shard (in ``urls`` order) holds, from the
    shard indices alone; None when a shard has no (readable) index."""
    owners: set[tuple[str, str]] = set()
    skip: set[tuple[str, str]] = set()
    for url in urls:
        try:
            index = load_index(url)
        except ValueError:
            return None
        if index is None:
            return None
        for key, members in index.items():
            content = (key, content_key(members))
            (skip.add((url, key)) if content in owners else owners.add(content))
    return skip


def _records(urls: Sequence[str], read_timeout: float) -> Iterator[dict[str, Any]]:
    for url in urls:
        try:
            index = load_index(url)
        except ValueError as err:
            yield {"__key__": None, "__url__": url, "__error__": err}
            continue
        yield from verified(iter_raw_samples(url, read_timeout), index, url)


def iter_samples(
    urls: str | Sequence[str],
    *,
    on_error: Callable[[str, str | None, Exception], None] | None = None,
    select: Callable[[int], bool] | None = None,
    part: tuple[int, int] | None = None,
    window: Callable[[dict[str, Any], str], slice] | None = None,
    plausibility: Plausibility | None = PLAUSIBLE,
    read_timeout: float = PIPE_READ_TIMEOUT,
) -> Iterator[dict[str, Any]]:
    """Decoded, validated samples from shards ``urls`` (expanded with :func:`expand_urls`).

    Bad samples (unreadable, truncated, failing their checksum, :func:`validate_sample` or the
    ``plausibility`` bounds) and failing sources are skipped and reported through
    ``on_error(url, key, error)`` (default: a warning; key None for a source error). Duplicates
    (see :func:`deduplicated`) are reported as :class:`DuplicateKeyError` and yielded once.
    ``select(i)`` keeps only the i-th records (counted over all records after deduplication, good
    or bad) for which it returns True; unselected samples are not decoded. ``part=(slot, slots)``
    yields this slot's share of an exactly-once pass split between ``slots`` readers (every record
    belongs to one slot, duplicates across the slots included). ``window(meta, key)`` returns
    the frames to decode (a slice; it may raise ValueError to skip the sample).
    """
    report = on_error or _warn
    urls = expand_urls(urls)
    skip = None
    if part is not None:
        slot, slots = part
        skip = planned_duplicates(urls) if len(urls) >= slots else None
        if skip is not None:  # every shard indexed: split the shards, the duplicates are planned
            urls = urls[slot::slots]
        else:  # every slot reads every record and keeps its share of them
            previous = select
            select = lambda i: i % slots == slot and (previous is None or previous(i))
    for index, raw in enumerate(deduplicated(_records(urls, read_timeout), skip)):
        if select is not None and not select(index):
            continue
        key = raw["__key__"]
        if "__error__" in raw:
            report(raw["__url__"], key, raw["__error__"])
            continue
        try:
            frames = None if window is None else window(read_meta(raw), key)
            yield validate_sample(decode_sample(raw, frames), plausibility=plausibility)
        except Exception as err:
            report(raw["__url__"], key, err)


def _warn(url: str, key: str | None, error: Exception) -> None:
    what = f"source {url}" if key is None else f"sample {key!r} of shard {url}"
    warnings.warn(f"skipping {what}: {error}", RuntimeWarning, stacklevel=3)


class ShardReader:
    """Iterate validated samples of shards, counting the bad ones (``skipped``).

    Example: ``for sample in ShardReader("data/clips-{000000..000009}.tar"): ...``
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        plausibility: Plausibility | None = PLAUSIBLE,
        read_timeout: float = PIPE_READ_TIMEOUT,
    ) -> None:
        self.urls = expand_urls(urls)
        self.plausibility, self.read_timeout = plausibility, read_timeout
        self.skipped = 0
        self.errors: list[tuple[str, str | None, str]] = []  # (url, key, message) of each skip

    def _report(self, url: str, key: str | None, error: Exception) -> None:
        self.skipped += 1
        self.errors.append((url, key, str(error)))
        _warn(url, key, error)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter_samples(
            self.urls, on_error=self._report, plausibility=self.plausibility, read_timeout=self.read_timeout
        )


def verify_shard(path: str) -> list[str]:
    """The sample keys of local shard ``path`` in order, every member checked against its index
    when it has one (ValueError naming the shard and the member otherwise; a damaged tar raises
    its own error naming the shard)."""
    import tarfile

    index = load_index(path)
    keys: list[str] = []
    try:
        with open(path, "rb") as stream:
            for raw in group_by_keys(tar_file_expander(stream), path, {}):
                if index is not None:
                    verify_members(raw, index.get(raw["__key__"]), f"{path}{INDEX_SUFFIX}")
                keys.append(raw["__key__"])
    except (OSError, tarfile.TarError) as err:
        raise ValueError(f"{path}: cannot read the shard ({type(err).__name__}: {err})") from err
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    if index is not None and sorted(index) != sorted(set(keys)):
        raise ValueError(f"{path}: holds keys {keys}, its index lists {sorted(index)}")
    return keys
