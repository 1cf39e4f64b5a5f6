"""A narrow object channel between the trusted judge and the learner's process.

Each side holds an :class:`Endpoint` on one end of a socket pair. Plain data
(None, bool, int, float, str, bytes, the immutable values datetime, date, time,
timedelta, Decimal, UUID and complex, and exact tuples, lists, dicts, sets and
frozensets of plain data) crosses **by value**; anything else crosses **by
reference** and arrives as a :class:`RemoteObject` whose operations (calls,
attributes, items, iteration, ``repr``) are requests to the side that owns it.
Nothing is ever unpickled: a peer can only send data and references to
objects it owns or was given.

Requests run concurrently (in the channel's threads, see ``Endpoint``), so
calls from several judge threads run concurrently in the learner's process,
and a call into the learner's code may call back into the judge (a loader, a
clock, a database): such a nested callback is served by the thread waiting for
the call, one call stack across the two processes, as in one interpreter.

What a peer may do to objects of this side is decided by a :class:`Policy`:
the learner's side serves the judge everything; the judge serves the learner
only the public API of what the tests passed in (see
:class:`JudgePolicy`). Equality and hashing of a remote object are by
identity and are computed locally: the learner's ``__eq__`` never decides
anything in the judge.

>>> import socket, threading
>>> a, b = socket.socketpair()
>>> judge = Endpoint(a, JudgePolicy(), name="judge")
>>> learner = Endpoint(b, Policy(), name="learner", root={"double": lambda x: [x, x]}.__getitem__)
>>> double = judge.lookup("double")
>>> double(21), double.grader_kind
([21, 21], 'function')
>>> judge.close(); learner.close()
"""

from __future__ import annotations

import builtins
import collections
import importlib
import itertools
import json
import queue
import socket
import struct
import sys
import threading
import time
import types
import weakref
from typing import Any, Callable

from .codec import _PLAIN, ValueCodec
from .errors import ChannelClosed, ProtocolError, RemoteError
from .limits import MAX_BACKLOG, MAX_FRAME_BYTES, MAX_TEXT, MAX_THREADS, PRESTARTED_THREADS
from .policy import JudgePolicy, Policy
from .remote import _MUTABLE, RemoteObject

__all__ = ["Endpoint"]

# exceptions a peer may raise on this side by name; anything else arrives as RemoteError
_EXCEPTION_MODULES = ("course_lib.", "redis.exceptions", "cachetools", "json.decoder", "sqlite3")


_OPERATORS = {"getitem": "__getitem__", "setitem": "__setitem__", "delitem": "__delitem__",
              "contains": "__contains__", "len": "__len__", "iter": "__iter__", "next": "__next__",
              "enter": "__enter__", "exit": "__exit__"}  # what the policy checks before applying an operator


def _one_line(text: Any, limit: int) -> str:
    """``text`` as one printable line of at most ``limit`` characters ('' for anything but a str)."""
    if type(text) is not str:
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())[:limit]


def _place(at: Any) -> dict[str, Any] | None:
    """Where the peer says its exception was raised, checked: ``{"cell", "line", "function", "text"}`` or None.

    >>> _place({"cell": 4, "line": 2, "function": "get", "text": "  return cache[x]\\n"})
    {'cell': 4, 'line': 2, 'function': 'get', 'text': 'return cache[x]'}
    >>> _place({"cell": "4", "line": 2}) is None, _place([1, 2]) is None
    (True, True)
    """
    if type(at) is not dict or type(at.get("cell")) is not int or type(at.get("line")) is not int:
        return None
    if not (0 <= at["cell"] < 1_000_000 and 0 < at["line"] < 1_000_000):
        return None
    return {"cell": at["cell"], "line": at["line"], "function": _one_line(at.get("function", ""), 80),
            "text": _one_line(at.get("text", ""), 160)}


