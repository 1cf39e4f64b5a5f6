"""The instructor pipeline end to end, on the tiny course (examples/tiny-course).

- a multi-user round trip through a temporary nbgrader exchange: release -> three learners fetch,
  answer, submit -> collect -> autograde -> feedback -> learners fetch feedback -> export;
- autograde killed with SIGKILL mid-run, then rerun: nothing lost, nothing graded or counted twice;
- bad submissions (unreadable, endless loop, crashing interpreter, tampered tests) never stop the
  batch and keep their own status, apart from real zeros.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from grader.course.cells import grade_id
from grader.course.synthetic import solution_answers, with_answers

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parents[3] / "examples" / "tiny-course"
LESSON, NOTEBOOK, COURSE_ID = "01-fixture-basics", "basics.ipynb", "fixture-course"
WRONG_ADD_ONE = "def add_one(x):\n    return x - 1"
VENV_BIN = str(Path(sys.executable).parent)


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}


def make_course(tmp: Path) -> Path:
    root = tmp / "course"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("gradebook.db", "submitted", "autograded",
                                                                  "feedback", "grader-results", ".grader"))
    return root


def grader(root: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "grader", "--course", str(root), *args], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"grader {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def nbgrader(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, f"nbgrader {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def answered(root: Path, release_nb, answers: dict[str, str], base: str = "solution"):
    filled = solution_answers(nbformat.read(root / "solutions" / LESSON / NOTEBOOK, as_version=4)) if base == "solution" else {}
    filled.update(answers)
    return with_answers(release_nb, filled)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def gradebook_scores(root: Path) -> dict[str, dict[str, float | None]]:
    from nbgrader.api import Gradebook

    found: dict[str, dict[str, float | None]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gb:
        assignment = gb.find_assignment(LESSON)
        for submission in assignment.submissions:
            for notebook in submission.notebooks:
                found[submission.student.id] = {g.name: (None if g.needs_manual_grade else g.score) for g in notebook.grades}
    return found


def formgrader_view(root: Path) -> dict[str, tuple[float, bool]]:
    """What the formgrader shows (nbgrader's own API over the same gradebook and autograded/)."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = COURSE_ID
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    return {s["student"]: (s["score"], s["autograded"]) for s in api.get_submissions(LESSON)}


def test_round_trip_through_the_exchange(tmp_path):
    root = make_course(tmp_path)
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    ex = [f"--Exchange.root={exchange}"]
    out = grader(root, "release", LESSON, "--exchange", str(exchange)).stdout
    assert "released to the exchange" in out

    learners = {"alice": {}, "bob": {"add-one": WRONG_ADD_ONE}, "carol": None}  # None: submits the blank release

    def learner_home(name: str) -> Path:
        return tmp_path / "home" / name

    def fetch_answer_submit(name: str) -> None:
        home = learner_home(name)
        home.mkdir(parents=True)
        cache = [f"--Exchange.cache={home / '.cache'}", f"--student={name}"]
        nbgrader(home, "fetch_assignment", LESSON, f"--course={COURSE_ID}", *ex, *cache)
        path = home / LESSON / NOTEBOOK
        release_nb = nbformat.read(path, as_version=4)
        answers = learners[name]
        if answers is not None:
            nbformat.write(answered(root, release_nb, answers), path)
        nbgrader(home, "submit", LESSON, f"--course={COURSE_ID}", *ex, *cache)

    with ThreadPoolExecutor(3) as pool:  # three learners at once
        list(pool.map(fetch_answer_submit, learners))

    out = grader(root, "collect", LESSON, "--exchange", str(exchange)).stdout
    assert "3 submission(s) in submitted/ (3 new, 0 updated)" in out
    out = grader(root, "autograde", LESSON, "--workers", "2").stdout
    assert "3 graded" in out and "graded now 3" in out

    expected = {"alice": {"add-one-tests": 2.0, "memo-square-tests": 3.0},
                "bob": {"add-one-tests": 0.0, "memo-square-tests": 3.0},
                "carol": {"add-one-tests": 0.0, "memo-square-tests": 0.0}}
    assert gradebook_scores(root) == expected
    assert formgrader_view(root) == {n: (sum(v.values()), True) for n, v in expected.items()}
    for name in learners:
        autograded = nbformat.read(root / "autograded" / name / LESSON / NOTEBOOK, as_version=4)
        assert {grade_id(c) for c in autograded.cells} >= {"add-one", "add-one-tests", "memo-chart"}

    out = grader(root, "feedback", LESSON, "--release", "--exchange", str(exchange)).stdout
    assert "3 page(s)" in out and "released" in out
    for name in learners:
        home = learner_home(name)
        nbgrader(home, "fetch_feedback", LESSON, f"--course={COURSE_ID}", *ex,
                 f"--Exchange.cache={home / '.cache'}", f"--student={name}")
        pages = list((home / LESSON / "feedback").glob(f"*/{Path(NOTEBOOK).stem}.html"))
        assert len(pages) == 1, f"{name} fetched {pages}"
        page = pages[0].read_text()
        total = sum(expected[name].values())
        assert f"Score: {total:g} / 5" in page
        for secret in ("BEGIN HIDDEN", "add_one(-5)", "calls.count"):  # hidden test code never shows
            assert secret not in page
        assert ("data:image/png;base64," in page) == (name != "carol")  # the learner's own chart, when it ran
        if name == "bob":
            assert "add_one(1) should be 2" in page and "Return the argument plus one." in page
            assert page.index("Fix first") < page.index("<h2>Exercises")

    grader(root, "export", LESSON, "--output", str(tmp_path / "grades.csv"))
    rows = read_csv(tmp_path / "grades.csv")
    assert set(rows) == set(learners)
    for name, scores in expected.items():
        row = rows[name]
        assert row[f"{LESSON}:status"] == "graded"
        assert (row["add-one"], row["memo-square"]) == (f"{scores['add-one-tests']:g}", f"{scores['memo-square-tests']:g}")
        assert row[f"{LESSON}:total"] == f"{sum(scores.values()):g}"

    out = grader(root, "report", LESSON).stdout
    assert "report on 1 lesson(s)" in out
    html = (root / "reports" / "index.html").read_text()
    assert html.count("<img") == 3 and "Reference solution: 5/5" in html


def _import_class(root: Path, tmp: Path, submissions: dict[str, object]) -> None:
    """Write submissions (notebooks or raw text) to a folder and `grader import` them."""
    folder = tmp / "incoming"
    release_nb = nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4)
    for name, content in submissions.items():
        path = folder / name / NOTEBOOK
        path.parent.mkdir(parents=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            nbformat.write(answered(root, release_nb, content), path)
    out = grader(root, "import", LESSON, str(folder)).stdout
    assert f"imported {len(submissions)} submission(s)" in out


def learner_results(folder: Path) -> list[Path]:
    """The learners' stored results (not the reference solution's ``.reference.json``, graded first)."""
    return [p for p in folder.glob("*.json") if not p.name.startswith(".")]


def test_autograde_resumes_after_kill_9(tmp_path):
    root = make_course(tmp_path)
    slow = "import time\ntime.sleep(1.5)\ndef add_one(x):\n    return x + 1"
    names = [f"learner{i:02d}" for i in range(6)]
    _import_class(root, tmp_path, {n: ({"add-one": slow} if i % 2 else {"add-one": WRONG_ADD_ONE})
                                   for i, n in enumerate(names)})
    results = root / "grader-results" / LESSON
    cmd = [sys.executable, "-m", "grader", "--course", str(root), "autograde", LESSON, "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=root, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(list(learner_results(results))) < 2:
        assert proc.poll() is None, "autograde finished before it could be killed"
        assert time.monotonic() < deadline, "autograde stored no result in time"
        time.sleep(0.05)  # polling for the run's progress on disk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.stem: json.loads(p.read_text())["graded_at"] for p in learner_results(results)}
    assert 2 <= len(first) < len(names), f"the kill came too late to test anything: {sorted(first)}"

    out = grader(root, "autograde", LESSON, "--workers", "2").stdout
    assert f"graded now {len(names) - len(first)}, already done {len(first)}" in out
    after = {p.stem: json.loads(p.read_text())["graded_at"] for p in learner_results(results)}
    assert set(after) == set(names)
    assert all(after[n] == first[n] for n in first), "a result stored before the kill was graded again"
    assert not list(results.glob(".*.tmp")), "a temporary file was left behind"

    expected = {n: {"add-one-tests": 2.0 if i % 2 else 0.0, "memo-square-tests": 3.0} for i, n in enumerate(names)}
    assert gradebook_scores(root) == expected  # one submission per learner, scores set once
    out = grader(root, "autograde", LESSON).stdout  # a third run grades nothing
    assert f"graded now 0, already done {len(names)}" in out
    assert gradebook_scores(root) == expected
    grader(root, "export", LESSON, "--output", str(tmp_path / "grades.csv"))
    rows = read_csv(tmp_path / "grades.csv")
    assert sorted(rows) == names and all(rows[n][f"{LESSON}:total"] == f"{sum(expected[n].values()):g}" for n in names)


def test_bad_submissions_never_stop_the_batch(tmp_path):
    root = make_course(tmp_path)
    release = nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4)
    tampered = answered(root, release, {"add-one": WRONG_ADD_ONE})
    for cell in tampered.cells:
        if grade_id(cell) == "add-one-tests":
            cell.source = "pass  # no tests here"
    submissions = {
        "good": {},
        "zero": {},  # filled below with the blank release: a real zero
        "unreadable": "{this is not a notebook",
        # an endless loop that also defeats the per-cell alarm: only the submission's budget stops it
        "endless": {"add-one": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"},
        "crasher": {"memo-square": "import os\nos.kill(os.getpid(), 9)"},
        "tampered": tampered,
    }
    incoming = tmp_path / "incoming"
    for name, content in submissions.items():
        path = incoming / name / NOTEBOOK
        path.parent.mkdir(parents=True)
        if isinstance(content, str):
            path.write_text(content)
        elif name == "zero":
            nbformat.write(release, path)
        elif name == "tampered":
            nbformat.write(content, path)
        else:
            nbformat.write(answered(root, release, content), path)
    grader(root, "import", LESSON, str(incoming))
    out = grader(root, "autograde", LESSON, "--workers", "2", "--test-timeout", "20", "--submission-timeout", "25").stdout
    assert "6 submission(s)" in out
    grader(root, "export", LESSON, "--output", str(tmp_path / "grades.csv"))
    rows = read_csv(tmp_path / "grades.csv")
    status = {n: rows[n][f"{LESSON}:status"] for n in rows}
    assert status == {"good": "graded", "zero": "graded", "unreadable": "unreadable", "endless": "timed_out",
                      "crasher": "graded", "tampered": "tampered"}
    cells = {n: (rows[n]["add-one"], rows[n]["memo-square"], rows[n][f"{LESSON}:total"]) for n in rows}
    assert cells["good"] == ("2", "3", "5")
    assert cells["zero"] == ("0", "0", "0")  # a real zero
    assert cells["unreadable"] == ("", "", "")  # not a zero: could not be graded
    assert cells["endless"] == ("", "", "")
    # the answer that killed its process costs only its own exercise: the notebook is graded again without it
    assert cells["crasher"] == ("2", "0", "2")
    assert rows["crasher"]["total"] == "2" and rows["crasher"]["status"] == "complete"
    assert rows["good"]["total"] == "5" and rows["good"]["status"] == "complete"
    for name in ("unreadable", "endless"):  # no total where a lesson could not be graded, and the status says why
        assert rows[name]["total"] == "" and rows[name]["status"] == f"incomplete: {LESSON}: {status[name]}", rows[name]
    grader(root, "report", LESSON, "--no-reference")
    report = (root / "reports" / "index.html").read_text()
    assert re.search(rf"<tr><td>endless</td><td></td><td class='timed_out'>timed_out<br>/5<br>"
                     rf".*?<td>&mdash;</td><td>incomplete: {LESSON}: timed_out</td></tr>", report), report
    assert cells["tampered"] == ("0", "3", "3")  # the real tests were restored and ran
    scores = gradebook_scores(root)
    assert scores["unreadable"] == {"add-one-tests": None, "memo-square-tests": None}  # needs a manual grade
    assert scores["zero"] == {"add-one-tests": 0.0, "memo-square-tests": 0.0}
    grader(root, "feedback", LESSON)
    for name, text in (("unreadable", "not a readable notebook"), ("crasher", "crashed"),
                       ("endless", "time budget"), ("tampered", "restored")):
        page = (root / "feedback" / name / LESSON / "basics.html").read_text()
        assert text in page, name


def test_demo_runs_the_whole_pipeline(tmp_path):
    root = make_course(tmp_path)
    out = grader(root, "demo", "--learners", "5", "--max-lessons", "1", "--workers", "2",
                 "--submission-timeout", "60", "--output", str(tmp_path / "demo"), timeout=600).stdout
    assert "1 lesson(s) of the course: 01-fixture-basics; 5 learners" in out
    course = tmp_path / "demo" / "course"
    rows = read_csv(course / "exports" / "grades.csv")
    assert len(rows) == 5
    statuses = {r[f"{LESSON}:status"] for r in rows.values()}
    assert "graded" in statuses and statuses <= {"graded", "tampered", "timed_out", "crashed", "unreadable"}
    assert (course / "reports" / "index.html").is_file() and "grades CSV" in out


def _report_database(source, submission, limits, redis_url):
    """A pool task that reports which Redis URL its worker process would grade with."""
    from grader.executors.workers import worker_redis_url
    from grader.grading.result import NotebookResult

    return NotebookResult("graded", [], detail=f"{os.getpid()} {worker_redis_url(redis_url)}").to_dict()


def test_parallel_workers_on_a_real_redis_each_get_their_own_database():
    from grader.classroom.autograde import Job, Submission, _run_pool
    from grader.sandbox.redis_urls import with_database
    from grader.sandbox.protocol import Limits

    assert with_database("redis://127.0.0.1:6379/0", 3) == "redis://127.0.0.1:6379/3"
    assert with_database("unix:///run/redis.sock?db=1", 2) == "unix:///run/redis.sock?db=2"
    seen = []
    jobs = [Job("lesson", Path("source.ipynb"), Submission(f"learner{i}", Path("x.ipynb")), "fingerprint")
            for i in range(8)]
    lost = _run_pool(jobs, 3, Limits(), "redis://127.0.0.1:6379/5",
                     lambda job, result: seen.append(result.detail), task=_report_database)
    assert not lost and len(seen) == 8
    by_process: dict[str, set[str]] = {}
    for line in seen:
        pid, url = line.split()
        by_process.setdefault(pid, set()).add(url)
    urls = [next(iter(u)) for u in by_process.values()]
    assert all(len(u) == 1 for u in by_process.values()), by_process  # a worker keeps its database
    assert len(set(urls)) == len(urls), by_process  # workers never share one
    assert set(urls) <= {f"redis://127.0.0.1:6379/{n}" for n in (5, 6, 7)}


def test_import_refuses_only_the_entry_with_an_unusable_student_id(tmp_path):
    import zipfile

    root = make_course(tmp_path)
    release = nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4)
    long_id = "x" * 300
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for who in ("alice", long_id, "bob"):
            zf.writestr(f"{who}/{NOTEBOOK}", nbformat.writes(answered(root, release, {})))
    out = grader(root, "import", LESSON, str(archive)).stdout
    assert "imported 2 submission(s)" in out and "skipped 1" in out, out
    assert "longer than 255 bytes" in out and "Traceback" not in out
    assert sorted(p.name for p in (root / "submitted").iterdir()) == ["alice", "bob"]

    single = tmp_path / "one.ipynb"
    nbformat.write(release, single)
    proc = subprocess.run([sys.executable, "-m", "grader", "--course", str(root), "import", LESSON, str(single),
                           "--student", "y" * 300], cwd=root, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "300 characters long (at most 128)" in proc.stdout and "imported 0 submission(s)" in proc.stdout
    assert sorted(p.name for p in (root / "submitted").iterdir()) == ["alice", "bob"]


def test_a_class_is_one_queue_and_a_broken_reference_refuses_only_its_own_lesson(tmp_path, monkeypatch):
    """Two lessons on one pool: the lesson whose solution fails its (typo'd) test stores nothing, the other is graded."""
    monkeypatch.setenv("PATH", _env()["PATH"])  # nbgrader's gradebook set-up runs alembic from the venv
    from grader.classroom.autograde import autograde_lessons
    from grader.course.layout import load
    from grader.course.synthetic import write_submission

    root = make_course(tmp_path)
    lessons = load(root).lessons
    assert [lesson.slug for lesson in lessons] == [LESSON, "02-fixture-more"]
    for lesson in lessons:
        for student in ("ann", "bob"):
            write_submission(lesson.source_path(root), lesson.release_path(root),
                             root / "submitted" / student / lesson.slug / lesson.notebook)
    path = root / "solutions" / LESSON / NOTEBOOK  # a typo in a hidden test: the solution fails it
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "add-one-tests":
            cell.source = "assert add_one(1) == 3, 'add_one(1) should be 3 (typo)'"
    nbformat.write(nb, path)

    first, second = autograde_lessons(root, lessons, workers=2, progress=False)
    assert "add-one-tests" in first.refused and not first.graded_now and not first.scores
    assert not list((root / "grader-results" / LESSON).glob("[!.]*.json")), "a learner was graded with a broken test"
    assert not second.refused and second.graded_now == {"ann": "graded", "bob": "graded"}
    assert second.scores == {"ann": 1.0, "bob": 1.0}
    references = {p.parent.name for p in (root / "grader-results").glob("*/.reference.json")}
    assert references == {LESSON, "02-fixture-more"}  # each lesson's reference was graded in the queue, and stored

    again = autograde_lessons(root, lessons, workers=2, progress=False)  # the stored verdict refuses at once
    assert "add-one-tests" in again[0].refused and again[1].skipped == ["ann", "bob"] and not again[1].graded_now
