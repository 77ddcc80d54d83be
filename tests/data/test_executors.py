"""``aether synth`` and ``aether annotate`` on every executor: one sequential process, local workers,
a local Ray instance and a 3-part job array write the same samples; a killed driver leaves nothing
a rerun does not repair, every unit exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aether.cli import main as cli_main
from aether.data.shards import iter_samples
from aether.data.verify import verify_output

pytestmark = pytest.mark.slow

SYNTH = ["--clips", "4", "--frames", "9", "--height", "48", "--width", "64", "--maxcount", "1"]
SYNTH += ["--trajectory", "strafe", "--fps", "12", "--quiet"]
ANNOTATE = ["--slice-config", '{"min_length": 5, "min_keypoints": 10}', "--no-pictures"]
FIELDS = ("rgb", "depth", "K", "c2w", "dynamic")


def _samples(out: Path) -> dict[str, dict]:
    samples = {}
    for sample in iter_samples(str(out)):
        assert sample["__key__"] not in samples, f"key {sample['__key__']} twice in {out}"
        samples[sample["__key__"]] = sample
    return samples


def _assert_same(a: dict[str, dict], b: dict[str, dict], atol: float) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        for name in FIELDS:
            np.testing.assert_allclose(a[key][name], b[key][name], atol=atol, err_msg=f"{key} {name}")


def _synth(out: Path, *extra: str) -> None:
    assert cli_main(["synth", "--out", str(out), *SYNTH, *extra]) == 0


def _annotate(source: Path, out: Path, *extra: str) -> None:
    assert cli_main(["annotate", str(source), "--out", str(out), *ANNOTATE, *extra]) == 0


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """One sequential process: the synth output and its annotation, with their samples."""
    root = tmp_path_factory.mktemp("sequential")
    _synth(root / "synth")
    _annotate(root / "synth", root / "annotate")
    synth, annotated = _samples(root / "synth"), _samples(root / "annotate")
    assert len(synth) == 4 and len(annotated) == 4  # a slice per clip
    assert verify_output(root / "synth")["ok"] and verify_output(root / "annotate")["ok"]
    return root, synth, annotated


def test_a_job_array_of_three_parts_writes_the_same_samples(sequential, tmp_path):
    root, synth, annotated = sequential
    for index in range(3):
        _synth(tmp_path / "synth", "--num-shards", "3", "--shard-index", str(index))
        _annotate(root / "synth", tmp_path / "annotate", "--num-shards", "3", "--shard-index", str(index))
    _assert_same(_samples(tmp_path / "synth"), synth, atol=0)
    _assert_same(_samples(tmp_path / "annotate"), annotated, atol=1e-6)
    for out in ("synth", "annotate"):
        result = verify_output(tmp_path / out)
        assert result["ok"] and result["done"] == 4 and not result["duplicate_keys"]


def test_a_local_ray_instance_writes_the_same_samples(sequential, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'aether[ray]')")
    root, synth, annotated = sequential
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _synth(tmp_path / "synth", "--executor", "ray")
        _annotate(root / "synth", tmp_path / "annotate", "--executor", "ray")
    finally:
        ray.shutdown()
    _assert_same(_samples(tmp_path / "synth"), synth, atol=0)
    _assert_same(_samples(tmp_path / "annotate"), annotated, atol=1e-6)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
                found.append(int(entry.name))
    return found


def _start(source: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    cmd = [sys.executable, "-m", "aether.cli", "annotate", str(source), "--out", str(out), *ANNOTATE, *extra]
    return subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)


def _wait_for_done(proc: subprocess.Popen, out: Path, count: int = 1, timeout: float = 240) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        done = len(list((out / "plan" / "done").glob("*.json"))) if (out / "plan" / "done").is_dir() else 0
        if done >= count:
            return done
        time.sleep(0.02)
    raise AssertionError(f"no unit done in {timeout} s (exit status {proc.poll()})")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_driver_leaves_every_unit_exactly_once_after_resume(sequential, tmp_path):
    """The driver of ``--workers 2`` is killed mid-run (its workers die with it), then resumed.
    (A worker killed mid-run: tests/data/test_workplan.py.)"""
    root, _, annotated = sequential
    out = tmp_path / "out"
    proc = _start(root / "synth", out, "--workers", "2")
    _wait_for_done(proc, out)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.time() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers outlived their driver"
    before = verify_output(out)
    assert before["done"] < 4, "the run ended before it could be killed"
    assert not before["duplicate_keys"] and before["claims"]  # the dead driver's claims are left
    _annotate(root / "synth", out, "--resume")
    result = verify_output(out)
    assert result["ok"] and result["done"] == 4 and not result["duplicate_keys"] and not result["claims"]
    assert not list(out.rglob("*.partial"))
    _assert_same(_samples(out), annotated, atol=1e-6)
