"""Small helpers shared by the tests: loopback ports, servers that must come up and go down, cell metadata,
workers in threads."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

__all__ = ["free_port", "wait_for_http", "stop_server", "nbgrader_meta", "in_threads", "hidden_ancestor"]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, *, timeout: float = 120, what: str = "the server") -> None:
    """Poll ``url`` until it answers; fail early if ``process`` exits. Raises RuntimeError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with code {process.returncode} before answering {url}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer {url} within {timeout:g} s")
            time.sleep(0.2)  # polling for a server to come up, not a timing assertion


def stop_server(process: subprocess.Popen) -> None:
    """Stop a Jupyter server the way Ctrl+C twice does, killing it if it does not stop."""
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def nbgrader_meta(**fields) -> dict:
    """Cell metadata for an nbgrader cell (schema 3): locked, not graded, unless ``fields`` say otherwise."""
    base = {"grade": False, "solution": False, "locked": True, "schema_version": 3}
    base.update(fields)
    return {"nbgrader": base}


def in_threads(worker, n: int, *, seconds: float = 60, still_waiting=lambda: "") -> None:
    """Run worker(0..n-1) in n threads; every one must finish within ``seconds`` in all and without an error.

    A thread still running fails the test with ``still_waiting()`` (say, the calls a channel still waits for).
    """
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            worker(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    end = time.monotonic() + seconds
    for t in threads:
        t.join(max(end - time.monotonic(), 0))
    assert not any(t.is_alive() for t in threads), f"deadlock: still waiting for {still_waiting()}"
    assert not errors, errors[:3]


def hidden_ancestor(path: Path) -> tuple[Path, Path] | None:
    """(A, A/child) for the first folder on ``path`` that other users cannot enter (e.g. /root with pyenv)."""
    parts = path.parts
    for i in range(1, len(parts) - 1):
        folder = Path(*parts[: i + 1])
        if not folder.stat().st_mode & 0o001:
            return folder, Path(*parts[: i + 2])
    return None
