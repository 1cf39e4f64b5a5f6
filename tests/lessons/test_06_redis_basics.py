"""Lesson 06-redis-basics: the hidden tests reject real Redis-cache bugs and accept other correct designs.

The answers below fill the slots of ``grader.authoring.lesson_contract.LessonContract``, which grades each through the
real grader. The three exercises are independent (``get_many`` and ``delete_prefix`` are functions of a
client, not methods of the class), so each run carries the k-th bug of every exercise; the last run leaves
``get-many`` correct, to show that an exercise keeps its points when another one is wrong. Most buggy versions are the solution with one edit (``variant``), so each
differs from a correct implementation by exactly the bug its name says.
"""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import LessonContract, solution_of, variant

pytestmark = pytest.mark.slow

CACHE, MANY, PREFIX = "json-cache", "get-many", "delete-prefix"

_SOLUTION = solution_of("06")


# -- json-cache: buggy implementations -----------------------------------------------------------

CACHE_SOLUTION = _SOLUTION[CACHE]

SET_THEN_EXPIRE = variant(CACHE_SOLUTION, (  # two commands: a crash between them leaves an immortal key
    "        self.client.set(self.prefix + key, payload, ex=self.default_ttl if ttl is None else ttl)",
    "        self.client.set(self.prefix + key, payload)\n"
    "        self.client.expire(self.prefix + key, self.default_ttl if ttl is None else ttl)",
))

TTL_IGNORED = variant(CACHE_SOLUTION, (  # the tutorial's bug: the ttl argument is accepted and never used
    "ex=self.default_ttl if ttl is None else ttl", "ex=self.default_ttl",
))

FALSY_IS_MISS = variant(CACHE_SOLUTION, (  # `if cached:` on the decoded value
    "        if raw is None:  # only a missing key gives None; a stored null is the text \"null\"\n"
    "            return default\n"
    "        return json.loads(raw)",
    "        value = json.loads(raw) if raw is not None else None\n"
    "        if value:\n"
    "            return value\n"
    "        return default",
))

NULL_IS_MISS = variant(CACHE_SOLUTION, (  # a cached None cannot be told from a miss
    "        if raw is None:  # only a missing key gives None; a stored null is the text \"null\"\n"
    "            return default\n"
    "        return json.loads(raw)",
    "        value = json.loads(raw) if raw is not None else None\n"
    "        return default if value is None else value",
))

DEFAULT_STR = variant(CACHE_SOLUTION, (  # "serialises" anything, silently turning sets and objects into text
    "payload = json.dumps(value)", "payload = json.dumps(value, default=str)",
))

# -- get-many: buggy implementations -------------------------------------------------------------

ONE_GET_PER_KEY = '''
def get_many(client, keys):
    found = {}
    for key in keys:
        raw = client.get(key)          # one round trip per key
        if raw is not None:
            found[key] = json.loads(raw)
    return found
'''

MISSES_AS_NONE = variant(_SOLUTION[MANY], (  # a missing key and a stored null look the same
    "        if raw is not None:\n            found[key] = json.loads(raw)",
    "        found[key] = json.loads(raw) if raw is not None else None",
))

PIPELINE_PER_KEY = '''
def get_many(client, keys):
    found = {}
    for key in keys:
        with client.pipeline() as pipe:   # a pipeline of one command is still one round trip per key
            pipe.get(key)
            (raw,) = pipe.execute()
        if raw is not None:
            found[key] = json.loads(raw)
    return found
'''

NOT_DECODED = variant(_SOLUTION[MANY], ("found[key] = json.loads(raw)", "found[key] = raw"))

# -- delete-prefix: buggy implementations --------------------------------------------------------

PREFIX_SOLUTION = _SOLUTION[PREFIX]
_SCAN = "keys = list(dict.fromkeys(client.scan_iter(match=pattern, count=batch)))  # SCAN may repeat a key"

KEYS_COMMAND = variant(PREFIX_SOLUTION, (_SCAN, "keys = client.keys(pattern)  # blocks the server"))

