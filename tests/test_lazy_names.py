"""Every lazily exported name of the public packages resolves to an object."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["aether", "aether.pipeline", "aether.evaluation", "aether.training"])
def test_every_lazy_name_resolves(package) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
