"""Command help is instant (no torch import before the options parse) and shows the defaults."""

import subprocess
import sys
import time

import pytest

COMMANDS = ["reconstruct", "predict", "plan", "tiny-model", "view", "app", "bench", "annotate", "synth"]


def _help(*argv: str) -> str:
    code = (
        "import sys\nfrom aether import cli\n"
        f"try:\n    cli.main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')"
    )
    return code


@pytest.mark.parametrize("argv", [["data", "--help"], ["data", "verify", "--help"]])
def test_data_help_imports_no_torch(argv):
    proc = subprocess.run([sys.executable, "-c", _help(*argv)], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().endswith("LIGHT"), proc.stdout[-300:]
    assert "usage: aether data" in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_no_torch_and_shows_defaults(command):
    code = _help(command, "--help")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    assert proc.stdout.strip().endswith("LIGHT"), proc.stdout[-300:]
    assert "(default:" in proc.stdout
    assert elapsed < 2.0, f"`aether {command} --help` took {elapsed:.2f} s"
