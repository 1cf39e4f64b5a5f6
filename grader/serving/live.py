"""The live view of the grading queue: counts by state from the journal, one refreshing line on a tty."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

from .journal import Entry

__all__ = ["STATES", "counts", "status_line", "status_report", "LiveLine"]

STATES = ("waiting", "running", "done", "failed", "superseded")
_STATE_OF = {"queued": "waiting", "started": "running", "done": "done", "failed": "failed", "superseded": "superseded"}


def counts(entries: dict[str, Entry]) -> Counter:
    found: Counter = Counter({state: 0 for state in STATES})
    for entry in entries.values():
        found[_STATE_OF[entry.state]] += 1
    return found


def status_line(entries: dict[str, Entry]) -> str:
    """'2 waiting, 1 running, 7 done, 0 failed, 1 superseded'"""
    found = counts(entries)
    return ", ".join(f"{found[state]} {state}" for state in STATES)


def status_report(entries: dict[str, Entry]) -> str:
    """The status line, then each submission not done yet (and each failed one, with why)."""
    lines = [status_line(entries)]
    for entry in entries.values():
        state = _STATE_OF[entry.state]
        if state in ("waiting", "running", "failed"):
            why = entry.events[-1].get("detail", "") if state == "failed" else ""
            lines.append(f"  {state:8} {entry.lesson} {entry.student} (submitted {entry.timestamp})"
                         + (f": {why}" if why else ""))
    return "\n".join(lines)


class LiveLine:
    """One status line rewritten in place when the stream is a terminal; nothing otherwise (the log suffices)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self.shown = ""

    def show(self, text: str) -> None:
        if self.on and text != self.shown:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self.shown = text

    def clear(self) -> None:
        """Before a log line: the line goes, and comes back with the next ``show``."""
        if self.on and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = ""
