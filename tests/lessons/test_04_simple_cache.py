"""Lesson 04-simple-cache: the hidden tests reject real TTL-cache bugs and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The exercise 2 cell redefines the whole class, so the two exercises are graded independently:
each run carries the k-th bug of both exercises, and a run with one bug shows that the other exercise keeps
its points.

Most buggy versions are the solution with one edit (``variant``), so each differs from a correct cache
by exactly the bug its name says.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

TTL, LRU = "simple-cache-ttl", "simple-cache-lru"

_SOLUTION = solution_of("04")


# -- simple-cache-ttl: buggy implementations ----------------------------------------------------

TTL_SOLUTION = _SOLUTION[TTL]

TTL_IGNORED = variant(TTL_SOLUTION, (  # the tutorial's bug: the ttl argument is accepted and never used
    "self._data[key] = (value, self._clock() + ttl)",
    "self._data[key] = (value, self._clock() + self.default_ttl)",
))

FALSY_VALUES_MISS = variant(TTL_SOLUTION, (
    """            try:
                value, expires_at = self._data[key]
            except KeyError:
                return default
""",
    """            value, expires_at = self._data.get(key, (None, 0))
            if not value:  # a cached None, 0, "" or [] looks like a miss
                return default
""",
))

EXPIRY_OFF_BY_ONE = variant(  # live until now > t + ttl: one instant too long, at the boundary
    TTL_SOLUTION,
    ("if self._clock() >= expires_at:", "if self._clock() > expires_at:"),
    ("self._clock() < entry[1]", "self._clock() <= entry[1]"),
    ("if now >= expires_at]", "if now > expires_at]"),
    ("if now < expires_at)", "if now <= expires_at)"),
)

TTL_ZERO_MEANS_DEFAULT = variant(TTL_SOLUTION, (
    """        if ttl is None:
            ttl = self.default_ttl
""",
    """        ttl = ttl or self.default_ttl  # 0 is falsy: ttl=0 becomes default_ttl
""",
))

SIZE_COUNTS_EXPIRED = variant(TTL_SOLUTION, (  # the tutorial's size(): len() of everything held
    "            return sum(1 for _, expires_at in self._data.values() if now < expires_at)",
    "            return len(self._data)",
))

SHARED_CLASS_STORAGE = variant(  # one dict for every instance
    TTL_SOLUTION,
    ('    """A thread-safe in-memory cache whose entries expire after a time-to-live (TTL).',
     '    _data = {}  # a class attribute: shared by every SimpleCache\n\n'
     '    """A thread-safe in-memory cache whose entries expire after a time-to-live (TTL).'),
    ("        self._data = {}  # key -> (value, expires_at)\n", ""),
)

ZERO_DEFAULT_TTL_REFUSED = variant(TTL_SOLUTION, (  # "a TTL must be positive": refuses default_ttl=0, which is valid
    "        if default_ttl < 0:\n",
    "        if default_ttl <= 0:\n",
))

NO_LOCK = '''
import time


class SimpleCache:
    """Right semantics, no lock: check-then-act sequences interleave between threads."""

    def __init__(self, default_ttl=300, clock=time.monotonic):
        if default_ttl < 0:
            raise ValueError("default_ttl must be >= 0")
        self.default_ttl = default_ttl
        self._clock = clock
        self._data = {}

    def get(self, key, default=None):
        if key in self._data:
            value, expires_at = self._data[key]
            if self._clock() < expires_at:
                return value
            del self._data[key]
        return default

    def set(self, key, value, ttl=None):
        if ttl is None:
            ttl = self.default_ttl
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        self._data[key] = (value, self._clock() + ttl)

    def delete(self, key):
        if key in self._data:
            _, expires_at = self._data.pop(key)
            return self._clock() < expires_at
        return False

    def clear(self):
        self._data.clear()

    def cleanup(self):
        now = self._clock()
        expired = [k for k, (_, e) in self._data.items() if now >= e]
        for k in expired:
            del self._data[k]
        return len(expired)

    def size(self):
        now = self._clock()
        return sum(1 for _, e in self._data.values() if now < e)

    def __len__(self):
        return self.size()
'''

