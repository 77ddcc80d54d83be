"""The CLI answers a user's mistake with one line (what was expected, what came, where) and shows
the traceback only with --debug; window plans are checked before any work."""

import subprocess
import sys

import numpy as np
import pytest

from aether import cli
from aether.models.testing import save_tiny_aether, save_tiny_base
from aether.pipeline import AetherPipeline
from aether.pipeline.windows import MAX_ASPECT, plan_windows, temporal_window_size, window_starts

from ._build import within


def _fake(monkeypatch, error):
    import types

    def boom(argv, prog):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_module", "x"))
    monkeypatch.setattr(cli.importlib, "import_module", lambda name: types.SimpleNamespace(main=boom))


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (cli.UserError("--out: expected a folder, /x is a file"), "--out: expected a folder, /x is a file"),
        (
            FileNotFoundError(2, "No such file or directory", "/data/a.npz"),
            "[Errno 2] No such file or directory: '/data/a.npz'",
        ),
        (ValueError("first line\nsecond\nthird"), "first line (+2 more lines; --debug shows all)"),
        (MemoryError(), "out of memory (is a size option too large?)"),
    ],
)
def test_user_errors_are_one_line(monkeypatch, capsys, error, line):
    _fake(monkeypatch, error)
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == f"aether fake: error: {line}\n"


def test_debug_shows_the_traceback(monkeypatch):
    _fake(monkeypatch, ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        cli.main(["fake", "--debug"])


def test_a_bug_keeps_its_traceback(monkeypatch):
    _fake(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["fake"])


def test_console_script_prints_no_traceback_and_debug_does(tmp_path):
    (tmp_path / "f").write_text("x")
    args = [sys.executable, "-m", "aether.cli", "synth", "--out", str(tmp_path / "f"), "--clips", "1"]
    plain = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert (
        plain.stderr.strip()
        == f"aether synth: error: output folder: expected a folder, {tmp_path / 'f'} is a file"
    )
    debug = subprocess.run([*args, "--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: temporal_window_size(20, 5), r"window: expected at least 17 frames .*received window=5"),
        (lambda: temporal_window_size(20, 0), "window: expected a positive integer, received 0"),
        (lambda: temporal_window_size(16), "video: need at least 17 frames, got 16"),
        (lambda: temporal_window_size(20, 41, (-3,)), "allowed frame counts: expected a positive integer"),
        (lambda: window_starts(50, 41, 0), "stride: expected a positive integer, received 0"),
        (lambda: window_starts(50, 41, 42), r"stride: expected an integer in \[1, window=41\], received 42"),
        (lambda: plan_windows(17, 1000, 1, 480, 720), r"aspect within 8x .* received 1x1000"),
        (lambda: plan_windows(10**6, 480, 720, 480, 720, stride=1), r"plan 999960 temporal x 1 spatial"),
    ],
)
def test_window_plans_are_checked_with_the_numbers(call, message):
    with within(5), pytest.raises(ValueError, match=message):
        call()


def test_window_plan_within_bounds():
    plan = plan_windows(100, 480, int(720 * MAX_ASPECT * 0.99), 480, 720, window=41, stride=24)
    assert plan.size == 41 and plan.starts == [0, 24, 48, 59] and plan.axis == "width"
    assert plan.canvas[0] == 480 and plan.offsets[0] == 0 and plan.offsets[-1] == plan.canvas[1] - 720


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    base = save_tiny_base(root / "base", height=32, width=48)
    aether = save_tiny_aether(root / "aether", height=32, width=48, seed=1)
    pipeline = AetherPipeline.from_pretrained(aether, base=base)
    pipeline.progress = False
    return pipeline


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((20, 32, 48), {"window": 5}, "window: expected at least 17 frames"),
        ((20, 32, 48), {"window": 0}, "window: expected a positive integer, received 0"),
        ((20, 32, 48), {"stride": 0}, "stride: expected a positive integer, received 0"),
        ((17, 1000, 1), {}, "aspect within 8x"),
    ],
)
def test_reconstruct_refuses_bad_windows_at_once(pipe, shape, kwargs, message):
    video = np.zeros((*shape, 3), np.uint8)
    with within(10), pytest.raises(ValueError, match=message):
        pipe.reconstruct(video, **kwargs)
