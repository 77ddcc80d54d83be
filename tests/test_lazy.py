"""Lazy package attributes resolve on first access, to the module itself or a name inside it."""

import sys
import types

import pytest

from aether.lazy import lazy_attributes


def test_resolves_names_and_modules_and_caches(monkeypatch):
    pkg = types.ModuleType("fakepkg")
    monkeypatch.setitem(sys.modules, "fakepkg", pkg)
    getattr_, dir_ = lazy_attributes("fakepkg", {"sqrt": "math", "json": "json"})
    assert getattr_("sqrt")(9.0) == 3.0
    assert getattr_("json") is sys.modules["json"]
    assert vars(pkg)["sqrt"] is getattr_("sqrt")  # cached in the package namespace
    assert {"sqrt", "json"} <= set(dir_())
    with pytest.raises(AttributeError, match="module 'fakepkg' has no attribute 'nope'"):
        getattr_("nope")
