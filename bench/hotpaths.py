"""Section 4: the cost of a cache hit and a cache miss, and Redis round trips per call.

Every implementation is used the same way: one call ``fn(key)`` that returns
the value, loading it with a trivial loader on a miss (cache-aside). A *hit*
is a call for a key that is stored; a *miss* is a call for a key never seen,
which stores it (no eviction: the caches are big enough). Times are
nanoseconds per call with the loop's own cost subtracted; each timing is
repeated and the median and spread reported.
"""

from __future__ import annotations

import functools
import gc
import threading
import time
from typing import Any, Callable

import cachetools

from .common import Config, log, redis_server, summary
from .reference import load_reference

_MISSING = object()


def _load(key):
    return key


def _loop_overhead(keys: list) -> int:
    start = time.perf_counter_ns()
    for k in keys:
        pass
    return time.perf_counter_ns() - start


def _time_calls(fn: Callable, keys: list) -> int:
    start = time.perf_counter_ns()
    for k in keys:
        fn(k)
    return time.perf_counter_ns() - start


# ---- in-process implementations: factory() -> (fn, prefill(keys))


def dict_lock():
    data, lock = {}, threading.Lock()

    def fn(key):
        with lock:
            try:
                return data[key]
            except KeyError:
                pass
        value = _load(key)
        with lock:
            data[key] = value
        return value
    return fn


def plain_dict():
    data = {}

    def fn(key):
        try:
            return data[key]
        except KeyError:
            value = data[key] = _load(key)
            return value
    return fn


def lru(maxsize: int):
    return functools.lru_cache(maxsize=maxsize)(_load)


def ttlcache_bare(maxsize: int):
    cache = cachetools.TTLCache(maxsize=maxsize, ttl=300)

    def fn(key):
        try:
            return cache[key]
        except KeyError:
            value = cache[key] = _load(key)
            return value
    return fn


def cached_ttl(maxsize: int, lock: bool = True):
    return cachetools.cached(cachetools.TTLCache(maxsize=maxsize, ttl=300),
                             lock=threading.Lock() if lock else None)(_load)


def simple_cache_get(cls, maxsize: int):
    """The reference SimpleCache used as cache-aside: get(), and set() on a miss."""
    kwargs = {"maxsize": maxsize} if "maxsize" in cls.__init__.__code__.co_varnames else {}
    cache = cls(default_ttl=300, **kwargs)
    get, set_ = cache.get, cache.set

    def fn(key):
        value = get(key, _MISSING)
        if value is _MISSING:
            value = _load(key)
            set_(key, value)
        return value
    fn.cache = cache
    return fn


def _rounds(cfg: Config) -> int:
    return 1 if cfg.scale == "tiny" else max(5, 2 * cfg.repeats + 1)


