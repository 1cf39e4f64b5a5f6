"""The grading service: grade each submission that lands in the exchange's inbound folder, as it lands.

One process per course (a lock file says so) polls ``<exchange>/<course>/inbound/``, keeps its own
queue of complete submissions (a newer one from the same learner for the same lesson replaces a
queued older one), sends them to an executor (local processes or Dask) and, alone, stores each
result exactly as ``autograde`` does: ``submitted/`` (the copy ``collect`` would make), the result
file with its fingerprint, ``autograded/``, nbgrader's gradebook with the late penalty, and, with
``release_feedback``, the learner's feedback released through the exchange. Every step is journaled
(``grader.serving.journal``) after the files it stands for are written, so a restart, even after
``kill -9``, grades again only what was not finished, and re-applies without grading what was stored.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from course_lib.manifest import Lesson

from ..classroom.autograde import ReferenceFails, Submission, apply_result, check_reference_solution, late_penalties
from ..course.layout import course_id, load
from ..grading.result import NotebookResult
from ..course.nbgrader import ensure_assignment
from ..sandbox.protocol import Limits
from ..atomic import write_json_atomic
from ..classroom.store import fingerprint, load_record, result_path
from ..executors.batch import task_of
from ..executors.executor import Executor
from .inbound import InboundSubmission, copy_to_submitted, scan_inbound
from .journal import Entry, Journal, journal_path
from .live import LiveLine, status_line

__all__ = ["ServiceOptions", "GradingService", "AlreadyServing", "lock_path"]


class AlreadyServing(RuntimeError):
    """Another grading service holds this course's lock."""


def lock_path(root: Path) -> Path:
    return journal_path(root).parent / "lock"


@dataclass
class ServiceOptions:
    exchange: Path
    release_feedback: bool = False
    limits: Limits = field(default_factory=Limits)
    redis_url: str | None = None
    poll_seconds: float = 1.0
    check_reference: bool = True
    check_owner: bool = False  # refuse inbound folders not owned by the student they name (JupyterHub)


@dataclass
class _Running:
    item: InboundSubmission
    fingerprint: str
    started: float


def _notebook_in(folder: Path, lesson: Lesson) -> Path:
    """The lesson's notebook in a submission folder, or its only notebook when the learner renamed it."""
    notebook = folder / lesson.notebook
    if not notebook.is_file():
        others = [p for p in folder.glob("*.ipynb") if not p.name.startswith(".")]
        notebook = others[0] if len(others) == 1 else notebook
    return notebook


