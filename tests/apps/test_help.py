"""Command help is instant (no torch import before the options parse) and shows the defaults."""

import subprocess
import sys
import time

import pytest

COMMANDS = ["reconstruct", "predict", "plan", "tiny-model", "view", "app"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_no_torch_and_shows_defaults(command):
    code = (
        "import sys\nfrom aether import cli\n"
        f"try:\n    cli.main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    assert proc.stdout.strip().endswith("LIGHT"), proc.stdout[-300:]
    assert "(default:" in proc.stdout
    assert elapsed < 2.0, f"`aether {command} --help` took {elapsed:.2f} s"
