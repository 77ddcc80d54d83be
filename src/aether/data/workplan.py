"""Work plans: the units of a data job listed up front, each run exactly once, on any executor.

``aether synth`` and ``aether annotate`` first list their work units deterministically (shards of
clip seeds to render, clips of the input), then run the units that are not done yet on local
processes, a Ray cluster (:mod:`aether.data.executors`) or as one part of a job array
(``num_shards`` / ``shard_index``: a unit belongs to part ``hash(id) % num_shards``, so parts are
disjoint and stable). The plan lives beside the outputs, in ``OUT/plan/``::

    plan.json           {"command", "units": [unit ids]}, written once; a rerun or another member
                        of a job array must list the same units
    claims/<id>         created atomically (O_EXCL) by the process that runs the unit: host, pid,
                        time, driver; removed when the unit ends
    drivers/<driver>    a heartbeat: its modification time is refreshed by the running process
    done/<id>.json      the unit finished: the files it wrote (relative to OUT), its sample keys,
                        attempts, seconds
    failed/<id>.json    the unit failed on every attempt: the reason of each
    summary.json        planned / done / failed counts, rewritten at the end of every run

A unit writes its outputs under names derived from its id, each atomically (``.partial`` then a
rename), and only then is it recorded as done: a unit interrupted anywhere (a killed worker, a
killed driver, a pre-empted node) is simply not done and runs again on the next run, rewriting the
same names, so no output is ever duplicated. Claims keep two live processes off the same unit; a
claim whose process is gone (same host: pid not running; another host: no heartbeat for
``claim_timeout`` seconds) is stale and taken over.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PlanRun", "UnitFailed", "WorkPlan", "WorkUnit", "open_plan", "report_run", "run_plan"]
__all__ += ["unit_part", "write_json"]

_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
logger = logging.getLogger(__name__)
DEFAULT_CLAIM_TIMEOUT = 600.0
_HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class WorkUnit:
    """One unit of work: ``id`` (names its outputs; letters, digits, ``_.-``) and a picklable
    ``payload`` handed to the unit function."""

    id: str
    payload: Any = None


class UnitFailed(ValueError):
    """A unit failed on every attempt (raised with ``fail_fast``): ``unit_id`` and ``reason``."""

    def __init__(self, unit_id: str, reason: str) -> None:
        super().__init__(f"work unit {unit_id}: {reason}")
        self.unit_id, self.reason = unit_id, reason


def unit_part(unit_id: str, num_shards: int) -> int:
    """The job-array part (0 .. num_shards-1) a unit belongs to: a stable hash of its id."""
    digest = hashlib.blake2b(unit_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a ``.partial`` sibling named for this process, then a rename (so
    processes writing the same file at once never trip over each other's temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


STRAY_HINT = "a copy or a leftover: move it out of the folder, or readers of it read its samples too"
"""What to do with a shard that no unit of the plan writes (rerunning never removes it)."""


def unit_of(shard_name: str, unit_ids: Sequence[str]) -> str | None:
    """The unit of a plan that writes the shard ``shard_name`` (``<id>.tar`` or ``<id>-NNNNNN.tar``),
    None when no unit does (a stray: a copy or a leftover that a rerun never rewrites)."""
    stem = shard_name[: -len(".tar")] if shard_name.endswith(".tar") else shard_name
    ids = set(unit_ids)
    if stem in ids:
        return stem
    base, _, number = stem.rpartition("-")
    return base if base in ids and len(number) == 6 and number.isdigit() else None


class WorkPlan:
    """The units of one job in ``out`` and their state (layout in the module docstring)."""

    def __init__(self, out: str | Path, command: str, units: Sequence[WorkUnit]) -> None:
        self.out = Path(out)
        self.root = self.out / "plan"
        self.driver = f"{socket.gethostname()}-{os.getpid()}"
        self.command = command
        self.units = list(units)
        seen: set[str] = set()
        for unit in self.units:
            if not _ID.match(unit.id):
                raise ValueError(f"work unit id {unit.id!r}: expected letters, digits, '_', '.', '-'")
            if unit.id in seen:
                raise ValueError(f"work unit id {unit.id!r} is listed twice: ids must be unique")
            seen.add(unit.id)

    def record(self) -> None:
        """Write ``plan.json`` (atomic create), or check that the recorded plan lists the same units."""
        for sub in ("claims", "done", "failed", "drivers"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        path = self.root / "plan.json"
        data = {"command": self.command, "units": [u.id for u in self.units]}
        if not path.exists():
            tmp = path.with_name(f".plan.json.{os.getpid()}.partial")
            tmp.write_text(json.dumps(data, indent=1))
            try:
                os.link(tmp, path)  # fails if another process recorded the plan first
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        recorded = _read_json(path)
        if recorded != data:
            old = set(recorded["units"]) if isinstance(recorded, dict) and "units" in recorded else set()
            new = {u.id for u in self.units}
            raise ValueError(
                f"{path} records another plan ({len(old)} units, command {recorded.get('command')!r} "
                f"if readable) than this run lists ({len(new)} units, command {self.command!r}; "
                f"{len(new - old)} new, {len(old - new)} gone): the input or the settings changed; "
                "use another output folder or --overwrite"
            )

    def part(self, num_shards: int = 1, shard_index: int = 0) -> list[WorkUnit]:
        """The units of job-array part ``shard_index`` of ``num_shards`` (all units for 1)."""
        if num_shards < 1 or not 0 <= shard_index < num_shards:
            raise ValueError(
                f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {num_shards} and {shard_index}"
            )
        if num_shards == 1:
            return list(self.units)
        return [u for u in self.units if unit_part(u.id, num_shards) == shard_index]

    def is_done(self, unit_id: str) -> bool:
        """The unit is recorded as done, the files it wrote are all there, and its shards read back
        whole (checksums against their indices) with the keys it recorded (as ``aether data
        verify`` checks them); a unit failing this is done again."""
        from aether.data.reading import verify_shard

        record = _read_json(self.root / "done" / f"{unit_id}.json")
        if not isinstance(record, dict) or not all(
            (self.out / f).is_file() for f in record.get("outputs", ())
        ):
            return False
        shards = [f for f in record.get("outputs", ()) if f.endswith(".tar")]
        try:
            keys = [key for f in shards for key in verify_shard(str(self.out / f))]
        except ValueError as err:
            logger.warning("unit %s is done again: %s", unit_id, err)
            return False
        if shards and sorted(keys) != sorted(record.get("keys", [])):
            logger.warning("unit %s is done again: its shards hold keys %s, its record lists %s",
                           unit_id, sorted(keys), sorted(record.get("keys", [])))  # fmt: skip
            return False
        return True

    def strays(self) -> list[str]:
        """The shards in ``out`` that no unit of this plan writes (see :func:`unit_of`)."""
        ids = [u.id for u in self.units]
        return sorted(p.name for p in self.out.glob("*.tar") if unit_of(p.name, ids) is None)

    def claim(self, unit_id: str, claim_timeout: float = DEFAULT_CLAIM_TIMEOUT) -> bool:
        """Take the unit for this process; False when a live process holds it."""
        path = self.root / "claims" / unit_id
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "driver": self.driver}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = _read_json(path)
                if held is not None and not self._stale(held, claim_timeout):
                    return False
                path.unlink(missing_ok=True)  # a stale claim: its process is gone
                continue
            with os.fdopen(fd, "w") as stream:
                json.dump(owner, stream)
            return True
        return False

    def _stale(self, held: dict[str, Any], claim_timeout: float) -> bool:
        if held.get("host") == socket.gethostname():
            return held.get("pid") != os.getpid() and not _pid_alive(int(held.get("pid", -1)))
        try:
            beat = (self.root / "drivers" / str(held.get("driver"))).stat().st_mtime
        except OSError:
            beat = float(held.get("time", 0))
        return time.time() - beat > claim_timeout

    def heartbeat(self) -> None:
        """Tell other hosts that this process (and so its claims) is alive."""
        (self.root / "drivers" / self.driver).touch()

    def release(self, unit_id: str) -> None:
        (self.root / "claims" / unit_id).unlink(missing_ok=True)

    def mark_done(self, unit_id: str, record: dict[str, Any]) -> None:
        write_json(self.root / "done" / f"{unit_id}.json", record)
        (self.root / "failed" / f"{unit_id}.json").unlink(missing_ok=True)

    def mark_failed(self, unit_id: str, record: dict[str, Any]) -> None:
        write_json(self.root / "failed" / f"{unit_id}.json", record)

    def status(self) -> dict[str, Any]:
        """Counts over the whole plan: planned, done, failed (id -> reason), pending, claimed."""
        done = failed = 0
        reasons: dict[str, str] = {}
        for unit in self.units:
            if self.is_done(unit.id):
                done += 1
            elif (record := _read_json(self.root / "failed" / f"{unit.id}.json")) is not None:
                failed += 1
                reasons[unit.id] = record.get("error", "unknown")
        claimed = sum(1 for p in (self.root / "claims").iterdir()) if (self.root / "claims").is_dir() else 0
        planned = len(self.units)
        return {"planned": planned, "done": done, "failed": failed, "pending": planned - done - failed,
                "claimed": claimed, "failures": reasons}  # fmt: skip

    def write_summary(self) -> dict[str, Any]:
        status = self.status()
        write_json(self.root / "summary.json", status)
        return status


@dataclass
class PlanRun:
    """What one run did: units done now, skipped (done before), failed now (id -> reasons of
    each attempt), held by another live process; ``records`` the done records of this run."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_plan(
    plan: WorkPlan,
    fn: Callable[[Any], dict[str, Any]],
    executor: Any,
    *,
    units: Iterable[WorkUnit] | None = None,
    retries: int = 2,
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT,
    fail_fast: bool = False,
    progress: bool = True,
    desc: str = "units",
) -> PlanRun:
    """Run ``fn(unit.payload)`` for every unit of ``units`` (default: the whole plan) not done yet,
    on ``executor`` (:mod:`aether.data.executors`). ``fn`` writes the unit's outputs and returns
    its record (``outputs``: files relative to OUT, ``keys``: sample keys); the unit is then
    recorded as done. A unit that raises is tried again up to ``retries`` times, then recorded as
    failed with the reason of each attempt (``fail_fast``: :class:`UnitFailed` instead). One progress bar
    counts the units of ``units``."""
    from tqdm.auto import tqdm

    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    units = plan.units if units is None else list(units)
    result = PlanRun()
    queue: deque[tuple[WorkUnit, int]] = deque()
    for unit in units:
        if plan.is_done(unit.id):
            result.skipped.append(unit.id)
        elif plan.claim(unit.id, claim_timeout):
            queue.append((unit, 1))
        else:
            result.held.append(unit.id)
    claimed = [unit.id for unit, _ in queue]
    errors: dict[str, list[str]] = {}
    bar = tqdm(total=len(units), initial=len(result.skipped), desc=desc, unit="unit", disable=not progress)
    stop = threading.Event()
    beating = threading.Thread(
        target=_beat, args=(plan, stop, min(_HEARTBEAT_S, claim_timeout / 4)), daemon=True
    )
    beating.start()
    try:
        for (unit, attempt), outcome in executor.run(functools.partial(_timed, fn), queue):
            if isinstance(outcome, BaseException):
                errors.setdefault(unit.id, []).append(f"{type(outcome).__name__}: {outcome}")
                if attempt <= retries:
                    queue.append((unit, attempt + 1))
                    continue
                plan.mark_failed(unit.id, {"error": errors[unit.id][-1], "attempts": errors[unit.id]})
                plan.release(unit.id)
                result.failed[unit.id] = errors[unit.id]
                bar.update(1)
                if fail_fast:
                    raise UnitFailed(unit.id, errors[unit.id][-1]) from outcome
                continue
            record = {**outcome, "attempts": attempt}
            plan.mark_done(unit.id, record)
            plan.release(unit.id)
            result.done.append(unit.id)
            result.records[unit.id] = record
            bar.update(1)
    finally:
        stop.set()
        beating.join()
        (plan.root / "drivers" / plan.driver).unlink(missing_ok=True)
        bar.close()
        for unit_id in claimed:  # interrupted: what did not finish is free for the next run
            plan.release(unit_id)
        plan.write_summary()
    return result


