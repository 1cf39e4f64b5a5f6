"""Grade one submission against its source notebook.

>>> # grade_notebook("solutions/04-simple-cache/simple_cache.ipynb", "workspace/04-simple-cache/simple_cache.ipynb")

The learner's answers are assembled into the instructor's notebook (see
``grader.grading.assemble``), run in a sandboxed process (``grader.sandbox.parent``) and
each exercise scores its points when its test cell ran without an error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..course.cells import STUB, NotebookUnreadable, cell_text, exercise_id_of, grade_id, is_answer, is_tests, nbgrader_meta, read_notebook
from ..sandbox.isolation import PACKAGE_ROOT
from ..sandbox.parent import RunOutcome, run_cells
from ..sandbox.protocol import CellStatus, Limits, RunStatus
from .assemble import GradedCell, assemble, bound_names
from .result import GRADING_LATENCY_SCALE, ExerciseResult, ExerciseStatus, NotebookResult, NotebookStatus
from .tamper import changes

__all__ = ["grade_notebook", "exercises_of", "grading_env"]



def grading_env(latency_scale: float = GRADING_LATENCY_SCALE, redis_url: str | None = None) -> dict[str, str]:
    """The whole environment of a learner's process: nothing inherited but what is listed here."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COURSE_LATENCY_SCALE": repr(latency_scale),
        # the grader and course_lib this process imported (mounted read-only in every sandbox), not the
        # ones the venv was installed from: a course folder elsewhere grades with its own code
        "PYTHONPATH": str(PACKAGE_ROOT),
    }
    mpl_cache = os.environ.get("MPLCONFIGDIR")
    if mpl_cache:
        env["MPLCONFIGDIR"] = mpl_cache
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def tests_run_in(source_nb: Any) -> str:
    """Where a notebook's test cells run: "judge" (a trusted process, the default) or "kernel".

    A lesson whose tests are not yet written for the judge says so in its notebook
    metadata: ``{"grader": {"tests": "kernel"}}``.
    """
    where = source_nb.metadata.get("grader", {}).get("tests", "judge")
    if where not in ("judge", "kernel"):
        raise ValueError(f"notebook metadata grader.tests must be 'judge' or 'kernel', got {where!r}")
    return where


def _learner_names(source_nb: Any, cells: list[Any]) -> frozenset[str]:
    """Names the judge takes from the learner's namespace even when the course defines them too.

    The names the instructor's answer cells bind (the exercise's API), and those the learner's
    answers bind, except names course and test cells bind: a learner rebinding ``Check``,
    ``SlowDatabase`` or a test's helper changes their own kernel, never what the tests use.
    """
    course = frozenset().union(*(bound_names(c.source) for c in cells if c.kind in ("course", "tests")))
    exercise = frozenset().union(*(bound_names(cell_text(c)) for c in source_nb.cells if is_answer(c)))
    answers = frozenset().union(*(bound_names(c.source) for c in cells if c.kind == "answer"))
    return exercise | (answers - course)


def exercises_of(source_nb: Any) -> list[tuple[str, float]]:
    """Each exercise of a source notebook and its points, in order."""
    return [(exercise_id_of(grade_id(c)), float(nbgrader_meta(c).get("points") or 0)) for c in source_nb.cells if is_tests(c)]


MAX_RETRIES = 3  # runs again without an answer cell that crashed its process or broke its channel