LOCK_NOT_HELD_ACROSS_CHECK_THEN_ACT = variant(TTL_SOLUTION, (
    """        with self._lock:
            try:
                value, expires_at = self._data[key]
            except KeyError:
                return default
            if self._clock() >= expires_at:
                del self._data[key]
                return default
            return value
""",
    """        with self._lock:  # the lookup is locked...
            entry = self._data.get(key)
        if entry is None:
            return default
        value, expires_at = entry
        if self._clock() >= expires_at:
            with self._lock:  # ...and the delete is locked, but another thread runs in between
                del self._data[key]
            return default
        return value
""",
))

DEADLOCK_LOCK_TAKEN_TWICE = variant(TTL_SOLUTION, (
    """            if self._clock() >= expires_at:
                del self._data[key]
                return default
""",
    """            if self._clock() >= expires_at:
                self.delete(key)  # delete() takes the same (non-reentrant) Lock: deadlock
                return default
""",
))

# -- simple-cache-lru: buggy implementations ----------------------------------------------------

LRU_SOLUTION = _SOLUTION[LRU]

FIFO_GET_DOES_NOT_REFRESH = variant(LRU_SOLUTION, (
    "            self._data.move_to_end(key)\n            self._hits += 1\n",
    "            self._hits += 1\n",
))

EVICTS_MOST_RECENT = variant(LRU_SOLUTION, ("self._data.popitem(last=False)", "self._data.popitem()"))

OVERWRITE_EVICTS = variant(LRU_SOLUTION, (  # replacing a live key in a full cache evicts another key
    """                self._data.move_to_end(key)
            elif self.maxsize is not None""",
    """                self._data.move_to_end(key)
            if self.maxsize is not None""",
))

EVICTS_LIVE_BEFORE_EXPIRED = variant(LRU_SOLUTION, ("                self._remove_expired(now)\n", ""))

EXPIRED_COUNTED_AS_HIT = variant(LRU_SOLUTION, (  # "found the key" counted as a hit before the expiry check
    """                del self._data[key]
                self._misses += 1
""",
    """                del self._data[key]
                self._hits += 1
""",
))

HIT_RATIO_HITS_OVER_MISSES = variant(LRU_SOLUTION, (
    '"hit_ratio": self._hits / lookups if lookups else 0.0}',
    '"hit_ratio": self._hits / self._misses if self._misses else 0.0}',
))

NO_TTL_VALIDATION_LRU = variant(  # maxsize is checked, the TTLs of Exercise 1 no longer are
    LRU_SOLUTION,
    ("""        if default_ttl < 0:
            raise ValueError(f"default_ttl must be >= 0 seconds, got {default_ttl!r}")
""", ""),
    ("""        if ttl < 0:
            raise ValueError(f"ttl must be >= 0 seconds, got {ttl!r}")
""", ""),
)

NEGATIVE_TTL_STORED_LRU = variant(LRU_SOLUTION, (  # only set()'s check was lost: a negative ttl stores an expired entry
    """        if ttl < 0:
            raise ValueError(f"ttl must be >= 0 seconds, got {ttl!r}")
""", ""),
)

FLOAT_DEFAULT_TTL_REFUSED_LRU = variant(LRU_SOLUTION, (  # whole seconds only: default_ttl=0.5 is refused
    "        if default_ttl < 0:\n",
    "        if not isinstance(default_ttl, int) or default_ttl < 0:\n",
))

DELETE_SIZE_OFF_BY_ONE_LRU = variant(  # get() and cleanup() are right; delete() and size() keep an entry one instant too long
    LRU_SOLUTION,
    ("self._clock() < entry[1]", "self._clock() <= entry[1]"),
    ("if now < expires_at)", "if now <= expires_at)"),
)

