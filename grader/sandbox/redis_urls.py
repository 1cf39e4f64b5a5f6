"""Redis URLs the grader rewrites: which database a URL names, and the same server with another one.

>>> database_of("redis://127.0.0.1:6379/2"), database_of("unix:///run/redis.sock?db=5")
(2, 5)
>>> with_database("redis://127.0.0.1:6379/0", 3), with_database("unix:///run/redis.sock?db=1", 2)
('redis://127.0.0.1:6379/3', 'unix:///run/redis.sock?db=2')
>>> inside_url("redis://:secret@10.0.0.5:6379/4", "/redis.sock")
'unix://:secret@/redis.sock?db=4'
>>> server_address("redis://10.0.0.5/1"), server_address("unix:///run/redis.sock?db=2")
(('tcp', ('10.0.0.5', 6379)), ('unix', '/run/redis.sock'))
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["database_of", "with_database", "inside_url", "server_address"]


def database_of(url: str) -> int:
    """The database number ``url`` selects, read as redis-py reads it (the path, else ``?db=``, else 0)."""
    parts = urlsplit(url)
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    text = path or dict(parse_qsl(parts.query)).get("db", "") or "0"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"the Redis URL's database {text!r} is not a number: use e.g. redis://host:6379/0") from None


def with_database(url: str, db: int) -> str:
    """``url`` with its database number replaced by ``db``."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "unix":
        query["db"] = str(db)
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    query.pop("db", None)
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def inside_url(url: str | None, inside_socket: str) -> str:
    """The learner's REDIS_URL: the socket inside the sandbox, with the credentials and database of ``url``."""
    if not url:
        return f"unix://{inside_socket}?db=0"
    parts = urlsplit(url)
    userinfo = ""
    if parts.username or parts.password:
        userinfo = f"{quote(parts.username or '')}:{quote(parts.password or '')}@"
    query = {**dict(parse_qsl(parts.query)), "db": str(database_of(url))}
    return f"unix://{userinfo}{inside_socket}?{urlencode(query)}"


def server_address(url: str) -> tuple[str, str | tuple[str, int]]:
    """Where the server of ``url`` listens: ("unix", path) or ("tcp", (host, port)), with redis-py's defaults."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return "unix", parts.path
    return "tcp", (parts.hostname or "127.0.0.1", parts.port or 6379)
