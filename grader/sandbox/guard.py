"""An audit hook (PEP 578) that the runner installs before any learner code runs.

It cannot be removed, and no second hook can be added after it. Until the
process ends it refuses, for code that is not part of the Python library or
an installed package, what an attacker in the same interpreter needs:

- reaching other frames (``sys._getframe``, ``sys._current_frames``,
  ``traceback.tb_frame``, ``gi_frame``/``cr_frame``/``ag_frame``, ``frame.f_code``),
  where the runner's state and the test code live;
- walking the heap (``gc.get_objects``/``get_referrers``/``get_referents``),
  tracing (``sys.settrace``/``setprofile``), new code objects, replacing a
  function's ``__code__``, ``ctypes``;
- starting programs (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``,
  ``posix_spawn``, ``pty``), raising resource limits;
- writing, renaming or deleting files outside the scratch folder and /tmp,
  reading the paths the parent denies (course folder, ``/proc/*/mem``...);
- network connections other than the Redis the grader was given.

Library code keeps its uses (``collections.namedtuple``, ``typing``,
``logging``, hypothesis and IPython read frames), except the library
functions that hand frames back to their caller (``inspect``,
``logging.currentframe``, ``traceback.walk_tb``...). This is best effort,
not a security boundary: see docs/SECURITY.md.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any, Iterable

from .protocol import TESTS_FILENAME, trusted_prefixes

__all__ = ["install", "BLOCKED_EVENTS", "LIBRARY_EVENTS", "TESTS_EVENTS", "TESTS_FILENAME"]

LIBRARY_EVENTS = frozenset({"sys._current_frames", "sys._current_exceptions", "code.__new__",  # library/tests only
                            "gc.get_objects", "gc.get_referrers", "gc.get_referents"})
TESTS_EVENTS = frozenset({"sys.settrace", "sys.setprofile"})
BLOCKED_EVENTS = frozenset({
    "setopencodehook",
    "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile",
    "subprocess.Popen", "pty.spawn", "resource.setrlimit", "resource.prlimit", "os.setns", "os.unshare",
    "sys.remote_exec", "socket.sendto", "socket.sendmsg",
})
FRAME_EVENTS = frozenset({"sys._getframe", "sys._getframemodulename"})
FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code"})
PATH_EVENTS = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
                         "os.link", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo",
                         "os.mknod", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.move",
                         "shutil.copyfile", "shutil.copytree", "shutil.chown"})
_PROC_SECRETS = re.compile(r"^/proc/(self|thread-self|\d+)(/task/\d+)?/(mem|map_files|fd|fdinfo|environ|root|cwd|"
                           r"exe|maps|smaps|pagemap|syscall|stack|auxv|cmdline)(/|$)")
_GC_USERS = frozenset({"register_random"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# library functions that return frames to whoever calls them: a learner may call them, so they get no pass
_FRAME_GIVERS = {("inspect", None), ("logging", "<lambda>"), ("traceback", "walk_tb"), ("traceback", "walk_stack"),
                 ("traceback", "_walk_tb_with_full_positions")}


def install(*, scratch: str, deny: Iterable[str] = (), allow: Iterable[str] = (), connect: Iterable[str] = ()) -> None:
    """Install the hook; from now on it applies to every thread of this process."""
    realpath, join, getcwd, fspath = os.path.realpath, os.path.join, os.getcwd, os.fspath
    getframe, get_ident = sys._getframe, threading.get_ident
    writable = tuple(realpath(p) for p in (scratch, "/tmp", "/dev/shm")) + ("/dev/null",)
    denied = tuple(realpath(p) for p in deny)
    readable = tuple(realpath(p) for p in allow) + writable  # exceptions inside the denied folders
    trusted = trusted_prefixes()
    allowed_unix = {c[len("unix:"):] for c in connect if c.startswith("unix:")}
    allowed_inet = {tuple(c[len("tcp:"):].rsplit(":", 1)) for c in connect if c.startswith("tcp:")}
    allowed_hosts = {h for h, _ in allowed_inet}
    inside = set()  # thread idents currently inside the hook (its own calls are not checked again)
    verdicts: dict[Any, bool] = {}  # code object -> is trusted library code (keeps the code alive)

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def resolve(path: Any) -> str | None:
        if isinstance(path, int):
            return None
        try:
            path = fspath(path)
            if isinstance(path, bytes):
                path = path.decode("utf-8", "surrogateescape")
            return realpath(path if path.startswith("/") else join(getcwd(), path))
        except (TypeError, ValueError, OSError):
            return "/"

    def classify(code: Any) -> str:
        verdict = verdicts.get(code)
        if verdict is None:
            filename = code.co_filename
            module = os.path.basename(filename).rsplit(".", 1)[0]
            if (module, None) in _FRAME_GIVERS or (module, code.co_name) in _FRAME_GIVERS:
                verdict = "giver"
            elif filename.startswith("<frozen ") or (filename.startswith(trusted) and os.path.isfile(filename)):
                verdict = "library"
            elif filename == TESTS_FILENAME:
                verdict = "tests"
            else:
                verdict = "other"
            verdicts[code] = verdict
        return verdict

    def caller(depth: int) -> str:
        frame = getframe(depth)
        while frame is not None and classify(frame.f_code) == "giver":
            frame = frame.f_back  # a function that hands out frames answers to whoever called it
        return "other" if frame is None else classify(frame.f_code)

    def deny_path(event: str, path: str) -> None:
        raise PermissionError(f"the grader does not allow this notebook to {event} {path!r}")

    def hook(event: str, args: tuple) -> None:
        me = get_ident()
        if me in inside:
            return
        if event == "sys.addaudithook":
            raise RuntimeError("the grader does not allow new audit hooks")
        check_frames = event in FRAME_EVENTS or (
            event == "object.__getattr__" and len(args) > 1 and args[1] in FRAME_ATTRS)
        if not (check_frames or event in BLOCKED_EVENTS or event.startswith("ctypes.") or event == "open"
                or event in LIBRARY_EVENTS or event in TESTS_EVENTS or event in PATH_EVENTS
                or event in ("os.listdir", "os.scandir", "socket.connect", "socket.getaddrinfo",
                             "object.__setattr__", "compile")):
            return
        inside.add(me)
        try:
            if event.startswith("gc."):  # hypothesis' register_random is the one known library user
                frame = getframe(1)
                if frame is None or (classify(frame.f_code) != "tests" and (
                        classify(frame.f_code) != "library" or frame.f_code.co_name not in _GC_USERS)):
                    raise RuntimeError(f"the grader does not allow {event}")
            elif check_frames or event in LIBRARY_EVENTS:
                if caller(2) not in ("library", "tests"):
                    what = args[1] if check_frames and event.startswith("object") else ""
                    raise RuntimeError(f"the grader does not allow {event} {what}".rstrip())
            elif event in TESTS_EVENTS:
                if caller(2) != "tests":
                    raise RuntimeError(f"the grader does not allow {event}")
            elif event == "compile":
                filename = args[1] if len(args) > 1 else None
                if isinstance(filename, bytes):
                    filename = filename.decode("utf-8", "replace")
                if isinstance(filename, str) and (filename == TESTS_FILENAME or filename.startswith(trusted)
                                                  or filename.startswith("<frozen ")):
                    if caller(2) != "library":
                        raise RuntimeError("the grader does not allow compiling code under a library's name")
            elif event in BLOCKED_EVENTS or event.startswith("ctypes."):
                raise RuntimeError(f"the grader does not allow {event}")
            elif event == "object.__setattr__":
                if len(args) > 1 and args[1] in ("__code__", "__globals__") and caller(2) not in ("library", "tests"):
                    raise RuntimeError(f"the grader does not allow replacing {args[1]}")
            elif event == "open":
                path = resolve(args[0])
                if path is None:
                    return
                mode, flags = args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else 0
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) \
                    or bool((flags or 0) & _WRITE_FLAGS)
                if writing and not under(path, writable):
                    deny_path("write", path)
                if (under(path, denied) and not under(path, readable)) or _PROC_SECRETS.match(path):
                    deny_path("open", path)
            elif event in PATH_EVENTS:
                for raw in args[:2]:
                    if isinstance(raw, (str, bytes, os.PathLike)):
                        path = resolve(raw)
                        if path and not under(path, writable):
                            deny_path("change", path)
            elif event in ("os.listdir", "os.scandir"):
                path = resolve(args[0] if args and args[0] is not None else ".")
                if path and ((under(path, denied) and not under(path, readable)) or _PROC_SECRETS.match(path)):
                    deny_path("list", path)
            elif event == "socket.getaddrinfo":
                host = args[0].decode() if isinstance(args[0], bytes) else args[0]
                if host not in allowed_hosts and host not in (None, "localhost", "127.0.0.1", "::1"):
                    raise PermissionError(f"the grader does not allow network access ({host!r})")
            elif event == "socket.connect":
                address = args[1] if len(args) > 1 else None
                if isinstance(address, (str, bytes)):
                    target = address.decode() if isinstance(address, bytes) else address
                    if target not in allowed_unix:
                        raise PermissionError(f"the grader does not allow connecting to {target!r}")
                elif isinstance(address, tuple) and len(address) >= 2:
                    if (str(address[0]), str(address[1])) not in allowed_inet:
                        raise PermissionError(f"the grader does not allow network access ({address[0]}:{address[1]})")
                else:
                    raise PermissionError("the grader does not allow this connection")
        finally:
            inside.discard(me)

    sys.addaudithook(hook)
