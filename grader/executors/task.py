"""One grading as plain data: what a worker (a local process or a Dask worker) needs, and what it returns.

A ``GradingTask`` carries the submission's bytes, the lesson's source notebook bytes (the hidden
tests), the limits and the Redis choice; never the gradebook or anything else of the course.
``grade_task`` runs in the worker: it writes both notebooks to a private temporary folder, grades
with ``grade_notebook`` (learner code only runs in ``grader.sandbox``'s children) and returns the
result as a dict. A worker whose machine cannot sandbox refuses, unless its environment sets
``GRADER_ALLOW_UNSANDBOXED=1``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..sandbox.protocol import Limits

__all__ = ["GradingTask", "grade_task", "crashed_result", "sandbox_problem", "Unsandboxed", "ALLOW_UNSANDBOXED"]

ALLOW_UNSANDBOXED = "GRADER_ALLOW_UNSANDBOXED"


class Unsandboxed(RuntimeError):
    """This worker cannot run learner code in the sandbox, and was not told to grade without it."""


@dataclass(frozen=True)
class GradingTask:
    lesson: str  # the lesson's slug
    student: str
    notebook_name: str  # the lesson's notebook file name
    submission: bytes  # the learner's notebook
    source: bytes  # the lesson's source notebook (solutions/), with the hidden tests
    limits: Limits = Limits()
    redis_url: str | None = None  # a Redis server every grading shares; None: one of its own per submission
    require_sandbox: bool = True  # refuse to grade where the full sandbox is missing (Dask workers)


def sandbox_problem(limits: Limits = Limits()) -> str:
    """Why learner code would run unsandboxed on this machine ("" when bubblewrap, root and setpriv are all here,
    or when ``GRADER_ALLOW_UNSANDBOXED=1`` says to grade anyway)."""
    from ..sandbox.isolation import tools

    if os.environ.get(ALLOW_UNSANDBOXED) == "1":
        return ""
    if limits.isolation == "off":
        why = "the task asks for isolation 'off'"
    else:
        found = tools()
        missing = [name for name, ok in (("bubblewrap (bwrap)", found["bwrap"]), ("root", found["root"]),
                                         ("setpriv", found["setpriv"])) if not ok]
        if not missing:
            return ""
        why = "missing here: " + ", ".join(missing)
    import socket

    return (f"this grading worker ({socket.gethostname()}, pid {os.getpid()}) cannot run learner code in the "
            f"sandbox ({why}); install bubblewrap and run the worker as root, or set {ALLOW_UNSANDBOXED}=1 in the "
            f"worker's environment to grade without it (never for a real class)")


def crashed_result(task: GradingTask, detail: str) -> dict[str, Any]:
    """A 'crashed' result for a grading that never came back (its worker died)."""
    from ..grading.grade import exercises_of
    from ..grading.result import NotebookResult, NotebookStatus
    from ..course.cells import read_notebook

    with tempfile.TemporaryDirectory(prefix="source-") as tmp:
        source = Path(tmp) / task.notebook_name
        source.write_bytes(task.source)
        exercises = exercises_of(read_notebook(source))
    return NotebookResult.all_not_run(NotebookStatus.CRASHED, exercises, detail).to_dict()


def grade_task(task: GradingTask) -> dict[str, Any]:
    """Grade one task (in a worker process); the result as ``NotebookResult.to_dict()``."""
    from .workers import worker_redis_url
    from ..grading.grade import grade_notebook

    if task.require_sandbox:
        problem = sandbox_problem(task.limits)
        if problem:
            raise Unsandboxed(problem)
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        source = Path(tmp) / "source" / task.notebook_name
        submission = Path(tmp) / "submission" / task.notebook_name
        for path, data in ((source, task.source), (submission, task.submission)):
            path.parent.mkdir()
            path.write_bytes(data)
        try:
            result = grade_notebook(source, submission, limits=task.limits, redis_url=worker_redis_url(task.redis_url))
        except Exception as exc:  # a grader bug must not stop the class
            return crashed_result(task, f"the grader failed on this submission ({type(exc).__name__}: {exc})")
    return result.to_dict()
