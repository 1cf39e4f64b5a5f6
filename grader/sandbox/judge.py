"""The trusted side of grading: run test cells where the learner's code cannot reach them.

Started by ``grader.sandbox.parent`` as ``python -m grader.sandbox.judge RPC_FD``, one
process per submission, in a sandbox of its own (``grader.sandbox.isolation``, role
``judge``: its own uid, no network, a clean environment, nothing of the course
folder): everything it reads from the learner's side is hostile input. It talks
to the parent in JSON lines on stdin/stdout (``grader.sandbox.protocol``), to the
learner's process through ``grader.sandbox.rpc`` on the socket ``RPC_FD``, and to this
submission's own grading Redis server through a unix socket; it serves the
learner's Redis socket as a byte proxy to that server, which the tests can cut
(``redis_outage``).

Test cells run here, in a namespace made of

1. what the test cells bound themselves;
2. the course's own definitions, run here too: the whole setup cell (grade_id
   ``setup``) and the imports, functions and classes of every other course
   cell, so ``Check``, ``SlowDatabase``, ``FakeClock`` and the lesson's helpers
   are the judge's, untouched by the learner;
3. everything else, looked up in the learner's namespace when first used: plain
   data by value, functions, classes and objects as references
   (``grader.sandbox.rpc.remote.RemoteObject``), re-read before each test cell.

Names the learner's answer cells bind always come from the learner. The
verdict (did the cell raise?) is decided here: the learner's code can answer
calls, slowly, wrongly or not at all, but cannot see or change the tests, the
helpers they use or the result.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import io
import json
import os
import shutil
import socket
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course_lib import answer_code
from course_lib.checks import carry_learner_line, learner_line, passed_by_reference

from .protocol import COURSE_FILENAME, TESTS_FILENAME, CellTimeout, load_grading_profile, timeout_record
from .rpc.endpoint import Endpoint
from .rpc.errors import ChannelClosed, RemoteError
from .rpc.policy import JudgePolicy

if TYPE_CHECKING:
    from .redis_gateway import RedisProxy

__all__ = ["main", "LearnerNamespace", "definitions", "identity", "place_text"]

_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class LearnerNamespace(dict):
    """The test cells' globals: a name not bound here is looked up in the learner's namespace."""

    def __init__(self, endpoint: Endpoint, learner_names: set[str]) -> None:
        super().__init__(__builtins__=builtins, __name__="__main__")
        self.endpoint, self.learner_names = endpoint, set(learner_names)
        self.fetched: set[str] = set()

    def forget_learner_values(self) -> None:
        """Before a test cell: the learner may have run cells since, so look names up again."""
        for name in self.fetched | (self.learner_names & set(self)):
            self.pop(name, None)
        self.fetched.clear()

    def _fetch(self, name: str) -> Any:
        if name.startswith("__") or name in builtins.__dict__:
            raise KeyError(name)
        try:
            value = self.endpoint.lookup(name)
        except (NameError, KeyError, TypeError, RemoteError):
            raise KeyError(name) from None
        dict.__setitem__(self, name, value)
        self.fetched.add(name)
        return value

    def __missing__(self, name: str) -> Any:
        return self._fetch(name)

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        try:
            self._fetch(str(name))
        except KeyError:
            return False
        return True

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


def definitions(source: str, *, whole: bool) -> list[ast.Module]:
    """The statements of a course cell the judge runs: all of it, or its imports, functions and classes."""
    tree = ast.parse(source)
    keep = tree.body if whole else [n for n in tree.body if isinstance(n, _DEFINITIONS)]
    return [ast.Module(body=[n], type_ignores=[]) for n in keep]


def place_text(place: dict[str, Any], labels: dict[str, str]) -> str:
    """A place in the learner's code as the learner reads it.

    >>> place_text({"cell": 5, "line": 3, "function": "get", "text": "return cache[x]"}, {"5": "answer cell 'read'"})
    "answer cell 'read', line 3 (in get()): return cache[x]"
    >>> place_text({"cell": 9, "line": 1, "function": "", "text": ""}, {})
    'a cell of your notebook, line 1'
    """
    where = labels.get(str(place["cell"]), "a cell of your notebook")
    text = f"{where}, line {place['line']}" + (f" (in {place['function']}())" if place["function"] else "")
    return text + (f": {place['text']}" if place["text"] else "")


def _interrupt(thread: threading.Thread) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(CellTimeout))


class Judge:
    def __init__(self, endpoint: Endpoint, learner_names: set[str]) -> None:
        self.endpoint = endpoint
        self.namespace = LearnerNamespace(endpoint, learner_names)
        self.profiled = False

    def _profile(self, source: str) -> None:
        """Before the first cell that uses hypothesis (0.2 s to import), load the grading profile."""
        if not self.profiled and ("hypothesis" in source or "hypothesis" in sys.modules):
            load_grading_profile()
            self.profiled = True

    def course(self, source: str, whole: bool) -> dict[str, Any]:
        """Run a course cell's definitions; a failing statement is skipped (the learner's side ran it too)."""
        failed = 0
        sink = io.StringIO()
        self._profile(source)
        try:
            modules = definitions(source, whole=whole)
        except (SyntaxError, ValueError):
            return {"status": "ok", "skipped": -1}
        with redirect_stdout(sink), redirect_stderr(sink):
            for module in modules:
                try:
                    exec(compile(module, COURSE_FILENAME, "exec"), self.namespace)  # noqa: S102 - the course's own code
                except Exception:  # noqa: BLE001
                    failed += 1
        return {"status": "ok", "skipped": failed}

    def tests(self, source: str, timeout: float) -> dict[str, Any]:
        self.namespace.forget_learner_values()
        self._profile(source)
        box: dict[str, Any] = {}
        sink = io.StringIO()

        def run() -> None:
            try:
                code = compile(source, TESTS_FILENAME, "exec", dont_inherit=True)
                with redirect_stdout(sink), redirect_stderr(sink):
                    exec(code, self.namespace)  # noqa: S102 - the instructor's tests
            except BaseException as exc:  # noqa: BLE001 - the verdict
                box["error"] = exc

        start, sent = time.perf_counter(), self.endpoint.requests
        worker = threading.Thread(target=run, name="test-cell", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            waiting = self.endpoint.outstanding()
            for _ in range(4):  # CPython 3.11 may leave a pending asynchronous exception undelivered: set it again
                _interrupt(worker)
                worker.join(0.5)
                if not worker.is_alive():
                    break
            calls = "; ".join(f"{what} (waiting {seconds:.1f} s)" for what, seconds in waiting[:3])
            detail = "an endless loop, a deadlock, or far too slow" + (
                f"; calls into your code that never returned: {calls}" if calls else "")
            return {**timeout_record(timeout, detail), "seconds": round(time.perf_counter() - start, 4)}
        record: dict[str, Any] = {"status": "ok", "seconds": round(time.perf_counter() - start, 4),
                                  "requests": self.endpoint.requests - sent}
        if self.endpoint.closed:  # the learner's process went away or broke the channel during this cell
            record["channel_closed"] = True
        exc = box.get("error")
        if isinstance(exc, CellTimeout):
            record.update(timeout_record(timeout))
        elif isinstance(exc, ChannelClosed):
            record.update(status="error", ename="NotebookStopped",
                          evalue=f"the notebook's process stopped answering while the tests ran ({exc})")
        elif exc is not None:
            try:
                message = str(exc)[:2000]
            except BaseException:  # noqa: BLE001
                message = "(the message could not be read)"
            record.update(status="error", ename=type(exc).__name__[:200], evalue=message)
            where = learner_line(exc)  # an exception that came back from the learner's code: its line
            if where and where not in message:
                record["where"] = where
        return record


def _serve_redis(server: str, listen: str, deadline: float) -> "RedisProxy":
    """Serve the learner's Redis socket (``listen``) as a proxy to this run's server; wait until it answers."""
    from course_lib import redis_conn

    from .redis_gateway import RedisProxy

    while True:  # the parent starts the server beside this process: wait for it (a state, not a time)
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(2)
                probe.connect(server)
                probe.sendall(b"*1\r\n$4\r\nPING\r\n")
                if probe.recv(64).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the grading Redis server did not answer at {server}")
        time.sleep(0.01)
    gateway = RedisProxy(f"unix://{server}", Path(listen))
    redis_conn.on_outage(gateway.set_outage)
    return gateway


def identity(course_root: str = "") -> dict[str, Any]:
    """Who this process is and what it sees: the record shows it (of the course folder, only the code)."""
    try:
        top = sorted(os.listdir("/"))
    except OSError:
        top = []
    try:
        course = sorted(os.listdir(course_root)) if course_root else []
    except OSError:
        course = []
    return {"uid": os.getuid(), "gid": os.getgid(), "sees": top, "sees_of_course_folder": course,
            "environment": sorted(os.environ)}


def _seed_matplotlib(seed: str | None) -> None:
    """matplotlib's font cache, copied from the parent's read-only seed (building it takes seconds)."""
    target = os.environ.get("MPLCONFIGDIR")
    if seed and target and os.path.isdir(os.path.join(seed, "mpl")):
        shutil.copytree(os.path.join(seed, "mpl"), target, dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    out = sys.stdout
    sys.stdout = sys.stderr  # stdout is the parent's channel: nothing else may write to it
    endpoint = Endpoint(sock, JudgePolicy(), name="judge")
    endpoint.by_reference = passed_by_reference
    init = json.loads(sys.stdin.readline())
    if init.get("uses_redis", True):  # no code of a run that never mentions Redis can name fakeredis
        from .fakeredis_server import lock_down_lua

        lock_down_lua()  # a fakeredis client made here (get_redis() without a server) runs no script's Python
    _seed_matplotlib(init.get("seed"))
    gateway = None
    if init.get("redis_server"):
        gateway = _serve_redis(str(init["redis_server"]), str(init["redis_listen"]), time.monotonic() + 60)
    labels = init.get("cells") if isinstance(init.get("cells"), dict) else {}
    answer_code.provide((str(ex), str(src)) for ex, src in init.get("learner_code") or [])  # text, never run
    endpoint.on_place = lambda exc, place: carry_learner_line(exc, place_text(place, labels))
    judge = Judge(endpoint, set(init.get("learner_names", [])))
    out.write(json.dumps({"index": init.get("index"), "status": "ok",
                          "identity": identity(str(init.get("course_root", "")))}) + "\n")
    out.flush()
    for line in sys.stdin:
        message = json.loads(line)
        op = message.get("op")
        if op == "end":
            break
        if op == "course":
            reply = judge.course(str(message["source"]), bool(message.get("whole")))
        elif op == "tests":
            reply = judge.tests(str(message["source"]), float(message["timeout"]))
        else:
            reply = {"status": "error", "ename": "JudgeError", "evalue": f"unknown request {op!r}"}
        reply["index"] = message.get("index")
        out.write(json.dumps(reply) + "\n")
        out.flush()
    endpoint.close()
    if gateway is not None:
        gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