NO_LAZY_DELETE_LRU = variant(LRU_SOLUTION, (  # a correct design: get() leaves an expired entry for cleanup() or eviction
    """                del self._data[key]
                self._misses += 1
""",
    """                self._misses += 1  # the expired entry stays held until cleanup() or an eviction drops it
""",
))

NO_LOCK_LRU = '''
import time
from collections import OrderedDict


class SimpleCache:
    """Right semantics, no lock: OrderedDict operations race between threads."""

    def __init__(self, default_ttl=300, maxsize=None, clock=time.monotonic):
        if default_ttl < 0 or (maxsize is not None and maxsize < 1):
            raise ValueError("bad default_ttl or maxsize")
        self.default_ttl, self.maxsize, self._clock = default_ttl, maxsize, clock
        self._data = OrderedDict()
        self._hits = self._misses = 0

    def get(self, key, default=None):
        if key not in self._data:
            self._misses += 1
            return default
        value, expires_at = self._data[key]
        if self._clock() >= expires_at:
            del self._data[key]
            self._misses += 1
            return default
        self._data.move_to_end(key)
        self._hits += 1
        return value

    def set(self, key, value, ttl=None):
        ttl = self.default_ttl if ttl is None else ttl
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        now = self._clock()
        if key in self._data:
            self._data.move_to_end(key)
        elif self.maxsize is not None and len(self._data) >= self.maxsize:
            self.cleanup()
            while len(self._data) >= self.maxsize:
                self._data.popitem(last=False)
        self._data[key] = (value, now + ttl)

    def delete(self, key):
        entry = self._data.pop(key, None)
        return entry is not None and self._clock() < entry[1]

    def clear(self):
        self._data.clear()

    def cleanup(self):
        now = self._clock()
        expired = [k for k, (_, e) in self._data.items() if now >= e]
        for k in expired:
            del self._data[k]
        return len(expired)

    def size(self):
        now = self._clock()
        return sum(1 for _, e in self._data.values() if now < e)

    def stats(self):
        total = self._hits + self._misses
        return {"hits": self._hits, "misses": self._misses, "hit_ratio": self._hits / total if total else 0.0}

    def __len__(self):
        return self.size()
'''

# -- correct implementations of other designs -----------------------------------------------------

HEAP_EXPIRY_RLOCK = '''
import heapq
import itertools
import threading
import time


class SimpleCache:
    """Entries in a dict, expiry times in a heap, purged on every write (as cachetools does).

    Methods call each other while holding the lock, so it is an RLock.
    """

    def __init__(self, default_ttl=300, clock=time.monotonic):
        if default_ttl < 0:
            raise ValueError("default_ttl must be >= 0")
        self.default_ttl = default_ttl
        self.clock = clock
        self._lock = threading.RLock()
        self._entries = {}  # key -> (expires_at, serial, value)
        self._heap = []  # (expires_at, serial, key); items of replaced or deleted entries are skipped
        self._serial = itertools.count()

    def get(self, key, default=None):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            if self.clock() >= entry[0]:
                self.delete(key)
                return default
            return entry[2]

    def set(self, key, value, ttl=None):
        ttl = self.default_ttl if ttl is None else ttl
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        with self._lock:
            self.cleanup()
            serial = next(self._serial)
            expires_at = self.clock() + ttl
            self._entries[key] = (expires_at, serial, value)
            heapq.heappush(self._heap, (expires_at, serial, key))

    def delete(self, key):
        with self._lock:
            entry = self._entries.pop(key, None)
            return entry is not None and self.clock() < entry[0]

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._heap.clear()

    def cleanup(self):
        with self._lock:
            now, removed = self.clock(), 0
            while self._heap and self._heap[0][0] <= now:
                _, serial, key = heapq.heappop(self._heap)
                entry = self._entries.get(key)
                if entry is not None and entry[1] == serial:
                    del self._entries[key]
                    removed += 1
            return removed

    def size(self):
        with self._lock:
            self.cleanup()
            return len(self._entries)

    def __len__(self):
        return self.size()
'''

