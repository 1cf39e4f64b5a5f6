"""The grading Redis server of one submission: started, sandboxed and stopped by the parent.

Every submission that uses Redis gets a server of its own, in a sandbox of its own
(``grader.sandbox.isolation``, role ``redis``): its own unprivileged uid, no network, no
files but a tmpfs, and a unix socket in a folder shared only with the judge. It holds
nothing but that submission's keys, so whatever a learner's commands do to it
(scripts, FLUSHALL, a crash) changes nothing but that submission's own run.

- ``redis-server`` (the default when the machine has it): its Lua is sandboxed by
  Redis, and its ACL refuses the admin commands no lesson needs (:data:`REFUSED`);
- ``fakeredis`` (otherwise, or asked for): ``grader.sandbox.fakeredis_server``, with its Lua
  locked down.

With ``--redis-url`` (an instructor's own server) no server is started: the parent
serves a byte proxy to it in the same place (:class:`ExternalRedis`).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .isolation import INSIDE_REDIS, PACKAGE_ROOT, Bind, plan, tools
from .protocol import REDIS_BACKENDS as BACKENDS, Limits
from .redis_gateway import RedisProxy

__all__ = ["BACKENDS", "REFUSED", "RedisServer", "ExternalRedis", "choose_backend"]

SOCKET = "redis.sock"
REFUSED = ("config", "shutdown", "debug", "module", "acl", "monitor", "save", "bgsave", "bgrewriteaof",
           "replicaof", "slaveof", "failover", "sync", "psync", "cluster", "migrate", "lastsave", "latency",
           "slowlog")


def choose_backend(backend: str) -> str:
    """The server to run for ``backend`` on this machine; a clear error when it cannot be had."""
    if backend not in BACKENDS:
        raise ValueError(f"the grading Redis must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "redis-server" if tools()["redis_server"] else "fakeredis"
    if backend == "redis-server" and not tools()["redis_server"]:
        raise ValueError("the grading Redis 'redis-server' is not installed: apt-get install redis-server, "
                         "or grade with the fakeredis backend")
    return backend


class RedisServer:
    """A sandboxed Redis server serving ``folder/redis.sock`` for one run."""

    def __init__(self, backend: str, folder: Path, home: Path, limits: Limits, uid: int | None) -> None:
        self.backend = choose_backend(backend)
        bind = Bind(folder, INSIDE_REDIS, writable=True)
        python = self.backend == "fakeredis"
        self.plan = plan("redis", home, isolation=limits.isolation, disk_bytes=limits.disk_bytes, binds=[bind],
                         uid=uid, python=python)
        self.socket = os.path.join(self.plan.path(bind), SOCKET)  # as the server (and the judge) see it
        if self.plan.uid is not None:
            os.chown(folder, self.plan.uid, self.plan.uid)
            if self.plan.chown_home:
                os.chown(home, self.plan.uid, self.plan.uid)
        if python:
            command = [sys.executable, "-m", "grader.sandbox.fakeredis_server", self.socket]
        else:
            acl = ["on", "nopass", "~*", "&*", "+@all", *(f"-{name}" for name in REFUSED)]
            command = [str(tools()["redis_server"]), "--port", "0", "--unixsocket", self.socket,
                       "--unixsocketperm", "777", "--save", "", "--appendonly", "no", "--dir", self.plan.home,
                       "--protected-mode", "no", "--logfile", "", "--loglevel", "warning", "--databases", "16",
                       "--user", "default", *acl]
        self.errfile = tempfile.TemporaryFile()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.plan.home, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": str(PACKAGE_ROOT)}  # python -m grader.sandbox.fakeredis_server: this process's grader
        self.proc = subprocess.Popen(
            [*self.plan.prefix, *command], stdin=subprocess.DEVNULL, stdout=self.errfile, stderr=self.errfile,
            cwd=self.plan.home if not self.plan.mounted else "/", env=env, start_new_session=True,
            preexec_fn=lambda: _limit(limits, nproc=self.plan.uid is not None),
        )

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "uid": self.plan.uid, "sandboxed": self.plan.mounted}

    def failure(self) -> str:
        """Why the server is not serving, for the record (its own last words)."""
        self.errfile.seek(0)
        tail = self.errfile.read()[-2000:].decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return f"the grading Redis server ({self.backend}) stopped with code {self.proc.poll()}: {tail[0][:300]}"

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.errfile.close()


class ExternalRedis:
    """An instructor's server (``--redis-url``): the parent serves a byte proxy to it in ``folder``."""

    backend = "external"

    def __init__(self, url: str, folder: Path) -> None:
        self.proxy = RedisProxy(url, folder / SOCKET)
        self.socket_name = SOCKET

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend}

    def close(self) -> None:
        self.proxy.close()


def _limit(limits: Limits, nproc: bool) -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
