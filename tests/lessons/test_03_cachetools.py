"""Lesson 03 (cachetools): buggy answers lose their exercise's points, other designs get full marks.

Every run goes through the real grader (``grade_lesson``). The exercises are
independent, so each run replaces several answers at once; the solution's
answer for the remaining exercise must keep its points in the same run.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

LESSON = "03"
LESSON_SLUG = "03-cachetools"  # in every test id, so `pytest -k 03-cachetools` selects this file's tests too

# --------------------------------------------------------------------------- pick-policies
PICK_SWAPPED_POLICIES = '''
def trending_cache(maxsize):
    return LFUCache(maxsize=maxsize)


def catalog_cache(maxsize):
    return LRUCache(maxsize=maxsize)
'''

PICK_FIFO_IGNORES_READS = '''
def trending_cache(maxsize):
    return FIFOCache(maxsize=maxsize)


def catalog_cache(maxsize):
    return FIFOCache(maxsize=maxsize)
'''

PICK_SHARED_CACHE_OBJECT = '''
_trending, _catalog = {}, {}


def trending_cache(maxsize):
    return _trending.setdefault(maxsize, LRUCache(maxsize=maxsize))


def catalog_cache(maxsize):
    return _catalog.setdefault(maxsize, LFUCache(maxsize=maxsize))
'''

PICK_MINIMUM_SIZE_FLOOR = '''
def trending_cache(maxsize):
    return LRUCache(maxsize=max(maxsize, 10))  # "a cache smaller than 10 is pointless"


def catalog_cache(maxsize):
    return LFUCache(maxsize=max(maxsize, 10))
'''

PICK_CORRECT_OTHER_DESIGN = '''
class TrendingCache(TLRUCache):
    """LRU with entries that never expire."""

    def __init__(self, maxsize):
        super().__init__(maxsize, ttu=lambda key, value, now: float("inf"))


class CountingLFU(LFUCache):
    evictions = 0

    def popitem(self):
        self.evictions += 1
        return super().popitem()


def trending_cache(maxsize):
    return TrendingCache(maxsize)


def catalog_cache(maxsize):
    return CountingLFU(maxsize)
'''

# --------------------------------------------------------------------------- expiring-caches
EXP_PRICE_IGNORES_TIMER = '''
def price_cache(maxsize, timer):
    return TTLCache(maxsize=maxsize, ttl=30)  # timer forgotten: real time.monotonic


def token_cache(maxsize, timer):
    return TLRUCache(maxsize=maxsize, ttu=lambda key, value, now: now + value["expires_in"], timer=timer)
'''

EXP_TTU_RETURNS_DURATION = '''
def price_cache(maxsize, timer):
    return TTLCache(maxsize=maxsize, ttl=30, timer=timer)


def token_cache(maxsize, timer):
    return TLRUCache(maxsize=maxsize, ttu=lambda key, value, now: value["expires_in"], timer=timer)
'''

EXP_ONE_TTL_FOR_ALL_TOKENS = '''
def price_cache(maxsize, timer):
    return TTLCache(maxsize=maxsize, ttl=30, timer=timer)


def token_cache(maxsize, timer):
    return TTLCache(maxsize=maxsize, ttl=3600, timer=timer)  # the longest lifetime for every token
'''

EXP_TTL_IN_MILLISECONDS = '''
def price_cache(maxsize, timer):
    return TTLCache(maxsize=maxsize, ttl=30_000, timer=timer)


def token_cache(maxsize, timer):
    return TLRUCache(maxsize=maxsize, ttu=lambda key, value, now: now + value["expires_in"], timer=timer)
'''

EXP_SLIDING_EXPIRY_ON_READ = '''
class SlidingTTLCache(TTLCache):
    """Keeps popular prices alive: every read restarts the 30 seconds (serves stale prices forever)."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        self[key] = value
        return value


def price_cache(maxsize, timer):
    return SlidingTTLCache(maxsize=maxsize, ttl=30, timer=timer)


