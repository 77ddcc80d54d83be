"""Shard indices: the keys of a shard and, per member, its size and SHA-256, in a JSON file
beside the shard (``<shard>.index.json``).

:func:`aether.data.shards.write_shards` writes the index before it renames the shard into place;
readers verify every member they read against it (bytes flipped inside a member that still
decodes are caught) and plan an exactly-once pass from the indices alone (duplicate samples are
assigned before the shards are split between ranks and workers). Shards without an index (written
by other tools) are read without checksums.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = [
    "INDEX_SUFFIX",
    "content_key",
    "index_entry",
    "index_url",
    "load_index",
    "member_digests",
    "verify_members",
    "write_index",
]

INDEX_SUFFIX = ".index.json"
INDEX_FORMAT = "aether-shard-index"
INDEX_VERSION = 1


def member_digests(raw: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Member name -> (size, SHA-256 hex) of a raw sample's members (``__`` fields excluded)."""
    return {
        name: (len(data), hashlib.sha256(data).hexdigest())
        for name, data in raw.items()
        if not name.startswith("__")
    }


def content_key(digests: dict[str, tuple[int, str]]) -> str:
    """A hash of a sample's content (every member's name, size and digest; the key excluded):
    two samples agree on it exactly when their members hold the same bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(digests):
        size, sha = digests[name]
        digest.update(f"{name}:{int(size)}:{sha};".encode())
    return digest.hexdigest()


def index_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """The index record of an encoded sample: ``{"key", "members": {name: [size, sha256]}}``."""
    return {"key": raw["__key__"], "members": {k: list(v) for k, v in sorted(member_digests(raw).items())}}


def index_url(url: str) -> str | None:
    """The index beside shard ``url``; None for a ``pipe:`` source (a command has no neighbour)."""
    return None if url.startswith("pipe:") else f"{url}{INDEX_SUFFIX}"


def write_index(shard: str, entries: list[dict[str, Any]]) -> str:
    """Write the index of ``shard`` (entries of :func:`index_entry`, in shard order) atomically
    (``.partial``, then renamed); returns its URL."""
    import fsspec

    target = f"{shard}{INDEX_SUFFIX}"
    partial = f"{target}.partial"
    body = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "samples": entries}
    with fsspec.open(partial, "w") as stream:
        json.dump(body, stream)
    fs, path = fsspec.core.url_to_fs(target)
    fs.mv(fsspec.core.url_to_fs(partial)[1], path)
    return target


def load_index(url: str) -> dict[str, dict[str, tuple[int, str]]] | None:
    """Key -> member digests recorded in the index of shard ``url``; None when the shard has no
    index. An index that exists but cannot be read raises ValueError naming it."""
    import fsspec

    where = index_url(url)
    if where is None:
        return None
    try:
        fs, path = fsspec.core.url_to_fs(where.removeprefix("file://"))
        if not fs.exists(path):
            return None
        with fs.open(path, "rb") as stream:
            body = json.loads(stream.read())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: cannot read the shard index ({type(err).__name__}: {err})") from err
    if (
        not isinstance(body, dict)
        or body.get("format") != INDEX_FORMAT
        or not isinstance(body.get("samples"), list)
    ):
        raise ValueError(
            f"{where}: expected a shard index ({{'format': {INDEX_FORMAT!r}, 'samples': [...]}})"
        )
    index: dict[str, dict[str, tuple[int, str]]] = {}
    try:
        for entry in body["samples"]:
            index[str(entry["key"])] = {name: (int(v[0]), str(v[1])) for name, v in entry["members"].items()}
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(f"{where}: a sample entry is malformed ({type(err).__name__}: {err})") from err
    return index


def verify_members(raw: dict[str, Any], recorded: dict[str, tuple[int, str]] | None, where: str) -> str:
    """Check a raw sample's members against its index record; return its :func:`content_key`.

    ValueError naming the index ``where``, the member and both digests on any difference (a member
    missing, extra, of another size or with other bytes); a sample absent from the index
    (``recorded`` None) is an error too."""
    digests = member_digests(raw)
    if recorded is None:
        raise ValueError(f"key {raw['__key__']!r} is not listed in the shard index {where}")
    for name in sorted(set(digests) | set(recorded)):
        if name not in digests:
            raise ValueError(f"{name}: listed in the shard index {where} but missing from the shard")
        if name not in recorded:
            raise ValueError(f"{name}: not listed in the shard index {where}")
        if digests[name] != recorded[name]:
            (size, sha), (want_size, want_sha) = digests[name], recorded[name]
            raise ValueError(
                f"{name}: checksum mismatch with the shard index {where}: expected {want_size} bytes "
                f"with sha256 {want_sha[:16]}…, read {size} bytes with sha256 {sha[:16]}… (corrupt data)"
            )
    return content_key(digests)
