"""Lesson 02-lru-cache: the hidden tests reject real lru_cache bugs and accept other correct designs.

Each grading run replaces answers of the solution with the code below and grades it through the real
grader. The three exercises are independent, so most runs carry one bug for each exercise (all of them
must lose their points); the runs with a single bug show that the other exercises keep theirs.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

SLUG = "02-lru-cache"
EXERCISES = ("lru-typed-kwargs", "lru-product-lookup", "per-instance-cache")


def scores(result) -> dict[str, str]:
    return {e.id: e.status for e in result.exercises}


# -- lru-typed-kwargs ----------------------------------------------------------------------------

UNTYPED_WITH_BINDING = '''
import inspect

def typed_call_cache(func, maxsize=1024):
    signature = inspect.signature(func)

    @functools.lru_cache(maxsize=maxsize)  # not typed: 1, 1.0 and True are one entry
    def entry(*args):
        return func(*args)

    def cached(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return entry(*bound.args)

    cached.cache_clear = entry.cache_clear
    return cached
'''

TYPED_WITHOUT_BINDING = '''
def typed_call_cache(func, maxsize=1024):
    # typed, but f(a, b), f(a, value=b) and f(value=b, name=a) are still separate entries
    return functools.lru_cache(maxsize=maxsize, typed=True)(func)
'''

BINDING_WITHOUT_DEFAULTS = '''
import inspect

def typed_call_cache(func, maxsize=1024):
    signature = inspect.signature(func)

    @functools.lru_cache(maxsize=maxsize, typed=True)
    def entry(*args):
        return func(*args)

    def cached(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)  # no apply_defaults(): f(a, b) and f(a, b, "json") differ
        return entry(*bound.args)

    cached.cache_clear = entry.cache_clear
    return cached
'''

JOINED_STRING_KEY = '''
import inspect

def typed_call_cache(func, maxsize=1024):
    signature = inspect.signature(func)
    store = {}

    def cached(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = ":".join(map(str, bound.args))  # 0 and "0" collide, so do ("a:b", "c") and ("a", "b:c")
        if key not in store:
            store[key] = func(*bound.args)
        return store[key]

    cached.cache_clear = store.clear
    return cached
'''

MAXSIZE_IGNORED = '''
import inspect

def typed_call_cache(func, maxsize=1024):
    signature = inspect.signature(func)

    @functools.lru_cache(maxsize=None, typed=True)  # grows forever whatever maxsize says
    def entry(*args):
        return func(*args)

    def cached(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return entry(*bound.args)

    cached.cache_clear = entry.cache_clear
    return cached
'''

# -- lru-product-lookup --------------------------------------------------------------------------

SHARED_CACHED_LIST = '''
@functools.lru_cache(maxsize=256)
def _load_products(db, product_ids):
    return [db.get_product(i) for i in product_ids]  # the cached list itself goes to every caller

def get_products(db, product_ids):
    return _load_products(db, tuple(product_ids))
'''

SHALLOW_COPY_SHARES_PRODUCTS = '''
@functools.lru_cache(maxsize=256)
def _load_products(db, product_ids):
    return tuple(db.get_product(i) for i in product_ids)

def get_products(db, product_ids):
    return list(_load_products(db, tuple(product_ids)))  # new list, same (mutable) product dicts
'''

KEYED_BY_LIST_IDENTITY = '''
_by_list = {}

def get_products(db, product_ids):
    key = (id(db), id(product_ids))  # the same list with new content is "the same" call
    if key not in _by_list:
        _by_list[key] = tuple(db.get_product(i) for i in product_ids)
    return [dict(p) if p is not None else None for p in _by_list[key]]
'''

DATABASE_MISSING_FROM_KEY = '''
_by_ids = {}

def get_products(db, product_ids):
    key = tuple(product_ids)  # two databases share one entry
    if key not in _by_ids:
        _by_ids[key] = tuple(db.get_product(i) for i in product_ids)
    return [dict(p) if p is not None else None for p in _by_ids[key]]
'''

DECORATED_WITH_LIST_ARGUMENT = '''
@functools.lru_cache(maxsize=256)
def _cached(db, product_ids):
    return tuple(db.get_product(i) for i in product_ids)

def get_products(db, product_ids):
    rows = _cached(db, product_ids)  # TypeError: unhashable type: 'list'
    return [dict(p) if p is not None else None for p in rows]
'''

# -- per-instance-cache --------------------------------------------------------------------------

DECORATED_METHOD = '''
class UserRepository:
    def __init__(self, db, maxsize=128):
        self.db = db

    @functools.lru_cache(maxsize=128)  # one cache for the class; it keeps every self alive
    def get_user(self, user_id):
        return self.db.get_user(user_id)

    def cache_clear(self):
        self.get_user.cache_clear()
'''

CLASS_LEVEL_DICT = '''
class UserRepository:
    _cache = {}  # a class attribute: shared by every repository

    def __init__(self, db, maxsize=128):
        self.db = db

    def get_user(self, user_id):
        if user_id not in self._cache:
            self._cache[user_id] = self.db.get_user(user_id)
        return self._cache[user_id]

    def cache_clear(self):
        self._cache.clear()
'''

UNBOUNDED_PER_INSTANCE_DICT = '''
class UserRepository:
    def __init__(self, db, maxsize=128):
        self.db = db
        self._cache = {}  # maxsize is ignored: it grows forever

    def get_user(self, user_id):
        if user_id not in self._cache:
            self._cache[user_id] = self.db.get_user(user_id)
        return self._cache[user_id]

    def cache_clear(self):
        self._cache.clear()
'''

MODULE_LEVEL_CACHE = '''
@functools.lru_cache(maxsize=None)
def _load_user(db, user_id):
    return db.get_user(user_id)

class UserRepository:
    def __init__(self, db, maxsize=128):
        self.db = db

    def get_user(self, user_id):
        return _load_user(self.db, user_id)

    def cache_clear(self):
        _load_user.cache_clear()  # clears every repository's entries
'''

FIFO_NOT_LRU = '''
from collections import OrderedDict

class UserRepository:
    def __init__(self, db, maxsize=128):
        self.db = db
        self.maxsize = maxsize
        self._cache = OrderedDict()

    def get_user(self, user_id):
        if user_id in self._cache:
            return self._cache[user_id]  # a hit does not refresh the entry: first in, first out
        user = self.db.get_user(user_id)
        self._cache[user_id] = user
        if len(self._cache) > self.maxsize:
            self._cache.popitem(last=False)
        return user

    def cache_clear(self):
        self._cache.clear()
'''

# -- correct implementations of other designs ------------------------------------------------------

TYPED_CALL_CACHE_WITH_ORDERED_DICT = '''
import inspect
from collections import OrderedDict

def typed_call_cache(func, maxsize=1024):
    sig = inspect.signature(func)
    store = OrderedDict()

    def cached(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        key = tuple((type(v), v) for v in bound.arguments.values())
        if key in store:
            store.move_to_end(key)
            return store[key]
        result = func(*bound.args, **bound.kwargs)
        store[key] = result
        if maxsize is not None and len(store) > maxsize:
            store.popitem(last=False)
        return result

    cached.cache_clear = store.clear
    return cached
'''

PRODUCTS_PER_ID_READ_ONLY = '''
import types

@functools.lru_cache(maxsize=None)
def _product(db, product_id):
    row = db.get_product(product_id)
    return None if row is None else types.MappingProxyType(row)

def get_products(db, product_ids):
    return [_product(db, i) for i in product_ids]
'''

REPOSITORY_WITH_ORDERED_DICT = '''
from collections import OrderedDict

class UserRepository:
    def __init__(self, db, maxsize=128):
        self._db = db
        self._maxsize = maxsize
        self._users = OrderedDict()

    def get_user(self, user_id):
        try:
            self._users.move_to_end(user_id)
            return self._users[user_id]
        except KeyError:
            user = self._db.get_user(user_id)
            self._users[user_id] = user
            while len(self._users) > self._maxsize:
                self._users.popitem(last=False)
            return user

    def cache_clear(self):
        self._users.clear()
'''

RUNS = [
    pytest.param(UNTYPED_WITH_BINDING, SHARED_CACHED_LIST, DECORATED_METHOD,
                 id=f"{SLUG}:untyped-with-binding+shared-cached-list+decorated-method"),
    pytest.param(TYPED_WITHOUT_BINDING, SHALLOW_COPY_SHARES_PRODUCTS, CLASS_LEVEL_DICT,
                 id=f"{SLUG}:typed-without-binding+shallow-copy-shares-products+class-level-dict"),
    pytest.param(BINDING_WITHOUT_DEFAULTS, KEYED_BY_LIST_IDENTITY, UNBOUNDED_PER_INSTANCE_DICT,
                 id=f"{SLUG}:binding-without-defaults+keyed-by-list-identity+unbounded-per-instance-dict"),
    pytest.param(JOINED_STRING_KEY, DATABASE_MISSING_FROM_KEY, MODULE_LEVEL_CACHE,
                 id=f"{SLUG}:joined-string-key+database-missing-from-key+module-level-cache"),
    pytest.param(MAXSIZE_IGNORED, None, None, id=f"{SLUG}:maxsize-ignored"),
    pytest.param(None, DECORATED_WITH_LIST_ARGUMENT, None, id=f"{SLUG}:decorated-with-list-argument"),
    pytest.param(None, None, FIFO_NOT_LRU, id=f"{SLUG}:fifo-not-lru"),
]


@pytest.mark.parametrize("typed_bug, lookup_bug, instance_bug", RUNS)
def test_buggy_implementations_lose_their_points(grade_lesson, typed_bug, lookup_bug, instance_bug):
    bugs = dict(zip(EXERCISES, (typed_bug, lookup_bug, instance_bug)))
    result = grade_lesson(SLUG, {k: v for k, v in bugs.items() if v})
    assert result.status == "graded", result.detail
    expected = {k: "failed" if v else "passed" for k, v in bugs.items()}
    assert scores(result) == expected, [(e.id, e.status, e.message) for e in result.exercises]


@pytest.mark.parametrize("slug", [pytest.param(SLUG, id=SLUG)])
def test_other_correct_designs_get_full_marks(grade_lesson, slug):
    result = grade_lesson(slug, {"lru-typed-kwargs": TYPED_CALL_CACHE_WITH_ORDERED_DICT,
                                 "lru-product-lookup": PRODUCTS_PER_ID_READ_ONLY,
                                 "per-instance-cache": REPOSITORY_WITH_ORDERED_DICT})
    assert result.status == "graded", result.detail
    assert result.score == result.max_score, [(e.id, e.status, e.message) for e in result.exercises]
