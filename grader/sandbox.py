"""The parent side: run learner code in a separate, isolated, limited process.

Each run gets a fresh process (under bubblewrap when available: see
``grader.isolation``), a private scratch folder, a clean environment,
resource limits and a wall-clock budget enforced by killing the whole
sandbox. The parent talks to ``grader.runner`` cell by cell: it sends one
cell (its source encrypted with a per-run key), waits for exactly one
authenticated record, and only then sends the next, so hidden tests are never
in the learner's process before they run and blind writes cannot forge a
result. Test cells go to the trusted judge (``grader.judge``, started here too,
outside the sandbox), which reaches the learner's names over a socket pair and
serves the learner's Redis socket; the grade is decided from the judge's
records. ``Limits(isolation="off")`` is the unprotected baseline for measurements.
See docs/SECURITY.md.
"""

from __future__ import annotations

import ast
import base64
import hmac
import json
import os
import queue
import secrets
import socket
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

from .isolation import INSIDE_RUN, ISOLATION_MODES
from .redis_gateway import RedisProxy
from .redis_urls import inside_url, server_address
from .isolation import plan as isolation_plan
from .runner import keystream_xor, mac

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
    disk_bytes: int = 256 * 1024**2  # scratch folder (and /tmp) of the learner's process
    max_processes: int = 256  # processes and threads of the sandbox user (RLIMIT_NPROC)
    isolation: str = "auto"  # "auto": every protection this machine offers; "off": the bare baseline

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "memory_bytes", "file_bytes", "max_output_chars",
                     "disk_bytes", "max_processes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)!r}")
        if self.isolation not in ISOLATION_MODES:
            raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {self.isolation!r}")


@dataclass
class RunOutcome:
    """What came back: one record per cell that finished, and how the process ended."""

    records: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"  # completed | timed_out | crashed
    detail: str = ""
    seconds: float = 0.0
    protections: list[str] = field(default_factory=list)


def _limit_resources(limits: Limits, nproc: bool) -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    cpu = int(limits.notebook_timeout) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc:  # counted per user: only meaningful when the child runs as the sandbox user
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))


def _describe_exit(code: int | None, stderr_tail: str) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = {"SIGKILL": " (killed: out of memory or over its time budget)",
                "SIGXCPU": " (CPU time limit reached)", "SIGSEGV": " (the interpreter crashed)",
                "SIGXFSZ": " (wrote a file larger than allowed)"}.get(name, "")
        return f"the notebook's process died from {name}{hint}"
    if code is not None and code > 128 and code - 128 in {s.value for s in signal.Signals}:
        return _describe_exit(128 - code, stderr_tail)  # bwrap reports a signal death as 128 + signal
    last = stderr_tail.strip().splitlines()[-1:] or [""]
    return f"the notebook's process exited early with code {code}" + (f": {last[0][:300]}" if last[0] else "")


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


