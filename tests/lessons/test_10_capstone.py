"""Lesson 10-capstone: the hidden tests reject real caching-layer bugs and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The three exercises extend one class (``class CachedShopAPI(CachedShopAPI):``), and every bug
below keeps the answers of the *other* exercises correct, so each run carries the k-th bug of every
exercise: the buggy exercises must lose their points and the others keep theirs. The exceptions are the
invalidation bugs that write to the wrong keys: the resilience tests use those keys too (``may_cost``), so
they come last, where no resilience bug shares their run. Each bug names the message fragment
that shows which check caught it.

Most buggy versions are the solution with one edit (``variant``), so each differs from a correct layer by
exactly the bug its name says.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

READS, INVAL, RESIL = "capstone-reads", "capstone-invalidation", "capstone-resilience"

_SOLUTION = solution_of("10")


# -- capstone-reads: buggy implementations --------------------------------------------------------

READS_SOLUTION = _SOLUTION[READS]

READS_FALSY_IS_A_MISS = variant(READS_SOLUTION, (  # `if cached:`: None and [] are reloaded every time
    """        raw = self.r.get(key)
        if raw is not None:
            self._count("hits")
            return json.loads(raw)
        self._count("misses")""",
    """        raw = self.r.get(key)
        cached = json.loads(raw) if raw is not None else None
        if cached:
            self._count("hits")
            return cached
        self._count("misses")""",
), (
    """        raw = self.r.get(key)  # a flight that ended just now may have stored it
        if raw is not None:
            return json.loads(raw)""",
    """        raw = self.r.get(key)  # a flight that ended just now may have stored it
        if raw and json.loads(raw):
            return json.loads(raw)""",
))

READS_NO_TTL = variant(READS_SOLUTION, (  # entries live forever: a lost invalidation is never healed
    "self.r.set(key, json.dumps(value), ex=self._ttl(base_ttl))",
    "self.r.set(key, json.dumps(value))",
))

READS_NO_STAMPEDE_PROTECTION = variant(READS_SOLUTION, (  # every concurrent miss runs the query
    "return self._single_flight(key, lambda: self._load_and_store(key, base_ttl, loader))",
    "return self._load_and_store(key, base_ttl, loader)",
))

READS_NO_JITTER = variant(READS_SOLUTION, (  # every key of a kind expires at the same second
    "return max(1, round(drawn))",
    "return max(1, round(base))",
))

READS_VERSION_NOT_IN_KEY = variant(READS_SOLUTION, (  # bumping the version does not start a fresh cache
    'return f"{self.prefix}v{self.version}:{kind}:{ident}"',
    'return f"{self.prefix}{kind}:{ident}"',
))

READS_ONE_GLOBAL_LOCK = variant(READS_SOLUTION, (  # no stampede, but every cold key waits for every other
    """    def _single_flight(self, key, fn):
""",
    """    _global = threading.Lock()

    def _single_flight(self, key, fn):
        with self._global:
            return fn()
