"""Lesson 11-redis-under-pressure: the hidden tests reject real byte-budget, circuit-breaker and fail-open bugs,
and accept other correct designs.

Each grading run replaces answers of the solution with the code below and grades it through the real grader.
The three exercises are independent (the guarded-cache tests use their own breaker), so each run carries one
bug for each exercise at once: those must lose their points, with the message fragment that names the bug, and
the others keep theirs. Most buggy versions are the solution with one edit (``variant``), so each differs from
a correct implementation by exactly the bug its name says.
"""

from __future__ import annotations

import pytest

from course_lib.manifest import COURSE_ROOT, load_course
from grader.course.cells import read_notebook
from grader.course.synthetic import solution_answers
from tests.support import exercise_summary

pytestmark = pytest.mark.slow

LESSON = "11"
BYTES, BREAKER, GUARDED = "byte-budget", "circuit-breaker", "guarded-cache"
EXERCISES = (BYTES, BREAKER, GUARDED)

_SOLUTION = solution_answers(read_notebook(load_course().lesson(LESSON).source_path(COURSE_ROOT)))


def variant(exercise: str, *edits: tuple[str, str]) -> str:
    """The solution of ``exercise`` with each (old, new) edit applied; every ``old`` must occur in it."""
    code = _SOLUTION[exercise]
    for old, new in edits:
        assert old in code, f"edit target not found in the {exercise} solution: {old!r}"
        code = code.replace(old, new)
    return code


# -- byte-budget -----------------------------------------------------------------------------------

_JSON_BYTES = 'len(json.dumps(value, ensure_ascii=False).encode("utf-8"))'
BYTES_SHALLOW_GETSIZEOF = variant(BYTES, (_JSON_BYTES, "sys.getsizeof(value)"))
BYTES_COUNTS_CHARACTERS = variant(BYTES, (_JSON_BYTES, "len(json.dumps(value, ensure_ascii=False))"))
BYTES_COUNTS_ENTRIES = variant(BYTES, ("LRUCache(maxsize=max_bytes, getsizeof=payload_size)",
                                       "LRUCache(maxsize=max_bytes)"))
BYTES_FIFO_NOT_LRU = variant(BYTES, ("return LRUCache(maxsize=max_bytes, getsizeof=payload_size)",
                                     "from cachetools import FIFOCache\n    "
                                     "return FIFOCache(maxsize=max_bytes, getsizeof=payload_size)"))
