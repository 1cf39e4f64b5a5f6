"""A fixed batch of ``autograde`` jobs on an executor (``autograde --scheduler``): same queue, same store."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..grading.result import NotebookResult
from ..sandbox.protocol import Limits
from .executor import Executor
from .task import GradingTask

if TYPE_CHECKING:
    from ..classroom.autograde import Job

__all__ = ["task_of", "run_batch"]


def task_of(lesson: str, student: str, submission: Path, source: Path, limits: Limits, redis_url: str | None,
            *, require_sandbox: bool, notebook_name: str | None = None) -> GradingTask:
    """The task for one notebook (a missing or unreadable file is sent as empty bytes: graded 'unreadable')."""
    try:
        data = submission.read_bytes()
    except OSError:
        data = b""
    return GradingTask(lesson, student, notebook_name or source.name, data, source.read_bytes(), limits, redis_url,
                       require_sandbox)


def run_batch(executor: Executor, jobs: list[Job], limits: Limits, redis_url: str | None,
              store: Callable[[Job, NotebookResult], None], dropped: Callable[[Job], bool] = lambda job: False) -> None:
    """Grade ``jobs`` in their order, at most ``executor.capacity()`` at once, storing each result as it comes;
    a job for which ``dropped`` turns true (its lesson's reference solution failed) is not sent."""
    queue = list(jobs)
    running: dict = {}
    while queue or running:
        while queue and len(running) < executor.capacity():
            job = queue.pop(0)
            if not dropped(job):
                task = task_of(job.lesson, job.submission.student, job.submission.notebook, job.source, limits, redis_url,
                               require_sandbox=executor.sandbox_required)
                running[executor.submit(task)] = job
        if not running:
            continue
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in finished:
            job = running.pop(future)
            store(job, NotebookResult.from_dict(future.result()))
