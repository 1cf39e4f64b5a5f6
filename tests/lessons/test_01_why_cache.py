"""Lesson 01-why-cache: the hidden tests reject real cache-aside and hit-ratio bugs and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The two exercises are independent, so each run carries the k-th bug of both exercises.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import LessonContract

pytestmark = pytest.mark.slow

# -- cache-aside-read: buggy implementations ---------------------------------------------------

TRUTHY_CHECK = '''
def get_user_cached(db, cache, user_id):
    cached = cache.get(user_id)
    if cached:  # None (a missing user) is a miss forever
        return cached
    user = db.get_user(user_id)
    cache[user_id] = user
    return user
'''

IS_NOT_NONE_CHECK = '''
def get_user_cached(db, cache, user_id):
    cached = cache.get(user_id)
    if cached is not None:  # stores None, but never treats it as a hit
        return cached
    user = db.get_user(user_id)
    cache[user_id] = user
    return user
'''

NEGATIVE_RESULTS_NOT_CACHED = '''
def get_user_cached(db, cache, user_id):
    if user_id in cache:
        return cache[user_id]
    user = db.get_user(user_id)
    if user is not None:  # missing users reach the database every time
        cache[user_id] = user
    return user
'''

SETDEFAULT_QUERIES_EVERY_TIME = '''
def get_user_cached(db, cache, user_id):
    # the argument db.get_user(user_id) is evaluated before setdefault looks in the cache
    return cache.setdefault(user_id, db.get_user(user_id))
'''

GLOBAL_CACHE_IGNORES_PARAMETER = '''
_USERS = {}

def get_user_cached(db, cache, user_id):
    if user_id in _USERS:
        return _USERS[user_id]
    user = db.get_user(user_id)
    _USERS[user_id] = user
    return user
'''

DATABASE_ERROR_CACHED_AS_MISSING_USER = '''
def get_user_cached(db, cache, user_id):
    if user_id in cache:
        return cache[user_id]
    try:
        user = db.get_user(user_id)
    except Exception:
        user = None  # a failure is remembered as "no such user"
    cache[user_id] = user
    return user
'''

DATABASE_ERROR_SWALLOWED = '''
def get_user_cached(db, cache, user_id):
    if user_id in cache:
        return cache[user_id]
    try:
        user = db.get_user(user_id)
    except Exception:
        return None  # the caller cannot tell an outage from a missing user
    cache[user_id] = user
    return user
'''

# -- hit-ratio-math: buggy implementations ------------------------------------------------------

_MATH_OK = '''
import math

def hit_ratio(hits, misses):
    if hits < 0 or misses < 0:
        raise ValueError("negative count")
    total = hits + misses
    return hits / total if total else 0.0

def expected_latency_ms(hit_ratio, hit_ms, miss_ms):
    if not 0 <= hit_ratio <= 1:
        raise ValueError("hit ratio out of range")
    return hit_ratio * hit_ms + (1 - hit_ratio) * miss_ms

def speedup(hit_ratio, hit_ms, miss_ms):
    expected = expected_latency_ms(hit_ratio, hit_ms, miss_ms)
    return miss_ms / expected if expected else math.inf
'''


def _math_with(old: str, new: str) -> str:
    assert old in _MATH_OK
    return _MATH_OK.replace(old, new)


HITS_OVER_MISSES = _math_with("return hits / total if total else 0.0",
                              "return hits / misses if misses else 1.0")
WEIGHTS_SWAPPED = _math_with("return hit_ratio * hit_ms + (1 - hit_ratio) * miss_ms",
                             "return hit_ratio * miss_ms + (1 - hit_ratio) * hit_ms")
ZERO_LOOKUPS_DIVIDES_BY_ZERO = _math_with("return hits / total if total else 0.0", "return hits / total")
SPEEDUP_ASSUMES_FREE_HITS = _math_with(
    "    expected = expected_latency_ms(hit_ratio, hit_ms, miss_ms)\n"
    "    return miss_ms / expected if expected else math.inf",
    "    return 1 / (1 - hit_ratio) if hit_ratio < 1 else math.inf")
SPEEDUP_DIVIDES_BY_ZERO_WHEN_EVERY_HIT_IS_FREE = _math_with(
    "return miss_ms / expected if expected else math.inf", "return miss_ms / expected")
RATIO_ABOVE_ONE_ACCEPTED = _math_with(
    "    if not 0 <= hit_ratio <= 1:\n        raise ValueError(\"hit ratio out of range\")\n", "")
SPEEDUP_INVERTED = _math_with("return miss_ms / expected if expected else math.inf",
                              "return expected / miss_ms")

# -- correct implementations of other designs ---------------------------------------------------

EAFP_WITH_SENTINEL = '''
_MISSING = object()

def get_user_cached(db, cache, user_id):
    """EAFP: try the dict first; a sentinel default tells 'absent' from 'cached None'."""
    user = cache.get(user_id, _MISSING)
    if user is _MISSING:
        try:
            return cache[user_id]
        except KeyError:
            pass
        user = db.get_user(user_id)
        cache[user_id] = user
    return user
'''

MATH_OTHER_DESIGN = '''
from math import inf

def hit_ratio(hits, misses):
    if min(hits, misses) < 0:
        raise ValueError(f"counts cannot be negative: {hits}, {misses}")
    try:
        return float(hits) / (hits + misses)
    except ZeroDivisionError:
        return 0.0

def expected_latency_ms(hit_ratio, hit_ms, miss_ms):
    if hit_ratio < 0 or hit_ratio > 1:
        raise ValueError(f"not a ratio: {hit_ratio}")
    return miss_ms - hit_ratio * (miss_ms - hit_ms)

def speedup(hit_ratio, hit_ms, miss_ms):
    average = expected_latency_ms(hit_ratio, hit_ms, miss_ms)
    if average == 0:
        return inf
    return miss_ms / average
'''


class TestWhyCache(LessonContract):
    LESSON = "01"
    BUGS = {
        "cache-aside-read": {
            "truthy-check": TRUTHY_CHECK,
            "is-not-none-check": IS_NOT_NONE_CHECK,
            "negative-results-not-cached": NEGATIVE_RESULTS_NOT_CACHED,
            "setdefault-queries-every-time": SETDEFAULT_QUERIES_EVERY_TIME,
            "global-cache-ignores-parameter": GLOBAL_CACHE_IGNORES_PARAMETER,
            "database-error-swallowed": DATABASE_ERROR_SWALLOWED,
            "database-error-cached-as-missing-user": DATABASE_ERROR_CACHED_AS_MISSING_USER,
        },
        "hit-ratio-math": {
            "hits-over-misses": HITS_OVER_MISSES,
            "weights-swapped": WEIGHTS_SWAPPED,
            "zero-lookups-divides-by-zero": ZERO_LOOKUPS_DIVIDES_BY_ZERO,
            "speedup-assumes-free-hits": SPEEDUP_ASSUMES_FREE_HITS,
            "speedup-divides-by-zero-when-every-hit-is-free": SPEEDUP_DIVIDES_BY_ZERO_WHEN_EVERY_HIT_IS_FREE,
            "ratio-above-one-accepted": RATIO_ABOVE_ONE_ACCEPTED,
            "speedup-inverted": SPEEDUP_INVERTED,
        },
    }
    OTHER_DESIGNS = {
        "cache-aside-read": {"eafp-with-sentinel": EAFP_WITH_SENTINEL},
        "hit-ratio-math": {"math-other-design": MATH_OTHER_DESIGN},
    }
    GRADE_TOGETHER = True


def test_the_no_cache_chart_tells_the_truth_at_the_grading_scale(grade_lesson):
    """The feedback's first chart is titled "each pays the full query": at the grading scale (x0.01, a 1 ms
    query) every one of its three requests must take at least that query, and its chart must be drawn.
    A sleep never returns early, so this bound cannot flake; a cached request takes microseconds."""
    import ast

    from grader.grading.grade import GRADING_LATENCY_SCALE

    result = grade_lesson("01")
    cell = next(c for c in result.cells if c["grade_id"] == "no-cache-demo")
    outputs = cell["record"]["outputs"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith("per request (ms):"))
    per_request = ast.literal_eval(line.split(":", 1)[1].strip())
    query_ms = 100 * GRADING_LATENCY_SCALE
    assert len(per_request) == 3 and all(ms >= 0.95 * query_ms for ms in per_request), (
        f"at the grading scale each request should pay the {query_ms:g} ms query: {line}")
    assert any("image/png" in o.get("data", {}) for o in outputs), "the no-cache chart was not drawn"
