"""Redis under memory pressure: the server's own counters, and what each ``maxmemory-policy`` does.

- ``server_stats(r)``: ``used_memory``, ``maxmemory``, ``maxmemory_policy``, ``evicted_keys``,
  ``keyspace_hits`` and ``keyspace_misses`` as the server reports them in ``INFO``
  (``None`` for what it does not report: fakeredis has none of the counters).
- ``eviction_experiment(r, policy)``: write more than a memory budget holds, under one
  policy, and report what was refused, evicted and kept. It is **measured** on a real
  server that allows ``CONFIG SET`` and holds nothing but course keys (the limit and the
  policy are put back afterwards), and **simulated** otherwise by ``EvictionModel``, a
  small model of the same rules; the result says which, and why.

>>> result = eviction_experiment(None, "volatile-lru", writes=400, budget_bytes=200_000)
>>> result.measured, result.refused, result.sessions_kept
(False, 0, 1.0)
>>> eviction_experiment(None, "noeviction", writes=400, budget_bytes=200_000).refused > 0
True
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass
from typing import Any

import redis

from .redis_conn import clear_namespace, is_embedded

__all__ = ["POLICIES", "EvictionModel", "EvictionResult", "OutOfMemory", "eviction_experiment", "server_stats"]

POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru")
STATS = ("used_memory", "maxmemory", "maxmemory_policy", "evicted_keys", "keyspace_hits", "keyspace_misses")
OOM_MESSAGE = "OOM command not allowed when used memory > 'maxmemory'."
_COURSE_KEY_PREFIXES = ("lesson", "course:")
_KEY_OVERHEAD = 64  # bytes the model adds per key (Redis' own bookkeeping is of that order)


def server_stats(r: redis.Redis) -> dict[str, Any]:
    """The server's memory and keyspace counters from ``INFO memory`` and ``INFO stats`` (None if not reported)."""
    info: dict[str, Any] = {}
    for section in ("memory", "stats"):
        try:
            info.update(r.info(section))
        except redis.RedisError:
            pass
    return {name: info.get(name) for name in STATS}


class OutOfMemory(redis.ResponseError):
    """The model refused a write, as Redis does under ``noeviction`` (or with nothing left to evict)."""


