"""Section 5: database calls under N concurrent misses, and hit ratios against Belady's optimum.

Stampede: N threads released together by a barrier all ask for the same
missing key; the simulated query sleeps ``stampede_delay`` seconds and counts
itself. Each protection is measured on a fresh, empty cache.

Hit ratio: every policy replays the same seeded request streams from
``course_lib.workloads`` (cache-aside: a miss stores the key), at several
capacities, next to ``optimal_hit_ratio`` (Belady: evict the key needed
furthest in the future). TTL is cachetools' TTLCache (LRU plus a time-to-live)
whose clock advances by one per request.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import cachetools

from course_lib import workloads

from .common import Config, log, redis_server, summary
from .reference import load_reference


class Database:
    def __init__(self, delay: float) -> None:
        self.delay, self.calls, self._lock = delay, 0, threading.Lock()

    def query(self, key):
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return {"key": key, "value": 42}


def _protections(cfg: Config, redis_url: str | None) -> list[tuple[str, Callable[[Database], Callable[[str], Any]]]]:
    ref = load_reference("09-stampedes-and-failure", ["redis-lock", "single-flight"])

    def none(db):
        cache: dict = {}

        def get(key):
            if key in cache:
                return cache[key]
            value = cache[key] = db.query(key)
            return value
        return get

    def single_flight(db):
        cache: dict = {}
        flight = ref.SingleFlight()

        def get(key):
            if key in cache:
                return cache[key]

            def load():
                value = cache[key] = db.query(key)
                return value
            return flight.do(key, load)
        return get

    def redis_lock(url):
        def make(db):
            if url:
                import redis
                r = redis.Redis.from_url(url, decode_responses=True)
            else:
                import fakeredis
                r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
            r.flushdb()
            prefix = f"bench:stampede:{time.monotonic_ns()}"
            return lambda key: ref.get_with_lock(r, f"{prefix}:{key}", lambda: db.query(key), ttl=300,
                                                 lock_timeout=5.0, wait_timeout=30.0,
                                                 poll_interval=max(0.001, cfg.stampede_delay / 10))
        return make

    def cached_lock(db):
        return cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=300), lock=threading.Lock())(db.query)

    def cached_condition(db):
        return cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=300),
                                 condition=threading.Condition())(db.query)

    out = [("no protection (dict cache-aside)", none),
           ("cachetools @cached(lock=Lock())", cached_lock),
           ("cachetools @cached(condition=Condition())", cached_condition),
           ("lesson 09 SingleFlight", single_flight),
           ("lesson 09 get_with_lock (fakeredis)", redis_lock(None))]
    if redis_url:
        out.append(("lesson 09 get_with_lock (redis-server)", redis_lock(redis_url)))
    return out


def _stampede_once(make: Callable[[Database], Callable[[str], Any]], n: int, delay: float) -> tuple[int, float, int]:
    db = Database(delay)
    get = make(db)
    barrier = threading.Barrier(n)
    errors = []

    def worker():
        barrier.wait()
        try:
            get("hot")
        except Exception as exc:  # reported, not raised
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return db.calls, time.perf_counter() - start, len(errors)


def stampede(cfg: Config) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp, \
            (redis_server(Path(tmp)) if cfg.real_redis else _null()) as url:
        for name, make in _protections(cfg, url):
            for n in cfg.stampede_sizes:
                calls, walls, errors = [], [], 0
                for _ in range(cfg.repeats):
                    c, w, e = _stampede_once(make, n, cfg.stampede_delay)
                    calls.append(c)
                    walls.append(w)
                    errors += e
                rows.append({"protection": name, "n": n, "db_calls": summary(calls), "wall_s": summary(walls),
                             "errors": errors})
            log(f"stampede: {name}")
    return {"rows": rows, "delay_s": cfg.stampede_delay, "repeats": cfg.repeats}


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------- hit ratio


class _Tick:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _replay(cache, trace, tick: _Tick | None = None) -> float:
    hits = 0
    for key in trace:
        if tick is not None:
            tick.now += 1
        try:
            cache[key]
            hits += 1
        except KeyError:
            cache[key] = key
    return hits / len(trace) if trace else 0.0


def hit_ratios(cfg: Config) -> dict[str, Any]:
    n, keys = cfg.trace_length, cfg.trace_keys
    traces = {
        "zipf s=1.0": workloads.zipf(n, n_keys=keys, s=1.0, seed=1),
        "zipf s=0.8": workloads.zipf(n, n_keys=keys, s=0.8, seed=2),
        "hot-key bursts": workloads.hot_key_bursts(n, n_keys=keys, burst_every=200, burst_length=50, seed=3),
        "uniform": workloads.uniform(n, n_keys=keys, seed=4),
    }
    policies = {
        "LRU": lambda c: (cachetools.LRUCache(maxsize=c), None),
        "LFU": lambda c: (cachetools.LFUCache(maxsize=c), None),
        "FIFO": lambda c: (cachetools.FIFOCache(maxsize=c), None),
        f"TTL ({cfg.ttl_ticks} requests)": lambda c: _ttl(c, cfg.ttl_ticks),
    }
    out: dict[str, Any] = {"capacities": cfg.capacities, "length": n, "keys": keys, "workloads": {}}
    for wname, trace in traces.items():
        series = {}
        for pname, make in policies.items():
            ys = []
            for cap in cfg.capacities:
                cache, tick = make(cap)
                ys.append(_replay(cache, trace, tick))
            series[pname] = ys
        optimal = [workloads.optimal_hit_ratio(trace, cap) for cap in cfg.capacities]
        out["workloads"][wname] = {"series": series, "optimal": optimal}
        log(f"hit ratio: {wname}")
    return out


def _ttl(capacity: int, ttl: int):
    tick = _Tick()
    return cachetools.TTLCache(maxsize=capacity, ttl=ttl, timer=tick), tick


def run(cfg: Config) -> dict[str, Any]:
    return {"stampede": stampede(cfg), "hit_ratio": hit_ratios(cfg)}
