"""Kernel-level isolation of every process that touches a submission, and what is active here.

Grading one submission starts up to three processes, each in a sandbox of its own
(``plan(role, ...)``):

- ``learner``: the learner's interpreter (``grader.sandbox.runner``);
- ``judge``: the test cells (``grader.sandbox.judge``), which take the learner's objects,
  messages and Redis traffic as input and are therefore sandboxed as tightly;
- ``redis``: the grading Redis server (``redis-server``, or fakeredis in a process
  of its own, ``grader.sandbox.fakeredis_server``), which runs what the learner sends it.

With bubblewrap (``bwrap``, as root) each one gets its own mount namespace (a
read-only ``/usr``, a few files of ``/etc``, and only for Python roles the Python
installation, the virtual environment and the ``grader`` and ``course_lib``
packages: never the course folder, solutions, gradebook, submissions or another
learner), a private size-limited tmpfs home and ``/tmp``, no network (its own
network namespace), its own PID, IPC and UTS namespaces, a new session, death with
the grader, and an unprivileged uid of its own (no passwd entry, different for each
role and each run) with no capabilities and no_new_privs. The sockets between them
are the only shared folders (``Bind``).

Without bwrap, ``unshare`` gives the network and PID namespaces and ``setpriv`` the
unprivileged uid when the interpreter is readable by it; ``describe()`` says what is
missing (lines starting ``NOT ACTIVE``). ``isolation="off"`` (``Limits``) turns all of
this, and the learner's audit hook, off: the baseline for measuring the cost.

``python -m grader.sandbox.isolation`` prints the protections of each role on this machine.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .protocol import ISOLATION_MODES

__all__ = ["Bind", "Plan", "plan", "tools", "active_protections", "describe", "new_uids", "ROLES",
           "ISOLATION_MODES", "INSIDE_RUN", "INSIDE_REDIS", "home_of"]

ROLES = ("learner", "judge", "redis")
INSIDE_RUN = "/run/grader"  # the learner's Redis socket (served by the judge)
INSIDE_REDIS = "/run/redis"  # the grading Redis server's socket (the judge and the server only)
SANDBOX_UIDS = (200_000, 260_000)  # unprivileged uids without a passwd entry, drawn per run and role
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds grader/ and course_lib/
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "localtime", "passwd", "group", "nsswitch.conf",
        "hosts", "host.conf", "gai.conf", "ssl", "ca-certificates", "mime.types", "alternatives", "os-release")
_WHAT = {"learner": "the learner's interpreter (grader.sandbox.runner)",
         "judge": "the judge: the test cells (grader.sandbox.judge)",
         "redis": "the grading Redis server (redis-server, or fakeredis in its own process)"}


def home_of(role: str) -> str:
    """Where a role's private home is, as the role sees it under bubblewrap."""
    return f"/home/{role}"


@dataclass(frozen=True)
class Bind:
    """A host folder shared into a sandbox at ``inside`` (the sockets between the processes)."""

    outside: Path
    inside: str
    writable: bool = False


@dataclass
class Plan:
    """How to start one role: a command prefix, and where things are as the process sees them."""

    role: str
    prefix: list[str]
    home: str  # the role's writable home as the process sees it
    uid: int | None  # the uid the process runs as, when it is not the grading user's
    protections: list[str]
    mounted: bool = False  # True under bubblewrap: binds appear at their inside paths
    chown_home: bool = False  # the host home folder must belong to ``uid`` (setpriv without bwrap)
    deny: list[str] = field(default_factory=list)  # paths the audit hook refuses to read...
    allow: list[str] = field(default_factory=list)  # ...except these (the venv and the two packages)
    network_isolated: bool = False

    def path(self, bind: Bind) -> str:
        """Where ``bind`` is for this process."""
        return bind.inside if self.mounted else str(bind.outside)