""",
))

# -- capstone-invalidation: buggy implementations ---------------------------------------------------

INVAL_SOLUTION = _SOLUTION[INVAL]

INVAL_NOTHING_ON_ADD_POST = variant(INVAL_SOLUTION, (  # the new post is missing from the cached list
    """        post_id = self.api.add_post(user_id, title, body)
        self._invalidate(self._key("posts", user_id))""",
    """        post_id = self.api.add_post(user_id, title, body)""",
))

INVAL_DELETE_POST_WRONG_KEY = variant(INVAL_SOLUTION, (  # the post id is taken for its owner's id
    'self._invalidate(self._key("posts", post["user_id"]))',
    'self._invalidate(self._key("posts", post_id))',
))

INVAL_BEFORE_THE_WRITE = variant(INVAL_SOLUTION, (  # a read between DEL and the write re-caches the old user
    """        changed = self.api.update_user(user_id, **fields)
        self._invalidate(self._key("user", user_id))""",
    """        self._invalidate(self._key("user", user_id))
        changed = self.api.update_user(user_id, **fields)""",
), (
    """        post_id = self.api.add_post(user_id, title, body)
        self._invalidate(self._key("posts", user_id))""",
    """        self._invalidate(self._key("posts", user_id))
        post_id = self.api.add_post(user_id, title, body)""",
))

INVAL_REWRITES_USER_FROM_FIELDS = variant(INVAL_SOLUTION, (  # "write-through" with a partial row
    """        self._invalidate(self._key("user", user_id))
        return changed""",
    """        if changed:
            self.r.set(self._key("user", user_id), json.dumps(fields), ex=self._ttl(self.user_ttl))
        return changed""",
))

INVAL_FLUSHES_THE_NAMESPACE = variant(INVAL_SOLUTION, (  # correct answers, but every write empties the cache
    """            pipe.delete(*keys)""",
    """            stale = list(self.r.scan_iter(match=self.prefix + "*", count=500))
            pipe.delete(*(stale or keys))""",
))

INVAL_KEYS_PATTERN = variant(INVAL_SOLUTION, (  # correct answers, but KEYS blocks Redis while it walks every key
    """            pipe.delete(*keys)""",
    """            pipe.delete(*[found for key in keys for found in (self.r.keys(key + "*") or [key])])""",
))

# The reader/writer race (issue 16): delete-after-write alone. A read that loaded before the write stores the
# old row after it, and single-flight hands that load to a read that started after the write.
_MARKED_FLIGHT = """    def _single_flight(self, key, fn):
        \"\"\"Step 1's single-flight, per key *and write mark*: a load that began before a write is not handed to
        callers that arrive after it, and what it stored is deleted when a write happened while it ran.\"\"\"
        mark = self.r.get(self._write_mark(key))
        value = super()._single_flight((key, mark), fn)
        if self.r.get(self._write_mark(key)) != mark:  # a write invalidated the key while this load ran
            self.r.delete(key)
        return value
