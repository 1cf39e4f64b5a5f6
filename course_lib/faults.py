"""Fault injection for hidden tests: each Redis command of a code path fails in turn, the first, the second, ...

A cache that "fails open" must survive an error on *any* of its commands, not only the first: the SET
after a miss, the DEL of an invalidation, the pipeline of a write. Guarding only the first command, or
wrapping read, load and write in one ``try`` (so the loader runs again when the write fails), passes a
test that cuts Redis off for a whole call; it fails one of these runs.

    faults = CommandFaults(r)                       # hand faults.client to the learner's code
    def scenario(failing):
        cache = ResilientCache(faults.client, prefix=..., ttl=60)   # set-up: not counted
        with failing:                               # the commands in here are numbered 1, 2, ...
            got = cache.get("k", loader)
        assert got == ..., f"{failing}: get() returned {got!r}"
    each_command_failing(faults, scenario)          # once clean (to count), then once per command

>>> import fakeredis
>>> faults = CommandFaults(fakeredis.FakeRedis(decode_responses=True))
>>> def scenario(failing):
...     with failing:
...         try:
...             faults.client.set("k", 1)
...             faults.client.get("k")
...         except redis.ConnectionError as exc:
...             print(failing, "->", exc)
>>> each_command_failing(faults, scenario)
command 1 of 2 (SET) failed -> the tests made command 1 (SET) fail
command 2 of 2 (GET) failed -> the tests made command 2 (GET) fail
['SET', 'GET']
"""

from __future__ import annotations

import copy
import threading
import types
from typing import Any, Callable

import redis

__all__ = ["CommandFaults", "Failing", "each_command_failing"]

MAX_COMMANDS = 50  # a path that sends more than this under one fault is a loop, not a cache read


def _method(owner: Any, name: str, fn: Callable[..., Any]) -> Any:
    """``fn`` as the method ``name`` of ``owner``: under the grader's judge, the learner's code may call it
    exactly when it may call ``owner.name`` (``grader.sandbox.learner_api``: a bound method of an allowed name)."""
    fn.__name__ = fn.__qualname__ = name
    return types.MethodType(fn, owner)


class Failing:
    """The block of one run: its commands are numbered from 1 and command ``number`` (None: none) fails."""

    def __init__(self, faults: "CommandFaults", number: int | None, total: int | None) -> None:
        self.faults, self.number, self.total = faults, number, total
        self.command = ""  # the name of the command that failed, once it did

    def __enter__(self) -> "Failing":
        self.faults._arm(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.faults._disarm()

    def __str__(self) -> str:
        if self.number is None:
            return "with no Redis failure"
        name = self.command or (self.faults.clean[self.number - 1] if self.number <= len(self.faults.clean) else "?")
        return f"command {self.number} of {self.total} ({name}) failed"


class CommandFaults:
    """A copy of ``client`` (``.client``) whose commands inside a :class:`Failing` block are counted, and one
    of them raises ``error``. A pipeline's ``execute()`` is one command (named ``MULTI/EXEC`` or
    ``PIPELINE``); commands outside a block pass untouched."""

    def __init__(self, client: redis.Redis, *, error: type[Exception] = redis.ConnectionError) -> None:
        self.error = error
        self.client = copy.copy(client)
        self.sent: list[str] = []  # the commands of the current (or last) block
        self.clean: list[str] = []  # the commands of the run without a failure
        self._block: Failing | None = None
        self._lock = threading.Lock()
        send, make = client.execute_command, client.pipeline

        def execute_command(_client: Any, *args: Any, **options: Any) -> Any:
            self._count(str(args[0]).upper() if args else "?")
            return send(*args, **options)

        def pipeline(_client: Any, *args: Any, **kwargs: Any) -> Any:
            pipe = make(*args, **kwargs)
            run = pipe.execute

            def execute(_pipe: Any, *a: Any, **kw: Any) -> Any:
                self._count("MULTI/EXEC" if getattr(pipe, "transaction", True) else "PIPELINE")
                return run(*a, **kw)

            pipe.execute = _method(pipe, "execute", execute)
            return pipe

        self.client.execute_command = _method(self.client, "execute_command", execute_command)
        self.client.pipeline = _method(self.client, "pipeline", pipeline)

    def _arm(self, block: Failing) -> None:
        with self._lock:
            if self._block is not None:
                raise RuntimeError("CommandFaults: a failing block is already open (they do not nest)")
            self._block, self.sent = block, []

    def _disarm(self) -> None:
        with self._lock:
            self._block = None

    def _count(self, name: str) -> None:
        with self._lock:
            block = self._block
            if block is None:
                return
            self.sent.append(name)
            number = len(self.sent)
        if number > MAX_COMMANDS:
            raise RuntimeError(f"the code sent more than {MAX_COMMANDS} Redis commands in one call: "
                               f"{self.sent[:8]}... (a retry loop?)")
        if number == block.number:
            block.command = name
            raise self.error(f"the tests made command {number} ({name}) fail")

    def failing(self, number: int | None = None, total: int | None = None) -> Failing:
        """A block whose command ``number`` (1-based; None: none) raises ``error``."""
        return Failing(self, number, total)


def each_command_failing(faults: CommandFaults, scenario: Callable[[Failing], Any]) -> list[str]:
    """Run ``scenario(block)`` once without a failure, then once per command it sent with that command
    failing; return the commands of the clean run. ``scenario`` sets up, runs the path inside ``with
    block:`` and asserts (``str(block)`` says which command failed, for the message)."""
    clean = faults.failing()
    scenario(clean)
    faults.clean = list(faults.sent)
    for number in range(1, len(faults.clean) + 1):
        scenario(faults.failing(number, len(faults.clean)))
    return faults.clean
