"""Optional packages of the newcomer commands, imported with a one-line message when absent."""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS = {"rerun": ("rerun-sdk", "rerun"), "gradio": ("gradio", "app")}
"""module -> (PyPI package, the aether extra that installs it)."""


def require(module: str, needed_by: str) -> ModuleType:
    """Import ``module`` or raise a ValueError naming the package and the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package, extra = EXTRAS[module]
        raise ValueError(
            f"{needed_by} needs the optional package {package}, which is not installed: "
            f"pip install 'aether[{extra}]' (or pip install {package})"
        ) from None
