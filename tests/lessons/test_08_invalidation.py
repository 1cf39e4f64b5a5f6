"""Lesson 08 (cache invalidation): buggy answers lose their exercise's points, other designs get full marks.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The exercises are independent, so each run carries the k-th bug of every exercise and checks that
exactly those fail, for the right reason, while an exercise without a k-th bug keeps its points.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract

pytestmark = pytest.mark.slow

# --------------------------------------------------------------------------- event-invalidation
# Building blocks of correct answers, recombined with one bug at a time.
_INIT = '''
class CacheAside:
    def __init__(self, client, prefix, ttl):
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
            raise ValueError(f"bad ttl {ttl!r}")
        self.client, self.prefix, self.ttl = client, prefix, ttl

    def invalidate(self, key):
        self.client.unlink(self.prefix + key)
'''
_GET_OR_SET_OK = '''
    def get_or_set(self, key, loader):
        raw = self.client.get(self.prefix + key)
        if raw is not None:
            return json.loads(raw)
        value = loader()
        self.client.set(self.prefix + key, json.dumps(value), ex=self.ttl)
        return value
'''
_EVENTS_OK = '''
def update_user(db, cache, user_id, **fields):
    changed = db.update("users", user_id, **fields)
    cache.invalidate(f"user:{user_id}")
    cache.invalidate(f"user:{user_id}:posts")
    return changed

def delete_user(db, cache, user_id):
    deleted = db.delete("users", user_id)
    cache.invalidate(f"user:{user_id}")
    cache.invalidate(f"user:{user_id}:posts")
    return deleted
'''

EVENT_BUGS = {
    # The decoded value is tested for truth: None, 0, "" and [] are reloaded on every read.
    "falsy-values-are-misses": Bug(_INIT + '''
    def get_or_set(self, key, loader):
        raw = self.client.get(self.prefix + key)
        value = json.loads(raw) if raw is not None else None
        if value:
            return value
        value = loader()
        self.client.set(self.prefix + key, json.dumps(value), ex=self.ttl)
        return value
''' + _EVENTS_OK, says="the loader ran again"),
    # SET then EXPIRE: a crash in between leaves a key that never expires.
    "set-then-expire": Bug(_INIT + '''
    def get_or_set(self, key, loader):
        raw = self.client.get(self.prefix + key)
        if raw is not None:
            return json.loads(raw)
        value = loader()
        self.client.set(self.prefix + key, json.dumps(value))
        self.client.expire(self.prefix + key, self.ttl)
        return value
''' + _EVENTS_OK, says="separate commands"),
    # The tutorial's `ttl or default` habit: the constructor's TTL is accepted and ignored.
    "ignores-ttl": Bug(_INIT + '''
    def get_or_set(self, key, loader):
        raw = self.client.get(self.prefix + key)
        if raw is not None:
            return json.loads(raw)
        value = loader()
        self.client.setex(self.prefix + key, 3600, json.dumps(value))
        return value
''' + _EVENTS_OK, says="r.ttl("),
    # Only user:{id} is invalidated: the posts page keeps showing the old author name.
    "forgets-related-posts-key": Bug(_INIT + _GET_OR_SET_OK + '''
def update_user(db, cache, user_id, **fields):
    changed = db.update("users", user_id, **fields)
    cache.invalidate(f"user:{user_id}")
    return changed

def delete_user(db, cache, user_id):
    deleted = db.delete("users", user_id)
    cache.invalidate(f"user:{user_id}")
    return deleted
''', says="user:5:posts"),
    # Invalidate, then write: a read in between caches the old row for a whole TTL.
    "invalidates-before-writing": Bug(_INIT + _GET_OR_SET_OK + '''
def update_user(db, cache, user_id, **fields):
    cache.invalidate(f"user:{user_id}")
    cache.invalidate(f"user:{user_id}:posts")
    return db.update("users", user_id, **fields)

def delete_user(db, cache, user_id):
    cache.invalidate(f"user:{user_id}")
    cache.invalidate(f"user:{user_id}:posts")
    return db.delete("users", user_id)
''', says="before writing"),
}

# A different correct design: a JSON envelope, SETEX, an atomic MULTI for SET + EXPIRE on the second
# path, DEL instead of UNLINK, and a "double delete" (before and after the write) for events.
EVENT_ALTERNATIVE = '''
_MISSING = object()

class CacheAside:
    def __init__(self, client, prefix, ttl):
        if type(ttl) is not int or ttl <= 0:
            raise ValueError("ttl must be a positive int")
        self._r, self._prefix, self._ttl = client, prefix, ttl

    def _lookup(self, key):
        raw = self._r.get(self._prefix + key)
        return _MISSING if raw is None else json.loads(raw)["v"]

    def get_or_set(self, key, loader):
        found = self._lookup(key)
        if found is not _MISSING:
            return found
        value = loader()
        payload = json.dumps({"v": value})
        if isinstance(value, dict):
            with self._r.pipeline(transaction=True) as pipe:  # MULTI/EXEC: atomic
                pipe.set(self._prefix + key, payload)
                pipe.expire(self._prefix + key, self._ttl)
                pipe.execute()
        else:
            self._r.setex(self._prefix + key, self._ttl, payload)
        return value

    def invalidate(self, key):
        self._r.delete(self._prefix + key)


def _views_of(user_id):
    return [f"user:{user_id}", f"user:{user_id}:posts"]

def _write_and_invalidate(cache, user_id, write):
    for key in _views_of(user_id):
        cache.invalidate(key)
    result = write()
    for key in _views_of(user_id):
        cache.invalidate(key)
    return result

def update_user(db, cache, user_id, **fields):
    return _write_and_invalidate(cache, user_id, lambda: db.update("users", user_id, **fields))

def delete_user(db, cache, user_id):
    return _write_and_invalidate(cache, user_id, lambda: db.delete("users", user_id))
'''

# --------------------------------------------------------------------------- jittered-ttl
JITTER_BUGS = {
    # A fresh Random seeded inside the function: the same "jitter" for every key.
    "constant-jitter": Bug('''
def ttl_with_jitter(base, jitter_fraction, rng):
    if base < 1 or not 0 <= jitter_fraction < 1:
        raise ValueError("bad arguments")
    spread = base * jitter_fraction
    return max(1, round(random.Random(base).uniform(base - spread, base + spread)))
''', says="constant"),
    # Gaussian jitter: unbounded, about a third of the TTLs fall outside base +- f.
    "gaussian-jitter-out-of-bounds": Bug('''
def ttl_with_jitter(base, jitter_fraction, rng):
    if base < 1 or not 0 <= jitter_fraction < 1:
        raise ValueError("bad arguments")
    return max(1, round(rng.gauss(base, base * jitter_fraction)))
''', says="270..330"),
    # No lower clamp: a small base with a large fraction gives ex=0, which Redis refuses.
    "can-reach-zero": Bug('''
def ttl_with_jitter(base, jitter_fraction, rng):
    if base < 1 or not 0 <= jitter_fraction < 1:
        raise ValueError("bad arguments")
    spread = base * jitter_fraction
    return round(rng.uniform(base - spread, base + spread))
''', says="ex=0"),
    # Upward-only jitter: never below the base, not the uniform window that was asked for.
    "upward-only-jitter": Bug('''
def ttl_with_jitter(base, jitter_fraction, rng):
    if base < 1 or not 0 <= jitter_fraction < 1:
        raise ValueError("bad arguments")
    return round(base + rng.uniform(0, base * jitter_fraction))
''', says="below"),
    # The global random module instead of rng: seeded runs do not repeat.
    "ignores-rng": Bug('''
def ttl_with_jitter(base, jitter_fraction, rng):
    if base < 1 or not 0 <= jitter_fraction < 1:
        raise ValueError("bad arguments")
    spread = base * jitter_fraction
    return max(1, round(random.uniform(base - spread, base + spread)))
''', says="global `random`"),
}

JITTER_ALTERNATIVE = '''
def ttl_with_jitter(base, jitter_fraction, rng):
    if not (isinstance(base, int) and base >= 1):
        raise ValueError("base must be an int >= 1")
    if not (0.0 <= jitter_fraction < 1.0):
        raise ValueError("jitter_fraction must be in [0, 1)")
    low = max(1, math.ceil(base * (1 - jitter_fraction)))
    high = max(low, math.floor(base * (1 + jitter_fraction)))
    return rng.randint(low, high)
'''

# --------------------------------------------------------------------------- pattern-invalidation
PATTERN_BUGS = {
    # KEYS walks the whole keyspace in one blocking command.
    "uses-keys": Bug('''
def invalidate_pattern(client, pattern, batch_size=500):
    keys = client.keys(pattern)
    deleted = 0
    for i in range(0, len(keys), batch_size):
        deleted += client.unlink(*keys[i:i + batch_size])
    return deleted
''', says="KEYS"),
    # Deletes each key as the scan yields it: one round trip per key.
    "one-unlink-per-key-while-scanning": Bug('''
def invalidate_pattern(client, pattern, batch_size=500):
    deleted = 0
    for key in client.scan_iter(match=pattern, count=batch_size):
        deleted += client.unlink(key)
    return deleted
''', says="round trips"),
    # Collects correctly, then sends one giant UNLINK (and an empty one when nothing matches).
    "one-giant-unlink": Bug('''
def invalidate_pattern(client, pattern, batch_size=500):
    keys = list(client.scan_iter(match=pattern, count=batch_size))
    return client.unlink(*keys) if keys else 0
''', says="batch_size"),
    # Batches, but always sends at least one UNLINK: with no match it is `UNLINK` with no key.
    "empty-unlink-on-no-match": Bug('''
def invalidate_pattern(client, pattern, batch_size=500):
    keys = list(client.scan_iter(match=pattern, count=batch_size))
    deleted = 0
    for i in range(0, max(len(keys), 1), batch_size):
        deleted += client.unlink(*keys[i:i + batch_size])
    return deleted
''', says="wrong number of arguments"),
    # Ignores batch_size and uses its own batches of 1,000.
    "ignores-batch-size": Bug('''
def invalidate_pattern(client, pattern, batch_size=500):
    keys = list(client.scan_iter(match=pattern, count=1000))
    deleted = 0
    for i in range(0, len(keys), 1000):
        deleted += client.unlink(*keys[i:i + 1000])
    return deleted
''', says="batch_size"),
}

# A different correct design: the SCAN cursor by hand, deleting batch by batch during the scan
# (allowed by SCAN's contract) with one non-transactional pipeline of single-key DELs per batch.
PATTERN_ALTERNATIVE = '''
def invalidate_pattern(client, pattern, batch_size=500):
    def flush(batch):
        if not batch:
            return 0
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.delete(key)
        return sum(pipe.execute())

    deleted, pending, seen, cursor = 0, [], set(), 0
    while True:
        cursor, page = client.scan(cursor, match=pattern, count=200)
        for key in page:
            if key not in seen:
                seen.add(key)
                pending.append(key)
        while len(pending) >= batch_size:
            deleted += flush(pending[:batch_size])
            pending = pending[batch_size:]
        if cursor == 0:
            break
    return deleted + flush(pending)
'''

# --------------------------------------------------------------------------- versioned-keys
_VERSIONED_HEAD = '''
class VersionedCache:
    def __init__(self, client, prefix, ttl):
        self.client, self.prefix, self.ttl = client, prefix, ttl

    def _counter(self, namespace):
        return f"{self.prefix}{namespace}:version"

    def version(self, namespace):
        raw = self.client.get(self._counter(namespace))
        return int(raw) if raw is not None else 0
'''
_BUMP_OK = '''
    def bump(self, namespace):
        return int(self.client.incr(self._counter(namespace)))
'''
_VERSIONED_GET_OK = '''
    def get_or_set(self, namespace, key, loader):
        full = f"{self.prefix}{namespace}:v{self.version(namespace)}:{key}"
        raw = self.client.get(full)
        if raw is not None:
            return json.loads(raw)
        value = loader()
        self.client.set(full, json.dumps(value), ex=self.ttl)
        return value
'''

VERSION_BUGS = {
    # The tutorial's read-then-write bump: concurrent bumps are lost.
    "get-then-set-bump": Bug(_VERSIONED_HEAD + '''
    def bump(self, namespace):
        new = self.version(namespace) + 1
        self.client.set(self._counter(namespace), new)
        return new
''' + _VERSIONED_GET_OK, says="lost"),
    # INCR, then a second GET: the counter is right but bumps return each other's numbers.
    "incr-then-reread": Bug(_VERSIONED_HEAD + '''
    def bump(self, namespace):
        self.client.incr(self._counter(namespace))
        return self.version(namespace)
''' + _VERSIONED_GET_OK, says="duplicate"),
    # Versioned values without a TTL: every bump leaks a full copy of the namespace.
    "versioned-keys-without-ttl": Bug(_VERSIONED_HEAD + _BUMP_OK + '''
    def get_or_set(self, namespace, key, loader):
        full = f"{self.prefix}{namespace}:v{self.version(namespace)}:{key}"
        raw = self.client.get(full)
        if raw is not None:
            return json.loads(raw)
        value = loader()
        self.client.set(full, json.dumps(value))
        return value
''', says="r.ttl("),
    # The version is remembered in the object: bumps by another process are never seen.
    "version-cached-in-memory": Bug('''
class VersionedCache:
    def __init__(self, client, prefix, ttl):
        self.client, self.prefix, self.ttl = client, prefix, ttl
        self._known = {}

    def _counter(self, namespace):
        return f"{self.prefix}{namespace}:version"

    def version(self, namespace):
        if namespace not in self._known:
            raw = self.client.get(self._counter(namespace))
            self._known[namespace] = int(raw) if raw is not None else 0
        return self._known[namespace]

    def bump(self, namespace):
        self._known[namespace] = int(self.client.incr(self._counter(namespace)))
        return self._known[namespace]
''' + _VERSIONED_GET_OK, says=("another VersionedCache", "lost")),
    # `if cached:` on the decoded value: falsy values are reloaded every time.
    "falsy-values-are-misses": Bug(_VERSIONED_HEAD + _BUMP_OK + '''
    def get_or_set(self, namespace, key, loader):
        full = f"{self.prefix}{namespace}:v{self.version(namespace)}:{key}"
        raw = self.client.get(full)
        cached = json.loads(raw) if raw else None
        if cached:
            return cached
        value = loader()
        self.client.set(full, json.dumps(value), ex=self.ttl)
        return value
''', says="falsy"),
}

# A different correct design: all counters in one hash bumped with HINCRBY, values in a JSON envelope
# stored with SETEX, and an optimistic WATCH/MULTI retry loop as the bump of a second namespace kind.
VERSION_ALTERNATIVE = '''
import redis as _redis_mod

class VersionedCache:
    def __init__(self, client, prefix, ttl):
        if type(ttl) is not int or ttl < 1:
            raise ValueError("ttl must be an int >= 1")
        self._c, self._p, self._ttl = client, prefix, ttl

    def version(self, namespace):
        raw = self._c.hget(self._p + "versions", namespace)
        return int(raw or 0)

    def bump(self, namespace):
        if namespace.startswith("stress1"):
            return self._bump_optimistic(namespace)
        return self._c.hincrby(self._p + "versions", namespace, 1)

    def _bump_optimistic(self, namespace):
        with self._c.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._p + "versions")
                    new = int(pipe.hget(self._p + "versions", namespace) or 0) + 1
                    pipe.multi()
                    pipe.hset(self._p + "versions", namespace, new)
                    pipe.execute()
                    return new
                except _redis_mod.WatchError:
                    continue

    def get_or_set(self, namespace, key, loader):
        full = "%s%s:v%d:%s" % (self._p, namespace, self.version(namespace), key)
        raw = self._c.get(full)
        if raw is not None:
            return json.loads(raw)["value"]
        value = loader()
        self._c.setex(full, self._ttl, json.dumps({"value": value}))
        return value
'''


class TestInvalidation(LessonContract):
    LESSON = "08-invalidation"
    BUGS = {"event-invalidation": EVENT_BUGS, "jittered-ttl": JITTER_BUGS, "pattern-invalidation": PATTERN_BUGS,
            "versioned-keys": VERSION_BUGS}
    OTHER_DESIGNS = {
        "event-invalidation": {"event-alternative": EVENT_ALTERNATIVE},
        "jittered-ttl": {"jitter-alternative": JITTER_ALTERNATIVE},
        "pattern-invalidation": {"pattern-alternative": PATTERN_ALTERNATIVE},
        "versioned-keys": {"version-alternative": VERSION_ALTERNATIVE},
    }
    GRADE_TOGETHER = True