def token_cache(maxsize, timer):
    return TLRUCache(maxsize=maxsize, ttu=lambda key, value, now: now + value["expires_in"], timer=timer)
'''

EXP_CORRECT_OTHER_DESIGN = '''
def _expires_after(seconds):
    def ttu(key, value, now):
        return now + seconds
    return ttu


def _token_expiry(key, value, now):
    return now + float(value["expires_in"])


def price_cache(maxsize, timer):
    return TLRUCache(maxsize, _expires_after(30), timer)


def token_cache(maxsize, timer):
    return TLRUCache(maxsize, _token_expiry, timer)
'''

# --------------------------------------------------------------------------- cached-with-key
KEY_DEFAULT_HASHKEY_WITH_REQUEST_ID = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(db, user_id, request_id=request_id)


def make_load_profile(clock):
    @cached(TTLCache(maxsize=256, ttl=60, timer=clock), key=profile_key, lock=threading.Lock())
    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)
    return load_profile
'''

KEY_INCLUDES_CONNECTION = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(db, user_id)


def make_load_profile(clock):
    @cached(TTLCache(maxsize=256, ttl=60, timer=clock), key=profile_key, lock=threading.Lock())
    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)
    return load_profile
'''

KEY_NO_LOCK = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(user_id)


def make_load_profile(clock):
    @cached(TTLCache(maxsize=256, ttl=60, timer=clock), key=profile_key)
    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)
    return load_profile
'''

KEY_HAND_ROLLED_IF_CACHED = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(user_id)


def make_load_profile(clock):
    cache = TTLCache(maxsize=256, ttl=60, timer=clock)
    lock = threading.Lock()

    def load_profile(db, user_id, request_id=None):
        key = profile_key(db, user_id, request_id)
        with lock:
            value = cache.get(key)
        if value:                      # None for an unknown user is never a hit
            return value
        value = db.get_user(user_id)
        with lock:
            cache[key] = value
        return value

    load_profile.cache, load_profile.cache_lock = cache, lock
    return load_profile
'''

KEY_BREAKS_ON_KEYWORD_CALLS = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(user_id)


def make_load_profile(clock):
    # args[1] is the user id... unless it was passed by keyword
    @cached(TTLCache(maxsize=256, ttl=60, timer=clock), key=lambda *args, **kwargs: hashkey(args[1:2]),
            lock=threading.Lock())
    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)
    return load_profile
'''

KEY_CACHE_IGNORES_CLOCK = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(user_id)


def make_load_profile(clock):
    @cached(TTLCache(maxsize=256, ttl=60), key=profile_key, lock=threading.Lock())
    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)
    return load_profile
'''

KEY_CORRECT_OTHER_DESIGN = '''
def profile_key(db, user_id, request_id=None):
    return hashkey("profile", user_id)


def make_load_profile(clock):
    cache = TLRUCache(maxsize=256, ttu=lambda key, value, now: now + 60, timer=clock)
    condition = threading.Condition(threading.RLock())

    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)

    return cached(cache, key=profile_key, condition=condition)(load_profile)
'''

ALL = ("pick-policies", "expiring-caches", "cached-with-key")


def _check(result, answers, expected_failures):
    status = {e.id: e.status for e in result.exercises}
    detail = {e.id: e.message for e in result.exercises}
    assert result.status == "graded", (result.status, result.detail, result.notes)
    for exercise in ALL:
        want = "failed" if exercise in expected_failures else "passed"
        assert status[exercise] == want, f"{exercise}: expected {want}, got {status[exercise]}: {detail[exercise]}"
    return detail


# caches used from 8 threads without their lock: only the hidden tests can tell
KEY_NULL_LOCK = '''
import contextlib


def profile_key(db, user_id, request_id=None):
    return hashkey(user_id)


def make_load_profile(clock):
    @cached(TTLCache(maxsize=256, ttl=60, timer=clock), key=profile_key, lock=contextlib.nullcontext())
    def load_profile(db, user_id, request_id=None):
        return db.get_user(user_id)
    return load_profile
'''

KEY_HAND_ROLLED_UNLOCKED = '''
def profile_key(db, user_id, request_id=None):
    return hashkey(user_id)


