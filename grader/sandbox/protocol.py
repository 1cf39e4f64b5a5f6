"""The wire between the three grading processes: the one module all of them import.

The parent (``grader.sandbox.parent``) starts two children per submission and talks to
each over its own pipe, in JSON lines:

- the **runner** (``python -m grader.sandbox.runner``, the learner's interpreter, in its
  sandbox) gets :class:`RunnerInit`, then one :class:`CellMessage` at a time,
  and answers each with one :class:`CellRecord` authenticated with :func:`mac`;
- the **judge** (``python -m grader.sandbox.judge``, the test cells, in a sandbox of its
  own) gets :class:`JudgeInit`, then one :class:`JudgeRequest` at a time, and
  answers each with one :class:`JudgeReply`.

The runner and the judge import this module and never each other, and every
default of the conversation comes from :class:`Limits`. Nothing here imports
more than the standard library: the runner's start-up stays fast.

>>> record = {"index": 3, "nonce": "ab", "status": "ok"}
>>> tag = mac(b"k" * 32, record)
>>> tag == mac(b"k" * 32, dict(record, mac="ignored"))
True
>>> keystream_xor(b"k", "n", keystream_xor(b"k", "n", b"secret")) == b"secret"
True
>>> timeout_record(60)["status"]
'timeout'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import selectors
import sys
import sysconfig
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypedDict

__all__ = [
    "Limits", "ISOLATION_MODES", "REDIS_BACKENDS", "CellTimeout", "TESTS_FILENAME", "COURSE_FILENAME", "SETUP_ID", "CellStatus", "RunStatus", "RECORD_STATUSES",
    "RUN_STATUSES", "RunnerInit", "CellMessage", "CellRecord", "JudgeInit", "JudgeRequest", "JudgeReply",
    "mac", "keystream_xor", "timeout_record", "load_grading_profile", "LineReader", "trusted_prefixes",
]

ISOLATION_MODES = ("auto", "off")
REDIS_BACKENDS = ("auto", "redis-server", "fakeredis")
TESTS_FILENAME = "<grader: tests>"  # the filename test cells are compiled with (the audit hook trusts it)
COURSE_FILENAME = "<course>"  # the filename the judge compiles course cells with
SETUP_ID = "setup"  # the course cell whose whole source the judge runs (not only its definitions)


class CellStatus(StrEnum):
    """How one cell ended (a :class:`CellRecord`'s ``status``)."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


class RunStatus(StrEnum):
    """How a whole run ended."""

    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"


RECORD_STATUSES = tuple(CellStatus)
RUN_STATUSES = tuple(RunStatus)


@dataclass(frozen=True)
class Limits:
    """Budgets for one submission (every one has a default suitable for the course).

    >>> Limits(cell_timeout=5).cell_timeout
    5
    >>> Limits(memory_bytes=0)
    Traceback (most recent call last):
    ...
    ValueError: limit memory_bytes must be positive, got 0
    """

    cell_timeout: float = 60.0  # seconds for one cell (tests included)
    notebook_timeout: float = 300.0  # seconds for the whole notebook, start-up included
    memory_bytes: int = 3 * 1024**3  # address space of the learner's process (and of the judge's)
    file_bytes: int = 64 * 1024**2  # largest file the learner's code may write
    max_output_chars: int = 20_000  # kept per stream per cell; the rest is cut
    disk_bytes: int = 256 * 1024**2  # scratch folder (and /tmp) of the learner's process
    max_processes: int = 256  # processes and threads of each sandboxed user (RLIMIT_NPROC)
    isolation: str = "auto"  # "auto": every protection this machine offers; "off": the bare baseline
    redis_backend: str = "auto"  # the grading Redis without --redis-url: "redis-server", "fakeredis" or "auto"

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "memory_bytes", "file_bytes", "max_output_chars",
                     "disk_bytes", "max_processes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)!r}")
        if self.isolation not in ISOLATION_MODES:
            raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {self.isolation!r}")
        if self.redis_backend not in REDIS_BACKENDS:
            raise ValueError(f"redis_backend must be one of {REDIS_BACKENDS}, got {self.redis_backend!r}")


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time budget."""


# --- parent <-> runner ------------------------------------------------------------------------------
class RunnerInit(TypedDict, total=False):
    key: str  # hex of the run's secret: encrypts cell sources, authenticates records
    max_output_chars: int
    cell_timeout: float
    guard: bool  # install the audit hook
    scratch: str
    deny: list[str]
    allow: list[str]
    connect: list[str]  # addresses the audit hook lets the learner's code connect to
    preload: list[str]  # modules imported and watched before any learner code
    seed: str | None  # a read-only folder with matplotlib's font cache
    rpc_fd: int  # the learner's end of the judge's channel


class CellMessage(TypedDict):
    index: int
    nonce: str
    kind: str  # answer | learner | course | tests
    timeout: float
    source: str  # base64 of keystream_xor(key, nonce, utf-8 source)


class CellRecord(TypedDict, total=False):
    index: int
    nonce: str
    status: Literal["ok", "error", "timeout"]
    ename: str
    evalue: str
    traceback: str
    lineno: int  # the line of the cell an error points at (SyntaxError, or the innermost frame in the cell)
    seconds: float
    outputs: list[dict[str, Any]]
    restored: list[str]
    mac: str


# --- parent <-> judge -------------------------------------------------------------------------------
class JudgeInit(TypedDict, total=False):
    learner_names: list[str]
    redis_server: str  # the grading Redis server's socket, as the judge sees it ("" without Redis)
    redis_listen: str  # where the judge serves the learner's Redis socket (a proxy it can cut)
    redis_db: int
    seed: str | None
    course_root: str  # a path the judge must NOT see (it reports whether it does)
    uses_redis: bool  # some cell of the run mentions Redis: fakeredis's Lua is locked down before any runs
    index: str
    cells: dict[str, str]  # index of each learner cell -> how messages name it ("your answer cell 'read'")


class JudgeRequest(TypedDict, total=False):
    op: Literal["course", "tests", "end"]
    index: int
    source: str
    whole: bool  # course: run the whole cell (the setup cell), not only its definitions
    timeout: float


class JudgeReply(TypedDict, total=False):
    index: int | str
    status: Literal["ok", "error", "timeout"]
    ename: str
    evalue: str
    seconds: float
    requests: int
    skipped: int
    identity: dict[str, Any]  # the ready reply: the judge's uid, what it sees of the file system
    channel_closed: bool  # the learner's process went away or broke the channel while this cell ran
    where: str  # the learner's cell and line an error of the tests came from (when the message lacks it)


def mac(key: bytes, record: dict[str, Any]) -> str:
    """The authentication tag of a record (every field but ``mac``)."""
    body = json.dumps({k: v for k, v in record.items() if k != "mac"}, sort_keys=True, default=str)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def keystream_xor(key: bytes, nonce: str, data: bytes) -> bytes:
    """Encrypt or decrypt ``data`` (XOR with SHAKE-256 of key and nonce)."""
    stream = hashlib.shake_256(key + nonce.encode()).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, stream)) if len(data) < 4096 else \
        (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def timeout_record(timeout: float, detail: str = "an endless loop, a deadlock, or far too slow") -> dict[str, Any]:
    """The record of a cell stopped at its time budget."""
    return {"status": "timeout", "ename": "Timeout",
            "evalue": f"the cell did not finish within {timeout:g} s ({detail})"}


def load_grading_profile() -> None:
    """Hypothesis settings for grading: derandomized, no database, no deadline, no tracing (explain)."""
    try:
        from hypothesis import HealthCheck, Phase, settings
    except ImportError:
        return
    settings.register_profile(
        "grading", derandomize=True, database=None, deadline=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
        phases=[p for p in Phase if p.name != "explain"],  # 'explain' traces code with sys.settrace
    )
    settings.load_profile("grading")


class LineReader:
    """Read newline-terminated messages from a file descriptor, each within a deadline.

    ``read(until)`` returns one line (without the newline), ``None`` at end of
    file, or raises ``TimeoutError`` when ``until`` (a ``time.monotonic()``
    value) passes first. ``limit`` caps what the peer may send in all.
    """

    def __init__(self, fd: int, limit: int = 64 * 1024 * 1024) -> None:
        self.fd, self.limit, self.total, self.buffer = fd, limit, 0, b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def read(self, until: float, on_wait: Any = None) -> bytes | None:
        while b"\n" not in self.buffer:
            now = time.monotonic()
            if now >= until:
                raise TimeoutError
            if on_wait is not None:
                on_wait(now)
            if not self.selector.select(timeout=min(until - now, 1.0)):
                continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.total += len(chunk)
            if self.total > self.limit:
                raise OverflowError(f"more than {self.limit // 1024**2} MB on the channel")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        self.selector.close()


def trusted_prefixes() -> tuple[str, ...]:
    """Where the code the sandbox trusts lives: the standard library, site-packages and the whole grader package.

    The audit hook lets frames from these paths do what learner code may not, and strict ``==`` keeps their
    ``__eq__``; everything else (the learner's cells, course_lib) is the learner's side.

    >>> import grader
    >>> package = os.path.dirname(os.path.realpath(grader.__file__))
    >>> package + os.sep in trusted_prefixes(), os.path.dirname(package) + os.sep in trusted_prefixes()
    (True, False)
    """
    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    found.update(os.path.realpath(p) + os.sep for p in sys.path if "site-packages" in p)
    found.add(os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep)  # grader/, not course_lib/
    return tuple(sorted(found))
