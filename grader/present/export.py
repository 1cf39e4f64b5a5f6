"""Export the class's grades: one CSV row per learner, one column per exercise, plus statuses.

Everything comes from ``grader.classroom.grades.class_grades``, i.e. nbgrader's gradebook: manual scores from
the formgrader win over the autograder's, late penalties are the ones ``autograde`` set with
nbgrader's LateSubmissionPlugin. An exercise that could not be graded (the notebook timed out,
crashed or was unreadable before it ran) is an empty cell, never a 0; so is the lesson's total and
the learner's ``total``, and the ``status`` column says which lesson blocks it. ``<lesson>:feedback`` is
``released``, ``stale`` (the grades changed since it was released: rerun ``feedback --release``) or empty. A registered learner
without a submission has the lesson status ``not_submitted`` (a real 0).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from course_lib.manifest import Lesson

from ..atomic import write_text_atomic
from ..classroom.grades import class_grades
from ..classroom.released import feedback_digests

__all__ = ["export_rows", "export_columns", "export_csv"]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def export_columns(lessons: list[Lesson]) -> list[str]:
    columns = ["student", "first_name", "last_name"]
    for lesson in lessons:
        s = lesson.slug
        columns += [f"{s}:status"] + [e.id for e in lesson.exercises]
        columns += [f"{s}:submitted_at", f"{s}:late_by_seconds", f"{s}:penalty", f"{s}:total", f"{s}:feedback"]
    return columns + ["total", "max_total", "status"]


def export_rows(root: Path, lessons: list[Lesson]) -> list[dict[str, object]]:
    book = class_grades(root, lessons)
    released = feedback_digests(root)
    rows = []
    for student, learner in book.learners.items():
        row: dict[str, object] = {"student": student, "first_name": learner.first_name, "last_name": learner.last_name}
        for lesson in lessons:
            g = book.grades[(student, lesson.slug)]
            s = lesson.slug
            row[f"{s}:status"] = g.status
            for ex in lesson.exercises:
                row[ex.id] = _num(g.scores.get(ex.id)) if g.status != "not_submitted" else ""
            row[f"{s}:submitted_at"] = g.submitted_at.strftime("%Y-%m-%d %H:%M:%S UTC") if g.submitted_at else ""
            row[f"{s}:late_by_seconds"] = f"{g.seconds_late:g}" if g.seconds_late else ("0" if g.submitted_at else "")
            row[f"{s}:penalty"] = f"{g.penalty:g}" if g.submitted_at else ""
            row[f"{s}:total"] = _num(g.score)
            digest = released.get(s, {}).get(student)
            row[f"{s}:feedback"] = "" if digest is None else ("released" if digest == g.digest() else "stale")
        total, blocking = book.total(student)
        row["total"] = _num(total)
        row["max_total"] = f"{book.max_total:g}"
        row["status"] = "complete" if not blocking else "incomplete: " + "; ".join(blocking)
        rows.append(row)
    return rows


def export_csv(root: Path, lessons: list[Lesson], out: Path) -> tuple[Path, int]:
    """Write the CSV atomically; return (path, number of learners)."""
    rows = export_rows(root, lessons)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=export_columns(lessons), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out, buffer.getvalue())
    return out, len(rows)
