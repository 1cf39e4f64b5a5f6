"""The learner's side: check my notebook locally, remember the result, show progress.

``check`` grades a copy-free read of the learner's notebook with the hidden
tests (through the same sandboxed ``grade_notebook`` as the instructor's
autograder), writes a feedback page with the learner's charts and records the
result in ``<workspace>/.grader/progress.json``; ``progress`` reads that file.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from course_lib.manifest import Course, Lesson

from ..atomic import write_text_atomic
from ..grading.result import NotebookResult
from .feedback import EXERCISE_TEXT, STATUS_TEXT, clean_message, feedback_html, result_text

__all__ = ["STATE_DIR", "state_path", "load_state", "record_check", "feedback_path", "format_check",
           "format_progress", "default_lesson", "matching_hint", "answers_digest", "check_report", "is_workspace_copy",
           "lesson_from_cwd"]

STATE_DIR = ".grader"


def state_path(workspace: Path) -> Path:
    return workspace / STATE_DIR / "progress.json"


def feedback_path(notebook: Path) -> Path:
    """The feedback page of a check: beside the notebook, so the file browser shows it."""
    return notebook.with_name(f"{notebook.stem}-feedback.html")


def is_workspace_copy(workspace: Path, lesson: Lesson, notebook: Path) -> bool:
    """Whether ``notebook`` is the learner's workspace copy of ``lesson`` (the one progress is about)."""
    try:
        return notebook.resolve() == (workspace / lesson.slug / lesson.notebook).resolve()
    except OSError:
        return False


def lesson_from_cwd(course: Course, workspace: Path, cwd: Path) -> Lesson | None:
    """The lesson whose workspace folder ``cwd`` is (or is inside), if any."""
    try:
        parts = cwd.resolve().relative_to(workspace.resolve()).parts
    except ValueError:
        return None
    return next((l for l in course.lessons if parts and parts[0] == l.slug), None)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(?:\(\))?")
_COMMON = frozenset("""the a an and or of to in is it its be by for with on at as that this from not when your you
one all each every then than but if else so are was were has have had what which while can cannot must should
called expected got returned return raised call calls first same instead only just does did new use used""".split())


def _words(text: str) -> set[str]:
    return {w.lower().rstrip(".") for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in _COMMON}


def matching_hint(hints: tuple[str, ...] | list[str], message: str) -> tuple[int, str]:
    """(level, hint) of the hint that matches a failure message best; (0, '') when there are no hints.

    A stub, a missing name or a crash gets the first nudge; otherwise the hint that shares the most
    words with the message (names, values, terms such as "None" or "TTL") wins, the earlier on a tie.
    """
    if not hints:
        return 0, ""
    lowered = message.lower()
    if not message or "notimplementederror" in lowered or "is not defined" in lowered:
        return 1, hints[0]
    said = _words(message)
    scores = [len(said & _words(h)) for h in hints]
    best = max(range(len(hints)), key=lambda i: (scores[i], -i))
    return (best + 1, hints[best]) if scores[best] else (1, hints[0])


