"""Lesson 09-stampedes-and-failure: the hidden tests reject real stampede, lock, XFetch, monitoring and
fallback bugs, and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The five exercises are independent (the fallback tests use their own monitor), so each run
carries the k-th bug of every exercise: those must lose their points, and the others keep theirs. Each bug
names the message fragment that shows which check caught it.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

_SOLUTION = solution_of("09")

# -- redis-lock: buggy implementations -------------------------------------------------------------

LOCK_CHECK_THEN_LOCK_WITHOUT_RECHECK = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    cached = r.get(key)
    if cached is not None:
        return json.loads(cached)
    lock_key, token = f"{key}:lock", uuid.uuid4().hex
    deadline = clock() + wait_timeout
    while not r.set(lock_key, token, nx=True, px=int(lock_timeout * 1000)):
        if clock() >= deadline:
            raise TimeoutError(key)
        sleep(poll_interval)
    try:  # BUG: the previous holder stored the value while we waited; we load it again
        value = loader()
        r.set(key, json.dumps(value), ex=ttl)
        return value
    finally:
        r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
               1, lock_key, token)
'''

LOCK_WITHOUT_TIMEOUT = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    lock_key, token = f"{key}:lock", uuid.uuid4().hex
    deadline = clock() + wait_timeout
    while True:
        cached = r.get(key)
        if cached is not None:
            return json.loads(cached)
        if r.set(lock_key, token, nx=True):  # BUG: no PX, a crashed holder blocks the key forever
            try:
                cached = r.get(key)
                if cached is not None:
                    return json.loads(cached)
                value = loader()
                r.set(key, json.dumps(value), ex=ttl)
                return value
            finally:
                r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                       1, lock_key, token)
        if clock() >= deadline:
            raise TimeoutError(key)
        sleep(poll_interval)
'''

LOCK_RELEASED_WITH_PLAIN_DELETE = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    lock_key = f"{key}:lock"
    deadline = clock() + wait_timeout
    while True:
        cached = r.get(key)
        if cached is not None:
            return json.loads(cached)
        if r.set(lock_key, uuid.uuid4().hex, nx=True, px=int(lock_timeout * 1000)):
            try:
                cached = r.get(key)
                if cached is not None:
                    return json.loads(cached)
                value = loader()
                r.set(key, json.dumps(value), ex=ttl)
                return value
            finally:
                r.delete(lock_key)  # BUG: may delete the lock another worker took after ours expired
        if clock() >= deadline:
            raise TimeoutError(key)
        sleep(poll_interval)
'''

LOCK_NOT_RELEASED_WHEN_LOADER_FAILS = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    lock_key, token = f"{key}:lock", uuid.uuid4().hex
    deadline = clock() + wait_timeout
    while True:
        cached = r.get(key)
        if cached is not None:
            return json.loads(cached)
        if r.set(lock_key, token, nx=True, px=int(lock_timeout * 1000)):
            cached = r.get(key)
            if cached is None:
                value = loader()  # BUG: no finally, a failing loader leaves the lock held
                r.set(key, json.dumps(value), ex=ttl)
            else:
                value = json.loads(cached)
            r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                   1, lock_key, token)
            return value
        if clock() >= deadline:
            raise TimeoutError(key)
        sleep(poll_interval)
'''

LOCK_WAITS_FOREVER = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    lock_key, token = f"{key}:lock", uuid.uuid4().hex
    while True:  # BUG: wait_timeout is ignored
        cached = r.get(key)
        if cached is not None:
            return json.loads(cached)
        if r.set(lock_key, token, nx=True, px=int(lock_timeout * 1000)):
            try:
                cached = r.get(key)
                if cached is not None:
                    return json.loads(cached)
                value = loader()
                r.set(key, json.dumps(value), ex=ttl)
                return value
            finally:
                r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                       1, lock_key, token)
        sleep(poll_interval)
'''

# Check, lock, load: no re-check once the lock is won. A waiter re-reads after each sleep, so only a holder
# that finished between this call's GET and its SET NX makes it load a second time.
LOCK_NO_RECHECK_AFTER_WINNING = variant(_SOLUTION["redis-lock"], (
    "                cached = r.get(key)  # the previous holder may have stored it just now\n"
    "                if cached is not None:\n                    return json.loads(cached)\n", ""))

# Lock first, then read: a hit waits for (and takes) the lock, so a key being refreshed blocks its readers.
LOCK_BEFORE_READING = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    lock_key, token = f"{key}:lock", uuid.uuid4().hex
    deadline = clock() + wait_timeout
    while True:
        if r.set(lock_key, token, nx=True, px=max(1, int(lock_timeout * 1000))):  # BUG: even for a hit
            try:
                cached = r.get(key)
                if cached is not None:
                    return json.loads(cached)
                value = loader()
                r.set(key, json.dumps(value), ex=ttl)
                return value
            finally:
                r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                       1, lock_key, token)
        if clock() >= deadline:
            raise TimeoutError(key)
        sleep(poll_interval)
'''

# The holder stores the value and goes round the loop: it sleeps, then serves its own value from Redis.
LOCK_HOLDER_SLEEPS = variant(_SOLUTION["redis-lock"], (
    "                r.set(key, json.dumps(value), ex=ttl)\n                return value\n",
    "                r.set(key, json.dumps(value), ex=ttl)\n"))

# Gives up one poll_interval late: at exactly wait_timeout it sleeps once more.
LOCK_GIVES_UP_LATE = variant(_SOLUTION["redis-lock"], ("if clock() >= deadline:", "if clock() > deadline:"))

# A different correct design: redis-py's Lock (SET NX PX + Lua release), non-blocking attempts in our own loop.
LOCK_WITH_REDIS_PY_LOCK = '''
def get_with_lock(r, key, loader, *, ttl=300, lock_timeout=5.0, wait_timeout=10.0, poll_interval=0.05,
                  sleep=time.sleep, clock=time.monotonic):
    def cached():
        raw = r.get(key)
        return (True, json.loads(raw)) if raw is not None else (False, None)

    lock = r.lock(f"{key}:lock", timeout=lock_timeout, thread_local=False)
    started = clock()
    while True:
        found, value = cached()
        if found:
            return value
        if lock.acquire(blocking=False):
            try:
                found, value = cached()
                if not found:
                    value = loader()
                    r.set(key, json.dumps(value), ex=ttl)
                return value
            finally:
                try:
                    lock.release()
                except redis.exceptions.LockError:
                    pass  # our lock expired and is someone else's now: leave it
        if clock() - started >= wait_timeout:
            raise TimeoutError(f"no value for {key!r} after {wait_timeout} s")
        sleep(poll_interval)
'''

# -- single-flight: buggy implementations ----------------------------------------------------------

SF_CACHES_ERRORS = '''
class SingleFlight:
    def __init__(self):
        self._lock = threading.Lock()
        self._calls = {}

    def do(self, key, fn):
        with self._lock:
            future = self._calls.get(key)
            leader = future is None
            if leader:
                future = self._calls[key] = Future()
        if not leader:
            return future.result()
        try:
            value = fn()
        except BaseException as exc:
            future.set_exception(exc)  # BUG: the failed call stays registered and is served again
            raise
        with self._lock:
            del self._calls[key]
        future.set_result(value)
        return value
'''

SF_LEAKS_WAITERS_ON_ERROR = '''
class SingleFlight:
    def __init__(self):
        self._lock = threading.Lock()
        self._calls = {}

    def do(self, key, fn):
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = {"done": threading.Event()}
        if not leader:
            call["done"].wait()
            if "error" in call:
                raise call["error"]
            return call["value"]
        try:
            call["value"] = fn()
        except BaseException:
            with self._lock:
                del self._calls[key]
            raise  # BUG: the followers' event is never set, they wait forever
        with self._lock:
            del self._calls[key]
        call["done"].set()
        return call["value"]
'''

SF_ONE_LOCK_FOR_ALL_KEYS = '''
class SingleFlight:
    def __init__(self):
        self._lock = threading.Lock()
        self._run = threading.Lock()
        self._calls = {}

    def do(self, key, fn):
        with self._lock:
            future = self._calls.get(key)
            leader = future is None
            if leader:
                future = self._calls[key] = Future()
        if not leader:
            return future.result()
        with self._run:  # BUG: one lock for every key, held while fn runs: other keys wait
            try:
                value = fn()
            except BaseException as exc:
                with self._lock:
                    del self._calls[key]
                future.set_exception(exc)
                raise
        with self._lock:
            del self._calls[key]
        future.set_result(value)
        return value
'''

SF_MEMOIZES_RESULTS = '''
class SingleFlight:
    def __init__(self):
        self._lock = threading.Lock()
        self._calls = {}

    def do(self, key, fn):
        with self._lock:
            future = self._calls.get(key)
            leader = future is None
            if leader:
                future = self._calls[key] = Future()
        if not leader:
            return future.result()
        try:
            value = fn()
        except BaseException as exc:
            with self._lock:
                del self._calls[key]
            future.set_exception(exc)
            raise
        future.set_result(value)  # BUG: never forgotten, so it became a cache without expiry
        return value
'''

SF_NONE_MEANS_NOT_READY = '''
class SingleFlight:
    def __init__(self):
        self._cond = threading.Condition()
        self._running = set()
        self._results = {}

    def do(self, key, fn):
        with self._cond:
            if key in self._running:
                self._cond.wait_for(lambda: key not in self._running)
                value = self._results.get(key)
                if value is not None:  # BUG: a None result (or an error) looks like "no result"
                    return value
            self._running.add(key)
        try:
            value = fn()
            with self._cond:
                self._results[key] = value
            return value
        finally:
            with self._cond:
                self._running.discard(key)
                self._cond.notify_all()
'''

# A different correct design: per-key records with a Condition, the outcome kept until every waiter has read it.
SF_CONDITION_RECORDS = '''
class _Flight:
    __slots__ = ("done", "value", "error")

    def __init__(self):
        self.done, self.value, self.error = False, None, None


class SingleFlight:
    def __init__(self):
        self._cond = threading.Condition()
        self._flights = {}

    def do(self, key, fn):
        with self._cond:
            flight = self._flights.get(key)
            if flight is not None:
                while not flight.done:
                    self._cond.wait()
                if flight.error is not None:
                    raise flight.error
                return flight.value
            flight = self._flights[key] = _Flight()
        try:
            flight.value = fn()
        except BaseException as exc:
            flight.error = exc
        with self._cond:
            flight.done = True
            del self._flights[key]
            self._cond.notify_all()
        if flight.error is not None:
            raise flight.error
        return flight.value
'''

# -- xfetch: buggy implementations -----------------------------------------------------------------

_XFETCH_GET = '''

def xfetch_get(r, key, loader, *, ttl=300, beta=1.0, clock=time.time, rand=random.random):
    raw = r.get(key)
    if raw is not None:
        entry = json.loads(raw)
        if not should_refresh_early(clock(), entry["expiry"], entry["delta"], beta, rand):
            return entry["value"]
    start = clock()
    value = loader()
    end = clock()
    r.set(key, json.dumps({"value": value, "delta": end - start, "expiry": end + ttl}), px=int(ttl * 1000))
    return value
'''

XFETCH_SIGN_OF_LN_WRONG = '''
def should_refresh_early(now, expiry, delta, beta=1.0, rand=random.random):
    u = rand()
    if u <= 0.0:
        return True
    return now + delta * beta * math.log(u) >= expiry  # BUG: ln(u) < 0, so this never refreshes early
''' + _XFETCH_GET

XFETCH_LINEAR_INSTEAD_OF_LN = '''
def should_refresh_early(now, expiry, delta, beta=1.0, rand=random.random):
    u = rand()
    if u <= 0.0:
        return True
    # BUG: a head start uniform in [0, delta * beta] refreshes with probability 1 - gap / (delta * beta),
    # not exp(-gap / (delta * beta)): too early near the expiry, never more than one delta ahead
    return now + delta * beta * (1.0 - u) >= expiry
''' + _XFETCH_GET

XFETCH_BETA_DIVIDES = '''
def should_refresh_early(now, expiry, delta, beta=1.0, rand=random.random):
    u = rand()
    if u <= 0.0:
        return True
    return now - delta / beta * math.log(u) >= expiry  # BUG: beta divides instead of multiplying
''' + _XFETCH_GET

XFETCH_LOG_OF_ZERO_CRASHES = '''
def should_refresh_early(now, expiry, delta, beta=1.0, rand=random.random):
    return now - delta * beta * math.log(rand()) >= expiry  # BUG: rand() may return 0.0
''' + _XFETCH_GET

XFETCH_DELTA_FROM_WALL_CLOCK = '''
def should_refresh_early(now, expiry, delta, beta=1.0, rand=random.random):
    u = rand()
    if u <= 0.0:
        return True
    return now - delta * beta * math.log(u) >= expiry


def xfetch_get(r, key, loader, *, ttl=300, beta=1.0, clock=time.time, rand=random.random):
    raw = r.get(key)
    if raw is not None:
        entry = json.loads(raw)
        if not should_refresh_early(clock(), entry["expiry"], entry["delta"], beta, rand):
            return entry["value"]
    start = time.time()  # BUG: the recompute time is measured on the wall clock, not the injected one
    value = loader()
    delta = time.time() - start
    r.set(key, json.dumps({"value": value, "delta": delta, "expiry": clock() + ttl}), px=int(ttl * 1000))
    return value
'''

XFETCH_STRICT_AT_EXPIRY = variant(_SOLUTION["xfetch"], (
    "return now - delta * beta * math.log(u) >= expiry", "return now - delta * beta * math.log(u) > expiry"))

# A different correct design: the equivalent test u <= exp(-gap / (delta * beta)), entries kept in a Redis hash.
XFETCH_PROBABILITY_AND_HASH = '''
def should_refresh_early(now, expiry, delta, beta=1.0, rand=random.random):
    u = rand()
    gap = expiry - now
    if gap <= 0:
        return True
    scale = delta * beta
    if scale <= 0:
        return False
    return u <= math.exp(-gap / scale)


def xfetch_get(r, key, loader, *, ttl=300, beta=1.0, clock=time.time, rand=random.random):
    entry = r.hgetall(key)
    if entry:
        if not should_refresh_early(clock(), float(entry["expiry"]), float(entry["delta"]), beta, rand):
            return json.loads(entry["value"])
    t0 = clock()
    value = loader()
    t1 = clock()
    with r.pipeline() as pipe:  # MULTI/EXEC: the fields and the expiry together
        pipe.delete(key)
        pipe.hset(key, mapping={"value": json.dumps(value), "delta": repr(t1 - t0), "expiry": repr(t1 + ttl)})
        pipe.pexpire(key, int(ttl * 1000))
        pipe.execute()
    return value
'''

# -- cache-monitor: buggy implementations ----------------------------------------------------------

_MONITOR_BASE = '''
class CacheMonitor:
    def __init__(self):
        self._lock = threading.Lock()
        self.hits = self.misses = self.errors = 0

    def record_hit(self):
        with self._lock:
            self.hits += 1

    def record_miss(self):
        with self._lock:
            self.misses += 1

    def record_error(self):
        with self._lock:
            self.errors += 1
'''

MONITOR_DIVIDES_BY_ZERO = _MONITOR_BASE + '''
    def hit_ratio(self):
        return self.hits / (self.hits + self.misses + self.errors)  # BUG: ZeroDivisionError before any request

    def should_alert(self, threshold=0.8, min_requests=100):
        total = self.hits + self.misses + self.errors
        return total >= min_requests and self.hit_ratio() < threshold
'''

MONITOR_ALERTS_AT_THRESHOLD = _MONITOR_BASE + '''
    def hit_ratio(self):
        total = self.hits + self.misses + self.errors
        return self.hits / total if total else 0.0

    def should_alert(self, threshold=0.8, min_requests=100):
        total = self.hits + self.misses + self.errors
        return total >= min_requests and self.hit_ratio() <= threshold  # BUG: exactly 80% alerts
'''

MONITOR_IGNORES_ERRORS = _MONITOR_BASE + '''
    def hit_ratio(self):
        total = self.hits + self.misses  # BUG: an outage (only errors) looks healthy
        return self.hits / total if total else 0.0

    def should_alert(self, threshold=0.8, min_requests=100):
        total = self.hits + self.misses + self.errors
        return total >= min_requests and self.hit_ratio() < threshold
'''

MONITOR_MIN_REQUESTS_OFF_BY_ONE = _MONITOR_BASE + '''
    def hit_ratio(self):
        total = self.hits + self.misses + self.errors
        return self.hits / total if total else 0.0

    def should_alert(self, threshold=0.8, min_requests=100):
        total = self.hits + self.misses + self.errors
        return total > min_requests and self.hit_ratio() < threshold  # BUG: needs min_requests + 1
'''

# A different correct design: a Counter behind a lock, hits/misses/errors as read-only properties.
MONITOR_COUNTER_PROPERTIES = '''
from collections import Counter as _Counter


class CacheMonitor:
    def __init__(self):
        self._lock = threading.RLock()
        self._counts = _Counter()

    def _add(self, kind):
        with self._lock:
            self._counts[kind] += 1

    def record_hit(self):
        self._add("hit")

    def record_miss(self):
        self._add("miss")

    def record_error(self):
        self._add("error")

    hits = property(lambda self: self._counts["hit"])
    misses = property(lambda self: self._counts["miss"])
    errors = property(lambda self: self._counts["error"])

    def hit_ratio(self):
        with self._lock:
            total = sum(self._counts.values())
            return self._counts["hit"] / total if total else 0.0

    def should_alert(self, threshold=0.8, min_requests=100):
        with self._lock:
            total = sum(self._counts.values())
            if total == 0 or total < min_requests:
                return False
            return self.hit_ratio() < threshold
'''

# -- fallback: buggy implementations ---------------------------------------------------------------

FALLBACK_RAISES_WHEN_REDIS_DOWN = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0

    def get(self, key, loader):
        raw = self.r.get(self.prefix + key)  # BUG: a Redis outage becomes an application outage
        if raw is not None:
            if self.monitor is not None:
                self.monitor.record_hit()
            return json.loads(raw)
        if self.monitor is not None:
            self.monitor.record_miss()
        value = loader()
        self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
        return value
'''

FALLBACK_SWITCHES_REDIS_OFF_FOR_GOOD = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0
        self.redis_ok = True

    def get(self, key, loader):
        if not self.redis_ok:  # BUG: never tries Redis again, so it never recovers
            return loader()
        try:
            raw = self.r.get(self.prefix + key)
        except redis.RedisError:
            self.redis_ok = False
            self.errors += 1
            if self.monitor is not None:
                self.monitor.record_error()
            return loader()
        if raw is not None:
            if self.monitor is not None:
                self.monitor.record_hit()
            return json.loads(raw)
        if self.monitor is not None:
            self.monitor.record_miss()
        value = loader()
        self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
        return value
'''

FALLBACK_BROAD_EXCEPT_RETRIES_LOADER = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0

    def get(self, key, loader):
        try:  # BUG: a database error is counted as a cache error and the query runs twice
            raw = self.r.get(self.prefix + key)
            if raw is not None:
                if self.monitor is not None:
                    self.monitor.record_hit()
                return json.loads(raw)
            if self.monitor is not None:
                self.monitor.record_miss()
            value = loader()
            self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
            return value
        except Exception:
            self.errors += 1
            if self.monitor is not None:
                self.monitor.record_error()
            return loader()
'''

FALLBACK_ERRORS_NOT_COUNTED = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0

    def get(self, key, loader):
        try:
            raw = self.r.get(self.prefix + key)
        except redis.RedisError:
            return loader()  # BUG: the outage is invisible to the counters and the alert
        if raw is not None:
            if self.monitor is not None:
                self.monitor.record_hit()
            return json.loads(raw)
        if self.monitor is not None:
            self.monitor.record_miss()
        value = loader()
        try:
            self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
        except redis.RedisError:
            pass
        return value
'''

FALLBACK_NONE_IS_A_MISS = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0

    def get(self, key, loader):
        try:
            raw = self.r.get(self.prefix + key)
        except redis.RedisError:
            self.errors += 1
            if self.monitor is not None:
                self.monitor.record_error()
            return loader()
        value = json.loads(raw) if raw is not None else None
        if value is not None:  # BUG: a cached None is a miss forever
            if self.monitor is not None:
                self.monitor.record_hit()
            return value
        if self.monitor is not None:
            self.monitor.record_miss()
        value = loader()
        try:
            self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
        except redis.RedisError:
            self.errors += 1
            if self.monitor is not None:
                self.monitor.record_error()
        return value
'''

# A different correct design: every Redis command goes through one guard that returns a sentinel on failure.
FALLBACK_GUARDED_COMMANDS = '''
_FAILED = object()


class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self._r = r
        self._prefix = prefix
        self._ttl = ttl
        self._monitor = monitor
        self._errors = 0
        self._guard = threading.Lock()

    @property
    def errors(self):
        return self._errors

    def _report(self, event):
        if self._monitor is not None:
            getattr(self._monitor, "record_" + event)()

    def _redis(self, command, *args, **kwargs):
        try:
            return getattr(self._r, command)(*args, **kwargs)
        except redis.RedisError:
            with self._guard:
                self._errors += 1
            self._report("error")
            return _FAILED

    def get(self, key, loader):
        name = self._prefix + key
        raw = self._redis("get", name)
        if raw is _FAILED:
            return loader()
        if raw is not None:
            self._report("hit")
            return json.loads(raw)
        self._report("miss")
        value = loader()
        self._redis("setex", name, self._ttl, json.dumps(value))
        return value
'''

# Only the GET is guarded: when the SET after a miss fails, the request fails although the loader answered.
FALLBACK_ONLY_GET_GUARDED = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0
        self._lock = threading.Lock()

    def _error(self):
        with self._lock:
            self.errors += 1
        if self.monitor is not None:
            self.monitor.record_error()

    def get(self, key, loader):
        try:
            raw = self.r.get(self.prefix + key)
        except redis.RedisError:
            self._error()
            return loader()
        if raw is not None:
            if self.monitor is not None:
                self.monitor.record_hit()
            return json.loads(raw)
        if self.monitor is not None:
            self.monitor.record_miss()
        value = loader()
        self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)  # BUG: a failed SET reaches the caller
        return value
'''

# One try around read, load and write (catching only Redis errors): when the SET fails, the loader runs again.
FALLBACK_ONE_TRY_RELOADS = '''
class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor, self.errors = r, prefix, ttl, monitor, 0
        self._lock = threading.Lock()

    def get(self, key, loader):
        try:
            raw = self.r.get(self.prefix + key)
            if raw is not None:
                if self.monitor is not None:
                    self.monitor.record_hit()
                return json.loads(raw)
            if self.monitor is not None:
                self.monitor.record_miss()
            value = loader()
            self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
            return value
        except redis.RedisError:  # BUG: the SET failed after loader() answered, and loader() runs again
            with self._lock:
                self.errors += 1
            if self.monitor is not None:
                self.monitor.record_error()
            return loader()
'''

# Written after the fault-injection tests, without looking at them again: what happened in a request is
# collected as it goes and reported once at the end (also when the loader raises).
FALLBACK_TALLIES_EVENTS = '''
_DOWN = object()


class ResilientCache:
    def __init__(self, r, *, prefix="lesson09:rc:", ttl=300, monitor=None):
        self.r, self.prefix, self.ttl, self.monitor = r, prefix, ttl, monitor
        self._lock = threading.Lock()
        self._errors = 0

    @property
    def errors(self):
        with self._lock:
            return self._errors

    def _tally(self, events):
        with self._lock:
            self._errors += events.count("error")
        if self.monitor is not None:
            for event in events:
                getattr(self.monitor, "record_" + event)()

    def get(self, key, loader):
        name, events = self.prefix + key, []
        try:
            try:
                raw = self.r.get(name)
            except redis.RedisError:
                events.append("error")
                raw = _DOWN
            if raw is _DOWN:
                return loader()
            if raw is not None:
                events.append("hit")
                return json.loads(raw)
            events.append("miss")
            value = loader()
            try:
                self.r.set(name, json.dumps(value), ex=self.ttl)
            except redis.RedisError:
                events.append("error")
            return value
        finally:
            self._tally(events)
'''

# Written after the whole-interface stress test, without looking at it again: lock-free counters, one deque
# per kind (append and len are atomic in CPython), the counts read hits first so a ratio never exceeds 1.
MONITOR_LOCK_FREE_DEQUES = '''
from collections import deque as _deque


class CacheMonitor:
    def __init__(self):
        self._events = {"hit": _deque(), "miss": _deque(), "error": _deque()}

    hits = property(lambda self: len(self._events["hit"]))
    misses = property(lambda self: len(self._events["miss"]))
    errors = property(lambda self: len(self._events["error"]))

    def record_hit(self):
        self._events["hit"].append(None)

    def record_miss(self):
        self._events["miss"].append(None)

    def record_error(self):
        self._events["error"].append(None)

    def _counts(self):
        hits = self.hits
        return hits, hits + self.misses + self.errors

    def hit_ratio(self):
        hits, total = self._counts()
        return hits / total if total else 0.0

    def should_alert(self, threshold=0.8, min_requests=100):
        hits, total = self._counts()
        return total >= max(1, min_requests) and hits / total < threshold
'''


class TestStampedesAndFailure(LessonContract):
    LESSON = "09"
    BUGS = {
        "redis-lock": {
            "lock-without-recheck": Bug(LOCK_CHECK_THEN_LOCK_WITHOUT_RECHECK, says="check the cache again"),
            "lock-without-timeout": Bug(LOCK_WITHOUT_TIMEOUT, says="had no expiry"),
            "lock-plain-delete": Bug(LOCK_RELEASED_WITH_PLAIN_DELETE, says="someone else's lock"),
            "lock-kept-after-loader-error": Bug(LOCK_NOT_RELEASED_WHEN_LOADER_FAILS, says="finally"),
            "lock-ignores-wait-timeout": Bug(LOCK_WAITS_FOREVER, says="TimeoutError"),
            "lock-no-recheck-after-winning": Bug(LOCK_NO_RECHECK_AFTER_WINNING, says="double-checked locking"),
            "lock-before-reading": Bug(LOCK_BEFORE_READING, says="a hit needs no lock"),
            "lock-holder-sleeps": Bug(LOCK_HOLDER_SLEEPS, says="only a waiter sleeps"),
            "lock-gives-up-late": Bug(LOCK_GIVES_UP_LATE, says="clock() >= the deadline"),
        },
        "single-flight": {
            "sf-caches-errors": Bug(SF_CACHES_ERRORS, says="after a failed call"),
            "sf-leaks-waiters": Bug(SF_LEAKS_WAITERS_ON_ERROR, says="still waiting"),
            "sf-one-lock-for-all-keys": Bug(SF_ONE_LOCK_FOR_ALL_KEYS, says="another key"),
            "sf-memoizes": Bug(SF_MEMOIZES_RESULTS, says="not cached"),
            "sf-none-means-not-ready": Bug(SF_NONE_MEANS_NOT_READY),
        },
        "xfetch": {
            "xfetch-sign-of-ln-wrong": Bug(XFETCH_SIGN_OF_LN_WRONG, says="ln(rand()) is negative"),
            "xfetch-linear-instead-of-ln": Bug(XFETCH_LINEAR_INSTEAD_OF_LN, says="seeded draws"),
            "xfetch-beta-divides": Bug(XFETCH_BETA_DIVIDES, says="beta"),
            "xfetch-log-of-zero": Bug(XFETCH_LOG_OF_ZERO_CRASHES, says="ValueError"),
            "xfetch-delta-on-wall-clock": Bug(XFETCH_DELTA_FROM_WALL_CLOCK, says="measured duration"),
            "xfetch-strict-at-expiry": Bug(XFETCH_STRICT_AT_EXPIRY, says="Compare with >=, not >"),
        },
        "cache-monitor": {
            "monitor-divides-by-zero": Bug(MONITOR_DIVIDES_BY_ZERO, says="ZeroDivisionError"),
            "monitor-alerts-at-threshold": Bug(MONITOR_ALERTS_AT_THRESHOLD, says="exactly 80%"),
            "monitor-ignores-errors": Bug(MONITOR_IGNORES_ERRORS, says="errors were left out"),
            "monitor-min-requests-off-by-one": Bug(MONITOR_MIN_REQUESTS_OFF_BY_ONE, says="min_requests="),
        },
        "fallback": {
            "fallback-raises": Bug(FALLBACK_RAISES_WHEN_REDIS_DOWN, says="Catch redis.RedisError"),
            "fallback-never-recovers": Bug(FALLBACK_SWITCHES_REDIS_OFF_FOR_GOOD, says="after Redis came back"),
            "fallback-broad-except": Bug(FALLBACK_BROAD_EXCEPT_RETRIES_LOADER, says="failing loader was called"),
            "fallback-uncounted": Bug(FALLBACK_ERRORS_NOT_COUNTED, says="cache.errors"),
            "fallback-none-is-a-miss": Bug(FALLBACK_NONE_IS_A_MISS, says="loader returning None"),
            "fallback-only-get-guarded": Bug(FALLBACK_ONLY_GET_GUARDED, says="command 2 of 2 (SET) failed: it raised"),
            "fallback-one-try-reloads": Bug(FALLBACK_ONE_TRY_RELOADS, says="the loader ran 2 times"),
        },
    }
    OTHER_DESIGNS = {  # the second design of cache-monitor and fallback was written against the interface after
        # the fault-injection and stress tests were added
        "redis-lock": {"redis-py-lock": LOCK_WITH_REDIS_PY_LOCK},
        "single-flight": {"condition-records": SF_CONDITION_RECORDS},
        "xfetch": {"probability-and-hash": XFETCH_PROBABILITY_AND_HASH},
        "cache-monitor": {"counter-properties": MONITOR_COUNTER_PROPERTIES, "lock-free-deques": MONITOR_LOCK_FREE_DEQUES},
        "fallback": {"guarded-commands": FALLBACK_GUARDED_COMMANDS, "tallies-events": FALLBACK_TALLIES_EVENTS},
    }
    GRADE_TOGETHER = True