def _measure_in_process(impls: list[tuple[str, Callable[[], Callable], Any]], cfg: Config,
                        hit_keys: int = 1_000) -> list[dict[str, Any]]:
    """Interleaved rounds: in each round every implementation is timed once (hits, direct hits, misses),
    so slow phases of a noisy machine hit all of them alike."""
    n = cfg.hot_ops
    hot = list(range(hit_keys)) * max(1, n // hit_keys)
    fresh = list(range(10**9, 10**9 + n))
    samples = {name: {"hit": [], "miss": [], "direct": []} for name, _, _ in impls}
    for _ in range(_rounds(cfg)):
        for name, factory, direct_hit in impls:
            gc.collect()
            gc.disable()
            try:
                fn = factory()
                samples[name]["miss"].append((_time_calls(fn, fresh) - _loop_overhead(fresh)) / n)
                fn = factory()
                for k in range(hit_keys):
                    fn(k)
                _time_calls(fn, hot[:hit_keys])  # warm
                overhead = _loop_overhead(hot)
                samples[name]["hit"].append((_time_calls(fn, hot) - overhead) / len(hot))
                if direct_hit is not None:
                    getter = direct_hit(fn)
                    samples[name]["direct"].append((_time_calls(getter, hot) - overhead) / len(hot))
            finally:
                gc.enable()
    rows = []
    for name, _, _ in impls:
        s = samples[name]
        row = {"name": name, "hit_ns": summary(s["hit"]), "miss_ns": summary(s["miss"]),
               "round_trips_hit": 0, "round_trips_miss": 0}
        if s["direct"]:
            row["direct_hit_ns"] = summary(s["direct"])
        rows.append(row)
    return rows


# ---- Redis: count the commands each call sends


class CommandCounter:
    """Wraps a redis-py client's execute_command (every command method goes through it)."""

    def __init__(self, client) -> None:
        self.client, self.count = client, 0
        inner = client.execute_command

        def counted(*args, **kwargs):
            self.count += 1
            return inner(*args, **kwargs)
        client.execute_command = counted


def _redis_client(url: str | None):
    if url:
        import redis
        return redis.Redis.from_url(url, decode_responses=True)
    import fakeredis
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def _measure_redis(backend: str, url: str | None, redis_cache, cfg: Config) -> list[dict[str, Any]]:
    rows = []
    n = cfg.redis_ops
    client = _redis_client(url)
    client.flushdb()
    counter = CommandCounter(client)
    client.set("bench:raw", "1")
    raw, dec_hit, dec_miss = [], [], []
    trips_hit = trips_miss = None
    for rep in range(_rounds(cfg)):
        keys = ["bench:raw"] * n
        overhead = _loop_overhead(keys)
        raw.append((_time_calls(client.get, keys) - overhead) / n)

        @redis_cache(client, prefix=f"bench{rep}", ttl=300)
        def square(x):
            return x * x

        fresh = list(range(n))
        overhead = _loop_overhead(fresh)
        before = counter.count
        dec_miss.append((_time_calls(square, fresh) - overhead) / n)
        trips_miss = (counter.count - before) / n
        before = counter.count
        dec_hit.append((_time_calls(square, fresh) - overhead) / n)
        trips_hit = (counter.count - before) / n
    rows.append({"name": f"raw GET ({backend})", "hit_ns": summary(raw), "round_trips_hit": 1})
    rows.append({"name": f"lesson 07 redis_cache ({backend})", "hit_ns": summary(dec_hit), "miss_ns": summary(dec_miss),
                 "round_trips_hit": trips_hit, "round_trips_miss": trips_miss})
    client.flushdb()
    return rows


def run(cfg: Config) -> dict[str, Any]:
    size = cfg.hot_ops * 2 + 10
    ttl_ref = load_reference("04-simple-cache", ["simple-cache-ttl"]).SimpleCache
    lru_ref = load_reference("04-simple-cache", ["simple-cache-lru"]).SimpleCache
    redis_cache = load_reference("07-redis-decorator", ["redis-cache"]).redis_cache
    getter = lambda fn: fn.cache.get  # noqa: E731 - SimpleCache.get on a stored key, no wrapper
    impls = [
        ("dict (no lock)", plain_dict, None),
        ("dict + lock", dict_lock, None),
        ("functools.lru_cache", lambda: lru(size), None),
        ("cachetools TTLCache (bare)", lambda: ttlcache_bare(size), None),
        ("@cached(TTLCache)", lambda: cached_ttl(size, lock=False), None),
        ("@cached(TTLCache, lock=Lock())", lambda: cached_ttl(size, lock=True), None),
        ("lesson 04 SimpleCache, ex. 1 (TTL)", lambda: simple_cache_get(ttl_ref, size), getter),
        ("lesson 04 SimpleCache, ex. 2 (TTL+LRU+stats)", lambda: simple_cache_get(lru_ref, size), getter),
    ]
    log(f"hot paths: {len(impls)} in-process caches, {_rounds(cfg)} interleaved rounds of {cfg.hot_ops} calls")
    rows = _measure_in_process(impls, cfg)
    log("hot paths: fakeredis")
    rows += _measure_redis("fakeredis", None, redis_cache, cfg)
    real = "not measured (--no-real-redis)"
    if cfg.real_redis:
        import tempfile
        from pathlib import Path
        with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp, redis_server(Path(tmp)) as url:
            if url:
                log("hot paths: redis-server")
                rows += _measure_redis("redis-server, loopback", url, redis_cache, cfg)
                real = "measured"
            else:
                real = "not measured: no redis-server binary"
    by = {r["name"]: r for r in rows}
    ref = by["lesson 04 SimpleCache, ex. 2 (TTL+LRU+stats)"]
    target = by["@cached(TTLCache, lock=Lock())"]
    def ratio(a: str, b: str, field: str = "hit_ns") -> dict[str, float]:
        x = by[a].get(field) or by[a]["hit_ns"]
        y = by[b]["hit_ns"]
        return {"median": x["median"] / y["median"], "best": x["min"] / y["min"]}

    ratios = {
        "SimpleCache ex. 2 (cache-aside call) / @cached(TTLCache, lock)": ratio(ref["name"], target["name"]),
        "SimpleCache ex. 2 .get() / @cached(TTLCache, lock)": ratio(ref["name"], target["name"], "direct_hit_ns"),
        "SimpleCache ex. 1 (cache-aside call) / @cached(TTLCache, lock)":
            ratio("lesson 04 SimpleCache, ex. 1 (TTL)", target["name"]),
    }
    return {"rows": rows, "ratios": ratios, "real_redis": real, "ops": cfg.hot_ops, "redis_ops": cfg.redis_ops}
