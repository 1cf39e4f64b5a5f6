"""The instructor's course on the fixture course: one class run with the gradebook as the source of truth.

A class list (with a learner who never submits), a due date with nbgrader's "zero" late penalty and a
late learner (timestamps injected, no waiting), a manual grade and comment given as the formgrader
would, feedback released and then stale, a test typo that the reference solution catches, and a
regrade after a real test change that lists whose score changed. Export, report and feedback must
agree with nbgrader's own ``nbgrader export`` of the same gradebook.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.course.cells import grade_id
from tests.grader.classroom.test_grader_pipeline import (COURSE_ID, LESSON, NOTEBOOK, _env, answered, grader, make_course,
                                        read_csv)

pytestmark = pytest.mark.slow

FIXTURE_MANIFEST = Path(__file__).parents[3] / "examples" / "tiny-course" / "course_lib" / "course.toml"
DUE = "2026-01-01 12:00:00 UTC"
ON_TIME, LATE = "2026-01-01 11:00:00.000000 UTC", "2026-01-01 12:04:53.000000 UTC"  # 293 s late
HALF_ADD_ONE = "def add_one(x):\n    return x + 1 if x > 0 else x"  # passes the visible test, not the hidden one


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "--course", str(root), *args], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=300)


def set_hidden_test(root: Path, exercise: str, source: str) -> None:
    path = root / "solutions" / LESSON / NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == f"{exercise}-tests":
            cell.source = source
    nbformat.write(nb, path)


def nbgrader_export(root: Path, tmp: Path) -> dict[str, dict[str, str]]:
    out = tmp / "nbgrader-grades.csv"
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--CsvExportPlugin.to={out}"], cwd=root,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as handle:
        return {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == LESSON}


def assert_all_agree_with_the_gradebook(root: Path, tmp: Path, rows: dict[str, dict[str, str]]) -> None:
    """Per learner, the CSV's total, the report's total and the feedback page's score are nbgrader's own
    (`nbgrader export` of the gradebook: score after the late penalty); a non-submitter has no page."""
    theirs = nbgrader_export(root, tmp)
    report = (root / "reports" / "index.html").read_text()
    for name, row in rows.items():
        score = float(theirs[name]["score"])
        assert float(row["total"]) == score, (name, row, theirs[name])
        assert float(row[f"{LESSON}:penalty"] or 0) == float(theirs[name]["late_submission_penalty"]), (name, row)
        shown = re.search(rf"<tr><td>{name}</td>.*?<td>([\d.]+)/5</td><td>complete</td></tr>", report)
        assert shown and float(shown.group(1)) == score, (name, shown and shown.group(0))
        page = root / "feedback" / name / LESSON / "basics.html"
        if row[f"{LESSON}:status"] == "not_submitted":
            assert not page.exists() and float(row[f"{LESSON}:total"]) == 0 == score, name
        else:
            assert f"Score: {score:g} / 5" in page.read_text(), (name, score)


def test_a_class_with_deadline_late_learner_manual_grade_non_submitter_and_regrade(tmp_path):
    from nbgrader.api import Gradebook

    root = make_course(tmp_path)
    with open(root / "nbgrader_config.py", "a") as handle:
        handle.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    exchange = tmp_path / "exchange"
    exchange.mkdir()

    # the class list: carol is registered but never submits
    roster = tmp_path / "class.csv"
    roster.write_text("id,first_name,last_name,email\nalice,Alice,Ash,a@x.org\nbob,Bob,Birch,\n"
                      "carol,Carol,Cedar,\ndave,Dave,Dune,\n")
    assert "registered 4 learner(s)" in grader(root, "students", "import", str(roster)).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("id,first_name\nok,A\n" + "z" * 300 + ",B\n")
    proc = run(root, "students", "import", str(bad))
    assert proc.returncode == 2 and "line 3" in proc.stderr and "nothing imported" in proc.stderr

    release = nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4)
    incoming = tmp_path / "incoming"
    for name, answers in {"alice": {}, "bob": {}, "dave": {"add-one": HALF_ADD_ONE}}.items():
        (incoming / name).mkdir(parents=True)
        nbformat.write(answered(root, release, answers), incoming / name / NOTEBOOK)
    grader(root, "import", LESSON, str(incoming))
    for name, stamp in {"alice": ON_TIME, "bob": LATE, "dave": ON_TIME}.items():  # injected submission times
        (root / "submitted" / name / LESSON / "timestamp.txt").write_text(stamp)
    out = grader(root, "deadline", "1", DUE).stdout
    assert "due 2026-01-01 12:00:00 UTC" in out

    grader(root, "autograde", "--workers", "2")  # no lesson named: the released one (01) only
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gb:
        assert [a.name for a in gb.assignments] == [LESSON], "an unreleased lesson reached the gradebook"
        assert gb.find_submission(LESSON, "bob").total_seconds_late == 293
        # the formgrader's manual grade and comment
        gb.find_grade("memo-square-tests", "basics", LESSON, "alice").manual_score = 1
        gb.find_comment("memo-square", "basics", LESSON, "alice").manual_comment = "Cache with lru_cache next time."
        gb.db.commit()

    grader(root, "export", "--output", str(tmp_path / "grades.csv"))
    rows = read_csv(tmp_path / "grades.csv")
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert rows["carol"][f"{LESSON}:status"] == "not_submitted" and rows["carol"]["total"] == "0"
    assert rows["alice"]["first_name"] == "Alice" and rows["alice"]["memo-square"] == "1"
    assert rows["alice"]["total"] == "3" and rows["alice"][f"{LESSON}:late_by_seconds"] == "0"
    bob = rows["bob"]
    assert (bob[f"{LESSON}:late_by_seconds"], bob[f"{LESSON}:penalty"], bob["total"]) == ("293", "5", "0")
    assert bob[f"{LESSON}:submitted_at"] == "2026-01-01 12:04:53 UTC"
    assert rows["dave"]["total"] == "3" and all(r["max_total"] == "5" for r in rows.values())  # only 01 released
    assert all(r["status"] == "complete" for r in rows.values())
    theirs = nbgrader_export(root, tmp_path)
    for name, row in rows.items():  # nbgrader's own export of the same gradebook agrees
        assert float(theirs[name]["score"]) == float(row["total"]), (name, theirs[name], row)
        assert float(theirs[name]["late_submission_penalty"]) == float(row[f"{LESSON}:penalty"] or 0)

    grader(root, "feedback", "--release", "--exchange", str(exchange))
    alice_page = (root / "feedback" / "alice" / LESSON / "basics.html").read_text()
    assert "Score: 3 / 5" in alice_page and "Cache with lru_cache next time." in alice_page
    bob_page = (root / "feedback" / "bob" / LESSON / "basics.html").read_text()
    assert "Score: 0 / 5" in bob_page and "4m 53s after the due date" in bob_page and "late penalty: 5" in bob_page

    grader(root, "report", "--no-reference")
    assert_all_agree_with_the_gradebook(root, tmp_path, rows)
    report = (root / "reports" / "index.html").read_text()
    assert "<h2>Learners</h2>" in report and "Carol Cedar" in report and "not_submitted" in report
    assert "late 4m 53s, penalty 5" in report and "submitted 2026-01-01 12:04 UTC" in report
    assert "stale" not in report

    # a manual change after the release: alice's released feedback is stale until released again
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gb:
        gb.find_grade("memo-square-tests", "basics", LESSON, "alice").manual_score = 2
        gb.db.commit()
    grader(root, "report", "--no-reference")
    assert "Released feedback is stale</b> for alice:" in (root / "reports" / "index.html").read_text()
    grader(root, "feedback", LESSON, "--student", "alice", "--release", "--exchange", str(exchange))
    assert "Score: 4 / 5" in (root / "feedback" / "alice" / LESSON / "basics.html").read_text()
    grader(root, "report", "--no-reference")
    assert "stale" not in (root / "reports" / "index.html").read_text()

    # a test typo: the reference solution loses points, so nobody is regraded
    results = root / "grader-results" / LESSON
    before = {p.name: p.read_text() for p in results.glob("*.json")}
    set_hidden_test(root, "add-one", "assert add_one(1) == 2, 'add_one(1) should be 2'\n"
                    "### BEGIN HIDDEN TESTS\nassert add_one(-5) == -3, 'add_one(-5) should be -3 (hidden)'\n"
                    "### END HIDDEN TESTS")
    proc = run(root, "autograde", "--workers", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "reference solution" in proc.stderr and "add-one-tests" in proc.stderr and "Traceback" not in proc.stderr
    assert "add_one(-5) should be -3" in proc.stderr
    assert {p.name: p.read_text() for p in results.glob("*.json") if not p.name.startswith(".")} == \
        {k: v for k, v in before.items() if not k.startswith(".")}, "a learner was regraded with a broken test"

    # a real test change: dave's score changes, the change is printed and saved, his feedback is stale
    set_hidden_test(root, "add-one", "assert add_one(1) == 2, 'add_one(1) should be 2'\n"
                    "### BEGIN HIDDEN TESTS\nassert add_one(2) == 3, 'add_one(2) should be 3 (hidden)'\n"
                    "### END HIDDEN TESTS")
    out = grader(root, "autograde", "--workers", "2").stdout
    assert "1 score(s) changed by this regrade (before -> after): dave 3 -> 5" in out, out
    assert "released feedback is stale for 1 learner(s): dave" in out
    saved = list((root / ".grader" / "regrades").glob(f"{LESSON}-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["changes"] == {"dave": {"before": 3, "after": 5}}
    grader(root, "export", "--output", str(tmp_path / "grades2.csv"))
    rows = read_csv(tmp_path / "grades2.csv")
    assert rows["dave"]["total"] == "5" and rows["alice"]["total"] == "4" and rows["bob"]["total"] == "0"
    assert rows["dave"][f"{LESSON}:feedback"] == "stale" and rows["alice"][f"{LESSON}:feedback"] == "released"
    assert rows["carol"][f"{LESSON}:feedback"] == ""
    grader(root, "feedback", "--release", "--exchange", str(exchange))
    grader(root, "report", "--no-reference")
    grader(root, "export", "--output", str(tmp_path / "grades3.csv"))
    rows = read_csv(tmp_path / "grades3.csv")
    assert all(rows[n][f"{LESSON}:feedback"] == ("" if n == "carol" else "released") for n in rows), rows
    assert_all_agree_with_the_gradebook(root, tmp_path, rows)


def test_commands_act_on_released_lessons_only(tmp_path):
    root = make_course(tmp_path)
    proc = run(root, "release")
    assert proc.returncode == 2 and "name the lessons to release" in proc.stderr and "--all" in proc.stderr
    for command in ("autograde", "export", "report", "feedback"):
        proc = run(root, command)
        assert proc.returncode == 2 and "no lesson is released to the class yet" in proc.stderr, (command, proc.stderr)
    assert not (root / "gradebook.db").exists()
    grader(root, "release", "2", "--no-exchange")
    grader(root, "export", "--output", str(tmp_path / "grades.csv"))
    header = (tmp_path / "grades.csv").read_text().splitlines()[0].split(",")
    assert "02-fixture-more:status" in header and f"{LESSON}:status" not in header
    proc = run(root, "deadline", "2", "next tuesday-ish")
    assert proc.returncode == 2 and "is not a date nbgrader understands" in proc.stderr


def test_dev_check_enforces_charts_hints_and_grades_solution_and_stub(tmp_path):
    root = make_course(tmp_path)
    out = grader(root, "dev-check", "1", "--skip-regenerate").stdout
    assert "ok   01-fixture-basics" in out
    manifest = root / "course_lib" / "course.toml"
    manifest.write_text(manifest.read_text().replace(
        'hints = ["Return the argument plus one.", "`return x + 1`"]', "hints = []"))
    source = root / "solutions" / LESSON / NOTEBOOK
    nb = nbformat.read(source, as_version=4)
    nb.cells = [c for c in nb.cells if grade_id(c) != "memo-chart"]
    nbformat.write(nb, source)
    proc = run(root, "dev-check", "1", "--skip-regenerate")  # the manifest itself refuses an exercise without hints
    assert proc.returncode == 1 and "exercise 'add-one': needs at least one non-empty hint" in proc.stderr
    shutil.copy2(FIXTURE_MANIFEST, manifest)
    proc = run(root, "dev-check", "1", "--skip-regenerate")
    assert proc.returncode == 1 and "no chart" in proc.stdout, proc.stdout
    shutil.rmtree(root)
    root = make_course(tmp_path)
    set_hidden_test(root, "add-one", "assert add_one(1) == 2\n### BEGIN HIDDEN TESTS\n"
                    "assert add_one(-5) == -3, 'typo'\n### END HIDDEN TESTS")
    proc = run(root, "dev-check", "1", "--skip-regenerate")
    assert proc.returncode == 1 and "reference solution" in proc.stdout and "add-one-tests" in proc.stdout, proc.stdout
    set_hidden_test(root, "add-one", "pass  # no test")
    proc = run(root, "dev-check", "1", "--skip-regenerate")
    assert proc.returncode == 1 and "the unanswered stub already scores 2 (add-one)" in proc.stdout, proc.stdout


def test_formgrader_buttons_refuse_with_the_command_when_disabled(tmp_path):
    """COURSE_FORMGRADER_BUTTONS=off: the formgrader's Autograde and feedback URLs answer with the grader
    command to run, and nothing is graded (the Chromium test covers the buttons running our grader)."""
    import urllib.request

    from tests.support import free_port, stop_server, wait_for_http

    root = make_course(tmp_path)
    grader(root, "release", LESSON, "--no-exchange")
    port, token = free_port(), "guard-token"
    home = tmp_path / "home"
    env = {**_env(), "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "COURSE_FORMGRADER_BUTTONS": "off"}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/api/status?token={token}", proc, what="the instructor's JupyterLab")
        for path, command in ((f"submission/{LESSON}/bob/autograde", f"autograde {LESSON} --student bob --force"),
                              (f"assignment/{LESSON}/bob/generate_feedback", f"feedback {LESSON} --student bob"),
                              (f"assignment/{LESSON}/release_feedback", f"feedback {LESSON} --release")):
            request = urllib.request.Request(f"{base}/formgrader/api/{path}", data=b"", method="POST",
                                             headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
            assert answer["success"] is False and "This button is disabled" in answer["log"], answer
            assert f"python -m grader --course {root} {command}" in answer["log"], answer
        assert not (root / "grader-results").exists() and not (root / "feedback").exists()
    finally:
        stop_server(proc)


def test_a_reference_run_the_grader_could_not_finish_is_graded_again(tmp_path):
    """A stored reference result that crashed (e.g. the judge could not start) is not reused: the next
    autograde grades the solution again instead of refusing the class with the old crash."""
    from course_lib.manifest import load_course
    from grader.classroom.autograde import grade_reference
    from grader.classroom.store import REFERENCE, result_path

    root = make_course(tmp_path)
    lesson = load_course(root / "course_lib" / "course.toml").lesson(LESSON)
    first = grade_reference(root, lesson)
    assert first.status == "graded" and first.score == first.max_score
    path = result_path(root, LESSON, REFERENCE)
    record = json.loads(path.read_text())
    record["result"].update(status="crashed", score=0)
    path.write_text(json.dumps(record))
    again = grade_reference(root, lesson)
    assert again.status == "graded" and again.score == again.max_score, again.to_dict()
    assert json.loads(path.read_text())["result"]["status"] == "graded"


def test_generate_and_dev_check_report_an_nbgrader_failure_as_an_error_not_a_traceback(tmp_path):
    root = make_course(tmp_path)
    (root / "solutions" / LESSON / NOTEBOOK).write_text("{ not a notebook", encoding="utf-8")
    release = root / "notebooks" / LESSON / NOTEBOOK
    before = release.read_bytes()
    for args, says in ((("generate", "1"), "`nbgrader generate_assignment 01-fixture-basics` failed"),
                       (("dev-check", "1"), "basics.ipynb: not a valid notebook file")):
        proc = run(root, *args)
        # nbgrader's own log lines may quote its traceback; the grader itself must not raise one
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and not re.search(
            r"^Traceback", proc.stderr, re.M), (
            f"grader {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}")
        assert says in proc.stderr, proc.stderr
    assert release.read_bytes() == before  # a failed generation leaves the release as it was
