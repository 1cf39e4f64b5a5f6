"""Lesson 05-strategies: buggy implementations lose their exercise's points, other designs get full marks.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The exercises are independent, so one grading run carries one buggy answer per exercise (the
k-th bug of each); an exercise without a k-th bug keeps the solution's answer and must keep its points. Each failure must come with the message of the
check that should catch that bug, so a bug caught by accident (a crash elsewhere) does not count.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

# ----------------------------------------------------------------------------------------------------
# read-through: ReadThroughCache(loader, cache=None) with get / invalidate

RT_IF_CACHED_TRUTHY = '''
class ReadThroughCache:
    def __init__(self, loader, cache=None):
        self.loader = loader
        self.cache = {} if cache is None else cache

    def get(self, key):
        cached = self.cache.get(key)
        if cached:  # BUG: 0.0, None, "" and [] are treated as misses and reloaded every time
            return cached
        value = self.loader(key)
        self.cache[key] = value
        return value

    def invalidate(self, key):
        self.cache.pop(key, None)
'''

RT_EMPTY_CACHE_REPLACED = '''
class ReadThroughCache:
    def __init__(self, loader, cache=None):
        self.loader = loader
        self.cache = cache or {}  # BUG: an empty dict or TTLCache passed in is falsy and silently replaced

    def get(self, key):
        if key in self.cache:
            return self.cache[key]
        value = self.loader(key)
        self.cache[key] = value
        return value

    def invalidate(self, key):
        self.cache.pop(key, None)
'''

RT_FAILED_LOAD_CACHED = '''
class ReadThroughCache:
    def __init__(self, loader, cache=None):
        self.loader = loader
        self.cache = {} if cache is None else cache

    def get(self, key):
        if key in self.cache:
            return self.cache[key]
        try:
            value = self.loader(key)
        except Exception:  # BUG: the failure is hidden and cached as "no such row"
            value = None
        self.cache[key] = value
        return value

    def invalidate(self, key):
        self.cache.pop(key, None)
'''

RT_STRINGIFIED_KEYS = '''
class ReadThroughCache:
    def __init__(self, loader, cache=None):
        self.loader = loader
        self.cache = {} if cache is None else cache

    def get(self, key):
        k = str(key)  # BUG: get(1) and get("1") share one entry
        if k in self.cache:
            return self.cache[k]
        value = self.loader(key)
        self.cache[k] = value
        return value

    def invalidate(self, key):
        self.cache.pop(str(key), None)
'''

RT_ALTERNATIVE_SENTINEL = '''
_NOT_CACHED = object()


class ReadThroughCache:
    """A different correct design: a sentinel default instead of KeyError, explicit membership on invalidate."""

    def __init__(self, loader, cache=None):
        self._loader = loader
        self._entries = dict() if cache is None else cache
        self.loads = 0

    def get(self, key):
        value = self._entries.get(key, _NOT_CACHED)
        if value is _NOT_CACHED:
            value = self._loader(key)
            self.loads += 1
            self._entries[key] = value
        return value

    def invalidate(self, key):
        if key in self._entries:
            del self._entries[key]
'''

# ----------------------------------------------------------------------------------------------------
# write-through: WriteThroughStore(db, cache) with get / update

WT_CACHE_BEFORE_DB_NO_ROLLBACK = '''
class WriteThroughStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache

    def get(self, product_id):
        if product_id in self.cache:
            return self.cache[product_id]
        price = price_from(self.db, product_id)
        self.cache[product_id] = price
        return price

    def update(self, product_id, price):
        self.cache[product_id] = price  # BUG: the cache first; a failed database write leaves it claiming the price
        changed = self.db.update("products", product_id, price=price)
        if not changed:
            self.cache[product_id] = None
        return changed
'''

WT_SWALLOWS_DB_ERROR = '''
class WriteThroughStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache

    def get(self, product_id):
        if product_id in self.cache:
            return self.cache[product_id]
        price = price_from(self.db, product_id)
        self.cache[product_id] = price
        return price

    def update(self, product_id, price):
        try:
            changed = self.db.update("products", product_id, price=price)
        except DatabaseError:  # BUG: the caller never learns that its write was lost
            return False
        self.cache[product_id] = price if changed else None
        return changed
'''

WT_NONE_NOT_CACHED = '''
class WriteThroughStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache

    def get(self, product_id):
        price = self.cache.get(product_id)
        if price is not None:  # BUG: a missing product (None) is a miss every time, one database read per lookup
            return price
        price = price_from(self.db, product_id)
        self.cache[product_id] = price
        return price

    def update(self, product_id, price):
        changed = self.db.update("products", product_id, price=price)
        self.cache[product_id] = price if changed else None
        return changed
'''

WT_EMPTY_CACHE_REPLACED = '''
class WriteThroughStore:
    def __init__(self, db, cache):
        self.db = db
        self.cache = cache or {}  # BUG: the empty mapping the caller passed (and may share) is replaced

    def get(self, product_id):
        if product_id in self.cache:
            return self.cache[product_id]
        price = price_from(self.db, product_id)
        self.cache[product_id] = price
        return price

    def update(self, product_id, price):
        changed = self.db.update("products", product_id, price=price)
        self.cache[product_id] = price if changed else None
        return changed
'''

WT_ROLLBACK_INVENTS_NONE = '''
class WriteThroughStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache

    def get(self, product_id):
        if product_id in self.cache:
            return self.cache[product_id]
        price = price_from(self.db, product_id)
        self.cache[product_id] = price
        return price

    def update(self, product_id, price):
        old = self.cache.get(product_id)
        self.cache[product_id] = price
        try:
            changed = self.db.update("products", product_id, price=price)
        except DatabaseError:
            self.cache[product_id] = old  # BUG: for a product that was not cached, "rolls back" to a cached None
            raise
        if not changed:
            self.cache[product_id] = None
        return changed
'''

WT_ALTERNATIVE_MEMBERSHIP = '''
_ABSENT = object()


class WriteThroughStore:
    """A different correct design: a sentinel lookup, and the cache written with update() after the database."""

    def __init__(self, db, cache):
        self._db = db
        self._cache = cache

    def _load(self, product_id):
        row = self._db.get("products", product_id)
        return row["price"] if row is not None else None

    def get(self, product_id):
        price = self._cache.get(product_id, _ABSENT)
        if price is _ABSENT:
            price = self._load(product_id)
            self._cache[product_id] = price
        return price

    def update(self, product_id, price):
        if not self._db.update("products", product_id, price=price):
            self._cache.pop(product_id, None)
            self._cache[product_id] = None
            return False
        self._cache.update({product_id: price})
        return True
'''

# ----------------------------------------------------------------------------------------------------
# write-behind: WriteBehindStore(db, cache) with get / update / flush / pending, thread-safe

_WB_COMMON = '''
    def get(self, product_id):
        with self._lock:
            if product_id in self._dirty:
                return self._dirty[product_id]
            if product_id in self.cache:
                return self.cache[product_id]
        price = price_from(self.db, product_id)
        with self._lock:
            return self._dirty.get(product_id, self.cache.setdefault(product_id, price))

    def pending(self):
        with self._lock:
            return len(self._dirty)
'''

WB_CLEARS_BEFORE_WRITING = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = {}
        self._lock = threading.Lock()

    def update(self, product_id, price):
        with self._lock:
            self._dirty[product_id] = price
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            batch = dict(self._dirty)
            self._dirty.clear()  # BUG: forgotten before the writes succeeded; a failed flush loses them
        for product_id, price in batch.items():
            self.db.update("products", product_id, price=price)
        return len(batch)
''' + _WB_COMMON

WB_CLEARS_AFTER_WRITING = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = {}
        self._lock = threading.Lock()

    def update(self, product_id, price):
        with self._lock:
            self._dirty[product_id] = price
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            batch = dict(self._dirty)
        for product_id, price in batch.items():
            self.db.update("products", product_id, price=price)
        with self._lock:
            self._dirty.clear()  # BUG: also clears updates that arrived while the batch was being written
        return len(batch)
''' + _WB_COMMON

WB_WRITES_FIRST_VALUE = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = {}
        self._lock = threading.Lock()

    def update(self, product_id, price):
        with self._lock:
            self._dirty.setdefault(product_id, price)  # BUG: keeps the first pending price, not the last
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            written = 0
            for product_id in list(self._dirty):
                self.db.update("products", product_id, price=self._dirty[product_id])
                del self._dirty[product_id]
                written += 1
            return written

    def get(self, product_id):
        with self._lock:
            if product_id in self.cache:
                return self.cache[product_id]
            price = price_from(self.db, product_id)
            self.cache[product_id] = price
            return price

    def pending(self):
        with self._lock:
            return len(self._dirty)
'''

WB_DIRTY_VALUES_ONLY_IN_CACHE = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = set()  # BUG: only the keys; the prices live in the cache, which may evict them
        self._lock = threading.Lock()

    def update(self, product_id, price):
        with self._lock:
            self._dirty.add(product_id)
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            written = 0
            for product_id in list(self._dirty):
                if product_id in self.cache:
                    self.db.update("products", product_id, price=self.cache[product_id])
                    written += 1
                self._dirty.discard(product_id)
            return written

    def get(self, product_id):
        with self._lock:
            if product_id in self.cache:
                return self.cache[product_id]
            price = price_from(self.db, product_id)
            self.cache[product_id] = price
            return price

    def pending(self):
        with self._lock:
            return len(self._dirty)
'''

WB_REQUEUE_OVERWRITES_NEWER = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = {}
        self._inflight = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def update(self, product_id, price):
        with self._lock:
            self._dirty[product_id] = price
            self.cache[product_id] = price

    def flush(self):
        with self._flush_lock:
            with self._lock:
                batch, self._dirty = self._dirty, {}
                self._inflight = batch
            items = list(batch.items())
            try:
                for i, (product_id, price) in enumerate(items):
                    try:
                        self.db.update("products", product_id, price=price)
                    except DatabaseError:
                        with self._lock:
                            self._dirty.update(items[i:])  # BUG: puts older prices back over newer updates
                        raise
            finally:
                with self._lock:
                    self._inflight = {}
            return len(items)

    def get(self, product_id):
        with self._lock:
            for table in (self._dirty, self._inflight):
                if product_id in table:
                    return table[product_id]
            if product_id in self.cache:
                return self.cache[product_id]
        price = price_from(self.db, product_id)
        with self._lock:
            self.cache.setdefault(product_id, price)
            return self.cache[product_id]

    def pending(self):
        with self._lock:
            return len(self._dirty) + len(self._inflight)
'''

WB_FLUSHES_OVERLAP = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = {}
        self._seq = 0
        self._lock = threading.Lock()  # BUG: nothing stops two flushes from running at once

    def update(self, product_id, price):
        with self._lock:
            self._seq += 1
            self._dirty[product_id] = (self._seq, price)
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            batch = list(self._dirty.items())
        for product_id, (seq, price) in batch:
            self.db.update("products", product_id, price=price)
            with self._lock:
                if self._dirty.get(product_id, (None,))[0] == seq:
                    del self._dirty[product_id]
        return len(batch)

    def get(self, product_id):
        with self._lock:
            if product_id in self._dirty:
                return self._dirty[product_id][1]
            if product_id in self.cache:
                return self.cache[product_id]
        price = price_from(self.db, product_id)
        with self._lock:
            if product_id in self._dirty:
                return self._dirty[product_id][1]
            return self.cache.setdefault(product_id, price)

    def pending(self):
        with self._lock:
            return len(self._dirty)
'''

WB_NO_COALESCING = '''
class WriteBehindStore:
    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._log = []  # BUG: a write log replayed in full: ten updates of one product cost ten database writes
        self._lock = threading.Lock()

    def update(self, product_id, price):
        with self._lock:
            self._log.append((product_id, price))
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            written = 0
            while self._log:
                product_id, price = self._log[0]
                self.db.update("products", product_id, price=price)
                self._log.pop(0)
                written += 1
            return written

    def get(self, product_id):
        with self._lock:
            for pid, price in reversed(self._log):
                if pid == product_id:
                    return price
            if product_id in self.cache:
                return self.cache[product_id]
            price = price_from(self.db, product_id)
            self.cache[product_id] = price
            return price

    def pending(self):
        with self._lock:
            return len({pid for pid, _ in self._log})
'''

WB_SOLUTION = solution_of("05")["write-behind"]

WB_UPDATE_SKIPS_CACHE = variant(WB_SOLUTION, (  # only marks dirty: a price cached before stays, and wins after the flush
    "            self._dirty[product_id] = (self._seq, price)\n            self.cache[product_id] = price\n",
    "            self._dirty[product_id] = (self._seq, price)\n",
))

WB_READS_DB_FOR_DIRTY = variant(WB_SOLUTION, (  # cache, then database, and the dirty table only after the read
    """            if product_id in self._dirty:
                return self._dirty[product_id][1]
            try:""",
    """            try:""",
))

WB_CACHES_STALE_READ = variant(WB_SOLUTION, (  # caches what it read even if an update (and a flush) landed meanwhile
    """            if self._seq == seq:  # nothing was written meanwhile: safe to cache what we read
                self.cache[product_id] = price
