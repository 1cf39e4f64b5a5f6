"""A real SQLite database that is slow on purpose.

Every query pays a simulated network-and-disk latency (100 ms by default,
scaled by ``COURSE_LATENCY_SCALE``), is counted by operation, and can be told
to fail or to slow down, so lessons can show what a cache saves and what
happens when the backend misbehaves.

>>> db = SlowDatabase(latency=0)
>>> db.get_user(1)["id"]
1
>>> db.calls["get_user"]
1
>>> db.update("users", 1, name="Ada")
True
>>> db.get_user(1)["name"]
'Ada'
>>> db.total_calls
3
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from .config import scaled

__all__ = ["SlowDatabase", "DatabaseError", "TABLES", "OPERATIONS"]

TABLES = ("users", "products", "posts")
_SINGULAR = {"users": "user", "products": "product", "posts": "post"}
_COLUMNS = {
    "users": ("name", "email", "country"),
    "products": ("name", "category", "price", "popularity"),
    "posts": ("user_id", "title", "body", "likes"),
}
OPERATIONS = tuple(
    f"{verb}_{_SINGULAR[t]}" for t in TABLES for verb in ("get", "insert", "update", "delete")
) + ("posts_by_user", "popular_products", "list_ids")

_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, country TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
                       price REAL NOT NULL, popularity INTEGER NOT NULL);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
                    title TEXT NOT NULL, body TEXT NOT NULL, likes INTEGER NOT NULL);
CREATE INDEX posts_user ON posts(user_id);
"""
_COUNTRIES = ("NL", "DE", "FR", "IN", "BR", "US", "JP", "KE")
_CATEGORIES = ("books", "games", "garden", "kitchen", "music")
_WORDS = ("cache", "latency", "redis", "ttl", "hit", "miss", "evict", "warm", "key", "stale")


class DatabaseError(RuntimeError):
    """The simulated database failed (an injected outage or failure)."""


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: choose one of {', '.join(TABLES)}")


def _check_operation(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}: choose one of {', '.join(OPERATIONS)}")


def _check_latency(seconds: float) -> float:
    if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")
    return float(seconds)


