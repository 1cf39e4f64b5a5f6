"""What the learner's code may do with each object the tests pass in: an allowlist, by type.

The judge's objects cross the channel by reference (``grader.sandbox.rpc``); every
attribute the learner's code reads, every call and every operator it applies to
one of them is checked against :func:`api_of` first, and anything not listed
is refused with a ``PermissionError`` that names it. The rules, in order:

1. a class that declares ``__learner_api__`` gets exactly those names
   (``SlowDatabase`` lets your code query, not reset its counters; a
   ``FakeClock`` lets it read the time, not move it);
2. a library type the grader knows (:data:`LIBRARY_APIS`: redis-py's client,
   pipeline, lock and script) gets its data commands, never what opens a
   connection or a file or administers the server (``from_url``,
   ``connection_pool``, ``config_set``, ``execute_command("CONFIG", ...)``);
3. what the tests and course cells defined themselves (module ``__main__`` in
   the judge), plain data (``dict``, ``list``, iterators, cachetools' caches...)
   and ``threading``'s primitives get their public API;
4. a function is callable when it is the tests' own, a bound method of an
   allowed name, or a harmless built-in; a class is callable when the tests
   defined it or it is a plain built-in type;
5. everything else: nothing.

>>> import threading
>>> "set" in api_of(threading.Event())
True
>>> import redis
>>> client = redis.Redis()
>>> "get" in api_of(client), "from_url" in api_of(client), "config_set" in api_of(client)
(True, False, False)
>>> api_of(open)
frozenset()
"""

from __future__ import annotations

import collections
import functools
import threading
import types
from typing import Any, Callable

from .protocol import COURSE_FILENAME, TESTS_FILENAME

__all__ = ["api_of", "LIBRARY_APIS", "DATA_COMMANDS", "guard_execute_command"]

DUNDERS = frozenset({"__call__", "__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__",
                     "__iter__", "__next__", "__enter__", "__exit__", "__bool__"})

# Redis commands the learner's code may send through the tests' own clients (``execute_command``).
DATA_COMMANDS = frozenset("""
GET SET SETEX PSETEX SETNX GETSET GETDEL GETEX MGET MSET MSETNX DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT
PEXPIREAT EXPIRETIME PEXPIRETIME TTL PTTL PERSIST TYPE RENAME RENAMENX COPY INCR INCRBY INCRBYFLOAT DECR DECRBY
APPEND STRLEN GETRANGE SETRANGE KEYS SCAN SSCAN HSCAN ZSCAN RANDOMKEY TOUCH DUMP OBJECT MEMORY
HGET HSET HSETNX HMGET HMSET HGETALL HDEL HEXISTS HINCRBY HINCRBYFLOAT HKEYS HVALS HLEN HSTRLEN HEXPIRE HTTL
LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LRANGE LLEN LREM LTRIM LINDEX LSET LINSERT LMOVE LPOS RPOPLPUSH BLPOP BRPOP
SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE SMOVE
ZADD ZREM ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZSCORE ZMSCORE ZINCRBY ZCARD ZRANK ZREVRANK ZCOUNT
ZPOPMIN ZPOPMAX ZREMRANGEBYSCORE ZREMRANGEBYRANK ZRANGESTORE
XADD XRANGE XREVRANGE XLEN XREAD XDEL XTRIM PFADD PFCOUNT PFMERGE SETBIT GETBIT BITCOUNT BITPOS BITFIELD
GEOADD GEODIST GEOPOS GEOSEARCH
EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT FCALL FCALL_RO FUNCTION
PING ECHO TIME DBSIZE FLUSHDB MULTI EXEC DISCARD WATCH UNWATCH
""".split())
# Subcommands of the container commands above that only read or load scripts.
_SUBCOMMANDS = {"SCRIPT": {"LOAD", "EXISTS"}, "FUNCTION": {"LOAD", "LIST", "DELETE"},
                "OBJECT": {"ENCODING", "FREQ", "IDLETIME", "REFCOUNT"}, "MEMORY": {"USAGE"}}

_SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "ascii", "bin", "callable", "chr", "divmod", "format", "hash", "hex", "id", "isinstance",
    "issubclass", "iter", "len", "max", "min", "next", "oct", "ord", "pow", "print", "repr", "round", "sorted",
    "sum"})
_PLAIN_TYPES = (dict, list, set, frozenset, tuple, str, bytes, bytearray, int, float, complex, bool, range, slice,
                collections.deque, collections.OrderedDict, collections.defaultdict, collections.Counter,
                types.SimpleNamespace, types.MappingProxyType, memoryview)
_THREADING = (type(threading.Lock()), type(threading.RLock()), threading.Event, threading.Condition,
              threading.Semaphore, threading.BoundedSemaphore, threading.Barrier)
_NO_CALL_TYPES = {type, object, memoryview}
JUDGE_FILENAMES = (TESTS_FILENAME, COURSE_FILENAME)  # what the judge compiles test and course cells as
# Libraries whose objects are plain data or computation: their public API opens nothing (cachetools' caches are
# mappings; collections.abc gives them get/pop/setdefault/update; a seeded random.Random draws numbers).
_DATA_MODULES = frozenset({"cachetools", "collections", "random"})