TWO_DICTS_NO_LAZY_DELETE = '''
import threading
import time


def _seconds(name, value):
    if not value >= 0:  # refuses negative numbers (and NaN); 0 and fractions are valid
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return value


class SimpleCache:
    \"\"\"Values and expiry times in two dicts; get() never deletes, cleanup() is what drops expired entries.\"\"\"

    def __init__(self, default_ttl=300, clock=time.monotonic):
        self.default_ttl = _seconds("default_ttl", default_ttl)
        self._now = clock
        self._lock = threading.Lock()
        self._values, self._expiry = {}, {}

    def _live(self, key, now):
        return key in self._expiry and now < self._expiry[key]

    def get(self, key, default=None):
        with self._lock:
            return self._values[key] if self._live(key, self._now()) else default

    def set(self, key, value, ttl=None):
        ttl = _seconds("ttl", self.default_ttl if ttl is None else ttl)
        with self._lock:
            self._values[key] = value
            self._expiry[key] = self._now() + ttl

    def delete(self, key):
        with self._lock:
            live = self._live(key, self._now())
            self._values.pop(key, None)
            self._expiry.pop(key, None)
            return live

    def clear(self):
        with self._lock:
            self._values.clear()
            self._expiry.clear()

    def cleanup(self):
        with self._lock:
            now = self._now()
            expired = [key for key in self._expiry if not self._live(key, now)]
            for key in expired:
                del self._values[key], self._expiry[key]
            return len(expired)

    def size(self):
        with self._lock:
            now = self._now()
            return sum(1 for key in self._expiry if self._live(key, now))

    def __len__(self):
        return self.size()
'''

LINKED_LIST_LRU = '''
import threading
import time


class _Node:
    __slots__ = ("key", "value", "expires_at", "prev", "next")


class SimpleCache:
    """A dict of nodes on a circular doubly linked list: most recently used right after the root."""

    def __init__(self, default_ttl=300, maxsize=None, clock=time.monotonic):
        if default_ttl < 0:
            raise ValueError("default_ttl must be >= 0")
        if maxsize is not None and maxsize < 1:
            raise ValueError("maxsize must be None or >= 1")
        self.default_ttl, self.maxsize, self.clock = default_ttl, maxsize, clock
        self._lock = threading.RLock()
        self._nodes = {}
        self._root = _Node()
        self._root.prev = self._root.next = self._root
        self._counts = {"hits": 0, "misses": 0}

    def _unlink(self, node):
        node.prev.next, node.next.prev = node.next, node.prev

    def _push_front(self, node):
        node.prev, node.next = self._root, self._root.next
        self._root.next.prev = node
        self._root.next = node

    def get(self, key, default=None):
        with self._lock:
            node = self._nodes.get(key)
            if node is not None and self.clock() < node.expires_at:
                self._unlink(node)
                self._push_front(node)
                self._counts["hits"] += 1
                return node.value
            if node is not None:
                self.delete(key)
            self._counts["misses"] += 1
            return default

    def set(self, key, value, ttl=None):
        ttl = self.default_ttl if ttl is None else ttl
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        with self._lock:
            node = self._nodes.get(key)
            if node is None:
                if self.maxsize is not None and len(self._nodes) >= self.maxsize:
                    self.cleanup()
                    while len(self._nodes) >= self.maxsize:
                        lru = self._root.prev
                        self._unlink(lru)
                        del self._nodes[lru.key]
                node = _Node()
                node.key = key
                self._nodes[key] = node
            else:
                self._unlink(node)
            node.value, node.expires_at = value, self.clock() + ttl
            self._push_front(node)

    def delete(self, key):
        with self._lock:
            node = self._nodes.pop(key, None)
            if node is None:
                return False
            self._unlink(node)
            return self.clock() < node.expires_at

    def clear(self):
        with self._lock:
            self._nodes.clear()
            self._root.prev = self._root.next = self._root

    def cleanup(self):
        with self._lock:
            now = self.clock()
            expired = [k for k, n in self._nodes.items() if now >= n.expires_at]
            for k in expired:
                self.delete(k)
            return len(expired)

    def size(self):
        with self._lock:
            now = self.clock()
            return sum(now < n.expires_at for n in self._nodes.values())

    def stats(self):
        with self._lock:
            hits, misses = self._counts["hits"], self._counts["misses"]
            total = hits + misses
            return {"hits": hits, "misses": misses, "hit_ratio": hits / total if total else 0.0,
                    "held": len(self._nodes)}

    def __len__(self):
        return self.size()
'''


