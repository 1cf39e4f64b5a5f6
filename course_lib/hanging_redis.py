"""Redis servers that fail the way production ones do: hanging, not refusing.

A server that is down refuses connections at once; a server that is overloaded,
paused or behind a broken network path *accepts* the connection and never answers.
Two tools show and test the second kind:

- ``silent_server()``: a real TCP server on loopback that accepts connections, reads
  what it is sent and never replies. Point a real redis-py client at it to measure
  what its timeouts and retries cost (``with silent_server() as s: redis.Redis.from_url(s.url)``).
- ``HangingRedis``: a Redis client in front of a real one, whose server can be made to
  hang on a fake clock: each command then costs its timeout in *simulated* seconds and
  raises ``redis.TimeoutError``, so tests of a circuit breaker never wait.

>>> from course_lib.clock import FakeClock
>>> from course_lib.redis_conn import get_redis
>>> clock = FakeClock(start=0)
>>> client = HangingRedis(get_redis(), clock, timeout=0.5, retries=1)
>>> client.set("course:faults", "1")
True
>>> with client.hanging():
...     try:
...         client.get("course:faults")
...     except redis.TimeoutError:
...         print(f"gave up after {clock():.1f} simulated seconds")
gave up after 1.0 simulated seconds
>>> client.get("course:faults"), client.commands, client.waited
('1', 3, 1.0)
>>> client.delete("course:faults")
1
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any, Callable, Iterator

import redis

__all__ = ["HangingRedis", "SilentServer", "silent_server"]


class HangingRedis:
    """A client for ``client``'s server that can be made to hang (``with hanging():``), on ``clock``.

    Healthy, every command is sent to ``client``. Hanging, every command makes
    ``1 + retries`` attempts that each wait ``timeout`` seconds on ``clock`` (a
    ``FakeClock``, advanced here) and then raises ``redis.TimeoutError``: what a client
    with ``socket_timeout=timeout`` and that many retries meets when the server
    accepts connections and never answers. ``commands`` counts the commands sent to
    it (answered or not) and ``waited`` the simulated seconds spent waiting.
    Code under test may send the data commands below; it cannot end the hang.
    """

    __learner_api__ = frozenset({"get", "set", "delete", "unlink", "exists", "ttl", "mget", "incr", "ping",
                                 "commands", "waited", "timeout", "retries"})

    def __init__(self, client: redis.Redis, clock: Callable[[], float], *, timeout: float = 0.5,
                 retries: int = 0) -> None:
        if timeout <= 0 or retries < 0:
            raise ValueError(f"HangingRedis needs timeout > 0 and retries >= 0, got timeout={timeout!r}, "
                             f"retries={retries!r}")
        self.client, self.clock, self.timeout, self.retries = client, clock, timeout, retries
        self.commands = 0
        self.waited = 0.0
        self._hanging = False
        self._lock = threading.Lock()

    @property
    def is_hanging(self) -> bool:
        return self._hanging

    @contextlib.contextmanager
    def hanging(self) -> Iterator[None]:
        """Inside the block the server accepts every command and answers none."""
        self._hanging = True
        try:
            yield
        finally:
            self._hanging = False

    def _send(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.commands += 1
            hanging = self._hanging
        if hanging:
            attempts = 1 + self.retries
            for _ in range(attempts):
                self.clock.advance(self.timeout)
            with self._lock:
                self.waited += attempts * self.timeout
            raise redis.TimeoutError(
                f"Timeout reading from socket: {name.upper()} waited {attempts} x {self.timeout:g} s "
                f"(the server accepted the connection and never answered)")
        return getattr(self.client, name)(*args, **kwargs)

    def get(self, name: str) -> Any:
        return self._send("get", name)

    def set(self, name: str, value: Any, **kwargs: Any) -> Any:
        return self._send("set", name, value, **kwargs)

    def delete(self, *names: str) -> int:
        return self._send("delete", *names)

    def unlink(self, *names: str) -> int:
        return self._send("unlink", *names)

    def exists(self, *names: str) -> int:
        return self._send("exists", *names)

    def ttl(self, name: str) -> int:
        return self._send("ttl", name)

    def mget(self, keys: Any, *args: str) -> list[Any]:
        return self._send("mget", keys, *args)

    def incr(self, name: str, amount: int = 1) -> int:
        return self._send("incr", name, amount)

    def ping(self) -> bool:
        return self._send("ping")

    def __repr__(self) -> str:
        state = "hanging" if self._hanging else "healthy"
        return f"HangingRedis({state}, timeout={self.timeout:g} s, retries={self.retries})"


class SilentServer:
    """A loopback TCP server that accepts connections and never answers (see :func:`silent_server`)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.host, self.port = self._listener.getsockname()
        self.connections = 0  # connections accepted so far: one per attempt of a client that reconnects
        self._open: list[socket.socket] = []
        self._closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    @staticmethod
    def _swallow(conn: socket.socket) -> None:
        try:
            while conn.recv(1 << 16):
                pass  # read the command, never reply
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        with self._lock:
            sockets, self._open = [self._listener, *self._open], []
        for s in sockets:
            try:
                s.close()
            except OSError:
                pass


@contextlib.contextmanager
def silent_server() -> Iterator[SilentServer]:
    """Run a server on 127.0.0.1 that accepts connections, reads, and never replies; closed on exit.

    ``server.url`` is a redis:// URL for it and ``server.connections`` counts the
    connections clients opened (a client that retries usually reconnects first).
    """
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()
