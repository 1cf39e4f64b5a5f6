"""The class report: one HTML page with PNG charts, per lesson.

- score distribution (learners who were graded) and how many submissions ended in each status;
- pass rate per exercise;
- each learner's score against the time their notebook took to grade, with the reference
  solution's point (graded like a submission) where available.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from matplotlib.figure import Figure

from course_lib.manifest import Lesson

from ..atomic import write_text_atomic
from ..classroom.grades import ClassGrades, class_grades, format_late, stale_feedback
from ..classroom.store import REFERENCE, load_lesson_records, load_record, result_path
from ..grading.result import SCORED, NotebookStatus

__all__ = ["write_report"]



def _save(fig: Figure, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=80, bbox_inches="tight")
    return path.name


def _lesson_charts(lesson: Lesson, records: dict, reference, out_dir: Path) -> tuple[list[str], dict]:
    results = {s: r["result"] for s, r in records.items()}
    graded = {s: r for s, r in results.items() if r.is_scored}
    statuses = Counter(r.status for r in results.values())
    names = []
    fig = Figure(figsize=(9, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    pct = [100 * r.score / r.max_score for r in graded.values() if r.max_score]
    ax1.hist(pct, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.01], color="#4C72B0", edgecolor="white")
    ax1.set(title=f"{lesson.slug}: score distribution", xlabel="score (%)", ylabel="learners")
    labels = [s for s in NotebookStatus if statuses.get(s)]
    ax2.bar(labels, [statuses[s] for s in labels], color=["#55A868" if s in SCORED else "#C44E52"
                                                          for s in labels])
    ax2.set(title="submissions by status", ylabel="submissions")
    names.append(_save(fig, out_dir / f"{lesson.slug}-scores.png"))

    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots()
    ids = [e.id for e in lesson.exercises]
    rates = []
    for ex_id in ids:
        outcomes = [r.exercise(ex_id) for r in results.values()]
        rates.append(100 * sum(bool(e and e.passed) for e in outcomes) / len(outcomes) if outcomes else 0)
    ax.bar(ids, rates, color="#55A868")
    ax.set(title=f"{lesson.slug}: pass rate per exercise", ylabel="passed (%)", ylim=(0, 100))
    ax.tick_params(axis="x", labelrotation=20)
    names.append(_save(fig, out_dir / f"{lesson.slug}-pass-rate.png"))

    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    for status, color in (("graded", "#4C72B0"), ("tampered", "#8172B3"), ("timed_out", "#C44E52"),
                          ("crashed", "#DD8452"), ("unreadable", "#8C8C8C")):
        points = [(r.seconds, r.score) for r in results.values() if r.status == status]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], label=status, color=color, alpha=0.8)
    if reference is not None:
        ax.scatter([reference.seconds], [reference.score], marker="*", s=250, color="#DAA520", label="reference solution")
    ax.set(title=f"{lesson.slug}: each learner's score against grading time", xlabel="seconds to run the notebook",
           ylabel=f"score (of {lesson.points:g})")
    ax.legend(fontsize=8)
    names.append(_save(fig, out_dir / f"{lesson.slug}-score-vs-time.png"))
    return names, {"learners": len(results), "graded": len(graded), "statuses": dict(statuses),
                   "mean_pct": sum(pct) / len(pct) if pct else 0.0, "rates": dict(zip(ids, rates))}


def _learner_table(book: ClassGrades) -> str:
    """One row per learner: name, per lesson its status, score (gradebook), lateness and time-outs; total."""
    esc = html.escape
    head = "".join(f"<th>{esc(l.slug)}</th>" for l in book.lessons)
    rows = []
    for student, learner in book.learners.items():
        cells = []
        for lesson in book.lessons:
            g = book.grades[(student, lesson.slug)]
            text = esc(g.status)
            if g.status != "not_submitted":
                text += f"<br>{'' if g.score is None else f'{g.score:g}'}/{lesson.points:g}"
            if g.submitted_at:
                text += f"<br><small>submitted {g.submitted_at:%Y-%m-%d %H:%M} UTC</small>"
            if g.seconds_late > 0:
                text += f"<br>late {esc(format_late(g.seconds_late))}, penalty {g.penalty:g}"
            if g.timed_out:
                text += f"<br>{g.timed_out} time-out(s)"
            if g.manual:
                text += "<br>manual grade"
            cells.append(f"<td class='{esc(g.status)}'>{text}</td>")
        total, blocking = book.total(student)
        total_text = f"{total:g}/{book.max_total:g}" if total is not None else "&mdash;"
        status = "complete" if not blocking else "incomplete: " + "; ".join(blocking)
        rows.append(f"<tr><td>{esc(student)}</td><td>{esc(learner.name)}</td>{''.join(cells)}"
                    f"<td>{total_text}</td><td>{esc(status)}</td></tr>")
    return ("<h2>Learners</h2><table class='learners'><tr><th>student</th><th>name</th>" + head
            + "<th>total</th><th>status</th></tr>" + "".join(rows) + "</table>")


def write_report(root: Path, lessons: list[Lesson], out_dir: Path) -> tuple[Path, list[str]]:
    """Write ``out_dir/index.html`` and its PNGs; return the page and the lessons it covers."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Class report</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem}"
             "img{max-width:100%}td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}"
             ".learners td{border-bottom:1px solid #ddd}.timed_out,.crashed,.unreadable,.not_graded{color:#b42318}"
             "</style></head><body>",
             "<h1>Class report</h1>"]
    book = class_grades(root, lessons)
    if book.learners:
        parts.append(f"<p>{len(book.learners)} learner(s); totals over the {len(lessons)} lesson(s) released "
                     f"({book.max_total:g} points). Scores are nbgrader's gradebook's (manual grades and late "
                     f"penalties included).</p>")
        parts.append(_learner_table(book))
    covered = []
    for lesson in lessons:
        records = load_lesson_records(root, lesson.slug)
        if not records:
            continue
        covered.append(lesson.slug)
        ref_record = load_record(result_path(root, lesson.slug, REFERENCE))
        reference = ref_record["result"] if ref_record else None
        images, stats = _lesson_charts(lesson, records, reference, out_dir)
        status_text = ", ".join(f"{n} {s}" for s, n in stats["statuses"].items())
        parts.append(f"<h2>{html.escape(lesson.slug)}: {html.escape(lesson.title)}</h2>"
                     f"<p>{stats['learners']} submissions ({html.escape(status_text)}); mean score of graded "
                     f"submissions {stats['mean_pct']:.0f}%.</p>")
        late = [g for (st, sl), g in book.grades.items() if sl == lesson.slug and g.seconds_late > 0]
        missing = [st for (st, sl), g in book.grades.items() if sl == lesson.slug and g.status == "not_submitted"]
        if late or missing:
            parts.append(f"<p>{len(late)} late submission(s); {len(missing)} learner(s) not_submitted"
                         + (f": {html.escape(', '.join(missing))}" if missing else "") + ".</p>")
        stale = stale_feedback(root, book, lesson.slug)
        if stale:
            parts.append(f"<p><b>Released feedback is stale</b> for {html.escape(', '.join(stale))}: their grades "
                         f"changed since; rerun <code>python -m grader feedback {html.escape(lesson.slug)} "
                         f"--release</code>.</p>")
        if reference is not None:
            parts.append(f"<p>Reference solution: {reference.score:g}/{reference.max_score:g} in {reference.seconds:.1f} s.</p>")
        parts.append("<table><tr><th>exercise</th><th>pass rate</th></tr>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.0f}%</td></tr>" for k, v in stats["rates"].items()) + "</table>")
        parts += [f"<p><img src='{name}' alt='{html.escape(name)}'></p>" for name in images]
    if not covered:
        parts.append("<p>No graded submissions yet: run <code>python -m grader autograde</code> first.</p>")
    parts.append("</body></html>")
    page = out_dir / "index.html"
    write_text_atomic(page, "\n".join(parts))
    return page, covered
