"""One way to get a Redis client in every lesson: embedded or real.

By default ``get_redis()`` returns a fakeredis client on one shared in-process
server (with Lua, so redis-py locks work). Set ``REDIS_URL`` (for example
``redis://127.0.0.1:6379/0``) to use a real server instead; the lessons behave
the same on both.

>>> r = get_redis()
>>> r.set("course:demo", "1", ex=60)
True
>>> with redis_outage(r):
...     try:
...         r.get("course:demo")
...     except Exception as exc:
...         print(type(exc).__name__)
ConnectionError
>>> r.get("course:demo")
'1'
>>> clear_namespace(r, "course:")
1
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import redis

__all__ = [
    "REDIS_URL_ENV",
    "RedisUnavailable",
    "get_redis",
    "redis_outage",
    "is_embedded",
    "clear_namespace",
    "age_keys",
    "on_outage",
]

REDIS_URL_ENV = "REDIS_URL"
_SCHEMES = ("redis", "rediss", "unix")
_EMBEDDED_SERVER = fakeredis.FakeServer()  # shared by every embedded client in this process
_OUTAGE_LISTENERS: list[Callable[[bool], None]] = []


class RedisUnavailable(ConnectionError):
    """The configured Redis server could not be reached."""


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def on_outage(listener: Callable[[bool], None]) -> None:
    """Call ``listener(True)`` when a ``redis_outage`` block starts and ``listener(False)`` when it ends.

    The grader uses it to cut off the learner's process too while a test simulates an outage.
    """
    _OUTAGE_LISTENERS.append(listener)


def get_redis(url: str | None = None, *, decode_responses: bool = True) -> redis.Redis:
    """Return a Redis client: fakeredis by default, a real server for ``REDIS_URL``.

    ``url`` overrides the environment. Every embedded client shares one
    in-process server, so two clients see each other's keys, as with a real
    server. Raises ValueError for an unsupported scheme and RedisUnavailable
    (naming the URL) when a real server does not answer.
    """
    url = url if url is not None else os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return fakeredis.FakeRedis(server=_EMBEDDED_SERVER, decode_responses=decode_responses)
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ValueError(
            f"{REDIS_URL_ENV}={_redacted(url)!r} has scheme {scheme or '(none)'!r}; use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)} (e.g. redis://127.0.0.1:6379/0), "
            f"or unset it to use the embedded fakeredis server"
        )
    client = redis.Redis.from_url(url, decode_responses=decode_responses, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(
            f"cannot reach Redis at {_redacted(url)}: {exc}. Start the server, fix {REDIS_URL_ENV}, "
            f"or unset it to use the embedded fakeredis server"
        ) from exc
    return client


def is_embedded(client: redis.Redis) -> bool:
    """True when ``client`` talks to an in-process fakeredis server."""
    return isinstance(client, fakeredis.FakeRedis)


def _closed_port() -> int:
    """A loopback port with nothing listening: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_outage(client: redis.Redis) -> Iterator[None]:
    """Make Redis unreachable inside the block: commands raise ``redis.ConnectionError``.

    On the embedded server every client of that server is cut off; on a real
    server only ``client`` is (its connections are pointed at a closed port),
    so other users of the server are not disturbed. Service resumes on exit.
    """
    for listener in _OUTAGE_LISTENERS:
        listener(True)
    try:
        with _cut_off(client):
            yield
    finally:
        for listener in _OUTAGE_LISTENERS:
            listener(False)


@contextlib.contextmanager
def _cut_off(client: redis.Redis) -> Iterator[None]:
    if is_embedded(client):
        server = client.connection_pool.connection_kwargs["server"]
        server.connected = False
        try:
            yield
        finally:
            server.connected = True
        return
    saved_pool = client.connection_pool
    client.connection_pool = redis.ConnectionPool(
        host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        decode_responses=saved_pool.connection_kwargs.get("decode_responses", False),
    )
    try:
        yield
    finally:
        client.connection_pool.disconnect()
        client.connection_pool = saved_pool


def clear_namespace(client: redis.Redis, prefix: str, *, batch: int = 500) -> int:
    """Delete every key that starts with ``prefix``; return how many were deleted.

    Collects the keys with SCAN first and UNLINKs them afterwards in batches,
    never uses KEYS. Collecting first keeps each batch one UNLINK and does not
    rely on how a server's cursor reacts to deletions: real Redis only promises
    the keys present for the whole scan (and may return one twice); older
    fakeredis releases skipped keys when deleting mid-scan (2.40 keeps a key
    snapshot per cursor and does not).
    """
    if not prefix:
        raise ValueError("prefix must not be empty: clear_namespace never deletes a whole database")
    keys = list(client.scan_iter(match=_glob_escape(prefix) + "*", count=batch))
    for start in range(0, len(keys), batch):
        client.unlink(*keys[start:start + batch])
    return len(keys)


def age_keys(client: redis.Redis, seconds: float, *, match: str = "*") -> int:
    """Move Redis expiry forward by ``seconds`` without waiting.

    Every matching key that has a TTL gets its remaining time shortened (and is
    removed once it reaches zero), on fakeredis and on a real server alike.
    Returns the number of keys whose TTL changed. Used by ``FakeClock``.
    """
    if seconds < 0:
        raise ValueError(f"cannot move time backwards ({seconds!r} s)")
    keys = list(client.scan_iter(match=match, count=500))
    if not keys:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.pttl(key)
        remaining = pipe.execute()
    delta_ms = int(round(seconds * 1000))
    changed = 0
    with client.pipeline(transaction=False) as pipe:
        for key, pttl in zip(keys, remaining):
            if pttl is None or pttl < 0:
                continue  # no TTL (-1) or already gone (-2)
            left = pttl - delta_ms
            if left > 0:
                pipe.pexpire(key, left)
            else:
                pipe.unlink(key)
            changed += 1
        pipe.execute()
    return changed


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
