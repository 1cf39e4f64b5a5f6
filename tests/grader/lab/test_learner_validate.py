"""Validate in the learner's lab (grader.lab.validate): each failed check by its message, in a few lines."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from course_lib.checks import CheckFailed, NotDoneYet
from course_lib.manifest import COURSE_ROOT, load_course
from grader.lab.validate import cell_names, course_validator, short_failure

LESSON = load_course().lessons[0]


def _grade_cell(grade_id: str, *outputs: dict, points: float = 2) -> dict:
    return {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": grade_id, "grade": True, "points": points}},
            "outputs": list(outputs)}


def _error(exc: BaseException | None = None, **fields) -> dict:
    if exc is not None:
        fields = {"ename": type(exc).__name__, "evalue": str(exc), "traceback": exc._render_traceback_()}
    return {"output_type": "error", **fields}


def test_a_failed_check_is_its_own_rendered_message():
    failure = CheckFailed("[read] Called read(1). Expected 'Ada', but got None. " + "Look again. " * 80, "read")
    label, text = short_failure(_grade_cell("read-tests", _error(failure)), None)
    assert label == "read: its check cell (2 points)"
    lines = text.splitlines()
    assert lines[0] == "✗ read: check failed" and "Expected 'Ada', but got None" in lines[1]
    assert len(lines) <= 6 and lines[-1].strip().startswith('Stuck? Run hint("read")')
    assert "\x1b" not in text  # no terminal colours in the dialog


def test_the_stub_says_not_done_yet():
    stub = NotDoneYet("[read] Called read(1): it raised NotImplementedError, so it is still the stub.", "read")
    assert short_failure(_grade_cell("read-tests", _error(stub)), None)[1].startswith("✗ read: not done yet")


def test_an_unexpected_error_names_the_cell_and_line_it_came_from():
    error = _error(ename="KeyError", evalue="'x'", traceback=[
        "\x1b[31m---------------------------------------------------------------\x1b[0m",
        "Cell In[12], line 3\n      1 check = Check('read', globals())\n----> 3 read({}, 'x')",
        "Cell In[11], line 4, in read(cache, key)\n----> 4     return cache[key]", "KeyError: 'x'"])
    nb = {"cells": [
        {"cell_type": "code", "execution_count": 10, "metadata": {"nbgrader": {"grade_id": "setup"}}},
        {"cell_type": "code", "execution_count": 11, "metadata": {"nbgrader": {"grade_id": "read", "solution": True}}},
        {"cell_type": "code", "execution_count": 12, "metadata": {"nbgrader": {"grade_id": "read-tests", "grade": True}}},
        {"cell_type": "code", "execution_count": 13, "metadata": {}}]}
    names = cell_names(nb)
    assert names == {10: "the lesson's cell 'setup'", 11: "answer cell 'read'", 12: "the check cell of 'read'",
                     13: "the cell you added after answer cell 'read'"}
    label, text = short_failure(_grade_cell("read-tests", error), None, names)
    assert text.splitlines() == ["✗ read: the check stopped with KeyError: 'x', raised at answer cell 'read', line 4.",
                                 "  Run the check cell to see the whole error."]


def test_an_answer_cell_that_could_not_run_is_reported_first():
    answer = {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "read", "solution": True}},
              "outputs": [_error(ename="SyntaxError", evalue="invalid syntax (3250712.py, line 2)", traceback=[
                  "  Cell In[4], line 2\n    return cache[key\n                    ^", "SyntaxError: invalid syntax"])]}
    name_error = _error(CheckFailed("[read] `read` is not defined. Run your answer cell.", "read"))
    _, text = short_failure(_grade_cell("read-tests", name_error), answer, {4: "answer cell 'read'"})
    assert text.splitlines()[0] == "✗ read: your answer cell has a SyntaxError on line 2: invalid syntax"
    assert "not defined" not in text


@pytest.mark.slow
def test_validate_on_a_lesson_reports_each_failed_check_by_its_message(tmp_path, monkeypatch):
    """nbgrader's own Validator runs the notebook; only what its failed cells say is ours."""
    from traitlets.config import Config

    path = tmp_path / LESSON.slug / LESSON.notebook
    path.parent.mkdir()
    shutil.copyfile(LESSON.release_path(COURSE_ROOT), path)
    nb = nbformat.read(path, as_version=4)
    first = LESSON.exercises[0]
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == first.id)
    answer.source = "def get_user_cached(db, cache, user_id):\n    return cache.get(user_id\n"
    nbformat.write(nb, path)
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "0.01")
    result = course_validator(Config()).validate(str(path))
    failed = result["failed"]
    assert [f["source"] for f in failed] == [f"{e.id}: its check cell ({e.points:g} points)" for e in LESSON.exercises]
    assert failed[0]["raw_error"].startswith(f"✗ {first.id}: your answer cell has a SyntaxError on line 2"), failed[0]
    for exercise, cell in zip(LESSON.exercises[1:], failed[1:]):
        assert cell["raw_error"].startswith(f"✗ {exercise.id}: not done yet"), cell["raw_error"]
    for cell in failed:
        assert len(cell["raw_error"].splitlines()) <= 6 and "Traceback" not in cell["raw_error"]
        assert "Check(" not in cell["source"]  # not the check cell's source
