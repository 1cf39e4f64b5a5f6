"""Where gradings run: an executor interface, local worker processes (default) or a dask.distributed cluster.

``submit(task)`` returns a ``concurrent.futures.Future`` of the result dict, so callers wait on both
kinds the same way; ``capacity()`` is how many gradings run at once (the caller keeps the rest in its
own queue, where a newer submission can still replace a queued one). A grading whose worker dies is
sent again (the local pool replaces its broken processes; the Dask scheduler reschedules a killed
worker's tasks on another one); one that keeps killing its workers comes back as a 'crashed' result.
Results come back to the caller, which alone stores them.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from .workers import REDIS_DATABASES, worker_init
from .task import GradingTask, Unsandboxed, crashed_result, grade_task, sandbox_problem

__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "make_executor", "LOCAL_ATTEMPTS"]

LOCAL_ATTEMPTS = 3  # a grading is sent this many times when its worker process dies under it


class Executor(Protocol):
    sandbox_required: bool  # its workers refuse to grade without the full sandbox (GRADER_ALLOW_UNSANDBOXED=1)

    def submit(self, task: GradingTask) -> Future: ...

    def capacity(self) -> int: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Worker processes on this machine, as ``autograde`` starts them (spawned, each with its own Redis
    database when a shared Redis URL is given, exiting when the parent dies). They grade with the protections this machine has, as ``autograde`` does."""

    sandbox_required = False

    def __init__(self, workers: int, redis_url: str | None = None) -> None:

        self.workers = max(1, min(workers, REDIS_DATABASES) if redis_url else workers)
        self.redis_url = redis_url
        self._lock = threading.Lock()
        self._closed = False
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        from ..sandbox.redis_urls import database_of

        context = multiprocessing.get_context("spawn")
        databases = None
        if self.redis_url:
            databases = context.Queue()
            for k in range(self.workers):
                databases.put((database_of(self.redis_url) + k) % REDIS_DATABASES)
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=worker_init,
                                   initargs=(os.getpid(), databases))

    def capacity(self) -> int:
        return self.workers

    def submit(self, task: GradingTask) -> Future:
        outer: Future = Future()
        self._send(task, outer, 1)
        return outer

    def _send(self, task: GradingTask, outer: Future, attempt: int) -> None:
        with self._lock:
            pool = self._pool
            try:
                inner = pool.submit(grade_task, task)
            except BrokenProcessPool:
                pool = self._replace(pool)
                inner = pool.submit(grade_task, task)
        inner.add_done_callback(lambda done: self._finished(done, task, outer, attempt, pool))

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """A fresh pool instead of ``broken`` (call with the lock held)."""
        if self._pool is broken and not self._closed:
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
        return self._pool

    def _finished(self, done: Future, task: GradingTask, outer: Future, attempt: int,
                  pool: ProcessPoolExecutor) -> None:
        if done.cancelled():
            outer.cancel()
            return
        error = done.exception()
        if isinstance(error, BrokenProcessPool) and not self._closed:
            with self._lock:
                self._replace(pool)
            if attempt < LOCAL_ATTEMPTS:
                self._send(task, outer, attempt + 1)
            else:
                outer.set_result(crashed_result(task, f"the grading worker died {attempt} times while grading "
                                                      "this submission"))
        elif error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(done.result())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # do not leave busy workers behind
            process.kill()


class DaskExecutor:
    """Gradings as tasks on a dask.distributed cluster (``tcp://host:8786``). Every worker must be able to
    sandbox: a worker that cannot refuses when this executor starts (and each task checks again)."""

    sandbox_required = True

    def __init__(self, scheduler: str, *, timeout: float = 30.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise RuntimeError("--scheduler needs dask.distributed: install the course's `cluster` extra "
                               "(pip install -c constraints.txt -e '.[cluster]')") from None
        try:
            self.client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it with "
                               f"`dask scheduler` and its workers with `dask worker {scheduler} --nthreads 1`") from None
        problems = {w: p for w, p in self.client.run(sandbox_problem).items() if p}
        if problems:
            self.client.close()
            raise Unsandboxed("; ".join(f"{worker}: {problem}" for worker, problem in sorted(problems.items())))

    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, task: GradingTask) -> Future:
        from distributed import KilledWorker

        outer: Future = Future()
        remote = self.client.submit(grade_task, task, pure=False)

        def finished(done: Any) -> None:
            if done.cancelled():
                outer.cancel()
                return
            try:
                outer.set_result(done.result())
            except KilledWorker as exc:  # the scheduler gave up: it killed every worker it was sent to
                outer.set_result(crashed_result(task, f"the grading workers died while grading this submission ({exc})"))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                outer.set_exception(exc)

        remote.add_done_callback(finished)
        outer.remote = remote  # type: ignore[attr-defined] # keeps the task alive on the cluster until it is done
        return outer

    def close(self) -> None:
        self.client.close()


def make_executor(scheduler: str | None, workers: int, redis_url: str | None = None) -> Executor:
    """Dask when a scheduler address is given, else ``workers`` local processes."""
    return DaskExecutor(scheduler) if scheduler else LocalExecutor(workers, redis_url)