def answers_digest(notebook: Path) -> str:
    """A hash of the code of the notebook's answer cells (outputs, counts and other cells do not count)."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        digest = hashlib.sha256()
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution"):
                source = cell.get("source", "")
                digest.update(f"{meta.get('grade_id', '')}\0{''.join(source) if isinstance(source, list) else source}"
                              f"\0".encode())
        return digest.hexdigest()
    except (OSError, ValueError, AttributeError, TypeError):
        return ""


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
    """Write the feedback page beside the notebook; for the workspace copy, store the result too.

    Only the learner's workspace copy of the lesson changes the saved progress: a check of another
    file (``--notebook``) writes its own feedback page and leaves the lesson's status alone.
    """
    page = feedback_path(notebook)
    write_text_atomic(page, feedback_html(lesson, result))
    if not is_workspace_copy(workspace, lesson, notebook):
        return page
    state = load_state(workspace)
    state["lessons"][lesson.slug] = {
        "score": result.score, "max_score": result.max_score, "status": result.status,
        "passed": result.passed_all,
        "exercises": {e.id: e.status for e in result.exercises},
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notebook": str(notebook), "sha256": _digest(notebook), "answers": answers_digest(notebook),
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
    if not result.is_scored and result.detail:
        lines.append(f"  {result.detail}")
    lines += [f"  note: {n}" for n in result.notes]
    lines.append(f"  {'exercise':<{width}}  {'result':<12} points")
    for ex in result.exercises:
        mark = "ok " if ex.status == "passed" else "XX "
        lines.append(f"{mark}{ex.id:<{width}}  {result_text(ex.status, ex.message):<12} {ex.score:g}/{ex.points:g}")
        if ex.status != "passed":
            if ex.message:
                lines.append(f"     {'':<{width}}{clean_message(ex.message)[:300]}")
            level, text = matching_hint(hints.get(ex.id, ()), ex.message)
            if text:
                lines.append(f"     {'':<{width}}hint {level}: {text}  (more: hint({ex.id!r}) in the notebook)")
    passed = sum(e.status == "passed" for e in result.exercises)
    lines.append(f"{passed}/{len(result.exercises)} exercises passed. Feedback with your charts: {page}")
    return "\n".join(lines)


def _edited_since(entry: dict[str, Any], notebook: Path) -> bool:
    """Whether the answer cells' code changed since the check (re-running cells changes nothing)."""
    if not notebook.is_file():
        return False
    if entry.get("answers"):
        return answers_digest(notebook) != entry["answers"]
    return bool(entry.get("sha256")) and _digest(notebook) != entry["sha256"]  # a check from before answer digests


def check_report(lesson: Lesson, result: NotebookResult, notebook: Path, page: Path, recorded: bool) -> dict[str, Any]:
    """What ``check --json`` prints and ``check_all()`` shows: the same result as the text report."""
    hints = {e.id: e.hints for e in lesson.exercises}
    exercises = []
    for ex in result.exercises:
        level, text = matching_hint(hints.get(ex.id, ()), ex.message) if ex.status != "passed" else (0, "")
        exercises.append({"id": ex.id, "status": ex.status, "status_text": result_text(ex.status, ex.message),
                          "score": ex.score, "points": ex.points, "message": clean_message(ex.message)[:600],
                          "hint": text, "hint_level": level})
    return {"lesson": lesson.slug, "notebook": str(notebook), "status": result.status,
            "status_text": STATUS_TEXT.get(result.status, result.status), "score": result.score,
            "max_score": result.max_score, "notes": list(result.notes), "detail": result.detail,
            "passed": result.passed_all,
            "exercises": exercises, "feedback_page": str(page), "recorded": recorded,
            "text": format_check(lesson, result, page)}


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
            mark, text = "  ", "not checked yet" + (f" ({lesson.expected_time})" if lesson.expected_time else "")
        else:
            mark = "ok" if entry["passed"] else ".."
            text = f"{entry['score']:g}/{entry['max_score']:g}  checked {entry['checked_at']}"
            if _edited_since(entry, notebook):
                text += "  (answers edited since: check again)"
        if next_up is None and not (entry and entry["passed"]):
            next_up = lesson
        lines.append(f"  [{mark}] {lesson.slug:<28} {text}")
    if next_up is not None:
        todo = [e.id for e in next_up.exercises
                if (state.get(next_up.slug) or {}).get("exercises", {}).get(e.id) != "passed"]
        lines.append(f"Next: open {next_up.slug}/{next_up.notebook}"
                     + (f" ({next_up.expected_time})" if next_up.expected_time and next_up.slug not in state else "")
                     + (f", exercise {todo[0]}" if todo else "")
                     + f"; grade it with check_all() in the notebook or `course check {next_up.slug}`")
    elif total:
        lines.append("Every lesson passed. Well done!")
    return "\n".join(lines)
