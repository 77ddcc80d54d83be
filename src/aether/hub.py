"""Hub ids without waiting: whether the Hugging Face hub can be used now, and one-line failures that
say what was needed, where a local copy was looked for and how to pass a local folder instead.

No heavy imports: commands check a hub id before they load torch.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
from pathlib import Path

HUB_PROBE_SECONDS = 3.0  # how long the hub's endpoint may take to accept a connection
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
SPEC_FILE = "aether_config.json"  # a model folder's AetherModelSpec (aether.models.spec)


def looks_local(model: str | os.PathLike) -> bool:
    """Whether ``model`` can only be a local path: it exists, or it is not a hub id (``NAME`` or
    ``OWNER/NAME``): absolute, starting with ``.`` or ``~``, or with more than one ``/``."""
    text = str(model)
    return (
        Path(text).exists()
        or Path(text).is_absolute()
        or text.startswith((".", "~"))
        or "\\" in text
        or text.rstrip("/").count("/") > 1
    )


def require_local(model: str | os.PathLike, what: str) -> None:
    """FileNotFoundError naming ``model`` as a missing local folder when it can only be a local path
    (:func:`looks_local`) and is not a folder; nothing otherwise (a folder, or a possible hub id)."""
    path = Path(model).expanduser()
    if looks_local(model) and not path.is_dir():
        state = "is a file, not a folder" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{what}: the local folder {model} {state} (a hub id is OWNER/NAME)")


def cache_dir(*parts: str) -> Path:
    """Where aether caches what it computes (never inside a model folder): ``$AETHER_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/aether``, else ``~/.cache/aether``; ``parts`` are joined below it."""
    root = (
        os.environ.get("AETHER_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "aether"
    )
    return Path(root).expanduser().joinpath(*parts)


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be used now, or None: ``HF_HUB_OFFLINE`` is set, or its endpoint
    (``HF_ENDPOINT``) accepts no connection within :data:`HUB_PROBE_SECONDS` (name lookup included).
    Behind a proxy (``HTTPS_PROXY``, ...) the hub client is left to find out."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    url = urllib.parse.urlsplit(constants.ENDPOINT)
    address = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            socket.create_connection(address, timeout=HUB_PROBE_SECONDS).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(err)

    thread = threading.Thread(target=probe, daemon=True)  # a name lookup can hang past any timeout
    thread.start()
    thread.join(HUB_PROBE_SECONDS)
    if not outcome:
        return f"{constants.ENDPOINT} did not answer within {HUB_PROBE_SECONDS:g} s"
    err = outcome[0]
    return (
        None
        if err is None
        else f"{constants.ENDPOINT} cannot be reached ({getattr(err, 'strerror', None) or err})"
    )


def hub_missing_message(repo_id: str, needed: str, why: str) -> str:
    """One line: what was needed from the hub, why it is not there, where a local copy was looked for,
    and how to pass a local folder instead."""
    from huggingface_hub import constants

    return (
        f"{repo_id}: not a local folder, and {needed} cannot come from the hub ({why}); no copy in the "
        f"local cache {constants.HF_HUB_CACHE} (HF_HUB_CACHE). Pass a local folder instead (--model DIR / "
        f"from_pretrained(DIR)): download it where the hub is reachable with `hf download {repo_id} "
        "--local-dir DIR`, or make a small test model with `aether tiny-model DIR`"
    )


def check_hub_source(repo_id: str, needed: str, probe_file: str) -> None:
    """Fail at once, with :func:`hub_missing_message`, when the hub cannot be used and ``probe_file`` of
    ``repo_id`` is not in the local cache (instead of the hub client's retries)."""
    why = hub_unreachable()
    if why is None:
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo_id, probe_file), str):
        raise FileNotFoundError(hub_missing_message(repo_id, needed, why))


def cached_model_spec(repo_id: str, why: str) -> Path | None:
    """With the hub unusable (``why``): the folder of ``repo_id``'s cached spec, None for a cached
    model without one (the released AetherV1); FileNotFoundError when the model is not cached."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, SPEC_FILE)
    if isinstance(cached, str):
        return Path(cached).parent
    if isinstance(try_to_load_from_cache(repo_id, "transformer/config.json"), str):
        return None
    raise FileNotFoundError(hub_missing_message(repo_id, "the model (its transformer/)", why))


def check_model_id(model: str | os.PathLike, probe_file: str | None = None, what: str = "model") -> None:
    """Nothing for a local path or a hub id that can be had; FileNotFoundError (one line, naming
    ``what``) for a missing local folder, or for a hub id when the hub cannot be used and the local
    cache lacks the model (``probe_file`` of it, default: an Aether model's spec or transformer config)."""
    if looks_local(model):
        require_local(model, what)
        return
    if probe_file is not None:
        check_hub_source(str(model), f"its {probe_file}", probe_file)
        return
    why = hub_unreachable()
    if why is not None:
        cached_model_spec(str(model), why)