def _timed(fn: Callable[[Any], dict[str, Any]], payload: Any) -> dict[str, Any]:
    """``fn(payload)`` with the seconds it took (where it ran) under "seconds"."""
    start = time.perf_counter()
    record = fn(payload)
    return {**record, "seconds": time.perf_counter() - start}


def _beat(plan: WorkPlan, stop: threading.Event, every: float) -> None:
    while True:
        plan.heartbeat()
        if stop.wait(every):
            return


def open_plan(
    out: str | Path,
    command: str,
    units: Sequence[WorkUnit],
    *,
    overwrite: bool = False,
    resume: bool = False,
    num_shards: int = 1,
) -> WorkPlan:
    """Make ``out`` ready and record the plan there. A single run (``num_shards`` 1) follows
    :func:`aether.data.shards.prepare_output` (a used folder needs ``resume`` or ``overwrite``);
    members of a job array join the same folder: it may be empty or hold this same plan (a folder
    used by something else needs ``resume``), and ``overwrite`` is refused (it would clear the
    other members' outputs)."""
    from aether.data.shards import prepare_output

    out = Path(out)
    if num_shards > 1:
        if overwrite:
            raise ValueError("--overwrite with --num-shards > 1 would clear the other parts' outputs")
        if out.exists() and not out.is_dir():
            raise ValueError(f"output folder: expected a folder, {out} is a file")
        if out.is_dir() and any(out.iterdir()) and not (out / "plan").is_dir() and not resume:
            raise ValueError(f"output folder {out} is not empty and holds no work plan: pass --resume")
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = prepare_output(out, overwrite=overwrite, resume=resume)
        for stale in out.rglob("*.partial"):  # nothing else writes here: an interrupted run's files
            stale.unlink()
    plan = WorkPlan(out, command, units)
    plan.record()
    return plan


