"""Drive ``async def`` code from plain, synchronous code: for lesson 12's checks and tests.

A coroutine cannot cross the grader's channel (``grader.sandbox.rpc``): the tests run
in another process, and awaiting needs the event loop of the process that made
the coroutine. So lesson 12 imports these two helpers *into its answer cells*:
they run in the learner's process, and the tests reach them as plain
functions that take and return data.

- :func:`run_concurrently` starts one call per argument tuple on a new event
  loop, all at once (``asyncio.gather``), in a thread of its own, so it works
  inside Jupyter too (whose kernel already runs a loop, where ``asyncio.run``
  refuses to start another) and returns what each call returned or raised;
- :func:`as_async` turns a blocking function into an ``async def`` that yields to
  the event loop once before it calls it, as a network call would, so
  concurrent callers all start before the first one finishes.

>>> calls = []
>>> query = as_async(lambda x: calls.append(x) or x * 2)
>>> run_concurrently(query, [(1,), (2,)])
[('value', 2), ('value', 4)]
>>> async def broken(x):
...     raise KeyError(x)
>>> run_concurrently(broken, [(7,)])
[('error', 'KeyError', '7')]
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Iterable

__all__ = ["run_concurrently", "as_async"]

_MAX_MESSAGE = 300


def _outcome(result: Any) -> tuple:
    if isinstance(result, BaseException):
        return ("error", type(result).__name__, str(result)[:_MAX_MESSAGE])
    return ("value", result)


def run_concurrently(fn: Callable[..., Awaitable[Any]], calls: Iterable[tuple]) -> list[tuple]:
    """Await ``fn(*args)`` for every ``args`` in ``calls``, all at once, on a new event loop.

    Returns one outcome per call, in order: ``("value", result)`` or
    ``("error", exception type name, message)``. The loop runs in a thread of
    its own and is closed afterwards.
    """
    calls = [tuple(args) for args in calls]
    box: dict[str, Any] = {}

    async def gather() -> list[Any]:
        return await asyncio.gather(*(fn(*args) for args in calls), return_exceptions=True)

    def run() -> None:
        try:
            box["results"] = asyncio.run(gather())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="run-concurrently", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return [_outcome(result) for result in box["results"]]


def as_async(load: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` around the blocking ``load``: it yields to the loop once, then returns ``load(*args)``."""

    async def query(*args: Any) -> Any:
        await asyncio.sleep(0)
        return load(*args)

    query.__name__ = query.__qualname__ = f"as_async({getattr(load, '__name__', 'load')})"
    return query
