"""The learner's side: check my notebook locally, remember the result, show progress.

``check`` grades a copy-free read of the learner's notebook with the hidden
tests (through the same sandboxed ``grade_notebook`` as the instructor's
autograder), writes a feedback page with the learner's charts and records the
result in ``<workspace>/.grader/progress.json``; ``progress`` reads that file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from course_lib.manifest import Course, Lesson

from .feedback import EXERCISE_TEXT, STATUS_TEXT, feedback_html
from .grade import NotebookResult
from .results import write_text_atomic

__all__ = ["STATE_DIR", "state_path", "load_state", "record_check", "feedback_path", "format_check",
           "format_progress", "default_lesson"]

STATE_DIR = ".grader"


def state_path(workspace: Path) -> Path:
    return workspace / STATE_DIR / "progress.json"


def feedback_path(workspace: Path, lesson: Lesson) -> Path:
    return workspace / STATE_DIR / "feedback" / f"{lesson.slug}.html"


def load_state(workspace: Path) -> dict[str, Any]:
    try:
        data = json.loads(state_path(workspace).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("lessons"), dict) else {"lessons": {}}
    except (OSError, ValueError):
        return {"lessons": {}}


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def record_check(workspace: Path, lesson: Lesson, notebook: Path, result: NotebookResult) -> Path:
    """Store the result in the state file and write the feedback page; return the page."""
    page = feedback_path(workspace, lesson)
    write_text_atomic(page, feedback_html(lesson, result))
    state = load_state(workspace)
    state["lessons"][lesson.slug] = {
        "score": result.score, "max_score": result.max_score, "status": result.status,
        "passed": result.status in ("graded", "tampered") and all(e.status == "passed" for e in result.exercises),
        "exercises": {e.id: e.status for e in result.exercises},
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notebook": str(notebook), "sha256": _digest(notebook),
    }
    write_text_atomic(state_path(workspace), json.dumps(state, indent=1))
    return page


def default_lesson(course: Course, workspace: Path) -> Lesson | None:
    """The lesson whose workspace notebook was edited last."""
    paths = [(workspace / l.slug / l.notebook, l) for l in course.lessons]
    found = [(p.stat().st_mtime, l) for p, l in paths if p.is_file()]
    return max(found, key=lambda item: item[0])[1] if found else None


def format_check(lesson: Lesson, result: NotebookResult, page: Path) -> str:
    hints = {e.id: e.hints for e in lesson.exercises}
    width = max([len(e.id) for e in result.exercises] + [8])
    lines = [f"{lesson.slug}: {result.score:g}/{result.max_score:g} points "
             f"({STATUS_TEXT.get(result.status, result.status)}; {result.seconds:.1f} s)"]
    if result.status not in ("graded", "tampered") and result.detail:
        lines.append(f"  {result.detail}")
    lines += [f"  note: {n}" for n in result.notes]
    lines.append(f"  {'exercise':<{width}}  {'result':<10} points")
    for ex in result.exercises:
        mark = "ok " if ex.status == "passed" else "XX "
        lines.append(f"{mark}{ex.id:<{width}}  {EXERCISE_TEXT.get(ex.status, ex.status):<10} {ex.score:g}/{ex.points:g}")
        if ex.status != "passed":
            if ex.message:
                lines.append(f"     {'':<{width}}{ex.message.splitlines()[0][:300]}")
            if hints.get(ex.id):
                lines.append(f"     {'':<{width}}hint: {hints[ex.id][0]}  (more: hint({ex.id!r}) in the notebook)")
    passed = sum(e.status == "passed" for e in result.exercises)
    lines.append(f"{passed}/{len(result.exercises)} exercises passed. Feedback with your charts: {page}")
    return "\n".join(lines)


def format_progress(course: Course, workspace: Path, width: int = 30) -> str:
    state = load_state(workspace)["lessons"]
    total = len(course.lessons)
    passed = [l for l in course.lessons if state.get(l.slug, {}).get("passed")]
    points = sum(state.get(l.slug, {}).get("score", 0) for l in course.lessons)
    max_points = sum(l.points for l in course.lessons)
    filled = int(width * len(passed) / total) if total else width
    lines = [f"Progress: [{'#' * filled}{'-' * (width - filled)}] {len(passed)}/{total} lessons passed "
             f"({points:g}/{max_points:g} points)"]
    next_up = None
    for lesson in course.lessons:
        entry = state.get(lesson.slug)
        notebook = workspace / lesson.slug / lesson.notebook
        if entry is None:
            mark, text = "  ", "not checked yet"
        else:
            mark = "ok" if entry["passed"] else ".."
            text = f"{entry['score']:g}/{entry['max_score']:g}  checked {entry['checked_at']}"
            if entry.get("sha256") and notebook.is_file() and _digest(notebook) != entry["sha256"]:
                text += "  (edited since: check again)"
        if next_up is None and not (entry and entry["passed"]):
            next_up = lesson
        lines.append(f"  [{mark}] {lesson.slug:<28} {text}")
    if next_up is not None:
        lines.append(f"Next: open {next_up.slug}/{next_up.notebook}, then `python -m grader check {next_up.slug}`")
    elif total:
        lines.append("Every lesson passed. Well done!")
    return "\n".join(lines)