def _public(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")} | (DUNDERS & set(vars(cls)))


def _redis_apis() -> dict[type, frozenset[str]]:
    try:
        import redis
        import redis.commands.core as core
        from redis.client import Pipeline
        from redis.lock import Lock
    except ImportError:  # the course always has redis; a judge without it has no client to guard
        return {}
    mixins = (core.BasicKeyCommands, core.HyperlogCommands, core.HashCommands, core.GeoCommands,
              core.ListCommands, core.ScanCommands, core.SetCommands, core.StreamCommands, core.SortedSetCommands)
    names: set[str] = set()
    for mixin in mixins:
        names |= {n for n, v in vars(mixin).items() if callable(v) and not n.startswith("_")}
    names |= {"__getitem__", "__setitem__", "__delitem__", "__contains__"}
    names |= {"eval", "evalsha", "eval_ro", "evalsha_ro", "script_load", "script_exists", "register_script",
              "fcall", "fcall_ro", "function_load", "function_list", "function_delete",
              "ping", "echo", "time", "dbsize", "flushdb", "pipeline", "transaction", "lock", "execute_command",
              "__enter__", "__exit__"}
    client = frozenset(names)
    pipeline = client | {"execute", "multi", "watch", "unwatch", "discard", "reset", "__len__", "__bool__"}
    lock = frozenset({"acquire", "release", "extend", "reacquire", "locked", "owned", "name", "timeout",
                      "__enter__", "__exit__"})
    script = frozenset({"__call__", "sha"})
    return {redis.Redis: client, Pipeline: pipeline, Lock: lock, core.Script: script}


LIBRARY_APIS: dict[type, frozenset[str]] = _redis_apis()


def _declared(cls: type) -> frozenset[str] | None:
    api = getattr(cls, "__learner_api__", None)
    return frozenset(api) if api is not None else None


def _callable_function(fn: Any, trusted: tuple[str, ...]) -> bool:
    """A function the learner's code may call: the tests' own, an allowed bound method, a harmless built-in."""
    while hasattr(fn, "__wrapped__") and not isinstance(fn, types.MethodType):  # lru_cache, functools.wraps
        fn = fn.__wrapped__
    if isinstance(fn, functools.partial):
        return _callable_function(fn.func, trusted)
    owner = getattr(fn, "__self__", None)
    if isinstance(fn, (types.MethodType, types.BuiltinMethodType)) and owner is not None \
            and not isinstance(owner, types.ModuleType):
        return getattr(fn, "__name__", "") in api_of(owner, trusted)
    if isinstance(fn, types.BuiltinFunctionType):
        return getattr(fn, "__module__", None) == "builtins" and fn.__name__ in _SAFE_BUILTINS
    # the tests' own functions (compiled by the judge from test or course cells, whatever ``__module__`` they
    # claim: lesson 07's tests name theirs after two modules), and this module's guards
    return isinstance(fn, types.FunctionType) and (fn.__code__.co_filename in JUDGE_FILENAMES
                                                   or fn.__module__ in (*trusted, __name__))


def api_of(obj: Any, trusted: tuple[str, ...] = ("__main__",)) -> frozenset[str]:
    """The names (attributes, methods, and the dunders of operators and calls) ``obj`` offers the learner.

    ``trusted`` names the modules whose code is the tests' own (in the judge: ``__main__``).
    """
    if isinstance(obj, type):
        callable_class = obj.__module__ in trusted or (obj.__module__ == "builtins"
                                                          and obj not in _NO_CALL_TYPES)
        return frozenset({"__call__"}) if callable_class else frozenset()
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial,
                        types.BuiltinMethodType)) or (callable(obj) and hasattr(obj, "__wrapped__")):
        return frozenset({"__call__"}) if _callable_function(obj, trusted) else frozenset()
    cls = type(obj)
    declared = _declared(cls)
    if declared is not None:
        return declared
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass in LIBRARY_APIS:
            names |= LIBRARY_APIS[klass]
        elif klass.__module__ in trusted or klass in _PLAIN_TYPES or klass in _THREADING \
                or klass.__module__.partition(".")[0] in _DATA_MODULES \
                or (klass.__module__ == "builtins" and klass is not object):
            names |= _public(klass)
        elif klass is not object and klass.__module__ not in ("typing", "abc"):
            break  # a library base the grader does not know: nothing it defines, nor above it
    return frozenset(names)


def guard_execute_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``client.execute_command`` as the learner's code gets it: data commands only.

    >>> send = guard_execute_command(lambda *args, **kw: args)
    >>> send("GET", "k")
    ('GET', 'k')
    >>> send("CONFIG", "SET", "dir", "/")
    Traceback (most recent call last):
    ...
    PermissionError: the tests' Redis client does not send CONFIG SET for your code (data commands only)
    """
    def execute_command(*args: Any, **options: Any) -> Any:
        name = str(args[0]).upper() if args else ""
        sub = str(args[1]).upper() if len(args) > 1 and str(args[1]).isalpha() else ""
        if name not in DATA_COMMANDS or (name in _SUBCOMMANDS and sub not in _SUBCOMMANDS[name]):
            shown = f"{name} {sub}".strip() or "(nothing)"
            raise PermissionError(f"the tests' Redis client does not send {shown} for your code (data "
                                  "commands only)")
        return fn(*args, **options)

    return execute_command
