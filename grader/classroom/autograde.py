"""Autograde a whole class: parallel, resumable, one writer for the gradebook.

The parent process finds the submissions in nbgrader's ``submitted/`` folder,
skips those whose stored result matches the submission's fingerprint, and
grades the rest with ``grade_notebook`` (learner code only ever runs in
``grader.sandbox.parent``'s child processes) on a pool of worker processes (not
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

from ..atomic import write_json_atomic
from ..course.cells import read_notebook
from ..course.layout import course_id
from ..course.nbgrader import db_url, ensure_assignment
from ..grading.grade import exercises_of, grade_notebook
from ..grading.result import NotebookResult, NotebookStatus
from ..progressbar import ProgressBar
from ..sandbox.protocol import Limits
from ..sandbox.redis_urls import database_of
from ..executors.workers import REDIS_DATABASES, worker_init, worker_redis_url
from .autograded_notebook import autograded_notebook, write_notebook_atomic
from .store import REFERENCE, fingerprint, load_record, result_path

__all__ = ["Submission", "Job", "AutogradeSummary", "find_submissions", "autograde_lessons", "autograde_lesson",
           "grade_reference", "reference_problem",
           "record_in_gradebook", "apply_result", "STUDENT_ID", "ReferenceFails", "check_reference_solution", "late_penalties",
           "apply_late_penalty"]

STUDENT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")  # nbgrader forbids '+' and '*'; we keep it simple


@dataclass
class Submission:
    student: str
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
    refused: str = ""  # why nothing was graded: the reference solution loses points with the current tests


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
        found.append(Submission(student, notebook, _timestamp(folder)))
    return found


def _safe_grade(source: Path, submission: Submission, limits: Limits, redis_url: str | None) -> NotebookResult:
    """Grade one submission; whatever happens, return a result with an explicit status."""
    try:
        return grade_notebook(source, submission.notebook, limits=limits, redis_url=redis_url)
    except Exception as exc:  # a grader bug must not stop the batch
        detail = f"the grader failed on this submission ({type(exc).__name__}: {exc})"
        return NotebookResult.all_not_run(NotebookStatus.CRASHED, exercises_of(read_notebook(source)), detail)


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
    real = result.is_scored
    for exercise in result.exercises:
        try:
            grade = gb.find_grade(f"{exercise.id}-tests", nb_id, lesson.slug, student)
        except MissingEntry:
            continue
        unknown = not exercise.score_known(result.status)
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


def apply_result(root: Path, lesson: Lesson, gb: Any, submission: Submission, result: NotebookResult,
           late: Any = None) -> None:
    """Write the autograded notebook, then the gradebook (both idempotent)."""
    out = root / "autograded" / submission.student / lesson.slug
    write_notebook_atomic(autograded_notebook(lesson.source_path(root), submission.notebook, result),
                          out / lesson.notebook)
    if submission.timestamp:
        (out / "timestamp.txt").write_text(submission.timestamp, encoding="utf-8")
    record_in_gradebook(gb, lesson, submission.student, result, submission.timestamp, late)


def _grade_task(source: Path, submission: Submission, limits: Limits, redis_url: str | None) -> dict[str, Any]:
    return _safe_grade(source, submission, limits, worker_redis_url(redis_url)).to_dict()


@dataclass(frozen=True)
class Job:
    """One notebook in the class's queue: a learner's submission, or a lesson's reference solution."""

    lesson: str  # the lesson's slug
    source: Path  # the lesson's source notebook (solutions/), the hidden tests
    submission: Submission
    fingerprint: str


