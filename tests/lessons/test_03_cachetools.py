"""Lesson 03 (cachetools): buggy answers lose their exercise's points, other designs get full marks.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The exercises are independent, so each run carries the k-th bug of every exercise; the solution's
answer for an exercise without a k-th bug must keep its points in the same run.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract

pytestmark = pytest.mark.slow


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

# These bugs pass every visible rung: only the hidden tests take the points away. Visible checks raise
# CheckFailed; a plain AssertionError comes from the hidden tests after them. (The grader never reports what
# a test cell printed, so the success line itself is not visible.)
HIDDEN_ONLY = "AssertionError"


class TestCachetools(LessonContract):
    LESSON = "03"
    BUGS = {
        "pick-policies": {
            "swapped-policies": PICK_SWAPPED_POLICIES,
            "fifo-ignores-reads": PICK_FIFO_IGNORES_READS,
            "shared-cache-object": PICK_SHARED_CACHE_OBJECT,
            "minimum-size-floor": Bug(PICK_MINIMUM_SIZE_FLOOR, starts=HIDDEN_ONLY),
        },
        "expiring-caches": {
            "price-ignores-timer": EXP_PRICE_IGNORES_TIMER,
            "ttu-returns-duration": EXP_TTU_RETURNS_DURATION,
            "one-ttl-for-all-tokens": EXP_ONE_TTL_FOR_ALL_TOKENS,
            "ttl-in-milliseconds": EXP_TTL_IN_MILLISECONDS,
            "sliding-expiry-on-read": Bug(EXP_SLIDING_EXPIRY_ON_READ, starts=HIDDEN_ONLY),
        },
        "cached-with-key": {
            "cache-ignores-clock": KEY_CACHE_IGNORES_CLOCK,
            "default-hashkey-with-request-id": KEY_DEFAULT_HASHKEY_WITH_REQUEST_ID,
            "no-lock": KEY_NO_LOCK,
            "hand-rolled-if-cached": KEY_HAND_ROLLED_IF_CACHED,
            "key-includes-connection": KEY_INCLUDES_CONNECTION,
            "breaks-on-keyword-calls": Bug(KEY_BREAKS_ON_KEYWORD_CALLS, starts=HIDDEN_ONLY),
            "null-lock": KEY_NULL_LOCK,
            "hand-rolled-unlocked": KEY_HAND_ROLLED_UNLOCKED,
        },
    }
    OTHER_DESIGNS = {
        "pick-policies": {"pick-other-design": PICK_CORRECT_OTHER_DESIGN},
        "expiring-caches": {"expiring-other-design": EXP_CORRECT_OTHER_DESIGN},
        "cached-with-key": {"key-other-design": KEY_CORRECT_OTHER_DESIGN},
    }
    GRADE_TOGETHER = True

    def check_design_run(self, result):
        assert result.max_score == 10, result.max_score
