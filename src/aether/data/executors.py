"""Executors of a work plan: this process, local worker processes, or a Ray cluster.

An executor runs ``fn(unit.payload)`` for the jobs ``(unit, attempt)`` it pops from a queue and
yields ``((unit, attempt), outcome)`` as each finishes, ``outcome`` being the result or the
exception raised. It pops lazily, so jobs appended to the queue while it runs (retries) are run
too; it ends when the queue is empty and nothing is in flight. :func:`aether.data.workplan.run_plan`
drives it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from aether.argtypes import positive_float

__all__ = ["InProcessExecutor", "LocalExecutor", "RayExecutor", "WorkerDied", "make_executor"]

Job = tuple[Any, int]  # (WorkUnit, attempt)


class WorkerDied(RuntimeError):
    """The process running a unit died (killed, out of memory, crashed)."""


class InProcessExecutor:
    """Runs the units one after another in this process."""

    def run(self, fn: Callable[[Any], Any], queue: deque[Job]) -> Iterator[tuple[Job, Any]]:
        while queue:
            job = queue.popleft()
            try:
                outcome = fn(job[0].payload)
            except Exception as err:
                outcome = err
            yield job, outcome


def _worker_init() -> None:
    """One torch thread; on Linux the worker is killed when the driver dies (no orphan writing on)."""
    import sys

    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes
        import signal

        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    import torch

    torch.set_num_threads(1)


class LocalExecutor:
    """``workers`` spawned processes (one torch thread each), at most one unit in flight per worker.
    A worker that dies fails the units in flight with :class:`WorkerDied` and the pool is restarted."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def _pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init)

    def run(self, fn: Callable[[Any], Any], queue: deque[Job]) -> Iterator[tuple[Job, Any]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if not queue:
            return
        pool = self._pool()
        inflight: dict[Any, Job] = {}
        try:
            while queue or inflight:
                while queue and len(inflight) < self.workers:
                    job = queue.popleft()
                    inflight[pool.submit(fn, job[0].payload)] = job
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    job = inflight.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as err:
                        broken = True
                        outcome = WorkerDied(f"a worker process died while running the unit ({err})")
                    except Exception as err:
                        outcome = err
                    yield job, outcome
                if broken:  # every unit in flight is lost with the pool: start a new one
                    for job in inflight.values():
                        yield job, WorkerDied("a worker process died while this unit was in flight")
                    inflight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._pool()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Units as Ray tasks that declare ``num_cpus`` / ``num_gpus`` (so GPU work lands on GPU
    nodes). Connects to ``address`` (a running cluster, ``auto``) or starts a local instance when
    none is given and Ray is not initialised yet. Ray's own task retries are off: failed units are
    retried by the plan, which counts and records the attempts."""

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0, num_gpus: float = 0.0) -> None:
        try:
            import ray
        except ImportError as err:
            raise ValueError(
                "--executor ray needs Ray: pip install 'aether[ray]' (or pip install 'ray[default]')"
            ) from err
        if num_cpus < 0 or num_gpus < 0:
            raise ValueError(f"num_cpus and num_gpus must be >= 0, got {num_cpus} and {num_gpus}")
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        if num_gpus > 0 and ray.cluster_resources().get("GPU", 0) < num_gpus:
            raise ValueError(
                f"the units need {num_gpus} GPU each but the Ray cluster has "
                f"{ray.cluster_resources().get('GPU', 0)} (use --device cpu or add GPU nodes)"
            )

    def run(self, fn: Callable[[Any], Any], queue: deque[Job]) -> Iterator[tuple[Job, Any]]:
        import ray

        task = ray.remote(_apply).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) / max(self.num_cpus, 1e-3))) * 2
        inflight: dict[Any, Job] = {}
        while queue or inflight:
            while queue and len(inflight) < slots:
                job = queue.popleft()
                inflight[task.remote(fn, job[0].payload)] = job
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            job = inflight.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayTaskError as err:  # the unit raised: report its own error
                outcome = err.cause if isinstance(err.cause, BaseException) else err
            except ray.exceptions.RayError as err:  # the worker died, the node was lost, ...
                outcome = WorkerDied(f"{type(err).__name__}: {str(err).splitlines()[0]}")
            yield job, outcome


def _apply(fn: Callable[[Any], Any], payload: Any) -> Any:
    return fn(payload)


def make_executor(
    executor: str = "local",
    *,
    workers: int = 1,
    address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
) -> Any:
    """``local`` with ``workers`` processes (1: this process) or ``ray`` (at ``address``)."""
    if executor == "ray":
        return RayExecutor(address, num_cpus=num_cpus, num_gpus=num_gpus)
    if executor != "local":
        raise ValueError(f"executor: expected 'local' or 'ray', got {executor!r}")
    if address is not None:
        raise ValueError("--address is for --executor ray")
    return InProcessExecutor() if workers == 1 else LocalExecutor(workers)


def add_executor_arguments(parser: Any) -> None:
    """The options that choose where a plan's units run (shared by ``synth`` and ``annotate``)."""
    group = parser.add_argument_group("where the work runs")
    group.add_argument("--executor", choices=("local", "ray"), default="local")
    group.add_argument("--workers", type=int, default=1, help="local processes (1: this process)")
    group.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    group.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs a Ray task declares")
    group.add_argument(
        "--gpus-per-task", type=float, default=None, help="GPUs a Ray task declares (default: 1 on GPU work)"
    )
    group.add_argument("--num-shards", type=int, default=1, help="job array: number of parts")
    group.add_argument("--shard-index", type=int, default=0, help="job array: the part this process runs")
    group.add_argument("--retries", type=int, default=2, help="extra attempts of a failing unit")
    group.add_argument(
        "--claim-timeout", type=positive_float, default=600.0,
        help="seconds without a heartbeat after which another host's claims are stale",
    )  # fmt: skip


def executor_from_args(args: Any, *, gpu: bool = False) -> Any:
    """The executor the options of :func:`add_executor_arguments` ask for; ``gpu``: the units use a GPU."""
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    gpus = args.gpus_per_task if args.gpus_per_task is not None else (1.0 if gpu else 0.0)
    return make_executor(
        args.executor, workers=args.workers, address=args.address, num_cpus=args.cpus_per_task, num_gpus=gpus
    )
