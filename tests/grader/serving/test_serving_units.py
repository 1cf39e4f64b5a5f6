"""The grading service's parts that need no notebook run: journal, inbound scan, the sandbox refusal."""

from __future__ import annotations

import pytest

from grader.sandbox.protocol import Limits
from grader.serving.inbound import scan_inbound
from grader.serving.journal import Journal
from grader.serving.live import status_line
from grader.executors.task import ALLOW_UNSANDBOXED, GradingTask, Unsandboxed, grade_task, sandbox_problem


def test_a_torn_last_line_is_ignored_and_final_states_stay_final(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("queued", "a+01+t", "a", "01", "t")
    journal.append("started", "a+01+t", "a", "01", "t")
    journal.append("done", "a+01+t", "a", "01", "t", score=5)
    journal.append("started", "a+01+t", "a", "01", "t")  # a late duplicate changes nothing
    journal.append("queued", "b+01+t", "b", "01", "t")
    with open(journal.path, "a") as handle:
        handle.write('{"event": "started", "key": "b+0')  # kill -9 while writing
    entries = journal.replay()
    assert {k: e.state for k, e in entries.items()} == {"a+01+t": "done", "b+01+t": "queued"}
    assert status_line(entries) == "1 waiting, 0 running, 1 done, 0 failed, 0 superseded"
    with pytest.raises(ValueError, match="event must be one of"):
        journal.append("graded", "a+01+t", "a", "01", "t")


def test_inbound_takes_only_complete_submissions_of_known_lessons(tmp_path):
    inbound = tmp_path / "course" / "inbound"
    stamp = "2026-12-01 10:00:00.000001 UTC"
    for name, files in {f"ann+01+{stamp}+x": ("timestamp.txt", "submission_secret.txt"),
                        f"ben+01+{stamp}+y": ("timestamp.txt",),  # still being copied
                        f"cy+99+{stamp}+z": ("timestamp.txt", "submission_secret.txt")}.items():
        (inbound / name).mkdir(parents=True)
        for file in files:
            (inbound / name / file).write_text(stamp)
    found, other = scan_inbound(tmp_path, "course", {"01"})
    assert [(s.student, s.lesson, s.timestamp) for s in found] == [("ann", "01", stamp)]
    assert other == {f"cy+99+{stamp}+z": "not a submission of a lesson of this course"}
    found, other = scan_inbound(tmp_path, "course", {"01"}, check_owner=True)  # ann's folder is root's
    assert not found and "not by the student ann" in other[f"ann+01+{stamp}+x"]


def test_a_worker_without_the_sandbox_refuses_unless_told(monkeypatch):
    monkeypatch.delenv(ALLOW_UNSANDBOXED, raising=False)
    monkeypatch.setattr("grader.sandbox.isolation.tools", lambda: {"bwrap": None, "root": True, "setpriv": "/usr/bin/setpriv"})
    task = GradingTask("01", "ann", "x.ipynb", b"{}", b"{}")
    with pytest.raises(Unsandboxed, match=f"missing here: bubblewrap.*{ALLOW_UNSANDBOXED}=1"):
        grade_task(task)
    assert "isolation 'off'" in sandbox_problem(Limits(isolation="off"))
    monkeypatch.setenv(ALLOW_UNSANDBOXED, "1")
    assert sandbox_problem(Limits(isolation="off")) == ""


def test_the_live_line_rewrites_itself_on_a_terminal_only():
    import io

    from grader.serving.live import LiveLine

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        line = LiveLine(stream)
        line.show("1 waiting")
        line.show("1 waiting")  # unchanged: not written again
        line.clear()
        line.show("0 waiting")
    assert tty.getvalue() == "\r\033[K1 waiting\r\033[K\r\033[K0 waiting"
    assert pipe.getvalue() == ""