@functools.lru_cache(maxsize=1)
def tools() -> dict[str, object]:
    """What this machine offers (probed once per process)."""
    found: dict[str, object] = {"root": os.geteuid() == 0}
    bwrap = shutil.which("bwrap")
    found["bwrap"] = bwrap if bwrap and _works([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                                                "--die-with-parent", "--", "/bin/true"]) else None
    unshare = shutil.which("unshare")
    found["unshare"] = unshare if unshare and _works([unshare, "--net", "--pid", "--fork", "--kill-child",
                                                      "/bin/true"]) else None
    setpriv = shutil.which("setpriv")
    found["setpriv"] = setpriv if setpriv and found["root"] else None
    found["others_can_run_python"] = _world_traversable(Path(sys.executable).resolve()) and \
        _world_traversable(Path(sys.prefix)) and _world_traversable(PACKAGE_ROOT)
    found["redis_server"] = shutil.which("redis-server")
    return found


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _world_traversable(path: Path) -> bool:
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _course_roots() -> list[str]:
    roots = {str(PACKAGE_ROOT)}
    if os.environ.get("COURSE_ROOT"):
        roots.add(str(Path(os.environ["COURSE_ROOT"]).resolve()))
    return sorted(roots)


def new_uids() -> dict[str, int | None]:
    """Three different unprivileged uids, one per role, for one run (None when not root)."""
    if not tools()["root"]:
        return dict.fromkeys(ROLES)
    uids: list[int] = []
    while len(uids) < len(ROLES):
        uid = SANDBOX_UIDS[0] + secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0])
        if uid not in uids:
            uids.append(uid)
    return dict(zip(ROLES, uids))


