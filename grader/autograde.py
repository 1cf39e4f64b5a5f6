"""Autograde a whole class: parallel, resumable, one writer for the gradebook.

The parent process finds the submissions in nbgrader's ``submitted/`` folder,
skips those whose stored result matches the submission's fingerprint, and
grades the rest with ``grade_notebook`` (learner code only ever runs in
``grader.sandbox``'s child processes) on a pool of worker processes (not
threads: the grading code parses with ``ast``, which is not thread-safe in
CPython 3.11). A worker exits by itself when the parent dies, even by
``kill -9``; a worker that dies is replaced, and its submission is retried
alone once before it is recorded as crashed. Workers only return results; the parent
alone, one result at a time, stores it atomically
(``grader-results/<lesson>/<student>.json``), writes nbgrader's autograded
notebook and updates nbgrader's gradebook. A run killed at any point loses
nothing stored; a rerun skips what is stored and re-applies it to the
gradebook (idempotent: scores are set, never added).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from course_lib.manifest import Lesson

from .autograded import autograded_notebook, write_notebook_atomic
from .course import course_id
from .grade import NotebookResult, _all_exercises, grade_notebook
from .nbg import db_url, ensure_assignment
from .notebooks import read_notebook
from .progressbar import ProgressBar
from .redis_urls import database_of, with_database
from .results import REFERENCE, fingerprint, load_record, result_path, write_json_atomic
from .sandbox import Limits

__all__ = ["Submission", "AutogradeSummary", "find_submissions", "autograde_lesson", "grade_reference",
           "record_in_gradebook", "STUDENT_ID", "ReferenceFails", "check_reference_solution", "late_penalties",
           "apply_late_penalty"]

STUDENT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")  # nbgrader forbids '+' and '*'; we keep it simple


@dataclass
class Submission:
    student: str
    folder: Path  # submitted/<student>/<lesson>/
    notebook: Path
    timestamp: str | None = None


@dataclass
class AutogradeSummary:
    lesson: str
    total: int = 0
    graded_now: dict[str, str] = field(default_factory=dict)  # student -> status
    skipped: list[str] = field(default_factory=list)  # already graded in an earlier run
    statuses: Counter = field(default_factory=Counter)  # over every submission
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1
    changes: dict[str, tuple[float, float]] = field(default_factory=dict)  # regraded: student -> (before, after)
    changes_file: Path | None = None
    stale_feedback: list[str] = field(default_factory=list)  # released feedback that no longer matches


class ReferenceFails(RuntimeError):
    """The lesson's own solution loses points with its tests: regrading would punish the class for a test bug."""


def _timestamp(folder: Path) -> str | None:
    try:
        return (folder / "timestamp.txt").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def find_submissions(root: Path, lesson: Lesson, students: list[str] | None = None) -> list[Submission]:
    """Every ``submitted/<student>/<lesson>/`` folder (nbgrader's layout), sorted by student."""
    base = root / "submitted"
    found = []
    for folder in sorted(base.glob(f"*/{lesson.slug}")) if base.is_dir() else []:
        student = folder.parent.name
        if not folder.is_dir() or not STUDENT_ID.match(student) or (students and student not in students):
            continue
        notebook = folder / lesson.notebook
        if not notebook.is_file():  # a renamed notebook: take it when it is the only one
            others = [p for p in folder.glob("*.ipynb") if not p.name.startswith(".")]
            notebook = others[0] if len(others) == 1 else notebook
        found.append(Submission(student, folder, notebook, _timestamp(folder)))
    return found


def _safe_grade(source: Path, submission: Submission, limits: Limits, redis_url: str | None) -> NotebookResult:
    """Grade one submission; whatever happens, return a result with an explicit status."""
    try:
        return grade_notebook(source, submission.notebook, limits=limits, redis_url=redis_url)
    except Exception as exc:  # a grader bug must not stop the batch
        detail = f"the grader failed on this submission ({type(exc).__name__}: {exc})"
        return NotebookResult("crashed", _all_exercises(read_notebook(source), "not_run", detail), detail=detail)


