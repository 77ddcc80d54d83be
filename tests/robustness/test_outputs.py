"""Outputs never mix runs: a used folder is refused unless cleared (--overwrite) or continued
(--resume, same settings); an output path that is a file fails before any work; an interrupted
run resumes to exactly the clips of an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from aether.cli import main
from aether.data.commands import synthesize_shards
from aether.data.shards import iter_samples

from ._build import within

SMALL = {"frames": 5, "height": 16, "width": 24, "maxcount": 1, "progress": False}
ARGS = ["--frames", "5", "--height", "16", "--width", "24", "--maxcount", "1", "--quiet"]


def _keys(folder):
    return sorted(s["__key__"] for s in iter_samples(str(folder)))


def test_synth_refuses_a_used_folder_and_overwrite_clears_it(tmp_path, capsys):
    out = tmp_path / "o"
    with within(60):
        synthesize_shards(out, 2, **SMALL)
        assert main(["synth", "--out", str(out), "--clips", "1", "--seed", "10", *ARGS]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"aether synth: error: output folder {out} is not empty (7 entries): pass --overwrite to clear "
            "it or --resume to continue the run that wrote it"
        )
        assert _keys(out) == ["synth-00000000", "synth-00000001"]  # untouched
        assert main(["synth", "--out", str(out), "--clips", "1", "--seed", "10", *ARGS, "--overwrite"]) == 0
    assert _keys(out) == ["synth-00000010"]


def test_synth_resume_checks_settings_and_completes_the_run(tmp_path, capsys):
    out = tmp_path / "o"
    with within(60):
        synthesize_shards(out, 3, **SMALL)
        (out / "synth-000002.tar").unlink()  # as if the run stopped after two shards
        (out / "synth-000002.tar.partial").write_bytes(b"half a shard")
        assert main(["synth", "--out", str(out), "--clips", "3", "--seed", "1", *ARGS, "--resume"]) == 2
        err = capsys.readouterr().err
        assert "--resume: the settings differ" in err and "seed: 0 then, 1 now" in err
        assert main(["synth", "--out", str(out), "--clips", "3", *ARGS, "--resume"]) == 0
    assert _keys(out) == ["synth-00000000", "synth-00000001", "synth-00000002"]
    assert not list(out.glob("*.partial"))


def test_synth_resume_after_kill_9(tmp_path):
    out = tmp_path / "o"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    big = ["--frames", "17", "--height", "48", "--width", "64", "--maxcount", "1", "--quiet"]
    cmd = [sys.executable, "-m", "aether.cli", "synth", "--out", str(out), "--clips", "6", *big]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(out.glob("synth-*.tar")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= len(list(out.glob("synth-*.tar"))) < 6  # killed part-way
    with within(60):
        assert main(["synth", "--out", str(out), "--clips", "6", *big, "--resume"]) == 0
    keys = [s["__key__"] for s in iter_samples(str(out))]
    assert sorted(keys) == [f"synth-{i:08d}" for i in range(6)]  # each clip exactly once


@pytest.mark.parametrize("command", ["synth", "annotate", "reconstruct"])
def test_an_output_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys, command):
    target = tmp_path / "file"
    target.write_text("x")
    (tmp_path / "in").mkdir()
    argv = {
        "synth": ["synth", "--clips", "1", *ARGS],
        "annotate": ["annotate", str(tmp_path / "in")],
        "reconstruct": ["reconstruct", str(tmp_path / "missing.mp4")],
    }[command]
    with within(60):  # reported before the (missing) input is even read
        assert main([*argv, "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(target) in err and "is a file" in err
    assert target.read_text() == "x"


def test_absurd_synth_size_is_refused_before_allocating(tmp_path, capsys):
    argv = ["synth", "--out", str(tmp_path / "o"), "--clips", "1", "--height", "100000", "--width", "100000"]
    with within(10):
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "100000x100000 clip of 49 frames needs about" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
