"""Work plans: job-array parts, claims, retries and failure records, a killed worker, ``data verify``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from aether.cli import main as cli_main
from aether.data.executors import InProcessExecutor, LocalExecutor
from aether.data.verify import verify_output
from aether.data.workplan import WorkPlan, WorkUnit, open_plan, report_run, run_plan, unit_part


def _write_unit(job):
    """A unit that writes ``<id>.txt`` atomically; it fails while ``job["fail"]`` attempts remain
    and kills its own process on the first attempt with ``job["kill"]`` (attempts counted in files)."""
    out, uid = job["out"], job["id"]
    tries = os.path.join(out, f"{uid}.tries")
    with open(tries, "a") as stream:
        stream.write("x")
    attempt = os.path.getsize(tries)
    if job.get("kill") and attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if attempt <= job.get("fail", 0):
        raise ValueError(f"{uid} is broken (attempt {attempt})")
    with open(os.path.join(out, f"{uid}.txt.partial"), "w") as stream:
        stream.write(uid)
    os.replace(os.path.join(out, f"{uid}.txt.partial"), os.path.join(out, f"{uid}.txt"))
    return {"outputs": [f"{uid}.txt"], "keys": [uid]}


def _plan(tmp_path, ids, **job):
    units = [WorkUnit(i, {"out": str(tmp_path), "id": i, **job.get(i, {})}) for i in ids]
    return open_plan(tmp_path, "test", units, resume=True)


def test_job_array_parts_are_disjoint_stable_and_cover_the_plan(tmp_path):
    ids = [f"clip-{i:04d}" for i in range(60)]
    plan = WorkPlan(tmp_path, "test", [WorkUnit(i) for i in ids])
    parts = [{u.id for u in plan.part(3, i)} for i in range(3)]
    assert set().union(*parts) == set(ids) and sum(map(len, parts)) == len(ids)
    assert all(len(p) > 10 for p in parts)  # a hash spreads them
    # a unit keeps its part when the plan is listed in another order or grows
    grown = WorkPlan(tmp_path, "test", [WorkUnit(i) for i in [*reversed(ids), "clip-9999"]])
    assert [{u.id for u in grown.part(3, i)} - {"clip-9999"} for i in range(3)] == parts
    assert {u.id for u in grown.part(3, unit_part("clip-9999", 3))} >= {"clip-9999"}
    with pytest.raises(ValueError, match="shard_index"):
        plan.part(3, 3)
    with pytest.raises(ValueError, match="listed twice"):
        WorkPlan(tmp_path, "test", [WorkUnit("a"), WorkUnit("a")])
    with pytest.raises(ValueError, match="letters, digits"):
        WorkPlan(tmp_path, "test", [WorkUnit("../a")])


def test_a_failing_unit_is_retried_then_recorded_and_the_rest_finish(tmp_path, capsys):
    plan = _plan(tmp_path, ["a", "b", "c"], b={"fail": 99}, c={"fail": 1})
    run = run_plan(plan, _write_unit, InProcessExecutor(), retries=2, progress=False)
    assert sorted(run.done) == ["a", "c"]
    assert run.failed == {"b": [f"ValueError: b is broken (attempt {i})" for i in (1, 2, 3)]}
    assert json.loads((tmp_path / "plan" / "done" / "c.json").read_text())["attempts"] == 2
    failed = json.loads((tmp_path / "plan" / "failed" / "b.json").read_text())
    assert failed["error"] == "ValueError: b is broken (attempt 3)" and len(failed["attempts"]) == 3
    assert report_run(plan, run, "prog") == 1
    assert "prog: unit b failed: ValueError: b is broken (attempt 3) (3 attempts)" in capsys.readouterr().err
    assert not list((tmp_path / "plan" / "claims").iterdir())
    result = verify_output(tmp_path)
    assert (result["planned"], result["done"], result["failed"], result["pending"]) == (3, 2, 1, 0)
    assert result["failures"] == {"b": "ValueError: b is broken (attempt 3)"} and not result["ok"]

    # a rerun does only what is missing: b (which now works), not a or c
    reopened = _plan(tmp_path, ["a", "b", "c"])
    rerun = run_plan(reopened, _write_unit, InProcessExecutor(), retries=0, progress=False)
    assert rerun.done == ["b"] and sorted(rerun.skipped) == ["a", "c"]
    assert (tmp_path / "a.tries").read_text() == "x" and verify_output(tmp_path)["ok"]
    assert cli_main(["data", "verify", str(tmp_path)]) == 0
    # fail_fast: the first unit that fails ends the run
    plan = _plan(tmp_path / "ff", ["d"], d={"fail": 99})
    with pytest.raises(ValueError, match="work unit d: ValueError: d is broken"):
        run_plan(plan, _write_unit, InProcessExecutor(), retries=0, fail_fast=True, progress=False)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claims_keep_live_runs_apart_and_stale_ones_are_taken_over(tmp_path):
    host = socket.gethostname()
    plan = _plan(tmp_path, ["live", "dead", "far", "far_old"])
    claims = tmp_path / "plan" / "claims"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owners = {
            "live": {"host": host, "pid": holder.pid, "time": time.time()},
            "dead": {"host": host, "pid": _dead_pid(), "time": time.time()},
            "far": {"host": "other-node", "pid": 1, "time": time.time() - 7200, "driver": "other-node-1"},
            "far_old": {"host": "other-node", "pid": 2, "time": time.time() - 7200, "driver": "other-node-2"},
        }
        for unit, owner in owners.items():
            (claims / unit).write_text(json.dumps(owner))
        # other-node-1 beats (its claims hold), other-node-2 stopped beating an hour ago
        (tmp_path / "plan" / "drivers" / "other-node-1").touch()
        (tmp_path / "plan" / "drivers" / "other-node-2").touch()
        os.utime(tmp_path / "plan" / "drivers" / "other-node-2", (time.time() - 3600,) * 2)
        run = run_plan(plan, _write_unit, InProcessExecutor(), claim_timeout=3600, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(run.held) == ["far", "live"] and sorted(run.done) == ["dead", "far_old"]
    assert sorted(p.name for p in claims.iterdir()) == ["far", "live"]  # the others' claims stay
    assert not (tmp_path / "plan" / "drivers" / plan.driver).exists()  # its heartbeat ended
    assert report_run(plan, run, "prog") == 1
    result = verify_output(tmp_path)
    assert result["pending"] == 2 and result["claims"] == ["far", "live"] and not result["ok"]


@pytest.mark.slow
def test_a_killed_worker_process_is_retried_and_every_unit_is_done_once(tmp_path):
    ids = [f"u{i}" for i in range(4)]
    plan = _plan(tmp_path, ids, u1={"kill": True})
    run = run_plan(plan, _write_unit, LocalExecutor(2), retries=2, progress=False)
    assert sorted(run.done) == ids and not run.failed
    record = json.loads((tmp_path / "plan" / "done" / "u1.json").read_text())
    assert record["attempts"] == 2  # the first attempt died with its process
    assert (tmp_path / "u1.tries").read_text() == "xx"
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == [f"{i}.txt" for i in ids]
    assert verify_output(tmp_path)["ok"] and not list(tmp_path.rglob("*.partial"))


def test_verify_finds_duplicate_keys_leftovers_and_missing_files(tmp_path, sample_factory):
    from aether.data.shards import write_shards

    plan = _plan(tmp_path, ["a", "b"])
    write_shards([sample_factory("k0")], str(tmp_path / "a-%06d.tar"))
    write_shards([sample_factory("k0"), sample_factory("k1")], str(tmp_path / "b-%06d.tar"))
    plan.mark_done("a", {"outputs": ["a-000000.tar"], "keys": ["k0"]})
    plan.mark_done("b", {"outputs": ["b-000000.tar"], "keys": ["k0", "k1"]})
    write_shards([sample_factory("k2")], str(tmp_path / "c-%06d.tar"))  # no unit wrote it
    (tmp_path / "d-000000.tar.partial").write_bytes(b"half")
    result = verify_output(tmp_path)
    assert result["duplicate_keys"] == {"k0": ["a-000000.tar", "b-000000.tar"]}
    assert result["samples"] == 3 and result["partial_files"] == ["d-000000.tar.partial"]
    assert any("c-000000.tar was written by no unit of the plan (a copy" in p for p in result["problems"])
    assert result["done"] == 2 and not result["ok"]
    (tmp_path / "b-000000.tar").unlink()
    result = verify_output(tmp_path)
    assert result["done"] == 1 and result["pending"] == 1
    assert any("unit b is recorded as done but b-000000.tar is missing" in p for p in result["problems"])
    with pytest.raises(ValueError, match="plan/plan.json"):
        verify_output(tmp_path / "plan")
