"""Forced interleavings for hidden tests: a conflicting call runs *inside* another one, at a chosen point.

A thread-stress test finds a missing lock only if the interpreter happens to switch threads inside the
unlocked section, and on CPython 3.11 it mostly does not. Here the test picks the moment instead: every
dependency the tests hand to the learner's code (its clock, its database, the dict it caches in, its Redis
client) can be a *pause point*. While a block is armed, the ``at``-th call of a pause point holds the
calling thread, runs the conflicting operation on another thread, and waits until that operation has
returned (or ``grace`` seconds, if it is blocked on the learner's lock, as it must be when the lock is
held across the pause point). Then the first call goes on, and the test checks that the two results are
ones some order of the two calls could give.

A correct design is never failed: when the lock is held, the conflict waits for it and the outcome is
the serial one; when the lock is not held there, the design was correct only if its outcome still is.
A design that drops its lock is caught every time the conflict gets through in ``grace`` seconds,
which on a quiet or a busy machine is far more than the few milliseconds it needs. No test asserts a
time: ``grace`` only bounds how long a correct, lock-holding design makes the test wait.

>>> import threading
>>> class Box:                      # get-then-set under one lock: safe
...     def __init__(self, read):
...         self.read, self.value, self.lock = read, 0, threading.Lock()
...     def bump(self):
...         with self.lock:
...             self.value = self.read(self.value) + 1
>>> moments = Interleaving(grace=0.05)
>>> box = Box(moments.pausing(lambda v: v))
>>> with moments.armed(box.bump, what="box.bump()") as inside:
...     box.bump()
>>> inside.fired, box.value          # both bumps counted
(True, 2)
>>> class Racy(Box):                # the lock forgotten: the conflict lands between read and write
...     def bump(self):
...         self.value = self.read(self.value) + 1
>>> racy = Racy(moments.pausing(lambda v: v))
>>> with moments.armed(racy.bump, what="racy.bump()"):
...     racy.bump()
>>> racy.value                      # one update lost, every time
1
"""

from __future__ import annotations

import threading
import types
from typing import Any, Callable

__all__ = ["Interleaving", "Inside"]


class Inside:
    """One armed block: did the pause happen (``fired``), and what the conflict returned or raised."""

    def __init__(self, conflict: Callable[[], Any], at: int, what: str) -> None:
        self.conflict, self.at, self.what = conflict, at, what
        self.fired = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._calls = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            self.result = self.conflict()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread, with what was called
            self.error = exc
        finally:
            self._done.set()

    def __repr__(self) -> str:
        state = "fired" if self.fired else "not fired"
        return f"<Inside {self.what} at pause {self.at}: {state}>"


class Interleaving:
    """Pause points for a test's dependencies and the armed blocks that use them (see the module's doc).

    ``grace``: how long a paused call waits for the conflict before it goes on (the conflict is then
    blocked on the learner's lock, which is right); ``timeout``: how long the block's end waits for the
    conflict to return at all before it says "deadlock".
    """

    def __init__(self, *, grace: float = 0.25, timeout: float = 20.0) -> None:
        self.grace, self.timeout = grace, timeout
        self._lock = threading.Lock()
        self._inside: Inside | None = None

    # --- pause points ---------------------------------------------------------------------------------
    def pause(self) -> None:
        """The pause point itself: call it from any dependency the learner's code calls."""
        with self._lock:
            inside = self._inside
            if inside is None or inside.fired or threading.current_thread() is inside._thread:
                return
            inside._calls += 1
            if inside._calls != inside.at:
                return
            inside.fired = True
            inside._thread = threading.Thread(target=inside._run, name=f"conflict: {inside.what}", daemon=True)
        inside._thread.start()
        inside._done.wait(self.grace)

    def pausing(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with a pause point before each call (for a clock or a loader function)."""
        def paused(*args: Any, **kwargs: Any) -> Any:
            self.pause()
            return fn(*args, **kwargs)
        paused.__name__ = paused.__qualname__ = getattr(fn, "__name__", "paused")
        paused.__doc__ = getattr(fn, "__doc__", None)
        return paused

    def pause_methods(self, obj: Any, *names: str) -> Any:
        """``obj`` with a pause point before each call of the methods ``names`` (bound in place, so under
        the grader's judge the learner may call them exactly as before); returns ``obj``."""
        for name in names:
            method = getattr(obj, name)

            def paused(_self: Any, *args: Any, _method: Callable[..., Any] = method, **kwargs: Any) -> Any:
                self.pause()
                return _method(*args, **kwargs)

            paused.__name__ = paused.__qualname__ = name
            setattr(obj, name, types.MethodType(paused, obj))
        return obj

    # --- armed blocks ---------------------------------------------------------------------------------
    def armed(self, conflict: Callable[[], Any], *, at: int = 1, what: str = "the conflicting call") -> "_Block":
        """A block inside which the ``at``-th pause point (counted over every thread) runs ``conflict`` on
        another thread; ``what`` names it in messages (say what was called: ``"cache.delete('k')"``)."""
        if at < 1:
            raise ValueError(f"armed(at={at!r}): pause points are counted from 1")
        return _Block(self, Inside(conflict, at, what))


class _Block:
    def __init__(self, moments: Interleaving, inside: Inside) -> None:
        self.moments, self.inside = moments, inside

    def __enter__(self) -> Inside:
        with self.moments._lock:
            if self.moments._inside is not None:
                raise RuntimeError("Interleaving: a block is already armed (they do not nest)")
            self.moments._inside = self.inside
        return self.inside

    def __exit__(self, *exc: Any) -> None:
        inside = self.inside
        with self.moments._lock:
            self.moments._inside = None
        if not inside.fired:
            return
        if not inside._done.wait(self.moments.timeout):
            raise AssertionError(
                f"{inside.what}, called from another thread at that moment, had not returned "
                f"{self.moments.timeout:g} s later: a deadlock (a lock that is never released?)")
        if inside.error is not None and exc[0] is None:
            raise AssertionError(f"{inside.what}, called from another thread at that moment, raised "
                                 f"{type(inside.error).__name__}: {inside.error}") from inside.error