def run_cells(cells: list[dict[str, Any]], *, limits: Limits, env: dict[str, str],
              judge: bool = False, learner_names: frozenset[str] = frozenset()) -> RunOutcome:
    """Run ``cells`` (dicts with 'source', 'kind', 'timeout', 'grade_id') in a sandboxed child process.

    The child gets the cells one at a time (see ``grader.runner``); every record
    must carry the right index, the nonce of its cell and a valid HMAC, or the
    run stops as ``crashed`` with the reason. With ``judge=True`` test cells
    never reach the child: they run in a trusted process (``grader.judge``)
    that reaches the learner's names (``learner_names`` always come from the
    learner) through a narrow channel (``grader.rpc``).
    """
    outcome = RunOutcome()
    workdir = Path(tempfile.mkdtemp(prefix="grade-"))
    rundir = Path(tempfile.mkdtemp(prefix="grade-run-"))
    os.chmod(rundir, 0o755)
    redis_url = env.get("REDIS_URL")
    plan = isolation_plan(workdir, rundir, isolation=limits.isolation, disk_bytes=limits.disk_bytes,
                          redis=bool(redis_url) or judge)
    outcome.protections = plan.protections
    env = {**env, "HOME": plan.scratch}
    seed_inside = None
    mpl_cache = env.get("MPLCONFIGDIR")
    if plan.scratch != str(workdir):  # bubblewrap: the host's matplotlib cache is copied in through a seed
        if mpl_cache and Path(mpl_cache).is_dir():
            shutil.copytree(mpl_cache, workdir / "mpl", ignore=shutil.ignore_patterns("tex.cache", "*.lock"))
            seed_inside = plan.scratch + "/.seed"
        env["MPLCONFIGDIR"] = "/tmp/matplotlib"
    elif plan.uid is not None:  # the sandbox user cannot write the host's cache: a copy in the scratch folder
        if mpl_cache and Path(mpl_cache).is_dir():
            shutil.copytree(mpl_cache, workdir / ".mpl", ignore=shutil.ignore_patterns("tex.cache", "*.lock"))
        env["MPLCONFIGDIR"] = str(workdir / ".mpl")
    connect: list[str] = []
    proxy = None
    inside = (INSIDE_RUN if plan.scratch != str(workdir) else str(rundir)) + "/redis.sock"
    if judge:  # the judge serves the learner's Redis: the real server's proxy, or its own fakeredis
        env["REDIS_URL"] = inside_url(redis_url, inside)
        connect.append("unix:" + inside)
    elif redis_url:
        if plan.network_isolated:
            proxy = RedisProxy(redis_url, rundir / "redis.sock")
            env["REDIS_URL"] = inside_url(redis_url, inside)
            connect.append("unix:" + inside)
        else:
            kind, address = server_address(redis_url)
            connect.append(f"unix:{address}" if kind == "unix" else f"tcp:{address[0]}:{address[1]}")
    if plan.uid is not None:
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, plan.uid, plan.uid)
    key = secrets.token_bytes(32)
    init = {"key": key.hex(), "max_output_chars": limits.max_output_chars, "cell_timeout": limits.cell_timeout,
            "guard": limits.isolation != "off", "scratch": plan.scratch, "deny": plan.deny, "allow": plan.allow,
            "connect": connect,
            "preload": ["course_lib"] if judge else _imports([str(c["source"]) for c in cells if c.get("kind") == "tests"]),
            "seed": seed_inside}
    learner_sock = judge_sock = None
    judge_client = None
    hidden = _secret_lines(cells)
    read_fd, write_fd = os.pipe()
    errfile = tempfile.TemporaryFile()
    start = time.monotonic()
    proc = None
    try:
        if judge:
            judge_sock, learner_sock = socket.socketpair()
            init["rpc_fd"] = learner_sock.fileno()
            judge_client = _JudgeClient(judge_sock, env, rundir, limits, learner_names, redis_url)
            judge_sock.close()
        proc = subprocess.Popen(
            [*plan.prefix, sys.executable, "-m", "grader.runner", str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile,
            pass_fds=(write_fd,) + ((learner_sock.fileno(),) if learner_sock else ()), cwd=plan.scratch if not plan.prefix or plan.scratch == str(workdir) else "/",
            env=env, start_new_session=True,
            preexec_fn=lambda: _limit_resources(limits, nproc=plan.uid is not None or bool(plan.prefix)),
        )
        os.close(write_fd)
        write_fd = -1
        if judge_client is not None:  # both processes started in parallel; the first cell may need its Redis
            learner_sock.close()
            problem = judge_client.ready(start + limits.notebook_timeout)
            if problem:
                outcome.status, outcome.detail = problem
                return outcome
        channel = _Channel(proc, read_fd, key, start + limits.notebook_timeout,
                           workdir if plan.scratch == str(workdir) else None, limits.disk_bytes)
        channel.send(init)
        outcome.status, outcome.detail = channel.run(cells, outcome.records, judge_client)
        if outcome.status == "crashed" and not outcome.detail:
            try:  # the runner died: let the wrapper report how, then reap the rest
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        _kill(proc)
        proc.wait()
        if outcome.status == "crashed" and not outcome.detail:
            outcome.detail = _describe_exit(proc.returncode, _tail(errfile, 4000))
    finally:
        if proc is not None and proc.poll() is None:
            _kill(proc)
            proc.wait()
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        errfile.close()
        if proxy:
            proxy.close()
        for sock in (learner_sock, judge_sock):
            if sock is not None:
                sock.close()
        if judge_client is not None:
            judge_client.close()
        outcome.seconds = round(time.monotonic() - start, 3)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(rundir, ignore_errors=True)
    outcome.records = [_redact_record(r, hidden) for r in outcome.records]
    outcome.detail = redact(outcome.detail, hidden)[:1000]
    return outcome


class _Channel:
    """The parent's end of the conversation with the runner."""

    def __init__(self, proc: subprocess.Popen, fd: int, key: bytes, deadline: float, watch: Path | None,
                 disk_bytes: int) -> None:
        self.proc, self.fd, self.key, self.deadline = proc, fd, key, deadline
        self.watch, self.disk_bytes = watch, disk_bytes
        self.buffer, self.total, self.next_disk_check = b"", 0, 0.0
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()  # one writer thread: messages stay in order
        threading.Thread(target=_feed, args=(proc, self.queue), daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        self.queue.put((json.dumps(message) + "\n").encode())

    def run(self, cells: list[dict[str, Any]], records: list[dict[str, Any]],
            judge: "_JudgeClient | None" = None) -> tuple[str, str]:
        try:
            for index, cell in enumerate(cells):
                kind = cell.get("kind", "")
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
                                            "whole": cell.get("grade_id") == "setup"}, self.deadline)
                    if problem[0] != "completed":
                        return problem
            nonce = secrets.token_hex(16)
            self.send({"end": nonce})
            record, problem = self.receive(None, nonce)
            return problem if record is None else ("completed", "")
        finally:
            self.selector.close()

    def receive(self, index: int | None, nonce: str) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        while b"\n" not in self.buffer:
            now = time.monotonic()
            if now >= self.deadline:
                return None, ("timed_out", "the notebook ran past its total time budget and was stopped")
            if self.watch is not None and now >= self.next_disk_check:
                self.next_disk_check = now + 1.0
                if _disk_usage(self.watch) > self.disk_bytes:
                    return None, ("crashed", f"the notebook wrote more than {self.disk_bytes // 1024**2} MB "
                                             f"to its scratch folder and was stopped")
            if not self.selector.select(timeout=min(self.deadline - now, 1.0)):
                continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:  # every writer closed: the child ended
                return None, ("crashed", "")
            self.total += len(chunk)
            if self.total > MAX_RESULT_BYTES:
                return None, ("crashed", "the notebook flooded the result channel and was stopped")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        forged = ("crashed", "the result channel carried a record the grader did not write (forged or "
                             "corrupted); grading stopped at that cell")
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None, forged
        if not isinstance(record, dict) or not isinstance(record.get("mac"), str) \
                or not hmac.compare_digest(record["mac"], mac(self.key, record)) or record.get("nonce") != nonce:
            return None, forged
        if index is None:
            return (record, ("completed", "")) if record.get("done") is True else (None, forged)
        if record.get("index") != index or record.get("status") not in ("ok", "error", "timeout") \
                or not isinstance(record.get("outputs", []), list):
            return None, forged
        return record, ("completed", "")