"""
_MARKED_DELETE = """        token = uuid.uuid4().hex
        with self.r.pipeline() as pipe:
            for key in keys:
                pipe.set(self._write_mark(key), token, ex=60)
            pipe.delete(*keys)
            pipe.execute()"""
INVAL_DELETE_AFTER_WRITE_ONLY = variant(INVAL_SOLUTION, (_MARKED_FLIGHT, ""), (_MARKED_DELETE, "        self.r.delete(*keys)"))

# The mark keys single-flight, but a load never checks it after storing: the held read's old row stays cached.
INVAL_MARK_NOT_CHECKED_AFTER_STORE = variant(INVAL_SOLUTION, (
    """        value = super()._single_flight((key, mark), fn)
        if self.r.get(self._write_mark(key)) != mark:  # a write invalidated the key while this load ran
            self.r.delete(key)
        return value""",
    """        return super()._single_flight((key, mark), fn)""",
))

# The late store is deleted, but single-flight is keyed by the key alone: a read after the write joins the old load.
INVAL_FLIGHT_SPANS_WRITES = variant(INVAL_SOLUTION, (
    "value = super()._single_flight((key, mark), fn)", "value = super()._single_flight(key, fn)"))

# Write marks kept in the process (a dict) instead of Redis: right within one process, blind to another's writes.
INVAL_MARKS_IN_PROCESS = variant(INVAL_SOLUTION, (
    """        mark = self.r.get(self._write_mark(key))
        value = super()._single_flight((key, mark), fn)
        if self.r.get(self._write_mark(key)) != mark:  # a write invalidated the key while this load ran
            self.r.delete(key)""",
    """        with self._lock:
            mark = self.__dict__.setdefault("_marks", {}).get(key, 0)
        value = super()._single_flight((key, mark), fn)
        with self._lock:
            changed = self._marks.get(key, 0) != mark
        if changed:
            self.r.delete(key)""",
), (_MARKED_DELETE, """        with self._lock:
            marks = self.__dict__.setdefault("_marks", {})
            for key in keys:
                marks[key] = marks.get(key, 0) + 1
        self.r.delete(*keys)"""))

# -- capstone-resilience: buggy implementations ----------------------------------------------------

RESIL_SOLUTION = _SOLUTION[RESIL]

RESIL_WRITES_RAISE = variant(RESIL_SOLUTION, (  # the write succeeded, then the failed DEL crashes the call
    """        with self._pending_lock:
            self._pending.update(keys)
        try:
            self._flush_pending()
        except redis.RedisError:
            self._count("errors")""",
    """        self.r.delete(*keys)""",
))

# Step 2's write-mark reads around the flight left unguarded (the reference itself, before the tests failed each
# command in turn): when the GET of a write mark fails, the Redis error reaches the caller of get_user.
RESIL_MARK_READS_UNGUARDED = variant(RESIL_SOLUTION, (
    """        try:
            return self._single_flight(key, load_and_store)
        except redis.RedisError:  # step 2's write-mark reads around the flight failed: load once, never twice
            self._count("errors")
            return loaded[0] if loaded else loader()""",
    """        return self._single_flight(key, load_and_store)""",
))

RESIL_FORGETS_FAILED_INVALIDATIONS = variant(RESIL_SOLUTION, (  # stale data served after recovery
    """        with self._pending_lock:
            self._pending.update(keys)
        try:
            self._flush_pending()
        except redis.RedisError:
            self._count("errors")""",
    """        try:
            self.r.delete(*keys)
        except redis.RedisError:
            self._count("errors")""",
))

RESIL_ERRORS_NOT_COUNTED = variant(RESIL_SOLUTION, (  # the outage is invisible to monitoring
    """        except redis.RedisError:
            self._count("errors")
            return loader()""",
    """        except redis.RedisError:
            return loader()""",
))

RESIL_NEVER_RECOVERS = variant(RESIL_SOLUTION, (  # one failure switches Redis off for good
    """        try:
            self._flush_pending()
            raw = self.r.get(key)
        except redis.RedisError:
            self._count("errors")
            return loader()""",
    """        if getattr(self, "_redis_down", False):
            self._count("errors")
            return loader()
        try:
            self._flush_pending()
            raw = self.r.get(key)
        except redis.RedisError:
            self._redis_down = True
            self._count("errors")
            return loader()""",
))

RESIL_CATCHES_EVERYTHING = variant(RESIL_SOLUTION, (  # a database error is hidden and the query retried
    """        def load_and_store():
            value = loader()""",
    """        def load_and_store():
            try:
                value = loader()
            except Exception:
                self._count("errors")
                value = loader()""",
))

# -- another correct design for every exercise -----------------------------------------------------

READS_REDIS_LOCK_DESIGN = '''
import math


class CachedShopAPI:
    """Same interface; stampede protection with a Redis lock (SET NX PX) that works across processes,
    TTLs drawn with randint, keys with '|' separators, counters in a dict behind properties."""

    def __init__(self, api, r, *, prefix="lesson10:", version=1, user_ttl=300, posts_ttl=300,
                 popular_ttl=30, jitter=0.1, rng=None):
        self.api, self.r = api, r
        self.prefix, self.version, self.jitter = prefix, version, jitter
        self.ttls = {"u": user_ttl, "p": posts_ttl, "top": popular_ttl}
        self.rng = rng or random.Random()
        self._stats = {"hits": 0, "misses": 0, "errors": 0}
        self._mutex = threading.Lock()

    hits = property(lambda self: self._stats["hits"])
    misses = property(lambda self: self._stats["misses"])
    errors = property(lambda self: self._stats["errors"])

    def _count(self, name):
        with self._mutex:
            self._stats[name] += 1

    def _key(self, kind, ident):
        return f"{self.prefix}{self.version}|{kind}|{ident}"

    def _ttl(self, base):
        low, high = base * (1 - self.jitter), base * (1 + self.jitter)
        with self._mutex:
            return max(1, self.rng.randint(math.ceil(low), math.floor(high)))

    def _read(self, key, base_ttl, loader):
        raw = self.r.get(key)
        if raw is not None:
            self._count("hits")
            return json.loads(raw)
        self._count("misses")
        token, lock = uuid.uuid4().hex, key + "|lock"
        while True:
            if self.r.set(lock, token, nx=True, px=10_000):
                try:
                    raw = self.r.get(key)
                    if raw is not None:
                        return json.loads(raw)
                    value = loader()
                    self.r.set(key, json.dumps(value), ex=self._ttl(base_ttl))
                    return value
                finally:
                    self.r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
                                "return 0", 1, lock, token)
            time.sleep(0.002)
            raw = self.r.get(key)
            if raw is not None:
                return json.loads(raw)

    def get_user(self, user_id):
        return self._read(self._key("u", user_id), self.ttls["u"], lambda: self.api.get_user(user_id))

    def get_user_posts(self, user_id):
        return self._read(self._key("p", user_id), self.ttls["p"], lambda: self.api.get_user_posts(user_id))

    def popular_products(self, limit=10):
        return self._read(self._key("top", limit), self.ttls["top"], lambda: self.api.popular_products(limit))

    def hit_ratio(self):
        total = self.hits + self.misses + self.errors
        return 0.0 if total == 0 else self.hits / total
'''

INVAL_WRITE_THROUGH_DESIGN = '''
class CachedShopAPI(CachedShopAPI):
    """Writes replace a per-key write token, then refresh the user entry from the database (write-through of the
    whole row) or unlink post lists, in one MULTI; a load stores its value with a Lua compare-and-set, only if
    the token is still the one it read before loading (so a load older than a write never lands)."""

    _STORE = ("if (redis.call('get', KEYS[2]) or '') == ARGV[3] then "
              "redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end return 0")

    def _read(self, key, base_ttl, loader):
        raw = self.r.get(key)
        if raw is not None:
            self._count("hits")
            return json.loads(raw)
        self._count("misses")
        token, lock = uuid.uuid4().hex, key + "|lock"
        while True:
            if self.r.set(lock, token, nx=True, px=10_000):
                try:
                    raw = self.r.get(key)
                    if raw is not None:
                        return json.loads(raw)
                    seen = self.r.get(key + "|w") or ""
                    value = loader()
                    self.r.eval(self._STORE, 2, key, key + "|w", json.dumps(value), self._ttl(base_ttl), seen)
                    return value
                finally:
                    self.r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
                                "return 0", 1, lock, token)
            time.sleep(0.002)
            raw = self.r.get(key)
            if raw is not None:
                return json.loads(raw)

    def _invalidate(self, *keys):
        pipe = self.r.pipeline()
        for key in keys:
            pipe.set(key + "|w", uuid.uuid4().hex, ex=120)
        pipe.unlink(*keys)
        pipe.execute()

    def update_user(self, user_id, **fields):
        changed = self.api.update_user(user_id, **fields)
        key = self._key("u", user_id)
        fresh = self.api.get_user(user_id)
        pipe = self.r.pipeline()
        pipe.set(key + "|w", uuid.uuid4().hex, ex=120)
        pipe.set(key, json.dumps(fresh), ex=self._ttl(self.ttls["u"]))
        pipe.execute()
        return changed

    def add_post(self, user_id, title, body):
        new_id = self.api.add_post(user_id, title, body)
        self._invalidate(self._key("p", user_id))
        return new_id

    def delete_post(self, post_id):
        gone = self.api.delete_post(post_id)
        if gone:
            self._invalidate(self._key("p", gone["user_id"]))
        return gone
'''

RESIL_HEAL_FIRST_DESIGN = '''
class CachedShopAPI(CachedShopAPI):
    """Failed invalidations go to a list healed at the start of every read and write; errors counted once per
    call with a per-call flag; the write-through refresh of step 2 is made safe too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._dirty = []
        self._call = threading.local()

    def _redis_failed(self):
        if not getattr(self._call, "failed", False):
            self._call.failed = True
            self._count("errors")

    def _heal(self):
        with self._mutex:
            dirty = list(dict.fromkeys(self._dirty))
        if dirty:
            self.r.unlink(*dirty)
            with self._mutex:
                self._dirty = [k for k in self._dirty if k not in dirty]

    def _read(self, key, base_ttl, loader):
        self._call.failed = False
        try:
            self._heal()
            raw = self.r.get(key)
        except redis.ConnectionError:
            self._redis_failed()
            return loader()
        except redis.RedisError:
            self._redis_failed()
            return loader()
        if raw is not None:
            self._count("hits")
            return json.loads(raw)
        self._count("misses")
        value = loader()
        try:
            self.r.set(key, json.dumps(value), ex=self._ttl(base_ttl))
        except redis.RedisError:
            self._redis_failed()
        return value

    def _invalidate(self, *keys):
        with self._mutex:
            self._dirty.extend(keys)
        try:
            self._heal()
        except redis.RedisError:
            self._redis_failed()

    def update_user(self, user_id, **fields):
        self._call.failed = False
        changed = self.api.update_user(user_id, **fields)
        self._invalidate(self._key("u", user_id))
        return changed

    def add_post(self, user_id, title, body):
        self._call.failed = False
        return super().add_post(user_id, title, body)

    def delete_post(self, post_id):
        self._call.failed = False
        return super().delete_post(post_id)
