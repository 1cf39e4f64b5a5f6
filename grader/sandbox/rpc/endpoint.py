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

import base64
import builtins
import collections
import datetime
import decimal
import functools
import importlib
import inspect
import itertools
import json
import queue
import socket
import struct
import sys
import threading
import time
import types
import uuid
import weakref
from typing import Any, Callable

__all__ = ["Endpoint", "Policy", "JudgePolicy", "RemoteObject", "RemoteError", "ChannelClosed",
           "ProtocolError", "MAX_FRAME_BYTES"]

MAX_FRAME_BYTES = 16 * 1024 * 1024  # one message; a bigger one ends the channel
MAX_DEPTH = 64  # nesting of containers in one value
MAX_ITEMS = 200_000  # plain values in one message
MAX_TEXT = 4_000  # characters of a repr/str or an error message
MAX_THREADS = 64  # the channel's threads at most (requests served at once besides nested callbacks)
PRESTARTED_THREADS = 5  # started with the channel (one reads), before a sandbox limits threads
MAX_BACKLOG = 1_024  # requests waiting for a thread; each caller waits for its reply, so more is a flood

_PLAIN = (type(None), bool, int, float, str)
# immutable standard-library values that also cross by value (exact types): their tag and encoding
_VALUE_CODEC: dict[type, tuple[str, Callable[[Any], Any]]] = {
    datetime.datetime: ("dt", lambda v: v.isoformat()), datetime.date: ("da", lambda v: v.isoformat()),
    datetime.time: ("tm", lambda v: v.isoformat()), datetime.timedelta: ("td", lambda v: [v.days, v.seconds,
                                                                                          v.microseconds]),
    decimal.Decimal: ("dec", str), uuid.UUID: ("uu", lambda v: v.hex), complex: ("cx", lambda v: [v.real, v.imag])}


def _text_of(body: Any) -> str:
    if type(body) is not str or len(body) > 100:
        raise ValueError("expected a short text")
    return body


def _numbers(body: Any, n: int, kinds: tuple[type, ...]) -> list[Any]:
    if type(body) is not list or len(body) != n or not all(type(x) in kinds for x in body):
        raise ValueError(f"expected {n} numbers")
    return body


_VALUE_DECODE: dict[str, Callable[[Any], Any]] = {
    "dt": lambda b: datetime.datetime.fromisoformat(_text_of(b)),
    "da": lambda b: datetime.date.fromisoformat(_text_of(b)),
    "tm": lambda b: datetime.time.fromisoformat(_text_of(b)),
    "td": lambda b: datetime.timedelta(*_numbers(b, 3, (int,))),
    "dec": lambda b: decimal.Decimal(_text_of(b)),
    "uu": lambda b: uuid.UUID(hex=_text_of(b)),
    "cx": lambda b: complex(*_numbers(b, 2, (int, float))),
}
# exceptions a peer may raise on this side by name; anything else arrives as RemoteError
_EXCEPTION_MODULES = ("course_lib.", "redis.exceptions", "cachetools", "json.decoder", "sqlite3")


_OPERATORS = {"getitem": "__getitem__", "setitem": "__setitem__", "delitem": "__delitem__",
              "contains": "__contains__", "len": "__len__", "iter": "__iter__", "next": "__next__",
              "enter": "__enter__", "exit": "__exit__"}  # what the policy checks before applying an operator


class ChannelClosed(ConnectionError):
    """The other side went away (the learner's process ended, or was stopped)."""


class ProtocolError(ConnectionError):
    """The other side sent something that is not a valid message; the channel is closed."""


class RemoteError(Exception):
    """An exception of a type this side does not know, raised by the other side."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name, self.message = type_name, message


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


def _kind(obj: Any) -> str:
    if isinstance(obj, type):
        return "class"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)):
        return "function"
    if callable(obj) and hasattr(obj, "__wrapped__"):  # lru_cache and other decorated functions
        return "function"
    return "callable" if callable(obj) else "object"


class Policy:
    """What the peer may do with this side's objects. The default allows everything."""

    def getattr(self, obj: Any, name: str) -> Any:
        return getattr(obj, name)

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        setattr(obj, name, value)

    def delattr(self, obj: Any, name: str) -> None:
        delattr(obj, name)

    def call(self, obj: Any) -> Callable[..., Any]:
        return obj

    def operator(self, obj: Any, dunder: str) -> None:
        """May the peer apply the operator ``dunder`` (``__getitem__``, ``__len__``...) to ``obj``?"""