def _answer_problem(ex_id: str, record: dict[str, Any] | None, limits: Limits) -> tuple[str, str] | None:
    """(status, message) when the exercise's own answer cell did not run cleanly: what the learner must fix.

    ``{check}`` in the message stands for what the exercise's check said.
    """
    if not record or record.get("status") == CellStatus.OK:
        return None
    if record.get("status") == CellStatus.TIMEOUT:
        return ExerciseStatus.TIMED_OUT, (f"your answer cell {ex_id!r} ran {limits.cell_timeout:g} s and was stopped (an "
                             "endless loop, a deadlock, or far too slow), so its check could not use it")
    ename, evalue = record.get("ename", "Error"), record.get("evalue", "")
    if ename in ("SyntaxError", "IndentationError", "TabError"):
        where = f" on line {record['lineno']}" if record.get("lineno") else ""
        return ExerciseStatus.FAILED, (f"your answer cell {ex_id!r} has a {ename}{where}: {evalue}. Python could not read the "
                          "cell, so nothing in it was defined; fix that line and run the cell again")
    if ename == "NotImplementedError":
        return None  # the stub itself: the check says so in its own words
    where = f" on line {record['lineno']}" if record.get("lineno") else ""
    return ExerciseStatus.FAILED, (f"your answer cell {ex_id!r} raised {ename}{where} when it ran: {evalue}; the check then "
                      "said: {check}")


def _test_failure(record: dict[str, Any]) -> str:
    """What a failed test cell said, with the learner's line when the error came from their code.

    >>> _test_failure({"ename": "KeyError", "evalue": "'x'", "where": "answer cell 'read', line 3: return c[x]"})
    "KeyError: 'x' (raised by your code at answer cell 'read', line 3: return c[x])"
    """
    message = f"{record.get('ename', 'Error')}: {record.get('evalue', '')}"
    where = record.get("where")
    return message + (f" (raised by your code at {where})" if isinstance(where, str) and where else "")


def _culprit(assembly_cells: list[GradedCell], outcome: RunOutcome) -> str | None:
    """The exercise whose answer (or the cells the learner added after it) crashed the run or broke its channel."""
    # The earliest sign: a test cell that lost the learner's process, or the cell the run stopped at.
    stopped = next((i for i, r in enumerate(outcome.records)
                    if r.get("channel_closed") or r.get("ename") == "NotebookStopped"), None)
    crashed = outcome.stopped_at if outcome.status == RunStatus.CRASHED else None
    signs = [i for i in (stopped, crashed) if i is not None]
    if not signs:
        return None
    broke = min(signs)
    for index in range(min(broke, len(assembly_cells) - 1), -1, -1):
        cell = assembly_cells[index]
        if cell.kind == "answer" and cell.grade_id:
            return cell.grade_id
        if cell.kind in ("tests", "course") and index != broke:
            return None  # the learner's code did not run between the last good cell and the failure
    return None


def _without(assembly_cells: list[GradedCell], ex_id: str) -> list[GradedCell]:
    """The program with the answer to ``ex_id`` (and the cells the learner added after it) as the stub."""
    cells, skipping = [], False
    for cell in assembly_cells:
        if cell.kind == "answer" and cell.grade_id == ex_id:
            cells.append(GradedCell("answer", STUB, cell.grade_id))
            skipping = True
            continue
        if skipping and cell.kind == "learner":
            continue
        skipping = False
        cells.append(cell)
    return cells


def _run(assembly_cells: list[GradedCell], limits: Limits, env: dict[str, str], judged: bool,
         learner_names: frozenset[str]) -> RunOutcome:
    cells = [{"source": c.source, "kind": c.kind, "timeout": limits.cell_timeout, "grade_id": c.grade_id}
             for c in assembly_cells]
    return run_cells(cells, limits=limits, env=env, judge=judged, learner_names=learner_names)


