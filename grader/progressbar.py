"""A small progress bar with an ETA for long commands (stderr; plain lines when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """``bar = ProgressBar(30, "grading"); bar.advance("alice: graded"); bar.close()``."""

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, width: int = 28,
                 done: int = 0) -> None:
        self.total, self.label, self.width = max(total, 0), label, width
        self.stream = stream or sys.stderr
        self.done, self.start = done, time.monotonic()
        self.started_at = done  # items already done when the bar started (resumed work)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_line = -1.0
        self._draw("")

    def eta(self) -> float | None:
        fresh = self.done - self.started_at
        if fresh <= 0:
            return None
        rate = (time.monotonic() - self.start) / fresh
        return rate * (self.total - self.done)

    def line(self, note: str = "") -> str:
        frac = self.done / self.total if self.total else 1.0
        filled = int(frac * self.width)
        eta = self.eta()
        eta_text = "ETA --:--" if eta is None else f"ETA {_clock(eta)}"
        bar = "#" * filled + "-" * (self.width - filled)
        text = (f"{self.label} [{bar}] {self.done}/{self.total} {frac:4.0%} "
                f"{eta_text} elapsed {_clock(time.monotonic() - self.start)}")
        return f"{text}  {note}" if note else text

    def _draw(self, note: str) -> None:
        if not self.total:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line(note)[:200])
            self.stream.flush()
        else:  # a log file: about ten lines per bar
            step = max(1, self.total // 10)
            if self.done == self.total or (self.done - self.started_at) % step == 0 and self.done > self.started_at:
                self.stream.write(self.line(note) + "\n")
                self.stream.flush()

    def advance(self, note: str = "", step: int = 1) -> None:
        self.done = min(self.total, self.done + step)
        self._draw(note)

    def close(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")
            self.stream.flush()
