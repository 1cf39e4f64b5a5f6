"""A fakeredis server in a process of its own, with its Lua locked down: the grading Redis without redis-server.

Started by ``grader.sandbox.parent`` (inside its own sandbox, see ``grader.sandbox.isolation``) as
``python -m grader.sandbox.fakeredis_server SOCKET`` when the machine has no ``redis-server``.
It serves one submission's keys on a unix socket, to the judge and (through the
judge's proxy) to the learner's code, and nothing else.

fakeredis builds its Lua runtimes with lupa's defaults, which give a script the
``python`` global (``python.eval`` runs Python in the server's process). Here both
runtimes (EVAL's and FUNCTION's) are made with ``register_eval=False``,
``register_builtins=False`` and an attribute filter that refuses every Python
attribute, and once fakeredis has set them up the globals a script could escape
with are removed: ``python``, ``load``, ``loadstring``, ``loadfile``, ``dofile``,
``require``, ``module``, ``package``, ``io``, ``os`` and ``debug``. Real Redis
refuses the same (its Lua is sandboxed by design). Locks and the scripts the
lessons teach keep working.

>>> runtime = locked_runtime()
>>> runtime.eval("type(python)"), runtime.eval("type(io)"), runtime.eval("type(string.format)")
(b'nil', b'nil', b'function')
"""

from __future__ import annotations

import itertools
import os
import queue
import select
import signal
import socket
import socketserver
import sys
import threading
from typing import Any

import fakeredis
from fakeredis._clients._tcp_server import TCPFakeRequestHandler
from fakeredis.commands_mixins import scripting_mixin

__all__ = ["main", "lock_down_lua", "locked_runtime", "refuse_admin_commands", "STRIPPED_GLOBALS"]

STRIPPED_GLOBALS = ("python", "load", "loadstring", "loadfile", "dofile", "require", "module", "package", "io",
                    "os", "debug", "newproxy")
BACKLOG = 128  # connections waiting to be accepted (lessons open many at once in thread-stress demos)


def _refuse(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not reachable from a script")


def _strip(runtime: Any) -> None:
    runtime.execute("\n".join(f"{name} = nil" for name in STRIPPED_GLOBALS))


class _LockedLua:
    """lupa's Lua module, but every runtime it makes has no Python bridge a script could use."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def LuaRuntime(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - lupa's name
        kwargs.update(register_eval=False, register_builtins=False, attribute_filter=_refuse)
        runtime = self._module.LuaRuntime(*args, **kwargs)
        runtime.execute("python = nil")  # fakeredis's own set-up code needs the rest until it is done
        return runtime


def locked_runtime() -> Any:
    """A Lua runtime as the locked-down server makes one, stripped as after set-up (for tests)."""
    runtime = _LockedLua(scripting_mixin.LUA_MODULE._module if isinstance(scripting_mixin.LUA_MODULE, _LockedLua)
                         else scripting_mixin.LUA_MODULE).LuaRuntime(encoding=None)
    _strip(runtime)
    return runtime


def lock_down_lua() -> None:
    """Make every Lua runtime fakeredis creates from now on a locked-down one (idempotent)."""
    if isinstance(scripting_mixin.LUA_MODULE, _LockedLua):
        return
    scripting_mixin.LUA_MODULE = _LockedLua(scripting_mixin.LUA_MODULE)
    original_runtime = scripting_mixin.ScriptingCommandsMixin._get_server_runtime

    def _get_server_runtime(self: Any, server: Any) -> Any:
        fresh = not hasattr(server, "_lua_runtime")
        runtime = original_runtime(self, server)
        if fresh:
            _strip(server._lua_runtime)
        return runtime

    scripting_mixin.ScriptingCommandsMixin._get_server_runtime = _get_server_runtime

    class FunctionsEngine(scripting_mixin.FunctionsEngine):  # FUNCTION LOAD / FCALL's interpreter
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            _strip(self.runtime)

    scripting_mixin.FunctionsEngine = FunctionsEngine


class _Handler(TCPFakeRequestHandler):
    """fakeredis's TCP handler, on a unix socket: every connection gets an id of its own."""

    def setup(self) -> None:
        self.client_address = ("unix", next(self.server.client_ids))
        super().setup()
        self.writer.writer = self.replies = _QueuedWriter(self.connection)

    def finish(self) -> None:
        if hasattr(self, "replies"):
            self.replies.close()
        super().finish()


class _QueuedWriter:
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


class UnixFakeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A fakeredis ``FakeServer`` served on a unix socket."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, path: str) -> None:
        self._shutdown_event = threading.Event()  # what fakeredis's handler loops on
        self.fake_server = fakeredis.FakeServer()
        self.client_ids = itertools.count(1)
        self.clients: dict[Any, Any] = {}
        super().__init__(path, _Handler)
        os.chmod(path, 0o666)

    def handle_error(self, request: Any, client_address: Any) -> None:  # a dropped connection
        pass


def refuse_admin_commands() -> None:
    """Make the commands a grading server refuses (``grader.sandbox.redis_service.REFUSED``) unknown, as its ACL does."""
    from fakeredis._commands import SUPPORTED_COMMANDS

    from .redis_service import REFUSED

    for name in [n for n in SUPPORTED_COMMANDS if n.split()[0] in REFUSED]:
        del SUPPORTED_COMMANDS[name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m grader.sandbox.fakeredis_server SOCKET_PATH", file=sys.stderr)
        return 2
    lock_down_lua()
    refuse_admin_commands()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = UnixFakeServer(argv[0])
    server.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