class SlowDatabase:
    """A seeded SQLite database (users, products, posts) with a latency per query.

    ``latency`` is in seconds before scaling; ``path`` defaults to a fresh file
    in a temporary folder that is removed when the object is garbage collected
    or closed. Safe to use from many threads: the latency is paid outside the
    connection lock, so concurrent queries overlap as on a real server.

    When the grader's tests hand a database to a learner's code, that code may
    query and write it (``__learner_api__``), not read or reset its counters,
    schedule failures or close it.
    """

    __learner_api__ = frozenset({"get", "get_user", "get_product", "get_post", "posts_by_user", "popular_products",
                                 "ids", "insert", "update", "delete", "latency"})

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        latency: float = 0.1,
        seed: int = 42,
        n_users: int = 100,
        n_products: int = 50,
        n_posts: int = 300,
    ) -> None:
        self._latency = _check_latency(latency)
        self._slowdown = 1.0
        self._lock = threading.Lock()
        self._fail_budget: dict[str | None, int] = {}
        self._outage = False
        self.calls: Counter[str] = Counter()
        if path is None:
            folder = tempfile.mkdtemp(prefix="course-db-")
            path = Path(folder) / "shop.sqlite3"
            self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)
        else:
            self._cleanup = None
        self.path = Path(path)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        # A simulation, not a system of record: no fsync per commit, so the only latency is the simulated one.
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("PRAGMA journal_mode = MEMORY")
        if fresh:
            _copy_seeded(self._conn, seed, n_users, n_products, n_posts)

    # -- settings ---------------------------------------------------------
    @property
    def latency(self) -> float:
        """Seconds each query waits before it runs (before scaling)."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = _check_latency(seconds)

    @property
    def total_calls(self) -> int:
        """Number of queries run since creation or the last ``reset_counts()``."""
        return sum(self.calls.values())

    def calls_to(self, operation: str) -> int:
        """Number of queries of one operation (``'get_user'``, ``'update_post'``, ...)."""
        _check_operation(operation)
        return self.calls[operation]

    def reset_counts(self) -> None:
        """Zero every query counter."""
        with self._lock:
            self.calls.clear()

    # -- fault injection --------------------------------------------------
    def fail_next(self, n: int = 1, operation: str | None = None) -> None:
        """Make the next ``n`` queries (of ``operation``, or of any kind) raise DatabaseError."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if operation is not None:
            _check_operation(operation)
        with self._lock:
            self._fail_budget[operation] = self._fail_budget.get(operation, 0) + n

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Every query raises DatabaseError inside the block."""
        self._outage = True
        try:
            yield
        finally:
            self._outage = False

    @contextlib.contextmanager
    def slowdown(self, factor: float) -> Iterator[None]:
        """Multiply the latency by ``factor`` inside the block."""
        if factor < 0:
            raise ValueError(f"slowdown factor must be >= 0, got {factor!r}")
        previous, self._slowdown = self._slowdown, float(factor)
        try:
            yield
        finally:
            self._slowdown = previous

    # -- reads ------------------------------------------------------------
    def get(self, table: str, row_id: int) -> dict[str, Any] | None:
        """Return one row as a dict, or None when there is no such id."""
        _check_table(table)
        rows = self._run(f"get_{_SINGULAR[table]}", (row_id,), f"SELECT * FROM {table} WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    def get_user(self, user_id: int) -> dict[str, Any] | None:
        return self.get("users", user_id)

    def get_product(self, product_id: int) -> dict[str, Any] | None:
        return self.get("products", product_id)

    def get_post(self, post_id: int) -> dict[str, Any] | None:
        return self.get("posts", post_id)

    def posts_by_user(self, user_id: int) -> list[dict[str, Any]]:
        """All posts of one user, oldest first."""
        return self._run("posts_by_user", (user_id,), "SELECT * FROM posts WHERE user_id = ? ORDER BY id", (user_id,))

    def popular_products(self, limit: int = 10) -> list[dict[str, Any]]:
        """The ``limit`` most popular products, most popular first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        return self._run(
            "popular_products", (limit,),
            "SELECT * FROM products ORDER BY popularity DESC, id LIMIT ?", (limit,),
        )

    def ids(self, table: str) -> list[int]:
        """Every id in a table, ascending (one query)."""
        _check_table(table)
        return [r["id"] for r in self._run("list_ids", (table,), f"SELECT id FROM {table} ORDER BY id", ())]

    # -- writes -----------------------------------------------------------
    def insert(self, table: str, **fields: Any) -> int:
        """Insert a row and return its new id."""
        _check_table(table)
        self._check_fields(table, fields, require_all=True)
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        return self._run(
            f"insert_{_SINGULAR[table]}", tuple(fields.values()),
            f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(fields.values()), write=True,
        )

    def update(self, table: str, row_id: int, **fields: Any) -> bool:
        """Change some columns of a row; return False when there is no such id."""
        _check_table(table)
        self._check_fields(table, fields, require_all=False)
        if not fields:
            raise ValueError("update needs at least one column to change, e.g. update('users', 1, name='Ada')")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        changed = self._run(
            f"update_{_SINGULAR[table]}", (row_id, *fields.values()),
            f"UPDATE {table} SET {assignments} WHERE id = ?", (*fields.values(), row_id), write=True,
        )
        return bool(changed)

    def delete(self, table: str, row_id: int) -> bool:
        """Delete a row; return False when there is no such id."""
        _check_table(table)
        changed = self._run(
            f"delete_{_SINGULAR[table]}", (row_id,), f"DELETE FROM {table} WHERE id = ?", (row_id,), write=True,
        )
        return bool(changed)

    def close(self) -> None:
        """Close the connection and remove the temporary file, if any."""
        self._conn.close()
        if self._cleanup is not None:
            self._cleanup()

    def __repr__(self) -> str:
        return f"SlowDatabase(latency={self._latency!r}, calls={self.total_calls})"

    # -- internals --------------------------------------------------------
    def _check_fields(self, table: str, fields: dict[str, Any], *, require_all: bool) -> None:
        allowed = _COLUMNS[table]
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)} for table {table!r}: columns are {', '.join(allowed)}")
        missing = [c for c in allowed if c not in fields]
        if require_all and missing:
            raise ValueError(f"insert into {table!r} needs every column; missing {', '.join(missing)}")

    def _take_failure(self, operation: str) -> bool:
        with self._lock:
            for key in (operation, None):
                if self._fail_budget.get(key, 0) > 0:
                    self._fail_budget[key] -= 1
                    return True
        return False

    def _run(self, operation: str, args: tuple, sql: str, params: tuple, *, write: bool = False) -> Any:
        delay = scaled(self._latency * self._slowdown)
        if delay:
            time.sleep(delay)
        with self._lock:
            self.calls[operation] += 1
        call = f"{operation}({', '.join(map(repr, args))})"
        if self._outage:
            raise DatabaseError(f"simulated database outage during {call}")
        if self._take_failure(operation):
            raise DatabaseError(f"simulated database failure during {call}")
        with self._lock:
            cursor = self._conn.execute(sql, params)
            if write:
                self._conn.commit()
                return cursor.lastrowid if operation.startswith("insert_") else cursor.rowcount
            return [dict(row) for row in cursor.fetchall()]


_TEMPLATES: dict[tuple[int, int, int, int], sqlite3.Connection] = {}
_TEMPLATES_LOCK = threading.Lock()


def _copy_seeded(target: sqlite3.Connection, seed: int, n_users: int, n_products: int, n_posts: int) -> None:
    """Fill ``target`` with the seeded data: generated once per process and settings, then copied."""
    key = (seed, n_users, n_products, n_posts)
    with _TEMPLATES_LOCK:
        if key not in _TEMPLATES:
            template = sqlite3.connect(":memory:", check_same_thread=False)
            _seed(template, random.Random(seed), n_users, n_products, n_posts)
            _TEMPLATES[key] = template
        _TEMPLATES[key].backup(target)


def _seed(conn: sqlite3.Connection, rng: random.Random, n_users: int, n_products: int, n_posts: int) -> None:
    conn.executescript(_SCHEMA)
    conn.executemany(
        "INSERT INTO users (id, name, email, country) VALUES (?, ?, ?, ?)",
        [(i, f"user{i}", f"user{i}@example.org", rng.choice(_COUNTRIES)) for i in range(1, n_users + 1)],
    )
    conn.executemany(
        "INSERT INTO products (id, name, category, price, popularity) VALUES (?, ?, ?, ?, ?)",
        [
            (i, f"product{i}", rng.choice(_CATEGORIES), round(rng.uniform(1, 200), 2), rng.randint(0, 10_000))
            for i in range(1, n_products + 1)
        ],
    )
    conn.executemany(
        "INSERT INTO posts (id, user_id, title, body, likes) VALUES (?, ?, ?, ?, ?)",
        [
            (
                i, rng.randint(1, max(n_users, 1)),
                " ".join(rng.choices(_WORDS, k=3)), " ".join(rng.choices(_WORDS, k=12)), rng.randint(0, 500),
            )
            for i in range(1, n_posts + 1)
        ],
    )
    conn.commit()
