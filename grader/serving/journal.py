"""The grading service's append-only journal: one JSON line per event, appended and fsynced.

``<course>/.grader/serve/journal.jsonl`` records, for each inbound submission (keyed by its
folder name in the exchange), ``queued``, ``started``, then one of ``done``, ``failed`` or
``superseded``. A line is written with one ``write`` on a file opened for appending and
fsynced before the service goes on, so a ``kill -9`` leaves at most a torn last line, which
``replay`` ignores. The service's state after a restart is this journal plus the files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["Journal", "Entry", "journal_path", "FINAL", "EVENTS"]

EVENTS = ("queued", "started", "done", "failed", "superseded")
FINAL = ("done", "failed", "superseded")  # a submission in one of these is never graded again


def journal_path(root: Path) -> Path:
    return root / ".grader" / "serve" / "journal.jsonl"


@dataclass
class Entry:
    """The latest word on one submission, from its events."""

    key: str
    student: str
    lesson: str
    timestamp: str
    state: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state in FINAL


class Journal:
    """Append events; replay them into one ``Entry`` per submission (in first-seen order)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, key: str, student: str, lesson: str, timestamp: str, **details: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        line = json.dumps({"event": event, "key": key, "student": student, "lesson": lesson,
                           "timestamp": timestamp, "at": datetime.now(timezone.utc).isoformat(), **details})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """Every complete event; a torn line (the service was killed while writing it) is skipped."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") in EVENTS and event.get("key"):
                found.append(event)
        return found

    def replay(self) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        for event in self.events():
            entry = entries.get(event["key"])
            if entry is None:
                entry = entries[event["key"]] = Entry(event["key"], event.get("student", ""), event.get("lesson", ""),
                                                      event.get("timestamp", ""), event["event"])
            entry.events.append(event)
            if not entry.final:  # a final state stays final (a late duplicate line changes nothing)
                entry.state = event["event"]
        return entries
