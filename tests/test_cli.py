"""The `aether` dispatcher: instant help, unknown commands, one-line errors."""

import subprocess
import sys
import time

import pytest

from aether import cli


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_exits_2(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_every_command_module_exposes_main():
    import importlib

    for module, _ in cli.COMMANDS.values():
        assert callable(importlib.import_module(module).main), module


def test_value_error_becomes_one_line_error(monkeypatch, capsys):
    import types

    def boom(argv, prog):
        raise ValueError("expected 17 frames, got 3")

    fake = types.SimpleNamespace(main=boom)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_module", "x"))
    monkeypatch.setattr(cli.importlib, "import_module", lambda name: fake)
    assert cli.main(["fake"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "aether fake: error: expected 17 frames, got 3"


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_console_script_is_fast(args):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "aether.cli", *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 2.0, f"`aether {args[0]}` took {elapsed:.2f} s"


def test_import_aether_is_light():
    code = "import sys, aether; print(any(m == 'torch' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