def _run_pool(jobs: list[Job], workers: int, limits: Limits, redis_url: str | None,
              store: Callable[[Job, NotebookResult], None], task: Callable[..., dict[str, Any]] = _grade_task,
              dropped: Callable[[Job], bool] = lambda job: False) -> list[Job]:
    """Grade ``jobs`` on ``workers`` processes in their order, storing each result as it comes; return the jobs
    whose worker died (BrokenProcessPool) so the caller can retry them. A job for which ``dropped`` turns true
    (its lesson's reference solution failed) is cancelled if it has not started yet."""
    if not jobs:
        return []
    lost: list[Job] = []
    context = multiprocessing.get_context("spawn")
    databases = None
    if redis_url:  # one database per worker process, counted from the URL's own
        workers = min(workers, REDIS_DATABASES)
        databases = context.Queue()
        base = database_of(redis_url)
        for k in range(workers):
            databases.put((base + k) % REDIS_DATABASES)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=worker_init, initargs=(os.getpid(), databases))
    try:
        futures = {pool.submit(task, job.source, job.submission, limits, redis_url): job for job in jobs}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in finished:
                job = futures[future]
                if future.cancelled():
                    continue
                try:
                    result = NotebookResult.from_dict(future.result())
                except BrokenProcessPool:
                    lost.append(job)
                    continue
                store(job, result)
            for future in remaining:
                if dropped(futures[future]):
                    future.cancel()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(getattr(pool, "_processes", {}).values()):  # do not leave busy workers behind
            process.kill()
        raise
    pool.shutdown(wait=True)
    return [job for job in lost if not dropped(job)]


def reference_problem(lesson: Lesson, reference: NotebookResult) -> str:
    """Why the lesson's solution makes its tests unusable for grading ("" when it scores full marks)."""
    if reference.status == "graded" and reference.score >= reference.max_score:
        return ""
    lost = [e for e in reference.exercises if e.score < e.points]
    lines = [f"  {e.id}-tests ({e.status}, {e.score:g}/{e.points:g}): {e.message or reference.detail}" for e in lost]
    return (f"{lesson.slug}: the reference solution (solutions/{lesson.slug}/{lesson.notebook}) scores "
            f"{reference.score:g}/{reference.max_score:g} [{reference.status}] with the current tests, so nobody was "
            f"graded:\n" + "\n".join(lines or [f"  {reference.detail}"]) +
            f"\nfix the test (then `python -m grader dev-check {lesson.slug}`), or pass --skip-reference-check "
            f"if the solution is meant to lose points")


def _release_of(root: Path, lesson: Lesson) -> Path:
    release = lesson.release_path(root)
    if not release.is_file():
        raise FileNotFoundError(f"{release} is missing: run `python -m grader release {lesson.slug}` (or "
                                f"`generate`) so the solution can be checked before grading")
    return release


