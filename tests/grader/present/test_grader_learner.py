"""The learner's commands (`check`, `progress`) and the grader's course-folder plumbing, on the fixture course."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.cli import main
from grader.course.synthetic import solution_answers, with_answers

FIXTURE = Path(__file__).parents[3] / "examples" / "tiny-course"
LESSON, NOTEBOOK = "01-fixture-basics", "basics.ipynb"


@pytest.fixture
def course(tmp_path, monkeypatch):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("gradebook.db", "submitted", "grader-results"))
    monkeypatch.setenv("COURSE_ROOT", str(root))
    return root


def _write(root: Path, path: Path, answers: dict[str, str] | None) -> None:
    release = nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4)
    filled = solution_answers(nbformat.read(root / "solutions" / LESSON / NOTEBOOK, as_version=4))
    filled.update(answers or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(with_answers(release, filled), path)


def test_manifest_follows_the_course_root(course):
    from course_lib import load_course
    from grader.course.layout import lessons

    assert [l.slug for l in lessons()] == ["01-fixture-basics", "02-fixture-more"]
    assert "01-fixture-basics" not in [l.slug for l in load_course().lessons]  # the notebooks' manifest is untouched


@pytest.mark.slow
def test_check_then_progress(course, tmp_path, capsys):
    workspace = tmp_path / "ws"
    mine = workspace / LESSON / NOTEBOOK
    _write(course, mine, {"add-one": "def add_one(x):\n    return x"})
    before = mine.read_bytes()
    assert main(["check", LESSON, "--workspace", str(workspace)]) == 1
    out = capsys.readouterr().out
    assert "3/5 points" in out and "add-one" in out and "add_one(1) should be 2" in out
    assert "hint 1: Return the argument plus one." in out
    assert mine.read_bytes() == before  # my file is only read
    page = mine.with_name("basics-feedback.html")  # beside the notebook: the file browser shows it
    assert str(page) in out and "data:image/png;base64," in page.read_text()
    state = json.loads((workspace / ".grader" / "progress.json").read_text())
    assert state["lessons"][LESSON]["passed"] is False

    _write(course, mine, {})
    assert main(["check", "--workspace", str(workspace)]) == 0  # default: the notebook edited last
    assert "5/5 points" in capsys.readouterr().out
    assert main(["progress", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert "1/2 lessons passed (5/6 points)" in out
    assert f"[ok] {LESSON}" in out and "not checked yet" in out
    assert "Next: open 02-fixture-more/more.ipynb" in out


@pytest.mark.slow
def test_check_json_other_notebooks_and_edits(course, tmp_path, capsys, monkeypatch):
    workspace = tmp_path / "ws"
    mine = workspace / LESSON / NOTEBOOK
    _write(course, mine, {})
    assert main(["check", LESSON, "--workspace", str(workspace)]) == 0
    capsys.readouterr()
    state_file = workspace / ".grader" / "progress.json"
    saved = state_file.read_bytes()
    # --notebook: graded and reported, but the lesson's saved status is not touched
    other = tmp_path / "elsewhere" / NOTEBOOK
    _write(course, other, {"add-one": "def add_one(x):\n    return x"})
    assert main(["check", LESSON, "--workspace", str(workspace), "--notebook", str(other), "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["recorded"] is False and report["score"] == 3 and report["max_score"] == 5
    failed = {e["id"]: e for e in report["exercises"]}["add-one"]
    assert failed["status"] == "failed" and "add_one(1) should be 2" in failed["message"]
    assert failed["hint_level"] == 1 and failed["hint"] == "Return the argument plus one."
    assert Path(report["feedback_page"]) == other.with_name("basics-feedback.html")
    assert state_file.read_bytes() == saved
    # the default lesson is the lesson folder the terminal is in
    monkeypatch.chdir(workspace / LESSON)
    monkeypatch.setenv("COURSE_WORKSPACE", str(workspace))
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["recorded"] is True
    # re-running cells (outputs, counts) is not an edit; changing an answer is
    nb = nbformat.read(mine, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", text="ran again\n")]
    nbformat.write(nb, mine)
    assert main(["progress"]) == 0
    assert "edited since" not in capsys.readouterr().out
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "add-one")
    answer.source += "\n# a second thought"
    nbformat.write(nb, mine)
    assert main(["progress"]) == 0
    assert f"{LESSON}" in (out := capsys.readouterr().out) and "(answers edited since: check again)" in out


def test_the_hint_matches_what_failed():
    from grader.present.learner import matching_hint

    hints = ("Look in the cache first, then ask the database.",
             "A cached None is a miss forever with `if cache.get(user_id):`; use `user_id in cache`.",
             "Do not wrap the query in try/except: a DatabaseError must reach the caller.")
    assert matching_hint(hints, "NotDoneYet: still the stub (NotImplementedError)") == (1, hints[0])
    assert matching_hint(hints, "Called get_user_cached(db, cache, 404) twice: 2 queries; a cached None "
                                "must count as a hit")[0] == 2
    assert matching_hint(hints, "The DatabaseError was swallowed: it must reach the caller")[0] == 3
    assert matching_hint(hints, "something else entirely") == (1, hints[0])
    assert matching_hint((), "anything") == (0, "")


def test_check_explains_a_missing_notebook(course, tmp_path, capsys):
    assert main(["check", "1", "--workspace", str(tmp_path / "empty")]) == 2
    assert "python -m grader lab" in capsys.readouterr().err


def test_import_refuses_a_zip_that_escapes(course, tmp_path, capsys):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.ipynb", "{}")
    assert main(["import", "1", str(archive)]) == 2
    assert "outside the archive" in capsys.readouterr().err
    assert not (tmp_path / "outside.ipynb").exists()


def test_import_folder_of_flat_notebooks(course, tmp_path, capsys):
    incoming = tmp_path / "incoming"
    _write(course, incoming / "zoe.ipynb", {})
    (incoming / "bad+name.ipynb").write_text("{}")
    assert main(["import", "1", str(incoming)]) == 0
    out = capsys.readouterr().out
    assert "imported 1 submission(s)" in out and "not a usable student id" in out
    folder = course / "submitted" / "zoe" / LESSON
    assert (folder / NOTEBOOK).is_file() and (folder / "timestamp.txt").is_file()
    assert (folder / "submission_secret.txt").is_file()  # nbgrader's release_feedback needs it


@pytest.mark.slow
def test_release_backs_up_a_hand_edited_notebook(course, capsys):
    released = course / "notebooks" / LESSON / NOTEBOOK
    released.write_text(released.read_text().replace("Fixture lesson 1", "Edited by hand"))
    assert main(["release", "1", "--no-exchange"]) == 0
    out = capsys.readouterr().out
    assert "edited by hand: kept a copy in .grader/backups/" in out
    backups = list((course / ".grader" / "backups").glob(f"{LESSON}-*/{NOTEBOOK}"))
    assert len(backups) == 1 and "Edited by hand" in backups[0].read_text()
    assert "Edited by hand" not in released.read_text()
    assert main(["release", "1", "--no-exchange"]) == 0  # regenerating an untouched release backs up nothing
    assert "kept a copy" not in capsys.readouterr().out


def test_commands_have_help(capsys):
    from grader.cli import COMMANDS, build_parser

    parser = build_parser()
    for name in ("check", "progress", "release", "students", "deadline", "collect", "import", "autograde", "serve", "feedback",
                 "report", "export", "demo"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        assert "usage:" in capsys.readouterr().out
    assert len(COMMANDS) >= 13


def test_progress_bar_counts_and_estimates():
    import io

    from grader.progressbar import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(4, "grading", stream=stream, done=1)  # one done in an earlier run
    bar.advance("alice: graded")
    line = bar.line()
    assert "2/4" in line and " 50%" in line and "ETA 0:" in line
    bar.advance(), bar.advance()
    assert "4/4 100%" in stream.getvalue().splitlines()[-1]


def test_a_renamed_notebook_is_still_found(course):
    from grader.classroom.autograde import find_submissions
    from grader.course.layout import find_lesson

    folder = course / "submitted" / "ann" / LESSON
    _write(course, folder / "basics (1).ipynb", {})
    (folder / "timestamp.txt").write_text("2026-11-26 08:00:00.000000 UTC")
    [found] = find_submissions(course, find_lesson("1"))
    assert found.student == "ann" and found.notebook.name == "basics (1).ipynb"
    assert found.timestamp == "2026-11-26 08:00:00.000000 UTC"


def _dies_for_bob(source, submission, limits, redis_url):  # runs in a spawned worker process
    import os

    if submission.student == "bob":
        os._exit(3)  # the worker process itself dies (not the sandboxed child)
    return {"status": "graded", "exercises": [], "seconds": 0.0}


@pytest.mark.slow
def test_a_dying_worker_loses_no_other_submission(tmp_path):
    from grader.classroom.autograde import Job, Submission, _run_pool
    from grader.sandbox.protocol import Limits

    jobs = [Job("lesson", tmp_path / "source.ipynb", Submission(name, tmp_path / "x.ipynb"), f"fp-{name}")
            for name in ("ann", "bob", "cy", "dee")]
    stored = {}

    def store(job, result):
        stored.setdefault(job.submission.student, result.status)

    lost = _run_pool(jobs, 2, Limits(), None, store, task=_dies_for_bob)
    assert "bob" in [job.submission.student for job in lost] and "bob" not in stored
    retried = []
    for job in lost:  # as autograde_lessons does: each lost submission alone
        retried += _run_pool([job], 1, Limits(), None, store, task=_dies_for_bob)
    assert set(stored) == {"ann", "cy", "dee"} and set(stored.values()) == {"graded"}
    assert [job.submission.student for job in retried] == ["bob"]  # graded alone, only the culprit is lost again


def test_feedback_sections_are_the_lessons_headings_and_messages_read_cleanly(monkeypatch):
    from course_lib import load_course as installed_course
    from grader.present.feedback import feedback_html
    from grader.grading.result import ExerciseResult, NotebookResult

    monkeypatch.delenv("COURSE_ROOT", raising=False)
    lesson = installed_course().lessons[0]
    png = "iVBORw0KGgo="
    result = NotebookResult("graded", [
        ExerciseResult(lesson.exercises[0].id, 10, 0, "failed",
                       f"NotDoneYet: [{lesson.exercises[0].id}] Called f(1): it raised NotImplementedError"),
        ExerciseResult(lesson.exercises[1].id, 5, 5, "passed")],
        figures=[{"after": "no-cache-demo", "png": png}, {"after": "sweep-chart", "png": png},
                 {"after": "a-cell-the-release-does-not-have", "png": png}])
    page = feedback_html(lesson, result)
    headings = re.findall(r"<h3>([^<]*)</h3>", page)
    assert "1. Three requests without a cache" in headings and "3. Speed-up against hit ratio, measured" in headings
    assert "A cell the release does not have" in headings and "setup" not in headings
    assert "(not done yet, 0 / 10)" in page and "NotDoneYet:" not in page
    assert "x0.01: a 100 ms query takes 1 ms" in page
