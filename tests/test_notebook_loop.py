"""The learner's loop in a real Jupyter kernel: Run All carries on, Validate and the grader still score 0,
check_all() gives exactly what `grader check` gives, reset_exercise() keeps a backup."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_lib.manifest import COURSE_ROOT, load_course
from grader.course.synthetic import solution_answers, with_answers

pytestmark = pytest.mark.slow

LESSON = load_course().lessons[0]


def _fresh(tmp_path: Path, lesson=LESSON) -> Path:
    target = tmp_path / "ws" / lesson.slug / lesson.notebook
    target.parent.mkdir(parents=True)
    shutil.copyfile(lesson.release_path(COURSE_ROOT), target)
    return target


def _run(path: Path, monkeypatch, extra_cells: list[str] = (), **env: str):
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in extra_cells]
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "0.01")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _text(cell) -> str:
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)


def test_run_all_on_a_fresh_lesson_reaches_the_last_cell_and_still_scores_zero(tmp_path, monkeypatch):
    path = _fresh(tmp_path)
    nb = _run(path, monkeypatch)  # raises CellExecutionError if any cell stopped Run All
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell ran"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert f"Lesson 1: {LESSON.title} · {LESSON.expected_time} · {len(LESSON.exercises)} exercises" in _text(code[0])
    for exercise in LESSON.exercises:
        check = next(c for c in code if c.metadata["nbgrader"]["grade_id"] == exercise.tests_cell_id)
        assert f"[{exercise.id}] Not done yet" in _text(check)
    # nbgrader's own kernels (Validate, autograde) carry NBGRADER_EXECUTION: there the stub stops the run
    with pytest.raises(CellExecutionError, match="cache-aside-read: not done yet"):
        _run(path, monkeypatch, NBGRADER_EXECUTION="validate")
    validate = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)], capture_output=True,
                              text=True, cwd=tmp_path, timeout=600)
    assert "VALIDATION FAILED ON" in validate.stdout, validate.stdout + validate.stderr
    assert "Traceback" not in validate.stdout  # the check's message, not 14 frames of course_lib
    assert f'Stuck? Run hint("{LESSON.exercises[0].id}")' in validate.stdout
    graded = subprocess.run([sys.executable, "-m", "grader", "check", LESSON.slug, "--notebook", str(path), "--json"],
                            capture_output=True, text=True, cwd=COURSE_ROOT, timeout=600)
    report = json.loads(graded.stdout.strip().splitlines()[-1])
    assert report["score"] == 0 and {e["status_text"] for e in report["exercises"]} == {"not done yet"}


@pytest.mark.parametrize("lesson", load_course().lessons[1:], ids=lambda lesson: lesson.slug)
def test_run_all_reaches_the_last_cell_of_every_fresh_lesson(lesson, tmp_path, monkeypatch):
    path = _fresh(tmp_path, lesson)
    nb = _run(path, monkeypatch)  # CellExecutionError if a cell stopped Run All (demonstrations included)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert sum("Not done yet" in _text(c) for c in code) == len(lesson.exercises)


def test_check_all_in_the_kernel_equals_grader_check(tmp_path, monkeypatch):
    path = _fresh(tmp_path)
    source = nbformat.read(LESSON.source_path(COURSE_ROOT), as_version=4)
    answers = solution_answers(source)
    first = LESSON.exercises[0].id
    answers = {first: answers[first]}  # exercise 1 right, the others still stubs
    nbformat.write(with_answers(nbformat.read(path, as_version=4), answers), path)
    nb = _run(path, monkeypatch, ["import json\nfrom course_lib import check_all\n_r = check_all()\n"
                                  "print('REPORT=' + json.dumps(dict(_r)))\n_r"],
              COURSE_WORKSPACE=str(tmp_path / "ws"))
    last = nb.cells[-1]
    report = json.loads(next(line for line in _text(last).splitlines() if line.startswith("REPORT="))[7:])
    html = next(o for o in last.outputs if o.output_type == "execute_result")["data"]["text/html"]
    assert f"{first}</code></td><td><span style='color:#1a7f37'>✓ passed" in html
    assert "why_cache-feedback.html" in html and report["recorded"] is True
    cli = subprocess.run([sys.executable, "-m", "grader", "check", LESSON.slug, "--workspace", str(tmp_path / "ws"),
                          "--json"], capture_output=True, text=True, cwd=COURSE_ROOT, timeout=600)
    expected = json.loads(cli.stdout.strip().splitlines()[-1])
    for key in ("score", "max_score", "status", "exercises", "passed", "feedback_page"):
        assert report[key] == expected[key], key
    assert report["score"] == LESSON.exercises[0].points


def test_reset_exercise_puts_back_the_stub_and_keeps_a_backup(tmp_path, monkeypatch):
    from course_lib.notebook import reset_exercise

    path = _fresh(tmp_path)
    exercises = [e.id for e in LESSON.exercises]
    mine = nbformat.read(path, as_version=4)
    for cell in mine.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in exercises:
            cell.source = f"# my answer to {gid}"
    mine.cells.append(nbformat.v4.new_markdown_cell("my own notes"))
    nbformat.write(mine, path)
    before = path.read_bytes()
    backup = reset_exercise(exercises[0], path)
    assert backup.read_bytes() == before
    after = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(path, as_version=4).cells}
    release = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
               for c in nbformat.read(LESSON.release_path(COURSE_ROOT), as_version=4).cells}
    assert after[exercises[0]] == release[exercises[0]]
    assert after[exercises[1]] == f"# my answer to {exercises[1]}"
    assert "my own notes" in path.read_text()
    with pytest.raises(KeyError, match="has no exercise 'typo'"):
        reset_exercise("typo", path)