def make_load_profile(clock):
    cache = TTLCache(maxsize=256, ttl=60, timer=clock)
    lock = threading.Lock()   # created, never used

    def load_profile(db, user_id, request_id=None):
        key = profile_key(db, user_id, request_id)
        try:
            return cache[key]
        except KeyError:
            pass
        value = db.get_user(user_id)
        cache[key] = value
        return value

    load_profile.cache, load_profile.cache_lock = cache, lock
    return load_profile
'''


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"pick-policies": PICK_SWAPPED_POLICIES, "expiring-caches": EXP_PRICE_IGNORES_TIMER,
                      "cached-with-key": KEY_CACHE_IGNORES_CLOCK},
                     id="03-cachetools:swapped-policies+price-ignores-timer+cache-ignores-clock"),
        pytest.param({"pick-policies": PICK_FIFO_IGNORES_READS, "cached-with-key": KEY_DEFAULT_HASHKEY_WITH_REQUEST_ID},
                     id="03-cachetools:fifo-ignores-reads+default-hashkey-with-request-id"),
        pytest.param({"expiring-caches": EXP_TTU_RETURNS_DURATION, "cached-with-key": KEY_NO_LOCK},
                     id="03-cachetools:ttu-returns-duration+no-lock"),
        pytest.param({"pick-policies": PICK_SHARED_CACHE_OBJECT, "expiring-caches": EXP_ONE_TTL_FOR_ALL_TOKENS,
                      "cached-with-key": KEY_HAND_ROLLED_IF_CACHED},
                     id="03-cachetools:shared-cache-object+one-ttl-for-all-tokens+hand-rolled-if-cached"),
        pytest.param({"expiring-caches": EXP_TTL_IN_MILLISECONDS, "cached-with-key": KEY_INCLUDES_CONNECTION},
                     id="03-cachetools:ttl-in-milliseconds+key-includes-connection"),
    ],
)
def test_buggy_answers_lose_only_their_points(grade_lesson, answers):
    result = grade_lesson(LESSON, answers)
    _check(result, answers, set(answers))
    assert result.score == result.max_score - sum(e.points for e in result.exercises if e.id in answers)


@pytest.mark.parametrize("slug", [LESSON_SLUG])
def test_other_correct_designs_get_full_marks(grade_lesson, slug):
    answers = {"pick-policies": PICK_CORRECT_OTHER_DESIGN, "expiring-caches": EXP_CORRECT_OTHER_DESIGN,
               "cached-with-key": KEY_CORRECT_OTHER_DESIGN}
    result = grade_lesson(LESSON, answers)
    _check(result, answers, set())
    assert result.score == result.max_score == 10


@pytest.mark.parametrize("slug", [LESSON_SLUG])
def test_hidden_tests_catch_what_the_visible_checks_miss(grade_lesson, slug):
    """These bugs pass every visible rung: only the hidden tests take the points away."""
    answers = {"pick-policies": PICK_MINIMUM_SIZE_FLOOR, "expiring-caches": EXP_SLIDING_EXPIRY_ON_READ,
               "cached-with-key": KEY_BREAKS_ON_KEYWORD_CALLS}
    result = grade_lesson(LESSON, answers)
    detail = _check(result, answers, set(answers))
    for exercise in answers:
        # Visible checks raise CheckFailed; a plain AssertionError comes from the hidden tests after them.
        # (The grader never reports what a test cell printed, so the success line itself is not visible.)
        assert detail[exercise].startswith("AssertionError"), (exercise, detail[exercise])


@pytest.mark.parametrize("answer", [KEY_NULL_LOCK, KEY_HAND_ROLLED_UNLOCKED], ids=["null-lock", "hand-rolled-unlocked"])
def test_caches_without_their_lock_lose_their_points(grade_lesson, answer):
    result = grade_lesson(LESSON, {"cached-with-key": answer})
    _check(result, {"cached-with-key": answer}, {"cached-with-key"})
    assert result.score == result.max_score - 4