def _setpriv(uid: int) -> list[str]:
    return [str(tools()["setpriv"]), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def plan(role: str, home: Path, *, isolation: str = "auto", disk_bytes: int = 256 * 1024**2,
         binds: Sequence[Bind] = (), uid: int | None = None, python: bool = True) -> Plan:
    """The command prefix for one process of ``role``. ``home`` is its private host folder (also its seed)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if isolation not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {isolation!r}")
    if isolation == "off":
        return Plan(role, [], str(home), None, ["separate process with rlimits, clean environment, own session "
                                                "(isolation off: no namespaces, no audit hook)"])
    t = tools()
    if uid is None and t["root"]:
        uid = new_uids()[role]
    common = ["separate process, own session, rlimits (memory, CPU, file size, processes), clean environment"]
    if role == "learner":
        common += ["audit hook in the learner's interpreter (frames, gc, ctypes, programs, files, sockets)",
                   "cells sent one at a time, test source encrypted in transit, records authenticated (HMAC)"]
    if t["bwrap"] and t["root"] and t["setpriv"]:
        return _bubblewrap_plan(role, home, disk_bytes, binds, int(uid), python, common)
    prefix: list[str] = []
    prot = list(common)
    if not t["bwrap"]:
        prot.append("NOT ACTIVE: bubblewrap (install the 'bubblewrap' package, and grade as root): the course "
                    "folder is readable" + (" except through the audit hook" if role == "learner" else ""))
    isolated = False
    if t["unshare"]:
        prefix += [str(t["unshare"]), "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
        prot.append("unshare: no network (own network namespace), own PID namespace")
        isolated = True
    else:
        prot.append("NOT ACTIVE: network namespace (unshare unavailable)"
                    + (": the audit hook filters connections" if role == "learner" else ""))
    run_as = None
    if t["setpriv"] and uid is not None and (t["others_can_run_python"] or not python):
        prefix += _setpriv(uid)
        prot.append(f"setpriv: an unprivileged uid of its own for each run (from {SANDBOX_UIDS[0]}-{SANDBOX_UIDS[1]})")
        run_as = uid
    else:
        prot.append("NOT ACTIVE: unprivileged user (not root, no setpriv, or the Python interpreter is not "
                    "readable by other users): it runs as the grading user")
    allow = [sys.prefix, sys.base_prefix, str(PACKAGE_ROOT / "grader"), str(PACKAGE_ROOT / "course_lib"), str(home)]
    allow += [str(b.outside) for b in binds]
    return Plan(role, prefix, str(home), run_as, prot, chown_home=run_as is not None, deny=_course_roots(),
                allow=allow, network_isolated=isolated)


def _bubblewrap_plan(role: str, home: Path, disk_bytes: int, binds: Sequence[Bind], uid: int, python: bool,
                     common: list[str]) -> Plan:
    t = tools()
    prefix = [str(t["bwrap"]), "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
              "--unshare-cgroup-try", "--die-with-parent", "--new-session",
              "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
              "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "lib32", "sbin"):
        target = Path("/" + link)
        if target.is_symlink():
            prefix += ["--symlink", os.readlink(target), f"/{link}"]
        elif target.is_dir():
            prefix += ["--ro-bind", str(target), f"/{link}"]
    prefix += ["--perms", "0755", "--dir", "/etc"]
    for name in _ETC:
        if Path("/etc", name).exists():
            prefix += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    # /tmp first: the checkout or the venv may live below /tmp, and their read-only binds must sit on top.
    size = str(max(16 * 1024**2, disk_bytes))
    prefix += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/", "/usr", "/etc", "/tmp", "/home", "/run"}
    if python:
        paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent,
                 PACKAGE_ROOT / "grader", PACKAGE_ROOT / "course_lib"]
        for path in paths:
            for parent in reversed(path.parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    prefix += ["--perms", "0755", "--dir", str(parent)]
        for path in dict.fromkeys(str(p) for p in paths):
            if not any(path.startswith(other + "/") for other in map(str, paths) if other != path):
                prefix += ["--ro-bind", path, path]
    inside_home = home_of(role)
    prefix += ["--perms", "0755", "--dir", "/home", "--size", size, "--perms", "0777", "--tmpfs", inside_home,
               "--ro-bind", str(home), inside_home + "/.seed", "--perms", "0755", "--dir", "/run"]
    for bind in binds:
        prefix += ["--bind" if bind.writable else "--ro-bind", str(bind.outside), bind.inside]
    prefix += ["--chdir", inside_home, "--", *_setpriv(uid)]
    shared = ", ".join(f"{b.inside}{' (writable)' if b.writable else ''}" for b in binds)
    prot = common + [
        "bubblewrap: own mount namespace (read-only system" + (", Python, venv, course_lib, grader" if python else "")
        + "; no course folder, solutions, gradebook, submissions or other learners), private tmpfs home and /tmp "
        f"({int(size) // 1024**2} MB each)" + (f"; shared with the other grading processes: {shared}" if shared else ""),
        "bubblewrap: no network (own network namespace)",
        "bubblewrap: own PID/IPC/UTS namespaces (cannot see or signal the grader or the other processes), new "
        "session, dies with the grader",
        f"an unprivileged uid of its own for each run and role (from {SANDBOX_UIDS[0]}-{SANDBOX_UIDS[1]}), "
        "no capabilities, no_new_privs",
    ]
    return Plan(role, prefix, inside_home, uid, prot, mounted=True, network_isolated=True)


def _redis_lines(isolation: str) -> list[str]:
    t = tools()
    if isolation == "off":
        return ["fakeredis in a process of its own (isolation off)"]
    lines = ["real redis-server (its Lua is sandboxed by Redis), admin commands refused by its ACL (CONFIG, "
             "SHUTDOWN, DEBUG, MODULE, ACL, MONITOR, replication, persistence)" if t["redis_server"] else
             "NOT ACTIVE: redis-server (install the 'redis-server' package): fakeredis serves in a process of "
             "its own with Lua locked down (no python, load, require, io, os, debug)",
             "one server per submission: it holds nothing but that submission's keys; the learner reaches it "
             "only through the judge's proxy, which the tests can cut (redis_outage)",
             "with --redis-url: the given server, reached through the grader's proxy (that server is shared: "
             "see docs/SECURITY.md)"]
    return lines


def active_protections(isolation: str = "auto", redis: bool = False, role: str = "learner") -> list[str]:
    """One line per protection ``role`` gets on this machine (lines starting NOT ACTIVE are missing)."""
    lines = plan(role, Path("/nonexistent"), isolation=isolation).protections
    if role == "learner":
        lines = lines + ["test cells run in a separate process (grader.sandbox.judge, sandboxed too) that reaches the "
                         "learner's names through a narrow channel; a lesson with notebook metadata "
                         "grader.tests = 'kernel' runs them in the learner's process"]
    if role == "judge":
        lines = lines + ["the learner's code may use only what each object the tests pass in declares "
                         "(__learner_api__ or the grader's table for library types); anything else is a "
                         "PermissionError"]
    if role == "redis":
        lines = _redis_lines(isolation) + lines
    return lines


def describe(isolation: str = "auto", redis: bool = False) -> str:
    """The protections of every grading process on this machine, as ``autograde`` and ``check`` print them."""
    out = []
    for role in ROLES:
        out.append(f"sandbox protections of {_WHAT[role]}:")
        out += [f"  - {line}" for line in active_protections(isolation, redis, role)]
    return "\n".join(out)


if __name__ == "__main__":
    print(describe(sys.argv[1] if len(sys.argv) > 1 else "auto"))
