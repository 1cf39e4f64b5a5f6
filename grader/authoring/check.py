"""The course's own consistency check (like rustlings' `dev check`).

Finds what would confuse a learner or break grading: a lesson in the manifest
without its notebooks, exercises whose ids or points disagree between the
manifest and the notebook, cells without nbgrader ids, committed outputs,
solutions leaking into the release, or a release that is not what
``solutions/`` generates; and the course standard: every lesson shows at least
one chart (hints per exercise are enforced by the manifest loader itself), an exercise declared
``thread_safe`` grades its class's locking and stresses all its public methods (``thread_safety``),
and no text that ``new-lesson`` left for the author to write (``TODO(scaffold)``) remains.
"""

from __future__ import annotations

import filecmp
import tempfile
from pathlib import Path

from course_lib.manifest import Lesson

from ..course.cells import NotebookUnreadable, cell_text, exercise_id_of, grade_id, is_answer, is_tests, nbgrader_meta, read_notebook
from ..course.nbgrader import generate
from .thread_safety import thread_safety_problems

__all__ = ["lesson_problems", "placeholder_problems", "release_matches_source", "grading_problems"]

_LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
# a code cell draws a chart when it calls course_lib.charts or builds a matplotlib figure
_CHART_MARKERS = ("charts.", "from course_lib.charts", "Figure(", "plt.", "pyplot")


def _notebook_problems(path: Path) -> list[str]:
    try:
        nb = read_notebook(path)
    except NotebookUnreadable as exc:
        return [str(exc)]
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{path}: cell {i} was committed with outputs or an execution count")
        if not grade_id(cell) and cell.cell_type in ("code", "markdown"):
            problems.append(f"{path}: cell {i} has no nbgrader grade_id (lock it in the Create Assignment sidebar)")
        elif cell.cell_type == "code" and not (nbgrader_meta(cell).get("locked") or is_answer(cell)):
            problems.append(f"{path}: code cell {grade_id(cell)!r} is neither locked nor an answer cell")
    return problems


def lesson_problems(root: Path, lesson: Lesson) -> list[str]:
    """Everything wrong with one lesson's manifest entry, source and release (fast: nothing executes)."""
    source, release = lesson.source_path(root), lesson.release_path(root)
    problems = [f"{p}: missing" for p in (source, release) if not p.is_file()]
    if problems:
        return problems
    problems += _notebook_problems(source) + _notebook_problems(release)
    src = read_notebook(source)
    answers = [grade_id(c) for c in src.cells if is_answer(c)]
    tests = {grade_id(c): nbgrader_meta(c).get("points") for c in src.cells if is_tests(c)}
    for exercise in lesson.exercises:
        if exercise.answer_cell_id not in answers:
            problems.append(f"{source}: no answer cell with grade_id {exercise.answer_cell_id!r} (from the manifest)")
        if exercise.tests_cell_id not in tests:
            problems.append(f"{source}: no test cell with grade_id {exercise.tests_cell_id!r} (from the manifest)")
        elif float(tests[exercise.tests_cell_id] or 0) != exercise.points:
            problems.append(f"{source}: {exercise.tests_cell_id!r} has {tests[exercise.tests_cell_id]} points, "
                            f"the manifest says {exercise.points:g}")
    known = {e.answer_cell_id for e in lesson.exercises}
    for gid in answers:
        if gid not in known:
            problems.append(f"{source}: answer cell {gid!r} is not in the manifest")
    for gid in tests:
        if exercise_id_of(gid) not in known:
            problems.append(f"{source}: test cell {gid!r} does not belong to an exercise of the manifest")
    problems += [p for e in lesson.exercises if e.thread_safe for p in thread_safety_problems(source, src, e)]
    text = release.read_text(encoding="utf-8")
    problems += [f"{release}: the learner release contains '{m}'" for m in _LEAK_MARKERS if m in text]
    def text_of(cell) -> str:
        return "".join(cell.source) if isinstance(cell.source, list) else cell.source

    if not any(c.cell_type == "code" and any(m in text_of(c) for m in _CHART_MARKERS) for c in src.cells):
        problems.append(f"{source}: no chart (the course standard: each lesson plots what it measures, e.g. "
                        f"with course_lib.charts.latency_percentiles or a matplotlib Figure)")
    return problems


def placeholder_problems(root: Path, lesson: Lesson) -> list[str]:
    """Text that ``new-lesson`` wrote for the author to replace (``TODO(scaffold)``), where it is still left."""
    from .scaffold import PLACEHOLDER, test_file_path

    problems = []
    source = lesson.source_path(root)
    try:
        nb_cells = read_notebook(source).cells if source.is_file() else []
    except NotebookUnreadable:
        nb_cells = []  # lesson_problems says why
    cells = [grade_id(c) or f"cell {i}" for i, c in enumerate(nb_cells)
             if PLACEHOLDER in cell_text(c)]
    if cells:
        problems.append(f"{source}: {PLACEHOLDER} left in cell(s) {', '.join(cells)}")
    fields = [f"lesson {lesson.slug} title"] if PLACEHOLDER in lesson.title else []
    fields += [f"exercise {e.id} {what}" for e in lesson.exercises
               for what, text in (("summary", e.summary), ("hints", " ".join(e.hints))) if PLACEHOLDER in text]
    if fields:
        problems.append(f"course_lib/course.toml: {PLACEHOLDER} left in {', '.join(fields)}")
    tests = test_file_path(root, lesson.slug)
    if tests.is_file() and PLACEHOLDER in tests.read_text(encoding="utf-8"):
        problems.append(f"{tests}: {PLACEHOLDER} left (the buggy implementations and other designs to write)")
    return problems


def grading_problems(root: Path, lesson: Lesson) -> tuple[list[str], str]:
    """Grade the solution (must score full marks) and the untouched release (must score 0); return the
    problems and a line with both scores."""
    from ..classroom.autograde import ReferenceFails, check_reference_solution, grade_reference
    from ..grading.grade import grade_notebook

    problems = []
    try:
        check_reference_solution(root, lesson)
    except ReferenceFails as exc:
        problems.append(str(exc).split("\nfix the test")[0])
    solution = grade_reference(root, lesson)  # stored by the check above: not graded twice
    stub = grade_notebook(lesson.source_path(root), lesson.release_path(root))
    passing = [e.id for e in stub.exercises if e.score > 0]
    if passing:
        problems.append(f"{lesson.release_path(root)}: the unanswered stub already scores {stub.score:g} "
                        f"({', '.join(passing)}): those tests do not test the answer")
    return problems, (f"graded: the solution {solution.score:g}/{solution.max_score:g} [{solution.status}], "
                      f"the stub {stub.score:g}/{stub.max_score:g} [{stub.status}]")


def release_matches_source(root: Path, lesson: Lesson) -> bool:
    """True when notebooks/<lesson> is byte-for-byte what nbgrader generates from solutions/<lesson>."""
    with tempfile.TemporaryDirectory(prefix="regen-") as tmp:
        fresh = generate(root, lesson, Path(tmp))
        return lesson.release_path(root).is_file() and filecmp.cmp(fresh, lesson.release_path(root), shallow=False)
