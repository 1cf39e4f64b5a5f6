"""The class's grades, read from one place: nbgrader's gradebook.

Export, report and feedback all read ``class_grades``: per learner and lesson the exercise scores
(a manual score from the formgrader wins over the autograder's, plus extra credit), the graders'
comments, the submission time, the due date (with any extension), how late it was and the late
penalty that ``autograde`` set with nbgrader's ``LateSubmissionPlugin``. The grader's stored results
(``grader-results/``) add only what the gradebook cannot hold: the status (graded, tampered,
timed_out, crashed, unreadable), the failure messages and the learner's charts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from course_lib.manifest import Lesson

from ..course.layout import course_id
from ..course.nbgrader import db_url
from ..grading.result import NotebookResult
from .store import load_lesson_records

__all__ = ["Learner", "LessonGrade", "ClassGrades", "class_grades", "format_late", "stale_feedback"]



@dataclass
class Learner:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass
class LessonGrade:
    student: str
    lesson: str
    status: str  # graded | tampered | timed_out | crashed | unreadable | not_graded | not_submitted
    max_score: float
    scores: dict[str, float | None] = field(default_factory=dict)  # exercise id -> score, None = not gradable
    manual: set[str] = field(default_factory=set)  # exercises whose score was given by hand
    comments: dict[str, str] = field(default_factory=dict)  # exercise id -> the grader's (manual) comment
    submitted_at: datetime | None = None
    duedate: datetime | None = None
    seconds_late: float = 0.0
    penalty: float = 0.0
    result: NotebookResult | None = None
    timed_out: int = 0  # exercises that ran past their time

    @property
    def complete(self) -> bool:
        """Every exercise has a score (a lesson not submitted counts as complete: a real 0)."""
        return self.status == "not_submitted" or all(v is not None for v in self.scores.values())

    @property
    def score(self) -> float | None:
        """Sum of the exercise scores minus the late penalty; None when some exercise has no score."""
        if self.status == "not_submitted":
            return 0.0
        if not self.scores or not self.complete:
            return None
        return max(0.0, sum(v or 0.0 for v in self.scores.values()) - self.penalty)

    def digest(self) -> str:
        """What a feedback page shows, hashed: a change means released feedback is stale."""
        data = [self.status, sorted(self.scores.items()), sorted(self.comments.items()), self.penalty]
        return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()[:16]


@dataclass
class ClassGrades:
    learners: dict[str, Learner]
    grades: dict[tuple[str, str], LessonGrade]  # (student, lesson slug)
    lessons: list[Lesson]

    def total(self, student: str) -> tuple[float | None, list[str]]:
        """(total over the lessons, or None when one could not be graded; the lessons that block it)."""
        blocking = [f"{l.slug}: {self.grades[(student, l.slug)].status}" for l in self.lessons
                    if not self.grades[(student, l.slug)].complete]
        if blocking:
            return None, blocking
        return sum(self.grades[(student, l.slug)].score or 0.0 for l in self.lessons), []

    @property
    def max_total(self) -> float:
        return sum(l.points for l in self.lessons)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def format_late(seconds: float) -> str:
    """'' when on time, else e.g. '4m 53s' or '2d 3h'."""
    if seconds <= 0:
        return ""
    s = int(round(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{u}" for n, u in parts if n][:2]
    return " ".join(shown) or "0s"


def _from_result(result: NotebookResult, lesson: Lesson) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    for ex in lesson.exercises:
        found = result.exercise(ex.id)
        unknown = found is None or not found.score_known(result.status)
        scores[ex.id] = None if unknown else found.score
    return scores


def class_grades(root: Path, lessons: list[Lesson], students: list[str] | None = None) -> ClassGrades:
    """Every learner of the gradebook (and every one with a stored result) against ``lessons``."""
    records = {lesson.slug: load_lesson_records(root, lesson.slug) for lesson in lessons}
    learners: dict[str, Learner] = {}
    grades: dict[tuple[str, str], LessonGrade] = {}
    gb_ctx = None
    if (root / "gradebook.db").is_file():
        from nbgrader.api import Gradebook

        gb_ctx = Gradebook(db_url(root), course_id(root))
    try:
        if gb_ctx is not None:
            for s in gb_ctx.students:
                learners[s.id] = Learner(s.id, s.first_name or "", s.last_name or "", s.email or "")
        for by_student in records.values():
            for student in by_student:
                learners.setdefault(student, Learner(student))
        if students:
            learners = {k: v for k, v in learners.items() if k in students}
        for student in sorted(learners):
            for lesson in lessons:
                grades[(student, lesson.slug)] = _lesson_grade(root, gb_ctx, lesson, student,
                                                               records[lesson.slug].get(student))
    finally:
        if gb_ctx is not None:
            gb_ctx.close()
    return ClassGrades(dict(sorted(learners.items())), grades, lessons)


def _lesson_grade(root: Path, gb: Any, lesson: Lesson, student: str, record: dict | None) -> LessonGrade:
    from nbgrader.api import MissingEntry

    submitted = (root / "submitted" / student / lesson.slug).is_dir()
    result = record["result"] if record else None
    status = result.status if result else ("not_graded" if submitted else "not_submitted")
    grade = LessonGrade(student, lesson.slug, status, lesson.points, result=result)
    grade.scores = _from_result(result, lesson) if result else {e.id: None for e in lesson.exercises}
    if result:
        grade.timed_out = sum(1 for e in result.exercises if e.status == "timed_out")
    if gb is None:
        return grade
    nb_id = Path(lesson.notebook).stem
    try:
        submission = gb.find_submission(lesson.slug, student)
    except MissingEntry:
        return grade
    grade.submitted_at = _utc(submission.timestamp)
    grade.duedate = _utc(submission.duedate)
    grade.seconds_late = float(submission.total_seconds_late or 0.0)
    grade.penalty = float(submission.late_submission_penalty or 0.0)
    for ex in lesson.exercises:
        try:
            g = gb.find_grade(ex.tests_cell_id, nb_id, lesson.slug, student)
        except MissingEntry:
            continue
        if g.manual_score is not None:
            grade.scores[ex.id] = g.manual_score + (g.extra_credit or 0)
            grade.manual.add(ex.id)
        elif g.needs_manual_grade or g.auto_score is None:
            grade.scores[ex.id] = None
        else:
            grade.scores[ex.id] = g.auto_score + (g.extra_credit or 0)
        for cell in (ex.id, ex.tests_cell_id):
            try:
                comment = gb.find_comment(cell, nb_id, lesson.slug, student)
            except MissingEntry:
                continue
            if comment.manual_comment:
                grade.comments[ex.id] = comment.manual_comment
    if grade.manual and grade.status == "not_graded":
        grade.status = "graded"
    return grade


def stale_feedback(root: Path, book: ClassGrades, slug: str) -> list[str]:
    """Learners whose released feedback for ``slug`` no longer matches their grades (rerun feedback --release)."""
    from .released import feedback_digests

    released = feedback_digests(root).get(slug, {})
    return sorted(s for s, digest in released.items()
                  if (s, slug) in book.grades and book.grades[(s, slug)].digest() != digest)
