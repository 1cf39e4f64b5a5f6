"""The grade engine: assembling a submission into the source, and running it in a sandboxed process."""

from __future__ import annotations

import copy

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.grading.assemble import assemble
from grader.grading.grade import grade_notebook
from grader.sandbox.protocol import Limits
from tests.support import nbgrader_meta

FAST = Limits(cell_timeout=3, notebook_timeout=30)




def _source_notebook():
    return new_notebook(cells=[
        new_markdown_cell("# Doubling", metadata=nbgrader_meta(grade_id="intro")),
        new_code_cell("from course_lib import Check, charts, LatencyStats", metadata=nbgrader_meta(grade_id="setup")),
        new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                      metadata=nbgrader_meta(grade_id="double", solution=True, locked=False)),
        new_code_cell("check = Check('double', globals())\nf = check.defined('double', kind='function')\n"
                      "check.equal('double(2)', check.call('double(2)', f, 2), 4)\ncheck.passed()\n"
                      "### BEGIN HIDDEN TESTS\nassert double(-3) == -6, 'Called double(-3). Expected -6.'\n"
                      "### END HIDDEN TESTS", metadata=nbgrader_meta(grade_id="double-tests", grade=True, points=2)),
        new_code_cell("def halve(x):\n    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION",
                      metadata=nbgrader_meta(grade_id="halve", solution=True, locked=False)),
        new_code_cell("check = Check('halve', globals())\ncheck.equal('halve(4)', check.call('halve(4)', halve, 4), 2)",
                      metadata=nbgrader_meta(grade_id="halve-tests", grade=True, points=3)),
        new_code_cell("charts.show(charts.latency_percentiles({'double': LatencyStats([1000, 2000])}))",
                      metadata=nbgrader_meta(grade_id="chart")),
    ])


def _release(source):
    """What nbgrader's release looks like: stubs in answers, hidden tests removed."""
    nb = copy.deepcopy(source)
    nb.cells[2].source = "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    nb.cells[3].source = nb.cells[3].source.split("### BEGIN HIDDEN TESTS")[0]
    nb.cells[4].source = "def halve(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    return nb


@pytest.fixture
def course(tmp_path):
    source = _source_notebook()
    path = tmp_path / "source.ipynb"
    nbformat.write(source, path)

    def submit(edit=None, name="sub.ipynb"):
        nb = _release(source)
        nb.cells[2].source = "def double(x):\n    return x + x"
        nb.cells[4].source = "def halve(x):\n    return x / 2"
        if edit:
            edit(nb)
        out = tmp_path / name
        nbformat.write(nb, out)
        return grade_notebook(path, out, limits=FAST)

    return submit


def _statuses(result):
    return {e.id: (e.status, e.score) for e in result.exercises}


def test_a_correct_submission_gets_every_point_and_its_chart(course):
    result = course()
    assert result.status == "graded" and result.score == result.max_score == 5
    assert [f["after"] for f in result.figures] == ["chart"]


def test_hypothesis_in_the_judge_runs_with_the_grading_profile(tmp_path):
    """The judge imports hypothesis for the first cell that uses it, and then with the derandomized grading profile."""
    source = _source_notebook()
    source.cells[5].source += ("\nfrom hypothesis import settings\n"
                               "assert settings.default.derandomize and settings.default.database is None, "
                               "'hypothesis runs without the grading profile'")
    path, out = tmp_path / "source.ipynb", tmp_path / "sub.ipynb"
    nbformat.write(source, path)
    nb = _release(source)
    nb.cells[2].source = "def double(x):\n    return x + x"
    nb.cells[4].source = "def halve(x):\n    return x / 2"
    nbformat.write(nb, out)
    result = grade_notebook(path, out, limits=FAST)
    assert _statuses(result) == {"double": ("passed", 2.0), "halve": ("passed", 3.0)}, result.exercises


def test_hidden_tests_run_and_their_message_is_reported(course):
    result = course(lambda nb: setattr(nb.cells[2], "source", "def double(x):\n    return abs(x) * 2"))
    assert _statuses(result) == {"double": ("failed", 0.0), "halve": ("passed", 3.0)}
    assert "Called double(-3). Expected -6." in result.exercises[0].message


def test_test_cell_tracebacks_are_never_reported(course):
    result = course(lambda nb: setattr(nb.cells[2], "source", "def double(x):\n    return abs(x) * 2"))
    record = next(c["record"] for c in result.cells if c["grade_id"] == "double-tests")
    assert "traceback" not in record and "BEGIN HIDDEN" not in str(result.to_dict())


def test_the_stub_fails_with_a_stub_message(course):
    result = course(lambda nb: setattr(nb.cells[4], "source", "def halve(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"))
    assert _statuses(result)["halve"] == ("failed", 0.0)
    assert "still the stub" in result.exercises[1].message


def test_edited_test_cells_are_restored_and_flagged(course):
    def cheat(nb):
        nb.cells[2].source = "def double(x):\n    return 0"
        nb.cells[3].source = "pass  # tests removed"

    result = course(cheat)
    assert result.status == "tampered"
    assert _statuses(result)["double"] == ("failed", 0.0)
    assert any("double-tests" in n for n in result.notes)


def test_deleted_and_duplicated_cells(course):
    def edit(nb):
        del nb.cells[5]  # the halve tests: restored from the source
        nb.cells.insert(3, copy.deepcopy(nb.cells[2]))  # duplicated answer cell
        nb.cells[3].source = "def double(x):\n    return 0"

    result = course(edit)
    assert _statuses(result) == {"double": ("passed", 2.0), "halve": ("passed", 3.0)}
    assert any("more than once" in n for n in result.notes)


