"""The parent side: run one submission in sandboxed processes and collect one record per cell.

Each run starts, each in a sandbox of its own (``grader.sandbox.isolation``): the learner's
interpreter (``grader.sandbox.runner``), the judge that runs the test cells
(``grader.sandbox.judge``) and, when the lesson uses Redis, this submission's own Redis
server (``grader.sandbox.redis_service``). Each has its own unprivileged uid, no network, a
clean environment, a private tmpfs home, resource limits and a wall-clock budget
enforced by killing it; the only folders they share hold the sockets between them.

The parent talks to the runner cell by cell (``grader.sandbox.protocol``): it sends one
cell (its source encrypted with a per-run key), waits for exactly one
authenticated record, and only then sends the next, so hidden tests are never in
the learner's process and blind writes cannot forge a result. Test cells go to
the judge, which reaches the learner's names over a socket pair; the grade is
decided from the judge's records. ``Limits(isolation="off")`` is the unprotected
baseline for measurements. See docs/SECURITY.md.
"""

from __future__ import annotations

import ast
import base64
import hmac
import json
import os
import queue
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .isolation import INSIDE_REDIS, INSIDE_RUN, PACKAGE_ROOT, Bind, Plan, new_uids
from .isolation import plan as isolation_plan
from .protocol import RECORD_STATUSES, SETUP_ID, Limits, LineReader, RunStatus, keystream_xor, mac
from .redis_service import SOCKET as REDIS_SOCKET
from .redis_service import ExternalRedis, RedisServer
from .redis_urls import database_of, inside_url

__all__ = ["Limits", "RunOutcome", "run_cells", "redact", "learner_cell_labels"]

MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_JUDGE_BYTES = 16 * 1024 * 1024
# Lines a child's stderr carries that say nothing about why it ended (libraries' warnings).
_NOISE = re.compile(r"^(Fontconfig |Matplotlib |.*Warning: |\s*warnings\.warn|bwrap: )")


@dataclass
class RunOutcome:
    """What came back: one record per cell that finished, and how the run ended."""

    records: list[dict[str, Any]] = field(default_factory=list)
    status: RunStatus = RunStatus.COMPLETED
    detail: str = ""
    seconds: float = 0.0
    processes: dict[str, Any] = field(default_factory=dict)  # who ran as whom, and what the judge saw
    stopped_at: int | None = None  # the index of the cell that was running when the run stopped


def _limit_resources(limits: Limits, nproc: bool) -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    cpu = int(limits.notebook_timeout) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc:  # counted per user: only meaningful when the child runs as a sandbox user
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))


def describe_exit(code: int | None, stderr_tail: str) -> str:
    """Why a child ended, in words: its signal, or its exit code and the cause it printed (not its noise).

    >>> describe_exit(-9, "")
    "the notebook's process died from SIGKILL (killed: out of memory or over its time budget)"
    >>> describe_exit(1, "Fontconfig error: no fonts\\n")
    "the notebook's process exited with code 1 without saying why (os._exit(), or a crash in a C extension)"
    >>> describe_exit(1, "Traceback (most recent call last):\\n  File 'x'\\nMemoryError: boom\\nFontconfig warning\\n")
    "the notebook's process exited with code 1: MemoryError: boom"
    """
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = {"SIGKILL": " (killed: out of memory or over its time budget)",
                "SIGXCPU": " (CPU time limit reached)", "SIGSEGV": " (the interpreter crashed)",
                "SIGXFSZ": " (wrote a file larger than allowed)"}.get(name, "")
        return f"the notebook's process died from {name}{hint}"
    if code is not None and code > 128 and code - 128 in {s.value for s in signal.Signals}:
        return describe_exit(128 - code, stderr_tail)  # bwrap reports a signal death as 128 + signal
    lines = [line for line in stderr_tail.strip().splitlines() if line.strip() and not _NOISE.match(line)]
    cause = ""
    if "Traceback (most recent call last):" in stderr_tail:  # the last line of the last traceback
        after = stderr_tail.rsplit("Traceback (most recent call last):", 1)[1].splitlines()
        cause = next((line for line in reversed(after) if line and not line.startswith((" ", "\t"))
                      and not _NOISE.match(line)), "")
    cause = cause or (lines[-1] if lines else "")
    if not cause:
        return (f"the notebook's process exited with code {code} without saying why (os._exit(), or a crash "
                "in a C extension)")
    return f"the notebook's process exited with code {code}: {cause[:300]}"


