"""Kernel-level isolation of the learner's process, and what is active on this machine.

``python -m grader.isolation`` (and the autograde/check commands, through
``describe()``) print which protections are active. With bubblewrap
(``bwrap``) the learner's process gets:

- its own mount namespace: read-only ``/usr``, a few files of ``/etc``, the
  Python installation, the virtual environment and the ``course_lib`` and
  ``grader`` packages; nothing else of the course folder (no solutions,
  gradebook, submissions, feedback, exchange); a private writable scratch
  folder and ``/tmp`` as size-limited tmpfs;
- its own network namespace (no network at all; a real Redis given to the
  grader is reached through a unix socket proxied by the parent), PID, IPC
  and UTS namespaces, a new session, death with its parent;
- an unprivileged uid of its own (no passwd entry) with no capabilities and no_new_privs,
  so RLIMIT_NPROC stops fork bombs and nothing it could reach is writable.

Without bwrap, ``unshare`` gives the network and PID namespaces and
``setpriv`` the unprivileged uid when the interpreter is readable by it;
otherwise the run keeps the grading user and relies on the audit hook and
rlimits (``describe()`` says so). ``isolation="off"`` (``Limits``) turns all
of this, and the audit hook, off: the baseline for measuring the cost.
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

__all__ = ["Plan", "plan", "tools", "active_protections", "describe", "ISOLATION_MODES", "INSIDE_SCRATCH"]

ISOLATION_MODES = ("auto", "off")
INSIDE_SCRATCH = "/home/learner"
INSIDE_RUN = "/run/grader"
SANDBOX_UIDS = (200_000, 260_000)  # unprivileged uids without a passwd entry, one per run
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # holds grader/ and course_lib/
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "localtime", "passwd", "group", "nsswitch.conf",
        "hosts", "host.conf", "gai.conf", "ssl", "ca-certificates", "mime.types", "alternatives", "os-release")


@dataclass
class Plan:
    """How to start the runner: a command prefix and where things are inside."""

    prefix: list[str]
    scratch: str  # the scratch folder as the learner's process sees it
    uid: int | None  # the scratch folder must belong to this user
    protections: list[str]
    deny: list[str] = field(default_factory=list)  # paths the audit hook refuses to read...
    allow: list[str] = field(default_factory=list)  # ...except these (the venv and the two packages)
    network_isolated: bool = False


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


def plan(workdir: Path, rundir: Path, *, isolation: str = "auto", disk_bytes: int = 256 * 1024**2,
         redis: bool = False) -> Plan:
    """The command prefix for one run. ``workdir`` is the scratch folder, ``rundir`` holds the Redis socket."""
    if isolation not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {isolation!r}")
    if isolation == "off":
        return Plan([], str(workdir), None, ["separate process with rlimits, clean environment, own session "
                                              "(isolation off: no namespaces, no audit hook)"])
    t = tools()
    deny = _course_roots()
    common = ["separate process, own session, rlimits (memory, CPU, file size, processes), clean environment",
              "audit hook in the learner's interpreter (frames, gc, ctypes, programs, files, sockets)",
              "cells sent one at a time, test source encrypted in transit, records authenticated (HMAC)"]
    # An unprivileged uid of its own (no passwd entry needed): RLIMIT_NPROC counts per uid, so a fork or
    # thread bomb in one submission cannot starve another submission graded at the same time.
    nobody = SANDBOX_UIDS[0] + secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0]) if t["root"] else None
    if t["bwrap"] and t["root"] and t["setpriv"]:
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
        for name in _ETC:
            if Path("/etc", name).exists():
                prefix += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        # /tmp first: the checkout or the venv may live below /tmp, and their read-only binds must sit on top.
        size = str(max(16 * 1024**2, disk_bytes))
        prefix += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--perms", "1777", "--tmpfs", "/tmp"]
        binds = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent]
        binds += [PACKAGE_ROOT / "grader", PACKAGE_ROOT / "course_lib"]
        made: set[str] = {"/", "/usr", "/etc", "/tmp", "/home", "/run"}
        for path in binds:
            for parent in reversed(path.parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    prefix += ["--perms", "0755", "--dir", str(parent)]
        for path in dict.fromkeys(str(p) for p in binds):
            if not any(path.startswith(other + "/") for other in map(str, binds) if other != path):
                prefix += ["--ro-bind", path, path]
        prefix += ["--size", size, "--perms", "0777", "--tmpfs", INSIDE_SCRATCH,
                   "--ro-bind", str(workdir), INSIDE_SCRATCH + "/.seed",
                   "--perms", "0755", "--dir", "/run"]
        if redis:
            prefix += ["--bind", str(rundir), INSIDE_RUN]
        prefix += ["--chdir", INSIDE_SCRATCH, "--",
                   str(t["setpriv"]), f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        prot = common + [
            "bubblewrap: own mount namespace (read-only system, Python, venv, course_lib, grader; no course "
            "folder, solutions, gradebook or submissions), private tmpfs scratch and /tmp "
            f"({int(size) // 1024**2} MB each)",
            "bubblewrap: no network (own network namespace)" + ("; the given Redis through a unix-socket proxy"
                                                               if redis else ""),
            "bubblewrap: own PID/IPC/UTS namespaces, new session, dies with the grader",
            f"an unprivileged uid of its own for each run (from {SANDBOX_UIDS[0]}-{SANDBOX_UIDS[1]}), "
            "no capabilities, no_new_privs",
        ]
        return Plan(prefix, INSIDE_SCRATCH, None, prot, deny=[], network_isolated=True)
    prefix: list[str] = []
    prot = list(common)
    if not t["bwrap"]:
        prot.append("NOT ACTIVE: bubblewrap (install the 'bubblewrap' package): the course folder is readable "
                    "except through the audit hook")
    isolated = False
    if t["unshare"]:
        prefix += [str(t["unshare"]), "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
        prot.append("unshare: no network (own network namespace), own PID namespace"
                    + ("; the given Redis through a unix-socket proxy" if redis else ""))
        isolated = True
    else:
        prot.append("NOT ACTIVE: network namespace (unshare unavailable): the audit hook filters connections")
    uid = None
    if t["setpriv"] and nobody is not None and t["others_can_run_python"]:
        prefix += [str(t["setpriv"]), f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        prot.append(f"setpriv: an unprivileged uid of its own for each run (from {SANDBOX_UIDS[0]}-{SANDBOX_UIDS[1]})")
        uid = nobody
    else:
        prot.append("NOT ACTIVE: unprivileged user (not root, no setpriv, or the Python interpreter is not "
                    "readable by other users): the learner's code runs as the grading user")
    allow = [sys.prefix, sys.base_prefix, str(PACKAGE_ROOT / "grader"), str(PACKAGE_ROOT / "course_lib"), str(workdir)]
    return Plan(prefix, str(workdir), uid, prot, deny=deny, allow=allow, network_isolated=isolated)


def active_protections(isolation: str = "auto", redis: bool = False) -> list[str]:
    """One line per protection a grading run gets on this machine (lines starting NOT ACTIVE are missing)."""
    return plan(Path("/nonexistent"), Path("/nonexistent"), isolation=isolation, redis=redis).protections + [
        "test cells run in a separate trusted process (grader.judge) that reaches the learner's names through a "
        "narrow channel; a lesson with notebook metadata grader.tests = 'kernel' runs them in the learner's process"]


def describe(isolation: str = "auto", redis: bool = False) -> str:
    return "sandbox protections:\n" + "\n".join(f"  - {line}" for line in active_protections(isolation, redis))


if __name__ == "__main__":
    print(describe(sys.argv[1] if len(sys.argv) > 1 else "auto"))