'''

# A wrong key in a write also leaves stale data in the resilience tests, which replay writes through the
# same class: those runs allow capstone-resilience to fail too (it is not asserted either way).


class TestCapstone(LessonContract):
    LESSON = "10"
    BUGS = {
        READS: {
            "falsy-is-a-miss": Bug(READS_FALSY_IS_A_MISS, says="treated as a miss"),
            "no-ttl": Bug(READS_NO_TTL, says="no TTL"),
            "no-stampede-protection": Bug(READS_NO_STAMPEDE_PROTECTION, says="a stampede"),
            "no-jitter": Bug(READS_NO_JITTER, says="distinct TTLs"),
            "version-not-in-key": Bug(READS_VERSION_NOT_IN_KEY, says="version=2"),
            "one-global-lock": Bug(READS_ONE_GLOBAL_LOCK, says="one global lock"),
        },
        INVAL: {
            "invalidate-before-write": Bug(INVAL_BEFORE_THE_WRITE, says="delete after the write"),
            "flushes-namespace": Bug(INVAL_FLUSHES_THE_NAMESPACE, says="user 3 stays cached"),
            "keys-pattern": Bug(INVAL_KEYS_PATTERN, says="KEYS"),
            "delete-after-write-only": Bug(INVAL_DELETE_AFTER_WRITE_ONLY, says="through the same layer: a get_user(8) that started after"),
            "mark-not-checked-after-store": Bug(INVAL_MARK_NOT_CHECKED_AFTER_STORE, says="through the same layer: a get_user(8) loaded the old row"),
            "flight-spans-writes": Bug(INVAL_FLIGHT_SPANS_WRITES, says="through the same layer: a get_user(8) that started after"),
            "nothing-on-add-post": Bug(INVAL_NOTHING_ON_ADD_POST, says="was not invalidated", may_cost=(RESIL,)),
            "delete-post-wrong-key": Bug(INVAL_DELETE_POST_WRONG_KEY, says="post list of the post's owner", may_cost=(RESIL,)),
            "rewrites-user-from-fields": Bug(INVAL_REWRITES_USER_FROM_FIELDS, says="api.get_user(2) after api.update_user", may_cost=(RESIL,)),
            "marks-in-process": Bug(INVAL_MARKS_IN_PROCESS, says="(another process): a get_user(8) that started after"),
        },
        RESIL: {
            "writes-raise": Bug(RESIL_WRITES_RAISE, says="update_user(3, name='Outage') raised"),
            "forgets-failed-invalidations": Bug(RESIL_FORGETS_FAILED_INVALIDATIONS, says="remember the keys whose invalidation failed"),
            "errors-not-counted": Bug(RESIL_ERRORS_NOT_COUNTED, says="api.errors"),
            "never-recovers": Bug(RESIL_NEVER_RECOVERS, says="served from it again"),
            "catches-everything": Bug(RESIL_CATCHES_EVERYTHING, says="Catch redis.RedisError only"),
            "mark-reads-unguarded": Bug(RESIL_MARK_READS_UNGUARDED, says="failed: it raised ConnectionError"),
        },
    }
    OTHER_DESIGNS = {
        READS: {"redis-lock": READS_REDIS_LOCK_DESIGN},
        INVAL: {"write-through": INVAL_WRITE_THROUGH_DESIGN},
        RESIL: {"heal-first": RESIL_HEAL_FIRST_DESIGN},
    }
    GRADE_TOGETHER = True
