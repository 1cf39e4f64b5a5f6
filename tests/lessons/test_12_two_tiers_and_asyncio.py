"""Lesson 12-two-tiers-and-asyncio: the hidden tests reject real bugs of two-tier caches, stale serving and
caching coroutines, and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The three exercises are independent, so each run carries the k-th bug of every exercise: those must
lose their points, and the others keep theirs. Each bug names the message fragment that shows which check
caught it.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract

pytestmark = pytest.mark.slow
ASYNC_IMPORT = "from course_lib.aio import as_async, run_concurrently\n"

# -- two-tier: buggy implementations -----------------------------------------------------------------

_TIER_HEAD = '''
class TwoTierCache:
    def __init__(self, r, prefix, *, ttl=300, l1_ttl=2.0, l1_maxsize=1000, clock=time.monotonic, publish=None):
        self.r, self.prefix, self.ttl = r, prefix, ttl
        self.l1_ttl, self.l1_maxsize, self.clock, self.publish = l1_ttl, l1_maxsize, clock, publish
        self._l1 = OrderedDict()
'''

_TIER_LOAD = '''
        raw = self.r.get(self.prefix + key)
        if raw is not None:
            value = json.loads(raw)
        else:
            value = loader()
            self.r.set(self.prefix + key, json.dumps(value), ex=self.ttl)
'''

_TIER_STORE = '''
        self._l1[key] = (value, self.clock())
        while len(self._l1) > self.l1_maxsize:
            self._l1.popitem(last=False)
        return value
'''

_TIER_INVALIDATE = '''
    def invalidate(self, key):
        self.r.delete(self.prefix + key)
        self._l1.pop(key, None)
        if self.publish is not None:
            self.publish(key)

    def evict_local(self, key):
        self._l1.pop(key, None)
'''

TIER_L1_NEVER_EXPIRES = _TIER_HEAD + '''
    def get(self, key, loader):
        if key in self._l1:  # BUG: no L1 TTL: another process's write is never seen
            self._l1.move_to_end(key)
            return self._l1[key][0]
''' + _TIER_LOAD + _TIER_STORE + _TIER_INVALIDATE

_TIER_GOOD_GET = '''
    def get(self, key, loader):
        entry = self._l1.get(key)
        if entry is not None and self.clock() < entry[1] + self.l1_ttl:
            self._l1.move_to_end(key)
            return entry[0]
''' + _TIER_LOAD + _TIER_STORE

TIER_PUBLISHES_BEFORE_DELETE = _TIER_HEAD + _TIER_GOOD_GET + '''
    def invalidate(self, key):
        self._l1.pop(key, None)
        if self.publish is not None:
            self.publish(key)  # BUG: other processes reload the old value from Redis before it is deleted
        self.r.delete(self.prefix + key)

    def evict_local(self, key):
        self._l1.pop(key, None)
'''

TIER_FALSY_IS_A_MISS = _TIER_HEAD + '''
    def get(self, key, loader):
        entry = self._l1.get(key)
        if entry is not None and entry[0] and self.clock() < entry[1] + self.l1_ttl:  # BUG: a cached 0 is a miss
            return entry[0]
''' + _TIER_LOAD + _TIER_STORE + _TIER_INVALIDATE

TIER_UNBOUNDED_L1 = _TIER_HEAD + '''
    def get(self, key, loader):
        entry = self._l1.get(key)
        if entry is not None and self.clock() < entry[1] + self.l1_ttl:
            return entry[0]
''' + _TIER_LOAD + '''
        self._l1[key] = (value, self.clock())  # BUG: l1_maxsize ignored, every key ever read stays in memory
        return value
''' + _TIER_INVALIDATE

TIER_L1_LIVES_AS_LONG_AS_REDIS = _TIER_HEAD + '''
    def get(self, key, loader):
        entry = self._l1.get(key)
        if entry is not None and self.clock() < entry[1] + self.ttl:  # BUG: the Redis TTL, not l1_ttl
            self._l1.move_to_end(key)
            return entry[0]
''' + _TIER_LOAD + _TIER_STORE + _TIER_INVALIDATE

TIER_EVICTS_THE_NEWEST = (_TIER_HEAD + _TIER_GOOD_GET + _TIER_INVALIDATE).replace(
    "self._l1.popitem(last=False)", "self._l1.popitem()  # BUG: last=True by default: drops the entry just stored")

TIER_ONE_SHORT_OF_MAXSIZE = (_TIER_HEAD + _TIER_GOOD_GET + _TIER_INVALIDATE).replace(
    "while len(self._l1) > self.l1_maxsize:", "while len(self._l1) >= self.l1_maxsize:  # BUG: holds l1_maxsize - 1")

# -- two-tier: another correct design (cachetools' TTLCache as the L1, a sentinel for misses) ---------------

TIER_WITH_TTLCACHE = '''
_MISSING = object()


class TwoTierCache:
    def __init__(self, r, prefix, *, ttl=300, l1_ttl=2.0, l1_maxsize=1000, clock=time.monotonic, publish=None):
        self._r, self._prefix, self._ttl, self._publish = r, prefix, ttl, publish
        self._l1 = TTLCache(maxsize=l1_maxsize, ttl=l1_ttl, timer=clock)
        self._lock = threading.RLock()

    def get(self, key, loader):
        with self._lock:
            value = self._l1.get(key, _MISSING)
        if value is not _MISSING:
            return value
        raw = self._r.get(self._prefix + key)
        if raw is None:
            value = loader()
            self._r.setex(self._prefix + key, self._ttl, json.dumps(value))
        else:
            value = json.loads(raw)
        with self._lock:
            self._l1[key] = value
        return value

    def invalidate(self, key):
        self._r.unlink(self._prefix + key)
        self.evict_local(key)
        if self._publish:
            self._publish(key)

    def evict_local(self, key):
        with self._lock:
            self._l1.pop(key, None)
'''

# -- stale-serving: buggy implementations --------------------------------------------------------------

_STALE_INIT = '''
class StaleCache:
    def __init__(self, r, prefix, *, fresh=60, while_revalidate=30, if_error=600, clock=time.monotonic,
                 schedule=None):
        self.r, self.prefix, self.clock = r, prefix, clock
        self.fresh, self.while_revalidate, self.if_error = fresh, while_revalidate, if_error
        self.schedule = schedule or (lambda job: threading.Thread(target=job, daemon=True).start())
        self._refreshing = set()
        self._lock = threading.Lock()

    def _store(self, full_key, value):
        lifetime = math.ceil(self.fresh + max(self.while_revalidate, self.if_error))
        self.r.set(full_key, json.dumps({"value": value, "stored_at": self.clock()}), ex=lifetime)
        return value
'''

_STALE_READ = '''
    def get(self, key, loader):
        full_key = self.prefix + key
        raw = self.r.get(full_key)
        if raw is None:
            return self._store(full_key, loader())
        entry = json.loads(raw)
        age = self.clock() - entry["stored_at"]
        if age < self.fresh:
            return entry["value"]
'''

_STALE_IF_ERROR = '''
        try:
            return self._store(full_key, loader())
        except Exception:
            return entry["value"]
'''

STALE_REFRESHES_IN_THE_REQUEST = _STALE_INIT + _STALE_READ + '''
        if age < self.fresh + self.while_revalidate:
            try:  # BUG: the request waits for the database, exactly what stale-while-revalidate avoids
                return self._store(full_key, loader())
            except Exception:
                return entry["value"]
''' + _STALE_IF_ERROR

STALE_SCHEDULES_EVERY_READ = _STALE_INIT + _STALE_READ + '''
        if age < self.fresh + self.while_revalidate:
            self.schedule(lambda: self._store(full_key, loader()))  # BUG: one refresh per stale read
            return entry["value"]
''' + _STALE_IF_ERROR

STALE_NO_IF_ERROR = _STALE_INIT + _STALE_READ + '''
        if age < self.fresh + self.while_revalidate:
            with self._lock:
                first = full_key not in self._refreshing
                self._refreshing.add(full_key)
            if first:
                def job():
                    try:
                        self._store(full_key, loader())
                    finally:
                        with self._lock:
                            self._refreshing.discard(full_key)
                self.schedule(job)
            return entry["value"]
        return self._store(full_key, loader())  # BUG: with the database down, the error reaches the caller
'''

STALE_FLAG_STUCK_AFTER_FAILED_REFRESH = _STALE_INIT + _STALE_READ + '''
        if age < self.fresh + self.while_revalidate:
            with self._lock:
                first = full_key not in self._refreshing
                self._refreshing.add(full_key)
            if first:
                def job():
                    self._store(full_key, loader())
                    with self._lock:  # BUG: not in a finally: a failed refresh blocks every later one
                        self._refreshing.discard(full_key)
                self.schedule(job)
            return entry["value"]
''' + _STALE_IF_ERROR

STALE_REVALIDATE_WINDOW_INCLUSIVE = STALE_NO_IF_ERROR.replace(
    "        return self._store(full_key, loader())  # BUG: with the database down, the error reaches the caller\n",
    _STALE_IF_ERROR.lstrip("\n"),
).replace("if age < self.fresh + self.while_revalidate:",
          "if age <= self.fresh + self.while_revalidate:  # BUG: at exactly the window's end it still serves stale")

STALE_SERVED_FOREVER = _STALE_INIT.replace(
    'self.r.set(full_key, json.dumps({"value": value, "stored_at": self.clock()}), ex=lifetime)',
    'self.r.set(full_key, json.dumps({"value": value, "stored_at": self.clock()}))  # BUG: no expiry',
) + _STALE_READ + '''
        if age < self.fresh + self.while_revalidate:
            with self._lock:
                first = full_key not in self._refreshing
                self._refreshing.add(full_key)
            if first:
                def job():
                    try:
                        self._store(full_key, loader())
                    finally:
                        with self._lock:
                            self._refreshing.discard(full_key)
                self.schedule(job)
            return entry["value"]
''' + _STALE_IF_ERROR

# -- stale-serving: another correct design (deadlines in the entry, a Redis NX mark as the pending refresh) --

STALE_WITH_DEADLINES_AND_REDIS_MARK = '''
class StaleCache:
    def __init__(self, r, prefix, *, fresh=60, while_revalidate=30, if_error=600, clock=time.monotonic,
                 schedule=None):
        self._r, self._prefix, self._clock = r, prefix, clock
        self._fresh, self._revalidate, self._if_error = fresh, while_revalidate, if_error
        self._lifetime = math.ceil(fresh + max(while_revalidate, if_error))
        self._schedule = schedule if schedule is not None else self._in_thread

    @staticmethod
    def _in_thread(job):
        threading.Thread(target=job, daemon=True).start()

    def _put(self, name, value):
        now = self._clock()
        entry = {"v": value, "fresh_until": now + self._fresh, "revalidate_until": now + self._fresh + self._revalidate}
        self._r.set(name, json.dumps(entry), ex=self._lifetime)
        return value

    def get(self, key, loader):
        name = self._prefix + key
        raw = self._r.get(name)
        if raw is None:
            return self._put(name, loader())
        entry = json.loads(raw)
        now = self._clock()
        if now < entry["fresh_until"]:
            return entry["v"]
        if now < entry["revalidate_until"]:
            mark = name + ":refreshing"
            if self._r.set(mark, "1", nx=True, ex=self._lifetime):
                def refresh():
                    try:
                        self._put(name, loader())
                    except Exception:
                        pass
                    finally:
                        self._r.delete(mark)
                self._schedule(refresh)
            return entry["v"]
        try:
            return self._put(name, loader())
        except Exception:
            return entry["v"]
'''

# -- async-cached: buggy implementations -----------------------------------------------------------------

ASYNC_LRU_CACHE = ASYNC_IMPORT + '''
def async_cached(ttl, clock=time.monotonic):
    def decorate(fn):
        return functools.lru_cache(maxsize=None)(fn)  # BUG: caches the coroutine object, awaitable once
    return decorate
'''

ASYNC_NO_SINGLE_FLIGHT = ASYNC_IMPORT + '''
def async_cached(ttl, clock=time.monotonic):
    def decorate(fn):
        results = {}

        async def wrapper(*args):
            entry = results.get(args)
            if entry is not None and clock() < entry[1] + ttl:
                return entry[0]
            value = await fn(*args)  # BUG: every concurrent miss runs fn
            results[args] = (value, clock())
            return value
        return wrapper
    return decorate
'''

ASYNC_CACHES_FAILED_TASKS = ASYNC_IMPORT + '''
def async_cached(ttl, clock=time.monotonic):
    def decorate(fn):
        tasks = {}  # args -> (task, started_at)

        async def wrapper(*args):
            entry = tasks.get(args)
            if entry is None or clock() >= entry[1] + ttl:
                entry = tasks[args] = (asyncio.ensure_future(fn(*args)), clock())
            return await asyncio.shield(entry[0])  # BUG: a task that raised stays cached for ttl
        return wrapper
    return decorate
'''

ASYNC_ONE_CACHE_FOR_ALL_FUNCTIONS = ASYNC_IMPORT + '''
_results, _in_flight = {}, {}  # BUG: shared by every decorated function, keyed by args alone


def async_cached(ttl, clock=time.monotonic):
    def decorate(fn):
        async def call(args):
            try:
                value = await fn(*args)
            finally:
                del _in_flight[args]
            _results[args] = (value, clock())
            return value

        async def wrapper(*args):
            entry = _results.get(args)
            if entry is not None and clock() < entry[1] + ttl:
                return entry[0]
            task = _in_flight.get(args)
            if task is None:
                task = _in_flight[args] = asyncio.ensure_future(call(args))
            return await asyncio.shield(task)
        return wrapper
    return decorate
'''

# -- async-cached: another correct design (futures registered by the caller, a done callback forgets failures) -

ASYNC_FUTURES_WITH_DONE_CALLBACK = ASYNC_IMPORT + '''
class _Entry:
    def __init__(self, task):
        self.task, self.finished_at = task, None


def async_cached(ttl, clock=time.monotonic):
    def decorate(fn):
        entries = {}

        def settle(args, entry):
            def done(task):
                if task.cancelled() or task.exception() is not None:
                    if entries.get(args) is entry:
                        del entries[args]
                else:
                    entry.finished_at = clock()
            return done

        @functools.wraps(fn)
        async def wrapper(*args):
            entry = entries.get(args)
            if entry is not None and entry.finished_at is not None and clock() >= entry.finished_at + ttl:
                entry = None
            if entry is None:
                entry = entries[args] = _Entry(asyncio.get_running_loop().create_task(fn(*args)))
                entry.task.add_done_callback(settle(args, entry))
            if entry.task.done():
                return entry.task.result()
            return await asyncio.shield(entry.task)
        return wrapper
    return decorate
'''


class TestTwoTiersAndAsyncio(LessonContract):
    LESSON = "12"
    BUGS = {
        "two-tier": {
            "l1-never-expires": Bug(TIER_L1_NEVER_EXPIRES, says="l1_ttl"),
            "publish-before-delete": Bug(TIER_PUBLISHES_BEFORE_DELETE, says="Delete from Redis"),
            "falsy-is-a-miss": Bug(TIER_FALSY_IS_A_MISS, says="falsy"),
            "unbounded-l1": Bug(TIER_UNBOUNDED_L1, says="l1_maxsize=4"),
            "l1-lives-as-long-as-redis": Bug(TIER_L1_LIVES_AS_LONG_AS_REDIS, says="l1_ttl"),
            "evicts-the-newest": Bug(TIER_EVICTS_THE_NEWEST, says="not the one you just stored"),
            "one-short-of-maxsize": Bug(TIER_ONE_SHORT_OF_MAXSIZE, says="only when a new entry"),
        },
        "stale-serving": {
            "refresh-in-request": Bug(STALE_REFRESHES_IN_THE_REQUEST, says="schedule(job)"),
            "refresh-per-read": Bug(STALE_SCHEDULES_EVERY_READ, says="one refresh per key"),
            "no-stale-if-error": Bug(STALE_NO_IF_ERROR, says="stale-if-error"),
            "refresh-flag-stuck": Bug(STALE_FLAG_STUCK_AFTER_FAILED_REFRESH, says="failed refresh job"),
            "stale-served-forever": Bug(STALE_SERVED_FOREVER, says="660"),
            "revalidate-window-inclusive": Bug(STALE_REVALIDATE_WINDOW_INCLUSIVE, says="window ends at fresh + while_revalidate"),
        },
        "async-cached": {
            "lru-cache-on-async": Bug(ASYNC_LRU_CACHE, says="coroutine object"),
            "no-single-flight": Bug(ASYNC_NO_SINGLE_FLIGHT, says="ran the query 8 times"),
            "caches-failed-tasks": Bug(ASYNC_CACHES_FAILED_TASKS, says="errors are not cached"),
            "one-cache-for-all-functions": Bug(ASYNC_ONE_CACHE_FOR_ALL_FUNCTIONS, says="its own"),
        },
    }
    OTHER_DESIGNS = {
        "two-tier": {"ttlcache-l1": TIER_WITH_TTLCACHE},
        "stale-serving": {"deadlines-and-redis-mark": STALE_WITH_DEADLINES_AND_REDIS_MARK},
        "async-cached": {"futures-with-done-callback": ASYNC_FUTURES_WITH_DONE_CALLBACK},
    }
    GRADE_TOGETHER = True