class _LessonRun:
    """One lesson of a class run: what is stored, what is pending, and its reference solution's verdict.

    Results of a lesson whose reference solution is still being graded are held, and stored only once
    it scored full marks; if it did not, they are dropped and ``summary.refused`` says why.
    """

    def __init__(self, root: Path, lesson: Lesson, students: list[str] | None, force: bool) -> None:
        self.root, self.lesson = root, lesson
        self.source = lesson.source_path(root)
        if not self.source.is_file():
            raise FileNotFoundError(f"{self.source}: the lesson's source notebook is missing")
        submissions = find_submissions(root, lesson, students)
        self.summary = AutogradeSummary(lesson.slug, total=len(submissions))
        self.pending: list[Job] = []
        self.stored: list[tuple[Submission, NotebookResult]] = []
        for submission in submissions:
            fp = fingerprint(self.source, submission.notebook, extra=submission.timestamp or "")
            record = None if force else load_record(result_path(root, lesson.slug, submission.student))
            if record and record.get("fingerprint") == fp:
                self.stored.append((submission, record["result"]))
            else:
                self.pending.append(Job(lesson.slug, self.source, submission, fp))
        self.before = {}
        for job in self.pending:
            old = load_record(result_path(root, lesson.slug, job.submission.student))
            if old:
                self.before[job.submission.student] = old["result"].score
        self.reference: Job | None = None  # the reference solution, when it must be graded in this run
        self.held: list[tuple[Job, NotebookResult]] = []
        self.stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")

    def plan_reference(self, scratch: Path) -> None:
        """Take the reference's stored verdict, or queue the reference solution to be graded first."""
        from ..course.synthetic import write_submission

        release = _release_of(self.root, self.lesson)
        fp = fingerprint(self.source, release)
        record = load_record(result_path(self.root, self.lesson.slug, REFERENCE))
        if record and record.get("fingerprint") == fp:
            self.summary.refused = reference_problem(self.lesson, record["result"])
            return
        notebook = write_submission(self.source, release, scratch / self.lesson.slug / self.lesson.notebook)
        self.reference = Job(self.lesson.slug, self.source, Submission(REFERENCE, notebook), fp)

    def dropped(self, job: Job) -> bool:
        return bool(self.summary.refused) and job is not self.reference

    def receive(self, job: Job, result: NotebookResult, store: Callable[[Job, NotebookResult], None]) -> None:
        """A result came back: the reference's verdict releases (or drops) what was held."""
        if job is self.reference:
            write_json_atomic(result_path(self.root, self.lesson.slug, REFERENCE), {
                "student": REFERENCE, "lesson": self.lesson.slug, "fingerprint": job.fingerprint,
                "result": result.to_dict()})
            self.reference = None
            self.summary.refused = reference_problem(self.lesson, result)
            held, self.held = self.held, []
            for item in held if not self.summary.refused else []:
                store(*item)
        elif self.summary.refused:
            return
        elif self.reference is not None:
            self.held.append((job, result))
        else:
            store(job, result)

    def save_changes(self) -> None:
        self.summary.changes_file = self.root / ".grader" / "regrades" / f"{self.lesson.slug}-{self.stamp}.json"
        write_json_atomic(self.summary.changes_file, {"lesson": self.lesson.slug, "at": self.stamp, "changes": {
            s: {"before": b, "after": a} for s, (b, a) in sorted(self.summary.changes.items())}})