class GradingService:
    def __init__(self, root: Path, options: ServiceOptions, executor: Executor, *,
                 log: Callable[[str], None] = print, live: LiveLine | None = None) -> None:
        self.root, self.options, self.executor = root, options, executor
        self.log, self.live = log, live
        self.course = course_id(root)
        self.lessons = {lesson.slug: lesson for lesson in load(root).lessons}
        self.journal = Journal(journal_path(root))
        self.entries: dict[str, Entry] = self.journal.replay()
        self.waiting: dict[str, InboundSubmission] = {}
        self.running: dict[Future, _Running] = {}
        self.latest: dict[tuple[str, str], InboundSubmission] = {}  # the newest submission seen per learner and lesson
        self.ready: dict[str, str] = {}  # lesson -> "" (gradable) or why it is held
        self.ignored: set[str] = set()
        self.late = late_penalties(root)
        self._lock_fd: int | None = None

    # -- the journal -----------------------------------------------------------------------------------------
    def _event(self, event: str, item: InboundSubmission, **details: Any) -> None:
        self.journal.append(event, item.key, item.student, item.lesson, item.timestamp, **details)
        entry = self.entries.setdefault(item.key, Entry(item.key, item.student, item.lesson, item.timestamp, event))
        entry.events.append({"event": event, **details})
        if not entry.final:
            entry.state = event

    def _say(self, line: str) -> None:
        if self.live:
            self.live.clear()
        self.log(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {line}")

    # -- one pass --------------------------------------------------------------------------------------------
    def scan(self) -> None:
        """Queue each new complete submission; supersede queued ones that a newer submission replaces."""
        items, other = scan_inbound(self.options.exchange, self.course, set(self.lessons),
                                    check_owner=self.options.check_owner)
        for name, why in other.items():
            if name not in self.ignored:
                self.ignored.add(name)
                self._say(f"ignored inbound/{name}: {why}")
        running = {r.item.key for r in self.running.values()}
        for item in items:
            pair = (item.student, item.lesson)
            newest = self.latest.get(pair)
            if newest is None or (item.when, item.key) > (newest.when, newest.key):
                self.latest[pair] = item
            entry = self.entries.get(item.key)
            if (entry and entry.final) or item.key in self.waiting or item.key in running:
                continue
            if entry is None:
                self._event("queued", item)
            self.waiting[item.key] = item
        for key, item in list(self.waiting.items()):
            newer = self.latest[(item.student, item.lesson)]
            if newer.key != key:
                del self.waiting[key]
                self._event("superseded", item, by=newer.key)
                self._say(f"{item.student} {item.lesson} superseded (a newer submission, {newer.timestamp}, replaces it)")

    def _lesson_ready(self, lesson: Lesson) -> bool:
        """Check the lesson's reference solution once (stored, so once per change of the lesson)."""
        if lesson.slug not in self.ready:
            why = ""
            try:
                if self.options.check_reference:
                    check_reference_solution(self.root, lesson, limits=self.options.limits,
                                             redis_url=self.options.redis_url)
                ensure_assignment(self.root, lesson)
            except (ReferenceFails, FileNotFoundError) as exc:
                why = str(exc)
                self._say(f"{lesson.slug}: held, nothing of it is graded until this is fixed and the service "
                          f"restarted: {why}")
            self.ready[lesson.slug] = why
        return not self.ready[lesson.slug]

    def dispatch(self) -> None:
        """Send queued submissions, oldest first, while the executor has room."""
        for key, item in list(self.waiting.items()):
            if len(self.running) >= self.executor.capacity():
                return
            lesson = self.lessons[item.lesson]
            if not self._lesson_ready(lesson):
                continue
            del self.waiting[key]
            source, notebook = lesson.source_path(self.root), _notebook_in(item.folder, lesson)
            fp = fingerprint(source, notebook, extra=item.timestamp)
            record = load_record(result_path(self.root, item.lesson, item.student))
            if record and record.get("fingerprint") == fp:  # stored before a restart: apply it again, grade nothing
                self._finish(_Running(item, fp, time.monotonic()), record["result"], graded=False)
                continue
            self._event("started", item)
            task = task_of(item.lesson, item.student, notebook, source, self.options.limits, self.options.redis_url,
                           require_sandbox=self.executor.sandbox_required, notebook_name=lesson.notebook)
            self.running[self.executor.submit(task)] = _Running(item, fp, time.monotonic())

    def _finish(self, run: _Running, result: NotebookResult, *, graded: bool = True) -> None:
        """Store one result as ``autograde`` would, release its feedback, then journal it done."""
        item, lesson = run.item, self.lessons[run.item.lesson]
        newer = self.latest[(item.student, item.lesson)]
        if newer.key != item.key or not copy_to_submitted(self.root, item):
            self._event("superseded", item, by=newer.key if newer.key != item.key else "submitted/")
            self._say(f"{item.student} {item.lesson} superseded (a newer submission replaces it)")
            return
        from nbgrader.api import Gradebook

        from ..course.nbgrader import db_url

        submitted = self.root / "submitted" / item.student / item.lesson
        submission = Submission(item.student, _notebook_in(submitted, lesson), item.timestamp)
        if graded:
            write_json_atomic(result_path(self.root, item.lesson, item.student), {
                "student": item.student, "lesson": item.lesson, "fingerprint": run.fingerprint,
                "timestamp": item.timestamp, "graded_at": datetime.now(timezone.utc).isoformat(),
                "result": result.to_dict()})
        with Gradebook(db_url(self.root), self.course) as gb:
            apply_result(self.root, lesson, gb, submission, result, self.late)
        released = False
        if self.options.release_feedback:
            try:
                released = self._release(lesson, item.student)
            except Exception as exc:  # noqa: BLE001 - graded and stored all the same; the instructor can release
                self._say(f"{item.student} {item.lesson}: feedback not released ({exc}); release it with "
                          f"`python -m grader feedback {item.lesson} --student {item.student} --release`")
        seconds = round(time.monotonic() - run.started, 2)
        self._event("done", item, status=result.status, score=result.score, max_score=result.max_score,
                    seconds=seconds, graded=graded, released=released)
        self._say(f"{item.student} {item.lesson} {result.status} {result.score:g}/{result.max_score:g} {seconds:.1f}s"
                  + (" feedback released" if released else "") + ("" if graded else " (stored before a restart)"))

    def _release(self, lesson: Lesson, student: str) -> bool:
        from ..present.feedback import write_feedback
        from ..classroom.grades import class_grades
        from ..classroom.released import record_feedback_release
        from .release import release_feedback

        record = load_record(result_path(self.root, lesson.slug, student))
        grade = class_grades(self.root, [lesson], students=[student]).grades[(student, lesson.slug)]
        write_feedback(self.root, lesson, student, record["result"], grade=grade)
        release_feedback(self.root, self.options.exchange, self.course, lesson.slug, student)
        record_feedback_release(self.root, lesson.slug, {student: grade.digest()})
        return True

    def collect(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for gradings to come back and store those that did."""
        if not self.running:
            return
        finished, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        runs = [(future, self.running.pop(future)) for future in finished]
        self.dispatch()  # the freed workers grade the next ones while these are stored
        for future, run in runs:
            try:
                result = NotebookResult.from_dict(future.result())
            except Exception as exc:  # noqa: BLE001 - the grading itself failed (not the learner's code)
                detail = f"{type(exc).__name__}: {exc}"
                self._event("failed", run.item, detail=detail)
                self._say(f"{run.item.student} {run.item.lesson} failed {time.monotonic() - run.started:.1f}s: {detail}")
                continue
            self._finish(run, result)

    def idle(self) -> bool:
        """Nothing running and nothing that could be sent (held lessons wait for a restart)."""
        return not self.running and all(self.ready.get(item.lesson) for item in self.waiting.values())

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, *, exit_when_idle: bool = False) -> None:
        stop = stop or threading.Event()
        self._take_lock()
        try:
            while not stop.is_set():
                self.scan()
                self.dispatch()
                if self.live:
                    self.live.show(f"serve {self.course}: {status_line(self.entries)}")
                if exit_when_idle and self.idle():
                    return
                if self.running:
                    self.collect(self.options.poll_seconds)
                else:
                    stop.wait(self.options.poll_seconds)
        finally:
            if self.live:
                self.live.clear()
            self._release_lock()

    def _take_lock(self) -> None:
        path = lock_path(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyServing(f"another grading service (pid {holder}) is serving {self.root}; stop it first "
                                 f"(one writer for the gradebook)") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
