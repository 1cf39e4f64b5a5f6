"""Export the class's grades: one CSV row per learner, one column per exercise, plus statuses.

Scores come from nbgrader's gradebook (so a manual score given in the
formgrader wins over the autograder's); statuses come from the grader's stored
results. An exercise that could not be graded (the notebook timed out, crashed
or was unreadable before it ran) is an empty cell, never a 0, and the
lesson's status column says why; a learner without a submission has status
``not_submitted``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from course_lib.manifest import Lesson

from .course import course_id
from .nbg import db_url
from .results import load_lesson_records, write_text_atomic

__all__ = ["export_rows", "export_csv"]


def _gradebook_scores(root: Path, lessons: list[Lesson]) -> tuple[set[str], dict[tuple[str, str, str], float | None]]:
    """(students, {(student, lesson, exercise): score or None when it needs a manual grade})."""
    students: set[str] = set()
    scores: dict[tuple[str, str, str], float | None] = {}
    if not (root / "gradebook.db").is_file():
        return students, scores
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(root), course_id(root)) as gb:
        students = {s.id for s in gb.students}
        for lesson in lessons:
            nb_id = Path(lesson.notebook).stem
            for student in students:
                for ex in lesson.exercises:
                    try:
                        grade = gb.find_grade(ex.tests_cell_id, nb_id, lesson.slug, student)
                    except MissingEntry:
                        continue
                    if grade.manual_score is not None:
                        scores[(student, lesson.slug, ex.id)] = grade.manual_score + (grade.extra_credit or 0)
                    elif grade.needs_manual_grade or grade.auto_score is None:
                        scores[(student, lesson.slug, ex.id)] = None
                    else:
                        scores[(student, lesson.slug, ex.id)] = grade.auto_score + (grade.extra_credit or 0)
    return students, scores


def export_rows(root: Path, lessons: list[Lesson]) -> list[dict[str, object]]:
    students, scores = _gradebook_scores(root, lessons)
    records = {lesson.slug: load_lesson_records(root, lesson.slug) for lesson in lessons}
    for by_student in records.values():
        students |= set(by_student)
    rows = []
    for student in sorted(students):
        row: dict[str, object] = {"student": student}
        total = 0.0
        for lesson in lessons:
            record = records[lesson.slug].get(student)
            submitted = (root / "submitted" / student / lesson.slug).is_dir()
            status = record["result"].status if record else ("not_graded" if submitted else "not_submitted")
            row[f"{lesson.slug}:status"] = status
            lesson_total, any_real = 0.0, False
            for ex in lesson.exercises:
                key = (student, lesson.slug, ex.id)
                if key in scores:
                    value = scores[key]
                elif record:  # no gradebook entry: fall back to the stored result
                    found = next((e for e in record["result"].exercises if e.id == ex.id), None)
                    value = None if found is None or (status not in ("graded", "tampered")
                                                      and found.status in ("not_run", "timed_out")) else found.score
                else:
                    value = None
                row[ex.id] = "" if value is None else f"{value:g}"
                lesson_total += value or 0.0
                any_real = any_real or value is not None
            row[f"{lesson.slug}:total"] = f"{lesson_total:g}" if any_real else ""
            total += lesson_total
        row["total"] = f"{total:g}"
        row["max_total"] = f"{sum(l.points for l in lessons):g}"
        rows.append(row)
    return rows


def export_csv(root: Path, lessons: list[Lesson], out: Path) -> tuple[Path, int]:
    """Write the CSV atomically; return (path, number of learners)."""
    columns = ["student"]
    for lesson in lessons:
        columns += [f"{lesson.slug}:status"] + [e.id for e in lesson.exercises] + [f"{lesson.slug}:total"]
    columns += ["total", "max_total"]
    rows = export_rows(root, lessons)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out, buffer.getvalue())
    return out, len(rows)