def late_penalties(root: Path) -> Any:
    """nbgrader's ``AssignLatePenalties`` configured from the course's ``nbgrader_config.py``.

    Its ``plugin_class`` (default ``LateSubmissionPlugin``, whose ``penalty_method`` is 'none' or
    'zero'; any subclass of nbgrader's ``BasePlugin`` you name there) computes the penalty exactly as
    ``nbgrader autograde`` would.
    """
    from nbgrader.preprocessors import AssignLatePenalties
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (root / "nbgrader_config.py").is_file():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    return assigner


def apply_late_penalty(gb: Any, lesson: Lesson, student: str, assigner: Any) -> float:
    """Set the notebook's late penalty in the gradebook from its due date and submission time; return it."""
    nb_id = Path(lesson.notebook).stem
    submission = gb.find_submission(lesson.slug, student)
    notebook = gb.find_submission_notebook(nb_id, lesson.slug, student)
    notebook.late_submission_penalty = None
    seconds = submission.total_seconds_late
    if seconds > 0:
        penalty = assigner.plugin_inst.late_submission_penalty(student, notebook.score, seconds)
        if penalty is not None:
            notebook.late_submission_penalty = assigner._check_late_penalty(notebook, penalty)
    gb.db.commit()
    return float(notebook.late_submission_penalty or 0.0)


def record_in_gradebook(gb: Any, lesson: Lesson, student: str, result: NotebookResult,
                        timestamp: str | None, late: Any = None) -> None:
    """Set the submission's scores in nbgrader's gradebook (idempotent).

    A submission that could not be graded (timed out, crashed, unreadable)
    keeps its not-run exercises without an auto score and marked for manual
    grading, and its notebook is flagged, so the formgrader never shows it as
    a real zero; a tampered one is graded (locked cells were restored) and
    flagged for a look.
    """
    from nbgrader.api import MissingEntry
    from nbgrader.utils import parse_utc

    nb_id = Path(lesson.notebook).stem
    gb.update_or_create_student(student)
    try:
        submission = gb.find_submission(lesson.slug, student)
        if timestamp:
            submission.timestamp = parse_utc(timestamp)
    except MissingEntry:
        with warnings.catch_warnings():  # nbgrader's own add_submission trips SQLAlchemy's autoflush warnings
            warnings.simplefilter("ignore")
            submission = gb.add_submission(lesson.slug, student, **({"timestamp": timestamp} if timestamp else {}))
    real = result.status in ("graded", "tampered")
    for exercise in result.exercises:
        try:
            grade = gb.find_grade(f"{exercise.id}-tests", nb_id, lesson.slug, student)
        except MissingEntry:
            continue
        unknown = not real and exercise.status in ("not_run", "timed_out")
        grade.auto_score = None if unknown else exercise.score
        grade.needs_manual_grade = unknown
        try:
            comment = gb.find_comment(exercise.id, nb_id, lesson.slug, student)
            comment.auto_comment = (f"[{result.status}] " if not real else "") + (exercise.message or exercise.status)
        except MissingEntry:
            pass
    notebook = gb.find_submission_notebook(nb_id, lesson.slug, student)
    notebook.flagged = result.status != "graded"
    gb.db.commit()
    if late is not None:
        apply_late_penalty(gb, lesson, student, late)


def _apply(root: Path, lesson: Lesson, gb: Any, submission: Submission, result: NotebookResult,
           late: Any = None) -> None:
    """Write the autograded notebook, then the gradebook (both idempotent)."""
    out = root / "autograded" / submission.student / lesson.slug
    write_notebook_atomic(autograded_notebook(lesson.source_path(root), submission.notebook, result),
                          out / lesson.notebook)
    if submission.timestamp:
        (out / "timestamp.txt").write_text(submission.timestamp, encoding="utf-8")
    record_in_gradebook(gb, lesson, submission.student, result, submission.timestamp, late)


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)  # the autograde run is gone (even kill -9): stop, its rerun will redo our work
        time.sleep(0.5)


REDIS_DATABASES = 16  # a real Redis server's default number of databases: at most this many workers share one


_WORKER_DB: int | None = None  # this worker's own database on the grader's real Redis


def _worker_init(parent: int, databases: Any = None) -> None:
    global _WORKER_DB
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if databases is not None:
        _WORKER_DB = databases.get()


