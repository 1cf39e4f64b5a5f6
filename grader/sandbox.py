"""The parent side: run learner code in a separate, limited process.

Each run gets a fresh process in its own session and a scratch folder, a
clean environment (no secrets, no grader paths), resource limits (memory,
file size, CPU time) and a wall-clock budget enforced by killing the whole
process group. Results come back over a pipe, line by line, and the grade is
decided here, in the parent, from those lines.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Limits", "RunOutcome", "run_cells"]

MAX_RESULT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Budgets for one submission (every one has a default suitable for the course)."""

    cell_timeout: float = 60.0  # seconds for one cell (tests included)
    notebook_timeout: float = 300.0  # seconds for the whole notebook, start-up included
    memory_bytes: int = 3 * 1024**3  # address space of the learner's process
    file_bytes: int = 64 * 1024**2  # largest file the learner's code may write
    max_output_chars: int = 20_000  # kept per stream per cell; the rest is cut

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "memory_bytes", "file_bytes", "max_output_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)!r}")


@dataclass
class RunOutcome:
    """What came back: one record per cell that finished, and how the process ended."""

    records: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"  # completed | timed_out | crashed
    detail: str = ""
    seconds: float = 0.0


def _limit_resources(limits: Limits) -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    cpu = int(limits.notebook_timeout) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _describe_exit(code: int | None, stderr_tail: str) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = {"SIGKILL": " (killed: out of memory or over its time budget)",
                "SIGXCPU": " (CPU time limit reached)", "SIGSEGV": " (the interpreter crashed)",
                "SIGXFSZ": " (wrote a file larger than allowed)"}.get(name, "")
        return f"the notebook's process died from {name}{hint}"
    last = stderr_tail.strip().splitlines()[-1:] or [""]
    return f"the notebook's process exited early with code {code}" + (f": {last[0][:300]}" if last[0] else "")


def run_cells(cells: list[dict[str, Any]], *, limits: Limits, env: dict[str, str]) -> RunOutcome:
    """Run ``cells`` (dicts with 'source', 'kind', 'timeout') in a sandboxed child process."""
    outcome = RunOutcome()
    workdir = Path(tempfile.mkdtemp(prefix="grade-"))
    env = {**env, "HOME": str(workdir)}
    read_fd, write_fd = os.pipe()
    errfile = open(workdir / ".runner-stderr", "w+b")
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "grader.runner", str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile,
            pass_fds=(write_fd,), cwd=workdir, env=env, start_new_session=True,
            preexec_fn=lambda: _limit_resources(limits),
        )
        os.close(write_fd)
        request = json.dumps({"cells": cells, "max_output_chars": limits.max_output_chars}).encode()
        feeder = threading.Thread(target=_feed, args=(proc, request), daemon=True)
        feeder.start()
        outcome.status, outcome.detail = _collect(proc, read_fd, outcome.records, start + limits.notebook_timeout)
        proc.wait()
        if outcome.status == "crashed" and not outcome.detail:
            errfile.seek(0, os.SEEK_END)
            errfile.seek(max(0, errfile.tell() - 4000))
            outcome.detail = _describe_exit(proc.returncode, errfile.read().decode("utf-8", "replace"))
    finally:
        os.close(read_fd)
        errfile.close()
        outcome.seconds = round(time.monotonic() - start, 3)
        shutil.rmtree(workdir, ignore_errors=True)
    return outcome


def _feed(proc: subprocess.Popen, request: bytes) -> None:
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _collect(proc: subprocess.Popen, fd: int, records: list[dict[str, Any]], deadline: float) -> tuple[str, str]:
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    buffer, total = b"", 0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(proc)
                return "timed_out", "the notebook ran past its total time budget and was stopped"
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # every writer closed: the child ended
                _kill(proc)  # reap stray grandchildren of the session
                return "crashed", ""
            total += len(chunk)
            if total > MAX_RESULT_BYTES:
                _kill(proc)
                return "crashed", "the notebook flooded the result channel and was stopped"
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    _kill(proc)
                    return "crashed", "the result channel carried garbage"
                if record.get("done"):
                    _kill(proc)
                    return "completed", ""
                records.append(record)
    finally:
        selector.close()
