"""The worker processes' own state: each exits with its parent and owns one database of the grader's real Redis."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from ..sandbox.redis_urls import with_database

__all__ = ["REDIS_DATABASES", "worker_init", "worker_redis_url"]


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)  # the autograde run is gone (even kill -9): stop, its rerun will redo our work
        time.sleep(0.5)


REDIS_DATABASES = 16  # a real Redis server's default number of databases: at most this many workers share one


_WORKER_DB: int | None = None  # this worker's own database on the grader's real Redis


def worker_init(parent: int, databases: Any = None) -> None:
    """In a new worker process: ignore Ctrl+C (the parent handles it), exit when the parent is gone, and take
    this worker's own Redis database from ``databases`` (a queue) when the grader uses a real Redis."""
    global _WORKER_DB
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if databases is not None:
        _WORKER_DB = databases.get()


def worker_redis_url(redis_url: str | None) -> str | None:
    """In a worker process: the grader's Redis URL with this worker's own database."""
    if redis_url and _WORKER_DB is not None:  # submissions graded at the same time never share keys
        return with_database(redis_url, _WORKER_DB)
    return redis_url