BYTES_SHARED_CACHE = variant(BYTES, ("def byte_budget_cache(max_bytes):",
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

BREAKER_NEVER_HALF_OPENS = variant(BREAKER, (
    "            if now - self._opened_at >= self.reset_timeout and not self._probe_out:\n"
    "                self._probe_out = True\n                return True\n", ""))  # open until a success comes
BREAKER_HALF_OPEN_LETS_ALL_THROUGH = variant(BREAKER, (
    "if now - self._opened_at >= self.reset_timeout and not self._probe_out:",
    "if now - self._opened_at >= self.reset_timeout:"))
BREAKER_COUNTS_ALL_FAILURES = variant(BREAKER, (
    "        with self._lock:\n            self._failures = 0\n            self._opened_at = None",
    "        with self._lock:\n            self._opened_at = None"))
BREAKER_FAILED_PROBE_KEEPS_OLD_TIMER = variant(BREAKER, (
    "            elif self._probe_out or now - self._opened_at >= self.reset_timeout:\n"
    "                self._opened_at = now\n",
    "            elif self._probe_out or now - self._opened_at >= self.reset_timeout:\n"))
BREAKER_PROBE_RACE = variant(BREAKER, (
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

GUARDED_IGNORES_BREAKER = variant(GUARDED, ("        if not self.breaker.allow():\n            return loader()\n", ""))
GUARDED_FAILURES_NOT_REPORTED = variant(GUARDED, ("                self.errors += 1\n            self.breaker.record_failure()",
                                                  "                self.errors += 1"))
GUARDED_SUCCESS_NOT_REPORTED = variant(GUARDED, ("        if raw is not None:\n            self.breaker.record_success()\n",
                                                 "        if raw is not None:\n"),
                                       ("            return value\n        self.breaker.record_success()\n        return value",
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

# -- runs: one bug per exercise, and the fragment of the failure message expected for each ----------

RUNS = [
    pytest.param({BYTES: (BYTES_SHALLOW_GETSIZEOF, "sys.getsizeof"),
                  BREAKER: (BREAKER_NEVER_HALF_OPENS, "never lets a probe through"),
                  GUARDED: (GUARDED_IGNORES_BREAKER, "ask breaker.allow()")},
                 id="11-redis-under-pressure:shallow-getsizeof+never-half-opens+ignores-breaker"),
    pytest.param({BYTES: (BYTES_COUNTS_CHARACTERS, "counts the characters"),
                  BREAKER: (BREAKER_HALF_OPEN_LETS_ALL_THROUGH, "second allow()"),
                  GUARDED: (GUARDED_FAILURES_NOT_REPORTED, "record_failure() was never called")},
                 id="11-redis-under-pressure:characters-not-bytes+half-open-lets-all-through+failures-not-reported"),
    pytest.param({BYTES: (BYTES_COUNTS_ENTRIES, "counts entries"),
                  BREAKER: (BREAKER_COUNTS_ALL_FAILURES, "failures in a row"),
                  GUARDED: (GUARDED_SUCCESS_NOT_REPORTED, "record_success()")},
                 id="11-redis-under-pressure:counts-entries+counts-all-failures+success-not-reported"),
    pytest.param({BYTES: (BYTES_FIFO_NOT_LRU, "use an LRU cache"),
                  BREAKER: (BREAKER_FAILED_PROBE_KEEPS_OLD_TIMER, "new wait"),
                  GUARDED: (GUARDED_BROAD_EXCEPT, "expected 'fresh' after 1")},
                 id="11-redis-under-pressure:fifo+failed-probe-keeps-old-timer+broad-except"),
    pytest.param({BYTES: (BYTES_SHARED_CACHE, "share their entries"),
                  BREAKER: (BREAKER_PROBE_RACE, "exactly one must get the probe")},
                 id="11-redis-under-pressure:shared-cache+probe-race"),
]

ALTERNATIVES = {BYTES: BYTES_SUBCLASS_AND_ITERENCODE, BREAKER: BREAKER_DEADLINE_DESIGN, GUARDED: GUARDED_SENTINEL_DESIGN}


def test_every_exercise_has_three_bugs_and_an_alternative():
    for exercise in EXERCISES:
        bugs = [run.values[0][exercise] for run in RUNS if exercise in run.values[0]]
        assert len(bugs) >= 3 and exercise in ALTERNATIVES, (exercise, len(bugs))


@pytest.mark.parametrize("bugs", RUNS)
def test_buggy_implementations_lose_their_points(grade_lesson, bugs):
    result = grade_lesson(LESSON, {ex: code for ex, (code, _) in bugs.items()})
    assert result.status == "graded", result.detail
    statuses = {e.id: e for e in result.exercises}
    for ex in EXERCISES:
        if ex in bugs:
            assert statuses[ex].status == "failed", exercise_summary(result)
            assert bugs[ex][1] in statuses[ex].message, (ex, bugs[ex][1], exercise_summary(result))
        else:
            assert statuses[ex].status == "passed", exercise_summary(result)


@pytest.mark.parametrize("slug", [pytest.param("11-redis-under-pressure", id="11-redis-under-pressure")])
def test_other_correct_designs_get_full_marks(grade_lesson, slug):
    result = grade_lesson(slug, ALTERNATIVES)
    assert result.status == "graded" and result.score == result.max_score, exercise_summary(result)


@pytest.mark.redis_server
@pytest.mark.parametrize("slug", [pytest.param("11-redis-under-pressure", id="11-redis-under-pressure")])
def test_other_correct_designs_get_full_marks_on_real_redis(grade_lesson, redis_url, slug):
    result = grade_lesson(slug, ALTERNATIVES, redis_url=redis_url)
    assert result.status == "graded" and result.score == result.max_score, exercise_summary(result)