DELETE_WHILE_SCANNING = '''
def delete_prefix(client, prefix, *, batch=500):
    if not prefix:
        raise ValueError("empty prefix")
    pattern = "".join("\\\\" + ch if ch in "*?[]\\\\" else ch for ch in prefix) + "*"
    deleted = 0
    for key in client.scan_iter(match=pattern, count=batch):
        deleted += client.unlink(key)      # deletes while the iteration is still running
    return deleted
'''

UNESCAPED_GLOB = variant(PREFIX_SOLUTION, (  # `*`, `?`, `[` in the prefix act as wildcards
    'pattern = "".join("\\\\" + ch if ch in "*?[]\\\\" else ch for ch in prefix) + "*"', 'pattern = prefix + "*"',
))

EMPTY_UNLINK_CRASH = variant(PREFIX_SOLUTION, (  # UNLINK with no keys is an error; no batching either
    "    for start in range(0, len(keys), batch):\n        deleted += client.unlink(*keys[start:start + batch])",
    "    deleted = client.unlink(*keys)",
))

SINGLE_SCAN_PAGE = variant(PREFIX_SOLUTION, (  # stops after the first SCAN reply instead of cursor 0
    _SCAN, "_, keys = client.scan(0, match=pattern, count=batch)",
))

# -- correct implementations of other designs ----------------------------------------------------

ENVELOPE_CACHE = '''
class RedisJSONCache:
    """Stores {"v": value} with SETEX; refuses unknown types through an encoder hook."""

    def __init__(self, client, prefix, default_ttl=300):
        self._client, self._prefix, self._ttl = client, prefix, default_ttl

    @staticmethod
    def _refuse(obj):
        raise TypeError(f"{type(obj).__name__} values cannot be cached as JSON")

    def get(self, key, default=None):
        raw = self._client.get(f"{self._prefix}{key}")
        return default if raw is None else json.loads(raw)["v"]

    def set(self, key, value, ttl=None):
        payload = json.dumps({"v": value}, default=self._refuse)
        self._client.setex(f"{self._prefix}{key}", self._ttl if ttl is None else ttl, payload)

    def delete(self, key):
        return bool(self._client.unlink(f"{self._prefix}{key}"))
'''

PIPELINE_GET_MANY = '''
def get_many(client, keys):
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        replies = pipe.execute()
    return {k: json.loads(v) for k, v in zip(keys, replies) if v is not None}
'''

FILTERING_DELETE_PREFIX = '''
def delete_prefix(client, prefix, *, batch=500):
    if prefix == "":
        raise ValueError("refusing to delete every key")
    doomed = sorted({k for k in client.scan_iter(count=1000) if k.startswith(prefix)})
    if not doomed:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for i in range(0, len(doomed), batch):
            pipe.unlink(*doomed[i:i + batch])
        return sum(pipe.execute())
'''


class TestRedisBasics(LessonContract):
    LESSON = "06"
    BUGS = {
        CACHE: {"set_then_expire": SET_THEN_EXPIRE, "falsy_is_miss": FALSY_IS_MISS, "null_is_miss": NULL_IS_MISS,
                "ttl_ignored": TTL_IGNORED, "default_str": DEFAULT_STR},
        MANY: {"one_get_per_key": ONE_GET_PER_KEY, "misses_as_none": MISSES_AS_NONE,
               "pipeline_per_key": PIPELINE_PER_KEY, "not_decoded": NOT_DECODED},
        PREFIX: {"delete_while_scanning": DELETE_WHILE_SCANNING, "unescaped_glob": UNESCAPED_GLOB,
                 "keys_command": KEYS_COMMAND, "empty_unlink_crash": EMPTY_UNLINK_CRASH,
                 "single_scan_page": SINGLE_SCAN_PAGE},
    }
    OTHER_DESIGNS = {
        CACHE: {"envelope-cache": ENVELOPE_CACHE},
        MANY: {"pipeline-get-many": PIPELINE_GET_MANY},
        PREFIX: {"filtering-delete-prefix": FILTERING_DELETE_PREFIX},
    }
    GRADE_TOGETHER = True
