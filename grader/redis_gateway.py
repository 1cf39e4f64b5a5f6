"""The learner's only way to Redis while grading: a unix socket the grader serves.

The sandbox has no network. Its ``REDIS_URL`` points at a unix socket that the
grader serves outside the sandbox, in one of two ways:

- :class:`RedisProxy` forwards every connection to the real server the grader
  was given (``--redis-url``);
- :class:`EmbeddedRedisServer` answers from a fakeredis server in the judge's
  process, so the tests (``get_redis()`` in the judge) and the learner's code see
  the same keys without any real server.

Both can be cut off (:meth:`set_outage`): existing connections are dropped and
new ones closed at once, so ``course_lib.redis_outage`` in a test makes the
learner's Redis calls fail as a real outage would.
"""

from __future__ import annotations

import itertools
import os
import queue
import select
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any
import fakeredis
from fakeredis._clients._tcp_server import TCPFakeRequestHandler

from .redis_urls import server_address

__all__ = ["RedisProxy", "EmbeddedRedisServer"]

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


class _Handler(TCPFakeRequestHandler):
    """fakeredis's TCP handler, on a unix socket: every connection gets an id of its own."""

    def setup(self) -> None:
        self.client_address = ("unix", next(self.server.client_ids))
        if self.server.outage:
            raise ConnectionError("Redis is down (a simulated outage)")
        super().setup()
        self.writer.writer = self.replies = _WaitingWriter(self.connection)
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        if hasattr(self, "replies"):
            self.replies.close()
        super().finish()


class _WaitingWriter:
    """Replies are queued and written by a thread of their own, as a Redis server buffers its output.

    The client may write a whole pipeline before reading any reply: a handler that
    waited for room to write would deadlock with it. fakeredis makes the socket
    non-blocking (for its reads), so the thread waits for room with select().
    """

    MAX_QUEUED = 256 * 1024 * 1024

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.queue, self.queued = sock, queue.SimpleQueue(), 0
        threading.Thread(target=self._drain, daemon=True).start()

    def write(self, data: bytes) -> int:
        self.queued += len(data)
        if self.queued > self.MAX_QUEUED:
            raise ConnectionError("the client stopped reading its replies")
        self.queue.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def _drain(self) -> None:
        try:
            while (data := self.queue.get()) is not None:
                self.queued -= len(data)
                view = memoryview(data)
                while view:
                    try:
                        view = view[self.sock.send(view):]
                    except BlockingIOError:
                        select.select([], [self.sock], [], 1.0)
        except OSError:
            pass

    def close(self) -> None:
        self.queue.put(None)


class _UnixFakeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = BACKLOG  # lessons open many connections at once (thread-stress demos)

    def __init__(self, path: str, fake_server: fakeredis.FakeServer) -> None:
        self._shutdown_event = threading.Event()
        self.fake_server = fake_server
        self.client_ids = itertools.count(1)
        self.clients: dict[Any, Any] = {}
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.outage = False
        super().__init__(path, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # a refused or dropped connection
        pass


class EmbeddedRedisServer:
    """A fakeredis server in this process, also served on a unix socket for the learner's process.

    ``server`` is the fakeredis ``FakeServer``: clients in this process use it
    directly (``fakeredis.FakeRedis(server=...)``), the learner's clients through
    the socket, and both see the same keys.
    """

    def __init__(self, socket_path: Path) -> None:
        self.server = fakeredis.FakeServer()
        self._unix = _UnixFakeServer(str(socket_path), self.server)
        os.chmod(socket_path, 0o666)
        threading.Thread(target=self._unix.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def set_outage(self, down: bool) -> None:
        """Cut every connection and refuse new ones (``down``), or serve again."""
        self._unix.outage = down
        self.server.connected = not down
        if down:
            with self._unix.lock:
                connections, self._unix.connections = self._unix.connections, set()
            for s in connections:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._unix._shutdown_event.set()
        self._unix.shutdown()
        self._unix.server_close()


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