def worker_redis_url(redis_url: str | None) -> str | None:
    """In a worker process: the grader's Redis URL with this worker's own database."""
    if redis_url and _WORKER_DB is not None:  # submissions graded at the same time never share keys
        return with_database(redis_url, _WORKER_DB)
    return redis_url


def _grade_task(source: Path, submission: Submission, limits: Limits, redis_url: str | None) -> dict[str, Any]:
    return _safe_grade(source, submission, limits, worker_redis_url(redis_url)).to_dict()


def _run_pool(items: list[tuple[Submission, str]], workers: int, source: Path, limits: Limits,
              redis_url: str | None, store: Callable[[Submission, str, NotebookResult], None],
              task: Callable[..., dict[str, Any]] = _grade_task) -> list[tuple[Submission, str]]:
    """Grade ``items`` on ``workers`` processes, storing each result as it comes; return the items whose
    worker died (BrokenProcessPool) so the caller can retry them."""
    if not items:
        return []
    lost: list[tuple[Submission, str]] = []
    context = multiprocessing.get_context("spawn")
    databases = None
    if redis_url:  # one database per worker process, counted from the URL's own
        workers = min(workers, REDIS_DATABASES)
        databases = context.Queue()
        base = database_of(redis_url)
        for k in range(workers):
            databases.put((base + k) % REDIS_DATABASES)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_worker_init, initargs=(os.getpid(), databases))
    try:
        futures = {pool.submit(task, source, sub, limits, redis_url): (sub, fp) for sub, fp in items}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in finished:
                submission, fp = futures[future]
                try:
                    result = NotebookResult.from_dict(future.result())
                except BrokenProcessPool:
                    lost.append((submission, fp))
                    continue
                store(submission, fp, result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(getattr(pool, "_processes", {}).values()):  # do not leave busy workers behind
            process.kill()
        raise
    pool.shutdown(wait=True)
    return lost


def autograde_lesson(root: Path, lesson: Lesson, *, workers: int | None = None, limits: Limits = Limits(),
                     force: bool = False, students: list[str] | None = None, redis_url: str | None = None,
                     progress: bool = True, on_stored: Callable[[str], None] | None = None,
                     check_reference: bool = True) -> AutogradeSummary:
    """Grade every submission of a lesson that is not graded yet; return what happened.

    Before grading anything, the reference solution is graded with the same tests (stored, so only
    once per change of the lesson): if it loses points, ``ReferenceFails`` says which test and nothing
    is graded. Regraded submissions whose score changed are listed in the summary and saved in
    ``.grader/regrades/``; learners whose released feedback no longer matches are listed too.
    """
    from nbgrader.api import Gradebook

    from .grades import class_grades, stale_feedback

    start = time.monotonic()
    workers = max(1, workers or os.cpu_count() or 1)
    source = lesson.source_path(root)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: the lesson's source notebook is missing")
    submissions = find_submissions(root, lesson, students)
    summary = AutogradeSummary(lesson.slug, total=len(submissions), workers=workers)
    pending, stored = [], []
    for submission in submissions:
        fp = fingerprint(source, submission.notebook, extra=submission.timestamp or "")
        record = None if force else load_record(result_path(root, lesson.slug, submission.student))
        if record and record.get("fingerprint") == fp:
            stored.append((submission, record["result"]))
        else:
            pending.append((submission, fp))
    before = {}
    for submission, _ in pending:
        old = load_record(result_path(root, lesson.slug, submission.student))
        if old:
            before[submission.student] = old["result"].score
    if pending and check_reference:
        check_reference_solution(root, lesson, limits=limits, redis_url=redis_url)
    late = late_penalties(root)
    ensure_assignment(root, lesson)
    with Gradebook(db_url(root), course_id(root)) as gb:
        for submission, result in stored:  # repairs a run killed between storing a result and the gradebook
            _apply(root, lesson, gb, submission, result, late)
            summary.skipped.append(submission.student)
            summary.statuses[result.status] += 1
            summary.scores[submission.student] = result.score
        bar = ProgressBar(len(submissions), f"autograde {lesson.slug}", done=len(stored)) if progress else None

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")

        def save_changes() -> None:
            summary.changes_file = root / ".grader" / "regrades" / f"{lesson.slug}-{stamp}.json"
            write_json_atomic(summary.changes_file, {"lesson": lesson.slug, "at": stamp, "changes": {
                s: {"before": b, "after": a} for s, (b, a) in sorted(summary.changes.items())}})

        def store(submission: Submission, fp: str, result: NotebookResult) -> None:
            if submission.student in before and before[submission.student] != result.score:
                summary.changes[submission.student] = (before[submission.student], result.score)
                save_changes()  # before the result replaces the old one: a killed regrade keeps its changes
            write_json_atomic(result_path(root, lesson.slug, submission.student), {
                "student": submission.student, "lesson": lesson.slug, "fingerprint": fp,
                "timestamp": submission.timestamp, "graded_at": datetime.now(timezone.utc).isoformat(),
                "result": result.to_dict()})
            if on_stored:
                on_stored(submission.student)
            _apply(root, lesson, gb, submission, result, late)
            summary.graded_now[submission.student] = result.status
            summary.statuses[result.status] += 1
            summary.scores[submission.student] = result.score
            if bar:
                bar.advance(f"{submission.student}: {result.status} {result.score:g}/{result.max_score:g}")

        try:
            retry = _run_pool(pending, min(workers, max(1, len(pending))), source, limits, redis_url, store)
            for item in retry:  # their worker died: grade each alone, so one bad submission cannot sink others
                lost = _run_pool([item], 1, source, limits, redis_url, store)
                for submission, fp in lost:
                    detail = "the grading worker died twice while grading this submission"
                    store(submission, fp, NotebookResult("crashed", _all_exercises(read_notebook(source), "not_run", detail),
                                                         detail=detail))
        finally:
            if bar:
                bar.close()
    summary.stale_feedback = stale_feedback(root, class_grades(root, [lesson]), lesson.slug)
    summary.seconds = round(time.monotonic() - start, 2)
    return summary


def check_reference_solution(root: Path, lesson: Lesson, *, limits: Limits = Limits(),
                             redis_url: str | None = None) -> NotebookResult:
    """Grade the solution; raise ReferenceFails naming each test it fails."""
    if not lesson.release_path(root).is_file():
        raise FileNotFoundError(f"{lesson.release_path(root)} is missing: run `python -m grader release "
                                f"{lesson.slug}` (or `generate`) so the solution can be checked before grading")
    reference = grade_reference(root, lesson, limits=limits, redis_url=redis_url)
    if reference.status == "graded" and reference.score >= reference.max_score:
        return reference
    lost = [e for e in reference.exercises if e.score < e.points]
    lines = [f"  {e.id}-tests ({e.status}, {e.score:g}/{e.points:g}): {e.message or reference.detail}" for e in lost]
    raise ReferenceFails(
        f"{lesson.slug}: the reference solution (solutions/{lesson.slug}/{lesson.notebook}) scores "
        f"{reference.score:g}/{reference.max_score:g} [{reference.status}] with the current tests, so nobody was "
        f"graded:\n" + "\n".join(lines or [f"  {reference.detail}"]) +
        f"\nfix the test (then `python -m grader dev-check {lesson.slug}`), or pass --skip-reference-check "
        f"if the solution is meant to lose points")


def grade_reference(root: Path, lesson: Lesson, *, limits: Limits = Limits(), redis_url: str | None = None) -> NotebookResult:
    """The solution's own result (for the class report), stored and reused like a submission's; a stored run
    that did not end ``graded`` (the grader itself crashed or timed out) is graded again."""
    import tempfile

    from .synthetic import write_submission

    path = result_path(root, lesson.slug, REFERENCE)
    source, release = lesson.source_path(root), lesson.release_path(root)
    fp = fingerprint(source, release)
    record = load_record(path)
    if record and record.get("fingerprint") == fp and record["result"].status == "graded":
        return record["result"]
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        nb = write_submission(source, release, Path(tmp) / lesson.notebook)
        result = grade_notebook(source, nb, limits=limits, redis_url=redis_url)
    write_json_atomic(path, {"student": REFERENCE, "lesson": lesson.slug, "fingerprint": fp, "result": result.to_dict()})
    return result
