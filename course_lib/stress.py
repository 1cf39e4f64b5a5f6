"""A thread-stress harness for hidden tests: every public method of a "thread-safe" object, from many threads.

Stress tests that drive only ``get`` and ``set`` miss the method that iterates the dict while others
write, and the counters updated outside the lock. An exercise declares its whole interface; the harness
refuses to run until every method has an operation, calls them all from several threads at once (a
seeded mix, every operation in every thread, started together by a barrier) and returns how many times
each ran, so the test can check exact counter totals and its invariants afterwards.

>>> import collections, threading
>>> class Counter:
...     def __init__(self):
...         self.lock, self.n = threading.Lock(), 0
...     def add(self):
...         with self.lock:
...             self.n += 1
...     def value(self):
...         return self.n
>>> c = Counter()
>>> calls = hammer({"add": lambda rng: c.add(), "value": lambda rng: c.value()}, interface=("add", "value"))
>>> c.n == calls["add"], sum(calls.values())
(True, 240)

What stays invisible: on CPython 3.11 ``self.hits += 1`` outside the lock loses no update in practice
(the interpreter does not switch threads inside that statement), so exact totals catch a missing lock
only where the unlocked section calls out (a clock, a loader, a Redis command) or iterates. For the rest,
``course_lib.lock_discipline.require_locking`` reads the class instead of running it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Callable, Iterable, Mapping

__all__ = ["hammer", "StressFailed"]


class StressFailed(AssertionError):
    """An operation raised, or the threads did not finish: the message says which and what."""


def hammer(operations: Mapping[str, Callable[[random.Random], Any]], *, interface: Iterable[str] = (),
           threads: int = 4, calls: int = 60, seed: int = 0, timeout: float = 60.0,
           what: str = "the object") -> Counter:
    """Run ``threads`` threads that each make ``calls`` calls of the ``operations`` (each at least once, the
    rest a seeded random mix; an operation gets the thread's ``random.Random``); return the calls per name.

    ``interface``: the public methods the exercise promises are thread-safe; each needs an operation of that
    name (a test that forgets one is the test's bug: ``ValueError``).
    """
    missing = sorted(set(interface) - set(operations))
    if missing:
        raise ValueError(f"hammer(): no operation for the public method(s) {missing}; every method of a "
                         f"thread-safe interface must be stressed")
    names = sorted(operations)
    plans = []
    for i in range(threads):
        rng = random.Random(f"{seed}:{i}")
        plan = names + [rng.choice(names) for _ in range(max(0, calls - len(names)))]
        rng.shuffle(plan)
        plans.append((rng, plan))
    barrier = threading.Barrier(threads)
    errors: list[str] = []

    def worker(rng: random.Random, plan: list[str]) -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            return
        for name in plan:
            try:
                operations[name](rng)
            except Exception as exc:  # noqa: BLE001 - reported with the method's name
                errors.append(f"{name}() raised {type(exc).__name__}: {exc}")
                return

    workers = [threading.Thread(target=worker, args=plan, daemon=True) for plan in plans]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout)
    if any(t.is_alive() for t in workers):
        raise StressFailed(f"{threads} threads calling {names} on {what} at once did not finish within "
                           f"{timeout:g} s: a deadlock (a lock taken twice, or never released)?")
    if errors:
        raise StressFailed(f"{threads} threads calling {names} on {what} at once: {errors[0]}"
                           + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    return Counter(name for _, plan in plans for name in plan)
