"""Lesson 11-redis-under-pressure: the hidden tests reject real byte-budget, circuit-breaker and fail-open bugs,
and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The three exercises are independent (the guarded-cache tests use their own breaker), so each run
carries the k-th bug of every exercise: those must lose their points, with the message fragment that names the bug, and
the others keep theirs. Most buggy versions are the solution with one edit (``variant``), so each differs from
a correct implementation by exactly the bug its name says.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

BYTES, BREAKER, GUARDED = "byte-budget", "circuit-breaker", "guarded-cache"

_SOLUTION = solution_of("11")


# -- byte-budget -----------------------------------------------------------------------------------

_JSON_BYTES = 'len(json.dumps(value, ensure_ascii=False).encode("utf-8"))'
BYTES_SHALLOW_GETSIZEOF = variant(_SOLUTION[BYTES], (_JSON_BYTES, "sys.getsizeof(value)"))
BYTES_COUNTS_CHARACTERS = variant(_SOLUTION[BYTES], (_JSON_BYTES, "len(json.dumps(value, ensure_ascii=False))"))
BYTES_COUNTS_ENTRIES = variant(_SOLUTION[BYTES], ("LRUCache(maxsize=max_bytes, getsizeof=payload_size)",
                                       "LRUCache(maxsize=max_bytes)"))
BYTES_FIFO_NOT_LRU = variant(_SOLUTION[BYTES], ("return LRUCache(maxsize=max_bytes, getsizeof=payload_size)",
                                     "from cachetools import FIFOCache\n    "
                                     "return FIFOCache(maxsize=max_bytes, getsizeof=payload_size)"))
BYTES_SHARED_CACHE = variant(_SOLUTION[BYTES], ("def byte_budget_cache(max_bytes):",
                                     "_caches = {}\n\n\ndef byte_budget_cache(max_bytes):"),
                             ("return LRUCache(maxsize=max_bytes, getsizeof=payload_size)",
                              "return _caches.setdefault(max_bytes, LRUCache(maxsize=max_bytes, getsizeof=payload_size))"))

BYTES_SUBCLASS_AND_ITERENCODE = '''
_encoder = json.JSONEncoder(ensure_ascii=False)


def payload_size(value):
    """Bytes of json.dumps(value, ensure_ascii=False) in UTF-8, counted chunk by chunk."""
    return sum(len(chunk.encode("utf-8")) for chunk in _encoder.iterencode(value))


class _JSONBudget(LRUCache):
    def getsizeof(self, value):
        return payload_size(value)


def byte_budget_cache(max_bytes):
    return _JSONBudget(max_bytes)
'''

# -- circuit-breaker -------------------------------------------------------------------------------

BREAKER_NEVER_HALF_OPENS = variant(_SOLUTION[BREAKER], (
    "            if now - self._opened_at >= self.reset_timeout and not self._probe_out:\n"
    "                self._probe_out = True\n                return True\n", ""))  # open until a success comes
BREAKER_HALF_OPEN_LETS_ALL_THROUGH = variant(_SOLUTION[BREAKER], (
    "if now - self._opened_at >= self.reset_timeout and not self._probe_out:",
    "if now - self._opened_at >= self.reset_timeout:"))
BREAKER_COUNTS_ALL_FAILURES = variant(_SOLUTION[BREAKER], (
    "        with self._lock:\n            self._failures = 0\n            self._opened_at = None",
    "        with self._lock:\n            self._opened_at = None"))
BREAKER_FAILED_PROBE_KEEPS_OLD_TIMER = variant(_SOLUTION[BREAKER], (
    "            elif self._probe_out or now - self._opened_at >= self.reset_timeout:\n"
    "                self._opened_at = now\n",
    "            elif self._probe_out or now - self._opened_at >= self.reset_timeout:\n"))
BREAKER_PROBE_RACE = variant(_SOLUTION[BREAKER], (
    "        now = self.clock()\n        with self._lock:\n            if self._opened_at is None:\n"
    "                return True\n"
    "            if now - self._opened_at >= self.reset_timeout and not self._probe_out:\n"
    "                self._probe_out = True\n                return True\n            return False",
    "        if self._opened_at is None:\n            return True\n"
    "        if not self._probe_out and self.clock() - self._opened_at >= self.reset_timeout:  # no lock\n"
    "            self._probe_out = True\n            return True\n        return False"))

BREAKER_DEADLINE_DESIGN = '''
class CircuitBreaker:
    """A deadline instead of an opening time, and an RLock."""

    def __init__(self, *, failure_threshold=5, reset_timeout=30.0, clock=time.monotonic):
        if not failure_threshold >= 1:
            raise ValueError("failure_threshold must be at least 1")
        if not reset_timeout > 0:
            raise ValueError("reset_timeout must be positive")
        self._threshold, self._reset, self._clock = failure_threshold, reset_timeout, clock
        self._guard = threading.RLock()
        self._streak = 0
        self._retry_at = None        # None: closed; else the time from which one probe may go
        self._probing = False

    @property
    def state(self):
        with self._guard:
            if self._retry_at is None:
                return "closed"
            return "open" if self._clock() < self._retry_at else "half-open"

    def allow(self):
        with self._guard:
            state = self.state
            if state == "half-open" and not self._probing:
                self._probing = True
                return True
            return state == "closed"

    def record_success(self):
        with self._guard:
            self._streak, self._retry_at, self._probing = 0, None, False

    def record_failure(self):
        with self._guard:
            if self._probing:
                self._probing = False
                self._retry_at = self._clock() + self._reset
            elif self._retry_at is None:
                self._streak += 1
                if self._streak == self._threshold:
                    self._retry_at = self._clock() + self._reset
'''

# -- guarded-cache ---------------------------------------------------------------------------------

GUARDED_IGNORES_BREAKER = variant(_SOLUTION[GUARDED], ("        if not self.breaker.allow():\n            return loader()\n", ""))
GUARDED_FAILURES_NOT_REPORTED = variant(_SOLUTION[GUARDED], ("                self.errors += 1\n            self.breaker.record_failure()",
                                                  "                self.errors += 1"))
GUARDED_SUCCESS_NOT_REPORTED = variant(_SOLUTION[GUARDED], ("        if raw is not None:\n            self.breaker.record_success()\n",
                                                 "        if raw is not None:\n"),
                                       ("            return value\n        self.breaker.record_success()\n        return value",
                                        "            return value\n        return value"))
# The SET's error is reported, and then a success too: the failure is undone at once.
GUARDED_SUCCESS_AFTER_FAILED_SET = variant(_SOLUTION[GUARDED], (
    "        except redis.RedisError:\n            redis_failed()\n            return value\n",
    "        except redis.RedisError:\n            redis_failed()\n"))
# A success only on a hit: a miss that Redis answered leaves the failures before it counted.
GUARDED_SUCCESS_ONLY_ON_HITS = variant(_SOLUTION[GUARDED], (
    "            return value\n        self.breaker.record_success()\n        return value",
    "            return value\n        return value"))
GUARDED_BROAD_EXCEPT = '''
class GuardedCache:
    def __init__(self, client, breaker, *, prefix="lesson11:gc:", ttl=300):
        self.client, self.breaker, self.prefix, self.ttl = client, breaker, prefix, ttl
        self.errors = 0

    def get(self, key, loader):
        if not self.breaker.allow():
            return loader()
        try:  # BUG: the loader runs inside the try, so its errors count as Redis errors and it runs again
            raw = self.client.get(self.prefix + key)
            if raw is not None:
                self.breaker.record_success()
                return json.loads(raw)
            value = loader()
            self.client.set(self.prefix + key, json.dumps(value), ex=self.ttl)
            self.breaker.record_success()
            return value
        except Exception:
            self.errors += 1
            self.breaker.record_failure()
            return loader()
'''

GUARDED_SENTINEL_DESIGN = '''
_UNAVAILABLE = object()


class GuardedCache:
    """Every Redis command goes through one helper that turns a Redis error into a sentinel."""

    def __init__(self, client, breaker, *, prefix="lesson11:gc:", ttl=300):
        self._client, self._breaker = client, breaker
        self._prefix, self._ttl = prefix, ttl
        self.errors = 0
        self._count = threading.Lock()

    def _redis(self, command, *args, **kwargs):
        try:
            return getattr(self._client, command)(*args, **kwargs)
        except redis.RedisError:
            with self._count:
                self.errors += 1
            self._breaker.record_failure()
            return _UNAVAILABLE

    def get(self, key, loader):
        if not self._breaker.allow():
            return loader()
        name = self._prefix + key
        raw = self._redis("get", name)
        if raw is _UNAVAILABLE:
            return loader()
        if raw is None:
            value = loader()
            if self._redis("set", name, json.dumps([value]), ex=self._ttl) is _UNAVAILABLE:
                return value
        else:
            (value,) = json.loads(raw)  # stored in a one-item list: an envelope
        self._breaker.record_success()
        return value
'''

# A different correct design: each command's outcome goes to the breaker as soon as it is known (a GET that
# answered is a success even if the SET after it fails, which is then a failure).
GUARDED_REPORTS_EACH_COMMAND = '''
class GuardedCache:
    def __init__(self, client, breaker, *, prefix="lesson11:gc:", ttl=300):
        self.client, self.breaker, self.prefix, self.ttl = client, breaker, prefix, ttl
        self.errors = 0
        self._lock = threading.Lock()

    def _command(self, name, *args, **kwargs):
        try:
            result = getattr(self.client, name)(*args, **kwargs)
        except redis.RedisError:
            with self._lock:
                self.errors += 1
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return result

    def get(self, key, loader):
        if not self.breaker.allow():
            return loader()
        name = self.prefix + key
        try:
            raw = self._command("get", name)
        except redis.RedisError:
            return loader()
        if raw is not None:
            return json.loads(raw)
        value = loader()
        try:
            self._command("set", name, json.dumps(value), ex=self.ttl)
        except redis.RedisError:
            pass
        return value
'''


class TestRedisUnderPressure(LessonContract):
    LESSON = "11"
    BUGS = {
        BYTES: {
            "shallow-getsizeof": Bug(BYTES_SHALLOW_GETSIZEOF, says="sys.getsizeof"),
            "characters-not-bytes": Bug(BYTES_COUNTS_CHARACTERS, says="counts the characters"),
            "counts-entries": Bug(BYTES_COUNTS_ENTRIES, says="counts entries"),
            "fifo": Bug(BYTES_FIFO_NOT_LRU, says="use an LRU cache"),
            "shared-cache": Bug(BYTES_SHARED_CACHE, says="share their entries"),
        },
        BREAKER: {
            "never-half-opens": Bug(BREAKER_NEVER_HALF_OPENS, says="never lets a probe through"),
            "half-open-lets-all-through": Bug(BREAKER_HALF_OPEN_LETS_ALL_THROUGH, says="second allow()"),
            "counts-all-failures": Bug(BREAKER_COUNTS_ALL_FAILURES, says="failures in a row"),
            "failed-probe-keeps-old-timer": Bug(BREAKER_FAILED_PROBE_KEEPS_OLD_TIMER, says="new wait"),
            "probe-race": Bug(BREAKER_PROBE_RACE, says="exactly one must get the probe"),
        },
        GUARDED: {
            "ignores-breaker": Bug(GUARDED_IGNORES_BREAKER, says="ask breaker.allow()"),
            "failures-not-reported": Bug(GUARDED_FAILURES_NOT_REPORTED, says="record_failure() was never called"),
            "success-not-reported": Bug(GUARDED_SUCCESS_NOT_REPORTED, says="record_success()"),
            "broad-except": Bug(GUARDED_BROAD_EXCEPT, says="expected 'fresh' after 1"),
            "success-after-failed-set": Bug(GUARDED_SUCCESS_AFTER_FAILED_SET,
                                            says="a record_success() after it undoes the failure"),
            "success-only-on-hits": Bug(GUARDED_SUCCESS_ONLY_ON_HITS, says="not only on a hit"),
        },
    }
    OTHER_DESIGNS = {
        BYTES: {"subclass-and-iterencode": BYTES_SUBCLASS_AND_ITERENCODE},
        BREAKER: {"deadline": BREAKER_DEADLINE_DESIGN},
        GUARDED: {"sentinel": GUARDED_SENTINEL_DESIGN, "reports-each-command": GUARDED_REPORTS_EACH_COMMAND},
    }
    GRADE_TOGETHER = True