def autograde_lessons(root: Path, lessons: list[Lesson], *, workers: int | None = None, limits: Limits = Limits(),
                      force: bool = False, students: list[str] | None = None, redis_url: str | None = None,
                      progress: bool = True,
                      check_reference: bool = True, scheduler: str | None = None) -> list[AutogradeSummary]:
    """Grade every submission of these lessons that is not graded yet, on one queue; one summary per lesson.

    The whole class is one queue: the workers go from one lesson to the next without waiting for the slowest
    submission of a lesson, and each lesson's reference solution (graded with the same tests, stored, so only
    once per change of the lesson) is at the head of the queue rather than before it. A lesson whose reference
    solution loses points stores nothing (``summary.refused`` says which test, and its queued submissions are
    cancelled); the other lessons are graded. Regraded submissions whose score changed are listed in their
    summary and saved in ``.grader/regrades/``; learners whose released feedback no longer matches are listed too.
    With ``scheduler`` (``tcp://host:8786``) the queue is graded on that dask.distributed cluster instead of local
    processes (``grader.serving``); storing stays here.
    """
    import tempfile

    from nbgrader.api import Gradebook

    from .grades import class_grades, stale_feedback

    start = time.monotonic()
    workers = max(1, workers or os.cpu_count() or 1)
    runs = [_LessonRun(root, lesson, students, force) for lesson in {lesson.slug: lesson for lesson in lessons}.values()]
    by_slug = {run.lesson.slug: run for run in runs}
    late = late_penalties(root)
    with tempfile.TemporaryDirectory(prefix="reference-") as scratch:
        for run in runs:
            if run.pending and check_reference:
                run.plan_reference(Path(scratch))
            if not run.summary.refused:
                ensure_assignment(root, run.lesson)
        live = [run for run in runs if not run.summary.refused]
        with Gradebook(db_url(root), course_id(root)) as gb:
            for run in live:  # repairs a run killed between storing a result and the gradebook
                for submission, result in run.stored:
                    apply_result(root, run.lesson, gb, submission, result, late)
                    run.summary.skipped.append(submission.student)
                    run.summary.statuses[result.status] += 1
                    run.summary.scores[submission.student] = result.score
            bar = None
            if progress and live:
                label = f"autograde {live[0].lesson.slug}" if len(live) == 1 else f"autograde {len(live)} lessons"
                bar = ProgressBar(sum(run.summary.total for run in live), label, done=sum(len(r.stored) for r in live))

            def store(job: Job, result: NotebookResult) -> None:
                run, student = by_slug[job.lesson], job.submission.student
                summary = run.summary
                if student in run.before and run.before[student] != result.score:
                    summary.changes[student] = (run.before[student], result.score)
                    run.save_changes()  # before the result replaces the old one: a killed regrade keeps its changes
                write_json_atomic(result_path(root, job.lesson, student), {
                    "student": student, "lesson": job.lesson, "fingerprint": job.fingerprint,
                    "timestamp": job.submission.timestamp, "graded_at": datetime.now(timezone.utc).isoformat(),
                    "result": result.to_dict()})
                apply_result(root, run.lesson, gb, job.submission, result, late)
                summary.graded_now[student] = result.status
                summary.statuses[result.status] += 1
                summary.scores[student] = result.score
                summary.seconds = round(time.monotonic() - start, 2)
                if bar:
                    who = student if len(live) == 1 else f"{job.lesson} {student}"
                    bar.advance(f"{who}: {result.status} {result.score:g}/{result.max_score:g}")

            def receive(job: Job, result: NotebookResult) -> None:
                by_slug[job.lesson].receive(job, result, store)

            def dropped(job: Job) -> bool:
                return by_slug[job.lesson].dropped(job)

            jobs = [run.reference for run in live if run.reference] + [job for run in live for job in run.pending]
            for run in runs:
                run.summary.workers = min(workers, max(1, len(jobs)))
            try:
                if scheduler:
                    from ..executors.batch import run_batch
                    from ..executors.executor import DaskExecutor

                    executor = DaskExecutor(scheduler)
                    try:
                        run_batch(executor, jobs, limits, redis_url, receive, dropped)  # the cluster retries lost work
                    finally:
                        executor.close()
                    retry = []
                else:
                    retry = _run_pool(jobs, min(workers, max(1, len(jobs))), limits, redis_url, receive, dropped=dropped)
                for job in retry:  # their worker died: grade each alone, so one bad submission cannot sink others
                    for lost in _run_pool([job], 1, limits, redis_url, receive, dropped=dropped):
                        detail = "the grading worker died twice while grading this submission"
                        receive(lost, NotebookResult.all_not_run(NotebookStatus.CRASHED, exercises_of(read_notebook(lost.source)),
                                                                 detail))
            finally:
                if bar:
                    bar.close()
    for run in live:
        if not run.summary.refused:
            run.summary.stale_feedback = stale_feedback(root, class_grades(root, [run.lesson]), run.lesson.slug)
    for run in runs:
        run.summary.seconds = run.summary.seconds or round(time.monotonic() - start, 2)
    return [run.summary for run in runs]


def autograde_lesson(root: Path, lesson: Lesson, **options: Any) -> AutogradeSummary:
    """Grade one lesson (``autograde_lessons`` with one lesson); ``ReferenceFails`` if its solution loses points."""
    summary, = autograde_lessons(root, [lesson], **options)
    if summary.refused:
        raise ReferenceFails(summary.refused)
    return summary


def check_reference_solution(root: Path, lesson: Lesson, *, limits: Limits = Limits(),
                             redis_url: str | None = None) -> NotebookResult:
    """Grade the solution; raise ReferenceFails naming each test it fails."""
    _release_of(root, lesson)
    reference = grade_reference(root, lesson, limits=limits, redis_url=redis_url)
    problem = reference_problem(lesson, reference)
    if problem:
        raise ReferenceFails(problem)
    return reference


def grade_reference(root: Path, lesson: Lesson, *, limits: Limits = Limits(), redis_url: str | None = None) -> NotebookResult:
    """The solution's own result (for the class report), stored and reused like a submission's; a stored run
    that did not end ``graded`` (the grader itself crashed or timed out) is graded again."""
    import tempfile

    from ..course.synthetic import write_submission

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