class TestSimpleCache(LessonContract):
    LESSON = "04"
    BUGS = {
        TTL: {
            "ttl-ignored": TTL_IGNORED,
            "falsy-miss": FALSY_VALUES_MISS,
            "off-by-one": EXPIRY_OFF_BY_ONE,
            "ttl-zero-default": TTL_ZERO_MEANS_DEFAULT,
            "no-lock": NO_LOCK,
            "size-counts-expired": SIZE_COUNTS_EXPIRED,
            "split-lock": Bug(LOCK_NOT_HELD_ACROSS_CHECK_THEN_ACT, says="thread"),
            "shared-class-storage": Bug(SHARED_CLASS_STORAGE, says="class attribute"),
            "deadlock": Bug(DEADLOCK_LOCK_TAKEN_TWICE, says="RLock"),
            "zero-default-ttl-refused": Bug(ZERO_DEFAULT_TTL_REFUSED, says="0 and fractions of a second included"),
        },
        LRU: {
            "fifo": FIFO_GET_DOES_NOT_REFRESH,
            "evicts-most-recent": EVICTS_MOST_RECENT,
            "overwrite-evicts": OVERWRITE_EVICTS,
            "live-evicted-before-expired": EVICTS_LIVE_BEFORE_EXPIRED,
            "no-lock-lru": NO_LOCK_LRU,
            "expired-counted-as-hit": EXPIRED_COUNTED_AS_HIT,
            "hit-ratio-hits-over-misses": Bug(HIT_RATIO_HITS_OVER_MISSES, says="hit_ratio"),
            "no-ttl-validation": Bug(NO_TTL_VALIDATION_LRU, says="must raise ValueError: a negative default_ttl"),
            "negative-ttl-stored": Bug(NEGATIVE_TTL_STORED_LRU, says="must raise ValueError: a negative ttl"),
            "float-default-ttl-refused": Bug(FLOAT_DEFAULT_TTL_REFUSED_LRU, says="0 and fractions of a second included"),
            "delete-size-off-by-one": Bug(DELETE_SIZE_OFF_BY_ONE_LRU, says="exactly 2 s later size()"),
        },
    }
    OTHER_DESIGNS = {TTL: {"heap-expiry-rlock": HEAP_EXPIRY_RLOCK, "two-dicts-no-lazy-delete": TWO_DICTS_NO_LAZY_DELETE},
                     LRU: {"linked-list-lru": LINKED_LIST_LRU, "no-lazy-delete-lru": NO_LAZY_DELETE_LRU}}
    GRADE_TOGETHER = True

    def check_bug_run(self, result, run):
        for exercise in result.exercises:  # a learner-readable reason, never the stub message
            if exercise.id in run:
                assert "stub" not in exercise.message and len(exercise.message) > 30, exercise.message

    def check_design_run(self, result):
        assert result.max_score == 10, result.max_score
        assert result.figures, "the chart cell drew no figure for a correct implementation"
