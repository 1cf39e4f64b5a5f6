"""Lesson 02-lru-cache: the hidden tests reject real lru_cache bugs and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The three exercises are independent, so each run carries the k-th bug of every exercise.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import LessonContract

pytestmark = pytest.mark.slow


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


class TestLruCache(LessonContract):
    LESSON = "02"
    BUGS = {
        "lru-typed-kwargs": {
            "untyped-with-binding": UNTYPED_WITH_BINDING,
            "typed-without-binding": TYPED_WITHOUT_BINDING,
            "binding-without-defaults": BINDING_WITHOUT_DEFAULTS,
            "joined-string-key": JOINED_STRING_KEY,
            "maxsize-ignored": MAXSIZE_IGNORED,
        },
        "lru-product-lookup": {
            "shared-cached-list": SHARED_CACHED_LIST,
            "shallow-copy-shares-products": SHALLOW_COPY_SHARES_PRODUCTS,
            "keyed-by-list-identity": KEYED_BY_LIST_IDENTITY,
            "database-missing-from-key": DATABASE_MISSING_FROM_KEY,
            "decorated-with-list-argument": DECORATED_WITH_LIST_ARGUMENT,
        },
        "per-instance-cache": {
            "decorated-method": DECORATED_METHOD,
            "class-level-dict": CLASS_LEVEL_DICT,
            "unbounded-per-instance-dict": UNBOUNDED_PER_INSTANCE_DICT,
            "module-level-cache": MODULE_LEVEL_CACHE,
            "fifo-not-lru": FIFO_NOT_LRU,
        },
    }
    OTHER_DESIGNS = {
        "lru-typed-kwargs": {"ordered-dict": TYPED_CALL_CACHE_WITH_ORDERED_DICT},
        "lru-product-lookup": {"per-id-read-only": PRODUCTS_PER_ID_READ_ONLY},
        "per-instance-cache": {"repository-with-ordered-dict": REPOSITORY_WITH_ORDERED_DICT},
    }
    GRADE_TOGETHER = True