class EvictionModel:
    """A dict with Redis' eviction rules: a byte budget, and a policy for what goes when it is full.

    Sizes are key + value + a fixed overhead per key. ``allkeys-lru`` evicts the least
    recently used key, ``allkeys-lfu`` the least frequently used one (ties: least
    recently used), ``volatile-lru`` the least recently used key *with a TTL*, and
    ``noeviction`` nothing: a write that does not fit raises ``OutOfMemory``, as does a
    volatile write when no key has a TTL. Real Redis samples a few keys instead of
    keeping exact orders (``maxmemory-samples 5``) and counts LFU logarithmically, so
    it keeps *about* the same keys; the refusals of ``noeviction`` and ``volatile-*`` it
    reproduces exactly.
    """

    def __init__(self, budget_bytes: int, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown maxmemory-policy {policy!r}; the model knows {', '.join(POLICIES)}")
        self.budget, self.policy = budget_bytes, policy
        self.used = 0
        self.evicted = 0
        self._data: collections.OrderedDict[str, tuple[str, bool]] = collections.OrderedDict()  # LRU first
        self._uses: dict[str, int] = {}

    def _size(self, key: str, value: str) -> int:
        return len(key.encode()) + len(value.encode()) + _KEY_OVERHEAD

    def _victim(self) -> str | None:
        if self.policy == "allkeys-lru":
            return next(iter(self._data), None)
        if self.policy == "volatile-lru":
            return next((k for k, (_, has_ttl) in self._data.items() if has_ttl), None)
        if self.policy == "allkeys-lfu":
            order = {k: i for i, k in enumerate(self._data)}
            return min(self._data, key=lambda k: (self._uses[k], order[k]), default=None)
        return None

    def _remove(self, key: str) -> None:
        value, _ = self._data.pop(key)
        self._uses.pop(key)
        self.used -= self._size(key, value)

    def set(self, key: str, value: str, *, ttl: bool) -> None:
        """Store ``key`` (``ttl``: whether it has an expiry), evicting by the policy; OutOfMemory if it cannot."""
        if key in self._data:
            self._remove(key)
        size = self._size(key, value)
        while self.used + size > self.budget:
            victim = self._victim()
            if victim is None:
                raise OutOfMemory(OOM_MESSAGE)
            self._remove(victim)
            self.evicted += 1
        self._data[key] = (value, ttl)
        self._uses[key] = 1
        self.used += size

    def get(self, key: str) -> str | None:
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        self._uses[key] += 1
        return self._data[key][0]

    def __contains__(self, key: object) -> bool:
        return key in self._data


@dataclass(frozen=True)
class EvictionResult:
    """What one run of :func:`eviction_experiment` did; ``measured`` says whether a real server did it."""

    policy: str
    measured: bool
    how: str  # where the numbers come from, in a sentence
    writes: int  # SET commands sent
    refused: int  # writes that failed with an OOM error
    evicted: int  # keys removed to make room
    sessions_kept: float  # share of the sessions (keys without a TTL) still stored at the end
    hot_kept: float  # share of the hot cache keys (read all the time) still stored at the end


def _workload(prefix: str, writes: int, value_bytes: int, hot: int):
    """(key, has_ttl) for each write; every 4th key is a session without TTL, the rest cache entries with one."""
    keys = [(f"{prefix}session:{i}", False) if i % 4 == 0 else (f"{prefix}cache:{i}", True) for i in range(writes)]
    hot_keys = [k for k, has_ttl in keys if has_ttl][:hot]
    return keys, hot_keys, "x" * value_bytes


def _why_not_measured(r: redis.Redis | None) -> str:
    """Why a real measurement is not possible or not safe on ``r`` ('' when it is)."""
    if r is None:
        return "no server was given"
    if is_embedded(r):
        return "fakeredis does not emulate maxmemory or eviction"
    try:
        r.config_get("maxmemory")
    except (redis.RedisError, PermissionError) as exc:
        return f"this server refuses CONFIG ({str(exc)[:80]}); the grader's sandboxed Redis does"
    db = r.connection_pool.connection_kwargs.get("db", 0)
    keyspace = r.info("keyspace")
    others = {name: v["keys"] for name, v in keyspace.items() if name != f"db{db}" and v.get("keys")}
    if others:
        return f"the server holds keys in other databases ({others}): a lower maxmemory could evict them"
    foreign = [k for k in itertools.islice(r.scan_iter(count=1000), 50_000)
               if not str(k).startswith(_COURSE_KEY_PREFIXES)]
    if foreign:
        return (f"the server holds {len(foreign)} keys that are not the course's (e.g. {foreign[0]!r}): "
                "a lower maxmemory could evict them")
    return ""


def eviction_experiment(r: redis.Redis | None, policy: str, *, prefix: str = "lesson11:evict:", writes: int = 2000,
                        value_bytes: int = 1000, budget_bytes: int = 1_000_000, hot: int = 20) -> EvictionResult:
    """Write ``writes`` values of ``value_bytes`` into ``budget_bytes`` of memory under ``policy``.

    Every 4th key is a session (no TTL), the others cache entries (TTL 1 h); the first
    ``hot`` cache keys are read after every 50 writes. On a real server that allows it
    (see the module docstring) ``maxmemory`` is set to the memory in use plus the budget,
    and put back with the policy when the run ends; otherwise the model runs the same
    workload.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown maxmemory-policy {policy!r}; choose one of {', '.join(POLICIES)}")
    keys, hot_keys, value = _workload(prefix, writes, value_bytes, hot)
    reason = _why_not_measured(r)
    if reason:
        model = EvictionModel(budget_bytes, policy)
        refused = 0
        for i, (key, has_ttl) in enumerate(keys, 1):
            try:
                model.set(key, value, ttl=has_ttl)
            except OutOfMemory:
                refused += 1
            if i % 50 == 0:
                for k in hot_keys:
                    model.get(k)
        kept = [key in model for key, _ in keys]
        how = f"simulated by the course's model ({reason})"
        evicted = model.evicted
    else:
        refused, evicted, kept = _measure(r, policy, keys, hot_keys, value, budget_bytes, prefix)
        how = "measured on the real Redis server (maxmemory and the policy were put back afterwards)"
    sessions = [k for (_, has_ttl), k in zip(keys, kept) if not has_ttl]
    hot_set = set(hot_keys)
    hot_flags = [k for (key, _), k in zip(keys, kept) if key in hot_set]
    return EvictionResult(policy, not reason, how, writes, refused, evicted,
                          sum(sessions) / max(1, len(sessions)), sum(hot_flags) / max(1, len(hot_flags)))


def _measure(r: redis.Redis, policy: str, keys, hot_keys, value: str, budget_bytes: int,
             prefix: str) -> tuple[int, int, list[bool]]:
    old_max = r.config_get("maxmemory")["maxmemory"]
    old_policy = r.config_get("maxmemory-policy")["maxmemory-policy"]
    clear_namespace(r, prefix)
    evicted_before = int(r.info("stats")["evicted_keys"])
    refused = 0
    try:
        r.config_set("maxmemory-policy", policy)
        r.config_set("maxmemory", int(r.info("memory")["used_memory"]) + budget_bytes)
        for start in range(0, len(keys), 50):
            with r.pipeline(transaction=False) as pipe:
                for key, has_ttl in keys[start:start + 50]:
                    pipe.set(key, value, ex=3600 if has_ttl else None)
                for key in hot_keys:
                    pipe.get(key)
                replies = pipe.execute(raise_on_error=False)
            refused += sum(1 for reply in replies if isinstance(reply, redis.exceptions.OutOfMemoryError))
        evicted = int(r.info("stats")["evicted_keys"]) - evicted_before
        with r.pipeline(transaction=False) as pipe:
            for key, _ in keys:
                pipe.exists(key)
            kept = [bool(n) for n in pipe.execute()]
    finally:
        r.config_set("maxmemory", old_max)
        r.config_set("maxmemory-policy", old_policy)
        clear_namespace(r, prefix)
    return refused, evicted, kept
