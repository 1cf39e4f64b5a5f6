"""Grade on submit (`grader serve`) on the fixture course, through a real nbgrader exchange.

Learners submit with nbgrader's own exchange classes (``grader.demo.ExchangeUser``); the service runs
as the command instructors run (`python -m grader serve`). Covered: submissions made while the service
was down are graded when it starts, once (a second start grades nothing); a newer submission supersedes
a queued older one; feedback is released at once; ``kill -9`` while a grading runs, then a restart:
every submission is graded exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from grader.classroom.demo import ExchangeUser
from grader.serving.journal import Journal, journal_path
from tests.grader.classroom.test_grader_pipeline import COURSE_ID, LESSON, NOTEBOOK, WRONG_ADD_ONE, _env, answered, gradebook_scores
from tests.grader.classroom.test_grader_pipeline import grader, make_course

pytestmark = pytest.mark.slow

SLOW_RIGHT = "import time\ntime.sleep(2)\ndef add_one(x):\n    return x + 1"
FULL = {"add-one-tests": 2.0, "memo-square-tests": 3.0}
WRONG = {"add-one-tests": 0.0, "memo-square-tests": 3.0}


def released_course(tmp_path: Path) -> tuple[Path, Path]:
    root = make_course(tmp_path)
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    grader(root, "release", LESSON, "--exchange", str(exchange))
    return root, exchange


def submit(root: Path, exchange: Path, tmp_path: Path, name: str, answers: dict[str, str]) -> ExchangeUser:
    user = ExchangeUser(name, tmp_path / "home" / name, exchange, COURSE_ID)
    folder = user.home / LESSON
    if not folder.is_dir():
        user.fetch(LESSON)
    path = folder / NOTEBOOK
    nbformat.write(answered(root, nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4), answers), path)
    user.submit(LESSON)
    return user


def serve_command(root: Path, exchange: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "grader", "--course", str(root), "serve", "--exchange", str(exchange),
            "--poll", "0.2", *options]


def serve_until_idle(root: Path, exchange: Path, *options: str, timeout: float = 300) -> str:
    proc = subprocess.run(serve_command(root, exchange, "--exit-when-idle", *options), cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def events(root: Path) -> list[dict]:
    return Journal(journal_path(root)).events()


def count(root: Path, event: str) -> Counter:
    return Counter(e["student"] for e in events(root) if e["event"] == event)


def wait_for(condition, what: str, timeout: float = 180, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the service ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_grades_what_was_submitted_while_it_was_down_once_and_releases_feedback(tmp_path):
    root, exchange = released_course(tmp_path)
    users = {name: submit(root, exchange, tmp_path, name, answers)
             for name, answers in (("alice", {}), ("bob", {"add-one": WRONG_ADD_ONE}), ("carol", {}))}
    out = serve_until_idle(root, exchange, "--release-feedback", "--workers", "2")
    assert gradebook_scores(root) == {"alice": FULL, "bob": WRONG, "carol": FULL}
    assert count(root, "done") == {"alice": 1, "bob": 1, "carol": 1}
    lines = [line for line in out.splitlines() if f" {LESSON} " in line]
    assert len(lines) == 3 and any("bob 01-fixture-basics graded 3/5" in line for line in lines), out
    for name, user in users.items():
        pages = user.fetch_feedback(LESSON)
        assert len(pages) == 1, (name, pages)
        assert f"feedback for {name}" in pages[0].read_text() and ("Score: 3 / 5" in pages[0].read_text()) == (name == "bob")

    started = count(root, "started")
    serve_until_idle(root, exchange, "--workers", "2")  # a second start: nothing new, nothing graded again
    assert count(root, "started") == started and count(root, "done") == {"alice": 1, "bob": 1, "carol": 1}
    status = subprocess.run([sys.executable, "-m", "grader", "--course", str(root), "serve", "--status"], cwd=root,
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert status.stdout.splitlines()[0] == "0 waiting, 0 running, 3 done, 0 failed, 0 superseded", status.stdout
    # what the service stored is what autograde would: it skips all three
    assert "graded now 0, already done 3" in grader(root, "autograde", LESSON, "--quiet").stdout


def test_a_newer_submission_supersedes_a_queued_older_one(tmp_path):
    root, exchange = released_course(tmp_path)
    submit(root, exchange, tmp_path, "dora", {"add-one": WRONG_ADD_ONE})
    submit(root, exchange, tmp_path, "dora", {})  # a fix, before the service got to the first one
    submit(root, exchange, tmp_path, "emil", {})
    serve_until_idle(root, exchange, "--workers", "1")
    assert gradebook_scores(root) == {"dora": FULL, "emil": FULL}
    assert count(root, "superseded") == {"dora": 1} and count(root, "started") == {"dora": 1, "emil": 1}
    newest = max((p for p in (exchange / COURSE_ID / "inbound").iterdir() if p.name.startswith("dora+")),
                 key=lambda p: (p / "timestamp.txt").read_text())
    assert (root / "submitted" / "dora" / LESSON / "timestamp.txt").read_text() == (newest / "timestamp.txt").read_text()


def test_kill_9_while_grading_then_restart_grades_each_submission_exactly_once(tmp_path):
    root, exchange = released_course(tmp_path)
    names = [f"learner{i}" for i in range(4)]
    for name in names:
        submit(root, exchange, tmp_path, name, {"add-one": SLOW_RIGHT})
    proc = subprocess.Popen(serve_command(root, exchange, "--workers", "1"), cwd=root, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # one stored, the next one being graded: kill the service (and its workers' group) there
        wait_for(lambda: sum(count(root, "done").values()) >= 1 and sum(count(root, "started").values()) >= 2,
                 "one submission graded and the next one started", proc=proc)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = {e["key"] for e in events(root) if e["event"] == "done"}
    cut = len(events(root))
    serve_until_idle(root, exchange, "--workers", "2")
    assert count(root, "done") == dict.fromkeys(names, 1)
    assert not [e for e in events(root)[cut:] if e["event"] == "started" and e["key"] in before], "graded twice"
    assert gradebook_scores(root) == dict.fromkeys(names, FULL)
    records = [json.loads(p.read_text()) for p in (root / "grader-results" / LESSON).glob("learner*.json")]
    assert sorted(r["student"] for r in records) == names


def test_a_late_submission_gets_the_late_penalty_as_with_autograde(tmp_path):
    from nbgrader.api import Gradebook

    root, exchange = released_course(tmp_path)
    with open(root / "nbgrader_config.py", "a", encoding="utf-8") as handle:
        handle.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    grader(root, "deadline", LESSON, "2020-01-01 00:00:00 UTC")
    submit(root, exchange, tmp_path, "fay", {})
    serve_until_idle(root, exchange, "--workers", "1")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gb:
        notebook = gb.find_submission_notebook("basics", LESSON, "fay")
        assert (notebook.score, notebook.late_submission_penalty) == (5.0, 5.0)