# ast.parse is not thread-safe in Python 3.11 (python/cpython#106905): callers may grade in threads.
_AST_LOCK = threading.Lock()


def _imports(sources: list[str]) -> list[str]:
    """Modules the test cells import: the runner imports and watches them before learner code runs."""
    found = {"course_lib", "builtins"}
    for source in sources:
        try:
            with _AST_LOCK:
                tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return sorted(found)


def _secret_lines(cells: list[dict[str, Any]]) -> list[str]:
    """Lines of test code long enough to be worth keeping out of anything reported."""
    lines = {line.strip() for c in cells if c.get("kind") == "tests" for line in str(c["source"]).splitlines()}
    return sorted((line for line in lines if len(line) >= 16), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for line in secrets:
        if line in text:
            text = text.replace(line, "[hidden test code removed by the grader]")
    return text


def _redact_record(record: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    for key in ("evalue", "traceback"):
        if isinstance(record.get(key), str):
            record[key] = redact(record[key], secrets)
    for out in record.get("outputs", []):
        if isinstance(out.get("text"), str):
            out["text"] = redact(out["text"], secrets)
        for mime, value in list(out.get("data", {}).items()):
            if isinstance(value, str) and not mime.startswith("image/"):
                out["data"][mime] = redact(value, secrets)
    return record


def _disk_usage(root: Path, cap_entries: int = 20_000) -> int:
    total = entries = 0
    for dirpath, dirnames, filenames in os.walk(root):
        entries += len(dirnames) + len(filenames)
        if entries > cap_entries:
            return 1 << 62  # a flood of files counts as exhaustion
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _prepare_home(plan: Plan, host_home: Path, env: dict[str, str]) -> str | None:
    """Set HOME and MPLCONFIGDIR for a Python role; copy matplotlib's font cache in. Returns the seed to copy from."""
    env["HOME"] = plan.home
    host_cache = env.get("MPLCONFIGDIR")
    has_cache = bool(host_cache) and Path(str(host_cache)).is_dir()
    if plan.mounted:  # the host home is the role's read-only seed; the cache is copied from it at start
        if has_cache:
            shutil.copytree(str(host_cache), host_home / "mpl", ignore=shutil.ignore_patterns("tex.cache", "*.lock"))
        env["MPLCONFIGDIR"] = "/tmp/matplotlib"
        return plan.home + "/.seed" if has_cache else None
    if plan.uid is not None:  # its own user cannot write the host's cache: a copy in its home
        if has_cache:
            shutil.copytree(str(host_cache), host_home / ".mpl", ignore=shutil.ignore_patterns("tex.cache", "*.lock"))
        env["MPLCONFIGDIR"] = str(host_home / ".mpl")
    return None


def _chown_tree(root: Path, uid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, uid)


def draws_charts(sources: list[str]) -> bool:
    """Whether a run may draw a chart: matplotlib (imported when a chart is drawn) is then imported by the runner
    before the audit hook, which would refuse its native libraries later.

    >>> draws_charts(["charts.show(fig)"]), draws_charts(["x = 1"])
    (True, False)
    """
    return any(marker in source for source in sources for marker in ("charts", "matplotlib", "Figure", "pyplot"))


def uses_redis(sources: list[str]) -> bool:
    """Whether a run needs a grading Redis server: any of its code mentions Redis.

    >>> uses_redis(["r = get_redis()"]), uses_redis(["x = 1"])
    (True, False)
    """
    return any("redis" in source.lower() for source in sources)


def learner_code(cells: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The learner's cells as ``(exercise id of their block, source)``, for tests that read the code.

    >>> learner_code([{"kind": "course", "source": "x"}, {"kind": "answer", "grade_id": "read", "source": "a"},
    ...               {"kind": "learner", "source": "b"}, {"kind": "tests", "source": "t"}])
    [('read', 'a'), ('read', 'b')]
    """
    code, block = [], ""
    for cell in cells:
        if cell.get("kind") == "answer":
            block = str(cell.get("grade_id") or "")
        if cell.get("kind") in ("answer", "learner"):
            code.append((block, str(cell["source"])))
    return code


def learner_cell_labels(cells: list[dict[str, Any]]) -> dict[str, str]:
    """How messages name each of the learner's cells (by index): their answer cells, and cells they added.

    >>> learner_cell_labels([{"kind": "course"}, {"kind": "answer", "grade_id": "read"}, {"kind": "learner"}])
    {'1': "answer cell 'read'", '2': "the cell you added after answer cell 'read'"}
    """
    labels, after = {}, ""
    for index, cell in enumerate(cells):
        if cell.get("kind") == "answer":
            after = f"answer cell {cell.get('grade_id')!r}"
            labels[str(index)] = after
        elif cell.get("kind") == "learner":
            labels[str(index)] = f"the cell you added after {after}" if after else "a cell you added"
    return labels


def run_cells(cells: list[dict[str, Any]], *, limits: Limits, env: dict[str, str],
              judge: bool = False, learner_names: frozenset[str] = frozenset()) -> RunOutcome:
    """Run ``cells`` (dicts with 'source', 'kind', 'timeout', 'grade_id') in sandboxed processes.

    The runner gets the cells one at a time (see ``grader.sandbox.runner``); every record
    must carry the right index, the nonce of its cell and a valid HMAC, or the
    run stops as ``crashed`` with the reason. With ``judge=True`` test cells
    never reach the runner: they run in the judge (``grader.sandbox.judge``), which
    reaches the learner's names (``learner_names`` always come from the learner)
    through a narrow channel (``grader.sandbox.rpc``).
    """
    outcome = RunOutcome()
    top = Path(tempfile.mkdtemp(prefix="grade-"))
    os.chmod(top, 0o755)
    folders = {name: top / name for name in ("learner", "judge", "redis", "run-learner", "run-redis")}
    for folder in folders.values():
        folder.mkdir(mode=0o755)
    env = dict(env)
    redis_url = env.pop("REDIS_URL", None)
    base_env = dict(env)  # the judge's starts from the same clean environment
    needs_redis = bool(redis_url) or uses_redis([str(c["source"]) for c in cells])
    uids = new_uids() if limits.isolation != "off" else dict.fromkeys(("learner", "judge", "redis"))
    learner_bind = Bind(folders["run-learner"], INSIDE_RUN, writable=True)
    redis_bind = Bind(folders["run-redis"], INSIDE_REDIS)
    learner = isolation_plan("learner", folders["learner"], isolation=limits.isolation, disk_bytes=limits.disk_bytes,
                             binds=[learner_bind] if needs_redis else [], uid=uids["learner"])
    seed_inside = _prepare_home(learner, folders["learner"], env)
    if learner.chown_home and learner.uid is not None:
        _chown_tree(folders["learner"], learner.uid)
    hidden = _secret_lines(cells)
    server: RedisServer | ExternalRedis | None = None
    judge_client: _JudgeClient | None = None
    learner_sock = judge_sock = None
    proc = None
    read_fd, write_fd = os.pipe()
    errfile = tempfile.TemporaryFile()
    start = time.monotonic()
    deadline = start + limits.notebook_timeout
    connect: list[str] = []
    try:
        if needs_redis:
            # The server listens where the judge (which proxies the learner's socket) reaches it; without the
            # judge the learner's code talks to it directly.
            server_folder = folders["run-redis"] if judge else folders["run-learner"]
            if redis_url:
                server = ExternalRedis(redis_url, server_folder)
            else:
                server = RedisServer(limits.redis_backend, server_folder, folders["redis"], limits, uids["redis"])
            outcome.processes["redis"] = server.describe()
            learner_socket = learner.path(learner_bind) + "/" + REDIS_SOCKET
            env["REDIS_URL"] = inside_url(redis_url, learner_socket)
            connect.append("unix:" + learner_socket)
        if judge:
            judge_sock, learner_sock = socket.socketpair()
            judge_client = _JudgeClient(judge_sock, base_env, folders, limits, learner_names, uids["judge"],
                                        database_of(redis_url) if redis_url else 0, needs_redis,
                                        learner_bind, redis_bind, learner_cell_labels(cells), learner_code(cells))
            judge_sock.close()
            outcome.processes["judge"] = {"uid": judge_client.plan.uid, "sandboxed": judge_client.plan.mounted}
        key = secrets.token_bytes(32)
        init = {"key": key.hex(), "max_output_chars": limits.max_output_chars, "cell_timeout": limits.cell_timeout,
                "guard": limits.isolation != "off", "scratch": learner.home, "deny": learner.deny,
                "allow": learner.allow, "connect": connect,
                "preload": (["course_lib"] if judge else _imports([str(c["source"]) for c in cells
                                                                   if c.get("kind") == "tests"]))
                + (["matplotlib.figure"] if draws_charts([str(c["source"]) for c in cells]) else []),
                "seed": seed_inside}
        if learner_sock is not None:
            init["rpc_fd"] = learner_sock.fileno()
        outcome.processes["learner"] = {"uid": learner.uid, "sandboxed": learner.mounted}
        proc = subprocess.Popen(
            [*learner.prefix, sys.executable, "-m", "grader.sandbox.runner", str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile,
            pass_fds=(write_fd,) + ((learner_sock.fileno(),) if learner_sock else ()),
            cwd="/" if learner.mounted else learner.home, env=env, start_new_session=True,
            preexec_fn=lambda: _limit_resources(limits, nproc=learner.uid is not None),
        )
        os.close(write_fd)
        write_fd = -1
        if judge_client is not None:  # all processes start in parallel; the first cell may need Redis
            learner_sock.close()
            problem = judge_client.ready(deadline)
            outcome.processes["judge"].update(judge_client.identity)
            if problem:
                outcome.status, outcome.detail = problem
                return outcome
        channel = _Channel(proc, read_fd, key, deadline, None if learner.mounted else folders["learner"],
                           limits.disk_bytes)
        channel.send(init)
        outcome.status, outcome.detail = channel.run(cells, outcome.records, judge_client)
        outcome.stopped_at = channel.current if outcome.status != RunStatus.COMPLETED else None
        if outcome.status == RunStatus.CRASHED and not outcome.detail:
            try:  # the runner died: let the wrapper report how, then reap the rest
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        _kill(proc)
        proc.wait()
        if outcome.status == RunStatus.CRASHED and not outcome.detail:
            outcome.detail = describe_exit(proc.returncode, _tail(errfile, 4000))
    finally:
        if proc is not None and proc.poll() is None:
            _kill(proc)
            proc.wait()
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        errfile.close()
        for sock in (learner_sock, judge_sock):
            if sock is not None:
                sock.close()
        if judge_client is not None:
            judge_client.close()
        if server is not None:
            server.close()
        outcome.seconds = round(time.monotonic() - start, 3)
        shutil.rmtree(top, ignore_errors=True)
    outcome.records = [_redact_record(r, hidden) for r in outcome.records]
    outcome.detail = redact(outcome.detail, hidden)[:1000]
    return outcome


class _Channel:
    """The parent's end of the conversation with the runner."""

    def __init__(self, proc: subprocess.Popen, fd: int, key: bytes, deadline: float, watch: Path | None,
                 disk_bytes: int) -> None:
        self.proc, self.key, self.deadline = proc, key, deadline
        self.watch, self.disk_bytes, self.next_disk_check = watch, disk_bytes, 0.0
        self.reader = LineReader(fd, MAX_RESULT_BYTES)
        self.current: int | None = None  # the cell in flight
        self.queue: queue.SimpleQueue = queue.SimpleQueue()  # one writer thread: messages stay in order
        threading.Thread(target=_feed, args=(proc, self.queue), daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        self.queue.put((json.dumps(message) + "\n").encode())

    def run(self, cells: list[dict[str, Any]], records: list[dict[str, Any]],
            judge: "_JudgeClient | None" = None) -> tuple[str, str]:
        try:
            for index, cell in enumerate(cells):
                kind = cell.get("kind", "")
                self.current = index
                if judge is not None and kind == "tests":
                    record, problem = judge.ask({"op": "tests", "index": index, "source": str(cell["source"]),
                                                 "timeout": cell.get("timeout")}, self.deadline)
                    if record is None:
                        return problem
                    record["outputs"] = []  # what a test cell prints may quote hidden tests: never reported
                    records.append(record)
                    continue
                nonce = secrets.token_hex(16)
                source = str(cell["source"]).encode("utf-8", "surrogatepass")
                self.send({"index": index, "nonce": nonce, "kind": cell.get("kind", ""),
                           "timeout": cell.get("timeout"),
                           "source": base64.b64encode(keystream_xor(self.key, nonce, source)).decode("ascii")})
                record, problem = self.receive(index, nonce)
                if record is None:
                    return problem
                record.pop("mac", None)
                record.pop("nonce", None)
                records.append(record)
                if judge is not None and kind == "course":  # the judge runs the course's definitions too
                    _, problem = judge.ask({"op": "course", "index": index, "source": str(cell["source"]),
                                            "whole": cell.get("grade_id") == SETUP_ID,
                                            "timeout": cell.get("timeout")}, self.deadline)
                    if problem[0] != RunStatus.COMPLETED:
                        return problem
            self.current = None
            nonce = secrets.token_hex(16)
            self.send({"end": nonce})
            record, problem = self.receive(None, nonce)
            return problem if record is None else (RunStatus.COMPLETED, "")
        finally:
            self.reader.close()

    def _watch_disk(self, now: float) -> None:
        if self.watch is not None and now >= self.next_disk_check:
            self.next_disk_check = now + 1.0
            if _disk_usage(self.watch) > self.disk_bytes:
                raise _DiskFull

    def receive(self, index: int | None, nonce: str) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        try:
            line = self.reader.read(self.deadline, self._watch_disk)
        except TimeoutError:
            return None, (RunStatus.TIMED_OUT, "the notebook ran past its total time budget and was stopped")
        except _DiskFull:
            return None, (RunStatus.CRASHED, f"the notebook wrote more than {self.disk_bytes // 1024**2} MB "
                                     f"to its scratch folder and was stopped")
        except OverflowError:
            return None, (RunStatus.CRASHED, "the notebook flooded the result channel and was stopped")
        if line is None:  # every writer closed: the child ended
            return None, (RunStatus.CRASHED, "")
        forged = (RunStatus.CRASHED, "the result channel carried a record the grader did not write (forged or "
                             "corrupted); grading stopped at that cell")
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None, forged
        if not isinstance(record, dict) or not isinstance(record.get("mac"), str) \
                or not hmac.compare_digest(record["mac"], mac(self.key, record)) or record.get("nonce") != nonce:
            return None, forged
        if index is None:
            return (record, (RunStatus.COMPLETED, "")) if record.get("done") is True else (None, forged)
        if record.get("index") != index or record.get("status") not in RECORD_STATUSES \
                or not isinstance(record.get("outputs", []), list):
            return None, forged
        return record, (RunStatus.COMPLETED, "")


class _DiskFull(Exception):
    pass


class _JudgeClient:
    """The parent's end of the judge (``grader.sandbox.judge``), started in its own sandbox: it runs the test cells."""

    def __init__(self, sock: socket.socket, env: dict[str, str], folders: dict[str, Path], limits: Limits,
                 learner_names: frozenset[str], uid: int | None, db: int, redis: bool,
                 learner_bind: Bind, redis_bind: Bind, labels: dict[str, str],
                 code: list[tuple[str, str]]) -> None:
        home = folders["judge"]
        binds = [learner_bind, redis_bind] if redis else []
        self.plan = isolation_plan("judge", home, isolation=limits.isolation, disk_bytes=limits.disk_bytes,
                                   binds=binds, uid=uid)
        judge_env = {k: v for k, v in env.items() if k != "REDIS_URL"}
        seed = _prepare_home(self.plan, home, judge_env)
        init: dict[str, Any] = {"learner_names": sorted(learner_names), "index": "ready", "seed": seed,
                                "course_root": str(PACKAGE_ROOT), "cells": labels, "learner_code": code,
                                "uses_redis": redis}
        if redis:
            server = self.plan.path(redis_bind) + "/" + REDIS_SOCKET
            judge_env["REDIS_URL"] = f"unix://{server}?db={db}"
            init.update(redis_server=server, redis_listen=self.plan.path(learner_bind) + "/" + REDIS_SOCKET)
            if self.plan.uid is not None:  # the judge serves the learner's socket in that folder
                os.chown(learner_bind.outside, self.plan.uid, self.plan.uid)
        if self.plan.chown_home and self.plan.uid is not None:
            _chown_tree(home, self.plan.uid)
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [*self.plan.prefix, sys.executable, "-m", "grader.sandbox.judge", str(sock.fileno())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errfile, pass_fds=(sock.fileno(),),
            cwd="/" if self.plan.mounted else self.plan.home, env=judge_env, start_new_session=True,
            preexec_fn=lambda: _limit_resources(limits, nproc=self.plan.uid is not None),
        )
        self.cell_timeout = limits.cell_timeout
        self.reader = LineReader(self.proc.stdout.fileno(), MAX_JUDGE_BYTES)
        self.identity: dict[str, Any] = {}
        self._write(init)

    def ready(self, deadline: float) -> tuple[str, str] | None:
        """Wait until the judge serves the learner's Redis socket; a problem as (status, detail)."""
        reply, problem = self._receive({"index": "ready"}, min(deadline, time.monotonic() + 60), deadline)
        if reply is not None and isinstance(reply.get("identity"), dict):
            self.identity = reply["identity"]
        return None if reply is not None else problem

    def _write(self, message: dict[str, Any]) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def ask(self, message: dict[str, Any], deadline: float) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        """Send one request; wait for its reply until the cell's budget (plus a margin) or the notebook's ends."""
        message = {**message, "timeout": float(message.get("timeout") or self.cell_timeout)}
        try:
            self._write(message)
        except (BrokenPipeError, OSError):
            return None, (RunStatus.CRASHED, self._failure())
        until = min(deadline, time.monotonic() + message["timeout"] + 10)
        return self._receive(message, until, deadline)

    def _receive(self, message: dict[str, Any], until: float,
                 deadline: float) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        try:
            line = self.reader.read(until)
        except TimeoutError:
            return None, (RunStatus.TIMED_OUT, "the notebook ran past its total time budget and was stopped"
                          if time.monotonic() >= deadline else "the tests did not finish within their budget")
        except OverflowError:
            return None, (RunStatus.CRASHED, "the grader's test process flooded its channel")
        if line is None:
            return None, (RunStatus.CRASHED, self._failure())
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            reply = None
        if type(reply) is not dict:
            return None, (RunStatus.CRASHED, "the grader's test process sent something that is not a reply")
        if reply.get("index") != message.get("index"):
            return None, (RunStatus.CRASHED, "the grader's test process answered out of order")
        reply.pop("index", None)
        if message.get("op") == "tests" and reply.get("status") not in RECORD_STATUSES:
            return None, (RunStatus.CRASHED, "the grader's test process sent a malformed record")
        return reply, (RunStatus.COMPLETED, "")

    def _failure(self) -> str:
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        tail = _tail(self.errfile, 2000).strip().splitlines()[-1:] or [""]
        return f"the grader's test process failed (exit code {self.proc.returncode}): {tail[0][:300]}"

    def close(self) -> None:
        try:
            self._write({"op": "end"})
        except (BrokenPipeError, OSError, ValueError):
            pass
        _kill(self.proc)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.reader.close()
        self.errfile.close()


def _tail(stream: Any, nbytes: int) -> str:
    """The last ``nbytes`` a child process wrote to ``stream`` (its stderr file), as text."""
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - nbytes))
    return stream.read().decode("utf-8", "replace")


def _feed(proc: subprocess.Popen, messages: queue.SimpleQueue) -> None:
    """Write messages to the child's stdin in order (a child that stops reading only blocks this thread)."""
    try:
        while True:
            proc.stdin.write(messages.get())
            proc.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
