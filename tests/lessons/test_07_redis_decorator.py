"""Lesson 07-redis-decorator: the hidden tests reject real decorator bugs and accept two other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader (the lesson has one exercise, so each bug needs its own run). Most buggy versions
are the solution with one edit (``variant``), so each differs from a correct decorator by exactly the bug
its name says. Some are caught by the visible checks, the others only by the hidden tests.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

EX = "redis-cache"

SOLUTION = solution_of("07")[EX]

_ENCODED = ('encoded = json.dumps([[name, tagged(value)] for name, value in bound.arguments.items()],\n'
            '                                     separators=(",", ":"))')
_HEAD = 'head = f"{prefix}:{func.__module__}.{func.__qualname__}:v{version}:"'
_DICT_TAG = ('            items = [[tagged(k), tagged(v)] for k, v in value.items()]\n'
             '            return ["dict", sorted(items, key=lambda item: json.dumps(item[0]))]')
_HIT = '            if raw is not None:  # a miss is a missing key, whatever the cached result is\n' \
       '                return json.loads(raw)["v"]'
_SET = "                client.set(key, payload, ex=ttl)"


# The tutorial's key: str() of each argument joined with ':' (f(1) == f("1"), f("a:b", "c") == f("a", "b:c")).
JOIN_KEYS = variant(SOLUTION, (_ENCODED, 'encoded = ":".join(str(v) for v in bound.arguments.values())'))

# `if cached:` on the decoded result: None, 0, [] and {} are recomputed on every call.
IF_CACHED_FALSY = variant(SOLUTION, (_HIT, '            cached = json.loads(raw)["v"] if raw is not None else None\n'
                                 '            if cached:\n'
                                 '                return cached'))

# No signature binding: f(1, 2), f(a=1, b=2) and f(b=2, a=1) are three entries, defaults ignored.
KWARGS_IN_CALL_ORDER = variant(SOLUTION,
    ("            bound = signature.bind(*args, **kwargs)\n            bound.apply_defaults()\n", ""),
    (_ENCODED, "encoded = json.dumps([list(args), list(kwargs.items())])"),
)

# The function's name without its module: users.get(42) and products.get(42) share a key under one prefix.
QUALNAME_WITHOUT_MODULE = variant(SOLUTION, (_HEAD, 'head = f"{prefix}:{func.__qualname__}:v{version}:"'))

# Plain json.dumps of the arguments (the lesson's first design): (1, 2) encodes as [1, 2] and {1: "x"} as
# {"1": "x"}, so those calls share a key.
JSON_MERGES_TUPLES_AND_KEYS = variant(SOLUTION,
    (_ENCODED, 'encoded = json.dumps(list(bound.arguments.items()), sort_keys=True, separators=(",", ":"))'))

# Tags tuples and lists but turns dict keys into strings: {1: "x"} still meets {"1": "x"}.
TAGS_TUPLES_ONLY = variant(SOLUTION,
    (_DICT_TAG, '            return {str(k): tagged(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}'))

# The ttl parameter is accepted and ignored: entries never expire.
TTL_IGNORED = variant(SOLUTION, (_SET, "                client.set(key, payload)"))

# SET then EXPIRE: a crash between the two leaves an immortal entry.
SET_THEN_EXPIRE = variant(SOLUTION, (_SET, "                client.set(key, payload)\n                client.expire(key, ttl)"))

# No fallback: a Redis outage becomes an outage of the function.
NO_FALLBACK = '''
def canonical(bound):
    return [(name, sorted(value.items()) if bound.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD
             else value) for name, value in bound.arguments.items()]

def redis_cache(client, *, prefix, ttl, version=1):
    def decorator(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = f"{prefix}:{func.__module__}.{func.__qualname__}:v{version}:" + repr(canonical(bound))
            raw = client.get(key)
            if raw is not None:
                return json.loads(raw)["v"]
            result = func(*args, **kwargs)
            client.set(key, json.dumps({"v": result}), ex=ttl)
            return result

        wrapper.redis_errors = 0
        return wrapper
    return decorator
'''

# A try/except Exception around everything: the function's own errors are counted and the function re-run.
RETRIES_FUNCTION_ERRORS = '''
def canonical(bound):
    return [(name, sorted(value.items()) if bound.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD
             else value) for name, value in bound.arguments.items()]

def redis_cache(client, *, prefix, ttl, version=1):
    def decorator(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                key = f"{prefix}:{func.__module__}.{func.__qualname__}:v{version}:" + repr(canonical(bound))
                raw = client.get(key)
                if raw is not None:
                    return json.loads(raw)["v"]
                result = func(*args, **kwargs)
                client.set(key, json.dumps({"v": result}), ex=ttl)
                return result
            except Exception:
                wrapper.redis_errors += 1
                return func(*args, **kwargs)

        wrapper.redis_errors = 0
        return wrapper
    return decorator
'''

# The other honest design: reject what JSON cannot keep apart (tuples, non-string dict keys) with TypeError,
# before anything runs; plain JSON arguments are encoded with json.dumps as before.
REJECTS_WHAT_JSON_MERGES = variant(SOLUTION,
    (_ENCODED, "for name, value in bound.arguments.items():\n"
               "                    star = signature.parameters[name].kind in (inspect.Parameter.VAR_POSITIONAL,\n"
               "                                                               inspect.Parameter.VAR_KEYWORD)\n"
               "                    reject_json_merges(value, star)\n"
               '                encoded = json.dumps(list(bound.arguments.items()), sort_keys=True, separators=(",", ":"))'),
    ("    def tagged(value):\n",
     "    def reject_json_merges(value, star=False):\n"
     "        if isinstance(value, tuple) and not star:  # *args arrive as a tuple: that one is always a tuple\n"
     "            raise TypeError(f'{value!r}: a tuple argument would share its key with the same list')\n"
     "        if isinstance(value, (list, tuple)):\n"
     "            for item in value:\n"
     "                reject_json_merges(item)\n"
     "        elif isinstance(value, dict):\n"
     "            for k, v in value.items():\n"
     "                if not isinstance(k, str):\n"
     "                    raise TypeError(f'dict key {k!r} is not a string: JSON would turn it into one')\n"
     "                reject_json_merges(v)\n\n"
     "    def tagged(value):\n"),
)

# The function's __name__ with its module: two methods named get of two classes in one module share a key.
NAME_INSTEAD_OF_QUALNAME = variant(SOLUTION, (_HEAD, 'head = f"{prefix}:{func.__module__}.{func.__name__}:v{version}:"'))

# Only the GET is guarded: when the SET after a miss fails, the caller gets the Redis error.
ONLY_GET_GUARDED = variant(SOLUTION, ("            try:\n                client.set(key, payload, ex=ttl)\n"
                            "            except redis.RedisError:\n                wrapper.redis_errors += 1\n",
                            "            client.set(key, payload, ex=ttl)\n"))

# One try around read, compute and write: when the SET fails, the function runs a second time.
ONE_TRY_RECOMPUTES = variant(SOLUTION,
    ("            try:\n                raw = client.get(key)\n            except redis.RedisError:\n"
     "                wrapper.redis_errors += 1\n                return func(*args, **kwargs)\n"
     "            if raw is not None:  # a miss is a missing key, whatever the cached result is\n"
     "                return json.loads(raw)[\"v\"]\n"
     "            result = func(*args, **kwargs)\n            payload = json.dumps({\"v\": result})\n"
     "            try:\n                client.set(key, payload, ex=ttl)\n            except redis.RedisError:\n"
     "                wrapper.redis_errors += 1\n            return result\n",
     "            try:\n                raw = client.get(key)\n                if raw is not None:\n"
     "                    return json.loads(raw)[\"v\"]\n                result = func(*args, **kwargs)\n"
     "                client.set(key, json.dumps({\"v\": result}), ex=ttl)\n                return result\n"
     "            except redis.RedisError:\n                wrapper.redis_errors += 1\n"
     "                return func(*args, **kwargs)\n"))

# A class-based design: repr of the canonical bound arguments hashed with SHA-256, no envelope (a miss is
# GET returning None), only connection-level errors caught.
CLASS_BASED = '''
import hashlib


class CachedFunction:
    def __init__(self, func, client, prefix, ttl, version):
        functools.update_wrapper(self, func)
        self._func, self._client, self._ttl = func, client, ttl
        self._sig = inspect.signature(func)
        self._head = f"{prefix}:{func.__module__}.{func.__qualname__}:v{version}"
        self.redis_errors = 0

    def _key(self, args, kwargs):
        bound = self._sig.bind(*args, **kwargs)
        bound.apply_defaults()
        canon = []
        for name, value in bound.arguments.items():
            if self._sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                value = sorted(value.items())
            canon.append((name, value))
        return f"{self._head}:{hashlib.sha256(repr(canon).encode()).hexdigest()}"

    def __call__(self, *args, **kwargs):
        key = self._key(args, kwargs)
        try:
            raw = self._client.get(key)
        except (redis.ConnectionError, redis.TimeoutError):
            self.redis_errors += 1
            return self._func(*args, **kwargs)
        if raw is not None:
            return json.loads(raw)
        result = self._func(*args, **kwargs)
        try:
            self._client.setex(key, self._ttl, json.dumps(result))
        except (redis.ConnectionError, redis.TimeoutError):
            self.redis_errors += 1
        return result


def redis_cache(client, *, prefix, ttl, version=1):
    def decorator(func):
        return CachedFunction(func, client, prefix, ttl, version)
    return decorator
'''


# Written after the fault-injection and qualified-name tests, without looking at them again: keys hash the
# pickled canonical call (protocol 4, so the type of every argument is kept), the module and qualname live in
# a readable part of the key, and each Redis command goes through one helper that returns a sentinel.
HASHED_PICKLE_WITH_GUARD = '''
import hashlib
import pickle

_FAILED = object()


def redis_cache(client, *, prefix, ttl, version=1):
    def decorator(func):
        signature = inspect.signature(func)
        where = f"{prefix}:{func.__module__}:{func.__qualname__}:v{version}"

        def guarded(wrapper, command, *args, **kwargs):
            try:
                return getattr(client, command)(*args, **kwargs)
            except redis.RedisError:
                wrapper.redis_errors += 1
                return _FAILED

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            canonical = []
            for name, value in bound.arguments.items():
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    value = sorted(value.items())
                canonical.append((name, value))
            key = f"{where}:{hashlib.sha256(pickle.dumps(canonical, protocol=4)).hexdigest()}"
            raw = guarded(wrapper, "get", key)
            if raw is _FAILED:
                return func(*args, **kwargs)
            if raw is not None:
                return json.loads(raw)[0]
            result = func(*args, **kwargs)
            guarded(wrapper, "set", key, json.dumps([result]), ex=ttl)
            return result

        wrapper.redis_errors = 0
        return wrapper
    return decorator
'''


class TestRedisDecorator(LessonContract):
    LESSON = "07"
    BUGS = {  # each with a piece of the message that shows the check meant for that bug caught it
        EX: {
            "qualname_without_module": Bug(QUALNAME_WITHOUT_MODULE, says="needs the function's __module__"),
            "json_merges_tuples_and_keys": Bug(JSON_MERGES_TUPLES_AND_KEYS, says='f([1, 2]) then f((1, 2))'),
            "tags_tuples_only": Bug(TAGS_TUPLES_ONLY, says="f({'1': 'x'}) then f({1: 'x'})"),
            "join_keys": Bug(JOIN_KEYS, says="the key lost the argument's type"),
            "if_cached_falsy": Bug(IF_CACHED_FALSY, says='a cached None was treated as a miss'),
            "kwargs_in_call_order": Bug(KWARGS_IN_CALL_ORDER, says='the same call spelled differently got another key'),
            "ttl_ignored": Bug(TTL_IGNORED, says='the entry never expires'),
            "set_then_expire": Bug(SET_THEN_EXPIRE, says='expected GET then one SET with its TTL'),
            "no_fallback": Bug(NO_FALLBACK, says='while Redis was down: it raised ConnectionError'),
            "retries_function_errors": Bug(RETRIES_FUNCTION_ERRORS, says='never retried, never cached'),
            "name_instead_of_qualname": Bug(NAME_INSTEAD_OF_QUALNAME, says="not only its __name__"),
            "only_get_guarded": Bug(ONLY_GET_GUARDED, says="command 2 of 2 (SET) failed: the call raised"),
            "one_try_recomputes": Bug(ONE_TRY_RECOMPUTES, says="the function ran 2 times"),
        },
    }
    OTHER_DESIGNS = {
        EX: {"rejects-what-json-merges": REJECTS_WHAT_JSON_MERGES, "class-based": CLASS_BASED,
              "hashed-pickle-with-guard": HASHED_PICKLE_WITH_GUARD},
    }
