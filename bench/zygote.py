"""A prototype measurement of a pre-forked warm interpreter (run as ``python -m bench.zygote REPEATS``).

Cold: what every submission pays today before its first cell, a new interpreter
that imports IPython, the modules the lessons use and creates a shell.
Warm: a process that imported those modules once forks a child per submission;
the child creates the shell and runs the same trivial cell. Prints JSON.
This measures the mechanism only; it is not wired into the grader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

PRELOAD = ("IPython.core.interactiveshell", "hypothesis", "numpy", "matplotlib", "matplotlib.figure",
           "course_lib", "fakeredis", "redis", "cachetools")

CHILD = """
import importlib, sys
for name in {preload!r}:
    importlib.import_module(name)
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("x = sum(range(1000))")
sys.stdout.write("ok")
"""


def _child_body() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("x = sum(range(1000))")


def main(argv: list[str]) -> int:
    repeats = int(argv[0]) if argv else 3
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    cold = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD.format(preload=PRELOAD)], env=env, check=True,
                       capture_output=True)
        cold.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    preload_s = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a fresh session, then the same work as the cold run
            os.close(r)
            try:
                os.setsid()
                _child_body()
                os.write(w, b"ok")
            finally:
                os._exit(0)
        os.close(w)
        os.read(r, 16)
        os.close(r)
        os.waitpid(pid, 0)
        warm.append(time.perf_counter() - t0)
    print(json.dumps({"cold_s": cold, "warm_fork_s": warm, "preload_once_s": preload_s, "preload": PRELOAD}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
