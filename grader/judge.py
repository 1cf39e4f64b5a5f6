"""The trusted side of grading: run test cells where the learner's code cannot reach them.

Started by ``grader.sandbox`` as ``python -m grader.judge RPC_FD``, one
process per submission, outside the learner's sandbox. It talks to the
parent in JSON lines on stdin/stdout and to the learner's process through
``grader.rpc`` on the socket ``RPC_FD``.

Test cells run here, in a namespace made of

1. what the test cells bound themselves;
2. the course's own definitions, run here too: the whole setup cell (grade_id
   ``setup``) and the imports, functions and classes of every other course
   cell, so ``Check``, ``SlowDatabase``, ``FakeClock`` and the lesson's helpers
   are the judge's, untouched by the learner;
3. everything else, looked up in the learner's namespace when first used: plain
   data by value, functions, classes and objects as references
   (``grader.rpc.RemoteObject``), re-read before each test cell.

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
import socket
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course_lib.checks import passed_by_reference

from .rpc import ChannelClosed, Endpoint, JudgePolicy, RemoteError
from .guard import TESTS_FILENAME
from .runner import CellTimeout, load_grading_profile

if TYPE_CHECKING:
    from .redis_gateway import EmbeddedRedisServer, RedisProxy

__all__ = ["main", "LearnerNamespace", "bound_names", "definitions"]

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


def bound_names(source: str) -> set[str]:
    """Top-level names a cell binds (assignments, functions, classes, imports)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def definitions(source: str, *, whole: bool) -> list[ast.Module]:
    """The statements of a course cell the judge runs: all of it, or its imports, functions and classes."""
    tree = ast.parse(source)
    keep = tree.body if whole else [n for n in tree.body if isinstance(n, _DEFINITIONS)]
    return [ast.Module(body=[n], type_ignores=[]) for n in keep]


def _interrupt(thread: threading.Thread) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(CellTimeout))


class Judge:
    def __init__(self, endpoint: Endpoint, learner_names: set[str]) -> None:
        self.endpoint = endpoint
        self.namespace = LearnerNamespace(endpoint, learner_names)

    def course(self, source: str, whole: bool) -> dict[str, Any]:
        """Run a course cell's definitions; a failing statement is skipped (the learner's side ran it too)."""
        failed = 0
        sink = io.StringIO()
        try:
            modules = definitions(source, whole=whole)
        except (SyntaxError, ValueError):
            return {"status": "ok", "skipped": -1}
        with redirect_stdout(sink), redirect_stderr(sink):
            for module in modules:
                try:
                    exec(compile(module, "<course>", "exec"), self.namespace)  # noqa: S102 - the course's own code
                except Exception:  # noqa: BLE001
                    failed += 1
        return {"status": "ok", "skipped": failed}

    def tests(self, source: str, timeout: float) -> dict[str, Any]:
        self.namespace.forget_learner_values()
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
            _interrupt(worker)
            worker.join(2.0)
            calls = "; ".join(f"{what} (waiting {seconds:.1f} s)" for what, seconds in waiting[:3])
            return {"status": "timeout", "ename": "Timeout", "seconds": round(time.perf_counter() - start, 4),
                    "evalue": f"the cell did not finish within {timeout:g} s (an endless loop, a deadlock, or "
                              f"far too slow)" + (f"; calls into your code that never returned: {calls}"
                                                  if calls else "")}
        record: dict[str, Any] = {"status": "ok", "seconds": round(time.perf_counter() - start, 4),
                                  "requests": self.endpoint.requests - sent}
        exc = box.get("error")
        if isinstance(exc, CellTimeout):
            record.update(status="timeout", ename="Timeout",
                          evalue=f"the cell did not finish within {timeout:g} s")
        elif isinstance(exc, ChannelClosed):
            record.update(status="error", ename="NotebookStopped",
                          evalue=f"the notebook's process stopped answering while the tests ran ({exc})")
        elif exc is not None:
            try:
                message = str(exc)[:2000]
            except BaseException:  # noqa: BLE001
                message = "(the message could not be read)"
            record.update(status="error", ename=type(exc).__name__[:200], evalue=message)
        return record


def _serve_redis(socket_path: Path) -> "RedisProxy | EmbeddedRedisServer":
    """Serve the learner's Redis socket: a proxy to REDIS_URL, or a fakeredis server the tests share."""
    from course_lib import redis_conn

    from .redis_gateway import EmbeddedRedisServer, RedisProxy

    url = os.environ.get(redis_conn.REDIS_URL_ENV)
    if url:
        gateway: RedisProxy | EmbeddedRedisServer = RedisProxy(url, socket_path)
    else:
        gateway = EmbeddedRedisServer(socket_path)
        redis_conn.use_embedded_server(gateway.server)
    redis_conn.on_outage(gateway.set_outage)
    return gateway


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    out = sys.stdout
    sys.stdout = sys.stderr  # stdout is the parent's channel: nothing else may write to it
    endpoint = Endpoint(sock, JudgePolicy(), name="judge")
    endpoint.by_reference = passed_by_reference
    init = json.loads(sys.stdin.readline())
    gateway = _serve_redis(Path(init["redis_socket"])) if init.get("redis_socket") else None
    load_grading_profile()
    judge = Judge(endpoint, set(init.get("learner_names", [])))
    out.write(json.dumps({"index": init.get("index"), "status": "ok"}) + "\n")
    out.flush()
    for line in sys.stdin:
        message = json.loads(line)
        op = message.get("op")
        if op == "end":
            break
        if op == "course":
            reply = judge.course(str(message["source"]), bool(message.get("whole")))
        elif op == "tests":
            reply = judge.tests(str(message["source"]), float(message.get("timeout") or 60))
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
