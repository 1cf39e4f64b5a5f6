"""Feedback pages: one self-contained HTML file per learner and lesson.

Shows the score, what failed first (the failure message, then the hints from
the manifest), every exercise's result and the learner's own charts (the PNGs
their notebook displayed while it was graded). It never shows test code:
only the messages the checks raise.
"""

from __future__ import annotations

import html
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from course_lib.manifest import Lesson

from ..atomic import write_text_atomic
from ..grading.result import GRADING_LATENCY_SCALE, NotebookResult

__all__ = ["feedback_html", "write_feedback", "write_lesson_feedback", "STATUS_TEXT", "EXERCISE_TEXT", "clean_message", "result_text"]

STATUS_TEXT = {
    "graded": "graded",
    "tampered": "graded (locked cells you changed were restored from the course first)",
    "timed_out": "stopped: the notebook ran past its time budget",
    "crashed": "stopped: the notebook's process crashed",
    "unreadable": "not graded: the file is not a readable notebook",
}
EXERCISE_TEXT = {"passed": "passed", "failed": "failed", "timed_out": "too slow", "not_run": "not run",
                 "missing": "answer cell missing", "crashed": "crashed the notebook"}

_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
.passed{color:#1a7f37}.failed,.timed_out,.missing,.not_run{color:#b42318}.msg{font-family:monospace;white-space:pre-wrap}
.banner{padding:.6rem 1rem;border-radius:.4rem;background:#fff4e5;border:1px solid #f0b45a}
.fix{border-left:4px solid #b42318;padding:.2rem 1rem;margin:1rem 0}img{max-width:100%;border:1px solid #eee}"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


_PREFIX = re.compile(r"^(?:CheckFailed|NotDoneYet|AssertionError): (?:\[[a-z0-9-]+\] )?")


def clean_message(message: str) -> str:
    """A check's message without the exception name and exercise id its row already shows."""
    return _PREFIX.sub("", message.splitlines()[0] if message else "")


def result_text(status: str, message: str) -> str:
    """'passed', 'failed', 'not done yet' (the stub), 'too slow', ..."""
    if status == "failed" and message.startswith("NotDoneYet:"):
        return "not done yet"
    return EXERCISE_TEXT.get(status, status)


def _section_titles(lesson: Lesson) -> dict[str, str]:
    """{code cell grade_id: the heading of the lesson section it is in}, from the released notebook.

    Sections are the notebook's own ``##`` headings ("1. Three requests without a cache",
    "Exercise 1 (`cache-aside-read`): ..."), so charts are filed under the demonstration or
    exercise they belong to; cells before the first such heading are the lesson's introduction.
    """
    from ..course.cells import read_notebook
    from ..course.layout import course_root

    try:
        nb = read_notebook(lesson.release_path(course_root()))
    except Exception:  # noqa: BLE001 - no release at hand: fall back to the cells' ids
        return {}
    titles, current = {}, "Introduction"
    for cell in nb.cells:
        text = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        if cell.cell_type == "markdown":
            heads = [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"^##+ ", line)]
            current = heads[-1].replace("`", "") if heads else current
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid:
            titles[gid] = current
    return titles


def _figures_by_section(lesson: Lesson, result: NotebookResult) -> dict[str, list[str]]:
    """Charts grouped by the lesson section of the cell that drew them, in notebook order."""
    titles = _section_titles(lesson)
    grouped: dict[str, list[str]] = {}
    for figure in result.figures:
        after = figure.get("after", "")
        title = titles.get(after) or after.replace("-", " ").capitalize() or "Introduction"
        grouped.setdefault(title, []).append(figure["png"])
    return grouped


def _gradebook_view(result: NotebookResult, grade) -> tuple[str, dict[str, float], str]:
    """(score text, {exercise: score shown}, late/penalty line) from the gradebook's grade, else the result."""
    if grade is None:
        return f"{result.score:g}", {e.id: e.score for e in result.exercises}, ""
    from ..classroom.grades import format_late

    shown = {e.id: (grade.scores.get(e.id) if grade.scores.get(e.id) is not None else e.score) for e in result.exercises}
    score = grade.score
    text = f"{score:g}" if score is not None else f"{sum(shown.values()):g} (not every exercise could be graded)"
    late = ""
    if grade.seconds_late > 0:
        late = (f"<p class='failed'><b>Submitted {format_late(grade.seconds_late)} after the due date</b>"
                f" ({grade.duedate:%Y-%m-%d %H:%M UTC}); late penalty: {grade.penalty:g} point(s).</p>")
    return text, shown, late


def feedback_html(lesson: Lesson, result: NotebookResult, *, student: str | None = None, grade=None) -> str:
    """The page; ``grade`` (a ``grader.classroom.grades.LessonGrade``) supplies the gradebook's scores, comments and penalty."""
    hints = {e.id: e.hints for e in lesson.exercises}
    summaries = {e.id: e.summary for e in lesson.exercises}
    figures = _figures_by_section(lesson, result)
    score_text, shown, late = _gradebook_view(result, grade)
    comments = grade.comments if grade is not None else {}
    who = f" for {_esc(student)}" if student else ""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(lesson.slug)} feedback</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>{_esc(lesson.title)}: feedback{who}</h1>",
           f"<p><b>Score: {score_text} / {result.max_score:g}</b> &middot; status: "
           f"{_esc(STATUS_TEXT.get(result.status, result.status))} &middot; graded "
           f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>"]
    if late:
        out.append(late)
    if result.status not in ("graded",) or result.notes:
        lines = [f"<p>{_esc(result.detail)}</p>" if result.detail else ""]
        lines += [f"<li>{_esc(n)}</li>" for n in result.notes]
        out.append(f"<div class='banner'>{''.join(lines[:1])}<ul>{''.join(lines[1:])}</ul></div>")
    failing = [e for e in result.exercises if e.status != "passed"]
    if failing:
        out.append("<h2>Fix first</h2>")
        for ex in failing:
            out.append(f"<div class='fix'><h3>{_esc(ex.id)} ({_esc(result_text(ex.status, ex.message))}, "
                       f"{shown.get(ex.id, ex.score):g} / {ex.points:g})</h3>")
            if ex.message:
                out.append(f"<p class='msg'>{_esc(clean_message(ex.message) or ex.message)}</p>")
            if hints.get(ex.id):
                out.append("<details><summary>Hints</summary><ol>"
                           + "".join(f"<li>{_esc(h)}</li>" for h in hints[ex.id]) + "</ol></details>")
            out.append("</div>")
    else:
        out.append("<p class='passed'><b>Every exercise passed.</b></p>")
    out.append("<h2>Exercises</h2><table><tr><th>exercise</th><th>result</th><th>points</th><th>what it is</th></tr>")
    for ex in result.exercises:
        note = f"<br><b>Grader's comment:</b> {_esc(comments[ex.id])}" if ex.id in comments else ""
        out.append(f"<tr><td>{_esc(ex.id)}</td><td class='{_esc(ex.status)}'>{_esc(result_text(ex.status, ex.message))}"
                   f"</td><td>{shown.get(ex.id, ex.score):g} / {ex.points:g}</td><td>{_esc(summaries.get(ex.id, ''))}{note}</td></tr>")
    out.append("</table>")
    if result.figures:
        out.append("<h2>Your charts</h2><p>Measured on your own code while it was graded, under the headings "
                   f"of the lesson's sections. Latencies are scaled down for grading (x{GRADING_LATENCY_SCALE:g}: a "
                   "100 ms query takes 1 ms), so the grading sandbox's own fixed costs, a millisecond or a few "
                   "(most on a run's first call), weigh more than in your notebook: compare bars of the same "
                   "chart, and read the ratios in your notebook's charts. A chart of times says under it the "
                   "scale they were measured at.</p>")
        for title, pngs in figures.items():
            out.append(f"<h3>{_esc(title)}</h3>")
            out += [f"<img alt='chart: {_esc(title)}' src='data:image/png;base64,{png}'>" for png in pngs]
    out.append(f"<p><small>Grading took {result.seconds:.1f} s. Test code is not shown; "
               f"each message says what was called and what came back.</small></p></body></html>")
    return "\n".join(out)


def write_feedback(root: Path, lesson: Lesson, student: str, result: NotebookResult, grade=None) -> Path:
    """Write ``feedback/<student>/<lesson>/<notebook>.html`` where nbgrader's release_feedback finds it.

    nbgrader also needs the submission's ``timestamp.txt`` and ``submission_secret.txt`` next to it
    (the learner's fetch_feedback finds the page by a hash of that secret); they are copied from
    ``submitted/``.
    """
    folder = root / "feedback" / student / lesson.slug
    page = folder / (Path(lesson.notebook).stem + ".html")
    write_text_atomic(page, feedback_html(lesson, result, student=student, grade=grade))
    page.chmod(0o644)  # nbgrader's release_feedback copies the mode: the learner's own account must read it
    submitted = root / "submitted" / student / lesson.slug
    for name in ("timestamp.txt", "submission_secret.txt"):
        if (submitted / name).is_file():
            shutil.copyfile(submitted / name, folder / name)
    return page


def write_lesson_feedback(root: Path, lesson: Lesson, students: list[str] | None = None) -> dict[str, str]:
    """Write the page of every graded learner of the lesson (only ``students`` when named), with the gradebook's
    manual grades, comments and penalty; return each learner's grade digest (what ``release_feedback`` records)."""
    from ..classroom.grades import class_grades
    from ..classroom.store import load_lesson_records
    from ..progressbar import ProgressBar

    records = {s: r for s, r in load_lesson_records(root, lesson.slug).items() if not students or s in students}
    book = class_grades(root, [lesson], students=sorted(records))
    bar = ProgressBar(len(records), f"feedback {lesson.slug}")
    digests = {}
    for student, record in records.items():
        grade = book.grades[(student, lesson.slug)]
        write_feedback(root, lesson, student, record["result"], grade=grade)
        digests[student] = grade.digest()
        bar.advance(student)
    bar.close()
    return digests