class _Pending:
    """A request this side made: its reply, or a request the peer made while serving it, arrives in ``inbox``."""

    __slots__ = ("inbox", "op", "fields", "since")

    def __init__(self, op: str, fields: dict[str, Any]) -> None:
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.op, self.fields, self.since = op, fields, time.monotonic()


class Endpoint(ValueCodec):
    """One side of the channel: serves the peer's requests and sends this side's."""

    def __init__(self, sock: socket.socket, policy: Policy, *, name: str = "",
                 on_close: Callable[[str], None] | None = None,
                 root: Callable[[str], Any] | None = None) -> None:
        self.sock, self.policy, self.name, self.on_close = sock, policy, name, on_close
        self.root = root  # answers lookup(name) from the peer
        self.by_reference: Callable[[Any], bool] = lambda value: False  # lists/dicts/sets not to copy
        # Where an exception this side sends was raised in its own code (a learner's cell and line), and
        # what to do with such a place when the peer's exception arrives: see _describe and _exception.
        self.locate: Callable[[BaseException], dict[str, Any] | None] = lambda exc: None
        self.on_place: Callable[[BaseException, dict[str, Any]], None] = lambda exc, place: None
        self.requests = 0  # sent so far (the cost of a test, for authors)
        self._send_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}  # requests of this side still waiting for their reply
        self._abandoned: set[int] = set()  # requests whose caller stopped waiting (a cell's timeout)
        self._pending_lock = threading.Lock()
        self._local = threading.local()  # .serving: ids of the peer's requests this thread is serving
        self._exported: dict[int, Any] = {}  # ref -> object (kept alive for the channel's life)
        self._export_ids: dict[int, int] = {}  # id(object) -> ref
        self._export_lock = threading.Lock()
        self._proxies: weakref.WeakValueDictionary[int, RemoteObject] = weakref.WeakValueDictionary()
        self._proxy_lock = threading.Lock()
        self._pool_lock = threading.Lock()  # guards the three below
        self._threads = 0  # the channel's threads: the reader, those serving, those idle
        self._idle: list[queue.SimpleQueue] = []  # idle threads' mailboxes: None (stop), "read", a request
        self._backlog: collections.deque[dict[str, Any]] = collections.deque()  # requests no thread was free for
        self.closed: str = ""
        for k in range(PRESTARTED_THREADS):  # serving must not depend on starting threads later (a thread limit)
            self._start_thread(reading=k == 0)

    # --- wire -------------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
        if len(data) > MAX_FRAME_BYTES:
            raise ValueError(f"a value of {len(data):,} bytes is too large to cross the channel "
                             f"(limit {MAX_FRAME_BYTES:,})")
        with self._send_lock:
            if self.closed:
                raise ChannelClosed(self.closed)
            try:
                self.sock.sendall(struct.pack(">I", len(data)) + data)
            except OSError as exc:
                raise ChannelClosed(f"the other side is gone ({exc})") from None

    def _recv_exactly(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            try:
                chunk = self.sock.recv(min(n - got, 1 << 20))
            except OSError as exc:
                raise ChannelClosed(f"the channel failed: {exc}") from None
            if not chunk:
                raise ChannelClosed("the other side closed the channel")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_message(self) -> dict[str, Any]:
        (size,) = struct.unpack(">I", self._recv_exactly(4))
        if size > MAX_FRAME_BYTES:
            raise ProtocolError(f"a message of {size:,} bytes (limit {MAX_FRAME_BYTES:,})")
        try:
            message = json.loads(self._recv_exactly(size))
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"a message that is not JSON ({type(exc).__name__})") from None
        if type(message) is not dict:
            raise ProtocolError("a message that is not an object")
        return message

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, ProtocolError):
            self._shut(f"the other side broke the protocol: {exc}")
        elif isinstance(exc, ChannelClosed):
            self._shut(str(exc))
        else:
            self._shut(f"the channel failed: {type(exc).__name__}: {exc}")

    # Threads. Exactly one of the channel's threads reads the socket at any time, and it runs no code while
    # it holds that role, so the channel is read whatever the code on either side does. A reply goes to
    # the thread waiting for it. A request the peer made while serving one of this side's requests (its
    # "in" field) goes to the thread waiting for that request, which serves it: one call stack across the
    # two processes, as in one interpreter (the learner's locks held by that stack are held by the right
    # thread). Any other request the reader serves itself, after it has passed the reading role to an
    # idle thread (or a new one): no hand-off on the request's path. When no thread can take the role
    # (the process's thread limit), the request waits in the backlog for the next thread that is free.
    def _start_thread(self, reading: bool) -> bool:
        with self._pool_lock:
            if self._threads >= MAX_THREADS:
                return False
            self._threads += 1
        try:
            threading.Thread(target=self._thread_loop, args=(reading,), name=f"rpc-{self.name}", daemon=True).start()
        except RuntimeError:  # can't start new thread (the sandbox's limit)
            with self._pool_lock:
                self._threads -= 1
            return False
        return True

    def _thread_loop(self, reading: bool) -> None:
        mailbox: queue.SimpleQueue = queue.SimpleQueue()
        try:
            while not self.closed:
                if reading:
                    request = self._dispatch(self._read_message())
                    if request is None:
                        continue
                    if not self._pass_reading_role():
                        self._queue(request)  # no thread free to read: keep reading, serve it later
                        continue
                    reading = False
                    self._serve(request)
                with self._pool_lock:
                    request = self._backlog.popleft() if self._backlog else None
                    if request is None:
                        self._idle.append(mailbox)
                if request is not None:
                    self._serve(request)
                    continue
                order = mailbox.get()
                if order is None:
                    return
                if order == "read":
                    reading = True
                else:
                    self._serve(order)
        except BaseException as exc:  # noqa: BLE001 - the reader's end: the channel is over
            self._fail(exc)
        finally:
            with self._pool_lock:
                self._threads -= 1

    def _pass_reading_role(self) -> bool:
        """Give the reading role to an idle thread, or to a new one; False if there is none."""
        with self._pool_lock:
            mailbox = self._idle.pop() if self._idle else None
        if mailbox is not None:
            mailbox.put("read")
            return True
        return self._start_thread(reading=True)

    def _queue(self, request: dict[str, Any]) -> None:
        """A request for the first thread that is free (an idle one at once, else the backlog)."""
        with self._pool_lock:
            mailbox = self._idle.pop() if self._idle else None
            if mailbox is None:
                if len(self._backlog) >= MAX_BACKLOG:
                    raise ProtocolError(f"more than {MAX_BACKLOG:,} requests waiting at once (a flood of forged "
                                        "requests)")
                self._backlog.append(request)
        if mailbox is not None:
            mailbox.put(request)

    def _dispatch(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """In the reading thread: route a reply or a nested request to its waiting thread; return any other request."""
        if "re" in message:
            ident = message["re"]
            with self._pending_lock:
                pending = self._pending.pop(ident, None) if type(ident) is int else None
                if pending is None:
                    if type(ident) is int and ident in self._abandoned:
                        self._abandoned.discard(ident)  # the caller stopped waiting: nobody wants it
                        return None
                    raise ProtocolError("a reply to a request this side never made")
                pending.inbox.put(message)
            return None
        within = message.get("in")
        with self._pending_lock:
            pending = self._pending.get(within) if type(within) is int else None
            if pending is not None:
                pending.inbox.put(message)
                return None
        return message

    def _wait(self, pending: _Pending) -> dict[str, Any] | None:
        """The reply to ``pending``; requests the peer makes while serving it are served here."""
        while True:
            try:
                message = pending.inbox.get(timeout=0.05)  # short waits: a cell's timeout gets through
            except queue.Empty:
                if self.closed:
                    return None
                continue
            if message is None or "re" in message:
                return message
            self._serve(message, nested=True)

    def _abandon(self, pending: _Pending, ident: int) -> None:
        """The caller of request ``ident`` stops waiting: its reply is dropped, its nested requests go to other threads."""
        with self._pending_lock:
            if self._pending.pop(ident, None) is not None:
                self._abandoned.add(ident)
        while True:  # nothing more can arrive in the inbox: the reader no longer finds it
            try:
                message = pending.inbox.get_nowait()
            except queue.Empty:
                return
            if message is not None and "re" not in message:
                try:
                    self._queue(message)
                except ProtocolError as exc:
                    self._fail(exc)

    def _shut(self, reason: str) -> None:
        with self._close_lock:
            if self.closed:
                return
            self.closed = reason
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._pending_lock:
            pending, self._pending = list(self._pending.values()), {}
        for p in pending:
            p.inbox.put(None)
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for mailbox in idle:
            mailbox.put(None)
        if self.on_close:
            self.on_close(reason)

    def close(self) -> None:
        self._shut("closed by this side")
        try:
            self.sock.close()
        except OSError:
            pass

    # --- requests ---------------------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> Any:
        """Send one request and wait for its reply; raise what the other side raised."""
        ident = next(self._ids)
        self.requests += 1
        pending = _Pending(op, fields)
        # One handler from registration to reply: a cell's timeout is an asynchronous exception and may land
        # anywhere in here, even after the request was sent but before _send returned, so whatever it
        # interrupts, the request is abandoned (a late reply is dropped, never taken for a forged one).
        # Caught here, not in _wait: CPython 3.11 may not catch an asynchronous exception raised at a loop's
        # back edge in the loop's own frame (python/cpython#108214).
        try:
            with self._pending_lock:
                if self.closed:
                    raise ChannelClosed(self.closed)
                self._pending[ident] = pending
            serving = getattr(self._local, "serving", None)
            if serving:  # made while serving the peer's request: the peer serves it in the thread waiting for it
                fields["in"] = serving[-1]
            self._send({"id": ident, "op": op, **fields})
            reply = self._wait(pending)
        except BaseException:
            self._abandon(pending, ident)
            raise
        if reply is None:
            raise ChannelClosed(self.closed or "the channel closed")
        if "err" in reply:
            raise self._exception(reply["err"])
        return reply.get("ok")

    def _label(self, op: str, fields: dict[str, Any]) -> str:
        """What a request asks for, as a learner reads it: ``SimpleCache.get()``."""
        target = self._proxies.get(fields["ref"]) if type(fields.get("ref")) is int else None
        subject = (target._rpc_name or target.grader_type.rpartition(".")[2]) if target is not None else ""
        if op in ("call", "callattr"):
            return f"{subject}.{fields['name']}()" if op == "callattr" else f"{subject or 'a function'}()"
        if op in ("getattr", "lookup"):
            return f"{subject}.{fields['name']}" if subject else str(fields.get("name"))
        return f"{op} on {subject}" if subject else op

    def outstanding(self) -> list[tuple[str, float]]:
        """The requests of this side still waiting for their reply: (what, seconds waited), longest first.

        What a cell's timeout reports: a call into the learner's code that never returned.
        """
        now = time.monotonic()
        with self._pending_lock:
            waiting = list(self._pending.values())
        return [(self._label(p.op, p.fields), now - p.since) for p in sorted(waiting, key=lambda p: p.since)]

    def lookup(self, name: str) -> Any:
        """The value the other side's root gives for ``name`` (a learner's global, say).

        A module is this side's own import of the same name (a standard-library
        module or one already imported here), never the other side's.
        """
        value = self.request("lookup", name=str(name))
        if type(value) is dict and set(value) == {"mod"}:
            module = str(value["mod"])
            if module in sys.modules or module.partition(".")[0] in sys.stdlib_module_names:
                return importlib.import_module(module)
            raise NameError(f"module {module!r} is not available to the tests")
        return self.decode(value)

    def _exception(self, err: Any) -> BaseException:
        if type(err) is not dict:
            return ProtocolError("a malformed error")
        if "o" in err:  # one of this side's exceptions, coming back unchanged
            original = self._exported.get(err["o"]) if type(err["o"]) is int else None
            if not isinstance(original, Exception):
                return ProtocolError("an error that names an object that is not this side's exception")
            return original
        exc = self._rebuild(err)
        place = _place(err.get("at"))
        if place is not None:
            try:
                self.on_place(exc, place)
            except Exception:  # noqa: BLE001 - a place is a courtesy to the reader; it never changes the error
                pass
        if type(err.get("x")) is int:
            try:
                exc.__dict__["_rpc_origin"] = (id(self), err["x"])
            except (AttributeError, TypeError):
                pass
        return exc

    def _rebuild(self, err: dict[str, Any]) -> BaseException:
        type_name, message = str(err.get("type", "Error"))[:200], str(err.get("msg", ""))[:MAX_TEXT]
        module, _, qualname = type_name.rpartition(".")
        cls = None
        if module == "builtins":
            cls = builtins.__dict__.get(qualname)
        elif module == "course_lib" or module.startswith(_EXCEPTION_MODULES):
            try:
                cls = getattr(importlib.import_module(module), qualname, None)
            except ImportError:
                cls = None
        if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, (ChannelClosed,)):
            args = err.get("args")
            try:
                decoded = self.decode(args) if args is not None else None
                exc = cls(*decoded) if type(decoded) is tuple else cls(message)
            except Exception:  # noqa: BLE001 - a constructor with another signature
                try:
                    exc = cls(message)
                except Exception:  # noqa: BLE001
                    return RemoteError(type_name, message)
            return exc
        return RemoteError(qualname or type_name, message)

    def _serve(self, message: dict[str, Any], nested: bool = False) -> None:
        """Perform one of the peer's requests and reply. In a nested call (served by a thread waiting for its
        own request), an exception that is not an Exception (a cell's timeout) goes on up this thread's stack
        after the reply, as it would in one interpreter; elsewhere it ends with the reply."""
        ident = message.get("id")
        serving = self._local.__dict__.setdefault("serving", [])
        serving.append(ident)
        escape: BaseException | None = None
        try:
            result = self._perform(message)
            reply = {"re": ident, "ok": result}
        except (ProtocolError, ChannelClosed) as exc:
            self._fail(exc)
            return
        except BaseException as exc:  # noqa: BLE001 - whatever happened is the caller's to know
            reply = {"re": ident, "err": self._describe(exc)}
            escape = exc if nested and not isinstance(exc, Exception) else None
        finally:
            serving.pop()
        try:
            self._send(reply)
        except (ChannelClosed, ValueError) as exc:
            if isinstance(exc, ValueError):
                try:
                    self._send({"re": ident, "err": {"type": "builtins.ValueError", "msg": str(exc)}})
                except ChannelClosed:
                    pass
        if escape is not None:
            raise escape

    def _describe(self, exc: BaseException) -> dict[str, Any]:
        """An exception as an error reply. The peer's own exceptions go back as themselves ("o"); this
        side's are sent by reference too ("x"), so they come back as themselves if the peer lets them through."""
        cls = type(exc)
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt, a timeout: never re-raised as such
            return {"type": "RemoteError", "msg": f"{cls.__name__} in the other process"}
        origin = exc.__dict__.get("_rpc_origin") if hasattr(exc, "__dict__") else None
        if type(origin) is tuple and len(origin) == 2 and origin[0] == id(self):
            return {"type": "RemoteError", "msg": "", "o": origin[1]}
        try:
            message = str(exc)[:MAX_TEXT]
        except BaseException:  # noqa: BLE001 - a learner's __str__ may raise
            message = "(the message could not be read)"
        err: dict[str, Any] = {"type": f"{cls.__module__}.{cls.__qualname__}"[:200], "msg": message}
        if isinstance(exc, RemoteError):
            err["type"] = exc.type_name
            err["msg"] = exc.message
        else:
            try:
                if all(type(a) in _PLAIN for a in exc.args):
                    err["args"] = self.encode(tuple(exc.args))
            except Exception:  # noqa: BLE001
                pass
        try:
            place = self.locate(exc)
        except Exception:  # noqa: BLE001 - no place rather than no reply
            place = None
        if place is not None:
            err["at"] = place
        exc.__traceback__ = None  # kept for the channel's life: not its frames
        err["x"] = self._export(exc)["r"]
        return err

    def _target(self, message: dict[str, Any]) -> Any:
        ref = message.get("ref")
        if type(ref) is not int or ref not in self._exported:
            raise ProtocolError("a request for an object this side never sent")
        return self._exported[ref]

    def _perform(self, message: dict[str, Any]) -> Any:  # noqa: C901 - one dispatch table
        op = message.get("op")
        if op == "lookup":
            if self.root is None:
                raise NameError("nothing to look up on this side")
            value = self.root(str(message.get("name")))
            if isinstance(value, types.ModuleType):
                return {"mod": value.__name__}
            return self.encode(value)
        obj = self._target(message)
        policy = self.policy
        if message.get("keep") is True:  # the caller keeps results where they live: containers by reference
            def result(value: Any) -> Any:
                if type(value) in _MUTABLE:
                    return {**self._export(value), "kp": 1}
                return self.encode(value)
        else:
            result = self.encode
        if op == "getattr":
            name = str(message.get("name"))
            value = policy.getattr(obj, name)
            if getattr(value, "__self__", None) is obj and callable(getattr(type(obj), name, None)):
                return {"m": name}  # a method of the class: the caller calls it by name from now on
            return result(value)
        if op == "callattr":
            name = str(message.get("name"))
            fn = policy.call(policy.getattr(obj, name))
        elif op == "call":
            fn = policy.call(obj)
        else:
            fn = None
        if fn is not None:
            args = self.decode(message.get("args", {"t": []}))
            kwargs = self.decode(message.get("kwargs", {"d": []}))
            if type(args) is not tuple or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
                raise ProtocolError("malformed call arguments")
            value = fn(*args, **kwargs)
            restore = message.get("restore")
            if restore:  # the caller's mutable arguments, as the call left them
                return {"v": result(value),
                        "a": [self.encode(args[w]) if type(w) is int and 0 <= w < len(args)
                              else self.encode(kwargs[w]) if type(w) is str and w in kwargs else None
                              for w in restore]}
            return result(value)
        if op == "setattr":
            policy.setattr(obj, str(message.get("name")), self.decode(message.get("value")))
            return None
        if op == "delattr":
            policy.delattr(obj, str(message.get("name")))
            return None
        if op in _OPERATORS:
            policy.operator(obj, _OPERATORS[op])
        if op in ("getitem", "contains", "delitem"):
            key = self.decode(message.get("key"))
            if op == "getitem":
                return result(obj[key])
            if op == "contains":
                return bool(key in obj)
            del obj[key]
            return None
        if op == "setitem":
            obj[self.decode(message.get("key"))] = self.decode(message.get("value"))
            return None
        if op == "len":
            return int(len(obj))
        if op == "bool":
            return bool(obj)
        if op == "iter":
            return self.encode(iter(obj))
        if op == "next":
            return result(next(obj))
        if op in ("repr", "str"):
            return str(repr(obj) if op == "repr" else str(obj))[:MAX_TEXT]
        if op in ("enter", "exit"):
            if op == "enter":
                return self.encode(type(obj).__enter__(obj))
            return bool(type(obj).__exit__(obj, None, None, None))
        raise ProtocolError(f"an unknown request {op!r}")