""",
    """            self.cache[product_id] = price
""",
))


WB_ALTERNATIVE_COARSE_LOCK = '''
class WriteBehindStore:
    """A different correct design: one re-entrant lock held for everything, database calls included."""

    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty = {}
        self._lock = threading.RLock()

    def get(self, product_id):
        with self._lock:
            if product_id in self._dirty:
                return self._dirty[product_id]
            if product_id not in self.cache:
                self.cache[product_id] = price_from(self.db, product_id)
            return self.cache[product_id]

    def update(self, product_id, price):
        with self._lock:
            self._dirty[product_id] = price
            self.cache[product_id] = price

    def flush(self):
        with self._lock:
            written = 0
            for product_id in list(self._dirty):
                self.db.update("products", product_id, price=self._dirty[product_id])
                del self._dirty[product_id]
                written += 1
            return written

    def pending(self):
        with self._lock:
            return len(self._dirty)
'''

WB_ALTERNATIVE_SWAP_AND_REQUEUE = '''
class WriteBehindStore:
    """A different correct design: swap the dirty table out, keep it readable while in flight, and on a failure
    put back only what no newer update replaced."""

    def __init__(self, db, cache):
        self.db, self.cache = db, cache
        self._dirty, self._inflight = {}, {}
        self._version = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def get(self, product_id):
        with self._lock:
            for table in (self._dirty, self._inflight):
                if product_id in table:
                    return table[product_id]
            try:
                return self.cache[product_id]
            except KeyError:
                version = self._version
        price = price_from(self.db, product_id)
        with self._lock:
            for table in (self._dirty, self._inflight):
                if product_id in table:
                    return table[product_id]
            if version == self._version:
                self.cache[product_id] = price
            return price

    def update(self, product_id, price):
        with self._lock:
            self._version += 1
            self._dirty[product_id] = price
            self.cache[product_id] = price

    def flush(self):
        with self._flush_lock:
            with self._lock:
                self._inflight, self._dirty = self._dirty, {}
            items = list(self._inflight.items())
            done = 0
            try:
                for product_id, price in items:
                    self.db.update("products", product_id, price=price)
                    done += 1
            finally:
                with self._lock:
                    for product_id, price in items[done:]:
                        self._dirty.setdefault(product_id, price)  # a newer update wins
                    self._inflight = {}
            return done

    def pending(self):
        with self._lock:
            return len(self._dirty.keys() | self._inflight.keys())
'''


class TestStrategies(LessonContract):
    LESSON = "05"
    BUGS = {
        "read-through": {
            "if-cached-truthy": Bug(RT_IF_CACHED_TRUTHY, says="treats a falsy value as a miss"),
            "empty-cache-replaced": Bug(RT_EMPTY_CACHE_REPLACED, says="throws an empty one away"),
            "failed-load-cached": Bug(RT_FAILED_LOAD_CACHED, says="loader raised DatabaseError"),
            "stringified-keys": Bug(RT_STRINGIFIED_KEYS, says="different keys share one entry"),
        },
        "write-through": {
            "cache-before-db-no-rollback": Bug(WT_CACHE_BEFORE_DB_NO_ROLLBACK, says="a price the database never stored"),
            "swallows-db-error": Bug(WT_SWALLOWS_DB_ERROR, says="returned instead of raising DatabaseError"),
            "none-not-cached": Bug(WT_NONE_NOT_CACHED, says="are cached values, not misses"),
            "empty-cache-replaced": Bug(WT_EMPTY_CACHE_REPLACED, says="the cache mapping holds"),
            "rollback-invents-none": Bug(WT_ROLLBACK_INVENTS_NONE, says="leave the cache exactly as it was"),
        },
        "write-behind": {
            "clears-before-writing": Bug(WB_CLEARS_BEFORE_WRITING, says="so it is lost"),
            "clears-after-writing": Bug(WB_CLEARS_AFTER_WRITING, says="forgot an update that raced with it"),
            "writes-first-value": Bug(WB_WRITES_FIRST_VALUE, says="the first price given for product 1"),
            "dirty-values-only-in-cache": Bug(WB_DIRTY_VALUES_ONLY_IN_CACHE, says="LRUCache(maxsize=2)"),
            "requeue-overwrites-newer": Bug(WB_REQUEUE_OVERWRITES_NEWER, says="must not put its older price back"),
            "flushes-overlap": Bug(WB_FLUSHES_OVERLAP, says="two flushes overlapped"),
            "no-coalescing": Bug(WB_NO_COALESCING, says="coalesce, one write per product"),
            "update-skips-cache": Bug(WB_UPDATE_SKIPS_CACHE, says="must record the new price in the cache"),
            "reads-db-for-dirty": Bug(WB_READS_DB_FOR_DIRTY, says="look there first, before the cache"),
            "caches-stale-read": Bug(WB_CACHES_STALE_READ, says=("must not put its older price in the cache",
                                                                   "get() returned old prices")),
        },
    }
    OTHER_DESIGNS = {
        "read-through": {"sentinel": RT_ALTERNATIVE_SENTINEL},
        "write-through": {"membership": WT_ALTERNATIVE_MEMBERSHIP},
        "write-behind": {"coarse-lock": WB_ALTERNATIVE_COARSE_LOCK, "swap-and-requeue": WB_ALTERNATIVE_SWAP_AND_REQUEUE},
    }
    GRADE_TOGETHER = True