class _JudgeClient:
    """The parent's end of the trusted judge process (``grader.judge``): it runs the test cells."""

    def __init__(self, sock: socket.socket, env: dict[str, str], rundir: Path, limits: Limits,
                 learner_names: frozenset[str], redis_url: str | None) -> None:
        home = rundir / "judge"
        home.mkdir()
        judge_env = {**env, "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl")}
        judge_env.pop("REDIS_URL", None)  # the judge's get_redis(): the real server, or the fakeredis it serves
        if redis_url:
            judge_env["REDIS_URL"] = redis_url
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.judge", str(sock.fileno())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errfile, pass_fds=(sock.fileno(),),
            cwd=home, env=judge_env, start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)),
        )
        self.cell_timeout = limits.cell_timeout
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self._write({"learner_names": sorted(learner_names), "redis_socket": str(rundir / "redis.sock"),
                     "index": "ready"})

    def ready(self, deadline: float) -> tuple[str, str] | None:
        """Wait until the judge serves the learner's Redis socket; a problem as (status, detail)."""
        reply, problem = self._receive({"index": "ready"}, min(deadline, time.monotonic() + 60), deadline)
        return None if reply is not None else problem

    def _write(self, message: dict[str, Any]) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def ask(self, message: dict[str, Any], deadline: float) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        """Send one request; wait for its reply until the cell's budget (plus a margin) or the notebook's ends."""
        try:
            self._write(message)
        except (BrokenPipeError, OSError):
            return None, ("crashed", self._failure())
        until = min(deadline, time.monotonic() + float(message.get("timeout") or self.cell_timeout) + 10)
        return self._receive(message, until, deadline)

    def _receive(self, message: dict[str, Any], until: float,
                 deadline: float) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        while b"\n" not in self.buffer:
            now = time.monotonic()
            if now >= until:
                return None, ("timed_out", "the notebook ran past its total time budget and was stopped"
                              if now >= deadline else "the tests did not finish within their budget")
            if not self.selector.select(timeout=min(until - now, 1.0)):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                return None, ("crashed", self._failure())
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        reply = json.loads(line)
        if reply.get("index") != message.get("index"):
            return None, ("crashed", "the grader's test process answered out of order")
        reply.pop("index", None)
        return reply, ("completed", "")

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
        self.selector.close()
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