def grade_notebook(
    source: str | Path,
    submission: str | Path,
    *,
    limits: Limits = Limits(),
    latency_scale: float = GRADING_LATENCY_SCALE,
    redis_url: str | None = None,
) -> NotebookResult:
    """Grade ``submission`` with the tests of ``source``; never raises for a bad submission."""
    source_nb = read_notebook(source)  # the instructor's file: errors here are the instructor's to fix
    try:
        submission_nb = read_notebook(submission)
    except NotebookUnreadable as exc:
        return NotebookResult.all_not_run(NotebookStatus.UNREADABLE, exercises_of(source_nb), str(exc))
    assembly = assemble(source_nb, submission_nb)
    judged = tests_run_in(source_nb) == "judge"
    learner_names = _learner_names(source_nb, assembly.cells)
    env = grading_env(latency_scale, redis_url)
    program = assembly.cells
    outcome = _run(program, limits, env, judged, learner_names)
    lost: dict[str, str] = {}  # exercises whose answer broke the run: graded 0, the rest graded without them
    seconds = outcome.seconds
    while len(lost) < MAX_RETRIES and (culprit := _culprit(program, outcome)) and culprit not in lost:
        why = outcome.detail or "it broke the grader's connection to your notebook's process"
        lost[culprit] = (f"your answer cell {culprit!r} stopped the notebook's process or cut the grader off from "
                         f"it ({why}); it scores 0, and the other exercises were graded without it")
        program = _without(program, culprit)
        outcome = _run(program, limits, env, judged, learner_names)
        seconds += outcome.seconds
    exercises, figures, executed = [], [], []
    stop_message = outcome.detail or "the notebook stopped before this cell ran"
    answers: dict[str, dict[str, Any] | None] = {}
    for i, cell in enumerate(program):
        record = outcome.records[i] if i < len(outcome.records) else None
        executed.append({"kind": cell.kind, "grade_id": cell.grade_id, "record": record})
        if record:
            for out in record.get("outputs", []):
                png = out.get("data", {}).get("image/png") if out.get("output_type") == "display_data" else None
                if png:
                    figures.append({"after": cell.grade_id or "", "png": png})
        if cell.kind == "answer" and cell.grade_id:
            answers[cell.grade_id] = record
        if cell.kind != "tests":
            continue
        ex_id = exercise_id_of(cell.grade_id)
        problem = _answer_problem(ex_id, answers.get(ex_id), limits)
        if ex_id in assembly.missing_answers:
            exercises.append(ExerciseResult(ex_id, cell.points, 0.0, ExerciseStatus.MISSING,
                                            f"the answer cell {ex_id!r} was missing from the notebook"))
        elif ex_id in lost:
            exercises.append(ExerciseResult(ex_id, cell.points, 0.0, ExerciseStatus.CRASHED, lost[ex_id]))
        elif record is None:
            exercises.append(ExerciseResult(ex_id, cell.points, 0.0, ExerciseStatus.NOT_RUN, stop_message))
        elif record["status"] == CellStatus.OK:
            exercises.append(ExerciseResult(ex_id, cell.points, cell.points, ExerciseStatus.PASSED))
        elif problem is not None:
            check = _test_failure(record)
            exercises.append(ExerciseResult(ex_id, cell.points, 0.0, problem[0],
                                            problem[1].replace("{check}", check)))
        else:
            status = ExerciseStatus.TIMED_OUT if record["status"] == CellStatus.TIMEOUT else ExerciseStatus.FAILED
            exercises.append(ExerciseResult(ex_id, cell.points, 0.0, status, _test_failure(record)))
    tampered = changes(source_nb, submission_nb)
    notes = list(assembly.notes)
    if tampered:
        notes.append("cells the course owns were changed; the course's version was graded: " + "; ".join(tampered))
    restored = sorted({name for r in outcome.records for name in r.get("restored", [])})
    if restored:  # the learner's code replaced what the tests rely on; the runner put it back first
        tampered = tampered or ["test helpers"]
        notes.append("the notebook replaced names or functions the tests rely on; they were restored before "
                     "the tests ran: " + ", ".join(restored[:10]))
    notes += [lost[ex] for ex in lost]
    status = (NotebookStatus.TAMPERED if tampered else NotebookStatus.GRADED) if outcome.status == RunStatus.COMPLETED \
        else NotebookStatus(outcome.status)
    return NotebookResult(status, exercises, notes, outcome.detail, round(seconds, 3), figures, executed,
                          outcome.processes)