def test_a_deleted_answer_cell_is_graded_as_missing(course):
    result = course(lambda nb: nb.cells.pop(4))
    assert _statuses(result)["halve"] == ("missing", 0.0)
    assert _statuses(result)["double"] == ("passed", 2.0)


def test_cells_the_learner_added_run_where_they_were_added(course):
    def edit(nb):
        nb.cells[2].source = "def double(x):\n    return helper(x)"
        nb.cells.insert(2, new_code_cell("def helper(x):\n    return 2 * x"))

    assert _statuses(course(edit))["double"] == ("passed", 2.0)


def test_an_endless_loop_costs_one_cell_budget(course):
    result = course(lambda nb: setattr(nb.cells[4], "source", "def halve(x):\n    while True:\n        pass"))
    assert result.status == "graded"
    assert _statuses(result) == {"double": ("passed", 2.0), "halve": ("timed_out", 0.0)}


def test_a_crash_costs_only_its_own_exercise_and_says_why(course):
    """The answer that killed its process scores 0 and says how; the notebook is graded again without it."""
    result = course(lambda nb: setattr(nb.cells[4], "source", "import os\nos._exit(3)"))
    assert result.status == "graded"
    assert _statuses(result) == {"double": ("passed", 2.0), "halve": ("crashed", 0.0)}
    halve = next(e for e in result.exercises if e.id == "halve")
    assert "answer cell 'halve'" in halve.message and "exited with code 3" in halve.message, halve.message


def test_a_crash_in_the_learners_code_names_their_cell_and_line_not_the_judges(course):
    """Under the judge the learner's frames stay in their process: the place comes back with the error."""
    result = course(lambda nb: setattr(nb.cells[4], "source",
                                       "def halve(x):\n    table = {}\n    return table[x] / 2"))
    halve = next(e for e in result.exercises if e.id == "halve")
    assert halve.status == "failed", halve
    assert "Called halve(4): it raised KeyError: 4, in your code at answer cell 'halve', line 3 (in halve()): " \
           "return table[x] / 2" in halve.message, halve.message
    assert "rpc.py" not in halve.message and "judge" not in halve.message


def test_a_hidden_test_stopped_by_the_learners_code_names_their_line(course):
    result = course(lambda nb: setattr(nb.cells[2], "source", "def double(x):\n    if x < 0:\n"
                                       "        raise ValueError('negative')\n    return 2 * x"))
    double = next(e for e in result.exercises if e.id == "double")
    assert double.status == "failed" and double.message == (
        "ValueError: negative (raised by your code at answer cell 'double', line 3 (in double()): "
        "raise ValueError('negative'))"), double.message


def test_a_cell_the_learner_added_is_named_after_the_answer_it_follows(course):
    def edit(nb):
        nb.cells[4].source = "def halve(x):\n    return helper(x)"
        nb.cells.insert(5, new_code_cell("def helper(x):\n    return x.half()"))

    halve = next(e for e in course(edit).exercises if e.id == "halve")
    assert "at the cell you added after answer cell 'halve', line 2 (in helper()): return x.half()" in halve.message, \
        halve.message


def test_an_answer_cell_that_raises_when_it_runs_says_on_which_line(course):
    result = course(lambda nb: setattr(nb.cells[4], "source",
                                       "table = {}\nfactor = table['half']\ndef halve(x):\n    return x * factor"))
    halve = next(e for e in result.exercises if e.id == "halve")
    assert halve.status == "failed"
    assert halve.message.startswith("your answer cell 'halve' raised KeyError on line 2 when it ran: 'half'"), \
        halve.message


def test_output_floods_are_cut(course):
    result = course(lambda nb: setattr(nb.cells[2], "source", "print('x' * 5_000_000)\ndef double(x):\n    return 2 * x"))
    record = next(c["record"] for c in result.cells if c["grade_id"] == "double")
    text = record["outputs"][0]["text"]
    assert len(text) < 25_000 and "cut by the grader" in text
    assert result.score == 5


def test_an_unreadable_submission_is_recorded_not_raised(tmp_path, course):
    source = tmp_path / "source.ipynb"
    course()  # writes the source
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ not json")
    result = grade_notebook(source, bad, limits=FAST)
    assert result.status == "unreadable" and result.score == 0 and "not a valid notebook" in result.detail
    assert {e.status for e in result.exercises} == {"not_run"}


def test_the_learner_process_gets_a_clean_environment(course, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    result = course(lambda nb: setattr(nb.cells[2], "source",
                                       "import os\nassert 'GRADER_SECRET' not in os.environ\ndef double(x):\n    return 2 * x"))
    assert result.score == 5


def test_assemble_keeps_source_order_and_learner_answers():
    source = _source_notebook()
    submission = _release(source)
    submission.cells[2].source = "def double(x):\n    return 4"
    submission.cells.reverse()
    kinds = [(c.kind, c.grade_id) for c in assemble(source, submission).cells]
    assert kinds == [("course", "setup"), ("answer", "double"), ("tests", "double-tests"), ("answer", "halve"),
                     ("tests", "halve-tests"), ("course", "chart")]


@pytest.mark.slow
def test_a_course_folder_other_than_the_installed_one_grades_with_its_own_code(tmp_path):
    """`python -m grader` run in a second checkout imports that checkout's grader; the sandboxed learner and
    judge must import the same one (they crashed with "No module named 'grader'": the venv points elsewhere)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    other = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", str(root), str(other)], check=True)
    for name in ("grader", "course_lib"):  # the code as it is now, committed or not
        subprocess.run(["cp", "-r", str(root / name), str(other)], check=True)
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", "01", "solutions/01-why-cache/why_cache.ipynb"],
                          cwd=other, capture_output=True, text=True, timeout=600)
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert (result["status"], result["score"]) == ("graded", 15.0), proc.stdout[-2000:] + proc.stderr[-2000:]
