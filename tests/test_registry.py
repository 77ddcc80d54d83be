from types import SimpleNamespace

import pytest

import aether
from aether import registry as registry_module
from aether.registry import Registry


class FakeEntryPoint:
    def __init__(self, name, obj, group):
        self.name, self.obj, self.group = name, obj, group
        self.loaded = 0

    def load(self):
        self.loaded += 1
        return self.obj


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace entry-point discovery: ``.points`` to offer, ``.groups`` the groups scanned."""
    fake = SimpleNamespace(points=[], groups=[])

    def entry_points(*, group):
        fake.groups.append(group)
        return [ep for ep in fake.points if ep.group == group]

    monkeypatch.setattr(registry_module, "entry_points", entry_points)
    return fake


def test_register_get_build_names():
    reg = Registry("widget")

    @reg.register("square")
    class Square:
        def __init__(self, side=1):
            self.side = side

    def triangle(side=2):
        return ("triangle", side)

    assert reg.register("triangle", triangle) is triangle
    assert reg.get("square") is Square
    assert reg.build("square", side=3).side == 3
    assert reg.build("triangle") == ("triangle", 2)
    assert reg.names() == ["square", "triangle"]
    assert "square" in reg and "circle" not in reg and 5 not in reg
    assert list(reg) == ["square", "triangle"] and len(reg) == 2
    reg.register("square", Square)  # re-registering the same object is a no-op


def test_errors_name_what_is_known():
    reg = Registry("widget")
    reg.register("square", int)
    with pytest.raises(ValueError, match="unknown widget 'circle'; known: square"):
        reg.get("circle")
    with pytest.raises(ValueError, match="unknown widget 'x'; known: none"):
        Registry("widget").get("x")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("square", float)
    with pytest.raises(ValueError, match="non-empty string"):
        reg.register("")


def test_plugins_are_discovered_once_and_never_override(fake_entry_points):
    class Plugin:
        pass

    builtin, shadow = object(), object()
    plugin = FakeEntryPoint("plugin", Plugin, "example.group")
    fake_entry_points.points += [
        plugin,
        FakeEntryPoint("builtin", shadow, "example.group"),
        FakeEntryPoint("elsewhere", object(), "other.group"),
    ]
    reg = Registry("widget", "example.group")
    reg.register("builtin", builtin)
    assert reg.get("builtin") is builtin  # known names do not trigger discovery
    assert fake_entry_points.groups == []
    assert reg.get("plugin") is Plugin
    assert reg.names() == ["builtin", "plugin"]
    assert reg.get("builtin") is builtin
    assert fake_entry_points.groups == ["example.group"] and plugin.loaded == 1
    with pytest.raises(ValueError, match="unknown widget 'elsewhere'; known: builtin, plugin"):
        reg.get("elsewhere")


@pytest.mark.parametrize(
    ("attr", "group", "builtins"),
    [
        ("MODALITIES", "aether.modalities", ["cache", "color", "disparity", "raymap"]),
        ("TASKS", "aether.tasks", ["planning", "prediction", "reconstruction"]),
        ("LATENT_BACKENDS", "aether.latent_backends", ["cogvideox", "tiny"]),
    ],
)
def test_library_registries_discover_their_groups(monkeypatch, fake_entry_points, attr, group, builtins):
    reg = getattr(aether, attr)
    assert reg.group == group
    monkeypatch.setattr(reg, "_items", dict(reg._items))
    monkeypatch.setattr(reg, "_plugins_loaded", False)

    class ThirdParty:
        pass

    fake_entry_points.points.append(FakeEntryPoint("third_party", ThirdParty, group))
    assert reg.get("third_party") is ThirdParty
    assert reg.names() == sorted([*builtins, "third_party"])
