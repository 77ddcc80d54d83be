"""Lazy package attributes: names resolve to their module on first access, so importing a package
stays cheap (``aether --help`` and ``import aether`` load no torch)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps an attribute to the module that holds it; when the module's own name ends in
    the attribute (``"geometry": "aether.geometry"``) the attribute is the module itself. A
    resolved attribute is cached in the package's namespace.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(names[name])
        value = module if names[name].rsplit(".", 1)[-1] == name else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*names, *vars(sys.modules[package])})

    return __getattr__, __dir__