def report_run(
    plan: WorkPlan, run: PlanRun, prog: str, name: Callable[[str], str] = lambda unit_id: f"unit {unit_id}"
) -> int:
    """Print what the run did and where the whole plan stands, each failed unit (``name(id)``)
    with its last error, and each shard in the folder that no unit writes; the exit status (1 when
    units of this run failed or are held by another process, or such shards are there)."""
    import sys

    status = plan.status()
    print(
        f"{prog}: {len(run.done)} units done now, {len(run.skipped)} done before, "
        f"{len(run.failed)} failed, {len(run.held)} held by another process; plan in {plan.root}: "
        f"{status['done']}/{status['planned']} done, {status['failed']} failed, {status['pending']} pending"
    )
    for unit_id, errors in run.failed.items():
        tries = f" ({len(errors)} attempts)" if len(errors) > 1 else ""
        print(f"{prog}: {name(unit_id)} failed: {errors[-1]}{tries}", file=sys.stderr)
    if run.held:
        print(
            f"{prog}: {len(run.held)} unit(s) are claimed by another live process "
            f"(in {plan.root / 'claims'}); rerun with --resume once it has ended",
            file=sys.stderr,
        )
    if run.failed:
        print(f"{prog}: rerun with --resume to retry the failed units", file=sys.stderr)
    strays = plan.strays()
    for name in strays:
        print(f"{prog}: {plan.out / name} was written by no unit of the plan ({STRAY_HINT})", file=sys.stderr)
    return 1 if run.failed or run.held or strays else 0