class JudgePolicy(Policy):
    """The learner may use what each of the tests' objects declares (``grader.sandbox.learner_api``), and nothing else.

    Every read, call and operator the learner's code applies to one of the judge's
    objects is checked against :func:`grader.sandbox.learner_api.api_of`; anything not
    listed, every name starting with ``_`` and every ``setattr`` is refused with a
    ``PermissionError`` that says what was tried.
    """

    DESCRIPTIVE = frozenset({"__name__", "__qualname__", "__doc__", "__module__", "__wrapped__"})  # functools.wraps

    def __init__(self, trusted_modules: tuple[str, ...] = ("__main__",)) -> None:
        self.trusted = tuple(trusted_modules)  # where the tests' own code lives (the judge runs it as __main__)

    @staticmethod
    def _refuse(obj: Any, what: str) -> PermissionError:
        return PermissionError(f"the tests' {type(obj).__name__} does not let your code use {what}")

    def getattr(self, obj: Any, name: str) -> Any:
        from ..learner_api import api_of, guard_execute_command

        if name in self.DESCRIPTIVE:
            return getattr(obj, name)
        if name.startswith("_") or name not in api_of(obj, self.trusted):
            raise self._refuse(obj, f".{name}")
        value = getattr(obj, name)
        if name == "execute_command":
            return guard_execute_command(value)
        return value

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        raise PermissionError(f"the tests' {type(obj).__name__} is read-only to your code (tried to set .{name})")

    def delattr(self, obj: Any, name: str) -> None:
        raise PermissionError(f"the tests' {type(obj).__name__} is read-only to your code (tried to delete .{name})")

    def call(self, obj: Any) -> Callable[..., Any]:
        from ..learner_api import api_of

        if "__call__" not in api_of(obj, self.trusted):
            raise PermissionError(f"the tests' {type(obj).__name__} is not callable by your code")
        return obj

    def operator(self, obj: Any, dunder: str) -> None:
        from ..learner_api import api_of

        if not hasattr(type(obj), dunder):  # what Python itself says (list() asks a generator for its length)
            raise TypeError(f"the tests' {type(obj).__name__} does not support {dunder}")
        if dunder not in api_of(obj, self.trusted):
            raise self._refuse(obj, dunder)


class _Pending:
    """A request this side made: its reply, or a request the peer made while serving it, arrives in ``inbox``."""

    __slots__ = ("inbox", "op", "fields", "since")

    def __init__(self, op: str, fields: dict[str, Any]) -> None:
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.op, self.fields, self.since = op, fields, time.monotonic()


