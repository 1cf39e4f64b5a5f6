"""The learner's only way to Redis while grading: a unix socket that forwards bytes to the grading server.

The learner's sandbox has no network. Its ``REDIS_URL`` points at a unix socket
the judge serves with a :class:`RedisProxy` to the grading Redis server (one per
submission, in a sandbox of its own: see ``grader.sandbox.redis_service``); the parent
serves one the same way to a server given with ``--redis-url``. A proxy only
copies bytes: it parses nothing the learner sends.

A proxy can be cut off (:meth:`RedisProxy.set_outage`): existing connections are
dropped and new ones closed at once, so ``course_lib.redis_outage`` in a test
makes the learner's Redis calls fail as a real outage would.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from .redis_urls import server_address

__all__ = ["RedisProxy"]

BACKLOG = 128  # connections waiting to be accepted


class RedisProxy:
    """Forward a unix socket inside the sandbox to the Redis server the grader was given."""

    def __init__(self, url: str, socket_path: Path) -> None:
        kind, address = server_address(url)
        self.target: Any = (socket.AF_UNIX if kind == "unix" else socket.AF_INET, address)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(socket_path))
        os.chmod(socket_path, 0o666)
        self.listener.listen(BACKLOG)
        self.closed = False
        self.outage = False
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def set_outage(self, down: bool) -> None:
        """Cut every connection and refuse new ones (``down``), or serve again."""
        self.outage = down
        if down:
            with self._lock:
                sockets, self.sockets = self.sockets, []
            for s in sockets:
                _close(s)

    def _accept(self) -> None:
        while not self.closed:
            try:
                inner, _ = self.listener.accept()
            except OSError:
                return
            if self.outage:
                _close(inner)
                continue
            threading.Thread(target=self._connect, args=(inner,), daemon=True).start()

    def _connect(self, inner: socket.socket) -> None:
        """Join one learner connection to a new connection to the server (in its own thread)."""
        try:
            outer = socket.socket(self.target[0], socket.SOCK_STREAM)
            outer.settimeout(5)
            outer.connect(self.target[1])
            outer.settimeout(None)
        except OSError:
            _close(inner)
            return
        with self._lock:
            self.sockets += [inner, outer]
        for a, b in ((inner, outer), (outer, inner)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(1 << 16):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        for s in [self.listener, *self.sockets]:
            _close(s)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
