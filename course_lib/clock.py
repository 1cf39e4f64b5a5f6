"""A clock you move by hand, so no lesson or test sleeps to wait for a TTL.

Use it wherever a cache accepts a timer (cachetools' ``timer=``, your own
caches' ``clock=``); give it Redis clients and ``advance`` shortens their
keys' TTLs too.

>>> from cachetools import TTLCache
>>> clock = FakeClock()
>>> cache = TTLCache(maxsize=10, ttl=30, timer=clock)
>>> cache["k"] = "v"
>>> _ = clock.advance(29.9); "k" in cache
True
>>> _ = clock.advance(0.1); "k" in cache
False
"""

from __future__ import annotations

import threading

import redis

from .redis_conn import age_keys

__all__ = ["FakeClock"]


class FakeClock:
    """A callable returning the current fake time in seconds.

    ``redis_clients`` (and ``redis_match``) say which Redis keys ``advance``
    ages as well; see ``course_lib.redis_conn.age_keys``. When the grader's
    tests hand a clock to a learner's code, that code may read it, not move it.
    """

    __learner_api__ = frozenset({"__call__", "time"})

    def __init__(self, start: float = 1_000_000.0, *, redis_clients: tuple[redis.Redis, ...] = (),
                 redis_match: str = "*") -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._redis = tuple(redis_clients)
        self._match = redis_match

    def __call__(self) -> float:
        return self._now

    def time(self) -> float:
        """The current fake time (same as calling the clock)."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; advance({seconds!r}) was asked")
        with self._lock:
            self._now += seconds
        for client in self._redis:
            age_keys(client, seconds, match=self._match)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