class Endpoint:
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

    # --- values -----------------------------------------------------------------------------------
    def _export(self, obj: Any) -> dict[str, Any]:
        with self._export_lock:
            ref = self._export_ids.get(id(obj))
            if ref is None or self._exported.get(ref) is not obj:
                ref = len(self._exported) + 1
                self._exported[ref] = obj
                self._export_ids[id(obj)] = ref
        kind = _kind(obj)
        data = {"r": ref, "k": kind, "n": f"{type(obj).__module__}.{type(obj).__qualname__}"[:200]}
        if kind != "object":
            data["q"] = str(getattr(obj, "__qualname__", getattr(obj, "__name__", "")) or "")[:200]
            module = getattr(obj, "__module__", None)
            if type(module) is str and module:  # what a cache key or a message reads (users.get vs products.get)
                data["mo"] = module[:200]
            try:
                data["s"] = [[p.name, int(p.kind), p.default is not p.empty,
                              p.default if type(p.default) in _PLAIN else repr(p.default)[:100],
                              type(p.default) not in _PLAIN]
                             for p in list(inspect.signature(obj).parameters.values())[:50]]
            except (TypeError, ValueError):
                pass
        return data

    def encode(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if depth > MAX_DEPTH:
            raise ValueError("a value nested more than 64 levels deep cannot cross the channel")
        if kind in _PLAIN:
            return value
        if isinstance(value, RemoteObject) and value._rpc_endpoint is self:
            return {"y": value._rpc_ref}
        if kind in (list, dict, set) and self.by_reference(value):
            return self._export(value)
        if kind is bytes:
            return {"b": base64.b64encode(value).decode("ascii")}
        if kind is list:
            return {"l": [self.encode(v, depth + 1) for v in value]}
        if kind is tuple:
            return {"t": [self.encode(v, depth + 1) for v in value]}
        if kind is dict:
            return {"d": self._pairs(value, depth)}
        if kind is set:
            return {"s": [self.encode(v, depth + 1) for v in list(value)]}
        if kind is frozenset:
            return {"f": [self.encode(v, depth + 1) for v in value]}
        if kind is types.MappingProxyType:  # a read-only view: a read-only view of a copy
            return {"mp": self._pairs(value, depth)}
        codec = _VALUE_CODEC.get(kind)
        if codec is not None and (kind is not datetime.datetime or value.tzinfo is None
                                  or type(value.tzinfo) is datetime.timezone):
            return {codec[0]: codec[1](value)}
        if isinstance(value, types.ModuleType):
            raise TypeError(f"a module ({value.__name__}) cannot cross the channel: import it on the other side")
        return self._export(value)

    def _pairs(self, mapping: Any, depth: int) -> list[list[Any]]:
        return [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in list(mapping.items())]

    def decode(self, data: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
        """A value from the peer. A malformed one closes the channel (raises ChannelClosed)."""
        if budget is None:
            try:
                return self.decode(data, 0, [MAX_ITEMS])
            except ProtocolError as exc:
                self._fail(exc)
                raise ChannelClosed(self.closed) from None
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise ProtocolError("a value too large or too deeply nested")
        if type(data) in _PLAIN:
            return data
        if type(data) is not dict or not 1 <= len(data) <= 7:
            raise ProtocolError(f"not a value: {type(data).__name__}")
        if "r" in data:
            ref, kind, name = data.get("r"), data.get("k"), data.get("n")
            qualname, signature, keep = data.get("q", ""), data.get("s"), data.get("kp") == 1
            module = data.get("mo", "")
            if type(ref) is not int or type(kind) is not str or type(name) is not str or type(qualname) is not str \
                    or (signature is not None and type(signature) is not list) or type(module) is not str:
                raise ProtocolError("a malformed reference")
            proxy = self._proxy(ref, kind, name, qualname, signature, module)
            if keep:
                object.__setattr__(proxy, "grader_keep", True)
            return proxy
        (tag, body), = data.items()
        if tag == "y":
            if type(body) is not int or body not in self._exported:
                raise ProtocolError("a reference to an object this side never sent")
            return self._exported[body]
        if tag == "b" and type(body) is str:
            return base64.b64decode(body)
        if tag in _VALUE_DECODE:
            try:
                return _VALUE_DECODE[tag](body)
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise ProtocolError(f"a malformed {tag!r} value: {exc}") from None
        if type(body) is not list:
            raise ProtocolError(f"a malformed {tag!r} value")
        items = [self.decode(v, depth + 1, budget) for v in body] if tag not in ("d", "mp") else None
        if tag == "l":
            return items
        if tag == "t":
            return tuple(items)
        if tag in ("s", "f"):
            try:
                return set(items) if tag == "s" else frozenset(items)
            except TypeError as exc:
                raise ProtocolError(f"an unhashable set item: {exc}") from None
        if tag in ("d", "mp"):
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("a malformed dict item")
                try:
                    out[self.decode(pair[0], depth + 1, budget)] = self.decode(pair[1], depth + 1, budget)
                except TypeError as exc:
                    raise ProtocolError(f"an unhashable dict key: {exc}") from None
            return out if tag == "d" else types.MappingProxyType(out)
        raise ProtocolError(f"an unknown value tag {tag!r}")

    def _proxy(self, ref: int, kind: str, type_name: str, qualname: str, signature: list | None,
               module: str = "") -> "RemoteObject":
        with self._proxy_lock:
            proxy = self._proxies.get(ref)
            if proxy is None:
                proxy = _proxy_class(type_name[:200], module[:200])(self, ref, kind[:20], type_name[:200],
                                                                    qualname[:200], signature)
                self._proxies[ref] = proxy
            return proxy

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


class RemoteObject:
    """An object that lives on the other side; every operation is a request.

    ``==`` and ``hash`` are identity: two references are equal when they name
    the same remote object. ``grader_kind`` says what it is ("function",
    "class", "callable" or "object") and ``grader_type`` its type's name.
    """

    __slots__ = ("_rpc_endpoint", "_rpc_ref", "grader_kind", "grader_type", "_rpc_methods", "_rpc_name",
                 "_rpc_signature", "grader_keep", "__weakref__")

    def __init__(self, endpoint: Endpoint, ref: int, kind: str, type_name: str, qualname: str = "",
                 signature: list | None = None) -> None:
        object.__setattr__(self, "_rpc_endpoint", endpoint)
        object.__setattr__(self, "_rpc_ref", ref)
        object.__setattr__(self, "grader_kind", kind)
        object.__setattr__(self, "grader_type", type_name)
        object.__setattr__(self, "_rpc_methods", {})
        object.__setattr__(self, "_rpc_name", qualname)
        object.__setattr__(self, "_rpc_signature", signature)
        object.__setattr__(self, "grader_keep", False)  # results stay where they live (see grader_call_kept)

    @property
    def __signature__(self) -> inspect.Signature | None:  # noqa: PLW3201 - what inspect.signature reads
        return _signature(self._rpc_signature) if self._rpc_signature is not None else None

    def _rpc(self, op: str, **fields: Any) -> Any:
        if self.grader_keep:
            fields["keep"] = True
        return self._rpc_endpoint.request(op, ref=self._rpc_ref, **fields)

    def grader_call_kept(self, *args: Any, **kwargs: Any) -> Any:
        """Call the remote object; a list, dict or set it returns stays on its side (a reference, not a copy),
        and so does every container reached through it."""
        return _call(self, "call", None, args, kwargs, keep=True)

    def __getattr__(self, name: str) -> Any:
        if name in ("__name__", "__qualname__") and self._rpc_name:  # what functools.wraps and messages read
            return self._rpc_name if name == "__qualname__" else self._rpc_name.rpartition(".")[2]
        if name.startswith("__") and name.endswith("__") and name != "__wrapped__":
            raise AttributeError(name)
        method = self._rpc_methods.get(name)
        if method is not None:
            return method
        value = self._rpc("getattr", name=name)
        if type(value) is dict and "m" in value and len(value) == 1:
            method = _RemoteMethod(self, name)
            self._rpc_methods[name] = method
            return method
        return self._rpc_endpoint.decode(value)

    def __setattr__(self, name: str, value: Any) -> None:
        self._rpc("setattr", name=name, value=self._rpc_endpoint.encode(value))

    def __delattr__(self, name: str) -> None:
        self._rpc("delattr", name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self, "call", None, args, kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._rpc_endpoint.decode(self._rpc("getitem", key=self._rpc_endpoint.encode(key)))

    def __setitem__(self, key: Any, value: Any) -> None:
        ep = self._rpc_endpoint
        self._rpc("setitem", key=ep.encode(key), value=ep.encode(value))

    def __delitem__(self, key: Any) -> None:
        self._rpc("delitem", key=self._rpc_endpoint.encode(key))

    def __contains__(self, key: Any) -> bool:
        return self._rpc("contains", key=self._rpc_endpoint.encode(key)) is True

    def __len__(self) -> int:
        n = self._rpc("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of a remote object was not a non-negative int")
        return n

    def __bool__(self) -> bool:
        return self._rpc("bool") is True

    def __iter__(self) -> Any:
        iterator = self._rpc_endpoint.decode(self._rpc("iter"))
        if not isinstance(iterator, RemoteObject):
            raise TypeError("iter() of a remote object did not give an iterator")
        return _RemoteIterator(iterator)

    def __next__(self) -> Any:
        return self._rpc_endpoint.decode(self._rpc("next"))

    def __enter__(self) -> Any:
        return self._rpc_endpoint.decode(self._rpc("enter"))

    def __exit__(self, *exc_info: Any) -> bool:
        return self._rpc("exit") is True

    def __repr__(self) -> str:
        try:
            text = self._rpc("repr")
        except Exception:  # noqa: BLE001 - a repr must not fail the caller's message
            return f"<{self.grader_type} object>"
        return str(text)[:MAX_TEXT]

    def __str__(self) -> str:
        text = self._rpc("str")
        return str(text)[:MAX_TEXT] if type(text) is str else repr(self)

    def __eq__(self, other: Any) -> bool:
        return self is other

    def __ne__(self, other: Any) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)


@functools.lru_cache(maxsize=512)
def _proxy_class(type_name: str, own_module: str = "") -> type:
    """A RemoteObject subclass named like the remote object's type, so ``type(x).__name__`` reads right.

    ``own_module`` is the ``__module__`` of a remote function or class: ``x.__module__`` is looked up on the
    proxy's class, so the class carries it (two functions named ``get`` in two modules stay apart).
    """
    module, _, qualname = type_name.rpartition(".")
    name = qualname.rpartition(".")[2] or "RemoteObject"
    return type(name, (RemoteObject,), {"__slots__": (), "__module__": own_module or module or __name__,
                                        "__qualname__": qualname})


class _Default:
    """A default value that is not a literal: shown as its source, never evaluated."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.VAR_POSITIONAL,
          inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)


def _signature(params: list) -> inspect.Signature | None:
    """Rebuild a signature sent as [name, kind, has a default, the default or its repr, is a repr] items."""
    P = inspect.Parameter
    try:
        return inspect.Signature([
            P(str(name), _KINDS[kind],
              default=P.empty if not has_default else _Default(str(default)) if is_repr else default)
            for name, kind, has_default, default, is_repr in params])
    except (ValueError, TypeError, IndexError):
        return None


class _RemoteMethod:
    """``obj.name`` where ``name`` is a method of the remote object's class: one request per call."""

    __slots__ = ("owner", "name", "grader_kind")

    def __init__(self, owner: RemoteObject, name: str) -> None:
        self.owner, self.name, self.grader_kind = owner, name, "function"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self.owner, "callattr", self.name, args, kwargs)

    def grader_call_kept(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self.owner, "callattr", self.name, args, kwargs, keep=True)

    def __repr__(self) -> str:
        return f"<method {self.name} of {self.owner.grader_type} object>"


class _RemoteIterator:
    __slots__ = ("remote",)

    def __init__(self, remote: RemoteObject) -> None:
        self.remote = remote

    def __iter__(self) -> "_RemoteIterator":
        return self

    def __next__(self) -> Any:
        return next(self.remote)


_MUTABLE = (list, dict, set)


def _call(target: RemoteObject, op: str, name: str | None, args: tuple, kwargs: dict[str, Any],
          keep: bool = False) -> Any:
    """A call across the channel; lists, dicts and sets passed in get the changes the callee made."""
    ep = target._rpc_endpoint
    restore: list[int | str] = [i for i, a in enumerate(args) if type(a) in _MUTABLE]
    restore += [k for k, v in kwargs.items() if type(v) in _MUTABLE]
    fields: dict[str, Any] = {"args": ep.encode(tuple(args)), "kwargs": ep.encode(dict(kwargs))}
    if name is not None:
        fields["name"] = name
    if restore:
        fields["restore"] = restore
    if keep:
        fields["keep"] = True
    reply = target._rpc(op, **fields)
    if not restore:
        return ep.decode(reply)
    if type(reply) is not dict or set(reply) != {"v", "a"} or type(reply["a"]) is not list \
            or len(reply["a"]) != len(restore):
        ep._fail(ProtocolError("a malformed reply to a call"))
        raise ChannelClosed(ep.closed)
    for where, state in zip(restore, reply["a"]):
        original, new = (args[where] if type(where) is int else kwargs[where]), ep.decode(state)
        if type(new) is not type(original):
            continue
        original.clear()
        if isinstance(original, dict):
            original.update(new)
        elif isinstance(original, list):
            original.extend(new)
        else:
            original.update(new)
    return ep.decode(reply["v"])
